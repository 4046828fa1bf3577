use strata_core::{status, upgrade, OpContext, Outcome, UpgradeOptions};
use strata_tests::{FixtureConfig, GpgKey, OsRelease};

use crate::*;

fn signed_fixture() -> strata_tests::Fixture {
    fixture_with(FixtureConfig {
        gpg: true,
        ..Default::default()
    })
}

#[test]
fn signed_upgrade_succeeds_and_status_reports_signature() {
    let fx = signed_fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { checksum, .. } if checksum == v2));
    let report = status::load(&open(&fx)).unwrap();
    let d = &report.deployments[0];
    assert_eq!(d.gpg_enabled, Some(true));
    let sigs = d.signatures.as_ref().expect("signatures");
    assert_eq!(sigs.len(), 1);
    // ostree_gpg_verify_result_get_all: [0] valid, [5] fingerprint.
    assert_eq!(sigs[0][0], true, "{sigs:?}");
    assert_eq!(sigs[0][5], fx.gpg().unwrap().key_id(), "{sigs:?}");
}

#[test]
fn unsigned_commit_is_rejected() {
    let fx = signed_fixture();
    fx.commit(&OsRelease::new("2").unsigned()).unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("gpg-verify=true"), "{err}");
    assert!(err.to_lowercase().contains("signature"), "{err}");
}

#[test]
fn commit_signed_by_unknown_key_is_rejected() {
    let fx = signed_fixture();
    let other = GpgKey::generate(&fx.dir().join("other")).unwrap();
    assert_ne!(other.key_id(), fx.gpg().unwrap().key_id());
    fx.commit(&OsRelease::new("2").sign_with(other.signer()))
        .unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("gpg-verify=true"), "{err}");
}

#[test]
fn an_unsigned_commit_already_here_is_not_deployed_from_a_signed_remote() {
    use strata_core::{deploy, DeployOptions, Revision};
    let fx = signed_fixture();
    let v2 = fx.commit(&OsRelease::new("2").unsigned()).unwrap();
    // Into the sysroot's repo past any signature check, as a local copy would bring it.
    let repo = fx.sysroot().unwrap().path().join("ostree/repo");
    strata_tests::cmd::ostree([
        "pull-local".into(),
        format!("--repo={}", repo.display()),
        fx.repo().path().display().to_string(),
        v2.clone(),
    ])
    .unwrap();
    let mut opts = DeployOptions::new(Revision::Checksum(v2));
    opts.skip_branch_check = true;
    let err = assert_fails_unchanged(&fx, |s| deploy(s, &opts, &OpContext::silent()));
    assert!(err.contains("gpg-verify=true"), "{err}");
}
