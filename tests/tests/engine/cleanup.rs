use strata_core::{cleanup, upgrade, CleanupOptions, OpContext, UpgradeOptions};
use strata_tests::OsRelease;

use crate::*;

fn two_deployments() -> strata_tests::Fixture {
    let fx = fixture();
    fx.commit(&OsRelease::new("2")).unwrap();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert_eq!(fx.sysroot().unwrap().deployments().unwrap().len(), 2);
    fx
}

#[test]
fn cleanup_rollback_removes_old_deployment() {
    let fx = two_deployments();
    let keep = fx.sysroot().unwrap().deployments().unwrap()[0].clone();
    cleanup(
        &open(&fx),
        &CleanupOptions {
            rollback: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(deps.len(), 1);
    // The boot version (and so the `ostree=` path in the options) changes; the deployment not.
    assert_eq!(
        (&deps[0].checksum, deps[0].serial, &deps[0].origin),
        (&keep.checksum, keep.serial, &keep.origin)
    );
    assert_eq!(
        snapshot(&fx).deploy_dirs.len(),
        1,
        "old deployment directory left behind"
    );
}

#[test]
fn cleanup_pending_on_unbooted_sysroot_removes_nothing() {
    let fx = two_deployments();
    let before = snapshot(&fx);
    cleanup(
        &open(&fx),
        &CleanupOptions {
            pending: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    assert_eq!(before, snapshot(&fx));
}

#[test]
fn pinned_deployments_survive_cleanup() {
    let fx = two_deployments();
    let s = fx.sysroot().unwrap();
    strata_tests::cmd::ostree([
        "admin",
        "pin",
        &format!("--sysroot={}", s.path().display()),
        "1",
    ])
    .unwrap();
    cleanup(
        &open(&fx),
        &CleanupOptions {
            rollback: true,
            pending: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    let deps = s.deployments().unwrap();
    assert_eq!(deps.len(), 2);
    assert!(deps[1].pinned);
}

#[test]
fn cleanup_base_regenerates_base_refs() {
    let fx = fixture();
    let s = fx.sysroot().unwrap();
    let repo_arg = format!("--repo={}", s.repo_path().display());
    strata_tests::cmd::ostree([
        "refs",
        &repo_arg,
        "--create=rpmostree/base/7",
        fx.first_commit(),
    ])
    .unwrap();
    cleanup(
        &open(&fx),
        &CleanupOptions {
            base: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    let refs = strata_tests::cmd::ostree(["refs", &repo_arg]).unwrap();
    assert!(
        !refs.contains("rpmostree/base/"),
        "stale base ref kept: {refs}"
    );
    // The deployment is untouched.
    assert_eq!(s.deployments().unwrap().len(), 1);
}

#[test]
fn cleanup_without_choice_is_an_error() {
    let fx = fixture();
    let err = assert_fails_unchanged(&fx, |s| {
        cleanup(s, &CleanupOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("Nothing to clean"), "{err}");
}

#[test]
fn cleanup_repomd_removes_the_caches_and_never_follows_a_symlink_out() {
    let fx = fixture();
    let sysroot = fx.sysroot().unwrap();
    let var = sysroot
        .path()
        .join("ostree/deploy")
        .join(sysroot.osname())
        .join("var");
    let cache = var.join("cache/rpm-ostree");
    for sub in ["repomd/fedora", "solv"] {
        std::fs::create_dir_all(cache.join(sub)).unwrap();
        std::fs::write(cache.join(sub).join("data"), "x").unwrap();
    }
    let repomd = CleanupOptions {
        repomd: true,
        ..Default::default()
    };
    cleanup(&open(&fx), &repomd, &OpContext::silent()).unwrap();
    assert!(!cache.join("repomd").exists());
    assert!(!cache.join("solv").exists());

    // A planted symlink that points the cache outside the sysroot: the removal refuses to
    // follow it, and what is outside stays.
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("repomd")).unwrap();
    std::fs::write(outside.path().join("repomd/keep"), "precious").unwrap();
    std::fs::remove_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(outside.path(), &cache).unwrap();
    let err = cleanup(&open(&fx), &repomd, &OpContext::silent()).unwrap_err();
    assert!(
        format!("{err:#}").contains("var/cache/rpm-ostree/repomd"),
        "{err:#}"
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("repomd/keep")).unwrap(),
        "precious"
    );
}

#[test]
fn leftovers_are_found_and_removed_and_a_clean_sysroot_is_left_alone() {
    let fx = two_deployments();
    let sysroot = fx.sysroot().unwrap();
    let deploy_root = sysroot
        .path()
        .join("ostree/deploy")
        .join(sysroot.osname())
        .join("deploy");
    // Nothing to do: libostree's cleanup (and its repository transaction) is not run.
    assert!(!cleanup::remove_leftovers(&open(&fx)).unwrap());
    let before = snapshot(&fx);
    // What a crash while writing a deployment leaves: its directory and origin.
    let csum = sysroot.deployments().unwrap()[0].checksum.clone();
    let stray = deploy_root.join(format!("{csum}.7"));
    std::fs::create_dir_all(stray.join("usr")).unwrap();
    std::fs::write(deploy_root.join(format!("{csum}.7.origin")), "[origin]\n").unwrap();
    assert!(cleanup::remove_leftovers(&open(&fx)).unwrap());
    assert!(!stray.exists());
    assert!(!deploy_root.join(format!("{csum}.7.origin")).exists());
    assert_eq!(before, snapshot(&fx));
    // A deployment ref gone missing is put back.
    let repo_arg = format!("--repo={}", sysroot.path().join("ostree/repo").display());
    let refs = strata_tests::cmd::ostree(["refs", &repo_arg, "ostree"]).unwrap();
    // Listed relative to the prefix.
    let first = format!("ostree/{}", refs.lines().next().unwrap().trim());
    strata_tests::cmd::ostree(["refs", &repo_arg, "--delete", &first]).unwrap();
    assert!(cleanup::remove_leftovers(&open(&fx)).unwrap());
    // Refs of ostree-ext's under `ostree/` are not deployment refs.
    let image_ref = "--create=ostree/container/image/bench";
    strata_tests::cmd::ostree(["refs", &repo_arg, image_ref, &csum]).unwrap();
    let refs = strata_tests::cmd::ostree(["refs", &repo_arg, "ostree"]).unwrap();
    assert!(refs.lines().any(|l| first.ends_with(l.trim())), "{refs}");
    assert!(!cleanup::remove_leftovers(&open(&fx)).unwrap());
    // An overlay initramfs no deployment names (a crash after it was stored).
    let overlays = sysroot.path().join("boot/ostree/initramfs-overlays");
    std::fs::create_dir_all(&overlays).unwrap();
    std::fs::write(overlays.join("0123abcd.img"), "initrd").unwrap();
    assert!(cleanup::remove_leftovers(&open(&fx)).unwrap());
    assert!(!overlays.join("0123abcd.img").exists());
    assert!(!cleanup::remove_leftovers(&open(&fx)).unwrap());
}
