use std::fs;

use strata_core::{rollback, upgrade, OpContext, Outcome, RollbackOptions, UpgradeOptions};
use strata_tests::{Fixture, FixtureConfig, OsRelease};

use crate::*;

/// Titles of the BLS entries, default first, and the `/boot/loader` target.
fn boot_state(fx: &Fixture) -> (Vec<String>, String) {
    let s = fx.sysroot().unwrap();
    let titles = s
        .boot_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.title)
        .collect();
    (titles, s.loader_target().unwrap())
}

fn versions(fx: &Fixture) -> Vec<String> {
    let report = strata_core::status::load(&open(fx)).unwrap();
    report
        .deployments
        .into_iter()
        .map(|d| d.version.unwrap_or_default())
        .collect()
}

#[test]
fn rollback_swaps_default_and_back() {
    let fx = fixture();
    fx.commit(&OsRelease::new("2")).unwrap();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert_eq!(versions(&fx), ["2", "1"]);
    let out = rollback(
        &open(&fx),
        &RollbackOptions::default(),
        &OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, Outcome::Changed(_)));
    assert_eq!(versions(&fx), ["1", "2"]);
    rollback(
        &open(&fx),
        &RollbackOptions::default(),
        &OpContext::silent(),
    )
    .unwrap();
    assert_eq!(versions(&fx), ["2", "1"]);
}

#[test]
fn rollback_without_rollback_deployment_fails_cleanly() {
    let fx = fixture();
    let err = assert_fails_unchanged(&fx, |s| {
        rollback(s, &RollbackOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("No rollback deployment found"), "{err}");
    let err = assert_fails_unchanged(&fx, |s| {
        rollback(
            s,
            &RollbackOptions {
                osname: Some("nosuchos".into()),
            },
            &OpContext::silent(),
        )
    });
    assert!(err.contains("nosuchos"), "{err}");
}

/// The acceptance scenario: upgrade → rollback → upgrade on a 5,000-file release keeps
/// `/etc` edits, and the boot entries follow in the right order with `/boot/loader` swapped.
#[test]
fn upgrade_rollback_upgrade_5000_files_keeps_etc_and_boot_order() {
    let fx = fixture_with(FixtureConfig {
        release: OsRelease::new("1").extra_files(5000),
        ..Default::default()
    });
    let (titles, loader0) = boot_state(&fx);
    assert_eq!(titles.len(), 1);
    assert!(titles[0].contains("StrataTestOS-1"), "{titles:?}");

    // Administrator edits in the booted (default) deployment's /etc.
    let etc = fx.sysroot().unwrap().deploy_dir(0).unwrap().join("etc");
    fs::write(etc.join("local.conf"), "added by admin\n").unwrap();
    fs::write(etc.join("untouched.conf"), "edited by admin\n").unwrap();

    // Upgrade to 2 (all 5,000 files change).
    fx.commit(&OsRelease::new("2").extra_files(5000).extra_files_seed("v2"))
        .unwrap();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert_eq!(versions(&fx), ["2", "1"]);
    let (titles, loader1) = boot_state(&fx);
    assert_ne!(loader0, loader1, "/boot/loader was not swapped");
    assert!(titles[0].contains("StrataTestOS-2"), "{titles:?}");
    assert!(titles[1].contains("StrataTestOS-1"), "{titles:?}");
    assert_eq!(
        read_in_deployment(&fx, 0, "etc/local.conf").unwrap(),
        "added by admin\n"
    );
    assert_eq!(
        read_in_deployment(&fx, 0, "etc/untouched.conf").unwrap(),
        "edited by admin\n"
    );
    assert_eq!(
        read_in_deployment(&fx, 0, "etc/strata-test.conf").unwrap(),
        "version=2\n"
    );
    assert_eq!(
        read_in_deployment(&fx, 0, &strata_tests::extra_file_path(4999))
            .unwrap()
            .as_bytes(),
        strata_tests::extra_file_content("v2", 4999)
    );

    // Roll back to 1.
    rollback(
        &open(&fx),
        &RollbackOptions::default(),
        &OpContext::silent(),
    )
    .unwrap();
    assert_eq!(versions(&fx), ["1", "2"]);
    let (titles, loader2) = boot_state(&fx);
    assert_ne!(loader1, loader2, "/boot/loader was not swapped");
    assert!(titles[0].contains("StrataTestOS-1"), "{titles:?}");
    assert!(titles[1].contains("StrataTestOS-2"), "{titles:?}");

    // Another edit in 1's /etc, now the default, then upgrade to 3.
    let etc = fx.sysroot().unwrap().deploy_dir(0).unwrap().join("etc");
    fs::write(etc.join("after-rollback.conf"), "second edit\n").unwrap();
    fx.commit(&OsRelease::new("3").extra_files(5000).extra_files_seed("v3"))
        .unwrap();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert_eq!(versions(&fx), ["3", "1"]);
    let (titles, loader3) = boot_state(&fx);
    assert_ne!(loader2, loader3, "/boot/loader was not swapped");
    assert!(titles[0].contains("StrataTestOS-3"), "{titles:?}");
    assert!(titles[1].contains("StrataTestOS-1"), "{titles:?}");
    for (file, content) in [
        ("etc/local.conf", "added by admin\n"),
        ("etc/untouched.conf", "edited by admin\n"),
        ("etc/after-rollback.conf", "second edit\n"),
        ("etc/strata-test.conf", "version=3\n"),
    ] {
        assert_eq!(
            read_in_deployment(&fx, 0, file).as_deref(),
            Some(content),
            "{file}"
        );
    }
}
