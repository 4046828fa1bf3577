//! First boot: release 1 boots through syslinux, the initramfs and ostree-prepare-root into
//! its deployment, and the control script runs there.

use std::time::Duration;

use anyhow::{ensure, Result};
use strata_tests::vm::{Control, ImageSpec, Vm, VmImage};
use strata_tests::DEFAULT_OSNAME;

/// Generous for TCG on 2 cores; a boot to the marker takes about 10 s.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

const CONTROL: &str = r#"
echo "STRATA-MARKER cmdline $(cat /proc/cmdline)"
if [ -e /run/ostree-booted ]; then echo "STRATA-MARKER ostree-booted yes"; else echo "STRATA-MARKER ostree-booted no"; fi
echo "STRATA-MARKER release $(strata-release)"
echo "STRATA-MARKER os-release $(grep ^VERSION= /etc/os-release)"
echo "STRATA-MARKER deployments $(ls /sysroot/ostree/deploy/*/deploy | grep -v origin | tr '\n' ' ')"
echo "STRATA-MARKER boot-entries $(ls /boot/loader/entries | tr '\n' ' ')"
echo "STRATA-MARKER root-ino $(stat -c %d:%i /) $(for d in /sysroot/ostree/deploy/*/deploy/*.0; do stat -c %d:%i $d; done)"
echo "STRATA-MARKER etc-conf $(cat /etc/strata-test.conf)"
echo "STRATA-MARKER done"
"#;

#[test]
fn first_boot_reaches_the_deployment() -> Result<()> {
    let image = VmImage::build(&ImageSpec::new("1"))?;
    let work = tempfile::tempdir()?;
    let disk = image.overlay(&work.path().join("disk.qcow2"))?;
    let mut vm = Vm::boot(&disk, &Control::script(CONTROL))?;
    vm.wait_for_marker("init", BOOT_TIMEOUT)?;
    eprintln!("guest init reached in {:.1?}", vm.elapsed());
    vm.wait_for_marker("done", BOOT_TIMEOUT)?;
    eprintln!("control script done in {:.1?}", vm.elapsed());
    let log = vm.serial_log();
    let m = |k: &str| strata_tests::vm::find_marker(&log, k).unwrap_or_default();

    let cmdline = m("cmdline");
    ensure!(
        cmdline.contains(&format!("ostree=/ostree/boot.1/{DEFAULT_OSNAME}/"))
            && cmdline.contains("root=LABEL=root")
            && cmdline.contains("console=ttyS0"),
        "unexpected /proc/cmdline: {cmdline}\n{log}"
    );
    ensure!(
        m("ostree-booted") == "yes",
        "/run/ostree-booted is missing\n{log}"
    );
    ensure!(
        m("release") == "1",
        "strata-release says {:?}",
        m("release")
    );
    ensure!(
        m("os-release") == "VERSION=1",
        "os-release: {:?}",
        m("os-release")
    );
    ensure!(
        m("deployments").trim() == format!("{}.0", image.commit),
        "deployments: {:?}, expected {}.0",
        m("deployments"),
        image.commit
    );
    let ino: Vec<String> = m("root-ino").split_whitespace().map(String::from).collect();
    ensure!(
        ino.len() == 2 && ino[0] == ino[1],
        "/ is not the deployment directory: {ino:?}"
    );
    ensure!(
        m("etc-conf") == "version=1",
        "/etc/strata-test.conf: {:?}",
        m("etc-conf")
    );
    ensure!(
        m("boot-entries").contains(&format!("ostree-1-{DEFAULT_OSNAME}.conf")),
        "boot entries: {:?}",
        m("boot-entries")
    );
    vm.wait_for_marker("poweroff", BOOT_TIMEOUT)?;
    vm.wait_exit(Duration::from_secs(60))?;
    eprintln!("powered off in {:.1?}", vm.elapsed());
    Ok(())
}

/// Stretch of the first-boot goal: this project's `strata`/`stratad` on a private
/// `dbus-daemon` inside the guest report the booted deployment.
#[test]
fn strata_status_inside_the_guest() -> Result<()> {
    let image = VmImage::build(&strata_tests::vm::strata::with_strata(ImageSpec::new("1"))?)?;
    let work = tempfile::tempdir()?;
    let disk = image.overlay(&work.path().join("disk.qcow2"))?;
    let script = format!(
        r#"{start}
i=0
while ! strata status --json > /run/status.json 2>/run/status.err && [ $i -lt 120 ]; do sleep 0.5; i=$((i+1)); done
echo "STRATA-MARKER status-json $(tr -d '\n' < /run/status.json)"
echo "STRATA-MARKER status-err $(tr '\n' ' ' < /run/status.err)"
echo "STRATA-MARKER bus-log $(tail -n 5 /run/dbus.log | tr '\n' ' ')"
echo "STRATA-MARKER done"
"#,
        start = strata_tests::vm::strata::START_SYSTEM_BUS
    );
    let mut vm = Vm::boot(&disk, &Control::script(script))?;
    vm.wait_for_marker("done", BOOT_TIMEOUT)?;
    eprintln!("strata status done in {:.1?}", vm.elapsed());
    let log = vm.serial_log();
    let m = |k: &str| strata_tests::vm::find_marker(&log, k).unwrap_or_default();
    let status: serde_json::Value = serde_json::from_str(&m("status-json")).map_err(|e| {
        anyhow::anyhow!(
            "strata status --json is not JSON ({e}); stderr: {}; bus and stratad log: {}\n{log}",
            m("status-err"),
            m("bus-log")
        )
    })?;
    let deployments = status["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(deployments.len() == 1, "deployments: {status:#}");
    ensure!(
        deployments[0]["booted"] == serde_json::Value::Bool(true)
            && deployments[0]["checksum"].as_str() == Some(image.commit.as_str()),
        "the booted deployment is not {}: {status:#}",
        image.commit
    );
    vm.wait_exit(Duration::from_secs(60))?;
    Ok(())
}
