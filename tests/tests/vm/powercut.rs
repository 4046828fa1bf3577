//! Scenario 5 of issue 4 on the busybox guest: power cuts. QEMU is killed (SIGKILL, no
//! shutdown path, no sync) at two points of an upgrade, and the next boot of the same overlay
//! must be a complete deployment (the version `strata status --json` reports as booted is the
//! one `/usr/lib/os-release` of the running system has) with `strata status` working.
//!
//! - (a) During staging: `strata upgrade` runs in the background; once `strata status --json`
//!   shows its transaction the guest prints `upgrade-underway` and the host kills QEMU. A cut
//!   before finalization is deterministic: the staged deployment only exists through
//!   `/run/ostree/staged-deployment` (tmpfs) and the bootloader configuration is untouched,
//!   so v1 boots, with nothing staged. A full upgrade afterwards still works (v2 boots).
//! - (b) During finalization: the upgrade completes (v2 staged), the guest init's shutdown path
//!   prints `finalize-start` just before `ostree admin finalize-staged` and the host kills QEMU
//!   then. Where the cut lands inside finalization depends on timing: libostree writes the new
//!   boot loader configuration into the other `loader.N` directory and switches the
//!   `/boot/loader` symlink with one atomic rename, so the next boot is either v1 (cut before
//!   the swap) or v2 (after it); either way complete and consistent, which is what is asserted.

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use strata_tests::vm::strata::START_SYSTEM_BUS;
use strata_tests::vm::{Control, Vm};

use crate::upgrade::{
    boot, booted, deployments, marker, releases, status, upgrade_to_v2, Releases, BOOT_TIMEOUT,
    STATUS_FN,
};

/// Boots `disk` with `body` (after stratad is up) and the upgrade disk, waits for the
/// `cut_at` marker and kills QEMU right then. Returns the serial log.
fn boot_and_cut(
    disk: &Path,
    rel: &Releases,
    what: &str,
    body: &str,
    cut_at: &str,
) -> Result<String> {
    let script = format!("{START_SYSTEM_BUS}\n{STATUS_FN}\n{body}\n");
    let control = Control::script(script).disk(&rel.v2_disk);
    let mut vm = Vm::boot(disk, &control)?;
    vm.wait_for_marker(cut_at, BOOT_TIMEOUT)
        .with_context(|| format!("boot `{what}`"))?;
    vm.kill()?;
    eprintln!(
        "boot `{what}`: power cut at `{cut_at}` after {:.1?}",
        vm.elapsed()
    );
    Ok(vm.serial_log())
}

/// The boot after a cut: reports what it booted and whether `strata status` exits 0.
fn check_after_cut(disk: &Path, what: &str) -> Result<String> {
    let body = r#"
report_booted
strata status > /run/status.txt 2>&1
echo "STRATA-MARKER status-exit $?"
echo "STRATA-MARKER status-text $(tr '\n' ' ' < /run/status.txt)"
"#;
    boot(disk, what, body, None)
}

/// The boot in `log` runs a complete release (v1 or v2): `strata status` works and its booted
/// deployment is the release `/usr/lib/os-release` says. Returns the booted version.
fn assert_complete(log: &str, rel: &Releases) -> Result<String> {
    ensure!(
        marker(log, "status-exit") == "0",
        "strata status failed after the power cut: {}\n{log}",
        marker(log, "status-text")
    );
    let st = status(log, "status")?;
    let (version, commit) = booted(&st)?;
    let expected_commit = match version.as_str() {
        "1" => &rel.image.commit,
        "2" => &rel.v2_commit,
        _ => anyhow::bail!("booted deployment is neither v1 nor v2: {st:#}"),
    };
    ensure!(
        &commit == expected_commit,
        "booted version {version} has commit {commit}, expected {expected_commit}: {st:#}"
    );
    let os = marker(log, "os-release");
    ensure!(
        os == format!("VERSION={version}"),
        "inconsistent boot: strata status says version {version}, /usr/lib/os-release says {os:?}"
    );
    Ok(version)
}

/// (a) Power cut while `strata upgrade` is staging → v1 boots, nothing staged; a full upgrade
/// afterwards still reaches v2.
#[test]
fn power_cut_during_staging_boots_v1() -> Result<()> {
    let t = Instant::now();
    let rel = releases()?;
    let work = tempfile::tempdir()?;
    let disk = rel.image.overlay(&work.path().join("disk.qcow2"))?;
    let body = r#"use_upgrade_repo
status_marker before
strata upgrade > /run/upgrade.log 2>&1 &
up=$!
i=0
while [ $i -lt 600 ]; do
  if strata status --json > /run/tx.json 2>/dev/null && grep -q '"transaction": *\[' /run/tx.json; then
    # Only the transaction: a whole status on one serial line can be split by kernel messages.
    echo "STRATA-MARKER upgrade-underway $(tr -d '\n' < /run/tx.json | grep -o '"transaction": *\[[^]]*\]')"
    break
  fi
  if ! kill -0 $up 2>/dev/null; then
    echo "STRATA-MARKER upgrade-underway finished-before-seen"
    break
  fi
  i=$((i+1)); sleep 0.2
done
sleep 600
"#;
    let log = boot_and_cut(&disk, &rel, "v1: upgrade, cut", body, "upgrade-underway")?;
    let underway = marker(&log, "upgrade-underway");
    ensure!(
        underway.contains("\"transaction\""),
        "the upgrade's transaction was never seen in `strata status --json`: {underway}\n{log}"
    );

    let log = check_after_cut(&disk, "after the staging cut")?;
    let version = assert_complete(&log, &rel)?;
    ensure!(
        version == "1",
        "a power cut before finalization must boot v1 again, booted v{version}\n{log}"
    );
    let ds = deployments(&status(&log, "status")?);
    ensure!(
        ds.iter().all(|d| d["staged"] != Value::Bool(true)),
        "a staged deployment survived the power cut: {ds:#?}"
    );

    // Not broken: the whole upgrade still works from here.
    upgrade_to_v2(&rel, &disk).context("upgrading after the staging power cut")?;
    eprintln!("scenario 5a in {:.1?}", t.elapsed());
    Ok(())
}

/// (b) Power cut while the shutdown path runs `ostree admin finalize-staged` → v1 or v2,
/// complete and consistent.
#[test]
fn power_cut_during_finalization_boots_a_complete_deployment() -> Result<()> {
    let t = Instant::now();
    let rel = releases()?;
    let work = tempfile::tempdir()?;
    let disk = rel.image.overlay(&work.path().join("disk.qcow2"))?;
    let body = r#"use_upgrade_repo
status_marker before
strata upgrade > /run/upgrade.log 2>&1
echo "STRATA-MARKER upgrade-exit $?"
echo "STRATA-MARKER upgrade-log $(tail -n 8 /run/upgrade.log | tr '\n' ' ')"
[ -e /run/ostree/staged-deployment ] && echo "STRATA-MARKER staged-file yes"
"#;
    let log = boot_and_cut(
        &disk,
        &rel,
        "v1: upgrade, cut in finalization",
        body,
        "finalize-start",
    )?;
    ensure!(
        marker(&log, "upgrade-exit") == "0" && marker(&log, "staged-file") == "yes",
        "strata upgrade did not stage v2: {}\n{log}",
        marker(&log, "upgrade-log")
    );

    let log = check_after_cut(&disk, "after the finalization cut")?;
    let version = assert_complete(&log, &rel)?;
    eprintln!(
        "power cut during finalization: v{version} booted (scenario 5b in {:.1?})",
        t.elapsed()
    );
    Ok(())
}
