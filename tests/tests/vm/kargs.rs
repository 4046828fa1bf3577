//! Scenario 3 of issue 4 on the busybox guest: `strata kargs --append=foo=bar` stages a new
//! deployment of the booted commit with the argument added, the guest's shutdown path
//! finalizes it and the next boot's `/proc/cmdline` has `foo=bar`; `strata kargs
//! --delete=foo=bar` then takes it away again on the boot after.

use std::time::Instant;

use anyhow::{ensure, Result};
use serde_json::Value;

use crate::upgrade::{assert_booted, boot, deployments, marker, releases, status};

/// Prints the kernel command line, then runs `strata kargs ARGS` and reports the result.
fn kargs_body(args: &str) -> String {
    format!(
        r#"
report_booted
echo "STRATA-MARKER cmdline $(cat /proc/cmdline)"
strata kargs {args} > /run/kargs.log 2>&1
echo "STRATA-MARKER kargs-exit $?"
echo "STRATA-MARKER kargs-log $(tail -n 8 /run/kargs.log | tr '\n' ' ')"
status_marker staged
"#
    )
}

fn has_foo_bar(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|a| a == "foo=bar")
}

/// The boot in `log` ran `strata kargs` successfully, which staged a deployment of the same
/// commit ahead of the booted one, and the shutdown path finalized it.
fn assert_kargs_staged(log: &str, commit: &str) -> Result<()> {
    ensure!(
        marker(log, "kargs-exit") == "0",
        "strata kargs failed: {}\n{log}",
        marker(log, "kargs-log")
    );
    let st = status(log, "staged")?;
    let ds = deployments(&st);
    ensure!(
        ds.len() >= 2
            && ds[0]["staged"] == Value::Bool(true)
            && ds[0]["checksum"].as_str() == Some(commit)
            && ds[1]["booted"] == Value::Bool(true),
        "strata kargs did not stage a deployment of {commit} ahead of the booted one: {st:#}"
    );
    ensure!(
        marker(log, "finalize") == "ok",
        "the shutdown path did not finalize: {:?}\n{log}",
        marker(log, "finalize")
    );
    Ok(())
}

/// Scenario 3: `strata kargs --append=foo=bar`, reboot → `/proc/cmdline` has it; `--delete`,
/// reboot → gone.
#[test]
fn kargs_append_and_delete_across_reboots() -> Result<()> {
    let t = Instant::now();
    let rel = releases()?;
    let commit = rel.image.commit.as_str();
    let work = tempfile::tempdir()?;
    let disk = rel.image.overlay(&work.path().join("disk.qcow2"))?;

    let log = boot(
        &disk,
        "v1: kargs --append",
        &kargs_body("--append=foo=bar"),
        None,
    )?;
    assert_booted(&log, "1", commit)?;
    let cmdline = marker(&log, "cmdline");
    ensure!(
        !has_foo_bar(&cmdline),
        "foo=bar is on the first boot's command line already: {cmdline:?}"
    );
    assert_kargs_staged(&log, commit)?;

    let log = boot(
        &disk,
        "v1: kargs --delete",
        &kargs_body("--delete=foo=bar"),
        None,
    )?;
    assert_booted(&log, "1", commit)?;
    let cmdline = marker(&log, "cmdline");
    ensure!(
        has_foo_bar(&cmdline),
        "foo=bar is not on the kernel command line after `strata kargs --append=foo=bar` and a reboot: {cmdline:?}\n{log}"
    );
    assert_kargs_staged(&log, commit)?;

    let log = boot(
        &disk,
        "v1: check",
        "report_booted\necho \"STRATA-MARKER cmdline $(cat /proc/cmdline)\"",
        None,
    )?;
    assert_booted(&log, "1", commit)?;
    let cmdline = marker(&log, "cmdline");
    ensure!(
        !has_foo_bar(&cmdline),
        "foo=bar is still on the kernel command line after `strata kargs --delete=foo=bar` and a reboot: {cmdline:?}\n{log}"
    );
    ensure!(
        cmdline.split_whitespace().any(|a| a == "console=ttyS0"),
        "the image's own kernel arguments were lost: {cmdline:?}"
    );
    eprintln!("scenario 3 in {:.1?}", t.elapsed());
    Ok(())
}
