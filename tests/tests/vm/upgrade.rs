//! Scenarios 1 and 2 of issue 4 on the busybox guest: `strata upgrade` stages release 2, the
//! guest's shutdown path finalizes it (`ostree admin finalize-staged`, see `GUEST_INIT`), the
//! next boot is release 2 with the `/etc` edit made after staging. One qcow2 overlay carries
//! the scenario across its boots.
//!
//! Scenario 2: `strata rollback`, reboot → v1, again → v2. The helpers here are shared with
//! the kargs (scenario 3) and finalization-lock (scenario 4) scenarios.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use serde_json::Value;
use strata_tests::vm::strata::{with_strata, START_SYSTEM_BUS};
use strata_tests::vm::{find_marker, Control, ImageSpec, Vm, VmImage};

/// Generous for TCG on 2 cores.
pub(crate) const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Shell functions (busybox sh and dash): `use_upgrade_repo` mounts the upgrade repo disk
/// (`/dev/vdc`) at `/run/strata-upgrade-repo` and points the remote at it; `status_marker NAME` prints
/// `STRATA-MARKER <name> <strata status --json>`, retried until the daemon answers;
/// `report_booted` prints the status, os-release `VERSION` and `/etc/strata-test.conf`.
pub(crate) const STATUS_FN: &str = r#"
use_upgrade_repo() {
  mkdir -p /run/strata-upgrade-repo
  mount -t ext4 -o ro,noload /dev/vdc /run/strata-upgrade-repo || echo "STRATA-MARKER repo-mount-failed"
  sed -i 's|^url=.*|url=file:///run/strata-upgrade-repo|' /sysroot/ostree/repo/config
}
status_marker() {
  i=0
  while ! strata status --json > /run/status.json 2>/run/status.err && [ $i -lt 120 ]; do sleep 0.5; i=$((i+1)); done
  echo "STRATA-MARKER $1 $(tr -d '\n' < /run/status.json)"
  echo "STRATA-MARKER $1-err $(tr '\n' ' ' < /run/status.err)"
}
report_booted() {
  status_marker status
  echo "STRATA-MARKER os-release $(grep ^VERSION= /usr/lib/os-release)"
  echo "STRATA-MARKER etc-conf $(tr '\n' ' ' < /etc/strata-test.conf)"
}
"#;

/// Both releases: the image (release 1) and the upgrade disk carrying release 2.
pub(crate) struct Releases {
    pub image: VmImage,
    pub v2_disk: PathBuf,
    pub v2_commit: String,
}

pub(crate) fn releases() -> Result<Releases> {
    let image = VmImage::build(&with_strata(ImageSpec::new("1"))?)?;
    let (v2_disk, v2_commit) = image.upgrade_disk(&with_strata(ImageSpec::new("2"))?)?;
    Ok(Releases {
        image,
        v2_disk,
        v2_commit,
    })
}

/// One boot: runs `body` after starting stratad, waits for `done` and for the poweroff;
/// returns the serial log.
pub(crate) fn boot(disk: &Path, what: &str, body: &str, extra: Option<&Path>) -> Result<String> {
    let script = format!("{START_SYSTEM_BUS}\n{STATUS_FN}\n{body}\necho \"STRATA-MARKER done\"\n");
    let mut control = Control::script(script);
    if let Some(d) = extra {
        control = control.disk(d);
    }
    let mut vm = Vm::boot(disk, &control)?;
    vm.wait_for_marker("done", BOOT_TIMEOUT)
        .with_context(|| format!("boot `{what}`"))?;
    vm.wait_for_marker("poweroff", BOOT_TIMEOUT)
        .with_context(|| format!("boot `{what}`"))?;
    vm.wait_exit(Duration::from_secs(60))?;
    eprintln!("boot `{what}`: {:.1?}", vm.elapsed());
    Ok(vm.serial_log())
}

pub(crate) fn marker(log: &str, key: &str) -> String {
    find_marker(log, key).unwrap_or_default()
}

/// `strata status --json` from the `key` marker.
pub(crate) fn status(log: &str, key: &str) -> Result<Value> {
    serde_json::from_str(&marker(log, key)).map_err(|e| {
        anyhow!(
            "strata status --json is not JSON ({e}); stderr: {}\n{log}",
            marker(log, &format!("{key}-err"))
        )
    })
}

pub(crate) fn deployments(status: &Value) -> Vec<Value> {
    status["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// (version, checksum) of the booted deployment.
pub(crate) fn booted(status: &Value) -> Result<(String, String)> {
    let d = deployments(status)
        .into_iter()
        .find(|d| d["booted"] == Value::Bool(true))
        .ok_or_else(|| anyhow!("no booted deployment: {status:#}"))?;
    Ok((
        d["version"].as_str().unwrap_or_default().to_string(),
        d["checksum"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Asserts the boot in `log` runs release `version` (commit `commit`) per `strata status` and
/// `/usr/lib/os-release`.
pub(crate) fn assert_booted(log: &str, version: &str, commit: &str) -> Result<()> {
    let st = status(log, "status")?;
    let (v, c) = booted(&st)?;
    ensure!(
        v == version && c == commit,
        "booted deployment is version {v:?} ({c}), expected {version} ({commit}): {st:#}\nfinalize: {:?}",
        find_marker(log, "finalize")
    );
    let os = marker(log, "os-release");
    ensure!(
        os == format!("VERSION={version}"),
        "/usr/lib/os-release says {os:?}, expected VERSION={version}"
    );
    Ok(())
}

/// Scenario 1 on a fresh overlay at `disk`: boot v1, upgrade (staged), edit /etc, shut down
/// through finalization, boot → v2 with the edit. Leaves v2 the default on `disk` (the start
/// of scenario 2).
pub(crate) fn upgrade_to_v2(rel: &Releases, disk: &Path) -> Result<()> {
    let body = r#"
use_upgrade_repo
status_marker before
strata upgrade > /run/upgrade.log 2>&1
echo "STRATA-MARKER upgrade-exit $?"
echo "STRATA-MARKER upgrade-log $(tail -n 8 /run/upgrade.log | tr '\n' ' ')"
status_marker staged
echo "edited=after-staging" >> /etc/strata-test.conf
[ -e /run/ostree/staged-deployment ] && echo "STRATA-MARKER staged-file yes"
"#;
    let log = boot(disk, "v1: upgrade", body, Some(&rel.v2_disk))?;
    let before = status(&log, "before")?;
    ensure!(
        booted(&before)? == ("1".to_string(), rel.image.commit.clone()),
        "v1 is not booted before the upgrade: {before:#}"
    );
    ensure!(
        marker(&log, "upgrade-exit") == "0",
        "strata upgrade failed: {}\n{log}",
        marker(&log, "upgrade-log")
    );
    assert_staged(&log, "2", &rel.v2_commit)?;
    ensure!(
        marker(&log, "finalize") == "ok",
        "the shutdown path did not finalize: {:?}\n{log}",
        find_marker(&log, "finalize")
    );

    let log = boot(disk, "v2: check", "report_booted", None)?;
    assert_upgraded(&log, "2", &rel.v2_commit, &rel.image.commit)
}

/// Asserts the `staged` status marker of `log` shows release `version` (`commit`) staged
/// ahead of the booted deployment.
pub(crate) fn assert_staged(log: &str, version: &str, commit: &str) -> Result<()> {
    let staged = status(log, "staged")?;
    let ds = deployments(&staged);
    ensure!(
        ds.len() == 2
            && ds[0]["staged"] == Value::Bool(true)
            && ds[0]["version"].as_str() == Some(version)
            && ds[0]["checksum"].as_str() == Some(commit)
            && ds[1]["booted"] == Value::Bool(true),
        "release {version} is not staged ahead of the booted deployment: {staged:#}"
    );
    Ok(())
}

/// Asserts the boot in `log` (a `report_booted` boot after an upgrade) runs release `version`
/// (`commit`) with the `/etc` edit made after staging, and `previous` as the rollback.
pub(crate) fn assert_upgraded(
    log: &str,
    version: &str,
    commit: &str,
    previous: &str,
) -> Result<()> {
    assert_booted(log, version, commit)?;
    let etc = marker(log, "etc-conf");
    ensure!(
        etc.contains("edited=after-staging"),
        "the /etc edit made after staging is lost in v{version}: /etc/strata-test.conf = {etc:?}"
    );
    let ds = deployments(&status(log, "status")?);
    ensure!(
        ds.len() == 2 && ds[1]["checksum"].as_str() == Some(previous),
        "the previous release is not kept as the rollback deployment: {ds:#?}"
    );
    Ok(())
}

#[test]
fn upgrade_stages_and_shutdown_finalizes() -> Result<()> {
    let t = Instant::now();
    let rel = releases()?;
    let work = tempfile::tempdir()?;
    let disk = rel.image.overlay(&work.path().join("disk.qcow2"))?;
    upgrade_to_v2(&rel, &disk)?;
    eprintln!("scenario 1 in {:.1?}", t.elapsed());
    Ok(())
}

/// Scenario 2: `strata rollback`, reboot → v1 booted; again → v2.
#[test]
fn rollback_flips_the_booted_deployment() -> Result<()> {
    let t = Instant::now();
    let rel = releases()?;
    let work = tempfile::tempdir()?;
    let disk = rel.image.overlay(&work.path().join("disk.qcow2"))?;
    upgrade_to_v2(&rel, &disk)?;
    // Each boot reports what it booted, then rolls back; the next boot shows the result.
    let rollback = r#"
report_booted
strata rollback > /run/rollback.log 2>&1
echo "STRATA-MARKER rollback-exit $?"
echo "STRATA-MARKER rollback-log $(tail -n 8 /run/rollback.log | tr '\n' ' ')"
"#;
    let mut log = boot(&disk, "v2: rollback", rollback, None)?;
    for (what, version, commit) in [
        ("after the first rollback", "1", &rel.image.commit),
        ("after the second rollback", "2", &rel.v2_commit),
    ] {
        ensure!(
            marker(&log, "rollback-exit") == "0",
            "strata rollback failed: {}\n{log}",
            marker(&log, "rollback-log")
        );
        let last = version == "2";
        log = boot(
            &disk,
            what,
            if last { "report_booted" } else { rollback },
            None,
        )?;
        assert_booted(&log, version, commit).with_context(|| what.to_string())?;
    }
    eprintln!("scenario 2 in {:.1?}", t.elapsed());
    Ok(())
}
