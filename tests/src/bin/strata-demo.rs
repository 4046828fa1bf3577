//! `make demo`: Strata end to end on a throwaway sandbox.
//!
//! Builds a test OS repository with two releases served over HTTP on loopback, an RPM
//! repository (real RPMs from rpmbuild, indexed by createrepo_c, also on loopback) configured in
//! them, a sysroot with release 1 deployed and a private `dbus-daemon`, starts the real `stratad`
//! on them and runs the real `strata` CLI through status, upgrade --check, upgrade, install (a
//! package with a dependency), a rebase onto a container image of release 3 served by a
//! `docker-registry` on loopback (the layered package carried over), upgrade --check and upgrade
//! when the image's tag moves to release 4, uninstall, kargs, rollback and status --json,
//! printing each command and its output as a person would see them. Everything is removed at the
//! end (the registry's `registries.conf.d` drop-in included).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use strata_tests::oci::{self, Registry};
use strata_tests::{Fixture, FixtureConfig, HttpServer, PrivateBus, Stratad, TestPackages};

fn main() {
    strata_tests::run_main(run());
}

/// Runs `strata ARGS` against the sandbox's bus, showing the command line and its output.
struct Cli {
    strata: PathBuf,
    bus: String,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        println!("\n\x1b[1m$ strata {}\x1b[0m", args.join(" "));
        let mut c = Command::new(&self.strata);
        c.args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus)
            .env("RPMOSTREE_CLIENT_ID", "demo");
        c
    }

    /// Run with output going straight to the terminal.
    fn run(&self, args: &[&str]) -> Result<i32> {
        let status = self
            .command(args)
            .status()
            .with_context(|| format!("Running strata {}", args.join(" ")))?;
        let code = status.code().unwrap_or(-1);
        if code != 0 {
            println!("(exit status {code})");
        }
        Ok(code)
    }

    /// Run and show only the first `n` lines of stdout (`| head -n`).
    fn run_head(&self, args: &[&str], n: usize) -> Result<()> {
        let out = self
            .command(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("Running strata {}", args.join(" ")))?;
        for line in String::from_utf8_lossy(&out.stdout).lines().take(n) {
            println!("{line}");
        }
        println!("...");
        Ok(())
    }
}

/// `ostree refs` of the sysroot's repository: the package cache refs layering wrote.
fn show_package_refs(sysroot: &Path) -> Result<()> {
    let repo = sysroot.join("ostree/repo");
    println!("\n\x1b[1m$ ostree refs --repo={}\x1b[0m", repo.display());
    let out = strata_tests::cmd::ostree(["refs", &format!("--repo={}", repo.display())])?;
    let mut refs: Vec<&str> = out.lines().collect();
    refs.sort_unstable();
    for r in refs {
        println!("{r}");
    }
    Ok(())
}

fn find_strata() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("Finding the demo executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let bin = dir.join("strata");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(anyhow!(
            "{} is missing; run `make demo`, which builds it",
            bin.display()
        ))
    }
}

async fn run() -> Result<()> {
    let t0 = Instant::now();
    let strata = find_strata()?;
    println!("Creating a sandbox: a test OS repository with releases 1 and 2 served over HTTP on");
    println!("loopback, an RPM repository, a sysroot with release 1 deployed, and a private D-Bus");
    println!("bus...");
    let rpms = tempfile::Builder::new()
        .prefix("strata-demo-rpms-")
        .tempdir()?;
    let pkgs = TestPackages::create(rpms.path())?;
    let rpm_http = HttpServer::serve(pkgs.repo.path())?;
    let fx = Fixture::new(&FixtureConfig {
        http: true,
        release: pkgs.release_with_url("1", &rpm_http.url()).extra_files(500),
        ..Default::default()
    })?;
    fx.commit(
        &pkgs
            .release_with_url("2", &rpm_http.url())
            .extra_files(500)
            .extra_files_seed("release-2"),
    )?;
    let bus = PrivateBus::start()?;
    let sysroot = fx.sysroot()?.path().to_path_buf();
    let daemon = Stratad::start(&bus, &sysroot, &[]).await?;
    println!(
        "Sandbox ready in {:.1}s: stratad (pid {}) manages {} on bus {}",
        t0.elapsed().as_secs_f64(),
        daemon.pid().unwrap_or_default(),
        sysroot.display(),
        bus.address()
    );
    let cli = Cli {
        strata,
        bus: bus.address().to_string(),
    };

    cli.run(&["status"])?;
    cli.run(&["upgrade", "--check"])?;
    cli.run(&["upgrade"])?;
    cli.run(&["status"])?;
    cli.run(&["install", "hello"])?;
    cli.run(&["status"])?;
    show_package_refs(&sysroot)?;

    println!("\nPublishing release 3 as a container image: ostree commit, encapsulated in chunked");
    println!("layers, pushed to a docker-registry on loopback...");
    let registry = Registry::start()?;
    let oci_dir = fx.dir().join("oci");
    let publish = |version: &str| -> Result<()> {
        let rev = fx.commit(
            &pkgs
                .release_with_url(version, &rpm_http.url())
                .extra_files(500)
                .extra_files_seed("release-2"),
        )?;
        oci::encapsulate(fx.repo().path(), &rev, &oci_dir, version)?;
        registry.push(&oci_dir, version, "strata-os:stable")
    };
    publish("3")?;
    let imgref = format!(
        "ostree-unverified-registry:{}/strata-os:stable",
        registry.host()
    );
    cli.run(&["rebase", &imgref])?;
    cli.run(&["status"])?;
    println!("\nThe tag moves to release 4...");
    publish("4")?;
    cli.run(&["upgrade", "--check"])?;
    cli.run(&["upgrade"])?;
    cli.run(&["status"])?;
    cli.run(&["uninstall", "hello"])?;
    cli.run(&["kargs", "--append=demo=1"])?;
    cli.run(&["kargs"])?;
    cli.run(&["rollback"])?;
    cli.run(&["status"])?;
    cli.run(&["kargs"])?;
    cli.run_head(&["status", "--json"], 24)?;

    drop(daemon);
    drop(registry);
    drop(bus);
    drop(fx);
    drop(rpm_http);
    drop(rpms);
    println!(
        "\nDone in {:.1}s; stratad stopped and the sandbox removed.",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
