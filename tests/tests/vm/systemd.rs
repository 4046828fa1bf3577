//! Scenario 1 of issue 4 on the systemd guest (a debootstrapped Debian 12, see
//! `strata_tests::vm::systemd`): `stratad` is D-Bus-activated through the packaged files,
//! `strata upgrade` stages release 2, `ostree-finalize-staged.service` finalizes it while
//! the guest shuts down, and the next boot is release 2 with the `/etc` edit made after
//! staging. Skipped, with a message saying so, when the Debian mirror is unreachable.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use strata_tests::vm::systemd;
use strata_tests::vm::{Control, Vm};

use crate::upgrade::{
    assert_staged, assert_upgraded, booted, marker, status, BOOT_TIMEOUT, STATUS_FN,
};

/// One boot of the systemd guest: runs `body` (dash), waits for `done`, then for the
/// shutdown marker (printed after `ostree-finalize-staged.service` stopped) and QEMU's exit.
fn boot(disk: &Path, what: &str, body: &str, extra: Option<&Path>) -> Result<String> {
    boot_with(disk, what, body, |control| match extra {
        Some(d) => control.disk(d),
        None => control,
    })
}

/// [`boot`] with the control disk built by `add` (extra files or disks).
pub(crate) fn boot_with(
    disk: &Path,
    what: &str,
    body: &str,
    add: impl FnOnce(Control) -> Control,
) -> Result<String> {
    let script = format!("{STATUS_FN}\n{body}\necho \"STRATA-MARKER done\"\n");
    let control = add(Control::script(script));
    let mut vm = Vm::boot(disk, &control)?;
    let up = vm
        .wait_for_marker("init", BOOT_TIMEOUT)
        .map(|_| vm.elapsed())
        .with_context(|| format!("boot `{what}`"))?;
    vm.wait_for_marker("done", BOOT_TIMEOUT)
        .with_context(|| format!("boot `{what}`"))?;
    vm.wait_for_marker("poweroff", BOOT_TIMEOUT)
        .with_context(|| format!("boot `{what}`"))?;
    vm.wait_exit(Duration::from_secs(120))?;
    eprintln!(
        "systemd boot `{what}`: control script started after {up:.1?}, powered off after {:.1?}",
        vm.elapsed()
    );
    Ok(vm.serial_log())
}

/// The systemd guest image of release "1.0", or `None` (with a SKIPPED message) when the
/// Debian mirror is unreachable.
pub(crate) fn image_or_skip() -> Result<Option<strata_tests::vm::VmImage>> {
    match systemd::build("1.0") {
        Ok(image) => Ok(Some(image)),
        Err(e) if systemd::is_mirror_unreachable(&e) => {
            eprintln!("SKIPPED: the systemd guest cannot be built here: {e:#}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[test]
fn systemd_guest_finalizes_the_upgrade_at_shutdown() -> Result<()> {
    let t = Instant::now();
    // Not "1" and "2": libostree 2022.7's syslinux label is "PRETTY_NAME VERSION (ostree:N)"
    // and its words after the first reach the kernel command line, where a bare "1" is a
    // runlevel for systemd (rescue mode).
    let Some(image) = image_or_skip()? else {
        return Ok(());
    };
    let (v2_disk, v2_commit) = systemd::upgrade_disk(&image, "2.0")?;
    let work = tempfile::tempdir()?;
    let disk = image.overlay(&work.path().join("disk.qcow2"))?;

    let body = r#"
use_upgrade_repo
status_marker before
echo "STRATA-MARKER stratad-unit $(systemctl show -P ActiveState stratad.service)"
echo "STRATA-MARKER rpm-ostree-booted $(rpm-ostree status --json | grep -c '"booted": *true')"
strata upgrade > /run/upgrade.log 2>&1
echo "STRATA-MARKER upgrade-exit $?"
echo "STRATA-MARKER upgrade-log $(tail -n 8 /run/upgrade.log | tr '\n' ' ')"
status_marker staged
echo "edited=after-staging" >> /etc/strata-test.conf
echo "STRATA-MARKER finalize-unit $(systemctl show -P ActiveState ostree-finalize-staged.service)"
"#;
    let log = boot(&disk, "v1: upgrade", body, Some(&v2_disk))?;
    let before = status(&log, "before")?;
    ensure!(
        booted(&before)? == ("1.0".to_string(), image.commit.clone()),
        "v1 is not booted before the upgrade: {before:#}\n{log}"
    );
    ensure!(
        marker(&log, "stratad-unit") == "active",
        "stratad.service was not activated through D-Bus: {:?}\n{log}",
        marker(&log, "stratad-unit")
    );
    ensure!(
        marker(&log, "rpm-ostree-booted") == "1",
        "`rpm-ostree status --json` (the installed symlink) does not show one booted deployment: {:?}\n{log}",
        marker(&log, "rpm-ostree-booted")
    );
    ensure!(
        marker(&log, "upgrade-exit") == "0",
        "strata upgrade failed: {}\n{log}",
        marker(&log, "upgrade-log")
    );
    assert_staged(&log, "2.0", &v2_commit)?;
    // The .path unit started the service whose ExecStop finalizes.
    ensure!(
        marker(&log, "finalize-unit") == "active",
        "ostree-finalize-staged.service is not active after staging: {:?}\n{log}",
        marker(&log, "finalize-unit")
    );
    ensure!(
        marker(&log, "poweroff") == "none-staged",
        "the staged deployment was still there late in shutdown: {:?}\n{log}",
        marker(&log, "poweroff")
    );

    let log = boot(&disk, "v2: check", "report_booted", None)?;
    assert_upgraded(&log, "2.0", &v2_commit, &image.commit)?;
    eprintln!("systemd scenario 1 in {:.1?}", t.elapsed());
    Ok(())
}
