//! The results: a table on stdout, `target/bench/results.json` and `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::measure::{Series, Spread};

/// A Strata command and its baseline, run alternately.
pub struct Row {
    pub name: String,
    pub baseline: String,
    pub target: String,
    pub strata: Series,
    pub base: Series,
}

impl Row {
    pub fn ratio(&self) -> f64 {
        self.strata.wall_ms().median / self.base.wall_ms().median
    }

    pub fn cpu_ratio(&self) -> Option<f64> {
        Some(self.strata.cpu_ms()?.median / self.base.cpu_ms()?.median)
    }
}

/// A single figure (memory, idle CPU, growth), with what it is held to.
pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub json: serde_json::Value,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    /// How long the fixtures and measurements took (the release build not included).
    pub minutes: f64,
}

fn ms(s: Option<Spread>, decimals: usize) -> String {
    s.map_or_else(|| "–".into(), |s| s.text(decimals))
}

fn decimals(s: &Series) -> usize {
    if s.wall_ms().median >= 100.0 {
        0
    } else {
        2
    }
}

impl Report {
    pub fn print(&self) {
        println!(
            "{:<58} {:>24} {:>24} {:>7} {:>7}",
            "measurement", "strata ms", "baseline ms", "ratio", "cpu"
        );
        for r in &self.rows {
            println!(
                "{:<58} {:>24} {:>24} {:>6.2}x {:>7}",
                r.name.replace('`', ""),
                r.strata.wall_ms().text(decimals(&r.strata)),
                r.base.wall_ms().text(decimals(&r.base)),
                r.ratio(),
                r.cpu_ratio()
                    .map_or_else(|| "–".into(), |c| format!("{c:.2}x"))
            );
        }
        for f in &self.figures {
            println!("{:<58} {}", f.name.replace('`', ""), f.value);
        }
    }

    pub fn write(&self, quick: bool) -> Result<()> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest.parent().unwrap_or(manifest).to_path_buf();
        let date = today();
        let machine = machine();
        let json = serde_json::json!({
            "date": date,
            "machine": machine,
            "quick": quick,
            "minutes": self.minutes,
            "rows": self.rows.iter().map(|r| serde_json::json!({
                "measurement": r.name,
                "baseline": r.baseline,
                "target": r.target,
                "runs": r.strata.0.len(),
                "strata_wall_ms": r.strata.wall_ms().json(),
                "baseline_wall_ms": r.base.wall_ms().json(),
                "ratio": r.ratio(),
                "strata_cpu_ms": r.strata.cpu_ms().map(|s| s.json()),
                "baseline_cpu_ms": r.base.cpu_ms().map(|s| s.json()),
                "cpu_ratio": r.cpu_ratio(),
            })).collect::<Vec<_>>(),
            "figures": self.figures.iter().map(|f| serde_json::json!({
                "measurement": f.name,
                "value": f.value,
                "target": f.target,
                "data": f.json,
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
        let mut md =
            format!(
            "# Benchmarks\n\nWritten by `make bench` (`tests/src/bin/strata-bench/`) on {date}, \
             {machine}{}, in {:.1} minutes (fixtures and measurements; the release build \
             not counted). Each Strata command ran alternately with its baseline on the same \
             sysroot, in the same run: times are wall clock in milliseconds, median \
             (min–max), and the ratios are of the medians. CPU is user + system time of the \
             command, plus stratad's for Strata (where the work happens), from GNU `time` and \
             `/proc`. Only the ratios compare across machines.\n\n\
             | measurement | baseline | Strata ms | baseline ms | ratio | Strata CPU ms | \
             baseline CPU ms | CPU ratio | target |\n|---|---|---|---|---|---|---|---|---|\n",
            if quick { " (quick run: fewer rounds, no 50k-file release)" } else { "" },
            self.minutes
        );
        for r in &self.rows {
            let _ = writeln!(
                md,
                "| {} ({} runs) | {} | {} | {} | {:.2}× | {} | {} | {} | {} |",
                r.name,
                r.strata.0.len(),
                r.baseline,
                r.strata.wall_ms().text(decimals(&r.strata)),
                r.base.wall_ms().text(decimals(&r.base)),
                r.ratio(),
                ms(r.strata.cpu_ms(), 0),
                ms(r.base.cpu_ms(), 0),
                r.cpu_ratio()
                    .map_or_else(|| "–".into(), |c| format!("{c:.2}×")),
                r.target
            );
        }
        md.push_str("\n| measurement | value | target |\n|---|---|---|\n");
        for f in &self.figures {
            let _ = writeln!(md, "| {} | {} | {} |", f.name, f.value, f.target);
        }
        if !self.notes.is_empty() {
            md.push('\n');
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        std::fs::write(root.join("docs/benchmarks.md"), md)?;
        eprintln!(
            "Wrote {} and docs/benchmarks.md",
            out.join("results.json").display()
        );
        Ok(())
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

/// Today's date, UTC (`date`, which every Debian has).
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
