//! Scenario 4 of issue 4 on the busybox guest: `strata deploy --lock-finalization <v2>` stages
//! release 2 locked against finalization (`/run/ostree/staged-deployment-locked`); the guest's
//! shutdown path (`ostree admin finalize-staged`, which libostree 2022.7 makes decline a
//! locked deployment) leaves it unfinalized and v1 boots again. Staged and locked again,
//! `strata finalize-deployment <v2>` removes the lock and has stratad run its reboot command
//! (`RebootCommand=/usr/bin/reboot` in the guest's `/etc/rpm-ostreed.conf`): busybox `reboot`
//! signals the guest init, whose shutdown path finalizes, and the next boot is v2.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use strata_tests::vm::strata::START_SYSTEM_BUS;
use strata_tests::vm::{Control, Vm};

use crate::upgrade::{
    assert_booted, boot, deployments, marker, releases, status, Releases, BOOT_TIMEOUT, STATUS_FN,
};

/// `strata deploy --lock-finalization REV`, reported as `deploy-exit`/`deploy-log` and the
/// status after it as `staged`.
fn deploy_locked(rev: &str) -> String {
    format!(
        r#"
strata deploy --lock-finalization {rev} > /run/deploy.log 2>&1
echo "STRATA-MARKER deploy-exit $?"
echo "STRATA-MARKER deploy-log $(tail -n 8 /run/deploy.log | tr '\n' ' ')"
status_marker staged
[ -e /run/ostree/staged-deployment-locked ] && echo "STRATA-MARKER lock-file yes"
"#
    )
}

/// The boot in `log` staged `rev` ahead of the booted deployment, locked.
fn assert_staged_locked(log: &str, rev: &str) -> Result<()> {
    ensure!(
        marker(log, "deploy-exit") == "0",
        "strata deploy --lock-finalization failed: {}\n{log}",
        marker(log, "deploy-log")
    );
    let st = status(log, "staged")?;
    let ds = deployments(&st);
    ensure!(
        ds.len() >= 2
            && ds[0]["staged"] == Value::Bool(true)
            && ds[0]["checksum"].as_str() == Some(rev)
            && ds[0]["finalization-locked"] == Value::Bool(true)
            && ds[1]["booted"] == Value::Bool(true),
        "{rev} is not staged and finalization-locked ahead of the booted deployment: {st:#}"
    );
    ensure!(
        marker(log, "lock-file") == "yes",
        "no /run/ostree/staged-deployment-locked after strata deploy --lock-finalization"
    );
    Ok(())
}

/// One boot that ends however the guest decides (no `done` marker expected: a reboot stops
/// the control script); returns the serial log.
fn boot_until_shutdown(disk: &Path, what: &str, body: &str, extra: &Path) -> Result<String> {
    let script = format!("{START_SYSTEM_BUS}\n{STATUS_FN}\n{body}\necho \"STRATA-MARKER done\"\n");
    let mut vm = Vm::boot(disk, &Control::script(script).disk(extra))?;
    vm.wait_for_marker("poweroff", BOOT_TIMEOUT)
        .with_context(|| format!("boot `{what}`"))?;
    vm.wait_exit(Duration::from_secs(60))?;
    eprintln!("boot `{what}`: {:.1?}", vm.elapsed());
    Ok(vm.serial_log())
}

/// Scenario 4: a finalization-locked staged deployment survives no shutdown; finalize-deployment
/// unlocks it and reboots into it.
#[test]
fn lock_finalization_and_finalize_deployment() -> Result<()> {
    let t = Instant::now();
    let Releases {
        image,
        v2_disk,
        v2_commit,
    } = releases()?;
    let v2 = v2_commit.as_str();
    let work = tempfile::tempdir()?;
    let disk = image.overlay(&work.path().join("disk.qcow2"))?;

    // Boot 1 (v1): stage v2 locked, shut down.
    let body = format!("use_upgrade_repo\nreport_booted\n{}", deploy_locked(v2));
    let log = boot(
        &disk,
        "v1: deploy --lock-finalization",
        &body,
        Some(&v2_disk),
    )?;
    assert_booted(&log, "1", &image.commit)?;
    assert_staged_locked(&log, v2)?;
    let fin = marker(&log, "finalize");
    ensure!(
        fin.starts_with("locked"),
        "the shutdown path finalized (or failed on) a finalization-locked deployment: finalize {fin:?}\n{log}"
    );

    // Boot 2 (v1 again): stage v2 locked again, then finalize-deployment, which reboots.
    let body = format!(
        r#"use_upgrade_repo
report_booted
{}
strata finalize-deployment {v2} > /run/finalize-deployment.log 2>&1
echo "STRATA-MARKER finalize-deployment-exit $?"
echo "STRATA-MARKER finalize-deployment-log $(tail -n 8 /run/finalize-deployment.log | tr '\n' ' ')"
# The daemon's reboot stops this script; without it, give up after a while.
i=0; while [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
echo "STRATA-MARKER no-reboot"
"#,
        deploy_locked(v2)
    );
    let log = boot_until_shutdown(&disk, "v1: finalize-deployment", &body, &v2_disk)?;
    assert_booted(&log, "1", &image.commit)
        .context("v2 was finalized at the shutdown before finalize-deployment")?;
    assert_staged_locked(&log, v2)?;
    ensure!(
        marker(&log, "shutdown-requested") == "reboot",
        "strata finalize-deployment did not reboot the guest (shutdown-requested {:?}; finalize-deployment: {})\n{log}",
        marker(&log, "shutdown-requested"),
        marker(&log, "finalize-deployment-log")
    );
    ensure!(
        marker(&log, "finalize") == "ok",
        "the reboot after finalize-deployment did not finalize: finalize {:?}\n{log}",
        marker(&log, "finalize")
    );

    // Boot 3: v2.
    let log = boot(&disk, "v2: check", "report_booted", None)?;
    assert_booted(&log, "2", v2)?;
    eprintln!("scenario 4 in {:.1?}", t.elapsed());
    Ok(())
}
