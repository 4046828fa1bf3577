//! `make bench`: Strata side by side with the ostree CLI, each measurement interleaved with its
//! baseline on the same sysroot in the same run (the machines are shared and noisy: a ratio
//! measured this way holds, an absolute time does not). Prints a table of median, min and max,
//! and writes `target/bench/results.json` and `docs/benchmarks.md`.
//!
//! This first slice measures `status`; the rest of the table (deploy, upgrade, rollback, memory)
//! is to come. `STRATA_BENCH_QUICK=1` runs fewer repetitions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use strata_tests::{Fixture, FixtureConfig, OsRelease, PrivateBus, Stratad};

fn main() {
    strata_tests::run_main(run());
}

/// Median, min and max of a series, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(samples: &[Duration]) -> Spread {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        Spread {
            median: ms[ms.len() / 2],
            min: ms[0],
            max: ms[ms.len() - 1],
        }
    }

    /// `median (min–max)`, milliseconds with two decimals.
    fn text(&self) -> String {
        format!("{:.2} ({:.2}–{:.2})", self.median, self.min, self.max)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"median_ms": self.median, "min_ms": self.min, "max_ms": self.max})
    }
}

/// One row: a Strata command and its baseline, run alternately.
struct Row {
    name: String,
    baseline: String,
    target: String,
    strata: Spread,
    base: Spread,
    runs: usize,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.strata.median / self.base.median
    }
}

/// Run `cmd` to completion, failing loudly (a benchmark of a failing command means nothing).
fn timed(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("Running {cmd:?}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(anyhow!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(took)
}

/// `warmup` unmeasured rounds, then `runs` rounds of (strata, baseline) in turn.
fn interleaved(
    runs: usize,
    warmup: usize,
    mut strata: impl FnMut() -> Command,
    mut base: impl FnMut() -> Command,
) -> Result<(Spread, Spread)> {
    for _ in 0..warmup {
        timed(&mut strata())?;
        timed(&mut base())?;
    }
    let (mut s, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        s.push(timed(&mut strata())?);
        b.push(timed(&mut base())?);
    }
    Ok((Spread::of(&s), Spread::of(&b)))
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

/// The machine, for the record (ratios are comparable across machines, times are not).
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

async fn run() -> Result<()> {
    let quick = std::env::var_os("STRATA_BENCH_QUICK").is_some();
    let (runs, warmup) = if quick { (10, 2) } else { (40, 5) };
    let strata = sibling("strata")?;
    let files = 5000;

    eprintln!("Building a sysroot with a {files}-file release ...");
    let fx = Fixture::new(&FixtureConfig {
        release: OsRelease::new("1").extra_files(files),
        ..Default::default()
    })?;
    let sysroot = fx.sysroot()?.path().to_path_buf();
    let bus = PrivateBus::start()?;
    let _daemon = Stratad::start(&bus, &sysroot, &[]).await?;

    let strata_cmd = |args: &'static [&'static str]| {
        let strata = strata.clone();
        let bus = bus.address().to_string();
        move || {
            let mut c = Command::new(&strata);
            c.args(args).env("DBUS_SYSTEM_BUS_ADDRESS", &bus);
            c
        }
    };
    let ostree_status = |sysroot: &Path| {
        let arg = format!("--sysroot={}", sysroot.display());
        move || {
            let mut c = Command::new("ostree");
            c.args(["admin", "status", &arg]);
            c
        }
    };

    eprintln!("Measuring status ({runs} rounds, interleaved) ...");
    let (s, b) = interleaved(
        runs,
        warmup,
        strata_cmd(&["status", "--json"]),
        ostree_status(&sysroot),
    )?;
    let rows = vec![Row {
        name: format!("`strata status --json`, warm daemon, {files} files"),
        baseline: "`ostree admin status`".into(),
        target: "≤ 0.5×, under 5 ms median".into(),
        strata: s,
        base: b,
        runs,
    }];

    print_table(&rows);
    write_results(&rows, quick)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<48} {:>26} {:>26} {:>7}",
        "measurement", "strata median (min-max) ms", "baseline median (min-max)", "ratio"
    );
    for r in rows {
        println!(
            "{:<48} {:>26} {:>26} {:>6.2}x",
            r.name.replace('`', ""),
            r.strata.text(),
            r.base.text(),
            r.ratio()
        );
    }
}

fn write_results(rows: &[Row], quick: bool) -> Result<()> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest).to_path_buf();
    let date = today();
    let machine = machine();
    let json = serde_json::json!({
        "date": date,
        "machine": machine,
        "quick": quick,
        "rows": rows.iter().map(|r| serde_json::json!({
            "measurement": r.name,
            "baseline": r.baseline,
            "target": r.target,
            "runs": r.runs,
            "strata": r.strata.json(),
            "baseline_time": r.base.json(),
            "ratio": r.ratio(),
        })).collect::<Vec<_>>(),
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out = target.join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    let mut md = format!(
        "# Benchmarks\n\nWritten by `make bench` (`tests/src/bin/strata-bench.rs`) on {date}, \
         {machine}{}. Each Strata command ran alternately with its baseline on the same \
         sysroot; times are wall clock in milliseconds (median, min–max), and the ratio is of \
         the medians. Only the ratios compare across machines.\n\n\
         | measurement | baseline | Strata | baseline | ratio | target |\n|---|---|---|---|---|---|\n",
        if quick { " (quick run)" } else { "" }
    );
    for r in rows {
        md.push_str(&format!(
            "| {} ({} runs) | {} | {} | {} | {:.2}× | {} |\n",
            r.name,
            r.runs,
            r.baseline,
            r.strata.text(),
            r.base.text(),
            r.ratio(),
            r.target
        ));
    }
    md.push_str(
        "\nNot measured yet (issue 10): the first `status` with daemon start, deploy of a pulled \
         release at 5k and 50k files, upgrade over HTTP, rollback against libostree's \
         `write_deployments`, the empty transaction round trip, the daemon's memory, and \
         layering.\n",
    );
    std::fs::write(root.join("docs/benchmarks.md"), md)?;
    eprintln!(
        "Wrote {} and docs/benchmarks.md",
        out.join("results.json").display()
    );
    Ok(())
}

/// Today's date, UTC (`date`, which every Debian has).
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
