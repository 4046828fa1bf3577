//! The real clients' call sequences, without Strata's code on the client side: Python scripts
//! under `tests/python` (Debian's python3-gi, the GDBus stack GNOME Software and rpm-ostree use)
//! replay Cockpit's and GNOME Software's calls from their sources, check every reply, property
//! and signal type against rpm-ostree's interface (`api/contract`), and print what the client
//! would show; these tests assert it, and the sysroot afterwards.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value as Json};
use strata_tests::{FixtureConfig, OsRelease, TestPackages, DEFAULT_REMOTE};

use crate::*;

const PYTHON: &str = "/usr/bin/python3";

/// Fails (never skips) when the system Python lacks Gio.
fn require_python_gi() {
    let out = Command::new(PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('Gio', '2.0'); from gi.repository import Gio, GLib",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} ({e}): apt-get install python3"));
    assert!(
        out.status.success(),
        "{PYTHON} cannot import gi: apt-get install python3-gi gir1.2-glib-2.0 (the \
         Makefile's deps target installs them):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tests/python/SCRIPT ARGS` to its end; its JSON summary.
async fn client(env: &Env, script: &str, args: &[&str]) -> Json {
    require_python_gi();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut cmd = Command::new(PYTHON);
    cmd.arg(path).arg(env.bus.address()).args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("running the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nstratad:\n{}",
        out.status,
        env.daemon.stderr()
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad JSON from {script} ({e}):\n{stdout}\n{stderr}"))
}

/// Releases 1 and 2 of [`strata_tests::rpm::diffing_releases`], each with the kit's rpm-md
/// repository configured (`test`: `hello`, `libhello`, …).
fn releases(dir: &std::path::Path) -> (TestPackages, OsRelease, OsRelease) {
    let pkgs = TestPackages::create(&dir.join("pkgs")).unwrap();
    let (v1, v2) = strata_tests::rpm::diffing_releases(&dir.join("diff")).unwrap();
    let repo = pkgs.repo.repo_file("test", &pkgs.repo.file_url());
    let with_repo = |r: OsRelease| r.file("usr/etc/yum.repos.d/test.repo", repo.clone());
    (pkgs, with_repo(v1), with_repo(v2))
}

fn checksums_on_disk(env: &Env) -> Vec<String> {
    env.fx
        .sysroot()
        .unwrap()
        .deployments()
        .unwrap()
        .into_iter()
        .map(|d| d.checksum)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn gnome_software_s_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (_pkgs, v1, v2) = releases(dir.path());
    let env = Env::new(FixtureConfig {
        release: v1,
        ..Default::default()
    })
    .await;
    let v2 = env.fx.commit(&v2).unwrap();
    let out = client(&env, "gnome_software_client.py", &[]).await;

    assert_eq!(out["update_checksum"], v2.as_str(), "{out:#}");
    assert_eq!(out["update_version"], "2", "{out:#}");
    assert_eq!(
        out["updates"],
        json!([
            "upgraded: base-lib 1.0-1 -> 2.0-1",
            "removed: gone-1.0-1.noarch",
            "added: fresh-1.0-1.noarch"
        ]),
        "{out:#}"
    );
    assert_eq!(out["advisories"], json!([]), "{out:#}");
    assert_eq!(out["applied_checksum"], v2.as_str(), "{out:#}");
    assert_eq!(out["after_install"], json!(["hello"]), "{out:#}");
    assert_eq!(out["after_remove"], json!([]), "{out:#}");
    assert_eq!(
        out["repos"],
        json!([["test", "Strata test repository test", true, false, false]]),
        "{out:#}"
    );
    assert_eq!(out["repos_disabled"][0][2], false, "{out:#}");
    assert_eq!(
        out["packages"],
        json!([{
            "key": "hello",
            "evr": "1.0-1",
            "nevra": "hello-1.0-1.noarch",
            "reponame": "test",
            "name": "hello",
            "summary": "Strata test package hello"
        }]),
        "{out:#}"
    );
    assert_eq!(
        out["provides"],
        json!([["libhello-1.0-1.noarch", "libhello"]]),
        "{out:#}"
    );
    assert_eq!(out["active_transaction_path"], "", "{out:#}");
    // Applied, then a package layered and removed again: release 2's base is deployed.
    assert_eq!(checksums_on_disk(&env)[0], v2);
}

#[tokio::test(flavor = "multi_thread")]
async fn cockpit_s_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (_pkgs, v1, v2) = releases(dir.path());
    let mut other = v1.clone();
    other.version = "other".into();
    let env = Env::new(FixtureConfig {
        release: v1,
        ..Default::default()
    })
    .await;
    let first = env.fx.first_commit().to_string();
    let v2 = env.fx.commit(&v2).unwrap();
    let other_ref = "stratatest/other/x86_64";
    let other_commit = env.fx.repo().commit_release(other_ref, &other).unwrap();
    let other_refspec = format!("{DEFAULT_REMOTE}:{other_ref}");
    let out = client(&env, "cockpit_client.py", &[&other_refspec]).await;

    assert_eq!(out["os_methods"], 27, "{out:#}");
    assert_eq!(out["name"], strata_tests::DEFAULT_OSNAME, "{out:#}");
    assert_eq!(out["rows_before"], json!([first]), "{out:#}");
    assert_eq!(out["update"]["checksum"], v2.as_str(), "{out:#}");
    assert_eq!(out["update"]["origin"], env.fx.refspec(), "{out:#}");
    assert_eq!(out["update_available"], true, "{out:#}");
    let one_to_two = json!({
        "Additions": ["fresh 1.0-1 noarch"],
        "Removals": ["gone 1.0-1 noarch"],
        "Updates": ["base-lib 2.0-1 noarch"]
    });
    assert_eq!(out["update_diff"], one_to_two, "{out:#}");
    assert_eq!(out["rows_after_update"], json!([v2, first]), "{out:#}");
    assert_eq!(out["row_diff"], one_to_two, "{out:#}");
    assert_eq!(
        out["rebase_diff"],
        json!({
            "Additions": ["gone 1.0-1 noarch"],
            "Removals": ["fresh 1.0-1 noarch"],
            "Downgrades": ["base-lib 1.0-1 noarch"]
        }),
        "{out:#}"
    );
    assert_eq!(out["rebase_checksum"], other_commit.as_str(), "{out:#}");
    assert_eq!(
        out["origin_after_rebase"],
        other_refspec.as_str(),
        "{out:#}"
    );
    assert_eq!(out["origin_after_rollback"], env.fx.refspec(), "{out:#}");
    let on_disk = checksums_on_disk(&env);
    assert_eq!(out["rows_end"], json!(on_disk), "{out:#}");
    assert_eq!(
        on_disk[0], v2,
        "rolled back to release 2, the rebase cleaned up"
    );
}
