//! `install` / `uninstall` / `reset` through the daemon, with packages from a real rpm-md
//! repository configured in the deployment's `/etc/yum.repos.d`.

use strata_tests::{FixtureConfig, TestPackages};

use crate::{Env, NEXT_BOOT};

async fn env() -> (Env, TestPackages, tempfile::TempDir) {
    strata_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let pkgs = TestPackages::create(dir.path()).unwrap();
    let env = Env::new(FixtureConfig {
        release: pkgs.release("1"),
        ..Default::default()
    })
    .await;
    (env, pkgs, dir)
}

#[tokio::test]
async fn install_then_uninstall_as_a_user_does() {
    let (env, _pkgs, _dir) = env().await;
    let before = env.sysroot().deployments().unwrap().len();
    let out = env.strata(&["install", "hello"]).await.expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    assert_eq!(env.sysroot().deployments().unwrap().len(), before + 1);

    let out = env.strata(&["status"]).await.expect(0);
    assert!(
        out.stdout.contains("LayeredPackages: hello"),
        "{}",
        out.stdout
    );
    let st = env.status_json().await;
    let d = &st["deployments"][0];
    assert_eq!(d["packages"], serde_json::json!(["hello"]));
    assert_eq!(d["requested-packages"], serde_json::json!(["hello"]));
    assert_eq!(d["base-checksum"], serde_json::json!(env.fx.first_commit()));
    assert_eq!(
        d["layered-commit-meta"]["rpmostree.clientlayer"],
        serde_json::json!(true)
    );

    // Asking again is an error, or exit 77 with --idempotent (Ansible relies on it).
    let out = env.strata(&["install", "hello"]).await.expect(1);
    assert!(out.stderr.contains("already requested"), "{out:#?}");
    env.strata(&["install", "--idempotent", "hello"])
        .await
        .expect(77);

    env.strata(&["uninstall", "hello"]).await.expect(0);
    let st = env.status_json().await;
    assert_eq!(
        st["deployments"][0]["requested-packages"],
        serde_json::json!([])
    );
    assert_eq!(
        st["deployments"][0]["checksum"],
        serde_json::json!(env.fx.first_commit())
    );
    env.strata(&["uninstall", "--idempotent", "hello"])
        .await
        .expect(77);
    let out = env.strata(&["uninstall", "hello"]).await.expect(1);
    assert!(out.stderr.contains("not currently requested"), "{out:#?}");
}

#[tokio::test]
async fn dry_run_missing_packages_and_reset_change_nothing_or_everything() {
    let (env, _pkgs, _dir) = env().await;
    let before = env.sysroot().snapshot().unwrap();
    let out = env.strata(&["install", "-n", "tool"]).await.expect(0);
    assert!(out.stdout.contains("--dry-run"), "{out:#?}");
    let out = env.strata(&["install", "no-such-package"]).await.expect(1);
    assert!(
        out.stderr.contains("Packages not found: no-such-package"),
        "{out:#?}"
    );
    let out = env.strata(&["install", "./local-1.0.rpm"]).await.expect(1);
    assert!(out.stderr.contains("not supported yet"), "{out:#?}");
    assert_eq!(env.sysroot().snapshot().unwrap(), before);

    env.strata(&["install", "hello", "tool"]).await.expect(0);
    let st = env.status_json().await;
    assert_eq!(
        st["deployments"][0]["packages"],
        serde_json::json!(["hello", "tool"])
    );
    env.strata(&["reset"]).await.expect(0);
    let st = env.status_json().await;
    assert_eq!(
        st["deployments"][0]["requested-packages"],
        serde_json::json!([])
    );
}
