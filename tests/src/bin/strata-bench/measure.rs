//! Running one command and measuring it: wall time, CPU time and peak memory (GNU `time` for
//! the command itself, `/proc` for stratad, which does a transaction's work), and series of
//! such measurements reduced to median, min and max.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

/// One run of a command.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub wall: Duration,
    /// User + system time of the command, plus stratad's when the command is a Strata one.
    /// `None` when not measured (GNU `time` adds a process to the wall time of fast rows).
    pub cpu: Option<Duration>,
    /// Peak resident memory of the command, in KiB (`None` when not measured).
    pub max_rss_kib: Option<u64>,
}

/// How to run a measured command.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measure<'a> {
    /// Also measure CPU and peak memory (under GNU `time`).
    pub resources: bool,
    /// Add this process's CPU time over the run to the command's (stratad).
    pub daemon: Option<&'a Daemon>,
    /// Exit codes that count as success besides 0 (77: "no change").
    pub ok_codes: &'a [i32],
}

impl<'a> Measure<'a> {
    /// Measure CPU and peak memory too.
    pub fn resources() -> Self {
        Measure {
            resources: true,
            ..Default::default()
        }
    }

    /// Measure CPU (the command's plus `daemon`'s) and peak memory too: a Strata command.
    pub fn resources_with(daemon: &'a Daemon) -> Self {
        Measure {
            resources: true,
            daemon: Some(daemon),
            ..Default::default()
        }
    }

    /// Run `cmd` to completion, failing loudly (a benchmark of a failing command means
    /// nothing).
    pub fn run(&self, cmd: &mut Command) -> Result<Sample> {
        let report = tempfile::NamedTempFile::new()?;
        let mut cmd = if self.resources {
            let mut timed = Command::new("time");
            timed
                .arg("-f")
                .arg("%U %S %M")
                .arg("-o")
                .arg(report.path())
                .arg(cmd.get_program())
                .args(cmd.get_args());
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => timed.env(k, v),
                    None => timed.env_remove(k),
                };
            }
            timed
        } else {
            std::mem::replace(cmd, Command::new("true"))
        };
        let daemon_before = self.daemon.map(Daemon::cpu).transpose()?;
        let start = Instant::now();
        let out = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("Running {cmd:?} (apt-get install time)"))?;
        let wall = start.elapsed();
        let code = out.status.code().unwrap_or(-1);
        if code != 0 && !self.ok_codes.contains(&code) {
            return Err(anyhow!(
                "{cmd:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut sample = Sample {
            wall,
            ..Default::default()
        };
        if self.resources {
            let text = std::fs::read_to_string(report.path())?;
            // GNU time prints "Command exited with non-zero status N" first for an exit 77.
            let line = text.lines().last().unwrap_or_default();
            let f: Vec<&str> = line.split_whitespace().collect();
            let secs = |s: &str| s.parse::<f64>().map(Duration::from_secs_f64);
            let [user, sys, rss] = f[..] else {
                return Err(anyhow!("Unexpected GNU time output {text:?}"));
            };
            let mut cpu = secs(user)? + secs(sys)?;
            if let (Some(d), Some(before)) = (self.daemon, daemon_before) {
                cpu += d.cpu()?.saturating_sub(before);
            }
            sample.cpu = Some(cpu);
            sample.max_rss_kib = Some(rss.parse()?);
        }
        Ok(sample)
    }
}

/// Median, min and max of a series.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Spread {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        })
    }

    /// `median (min–max)` with `decimals`.
    pub fn text(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"median": self.median, "min": self.min, "max": self.max})
    }
}

/// A series of samples of one command.
#[derive(Debug, Clone, Default)]
pub struct Series(pub Vec<Sample>);

impl Series {
    pub fn wall_ms(&self) -> Spread {
        Spread::of(self.0.iter().map(|s| s.wall.as_secs_f64() * 1000.0)).unwrap_or(Spread {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        })
    }

    pub fn cpu_ms(&self) -> Option<Spread> {
        let v: Option<Vec<f64>> = self
            .0
            .iter()
            .map(|s| s.cpu.map(|c| c.as_secs_f64() * 1000.0))
            .collect();
        v.and_then(Spread::of)
    }

    pub fn max_rss_mib(&self) -> Option<f64> {
        self.0
            .iter()
            .filter_map(|s| s.max_rss_kib)
            .max()
            .map(|k| k as f64 / 1024.0)
    }
}

/// `warmup` unmeasured rounds, then `runs` rounds of (strata, baseline) in turn. Each closure
/// undoes what its command did, unmeasured, when the next round needs it.
pub fn interleaved(
    runs: usize,
    warmup: usize,
    strata: &mut dyn FnMut() -> Result<Sample>,
    base: &mut dyn FnMut() -> Result<Sample>,
) -> Result<(Series, Series)> {
    for _ in 0..warmup {
        strata()?;
        base()?;
    }
    let (mut s, mut b) = (Series::default(), Series::default());
    for _ in 0..runs {
        s.0.push(strata()?);
        b.0.push(base()?);
    }
    Ok((s, b))
}

/// stratad, seen through `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    pub pid: u32,
}

impl Daemon {
    fn proc(&self, file: &str) -> Result<String> {
        let path = format!("/proc/{}/{file}", self.pid);
        std::fs::read_to_string(&path).with_context(|| format!("Reading {path}"))
    }

    /// User + system CPU time of all its threads so far.
    pub fn cpu(&self) -> Result<Duration> {
        let stat = self.proc("stat")?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("Unexpected /proc stat {stat:?}"))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
        let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
        let hz = clock_ticks()?;
        Ok(Duration::from_secs_f64(ticks as f64 / hz as f64))
    }

    /// A `/proc/PID/status` value in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, key: &str) -> Result<u64> {
        let status = self.proc("status")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| anyhow!("No {key} in /proc/{}/status", self.pid))
    }

    pub fn rss_mib(&self) -> Result<f64> {
        Ok(self.status_kib("VmRSS")? as f64 / 1024.0)
    }

    /// The part of the RSS that is the daemon's own (heap, stacks), not pages of the binary and
    /// the shared libraries.
    pub fn anon_mib(&self) -> Result<f64> {
        Ok(self.status_kib("RssAnon")? as f64 / 1024.0)
    }

    /// `RSS MiB (anonymous MiB)`.
    pub fn memory(&self) -> Result<String> {
        Ok(format!(
            "{:.1} MiB ({:.1} anonymous)",
            self.rss_mib()?,
            self.anon_mib()?
        ))
    }

    pub fn peak_mib(&self) -> Result<f64> {
        Ok(self.status_kib("VmHWM")? as f64 / 1024.0)
    }

    /// Start a new peak-memory measurement (`VmHWM` back to the current RSS).
    pub fn reset_peak(&self) -> Result<()> {
        let path = format!("/proc/{}/clear_refs", self.pid);
        std::fs::write(&path, "5").with_context(|| format!("Writing {path}"))
    }

    /// Context switches of each of its threads so far (each is a wakeup), by thread id.
    pub fn switches(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        let mut by_thread = std::collections::BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let task = task?;
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue; // the thread just exited
            };
            let mut n = 0;
            for l in status.lines() {
                if let Some(v) = l
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    n += v.trim().parse::<u64>()?;
                }
            }
            by_thread.insert(task.file_name().to_string_lossy().into_owned(), n);
        }
        Ok(by_thread)
    }
}

/// Wakeups between two [`Daemon::switches`] samples: a thread's growth, or all of a thread
/// that appeared (one that exited in between takes its count with it: a slight undercount).
pub fn wakeups_between(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// Peak RSS of a command, in MiB (GNU `time`).
pub fn max_rss_of(cmd: &mut Command) -> Result<f64> {
    let sample = Measure::resources().run(cmd)?;
    Ok(sample.max_rss_kib.unwrap_or_default() as f64 / 1024.0)
}

/// `getconf CLK_TCK`: the unit of `/proc/PID/stat` times (100 on every Linux this runs on).
fn clock_ticks() -> Result<u64> {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if let Some(t) = TICKS.get() {
        return Ok(*t);
    }
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    let t = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(*TICKS.get_or_init(|| t))
}
