//! Scriptlets in the bubblewrap sandbox: what they write is kept, the repository's objects
//! are never written, users they create own the package's files, Lua is refused, a failing or
//! cancelled scriptlet changes nothing.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use strata_core::{pkg_change, Event, OpContext, PackageChange};
use strata_tests::{cmd, UNTOUCHED_CONF};

use crate::deploy::layering;

#[test]
fn post_scripts_write_etc_and_the_repository_stays_intact() {
    let l = layering();
    l.install(&["scripted", "appender"]).unwrap();
    let d = l.deployment();
    assert_eq!(
        fs::read_to_string(d.join("etc/scripted")).unwrap(),
        "post\n"
    );
    assert_eq!(
        fs::read_to_string(d.join("etc/untouched.conf")).unwrap(),
        format!("{UNTOUCHED_CONF}appended\n")
    );
    // The append went to a copy: the base commit's file is unchanged and the repo is sound.
    let repo = format!("--repo={}", l.fx.sysroot().unwrap().repo_path().display());
    let base_file =
        cmd::ostree(["cat", &repo, l.fx.first_commit(), "/usr/etc/untouched.conf"]).unwrap();
    assert_eq!(base_file, UNTOUCHED_CONF);
    cmd::ostree(["fsck", &repo]).unwrap();
}

#[test]
fn a_user_created_in_pre_owns_the_package_files() {
    let l = layering();
    l.install(&["svc"]).unwrap();
    let d = l.deployment();
    let m = fs::metadata(d.join("usr/share/svc/data")).unwrap();
    assert_eq!((m.uid(), m.gid()), (990, 990));
    let passwd = fs::read_to_string(d.join("etc/passwd")).unwrap();
    assert!(passwd.contains("svc:x:990:990:"), "{passwd}");
}

#[test]
fn lua_and_failing_scriptlets_are_refused_and_change_nothing() {
    let l = layering();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let err = format!("{:#}", l.install(&["lua"]).unwrap_err());
    assert!(
        err.contains("lua-1.0-1.noarch") && err.contains("Lua"),
        "{err}"
    );
    let err = format!("{:#}", l.install(&["failing"]).unwrap_err());
    assert!(
        err.contains("failing-1.0-1.noarch %post") && err.contains("about to fail"),
        "{err}"
    );
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
}

#[test]
fn a_scriptlet_that_never_ends_is_cancelled() {
    let l = layering();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let cancellable = strata_tests::gio::Cancellable::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c2, seen2) = (cancellable.clone(), seen.clone());
    let ctx = OpContext::new(
        move |e| {
            if let Event::TaskBegin(t) = e {
                seen2.lock().unwrap().push(t.clone());
                if t.starts_with("Running post scripts") {
                    // Let the script start, then cancel from another thread.
                    let c = c2.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        use strata_tests::gio::prelude::CancellableExt;
                        c.cancel();
                    });
                }
            }
        },
        cancellable,
    );
    let change = PackageChange {
        install: vec!["forever".into()],
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = pkg_change(&l.sysroot(), &change, &ctx).unwrap_err();
    assert!(strata_core::is_cancelled(&err), "{err:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|t| t.starts_with("Running post scripts")),
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
}

/// `%transfiletriggerin` of a base package runs for the files a layered package adds, with
/// the matching paths on stdin; a layered package's own trigger runs too; a trigger whose
/// paths match nothing does not run.
#[test]
fn trans_file_triggers_of_base_and_layered_packages_run() {
    let l = crate::deploy::layering();
    l.install(&["hello"]).unwrap();
    let d = l.deployment();
    assert!(
        !d.join("usr/lib/base-lib.triggered").exists(),
        "nothing under /usr/share/triggered: the trigger must not run"
    );
    l.install(&["triggered"]).unwrap();
    let d = l.deployment();
    assert_eq!(
        std::fs::read_to_string(d.join("usr/lib/base-lib.triggered")).unwrap(),
        "/usr/share/triggered/a.txt\n"
    );
    l.install(&["watcher"]).unwrap();
    let d = l.deployment();
    assert_eq!(
        std::fs::read_to_string(d.join("usr/share/watcher.seen")).unwrap(),
        "/usr/share/triggered/a.txt\n"
    );
}

/// Trigger kinds Strata does not run are refused by name before anything is deployed.
#[test]
fn per_package_file_triggers_are_refused_naming_the_package() {
    let l = crate::deploy::layering();
    l.pkgs
        .repo
        .add(&strata_tests::RpmSpec::new("pertrigger", "1.0").script(
            strata_tests::ScriptPhase::FileTriggerIn(vec!["/usr/share".into()]),
            "true",
        ))
        .unwrap();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let err = format!("{:#}", l.install(&["pertrigger"]).unwrap_err());
    assert!(
        err.contains("pertrigger-1.0-1.noarch") && err.contains("%filetriggerin"),
        "{err}"
    );
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
}

/// A package whose user exists only in its `sysusers.d` file (rpm ≥ 4.19 style, no `%pre`):
/// the tree's `systemd-sysusers` runs in the sandbox before ownership is applied. The test
/// base's `systemd-sysusers` is a small script that turns `u NAME` lines into passwd and group
/// entries (the real one needs a libc the test tree does not have; the VM suite runs it).
#[test]
fn sysusers_users_exist_before_ownership_is_applied() {
    strata_tests::init();
    let rpms = tempfile::tempdir().unwrap();
    let pkgs = strata_tests::TestPackages::create(rpms.path()).unwrap();
    pkgs.repo
        .add(
            &strata_tests::RpmSpec::new("sysu", "1.0")
                .file("usr/lib/sysusers.d/sysu.conf", "u sysu - - /\n")
                .file("usr/share/sysu/data", "x\n")
                .owner("sysu", "sysu"),
        )
        .unwrap();
    // Shell builtins only: the test tree's only program is busybox as /usr/bin/sh.
    let fake = r#"#!/bin/sh
for f in /usr/lib/sysusers.d/*.conf; do
  while read -r kind name rest; do
    if [ "$kind" = u ]; then
      echo "$name:x:991:991::/:/sbin/nologin" >> /etc/passwd
      echo "$name:x:991:" >> /etc/group
    fi
  done < "$f"
done
"#;
    let fx = strata_tests::Fixture::new(&strata_tests::FixtureConfig {
        release: pkgs
            .release("1")
            .executable("usr/bin/systemd-sysusers", fake),
        ..Default::default()
    })
    .unwrap();
    let l = crate::deploy::Layering::from_parts(fx, pkgs, rpms);
    l.install(&["sysu"]).unwrap();
    let meta = fs::metadata(l.deployment().join("usr/share/sysu/data")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (991, 991));
    let passwd = fs::read_to_string(l.deployment().join("usr/etc/passwd")).unwrap();
    assert!(passwd.contains("sysu:x:991:991"), "{passwd}");
}
