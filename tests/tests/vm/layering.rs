//! Scenario 6 of issue 11 on the systemd guest: `strata install jq` from an rpm-md repository
//! on the control disk (Debian's `jq`, `libjq1` and `libonig5` repackaged as RPMs by the kit,
//! so the program needs its layered libraries to run), reboot, `jq` runs and the rpmdb and
//! `status` show it (and, before the reboot, `status`'s `Diff:` line for the pending
//! deployment); `strata uninstall jq`, reboot, gone. With it, `vmsvc`, whose user exists only
//! in its `sysusers.d` file (the guest's real `systemd-sysusers` creates it during assembly)
//! and owns one of its files. Skipped, with a message saying so,
//! when the Debian mirror is unreachable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use strata_tests::{cmd, rpm_from_deb, RpmEntry, RpmRepo, RpmSpec};

use crate::systemd::{boot_with, image_or_skip};
use crate::upgrade::{marker, status};

/// The packages, in dependency order (`libc6` is in the guest without an rpmdb entry).
const DEBS: &[&str] = &["libonig5", "libjq1", "jq"];

const REPO_FILE: &str = "[vm]
name=Strata VM test packages
baseurl=file:///run/strata-control/repo
gpgcheck=0
";

/// Downloads the Debian packages and builds the repository.
fn package_repo(work: &Path) -> Result<RpmRepo> {
    let debs = work.join("debs");
    std::fs::create_dir_all(&debs)?;
    cmd::run(
        Command::new("apt-get")
            .arg("download")
            .args(DEBS)
            .current_dir(&debs),
    )
    .context("Downloading jq and its libraries with apt-get")?;
    let repo = RpmRepo::create(&work.join("repo"))?;
    let mut specs = Vec::new();
    for e in std::fs::read_dir(&debs)? {
        let deb = e?.path();
        let name = deb
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        specs.push(rpm_from_deb(&deb, &work.join("x").join(name), &["libc6"])?);
    }
    // A package whose user comes from its sysusers.d file alone (no %pre), as rpm ≥ 4.19
    // packages declare them, owning one of its files.
    specs.push(
        RpmSpec::new("vmsvc", "1.0")
            .file(
                "usr/lib/sysusers.d/vmsvc.conf",
                "u vmsvc - \"Strata VM test\" /\n",
            )
            .entry(
                "usr/share/vmsvc/data",
                RpmEntry::Regular {
                    content: b"data\n".to_vec(),
                    mode: 0o640,
                },
            )
            .owner("vmsvc", "vmsvc"),
    );
    repo.add_all(&specs)?;
    Ok(repo)
}

/// Every file of the repository, as (path in the control directory, host path).
fn repo_files(repo: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with(".rpmbuild-") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(repo)?.to_string_lossy().into_owned();
                out.push((format!("repo/{rel}"), path));
            }
        }
    }
    Ok(out)
}

#[test]
fn systemd_guest_layers_a_package_across_reboots() -> Result<()> {
    let t = Instant::now();
    let Some(image) = image_or_skip()? else {
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let repo = package_repo(work.path())?;
    let files = repo_files(repo.path())?;
    let disk = image.overlay(&work.path().join("disk.qcow2"))?;
    let with_repo = |mut c: strata_tests::vm::Control| {
        for (name, path) in &files {
            c = c.file(name.clone(), path.clone());
        }
        c
    };

    let body = format!(
        r#"
mkdir -p /etc/yum.repos.d
cat > /etc/yum.repos.d/vm.repo <<'EOF'
{REPO_FILE}EOF
strata install jq vmsvc > /run/install.log 2>&1
echo "STRATA-MARKER install-exit $?"
echo "STRATA-MARKER install-log $(tail -n 12 /run/install.log | tr '\n' ' ')"
echo "STRATA-MARKER jq-before $(command -v jq || echo none)"
echo "STRATA-MARKER diff $(strata status 2>&1 | grep -o 'Diff: .*')"
status_marker staged
"#
    );
    let log = boot_with(&disk, "v1: install jq", &body, with_repo)?;
    ensure!(
        marker(&log, "install-exit") == "0",
        "strata install jq failed: {}\n{log}",
        marker(&log, "install-log")
    );
    ensure!(
        marker(&log, "install-log").contains("Changes queued for next boot"),
        "no reboot hint: {}",
        marker(&log, "install-log")
    );
    ensure!(
        marker(&log, "jq-before") == "none",
        "jq is on the running system before the reboot: {:?}",
        marker(&log, "jq-before")
    );
    // rpm-ostree's summary line for the pending deployment (the helper reads both rpmdbs).
    ensure!(
        marker(&log, "diff") == "Diff: 4 added",
        "status does not show the package diff of the pending deployment: {:?}",
        marker(&log, "diff")
    );
    let staged = status(&log, "staged")?;
    ensure!(
        staged["deployments"][0]["requested-packages"] == serde_json::json!(["jq", "vmsvc"]),
        "the staged deployment does not request jq: {staged:#}"
    );

    let body = r#"
echo "STRATA-MARKER jq-run $(echo '{"answer":42}' | jq .answer 2>&1)"
echo "STRATA-MARKER rpm-q $(rpm -q --dbpath /usr/share/rpm jq libjq1 libonig5 2>&1 | tr '\n' ' ')"
echo "STRATA-MARKER layered $(strata status | grep LayeredPackages | tr -s ' ')"
echo "STRATA-MARKER vmsvc $(stat -c '%U:%G %a' /usr/share/vmsvc/data) $(getent passwd vmsvc | cut -d: -f1)"
strata uninstall jq vmsvc > /run/uninstall.log 2>&1
echo "STRATA-MARKER uninstall-exit $?"
echo "STRATA-MARKER uninstall-log $(tail -n 8 /run/uninstall.log | tr '\n' ' ')"
"#;
    let log = boot_with(&disk, "v1+jq: run and uninstall", body, with_repo)?;
    ensure!(
        marker(&log, "jq-run") == "42",
        "the layered jq does not run: {:?}\n{log}",
        marker(&log, "jq-run")
    );
    let rpmq = marker(&log, "rpm-q");
    ensure!(
        rpmq.contains("jq-1.6") && rpmq.contains("libjq1-1.6") && rpmq.contains("libonig5-6"),
        "rpm -q does not list the layered packages: {rpmq:?}"
    );
    ensure!(
        marker(&log, "vmsvc") == "vmsvc:vmsvc 640 vmsvc",
        "the sysusers.d user does not own its package's file: {:?}",
        marker(&log, "vmsvc")
    );
    ensure!(
        marker(&log, "layered").contains("LayeredPackages: jq vmsvc"),
        "status does not show jq layered: {:?}",
        marker(&log, "layered")
    );
    ensure!(
        marker(&log, "uninstall-exit") == "0",
        "strata uninstall jq failed: {}\n{log}",
        marker(&log, "uninstall-log")
    );

    let body = r#"
echo "STRATA-MARKER jq-after $(command -v jq || echo none)"
echo "STRATA-MARKER rpm-q-after $(rpm -q --dbpath /usr/share/rpm jq 2>&1)"
status_marker after
"#;
    let log = boot_with(&disk, "v1: jq gone", body, |c| c)?;
    ensure!(
        marker(&log, "jq-after") == "none",
        "jq is still there after uninstall and reboot: {:?}\n{log}",
        marker(&log, "jq-after")
    );
    ensure!(
        marker(&log, "rpm-q-after").contains("not installed"),
        "rpm still lists jq: {:?}",
        marker(&log, "rpm-q-after")
    );
    let after = status(&log, "after")?;
    let booted = &after["deployments"][0];
    ensure!(
        booted["booted"] == serde_json::json!(true)
            && booted["checksum"] == serde_json::json!(image.commit),
        "the plain base is not booted after uninstall: {after:#}"
    );
    eprintln!("systemd scenario 6 (layering) in {:.1?}", t.elapsed());
    Ok(())
}
