//! `stratad`: the D-Bus system daemon that owns the sysroot and runs transactions.
//!
//! It serves rpm-ostree's wire contract (`org.projectatomic.rpmostree1`): an ObjectManager at
//! the base path, the `Sysroot` object, one `OS` object per stateroot, and a peer-to-peer
//! `Transaction` object per mutating request. See `transaction` for the transaction lifecycle.

#[cfg(test)]
mod apidoc;
mod config;
mod daemon;
mod driver;
mod error;
mod failpoints;
mod gvariant;
mod lifecycle;
mod options;
mod os_iface;
mod peer_socket;
mod polkit;
mod properties;
mod publish;
mod state;
mod sysroot_iface;
mod transaction;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use strata_api::names;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

pub use lifecycle::init_logging;

/// `stratad --version`: says when failpoints are compiled in (test builds), so an installed
/// daemon can be checked for them (`make install` does).
const VERSION: &str = if cfg!(feature = "failpoints") {
    concat!(env!("CARGO_PKG_VERSION"), " (failpoints: test build)")
} else {
    env!("CARGO_PKG_VERSION")
};

/// stratad: the Strata daemon (rpm-ostree compatible D-Bus API).
#[derive(Debug, Parser)]
#[command(name = "stratad", version = VERSION)]
pub struct Args {
    /// The ostree sysroot to manage.
    #[arg(long, default_value = "/")]
    pub sysroot: PathBuf,
    /// Serve on this D-Bus address instead of the system bus (tests).
    #[arg(long, conflicts_with = "session")]
    pub bus_address: Option<String>,
    /// Serve on the session bus instead of the system bus.
    #[arg(long)]
    pub session: bool,
    /// Authorize every caller (only with --bus-address or --session).
    #[arg(long)]
    pub no_polkit: bool,
    /// The daemon configuration ([Daemon] keys of rpm-ostreed.conf).
    #[arg(long, default_value = "/etc/rpm-ostreed.conf")]
    pub config: PathBuf,
    /// Where transaction sockets are created.
    #[arg(long, default_value = "/run/strata")]
    pub run_dir: PathBuf,
    /// Exit after this many idle seconds (0: never); overrides IdleExitTimeout.
    #[arg(long)]
    pub idle_exit_timeout: Option<u64>,
    /// Drop a transaction not started (Start()) within this many seconds.
    #[arg(long, hide = true, default_value_t = 60, value_name = "SECONDS")]
    pub transaction_start_timeout: u64,
    /// Write the stratad(8) man page into DIR and exit (used by `make install`).
    #[arg(long, hide = true, value_name = "DIR")]
    pub generate_man: Option<PathBuf>,
}

/// Raise the soft limit on open files to the hard one: every client, transaction peer and
/// libostree's object writes take descriptors, and running out blocks clients.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let from = limit.current;
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => tracing::debug!("RLIMIT_NOFILE raised from {from:?} to {:?}", limit.maximum),
            Err(e) => tracing::warn!("Raising RLIMIT_NOFILE: {e}"),
        }
    }
}

/// Make sure the run dir (where transaction sockets live) is ours alone, and clear sockets a
/// crashed daemon left there.
fn prepare_run_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    fs_err::create_dir_all(dir)?;
    let meta = fs_err::metadata(dir)?;
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(anyhow!(
            "The run directory {} belongs to uid {}, not to stratad (uid {euid}); fix its owner or pass another --run-dir",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(anyhow!(
            "The run directory {} is writable by other users (mode {:o}), so they could plant transaction sockets; chmod go-w it or pass another --run-dir",
            dir.display(),
            meta.permissions().mode() & 0o7777
        ));
    }
    for entry in fs_err::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        // transaction-PID-ID.sock: stale when that stratad is gone.
        let Some(pid) = name
            .strip_prefix("transaction-")
            .and_then(|r| r.strip_suffix(".sock"))
            .and_then(|r| r.split_once('-'))
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let path = dir.join(name);
            match fs_err::remove_file(&path) {
                Ok(()) => tracing::info!("Removed a stale transaction socket {}", path.display()),
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
    Ok(())
}

/// stratad(8), from the clap definition so it never drifts from the flags.
fn write_man_page(dir: &std::path::Path) -> Result<()> {
    use clap::CommandFactory;
    fs_err::create_dir_all(dir)?;
    let mut buf = Vec::new();
    clap_mangen::Man::new(Args::command())
        .section("8")
        .source(format!("strata {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)
        .context("Rendering stratad(8)")?;
    // FILES, EXIT STATUS and SEE ALSO: clap_mangen has no sections for them.
    buf.extend_from_slice(
        b".SH FILES\n\
          .TP\n/etc/rpm\\-ostreed.conf\n\
          The [Daemon] keys AutomaticUpdatePolicy, IdleExitTimeout, LockLayering and \
          RebootCommand.\n\
          .SH ENVIRONMENT\n\
          .TP\nG_SLICE\n\
          stratad runs with G_SLICE=always-malloc (stratad.service sets it; otherwise \
          stratad executes itself again with it set), so that GLib 2.74's slice allocator \
          does not keep the memory a large transaction freed.\n\
          .SH \"EXIT STATUS\"\n\
          .TP\n0\nStopped by SIGTERM or SIGINT, or after the idle timeout.\n\
          .TP\n1\nCould not start (bad configuration, bus name taken, not a sysroot).\n\
          .SH \"SEE ALSO\"\n\\fBstrata\\fR(1), \\fBostree\\fR(1)\n",
    );
    Ok(fs_err::write(dir.join("stratad.8"), buf)?)
}

/// The environment GLib must see before it starts (see [`ensure_glib_env`]).
const G_SLICE: (&str, &str) = ("G_SLICE", "always-malloc");

/// GLib 2.74 (Debian 12) allocates GVariants, lists and hash nodes from its slice allocator,
/// whose per-thread magazines keep what a large pull or checkout freed: stratad then stays at
/// its peak (100+ MiB after a 50,000-file upgrade) for good, and the allocator showed up at
/// 12–14 % of a deploy's CPU samples. `G_SLICE=always-malloc` hands those allocations to
/// malloc, whose free memory `strata_glibc_malloc::trim` returns after each transaction. GLib
/// reads the variable once, in a constructor that runs before `main`, so it has to be in the
/// environment at exec: `stratad.service` sets it; otherwise (bus activation without systemd,
/// started by hand) stratad executes itself again with it set. GLib 2.76 and later use malloc
/// anyway and ignore the variable.
fn ensure_glib_env() {
    let (key, value) = G_SLICE;
    if std::env::var_os(key).is_some_and(|v| !v.is_empty()) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new("/proc/self/exe")
        .args(std::env::args_os().skip(1))
        .env(key, value)
        .exec();
    // Still here: running on GLib's slice allocator costs memory, not correctness.
    eprintln!("stratad: could not restart with {key}={value}: {err}");
}

/// Parse the command line, run the daemon until it exits.
pub fn main_entry() -> Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.generate_man {
        return write_man_page(dir);
    }
    ensure_glib_env();
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Starting the async runtime")?;
    rt.block_on(run(args))
}

/// Run the daemon with `args`.
pub async fn run(args: Args) -> Result<()> {
    if args.no_polkit && args.bus_address.is_none() && !args.session {
        return Err(anyhow!(
            "--no-polkit is only allowed on a private bus (with --bus-address or --session)"
        ));
    }
    // Failpoints make the daemon fail on purpose: honoured only on a private bus (as
    // --no-polkit), never by a stratad serving the system bus, even a test build.
    let private_bus = args.bus_address.is_some() || args.session;
    let _failpoints = private_bus.then(fail::FailScenario::setup);
    if !private_bus && std::env::var_os("FAILPOINTS").is_some() {
        tracing::warn!("Ignoring FAILPOINTS: failpoints are only honoured on a private bus");
    }
    if let (true, Some(points)) = (
        private_bus && cfg!(feature = "failpoints"),
        std::env::var_os("FAILPOINTS").filter(|v| !v.is_empty()),
    ) {
        tracing::info!("Failpoints active: FAILPOINTS={points:?}");
    }
    let config = config::Config::load(&args.config)?;
    prepare_run_dir(&args.run_dir)?;
    raise_fd_limit();
    let sysroot = std::path::absolute(&args.sysroot)
        .with_context(|| format!("Resolving {}", args.sysroot.display()))?;
    if !sysroot.join("ostree").is_dir() {
        return Err(anyhow!(
            "{} is not an ostree sysroot (no ostree/ directory)",
            sysroot.display()
        ));
    }
    let builder = match (&args.bus_address, args.session) {
        (Some(addr), _) => zbus::connection::Builder::address(addr.as_str())
            .with_context(|| format!("Invalid bus address {addr:?}"))?,
        (None, true) => zbus::connection::Builder::session()?,
        (None, false) => zbus::connection::Builder::system()?,
    };
    let conn = builder.build().await.context("Connecting to the bus")?;
    let settings = daemon::Settings {
        sysroot,
        run_dir: args.run_dir.clone(),
        config_path: args.config.clone(),
        no_polkit: args.no_polkit,
        idle_exit_timeout: args.idle_exit_timeout,
        start_timeout: Duration::from_secs(args.transaction_start_timeout),
    };
    let (d, publish_rx) = daemon::Daemon::new(settings, conn.clone(), config);
    let d = Arc::new(d);
    let txns = transaction::Transactions::new();
    let publisher = tokio::spawn(publish::run(d.clone(), txns.clone(), publish_rx));

    let server = conn.object_server();
    server
        .at(names::BASE_PATH, zbus::fdo::ObjectManager)
        .await?;
    properties::serve_at(
        server,
        names::SYSROOT_PATH,
        sysroot_iface::SysrootIface::new(d.clone(), txns.clone()),
    )
    .await?;
    properties::serve_at(
        server,
        names::SYSROOT_PATH,
        sysroot_iface::StrataExtIface::new(d.clone()),
    )
    .await?;
    // What a crash left in the sysroot (a partly written deployment directory) goes now, not
    // at the next successful deploy. A sysroot stratad cannot read yet (a dangling
    // /boot/loader, say) must not keep it from starting: clients see the error in
    // LastReloadError, and cleanup or rollback may repair it.
    if let Err(e) = d.start().await {
        tracing::error!("Loading the sysroot: {e:#}");
    }

    match conn
        .request_name_with_flags(names::BUS_NAME, RequestNameFlags::DoNotQueue.into())
        .await
    {
        Ok(RequestNameReply::PrimaryOwner) | Ok(RequestNameReply::AlreadyOwner) => {}
        Ok(_) | Err(zbus::Error::NameTaken) => {
            return Err(anyhow!(
                "The bus name {} is already owned: another stratad or rpm-ostreed is running on this bus",
                names::BUS_NAME
            ))
        }
        Err(e) => return Err(e).context(format!("Requesting the bus name {}", names::BUS_NAME)),
    }
    tracing::info!(
        "stratad ready: {} on sysroot {}",
        names::BUS_NAME,
        d.settings.sysroot.display()
    );
    lifecycle::sd_notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("clients=0; idle"),
    ]);

    let poll = tokio::spawn(lifecycle::watch_sysroot(d.clone()));
    let idle = tokio::spawn(lifecycle::idle_watch(d.clone(), txns.clone()));
    let reason = tokio::select! {
        s = lifecycle::signals() => s?.to_string(),
        _ = d.shutdown.notified() => "idle".to_string(),
    };
    tracing::info!("Shutting down ({reason})");
    lifecycle::sd_notify(&[sd_notify::NotifyState::Stopping]);
    poll.abort();
    publisher.abort();
    idle.abort();
    if let Err(e) = conn.release_name(names::BUS_NAME).await {
        tracing::warn!("Releasing {}: {e}", names::BUS_NAME);
    }
    if let Some(t) = txns.active() {
        if t.is_running() {
            t.cancel().await;
            for _ in 0..100 {
                if !t.is_running() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        t.release().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_says_whether_failpoints_are_compiled_in() {
        assert_eq!(VERSION.contains("failpoints"), cfg!(feature = "failpoints"));
    }

    #[test]
    fn man_page_has_every_section() {
        let dir = tempfile::tempdir().unwrap();
        write_man_page(dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("stratad.8")).unwrap();
        for part in [
            ".TH stratad 8",
            "\\-\\-sysroot",
            ".SH FILES",
            ".SH \"EXIT STATUS\"",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(part), "{part}: {page}");
        }
        assert!(
            !page.contains("generate\\-man"),
            "the hidden flag stays out"
        );
    }
}
