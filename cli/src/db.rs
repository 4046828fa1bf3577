//! `db list` / `db version` / `db diff`: run by the `strata-db` helper, which reads the
//! repository itself as rpm-ostree's `db` commands do (no daemon involved). It is a separate
//! program so that `strata` itself does not load libostree and libdnf, which would slow every
//! other command's start (see docs/benchmarks.md for what `status` costs).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{anyhow, Result};

/// The helper's file name.
pub const HELPER: &str = "strata-db";

/// Where the helper is: beside this program (a build directory), or in `../libexec` from it
/// (`make install`: `/usr/bin/strata` and `/usr/libexec/strata-db`).
fn helper() -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .map_err(|e| anyhow!("Finding this program's path: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no directory", exe.display()))?;
    let candidates = [dir.join(HELPER), dir.join("../libexec").join(HELPER)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "The db commands need {HELPER}, which is not installed (looked for {} and {})",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// rpm-ostree's `Diff:` summary of the packages from `from` to `to` in the host's repository
/// (`3 upgraded, 1 added`), as `status` shows it for a pending deployment; `None` when nothing
/// differs. Computed by the helper, as rpm-ostree's client computes it (not the daemon).
pub(crate) fn diff_summary(from: &str, to: &str) -> Result<Option<String>> {
    let out = Command::new(helper()?)
        .arg0("strata")
        .args([
            "db",
            "diff",
            "--format=json",
            "--repo=/sysroot/ostree/repo",
            from,
            to,
        ])
        .output()
        .map_err(|e| anyhow!("Running {HELPER}: {e}"))?;
    if !out.status.success() {
        return Err(anyhow!(
            "{HELPER} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut counts = [0usize; 4];
    for entry in v["pkgdiff"].as_array().into_iter().flatten() {
        if let Some(kind) = entry[1].as_u64().and_then(|k| counts.get_mut(k as usize)) {
            *kind += 1;
        }
    }
    Ok(summary(counts[2], counts[3], counts[1], counts[0]))
}

/// `N upgraded, N downgraded, N removed, N added`, leaving out zeros.
pub(crate) fn summary(
    upgraded: usize,
    downgraded: usize,
    removed: usize,
    added: usize,
) -> Option<String> {
    let parts: Vec<String> = [
        (upgraded, "upgraded"),
        (downgraded, "downgraded"),
        (removed, "removed"),
        (added, "added"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Replaces this process with the helper, given the same command line.
pub(crate) fn exec(args: &[OsString]) -> Result<i32> {
    let helper = helper()?;
    let mut cmd = Command::new(&helper);
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1));
    let err = cmd.exec();
    Err(anyhow!("Running {}: {err}", helper.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_leaves_out_zeros_in_rpm_ostree_order() {
        assert_eq!(super::summary(0, 0, 0, 0), None);
        assert_eq!(super::summary(0, 0, 0, 3).as_deref(), Some("3 added"));
        assert_eq!(
            super::summary(2, 1, 0, 4).as_deref(),
            Some("2 upgraded, 1 downgraded, 4 added")
        );
    }
}
