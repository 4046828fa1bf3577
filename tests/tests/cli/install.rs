//! `install` / `uninstall` / `reset` through the daemon, with packages from a real rpm-md
//! repository configured in the deployment's `/etc/yum.repos.d`.

use strata_tests::{FixtureConfig, RpmSpec, TestPackages};

use crate::{output, Env, NEXT_BOOT};

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
    assert!(out.stderr.contains("./local-1.0.rpm"), "{out:#?}");
    let out = env
        .strata(&["install", "https://example.com/x-1.0-1.noarch.rpm"])
        .await
        .expect(1);
    assert!(
        out.stderr.contains("by URL is not supported yet"),
        "{out:#?}"
    );
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

/// A local .rpm goes to the daemon as a file descriptor (the file is opened by the CLI), is
/// layered with its dependency from the repo, shows in status and goes away by name.
#[tokio::test]
async fn a_local_rpm_file_is_layered() {
    let (env, _pkgs, dir) = env().await;
    let rpm = RpmSpec::new("localpkg", "1.0")
        .requires("libhello")
        .executable("usr/bin/localpkg", "#!/bin/sh\necho local\n")
        .build(&dir.path().join("local"))
        .unwrap();
    let out = env
        .strata(&["install", &rpm.to_string_lossy()])
        .await
        .expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    let out = env.strata(&["status"]).await.expect(0);
    assert!(
        out.stdout.contains("LocalPackages: localpkg-1.0-1.noarch"),
        "{}",
        out.stdout
    );
    let st = env.status_json().await;
    assert_eq!(
        st["deployments"][0]["requested-local-packages"],
        serde_json::json!(["localpkg-1.0-1.noarch"])
    );
    assert!(env
        .sysroot()
        .deploy_dir(0)
        .unwrap()
        .join("usr/bin/localpkg")
        .is_file());
    env.strata(&["uninstall", "localpkg"]).await.expect(0);
    let st = env.status_json().await;
    assert_eq!(
        st["deployments"][0]["requested-local-packages"],
        serde_json::json!([])
    );
}

/// The walkthrough people follow on Fedora CoreOS: install one package, then a second; status,
/// the package refs and their content; rollback; uninstall one; cleanup drops unused refs.
#[tokio::test]
async fn the_fedora_coreos_walkthrough() {
    let (env, _pkgs, _dir) = env().await;
    let repo = format!("--repo={}", env.sysroot().repo_path().display());
    let out = output(env.rpm_ostree_cmd(&["install", "hello"]))
        .await
        .expect(0);
    assert!(out.stdout.contains(NEXT_BOOT), "{out:#?}");
    output(env.rpm_ostree_cmd(&["install", "tool"]))
        .await
        .expect(0);
    let out = env.strata(&["status"]).await.expect(0);
    assert!(
        out.stdout.contains("LayeredPackages: hello tool"),
        "{}",
        out.stdout
    );

    let refs = strata_tests::cmd::ostree(["refs", &repo]).unwrap();
    for want in [
        "rpmostree/pkg/hello/1.0-1.noarch",
        "rpmostree/pkg/libhello/1.0-1.noarch",
        "rpmostree/pkg/tool/2.0-1.noarch",
        "rpmostree/base/0",
    ] {
        assert!(refs.lines().any(|r| r == want), "{want} not in\n{refs}");
    }
    let ls =
        strata_tests::cmd::ostree(["ls", "-R", &repo, "rpmostree/pkg/hello/1.0-1.noarch"]).unwrap();
    assert!(
        ls.contains("/usr/bin/hello") && ls.contains("/usr/etc/hello.conf"),
        "{ls}"
    );
    let co = env.fx.dir().join("hello-checkout");
    strata_tests::cmd::ostree([
        "checkout",
        &repo,
        "-U",
        "rpmostree/pkg/hello/1.0-1.noarch",
        co.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(co.join("usr/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );

    // Rollback makes the deployment with only hello the default again.
    env.strata(&["rollback"]).await.expect(0);
    let st = env.status_json().await;
    assert_eq!(
        st["deployments"][0]["packages"],
        serde_json::json!(["hello"])
    );

    env.strata(&["uninstall", "hello"]).await.expect(0);
    let st = env.status_json().await;
    assert_eq!(st["deployments"][0]["packages"], serde_json::json!([]));
    // Once no deployment layers them, cleanup drops the package refs.
    env.strata(&["cleanup", "-r"]).await.expect(0);
    env.strata(&["cleanup", "-b"]).await.expect(0);
    let refs = strata_tests::cmd::ostree(["refs", &repo]).unwrap();
    assert!(!refs.contains("rpmostree/pkg/tool"), "{refs}");
}

/// `refresh-md` and `search`, with rpm-ostree's output.
#[tokio::test]
async fn refresh_md_and_search() {
    let (env, _pkgs, _dir) = env().await;
    let out = env.strata(&["refresh-md"]).await.expect(0);
    assert!(
        out.stdout.contains("Enabled rpm-md repositories: test"),
        "{out:#?}"
    );
    env.strata(&["refresh-md", "--force"]).await.expect(0);
    let out = env.strata(&["search", "libhello"]).await.expect(0);
    assert_eq!(
        out.stdout,
        "\n===== Summary & Name Matched =====\nlibhello : Strata test package libhello\n\
         \n===== Name Matched =====\nlibhello : Strata test package libhello\n\
         \n===== Summary Matched =====\nlibhello : Strata test package libhello\n",
        "{out:#?}"
    );
    let out = env.strata(&["search", "zzz-nothing"]).await.expect(0);
    assert_eq!(out.stdout, "No matches found.\n", "{out:#?}");
    // No term is a usage error, as in rpm-ostree.
    let out = env.strata(&["search"]).await.expect(1);
    assert!(out.stderr.contains("<PACKAGE>"), "{out:#?}");
}
