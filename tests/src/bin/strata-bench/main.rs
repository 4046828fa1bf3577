//! `make bench`: Strata side by side with the ostree CLI, each measurement interleaved with its
//! baseline on the same sysroot in the same run (the machines are shared and noisy: a ratio
//! measured this way holds, an absolute time does not). Prints a table of median, min and max,
//! and writes `target/bench/results.json` and `docs/benchmarks.md`.
//!
//! Two sysroots, each with its releases served over loopback HTTP: 5,000 files (status,
//! rollback, the empty transaction, deploy, memory over many calls, idle wakeups, the first
//! status with bus activation) and 50,000 files (status, upgrade with the pull, deploy, the
//! daemon's peak memory). `STRATA_BENCH_QUICK=1` runs fewer rounds, idles for 5 s instead of
//! 60, leaves out the instruction counts (callgrind) and uses 5,000 files for the second
//! sysroot too (under 2 minutes).
//!
//! `strata-bench write-deployments-rollback SYSROOT` is the rollback baseline: libostree's
//! `write_deployments` with the first two deployments swapped, and nothing else.
//! `strata-bench undeploy-first SYSROOT` takes the first deployment away between rounds,
//! without a repository prune. `strata-bench site FILES` sets up the bench's sysroot and keeps
//! it (and stratad, under callgrind with `STRATA_BENCH_CALLGRIND=1`) until interrupted,
//! printing how to reach it: for profiling a command by hand.

mod measure;
mod report;

/// A line of progress on stderr, with the minutes and seconds since the bench started.
macro_rules! progress {
    ($($arg:tt)*) => {{
        let t = crate::STARTED.elapsed().as_secs();
        eprintln!("[{:2}:{:02}] {}", t / 60, t % 60, format_args!($($arg)*));
    }};
}

/// When the bench started, for its progress lines and the report.
static STARTED: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use strata_tests::{
    cmd, gio, Fixture, FixtureConfig, OsRelease, PrivateBus, RpmSpec, Stratad, TestPackages,
};

use measure::{interleaved, Daemon, Measure, Sample, Series};
use report::{Figure, Report, Row};

fn main() {
    std::sync::LazyLock::force(&STARTED);
    let args: Vec<String> = std::env::args().collect();
    if let [_, verb, arg] = &args[..] {
        if verb == "write-deployments-rollback" {
            let sysroot = PathBuf::from(arg);
            return strata_tests::run_main(async move { rollback_baseline(&sysroot) });
        }
        if verb == "undeploy-first" {
            let sysroot = PathBuf::from(arg);
            return strata_tests::run_main(async move { undeploy_first_unpruned(&sysroot) });
        }
        if verb == "site" {
            let files = arg.clone();
            return strata_tests::run_main(async move { keep_site(&files).await });
        }
    }
    strata_tests::run_main(run());
}

/// What bounds the figures, for the reader of `docs/benchmarks.md`.
const NOTES: &[&str] = &[
    "`status` in absolute time: a Strata command is a process start plus three bus calls \
     (Hello, RegisterClient, GetManagedObjects). The `dbus-send` row is a C client making one \
     call on the same bus: no client gets far below it on this machine, so the 5 ms target \
     holds only where a bus round trip and a process start are cheaper than here.",
    "Idle memory: most of stratad's RSS is file pages of its binary and of the libraries it \
     links — libostree's (libcurl, GnuTLS, GPGME, ICU, ...) and, for layering, libdnf's \
     (libdnf, libsolv, librpm, libstdc++, about 4 MiB at idle) — mapped at start and shared \
     with every other process that maps them; `ostree --version` alone peaks at the RSS shown. \
     The kernel maps up to 64 KiB around each page touched (fault-around), so most of the \
     binary's code is resident once a little of it runs: release builds are linked with fat LTO \
     (the code a fifth smaller, 2 MiB less at idle). The anonymous part is stratad's own. \
     15 MiB is below what linking libostree costs; it would take moving libdnf (and \
     ostree-ext) out of the daemon's process.",
    "Memory after a transaction: stratad runs with `G_SLICE=always-malloc` (GLib 2.74's slice \
     allocator otherwise keeps what a pull freed) and calls `malloc_trim` after each \
     transaction. What stays is mostly the pull's code (libcurl, TLS, libostree's fetcher) \
     mapped by the first transaction, plus about 2 MiB of anonymous memory. Its peak during \
     a large upgrade is its idle size plus about the same work as `ostree pull`'s, so the \
     ratio is above 1 by the difference of the two processes' sizes at rest.",
    "The empty transaction: an update check that finds nothing new reads only the remote's \
     summary (through libostree, no repository transaction) when the summary and the local \
     ref both name the deployed commit; the baseline is the same fetch in a process of its \
     own. A check that pulls the commit metadata instead (what `ostree pull \
     --commit-metadata-only` does, and what Strata did before) commits a repository \
     transaction — a syncfs and an fsync of all 256 object directories — even when nothing \
     is new: 25–40 ms here.",
    "`strata deploy REV` of a commit the repo already holds whole, on the branch and signed as \
     the remote requires (checked locally) reads only the remote's summary, to see the branch \
     was not reset (two pulls, each a repository transaction, before); it still runs a \
     transaction over the bus and reloads the sysroot afterwards. The work of the deploy \
     itself is libostree's either way: in instructions (callgrind) Strata's CLI and stratad \
     together are within a few percent of `ostree admin deploy` (the figure above, at 5,000 \
     files; on 2026-11-30, by hand with `STRATA_BENCH_CALLGRIND=1 strata-bench site 50000`: \
     7.39 G against 7.27 G at 50,000 files), with the same system calls (`strace -c` that \
     day: 50,027 `linkat`, 51,459 `openat`, 50,018 `flistxattr` against 50,028, 51,542 and \
     50,018). At 50,000 files the wall and CPU ratios ranged from 0.72× to 1.26× between \
     runs of the same code: the machine's noise. At 5,000 files the CPU ratio was 1.20×, \
     1.20×, 1.09× and 1.00× in four full runs in a row with equal instruction counts: what \
     is not noise there is kernel time or stalls in stratad around the transaction, not \
     found yet.",
    "Rounds: the deploy and layering rows on the 50,000-file release run three rounds after a \
     warm-up, the upgrade three (each pulls the whole release), so that `make bench` stays \
     within 20 minutes with the release build. Between rounds a deployment is taken away \
     without pruning the repository: the next measured command's own prune (Strata's and \
     the ostree CLI's alike) deletes what it left unreferenced — a layered commit after a \
     `strata install` round, a few dozen objects.",
    "stratad's start: loading its 78 libraries (relocations: about 17 ms of CPU, against 13 ms \
     for `ostree --version`), connecting to the bus, loading the sysroot. libostree's \
     cleanup, which rewrites the deployment refs in a repository transaction, now runs at \
     start only when a crash left something behind.",
    "CPU for Strata rows is the CLI's plus stratad's over the command (from `/proc`, in \
     clock ticks of 10 ms); idle wakeups are the context switches of stratad's threads.",
];

/// What rpm-ostree's rollback amounts to on a sysroot that is not booted, straight on
/// libostree.
fn rollback_baseline(path: &Path) -> Result<()> {
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(path)));
    sysroot.load(gio::Cancellable::NONE)?;
    let mut deployments = sysroot.deployments();
    if deployments.len() < 2 {
        bail!("Nothing to roll back to in {}", path.display());
    }
    deployments.swap(0, 1);
    sysroot.write_deployments(&deployments, gio::Cancellable::NONE)?;
    Ok(())
}

/// `strata-bench site FILES`: the bench's sysroot with release 1 deployed and release 2 pulled,
/// kept until interrupted, for profiling one command by hand (`perf record -p`, `strace -c`).
async fn keep_site(files: &str) -> Result<()> {
    let files = files
        .parse()
        .context("site: FILES must be a number of files")?;
    let mut site = Site::new(files).await?;
    let next = site.fx.commit(&site.release("2"))?;
    site.fx
        .sysroot()?
        .pull(&site.fx.sysroot_config().remote, site.fx.ref_())?;
    let profile = std::env::temp_dir().join(format!(
        "strata-bench-site-{}.callgrind",
        std::process::id()
    ));
    if std::env::var_os("STRATA_BENCH_CALLGRIND").is_some() {
        site.daemon = None;
        site.daemon = Some(site.start_under_callgrind(&profile).await?);
        println!(
            "# stratad runs under callgrind: `callgrind_control --zero PID` before a command, \
             `callgrind_control --dump PID` after it writes {}.N",
            profile.display()
        );
    }
    println!(
        "export DBUS_SYSTEM_BUS_ADDRESS='{}'\n# stratad pid {}; release 2 is {next}, pulled\n\
         strata deploy {next}; {} undeploy-first {}\n\
         ostree admin deploy {} --os={} {next}",
        site.bus.address(),
        site.daemon()?.pid,
        sibling("strata-bench")?.display(),
        site.sysroot().display(),
        site.sysroot_arg(),
        site.fx.sysroot_config().osname,
    );
    progress!("Ready; interrupt to remove the site.");
    tokio::signal::ctrl_c().await?;
    if let Some(d) = site.daemon.take() {
        stop(d).await?;
    }
    Ok(())
}

/// valgrind with callgrind, quiet; the output file comes after (see [`callgrind_out_arg`]).
const CALLGRIND: [&str; 3] = ["valgrind", "--tool=callgrind", "--quiet"];

fn callgrind_out_arg(out: &Path) -> String {
    format!("--callgrind-out-file={}", out.display())
}

/// Stop stratad with SIGTERM and wait for it (valgrind removes its files in /tmp only on an
/// orderly exit).
async fn stop(mut daemon: Stratad) -> Result<()> {
    daemon.signal("TERM")?;
    daemon.wait_exit(Duration::from_secs(60)).await?;
    Ok(())
}

/// Between rounds: the first deployment goes, as `ostree admin undeploy 0` would take it away
/// but without its prune of the repository (a walk of every object that costs seconds on the
/// 50,000-file releases and is not what any round measures; each measured deploy prunes).
fn undeploy_first_unpruned(path: &Path) -> Result<()> {
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(path)));
    sysroot.lock()?;
    sysroot.load(gio::Cancellable::NONE)?;
    let deployments = sysroot.deployments();
    if deployments.len() < 2 {
        bail!(
            "Only one deployment in {}: nothing would be left",
            path.display()
        );
    }
    let opts = ostree::SysrootWriteDeploymentsOpts {
        do_postclean: false,
    };
    sysroot.write_deployments_with_options(&deployments[1..], &opts, gio::Cancellable::NONE)?;
    sysroot.prepare_cleanup(gio::Cancellable::NONE)?;
    sysroot.unlock();
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Pace {
    Fast,
    /// A fraction of a second: a start, a deploy of the 5,000-file release.
    Medium,
    Slow,
    Slowest,
}

/// Settings of this run.
struct Bench {
    quick: bool,
    strata: PathBuf,
    report: Report,
}

impl Bench {
    /// Measured and warm-up rounds for commands of a few milliseconds, of a fraction of a
    /// second, of seconds, and of most of a minute (the large upgrade, whose every round pulls
    /// the whole release). The slow rows on the 50,000-file release get three rounds: with
    /// the large upgrade's, they are most of the 20 minutes `make bench` may take.
    fn rounds(&self, pace: Pace) -> (usize, usize) {
        match (self.quick, pace) {
            (false, Pace::Fast) => (40, 5),
            (false, Pace::Medium) => (10, 2),
            (false, Pace::Slow) => (3, 1),
            (false, Pace::Slowest) => (3, 0),
            (true, Pace::Fast) => (10, 2),
            (true, Pace::Medium) => (3, 1),
            (true, Pace::Slow) => (2, 1),
            (true, Pace::Slowest) => (2, 0),
        }
    }

    fn strata(&self, bus: &PrivateBus, args: &[&str]) -> Command {
        let mut c = Command::new(&self.strata);
        c.args(args).env("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
        c
    }
}

/// A sysroot with release "1" deployed from an HTTP remote, and stratad on a private bus. Every
/// release carries the kit's base RPMs (an rpmdb) and its package repository, for layering.
struct Site {
    fx: Fixture,
    bus: PrivateBus,
    daemon: Option<Stratad>,
    files: usize,
    pkgs: TestPackages,
    _rpms: tempfile::TempDir,
}

impl Site {
    async fn new(files: usize) -> Result<Site> {
        progress!("Building a sysroot with a {files}-file release ...");
        let rpms = tempfile::Builder::new()
            .prefix("strata-bench-rpms-")
            .tempdir()?;
        let pkgs = TestPackages::create(rpms.path())?;
        let fx = Fixture::new(&FixtureConfig {
            release: pkgs.release("1").extra_files(files),
            http: true,
            ..Default::default()
        })?;
        let bus = PrivateBus::start()?;
        let daemon = Some(Stratad::start(&bus, fx.sysroot()?.path(), &[]).await?);
        Ok(Site {
            fx,
            bus,
            daemon,
            files,
            pkgs,
            _rpms: rpms,
        })
    }

    fn sysroot(&self) -> &Path {
        self.fx
            .sysroot()
            .map(|s| s.path())
            .unwrap_or(Path::new("/"))
    }

    fn sysroot_arg(&self) -> String {
        format!("--sysroot={}", self.sysroot().display())
    }

    fn repo_arg(&self) -> String {
        format!("--repo={}", self.sysroot().join("ostree/repo").display())
    }

    fn daemon(&self) -> Result<Daemon> {
        let pid = self
            .daemon
            .as_ref()
            .and_then(Stratad::pid)
            .ok_or_else(|| anyhow!("stratad is not running"))?;
        Ok(Daemon { pid })
    }

    /// A release of this site's size whose files all differ from release 1's.
    fn release(&self, version: &str) -> OsRelease {
        self.pkgs
            .release(version)
            .extra_files(self.files)
            .extra_files_seed(format!("release-{version}"))
    }

    fn ostree(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ostree");
        c.args(args);
        c
    }

    fn ostree_status(&self) -> Command {
        self.ostree(&["admin", "status", &self.sysroot_arg()])
    }

    fn undeploy_first(&self) -> Result<()> {
        undeploy_first_unpruned(self.sysroot())
    }

    /// Stop this site's stratad and start another under callgrind, writing its profiles to
    /// `out` (`out.N` for the N-th `callgrind_control --dump`).
    async fn start_under_callgrind(&self, out: &Path) -> Result<Stratad> {
        let out = callgrind_out_arg(out);
        let wrapper: Vec<&str> = CALLGRIND.iter().copied().chain([out.as_str()]).collect();
        Stratad::start_wrapped(&self.bus, self.sysroot(), &[], &[], &wrapper).await
    }

    fn deploy_cmd(&self, checksum: &str, retain: bool) -> Command {
        let os = format!("--os={}", self.fx.sysroot_config().osname);
        let mut c = self.ostree(&["admin", "deploy", &self.sysroot_arg(), &os]);
        if retain {
            c.arg("--retain");
        }
        c.arg(checksum);
        c
    }
}

async fn run() -> Result<()> {
    let quick = std::env::var_os("STRATA_BENCH_QUICK").is_some();
    let strata = sibling("strata")?;
    let mut b = Bench {
        quick,
        strata,
        report: Report::default(),
    };
    // For working on one part: `STRATA_BENCH_ONLY=small|large`, `STRATA_BENCH_LARGE=FILES`.
    let only = std::env::var("STRATA_BENCH_ONLY").unwrap_or_default();
    let files = match std::env::var("STRATA_BENCH_LARGE") {
        Ok(n) => n
            .parse()
            .context("STRATA_BENCH_LARGE must be a number of files")?,
        Err(_) if quick => 5_000,
        Err(_) => 50_000,
    };
    if only != "large" {
        small(&mut b).await?;
    }
    if only != "small" {
        large(&mut b, files).await?;
    }
    b.report.notes = NOTES.iter().map(|n| n.to_string()).collect();
    b.report.minutes = STARTED.elapsed().as_secs_f64() / 60.0;
    progress!("Done.");
    b.report.print();
    b.report.write(quick)
}

/// The 5,000-file sysroot.
async fn small(b: &mut Bench) -> Result<()> {
    let mut site = Site::new(5_000).await?;
    let sysroot = site.fx.sysroot()?;
    site.fx.commit(&site.release("2"))?;
    sysroot.upgrade_cli()?;
    let daemon = site.daemon()?;
    let idle_start = daemon.memory()?;
    // What any process linking libostree holds before it does anything.
    let floor = measure::max_rss_of(Command::new("ostree").arg("--version"))?;
    let own_floor = measure::max_rss_of(Command::new(Stratad::binary()?).arg("--version"))?;

    let (runs, warmup) = b.rounds(Pace::Fast);
    progress!("status, warm ({runs} rounds) ...");
    let status_2 = status_row(b, &site, runs, warmup, "2 deployments")?;

    progress!("One property read with dbus-send, for scale ...");
    let (s, base) = interleaved(
        runs,
        warmup,
        &mut || {
            Measure::default().run(Command::new("dbus-send").args([
                &format!("--bus={}", site.bus.address()),
                "--print-reply",
                "--dest=org.projectatomic.rpmostree1",
                "/org/projectatomic/rpmostree1/Sysroot",
                "org.freedesktop.DBus.Properties.Get",
                "string:org.projectatomic.rpmostree1.Sysroot",
                "string:Booted",
            ]))
        },
        &mut || Measure::default().run(&mut site.ostree_status()),
    )?;
    b.report.rows.push(Row {
        name: "one property read with `dbus-send` (a C client's floor)".into(),
        baseline: "`ostree admin status`".into(),
        target: "for scale: what any bus client pays".into(),
        strata: s,
        base,
    });

    let (runs, warmup) = b.rounds(Pace::Fast);
    let runs = runs / 2 * 2; // an even number of swaps leaves the order as it was
    progress!("rollback ({runs} rounds) ...");
    let bench = sibling("strata-bench")?;
    let m = Measure::resources_with(&daemon);
    let (s, base) = interleaved(
        runs,
        warmup,
        &mut || m.run(&mut b.strata(&site.bus, &["rollback"])),
        &mut || {
            Measure::resources().run(Command::new(&bench).args([
                "write-deployments-rollback",
                &site.sysroot().display().to_string(),
            ]))
        },
    )?;
    b.report.rows.push(Row {
        name: format!("`strata rollback`, {} files", site.files),
        baseline: "libostree `write_deployments` (swapped), a tiny Rust program".into(),
        target: "≤ 1.05×".into(),
        strata: s,
        base,
    });

    progress!("upgrade --check with no update ({runs} rounds) ...");
    let config = site.fx.sysroot_config();
    let (s, base) = interleaved(
        runs,
        warmup,
        &mut || {
            Measure {
                ok_codes: &[77],
                ..Default::default()
            }
            .run(&mut b.strata(&site.bus, &["upgrade", "--check"]))
        },
        &mut || {
            Measure::default().run(&mut site.ostree(&[
                "remote",
                "summary",
                &site.repo_arg(),
                &config.remote,
            ]))
        },
    )?;
    b.report.rows.push(Row {
        name: "empty transaction round trip (`strata upgrade --check`, no update)".into(),
        baseline: "`ostree remote summary` of the same remote".into(),
        target: "report; under 20 ms".into(),
        strata: s,
        base,
    });

    let calls = if b.quick { 200 } else { 1_000 };
    progress!("{calls} status calls ...");
    let before_calls = daemon.memory()?;
    for _ in 0..calls {
        Measure::default().run(&mut b.strata(&site.bus, &["status", "--json"]))?;
    }
    let after_calls = daemon.memory()?;
    b.report.figures.push(Figure {
        name: "stratad RSS idle, after its first load of the sysroot".into(),
        value: format!(
            "{idle_start}; for scale, peak RSS of `ostree --version` {floor:.1} MiB, of \
             `stratad --version` {own_floor:.1} MiB"
        ),
        target: "≤ 15 MiB".into(),
        json: serde_json::json!({"start": idle_start, "ostree_version_mib": floor,
            "stratad_version_mib": own_floor}),
    });
    b.report.figures.push(Figure {
        name: format!(
            "stratad RSS before and after {calls} `strata status` calls (after the rows above)"
        ),
        value: format!("{before_calls} → {after_calls}"),
        target: "no growth across calls".into(),
        json: serde_json::json!({"before": before_calls, "after": after_calls, "calls": calls}),
    });

    let idle = Duration::from_secs(if b.quick { 5 } else { 60 });
    progress!("Idle for {} s ...", idle.as_secs());
    // Let the last calls' clean-up (clients leaving the bus, idle worker threads) finish.
    tokio::time::sleep(Duration::from_secs(if b.quick { 2 } else { 12 })).await;
    let (cpu0, wake0) = (daemon.cpu()?, daemon.switches()?);
    tokio::time::sleep(idle).await;
    let (cpu1, wake1) = (daemon.cpu()?, daemon.switches()?);
    let wakeups = measure::wakeups_between(&wake0, &wake1);
    let cpu_ms = (cpu1 - cpu0).as_secs_f64() * 1000.0;
    b.report.figures.push(Figure {
        name: format!("stratad idle for {} s: CPU time, wakeups", idle.as_secs()),
        value: format!("{cpu_ms:.0} ms CPU, {wakeups} context switches"),
        target: "no wakeups beyond what it needs".into(),
        json: serde_json::json!({"seconds": idle.as_secs(), "cpu_ms": cpu_ms,
            "context_switches": wakeups}),
    });

    progress!("deploy of a pulled release ...");
    site.undeploy_first()?;
    site.fx.commit(&site.release("3"))?;
    let head = sysroot.pull(&site.fx.sysroot_config().remote, site.fx.ref_())?;
    deploy_row(b, &site, &head)?;
    if !b.quick {
        progress!("deploy of a pulled release, instructions under callgrind ...");
        deploy_instructions(b, &mut site, &head).await?;
    }

    let retained = 9;
    progress!("status with {} deployments ...", retained + 1);
    for _ in 0..retained {
        cmd::run(&mut site.deploy_cmd(&head, true))?;
    }
    let status_10 = status_row(b, &site, runs, warmup, "10 deployments")?;
    b.report.figures.push(Figure {
        name: "growth: `strata status --json`, 10 deployments against 2".into(),
        value: format!(
            "{:.2}× (ostree admin status: {:.2}×)",
            status_10.0 / status_2.0,
            status_10.1 / status_2.1
        ),
        target: "report".into(),
        json: serde_json::json!({"strata": status_10.0 / status_2.0,
            "ostree": status_10.1 / status_2.1}),
    });

    // Bus activation: a bus of its own that starts stratad for the first call.
    site.daemon = None;
    first_status_row(b, &site).await?;
    Ok(())
}

/// `strata status --json` against `ostree admin status`; returns both medians.
fn status_row(
    b: &mut Bench,
    site: &Site,
    runs: usize,
    warmup: usize,
    what: &str,
) -> Result<(f64, f64)> {
    let (s, base) = interleaved(
        runs,
        warmup,
        &mut || Measure::default().run(&mut b.strata(&site.bus, &["status", "--json"])),
        &mut || Measure::default().run(&mut site.ostree_status()),
    )?;
    let medians = (s.wall_ms().median, base.wall_ms().median);
    b.report.rows.push(Row {
        name: format!(
            "`strata status --json`, warm daemon, {} files, {what}",
            site.files
        ),
        baseline: "`ostree admin status`".into(),
        target: "≤ 0.5×, under 5 ms median".into(),
        strata: s,
        base,
    });
    Ok(medians)
}

/// `strata deploy REV` against `ostree admin deploy REV` of `checksum`, already pulled; each
/// deployment is taken away again after its round.
fn deploy_row(b: &mut Bench, site: &Site, checksum: &str) -> Result<()> {
    let daemon = site.daemon()?;
    let (runs, warmup) = b.rounds(if site.files > 10_000 {
        Pace::Slow
    } else {
        Pace::Medium
    });
    let (s, base) = interleaved(
        runs,
        warmup,
        &mut || {
            let s = Measure::resources_with(&daemon)
                .run(&mut b.strata(&site.bus, &["deploy", checksum]))?;
            site.undeploy_first()?;
            Ok(s)
        },
        &mut || {
            let s = Measure::resources().run(&mut site.deploy_cmd(checksum, false))?;
            site.undeploy_first()?;
            Ok(s)
        },
    )?;
    b.report.rows.push(Row {
        name: format!(
            "`strata deploy REV` of a pulled release, {} files",
            site.files
        ),
        baseline: "`ostree admin deploy` of the same commit".into(),
        target: "≤ 1.05× wall and CPU".into(),
        strata: s,
        base,
    });
    Ok(())
}

/// `strata deploy REV` against `ostree admin deploy REV` in instructions executed, counted by
/// callgrind: a measure of the work done that a loaded machine does not blur (user space
/// only; both make the same system calls). Strata's count is the CLI's plus stratad's over the
/// command: for this figure stratad runs under callgrind, its counters zeroed before the
/// command and dumped after it. Where valgrind cannot run, the figure says why and the bench
/// goes on.
async fn deploy_instructions(b: &mut Bench, site: &mut Site, checksum: &str) -> Result<()> {
    let name = format!(
        "instructions of `strata deploy REV` (CLI + stratad) and of `ostree admin deploy`, {} \
         files (callgrind)",
        site.files
    );
    let target = "the work behind the deploy target, without the machine's noise".to_string();
    let dir = tempfile::tempdir()?;
    let daemon_out = dir.path().join("stratad");
    site.daemon = None;
    let counted = match site.start_under_callgrind(&daemon_out).await {
        Ok(traced) => {
            let counted = count_deploys(b, site, &traced, dir.path(), checksum).await;
            let stopped = stop(traced).await;
            counted.and_then(|c| stopped.map(|()| c))
        }
        Err(e) => Err(e),
    };
    site.daemon = Some(Stratad::start(&site.bus, site.sysroot(), &[]).await?);
    let figure = match counted {
        Ok(c) => Figure {
            name,
            value: format!(
                "{:.1} M ({:.1} M CLI + {:.1} M stratad) against {:.1} M: {:.3}× (median of {} \
                 rounds)",
                c.strata as f64 / 1e6,
                c.cli as f64 / 1e6,
                c.daemon as f64 / 1e6,
                c.ostree as f64 / 1e6,
                c.strata as f64 / c.ostree as f64,
                c.rounds.len()
            ),
            target,
            json: serde_json::json!({"rounds_strata_cli_daemon_ostree": c.rounds,
                "ratio": c.strata as f64 / c.ostree as f64}),
        },
        Err(e) => {
            progress!("Instructions not counted: {e:#}");
            Figure {
                name,
                value: format!("not counted: {e:#}"),
                target,
                json: serde_json::json!({"error": format!("{e:#}")}),
            }
        }
    };
    b.report.figures.push(figure);
    Ok(())
}

/// The median round of [`count_deploys`].
struct Instructions {
    strata: u64,
    cli: u64,
    daemon: u64,
    ostree: u64,
    /// Every round: (CLI, stratad, ostree).
    rounds: Vec<(u64, u64, u64)>,
}

async fn count_deploys(
    b: &Bench,
    site: &Site,
    traced: &Stratad,
    dir: &Path,
    checksum: &str,
) -> Result<Instructions> {
    let pid = traced
        .pid()
        .ok_or_else(|| anyhow!("stratad under callgrind is not running"))?
        .to_string();
    let callgrind = |out: &Path| {
        let mut c = Command::new(CALLGRIND[0]);
        c.args(&CALLGRIND[1..]).arg(callgrind_out_arg(out));
        c
    };
    let mut rounds = Vec::new();
    for round in 1..=3 {
        // The reload that follows the last round's undeploy is not part of this deploy: let
        // stratad see the change and reload before its counters are zeroed.
        tokio::time::sleep(Duration::from_secs(1)).await;
        cmd::run(&mut b.strata(&site.bus, &["status"]))?;
        cmd::run(Command::new("callgrind_control").args(["--zero", &pid]))?;
        let cli_out = dir.join(format!("strata.{round}"));
        let mut cli = callgrind(&cli_out);
        cli.arg(&b.strata)
            .args(["deploy", checksum])
            .env("DBUS_SYSTEM_BUS_ADDRESS", site.bus.address());
        cmd::run(&mut cli)?;
        // The reply to the command comes before the transaction's last clean-up.
        tokio::time::sleep(Duration::from_secs(1)).await;
        cmd::run(Command::new("callgrind_control").args(["--dump", &pid]))?;
        // callgrind numbers its dumps from 1, one per `--dump`.
        let dump = dir.join(format!("stratad.{round}"));
        let (cli, daemon) = (callgrind_total(&cli_out)?, callgrind_total(&dump)?);
        site.undeploy_first()?;
        let base_out = dir.join(format!("ostree.{round}"));
        let deploy = site.deploy_cmd(checksum, false);
        cmd::run(
            callgrind(&base_out)
                .arg(deploy.get_program())
                .args(deploy.get_args()),
        )?;
        site.undeploy_first()?;
        rounds.push((cli, daemon, callgrind_total(&base_out)?));
    }
    let mut by_total = rounds.clone();
    by_total.sort_by_key(|(c, d, _)| c + d);
    let (cli, daemon, _) = by_total[by_total.len() / 2];
    let mut ostree: Vec<u64> = rounds.iter().map(|r| r.2).collect();
    ostree.sort();
    Ok(Instructions {
        strata: cli + daemon,
        cli,
        daemon,
        ostree: ostree[ostree.len() / 2],
        rounds,
    })
}

/// The instruction count of a callgrind profile (its `summary:` line).
fn callgrind_total(path: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Reading the callgrind profile {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow!("No `summary:` line in {}", path.display()))
}

/// The first `strata status` on a bus where stratad is not running: activation, start, first
/// load of the sysroot, and the status itself.
async fn first_status_row(b: &mut Bench, site: &Site) -> Result<()> {
    let stratad = Stratad::binary()?;
    let state = tempfile::tempdir()?;
    let (run_dir, config) = (
        state.path().join("run"),
        state.path().join("rpm-ostreed.conf"),
    );
    let sysroot = site.sysroot().to_path_buf();
    let bus = PrivateBus::start_activating(strata_api::names::BUS_NAME, |address| {
        // The environment stratad.service gives it (a systemd host's activation).
        format!(
            "/usr/bin/env G_SLICE=always-malloc {} --bus-address {address} --sysroot {} \
             --no-polkit --run-dir {} --config {} --idle-exit-timeout 0",
            stratad.display(),
            sysroot.display(),
            run_dir.display(),
            config.display()
        )
    })?;
    let conn = bus.connect().await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let (runs, warmup) = b.rounds(Pace::Medium);
    progress!("status with bus activation ({runs} rounds) ...");
    let mut strata = Series::default();
    let mut base = Series::default();
    for round in 0..runs + warmup {
        let s = Measure::default().run(&mut b.strata(&bus, &["status", "--json"]))?;
        stop_activated(&dbus).await?;
        let o = Measure::default().run(&mut site.ostree_status())?;
        if round >= warmup {
            strata.0.push(s);
            base.0.push(o);
        }
    }
    b.report.rows.push(Row {
        name: format!(
            "`strata status --json`, first call (bus activation, daemon start), {} files",
            site.files
        ),
        baseline: "`ostree admin status`".into(),
        target: "≤ 3×".into(),
        strata,
        base,
    });
    Ok(())
}

/// Stop the bus-activated stratad and wait until its name is gone.
async fn stop_activated(dbus: &zbus::fdo::DBusProxy<'_>) -> Result<()> {
    let name = zbus::names::BusName::try_from(strata_api::names::BUS_NAME)?;
    let pid = dbus
        .get_connection_unix_process_id(name.clone())
        .await
        .context("Finding the activated stratad")?;
    cmd::run(Command::new("kill").arg(pid.to_string()))?;
    for _ in 0..500 {
        if !dbus.name_has_owner(name.clone()).await? {
            // The name goes at exit; give the process a moment to be reaped by the bus.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("The activated stratad (pid {pid}) did not exit")
}

/// The large sysroot: status, upgrade with its pull over HTTP, deploy, and stratad's memory
/// during the upgrade.
async fn large(b: &mut Bench, files: usize) -> Result<()> {
    let site = Site::new(files).await?;
    let sysroot = site.fx.sysroot()?;
    let (runs, warmup) = b.rounds(Pace::Fast);
    progress!("status, warm, {files} files ...");
    status_row(b, &site, runs / 2, warmup, "1 deployment")?;

    let first = sysroot.deployments()?[0].checksum.clone();
    progress!("Committing a second {files}-file release ...");
    let next = site.fx.commit(&site.release("2"))?;
    let daemon = site.daemon()?;
    let refspec = site.fx.sysroot_config().refspec();
    // Before each round: back to release 1 with release 2's objects gone, so that each round
    // pulls all of them.
    let reset = || -> Result<()> {
        if sysroot.deployments()?[0].checksum != first {
            site.undeploy_first()?;
        }
        if cmd::ostree(["show", &site.repo_arg(), &next]).is_ok() {
            cmd::ostree(["reset", &site.repo_arg(), &refspec, &first])?;
            cmd::ostree(["prune", &site.repo_arg(), "--refs-only"])?;
            if cmd::ostree(["show", &site.repo_arg(), &next]).is_ok() {
                bail!("Release 2 ({next}) is still in the repo after the reset");
            }
        }
        Ok(())
    };
    let (runs, warmup) = b.rounds(Pace::Slowest);
    progress!("upgrade with the pull over HTTP, {files} files ({runs} rounds) ...");
    let before = daemon.memory()?;
    let mut peaks = Vec::new();
    let (s, base) = interleaved(
        runs,
        warmup,
        &mut || {
            reset()?;
            daemon.reset_peak()?;
            let s = Measure::resources_with(&daemon).run(&mut b.strata(&site.bus, &["upgrade"]))?;
            peaks.push(daemon.peak_mib()?);
            Ok(s)
        },
        &mut || {
            reset()?;
            let m = Measure::resources();
            let (remote, ref_) = refspec.split_once(':').unwrap_or(("", &refspec));
            let pull = m.run(&mut site.ostree(&["pull", &site.repo_arg(), remote, ref_]))?;
            let deploy = m.run(&mut site.deploy_cmd(&refspec, false))?;
            Ok(combined(pull, deploy))
        },
    )?;
    let idle_before = daemon.memory()?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = daemon.memory()?;
    let peak = measure::Spread::of(peaks.iter().copied());
    let base_peak = base.max_rss_mib().unwrap_or(f64::NAN);
    b.report.figures.push(Figure {
        name: format!(
            "stratad peak RSS during a {files}-file upgrade; RSS 10 s after the last one"
        ),
        value: format!(
            "peak {} MiB ({:.2}× the baseline's {base_peak:.1} MiB); before the first \
             round {before}, at the end of the last {idle_before}, 10 s later {after}",
            peak.map_or_else(|| "–".into(), |p| p.text(1)),
            peak.map_or(f64::NAN, |p| p.max) / base_peak,
        ),
        target: "peak ≤ 1.2× `ostree pull` / `ostree admin deploy`'s; idle + 5 MiB after".into(),
        json: serde_json::json!({"peaks_mib": peaks, "baseline_peak_mib": base_peak,
            "before": before, "end": idle_before, "after": after}),
    });
    b.report.rows.push(Row {
        name: format!("`strata upgrade` with the pull over loopback HTTP, {files} files"),
        baseline: "`ostree pull` + `ostree admin deploy`".into(),
        target: "≤ 1.0×".into(),
        strata: s,
        base,
    });

    // The last round left release 2 pulled and deployed: deploy it again and again.
    progress!("deploy of a pulled release, {files} files ...");
    site.undeploy_first()?;
    deploy_row(b, &site, &next)?;
    progress!("layering one package, {files} files ...");
    layering_row(b, &site)?;
    progress!("layering an 11th package, {files} files ...");
    eleventh_package_row(b, &site)?;
    Ok(())
}

/// `strata install tool` (one small package without scriptlets, already in the package cache
/// after the warm-up) against what layering needs at least from the ostree CLI: a hard-link
/// checkout of the base and `ostree admin deploy` of a commit. Each new deployment is taken
/// away after its round, so every round assembles again. Also stratad's peak memory.
fn layering_row(b: &mut Bench, site: &Site) -> Result<()> {
    // Built before the first layering transaction: stratad's metadata cache then knows them.
    site.pkgs.repo.add_all(&small_packages())?;
    let daemon = site.daemon()?;
    let base = site.fx.sysroot()?.deployments()?[0].checksum.clone();
    let scratch = site.sysroot().join("ostree/repo/tmp/bench-checkout");
    let (runs, warmup) = b.rounds(Pace::Slow);
    let mut peaks = Vec::new();
    let (s, baseline) = interleaved(
        runs,
        warmup,
        &mut || {
            daemon.reset_peak()?;
            let s = Measure::resources_with(&daemon)
                .run(&mut b.strata(&site.bus, &["install", "tool"]))?;
            peaks.push(daemon.peak_mib()?);
            site.undeploy_first()?;
            Ok(s)
        },
        &mut || {
            let m = Measure::resources();
            let checkout = m.run(&mut site.ostree(&[
                "checkout",
                &site.repo_arg(),
                "-H",
                &base,
                &scratch.to_string_lossy(),
            ]))?;
            std::fs::remove_dir_all(&scratch)?;
            let deploy = m.run(&mut site.deploy_cmd(&base, true))?;
            site.undeploy_first()?;
            Ok(combined(checkout, deploy))
        },
    )?;
    let peak = measure::Spread::of(peaks.iter().copied());
    b.report.figures.push(Figure {
        name: format!(
            "stratad peak RSS while layering one package, {} files",
            site.files
        ),
        value: format!("{} MiB", peak.map_or_else(|| "–".into(), |p| p.text(1))),
        target: "≤ 150 MiB".into(),
        json: serde_json::json!({"peaks_mib": peaks}),
    });
    b.report.rows.push(Row {
        name: format!(
            "`strata install` of one small package, {} files",
            site.files
        ),
        baseline: "`ostree checkout -H` of the base + `ostree admin deploy`".into(),
        target: "≤ 1.5×".into(),
        strata: s,
        base: baseline,
    });
    Ok(())
}

/// `bench-01` … `bench-11`: one small file each, no scriptlets.
fn small_packages() -> Vec<RpmSpec> {
    (1..=11)
        .map(|i| {
            RpmSpec::new(format!("bench-{i:02}"), "1.0")
                .file(format!("usr/share/bench/{i:02}"), format!("{i}\n"))
        })
        .collect()
}

/// Incremental layering: `strata install` of an 11th package on a deployment layering ten,
/// against `strata install` of a first package on the plain base, in the same run. Each round's
/// new deployment is taken away afterwards; the base is deployed again (not measured) for the
/// first-package rounds.
fn eleventh_package_row(b: &mut Bench, site: &Site) -> Result<()> {
    let sysroot = site.fx.sysroot()?;
    let base = sysroot.deployments()?[0].checksum.clone();
    let ten: Vec<String> = (1..=10).map(|i| format!("bench-{i:02}")).collect();
    let mut install_ten = vec!["install"];
    install_ten.extend(ten.iter().map(String::as_str));
    // The plain base's origin, to deploy it again with (`ostree admin deploy` of a checksum
    // alone would pin the origin to it).
    let origin = site.sysroot().join("ostree/repo/tmp/bench-base.origin");
    let deploy_dir = sysroot.deploy_dir(0)?;
    std::fs::copy(format!("{}.origin", deploy_dir.display()), &origin)?;
    cmd::run(&mut b.strata(&site.bus, &install_ten))?;
    let ten_layered = sysroot.deployments()?[0].checksum.clone();
    // Pinned, so that the deployments each round writes never push them out.
    for i in ["0", "1"] {
        cmd::ostree(["admin", "pin", &site.sysroot_arg(), i])?;
    }
    // After each round: the deployments it added are taken away.
    let back_to_ten = || -> Result<()> {
        loop {
            let deployments = sysroot.deployments()?;
            if !deployments.iter().any(|d| d.checksum == ten_layered) {
                bail!("The deployment layering ten packages ({ten_layered}) is gone");
            }
            if deployments[0].checksum == ten_layered {
                return Ok(());
            }
            site.undeploy_first()?;
        }
    };
    let (runs, warmup) = b.rounds(Pace::Slow);
    let (s, first) = interleaved(
        runs,
        warmup,
        &mut || {
            let s = Measure::resources_with(&site.daemon()?)
                .run(&mut b.strata(&site.bus, &["install", "bench-11"]))?;
            back_to_ten()?;
            Ok(s)
        },
        &mut || {
            let mut deploy = site.deploy_cmd(&base, true);
            deploy.arg(format!("--origin-file={}", origin.display()));
            cmd::run(&mut deploy)?;
            let s = Measure::resources_with(&site.daemon()?)
                .run(&mut b.strata(&site.bus, &["install", "bench-01"]))?;
            back_to_ten()?;
            Ok(s)
        },
    )?;
    // Back to the plain base on top.
    for i in ["0", "1"] {
        cmd::ostree(["admin", "pin", "--unpin", &site.sysroot_arg(), i])?;
    }
    site.undeploy_first()?;
    if sysroot.deployments()?[0].checksum != base {
        bail!("The bench's deployments are not what it left: expected {base} on top");
    }
    b.report.rows.push(Row {
        name: format!(
            "`strata install` of an 11th package on ten layered ones, {} files",
            site.files
        ),
        baseline: "`strata install` of the first package on the plain base".into(),
        target: "≤ 1.2×".into(),
        strata: s,
        base: first,
    });
    Ok(())
}

/// Two commands run one after the other, as one sample.
fn combined(a: Sample, b: Sample) -> Sample {
    Sample {
        wall: a.wall + b.wall,
        cpu: a.cpu.zip(b.cpu).map(|(x, y)| x + y),
        max_rss_kib: a.max_rss_kib.max(b.max_rss_kib),
    }
}

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("Finding the bench executable")?;
    let bin = exe.with_file_name(name);
    if bin.exists() {
        Ok(bin)
    } else {
        Err(anyhow!("{} is missing: run `make bench`", bin.display()))
    }
}
