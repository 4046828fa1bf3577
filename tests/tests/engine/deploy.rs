use strata_core::{deploy, upgrade, DeployOptions, OpContext, Outcome, Revision, UpgradeOptions};
use strata_tests::OsRelease;

use crate::*;

fn origin_text(fx: &strata_tests::Fixture, index: usize) -> String {
    fx.sysroot().unwrap().deployments().unwrap()[index]
        .origin
        .clone()
        .unwrap()
}

#[test]
fn deploy_by_version_pins_the_origin() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let _v3 = fx.commit(&OsRelease::new("3")).unwrap();
    let out = deploy(
        &open(&fx),
        &DeployOptions::new(Revision::parse("version=2").unwrap()),
        &OpContext::silent(),
    )
    .unwrap();
    assert!(
        matches!(out, Outcome::Deployed { ref checksum, .. } if *checksum == v2),
        "{out:?}"
    );
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(deps[0].checksum, v2);
    assert!(
        origin_text(&fx, 0).contains(&format!("override-commit={v2}")),
        "{}",
        origin_text(&fx, 0)
    );
    // Upgrade follows the ref again and drops the pin.
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { version: Some(ref v), .. } if v == "3"));
    assert!(!origin_text(&fx, 0).contains("override-commit"));
}

#[test]
fn deploy_by_checksum_in_branch() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    fx.commit(&OsRelease::new("3")).unwrap();
    let out = deploy(
        &open(&fx),
        &DeployOptions::new(Revision::Checksum(v2.clone())),
        &OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, Outcome::Deployed { checksum, .. } if checksum == v2));
}

#[test]
fn deploy_current_commit_is_unchanged() {
    let fx = fixture();
    let before = snapshot(&fx);
    let out = deploy(
        &open(&fx),
        &DeployOptions::new(Revision::Checksum(fx.first_commit().to_string())),
        &OpContext::silent(),
    )
    .unwrap();
    assert_eq!(out, Outcome::Unchanged);
    assert_eq!(before, snapshot(&fx));
}

#[test]
fn unknown_version_fails_cleanly() {
    let fx = fixture();
    fx.commit(&OsRelease::new("2")).unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        deploy(
            s,
            &DeployOptions::new(Revision::Version("42".into())),
            &OpContext::silent(),
        )
    });
    assert!(err.contains("Version \"42\" not found"), "{err}");
    assert!(err.contains("2, 1"), "lists the versions there: {err}");
}

#[test]
fn checksum_outside_branch_needs_skip_branch_check() {
    let fx = fixture();
    // A commit on another branch of the same remote.
    let other = fx
        .repo()
        .commit_release("stratatest/other/x86_64", &OsRelease::new("9"))
        .unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        deploy(
            s,
            &DeployOptions::new(Revision::Checksum(other.clone())),
            &OpContext::silent(),
        )
    });
    assert!(err.contains("--skip-branch-check"), "{err}");
    let mut opts = DeployOptions::new(Revision::Checksum(other.clone()));
    opts.skip_branch_check = true;
    let out = deploy(&open(&fx), &opts, &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { checksum, .. } if checksum == other));
}

#[test]
fn disallow_downgrade_refuses_older_target() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    let mut opts = DeployOptions::new(Revision::Version("1".into()));
    opts.disallow_downgrade = true;
    let err = assert_fails_unchanged(&fx, |s| deploy(s, &opts, &OpContext::silent()));
    assert!(err.contains("refusing to downgrade"), "{err}");
    // Deploy allows downgrades by default.
    let out = deploy(
        &open(&fx),
        &DeployOptions::new(Revision::Version("1".into())),
        &OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, Outcome::Deployed { ref checksum, .. } if checksum == fx.first_commit()));
    assert_ne!(v2, fx.first_commit());
}

#[test]
fn bogus_revision_is_rejected_before_anything_happens() {
    for bad in ["revision=xyz", "", "a b", "version="] {
        let e = Revision::parse(bad).unwrap_err().to_string();
        assert!(e.contains("Invalid revision"), "{bad:?}: {e}");
    }
}

#[test]
fn a_commit_already_here_is_deployed_without_asking_the_remote() {
    let fx = fixture_with(strata_tests::FixtureConfig {
        http: true,
        ..Default::default()
    });
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let v3 = fx.commit(&OsRelease::new("3")).unwrap();
    let download = UpgradeOptions {
        download_only: true,
        ..Default::default()
    };
    upgrade(&open(&fx), &download, &OpContext::silent()).unwrap();
    // v2 as its commit object alone (what fetching the history leaves).
    let config = fx.sysroot_config();
    let repo = fx.sysroot().unwrap().path().join("ostree/repo");
    strata_tests::cmd::ostree([
        "pull".to_string(),
        format!("--repo={}", repo.display()),
        "--commit-metadata-only".to_string(),
        "--depth=1".to_string(),
        config.remote.clone(),
        config.ref_.clone(),
    ])
    .unwrap();
    let http = fx.http().unwrap();
    let deploy_commit = |checksum: &str| -> Result<Vec<String>, String> {
        let from = http.request_log().len();
        let opts = DeployOptions::new(Revision::Checksum(checksum.to_string()));
        let out = deploy(&open(&fx), &opts, &OpContext::silent()).map_err(|e| format!("{e:#}"))?;
        assert!(matches!(out, Outcome::Deployed { checksum: c, .. } if c == checksum));
        Ok(http.request_log()[from..]
            .iter()
            .map(|r| r.path.clone())
            .collect())
    };
    // The downloaded head is whole here, on the branch's local history, and the remote's
    // summary says the branch is still there: nothing but the summary is fetched.
    let asked = deploy_commit(&v3).unwrap();
    assert!(
        asked
            .iter()
            .all(|p| p.ends_with("/summary") || p.ends_with("/summary.sig")),
        "{asked:?}"
    );
    // Its parent is only a commit object here: fetched.
    let asked = deploy_commit(&v2).unwrap();
    assert!(asked.iter().any(|p| p.contains("/objects/")), "{asked:?}");
    // The remote resets its branch to v2: v3, whole here and on the local history, is no
    // longer on the branch, and the remote says so.
    fx.repo().set_ref(&config.ref_, &v2).unwrap();
    let err = deploy_commit(&v3).unwrap_err();
    assert!(err.contains("--skip-branch-check"), "{err}");
}
