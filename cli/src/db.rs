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
