//! Local RPM files (`requested-local`): imported into the package cache when requested,
//! layered from there on every later deployment (the file itself is not needed again),
//! removed by name.

use std::fs::{self, File};
use std::sync::Arc;

use strata_core::{pkg_change, upgrade, OpContext, PackageChange, UpgradeOptions};
use strata_tests::RpmSpec;

use crate::deploy::layering;

/// A package no repository has, needing `libhello` from the test repo.
fn local_package(dir: &std::path::Path) -> std::path::PathBuf {
    RpmSpec::new("localpkg", "1.0")
        .requires("libhello")
        .executable("usr/bin/localpkg", "#!/bin/sh\necho local\n")
        .build(dir)
        .unwrap()
}

fn install_local(
    l: &crate::deploy::Layering,
    path: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<strata_core::stage::Outcome> {
    let change = PackageChange {
        install_local: vec![Arc::new(File::open(path).unwrap())],
        dry_run,
        ..Default::default()
    };
    pkg_change(&l.sysroot(), &change, &OpContext::silent())
}

#[test]
fn a_local_package_is_layered_kept_across_upgrades_and_removed_by_name() {
    let l = layering();
    let dir = tempfile::tempdir().unwrap();
    let rpm = local_package(dir.path());

    // A dry run reads the file and changes nothing, not even the package cache.
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    install_local(&l, &rpm, true).unwrap();
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
    assert!(!l
        .refs()
        .iter()
        .any(|r| r.starts_with("rpmostree/pkg/localpkg/")));

    install_local(&l, &rpm, false).unwrap();
    let d = l.deployment();
    assert_eq!(
        fs::read_to_string(d.join("usr/bin/localpkg")).unwrap(),
        "#!/bin/sh\necho local\n"
    );
    assert!(
        d.join("usr/lib/libhello.txt").is_file(),
        "its dependency from the repo"
    );
    assert_eq!(
        l.rpm_names(),
        ["base-lib", "libhello", "localpkg", "strata-test-sh"]
    );
    let origin = l.origin();
    let line = origin
        .lines()
        .find(|l| l.starts_with("requested-local="))
        .unwrap_or_else(|| panic!("{origin}"));
    let (sha, nevra) = line["requested-local=".len()..]
        .trim_end_matches(';')
        .split_once(':')
        .unwrap();
    assert_eq!(nevra, "localpkg-1.0-1.noarch");
    assert_eq!(sha.len(), 64);
    assert!(origin.contains("baserefspec="), "{origin}");
    assert!(l
        .refs()
        .iter()
        .any(|r| r == "rpmostree/pkg/localpkg/1.0-1.noarch"));
    let st = strata_core::status::load(&l.sysroot()).unwrap();
    assert_eq!(
        st.deployments[0].requested_local_packages,
        ["localpkg-1.0-1.noarch"]
    );

    // Installing the same file again is an error; with --idempotent nothing changes.
    let err = format!("{:#}", install_local(&l, &rpm, false).unwrap_err());
    assert!(err.contains("already requested"), "{err}");

    // The file is gone; an upgrade layers the package again from the cache.
    fs::remove_file(&rpm).unwrap();
    l.upgrade_to("2");
    assert!(l.deployment().join("usr/bin/localpkg").is_file());

    // Removed by name.
    l.uninstall(&["localpkg"]).unwrap();
    assert!(!l.deployment().join("usr/bin/localpkg").exists());
    let origin = l.origin();
    assert!(!origin.contains("requested-local"), "{origin}");
    assert!(origin.contains("\nrefspec="), "{origin}");
}

#[test]
fn a_file_that_is_not_a_binary_rpm_changes_nothing() {
    let l = layering();
    let dir = tempfile::tempdir().unwrap();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let junk = dir.path().join("junk.rpm");
    fs::write(&junk, b"not an rpm").unwrap();
    let err = format!("{:#}", install_local(&l, &junk, false).unwrap_err());
    assert!(
        err.contains("not a readable RPM") || err.contains("Not a readable RPM"),
        "{err}"
    );
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
}

/// The cache entry a `requested-local` names must be the same package: one whose header
/// checksum differs (the cache ref moved to another build of the same NEVRA) is an error
/// naming it, not a silent swap.
#[test]
fn a_local_request_whose_cache_entry_changed_is_refused() {
    let l = layering();
    let dir = tempfile::tempdir().unwrap();
    let rpm = local_package(dir.path());
    install_local(&l, &rpm, false).unwrap();
    // Another build of the same NEVRA, imported over the cache ref.
    let other_dir = tempfile::tempdir().unwrap();
    let other = RpmSpec::new("localpkg", "1.0")
        .requires("libhello")
        .executable("usr/bin/localpkg", "#!/bin/sh\necho other\n")
        .build(other_dir.path())
        .unwrap();
    let repo = ostree::Repo::new_for_path(l.fx.sysroot().unwrap().repo_path());
    repo.open(ostree::gio::Cancellable::NONE).unwrap();
    strata_core::layering::import_rpm(&repo, &other, None, &OpContext::silent()).unwrap();
    l.fx.commit(&l.pkgs.release("2")).unwrap();
    let before = l.fx.sysroot().unwrap().deployments().unwrap();
    let err = format!(
        "{:#}",
        upgrade(
            &l.sysroot(),
            &UpgradeOptions::default(),
            &OpContext::silent()
        )
        .unwrap_err()
    );
    assert!(
        err.contains("localpkg-1.0-1.noarch") && err.contains("not in the package cache"),
        "{err}"
    );
    assert_eq!(l.fx.sysroot().unwrap().deployments().unwrap(), before);
}
