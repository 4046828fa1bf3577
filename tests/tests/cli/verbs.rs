//! `deploy`, `rebase`, `rollback`, `kargs` and `cleanup`, end to end.

use strata_tests::{FixtureConfig, OsRelease, DEFAULT_REMOTE};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn deploy_version_rebase_rollback_and_cleanup() {
    let env = Env::new(FixtureConfig::default()).await;
    let v1 = env.fx.first_commit().to_string();
    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    let _v3 = env.fx.commit(&OsRelease::new("3")).unwrap();

    let out = env.strata(&["deploy", "version=2"]).await.expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    assert_eq!(checksums(env.sysroot()), [v2.clone(), v1.clone()]);

    let other_ref = "stratatest/other/x86_64";
    let other = env
        .fx
        .repo()
        .commit_release(other_ref, &OsRelease::new("10"))
        .unwrap();
    let refspec = format!("{DEFAULT_REMOTE}:{other_ref}");
    let out = env.strata(&["rebase", &refspec]).await.expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    let deps = env.sysroot().deployments().unwrap();
    assert_eq!(deps[0].checksum, other);
    assert!(
        deps[0].origin.as_deref().unwrap().contains(&refspec),
        "{:?}",
        deps[0].origin
    );
    let j = env.status_json().await;
    assert_eq!(j["deployments"][0]["origin"], refspec.as_str());
    assert_eq!(j["deployments"][0]["version"], "10");

    // rollback: the previous deployment (release 2) goes first again.
    let out = env.strata(&["rollback"]).await.expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    let after = checksums(env.sysroot());
    assert_eq!(after[0], v2);
    assert_eq!(after[1], other);

    // cleanup -r removes the rollback deployment (now the rebased one).
    let n = after.len();
    env.strata(&["cleanup", "-r"]).await.expect(0);
    let cleaned = checksums(env.sysroot());
    assert_eq!(cleaned.len(), n - 1, "{cleaned:?}");
    assert_eq!(cleaned[0], v2);
    assert!(!cleaned.contains(&other), "{cleaned:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kargs_append_show_delete_and_deploy_index() {
    let env = Env::new(FixtureConfig::default()).await;
    let out = env.strata(&["kargs", "--append=foo=bar"]).await.expect(0);
    assert!(
        out.stdout.contains("Kernel arguments updated.\n"),
        "{out:#?}"
    );
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    let deps = env.sysroot().deployments().unwrap();
    assert_eq!(deps.len(), 2);
    assert!(deps[0].options.as_deref().unwrap().contains("foo=bar"));

    let shown = env.strata(&["kargs"]).await.expect(0);
    assert!(
        shown.stdout.split_whitespace().any(|a| a == "foo=bar"),
        "{shown:#?}"
    );
    let shown1 = env.strata(&["kargs", "--deploy-index=1"]).await.expect(0);
    assert!(!shown1.stdout.contains("foo=bar"), "{shown1:#?}");

    let before = env.sysroot().snapshot().unwrap();
    let bad = env
        .strata(&["kargs", "--delete=nonexistent"])
        .await
        .expect(1);
    assert!(bad.stderr.starts_with("error: "), "{bad:#?}");
    assert!(bad.stderr.contains("nonexistent"), "{bad:#?}");
    assert_eq!(before, env.sysroot().snapshot().unwrap());

    // --deploy-index: the edit starts from deployment 1's arguments (without foo=bar).
    let out = env
        .strata(&["kargs", "--deploy-index=1", "--append=idx=1"])
        .await
        .expect(0);
    assert!(out.stdout.contains("Kernel arguments updated."), "{out:#?}");
    let deps = env.sysroot().deployments().unwrap();
    let args = deps[0].options.clone().unwrap();
    assert!(args.split_whitespace().any(|a| a == "idx=1"), "{args}");
    assert!(!args.split_whitespace().any(|a| a == "foo=bar"), "{args}");

    // Unchanged: exit 77 on request.
    env.strata(&["kargs", "--append-if-missing=idx=1", "--unchanged-exit-77"])
        .await
        .expect(77);
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_finalize_and_cleanup_base() {
    let env = Env::new(FixtureConfig::default()).await;
    let before = env.sysroot().snapshot().unwrap();

    let out = env.strata(&["reload"]).await.expect(0);
    assert_eq!(out.stderr, "", "{out:#?}");

    // A directory sysroot has no staged deployment to finalize: a clear error, nothing changes.
    let csum = env.fx.first_commit().to_string();
    let out = env.strata(&["finalize-deployment", &csum]).await.expect(1);
    assert!(out.stderr.starts_with("error: "), "{out:#?}");
    assert!(
        out.stderr.to_lowercase().contains("staged") || out.stderr.contains("booted"),
        "{out:#?}"
    );
    assert_eq!(before, env.sysroot().snapshot().unwrap());

    // cleanup needs at least one flag; -b -m work on an unlayered sysroot.
    let out = env.strata(&["cleanup"]).await.expect(1);
    assert!(
        out.stderr.contains("-b") || out.stderr.contains("--base"),
        "{out:#?}"
    );
    env.strata(&["cleanup", "-b", "-m"]).await.expect(0);
    assert_eq!(
        before.deployments,
        env.sysroot().snapshot().unwrap().deployments
    );
}

/// Issue 9.1: `--import-proc-cmdline` reads the booted deployment, which a sysroot that is not
/// the running system does not have; it must not import this machine's /proc/cmdline.
#[tokio::test(flavor = "multi_thread")]
async fn import_proc_cmdline_refuses_a_sysroot_that_is_not_running() {
    let env = Env::new(FixtureConfig::default()).await;
    let before = env.sysroot().snapshot().unwrap();
    let out = env
        .strata(&["kargs", "--import-proc-cmdline", "--append=x=1"])
        .await
        .expect(1);
    assert!(out.stderr.contains("is not the booted sysroot"), "{out:#?}");
    assert_eq!(before, env.sysroot().snapshot().unwrap());
    // Combined with --deploy-index it is a usage error, as in rpm-ostree.
    let out = env
        .strata(&[
            "kargs",
            "--import-proc-cmdline",
            "--deploy-index=0",
            "--append=y",
        ])
        .await
        .expect(1);
    assert!(out.stderr.contains("cannot be used with"), "{out:#?}");
}

/// `rebase` to an `oci:` image of a release, as a user types it; status shows the reference
/// and the digest as rpm-ostree does.
#[tokio::test(flavor = "multi_thread")]
async fn rebase_to_an_image_and_status() {
    let env = Env::new(FixtureConfig::default()).await;
    let v2 = env.fx.commit(&strata_tests::OsRelease::new("2")).unwrap();
    let oci = env.fx.dir().join("oci");
    let digest = strata_tests::oci::encapsulate(env.fx.repo().path(), &v2, &oci, "v2").unwrap();
    let imgref = format!("ostree-unverified-image:oci:{}:v2", oci.display());
    let out = env.strata(&["rebase", &imgref]).await.expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    let text = env.strata(&["status"]).await.expect(0);
    assert!(
        text.stdout.contains(&format!("  {imgref}\n"))
            && text
                .stdout
                .contains(&format!("                   Digest: {digest}\n")),
        "{text:#?}"
    );
    let j = env.status_json().await;
    let d = &j["deployments"][0];
    assert_eq!(d["container-image-reference"], imgref.as_str(), "{d}");
    assert_eq!(
        d["container-image-reference-digest"],
        digest.as_str(),
        "{d}"
    );
    assert!(d["base-commit-meta"]["ostree.manifest"].is_string(), "{d}");

    // `upgrade --check` asks the image's manifest: rpm-ostree's texts and exit codes.
    let none = env.strata(&["upgrade", "--check"]).await.expect(77);
    assert!(none.stdout.contains("No updates available."), "{none:#?}");
    let v3 = env.fx.commit(&strata_tests::OsRelease::new("3")).unwrap();
    let d3 = strata_tests::oci::encapsulate(env.fx.repo().path(), &v3, &oci, "v2").unwrap();
    let before = env.sysroot().snapshot().unwrap();
    let check = env.strata(&["upgrade", "--check"]).await.expect(0);
    for line in [
        "layers to fetch (",
        "AvailableUpdate:\n   Total layers: ",
        " Removed layers: ",
        "   Added layers: ",
    ] {
        assert!(check.stdout.contains(line), "{line:?} in {check:#?}");
    }
    let j = env.status_json().await;
    let cached = &j["cached-update"];
    assert_eq!(cached["origin"], imgref.as_str(), "{cached}");
    assert!(
        cached["manifest-diff"]["n-added"].as_u64() > Some(0),
        "{cached}"
    );
    let after = env.sysroot().snapshot().unwrap();
    assert_eq!(before, after, "a check deploys nothing");
    let up = env.strata(&["upgrade"]).await.expect(0);
    assert!(up.stdout.contains("Fetching layer"), "{up:#?}");
    let j = env.status_json().await;
    assert_eq!(
        j["deployments"][0]["container-image-reference-digest"],
        d3.as_str()
    );
    // A reference that names nothing fails, naming it; nothing changes.
    let before = env.sysroot().snapshot().unwrap();
    let bad = env
        .strata(&["rebase", "ostree-unverified-image:oci:/nonexistent/oci:v1"])
        .await
        .expect(1);
    assert!(bad.stderr.contains("/nonexistent/oci"), "{bad:#?}");
    assert_eq!(before, env.sysroot().snapshot().unwrap());
}
