//! Container images on the systemd guest (issue 13): the guest's own release, encapsulated as a
//! chunked OCI image in an `oci:` layout on a disk, is what `strata rebase` moves the booted
//! ostree-ref host onto; after the reboot the host is image-based, `strata upgrade --check`
//! sees the tag move (from the manifest alone) and `strata upgrade` stages the new image, which
//! the next boot runs, the previous image kept as the rollback. Skopeo runs as `nobody` under
//! systemd, as on a real host. Skipped, with a message saying so, when the Debian mirror is
//! unreachable.

use std::time::Instant;

use anyhow::{ensure, Result};
use serde_json::Value;
use strata_tests::vm::systemd;

use crate::systemd::{boot_with, image_or_skip};
use crate::upgrade::{booted, deployments, marker, status};

/// Mounts the image disk (`/dev/vdc`) where the origin's reference points, every boot.
const MOUNT_IMAGES: &str = r#"
mkdir -p /run/strata-images
mount -t ext4 -o ro,noload /dev/vdc /run/strata-images || echo "STRATA-MARKER images-mount-failed"
IMGREF=ostree-unverified-image:oci:/run/strata-images/oci:stable
"#;

/// The `container-image-reference-digest` of deployment `i` in a status marker.
fn digest(status: &Value, i: usize) -> String {
    deployments(status)
        .get(i)
        .and_then(|d| d["container-image-reference-digest"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn systemd_guest_rebases_to_an_image_and_upgrades_it() -> Result<()> {
    let t = Instant::now();
    let Some(image) = image_or_skip()? else {
        return Ok(());
    };
    let disks = systemd::image_disks(&image, "2.0")?;
    let work = tempfile::tempdir()?;
    let disk = image.overlay(&work.path().join("disk.qcow2"))?;

    let body = format!(
        r#"{MOUNT_IMAGES}
strata rebase "$IMGREF" > /run/rebase.log 2>&1
echo "STRATA-MARKER rebase-exit $?"
echo "STRATA-MARKER rebase-log $(tail -n 12 /run/rebase.log | tr '\n' ' ')"
status_marker staged
"#
    );
    let log = boot_with(&disk, "v1: rebase to the image", &body, |c| {
        c.disk(&disks.first)
    })?;
    ensure!(
        marker(&log, "rebase-exit") == "0",
        "strata rebase to the image failed: {}\n{log}",
        marker(&log, "rebase-log")
    );
    let staged = status(&log, "staged")?;
    let ds = deployments(&staged);
    ensure!(
        ds.len() == 2
            && ds[0]["staged"] == Value::Bool(true)
            && digest(&staged, 0) == disks.first_digest
            && ds[1]["booted"] == Value::Bool(true)
            && ds[1]["checksum"].as_str() == Some(image.commit.as_str()),
        "the image is not staged ahead of the booted ref deployment: {staged:#}"
    );

    let body = format!(
        r#"{MOUNT_IMAGES}
status_marker before
strata upgrade --check > /run/check.log 2>&1
echo "STRATA-MARKER check-exit $?"
echo "STRATA-MARKER check-log $(tr '\n' ' ' < /run/check.log)"
strata upgrade > /run/upgrade.log 2>&1
echo "STRATA-MARKER upgrade-exit $?"
echo "STRATA-MARKER upgrade-log $(tail -n 12 /run/upgrade.log | tr '\n' ' ')"
status_marker staged
strata finalize-deployment sha256:{zeros} > /run/fin.log 2>&1
echo "STRATA-MARKER fin-wrong $(tr '\n' ' ' < /run/fin.log)"
strata finalize-deployment {moved} > /run/fin.log 2>&1
echo "STRATA-MARKER fin-right $(tr '\n' ' ' < /run/fin.log)"
"#,
        zeros = "0".repeat(64),
        moved = disks.moved_digest,
    );
    let log = boot_with(&disk, "image v1: upgrade", &body, |c| c.disk(&disks.moved))?;
    let before = status(&log, "before")?;
    let (_, booted_commit) = booted(&before)?;
    ensure!(
        digest(&before, 0) == disks.first_digest
            && deployments(&before)[0]["booted"] == Value::Bool(true)
            && deployments(&before)[0]["container-image-reference"]
                == "ostree-unverified-image:oci:/run/strata-images/oci:stable",
        "the image deployment is not booted: {before:#}\n{log}"
    );
    let check = marker(&log, "check-log");
    ensure!(
        marker(&log, "check-exit") == "0"
            && check.contains("AvailableUpdate:")
            && check.contains("Added layers:")
            && check.contains("layers to fetch"),
        "upgrade --check does not see the tag move: {check}\n{log}"
    );
    ensure!(
        marker(&log, "upgrade-exit") == "0",
        "strata upgrade failed: {}\n{log}",
        marker(&log, "upgrade-log")
    );
    let staged = status(&log, "staged")?;
    ensure!(
        digest(&staged, 0) == disks.moved_digest
            && deployments(&staged)[0]["staged"] == Value::Bool(true),
        "the moved tag's image is not staged: {staged:#}"
    );
    // Zincati names the staged release by its digest: a wrong one is refused naming the
    // staged image's, the right one passes that check (and this deployment, staged without
    // --lock-finalization, is then refused as not locked: no reboot here).
    ensure!(
        marker(&log, "fin-wrong").contains(&format!(
            "The staged deployment is {}, not the expected \"sha256:000",
            disks.moved_digest
        )),
        "finalize-deployment with a wrong digest: {:?}",
        marker(&log, "fin-wrong")
    );
    ensure!(
        marker(&log, "fin-right").contains("is not locked against finalization"),
        "finalize-deployment with the staged digest: {:?}",
        marker(&log, "fin-right")
    );

    let body = format!("{MOUNT_IMAGES}\nreport_booted\n");
    let log = boot_with(&disk, "image v2: check", &body, |c| c.disk(&disks.moved))?;
    let st = status(&log, "status")?;
    let (version, _) = booted(&st)?;
    ensure!(
        version == "2.0" && digest(&st, 0) == disks.moved_digest,
        "the new image is not booted: {st:#}"
    );
    ensure!(
        marker(&log, "os-release") == "VERSION=2.0",
        "/usr/lib/os-release says {:?}",
        marker(&log, "os-release")
    );
    let ds = deployments(&st);
    ensure!(
        ds.len() == 2 && ds[1]["checksum"].as_str() == Some(booted_commit.as_str()),
        "the previous image is not kept as the rollback: {ds:#?}"
    );
    eprintln!("image scenario in {:.1?}", t.elapsed());
    Ok(())
}
