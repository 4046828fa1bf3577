use std::fs;

use strata_core::{upgrade, OpContext, UpgradeOptions};
use strata_tests::{FixtureConfig, OsRelease};

use crate::*;

/// libostree's 3-way `/etc` merge, as Strata's upgrade drives it: locally modified files are
/// kept, untouched files are updated, locally deleted files stay deleted, locally added files
/// are kept.
#[test]
fn three_way_etc_merge() {
    let fx = fixture_with(FixtureConfig {
        release: OsRelease::new("1")
            .file("usr/etc/modified.conf", "vendor 1\n")
            .file("usr/etc/deleted.conf", "vendor 1\n")
            .file("usr/etc/updated.conf", "vendor 1\n"),
        ..Default::default()
    });
    let etc = fx.sysroot().unwrap().deploy_dir(0).unwrap().join("etc");
    assert_eq!(
        fs::read_to_string(etc.join("updated.conf")).unwrap(),
        "vendor 1\n"
    );
    fs::write(etc.join("modified.conf"), "local\n").unwrap();
    fs::remove_file(etc.join("deleted.conf")).unwrap();
    fs::write(etc.join("added.conf"), "local addition\n").unwrap();

    fx.commit(
        &OsRelease::new("2")
            .file("usr/etc/modified.conf", "vendor 2\n")
            .file("usr/etc/deleted.conf", "vendor 2\n")
            .file("usr/etc/updated.conf", "vendor 2\n")
            .file("usr/etc/new-in-2.conf", "vendor 2\n"),
    )
    .unwrap();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();

    let read = |f: &str| read_in_deployment(&fx, 0, &format!("etc/{f}"));
    assert_eq!(
        read("modified.conf").as_deref(),
        Some("local\n"),
        "local edit lost"
    );
    assert_eq!(
        read("updated.conf").as_deref(),
        Some("vendor 2\n"),
        "untouched file not updated"
    );
    assert_eq!(read("deleted.conf"), None, "locally deleted file came back");
    assert_eq!(
        read("added.conf").as_deref(),
        Some("local addition\n"),
        "local file lost"
    );
    assert_eq!(read("new-in-2.conf").as_deref(), Some("vendor 2\n"));
    // The old deployment's /etc is untouched.
    assert_eq!(
        read_in_deployment(&fx, 1, "etc/updated.conf").as_deref(),
        Some("vendor 1\n")
    );
}
