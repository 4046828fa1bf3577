//! Strata's test kit: throwaway OS releases, repositories, signing keys, an HTTP server and
//! real sysroots, all in temporary directories, for integration tests, the daemon suite, VM
//! images and benchmarks.
//!
//! Start from [`Fixture`], which wires the pieces together:
//!
//! ```no_run
//! use strata_tests::{Fixture, FixtureConfig, OsRelease};
//! # fn main() -> anyhow::Result<()> {
//! let fx = Fixture::new(&FixtureConfig { gpg: true, http: true, ..Default::default() })?;
//! let sysroot = fx.sysroot()?;                  // release "1" deployed
//! let before = sysroot.snapshot()?;
//! fx.commit(&OsRelease::new("2").file("usr/etc/new.conf", "x\n"))?;
//! // ... run Strata against sysroot.path() ...
//! # let _ = before;
//! # Ok(())
//! # }
//! ```
//!
//! Or use the parts on their own: [`cmd`] runs external programs, [`TestRepo`] commits
//! [`OsRelease`]s, [`GpgKey`] signs, [`HttpServer`] serves, [`TestSysroot`] deploys and
//! inspects. Everything calls [`init`] itself.

pub mod bus;
pub mod cmd;
mod fixture;
mod gpg;
mod http;
pub mod oci;
mod repo;
pub mod rpm;
mod sysroot;
pub mod vm;

pub use bus::{Polkitd, PrivateBus, Stratad};
pub use fixture::{Fixture, FixtureConfig};
pub use gpg::{GpgKey, GpgSigner};
pub use http::{HttpServer, RequestRecord};
pub use repo::{
    extra_file_content, extra_file_path, FileEntry, OsRelease, Signing, TestRepo,
    DEFAULT_EXTRA_FILES_SEED, DEFAULT_KERNEL_VERSION, EXTRA_FILES_DIR, OS_ID, OS_NAME,
    UNTOUCHED_CONF,
};
pub use rpm::{rpm_from_deb, RpmEntry, RpmRepo, RpmSpec, ScriptPhase, TestPackages};
pub use sysroot::{
    sort_boot_entries, BootEntry, DeploymentInfo, SysrootConfig, SysrootSnapshot, TestSysroot,
    DEFAULT_KARGS, DEFAULT_OSNAME, DEFAULT_REF, DEFAULT_REMOTE,
};

/// Re-exported so tests use the same GLib bindings as the kit.
pub use ostree::{gio, glib};

/// Process-wide test setup; idempotent and cheap, so call it first in every test (the kit's
/// constructors call it too).
///
/// Sets `OSTREE_SYSROOT_DEBUG=mutable-deployments` for this process (libostree in-process) and
/// every child: otherwise deployments are `chattr +i` and temp sysroots cannot be removed.
/// No tracing subscriber is installed (the kit does not depend on `tracing-subscriber`); a test
/// binary that wants the kit's `debug` logs installs its own.
pub fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // Set once, before the kit starts any libostree work or child process.
        std::env::set_var("OSTREE_SYSROOT_DEBUG", "mutable-deployments");
    });
}

/// `main` of the kit's programs (`strata-demo`, `strata-bench`): run `body` on a current-thread
/// runtime and exit 1 with the whole error chain if it fails.
pub fn run_main<F: std::future::Future<Output = anyhow::Result<()>>>(body: F) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(body) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
