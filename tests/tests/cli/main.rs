//! End-to-end tests of the `strata` client: the real binary (also through a symlink named
//! `rpm-ostree`, as Zincati runs it) against a real `stratad --no-polkit` on a private
//! `dbus-daemon`, on kit sysroots. Each test asserts exit codes, what the user reads, and the
//! sysroot afterwards.
//!
//! Build both binaries first (`cargo build -p strata-daemon -p strata-cli`;
//! `cargo nextest run --workspace` builds them too).

mod busy;
mod db;
mod errors;
mod install;
mod status;
mod upgrade;
mod verbs;
mod zincati;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// What a change on the test's directory sysroot ends with instead of rpm-ostree's
/// "Run \"systemctl reboot\"" hint (a reboot means nothing for a sysroot that is not running).
pub const NEXT_BOOT: &str = "the new deployment is used when it next boots";

use serde_json::Value as Json;
use strata_api::proxy::SysrootProxy;
use strata_tests::{Fixture, FixtureConfig, OsRelease, PrivateBus, Stratad, TestSysroot};
use zbus::proxy::CacheProperties;

/// How long one CLI invocation may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `target/<profile>/strata`, next to `stratad`.
pub fn strata_binary() -> PathBuf {
    let bin = Stratad::binary()
        .expect("stratad binary")
        .with_file_name("strata");
    assert!(
        bin.exists(),
        "{} does not exist; build it first (cargo build -p strata-cli)",
        bin.display()
    );
    bin
}

/// A fixture, a private bus, `stratad` on it, and the two names of the client.
#[allow(missing_debug_implementations)]
pub struct Env {
    pub fx: Fixture,
    pub daemon: Stratad,
    pub bus: PrivateBus,
    /// `<fixture>/bin/rpm-ostree` → `strata`.
    pub rpm_ostree: PathBuf,
}

/// The result of one CLI run.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Panics with everything when the exit code is not `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Out {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    /// The stdout, parsed as JSON.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A fixture served over HTTP (for slow pulls).
pub fn http() -> FixtureConfig {
    FixtureConfig {
        http: true,
        ..Default::default()
    }
}

/// A release with enough files that a delayed HTTP pull takes a while.
pub fn big_release(v: &str) -> OsRelease {
    OsRelease::new(v).extra_files(40).extra_files_seed(v)
}

impl Env {
    pub async fn new(config: FixtureConfig) -> Env {
        let fx = Fixture::new(&config).expect("fixture");
        let bus = PrivateBus::start().expect("bus");
        let daemon = Stratad::start(&bus, fx.sysroot().unwrap().path(), &[])
            .await
            .expect("stratad");
        let bin = fx.dir().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let rpm_ostree = bin.join("rpm-ostree");
        std::os::unix::fs::symlink(strata_binary(), &rpm_ostree).unwrap();
        Env {
            fx,
            daemon,
            bus,
            rpm_ostree,
        }
    }

    pub fn sysroot(&self) -> &TestSysroot {
        self.fx.sysroot().unwrap()
    }

    /// `strata ARGS`.
    pub fn strata_cmd(&self, args: &[&str]) -> tokio::process::Command {
        command(&strata_binary(), self.bus.address(), args)
    }

    /// `rpm-ostree ARGS` (the symlink).
    pub fn rpm_ostree_cmd(&self, args: &[&str]) -> tokio::process::Command {
        command(&self.rpm_ostree, self.bus.address(), args)
    }

    /// Run `strata ARGS` to its end.
    pub async fn strata(&self, args: &[&str]) -> Out {
        output(self.strata_cmd(args)).await
    }

    /// Run `rpm-ostree ARGS` as Zincati does (`RPMOSTREE_CLIENT_ID=zincati`).
    pub async fn zincati(&self, args: &[&str]) -> Out {
        let mut cmd = self.rpm_ostree_cmd(args);
        cmd.env("RPMOSTREE_CLIENT_ID", "zincati");
        output(cmd).await
    }

    /// `strata status --json`, parsed.
    pub async fn status_json(&self) -> Json {
        self.strata(&["status", "--json"]).await.expect(0).json()
    }

    /// A Sysroot proxy on a fresh connection (no property caching).
    pub async fn sysroot_proxy(&self) -> SysrootProxy<'static> {
        let conn = self.bus.connect().await.unwrap();
        SysrootProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap()
    }

    /// Wait until the daemon has an active transaction.
    pub async fn wait_for_transaction(&self) {
        let sysroot = self.sysroot_proxy().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (method, _, _) = sysroot.active_transaction().await.unwrap();
            if !method.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no transaction started; daemon stderr:\n{}",
                self.daemon.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until the daemon has no active transaction.
    pub async fn wait_idle(&self) {
        let sysroot = self.sysroot_proxy().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (method, _, _) = sysroot.active_transaction().await.unwrap();
            if method.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "transaction {method} did not end"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A command for `program` on the bus at `address`, with a clean client environment and
/// piped output (so the client never sees a terminal).
pub fn command(program: &Path, address: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .env_remove("RPMOSTREE_CLIENT_ID")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Run `cmd` to its end (bounded by [`TIMEOUT`]).
pub async fn output(mut cmd: tokio::process::Command) -> Out {
    let child = cmd.spawn().expect("spawn the client");
    wait(child).await
}

/// Wait for a spawned client (bounded by [`TIMEOUT`]).
pub async fn wait(child: tokio::process::Child) -> Out {
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("the client did not finish in time")
        .expect("waiting for the client");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The checksums of the sysroot's deployments, in boot order.
pub fn checksums(sysroot: &TestSysroot) -> Vec<String> {
    sysroot
        .deployments()
        .unwrap()
        .into_iter()
        .map(|d| d.checksum)
        .collect()
}
