//! `status` in every format, as users and Zincati read it.

use strata_tests::FixtureConfig;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn status_text_json_booted_and_jsonpath() {
    let env = Env::new(FixtureConfig::default()).await;
    let csum = env.fx.first_commit().to_string();

    let text = env.strata(&["status"]).await.expect(0);
    assert!(text.stdout.starts_with("State: idle\n"), "{text:#?}");
    // As rpm-ostree: the policy "none" is only shown with --verbose.
    assert!(
        text.stdout.starts_with("State: idle\nDeployments:\n"),
        "{text:#?}"
    );
    let verbose = env.strata(&["status", "-v"]).await.expect(0);
    assert!(
        verbose.stdout.contains("\nAutomaticUpdates: disabled\n"),
        "{verbose:#?}"
    );
    assert!(text.stdout.contains("Version: 1 ("), "{text:#?}");
    assert!(text.stdout.contains(&csum), "{text:#?}");
    assert!(!text.stdout.contains("AutomaticUpdatesDriver"), "{text:#?}");
    assert_eq!(text.stderr, "");

    let j = env.status_json().await;
    let top: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        top,
        [
            "deployments",
            "transaction",
            "cached-update",
            "update-driver"
        ]
    );
    assert!(j["transaction"].is_null());
    assert!(j["cached-update"].is_null());
    assert!(j["update-driver"].is_null());
    let deps = j["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0]["checksum"], csum.as_str());
    assert_eq!(deps[0]["version"], "1");
    assert_eq!(deps[0]["osname"], strata_tests::DEFAULT_OSNAME);
    assert_eq!(deps[0]["booted"], false, "the kit's sysroot is not booted");
    // What Zincati's serde structs require, on every entry.
    for d in deps {
        assert!(d["booted"].is_boolean(), "{d}");
        assert!(d["checksum"].is_string(), "{d}");
        assert!(d["version"].is_string(), "{d}");
        assert!(d["base-commit-meta"].is_object(), "{d}");
    }
    assert_eq!(deps[0]["base-commit-meta"]["version"], "1");

    // Nothing is booted here: --booted lists no deployment, but keeps the shape.
    let b = env
        .strata(&["status", "--booted", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(b["deployments"], serde_json::json!([]));
    assert!(b.as_object().unwrap().contains_key("update-driver"));

    let p = env
        .strata(&["status", "--jsonpath", "$.deployments[*].checksum"])
        .await
        .expect(0)
        .json();
    assert_eq!(p, serde_json::json!([csum]));
    let both = env
        .strata(&["status", "--json", "--jsonpath", "$"])
        .await
        .expect(1);
    assert!(both.stderr.contains("cannot be used with"), "{both:#?}");

    // A lone deployment is never pending (rpm-ostree's rule).
    env.strata(&["status", "--pending-exit-77"]).await.expect(0);

    // The same binary as `rpm-ostree` prints the same.
    let compat = output(env.rpm_ostree_cmd(&["status", "--json"]))
        .await
        .expect(0);
    assert_eq!(compat.json(), j);
}

/// Issue 9.2: a deployment whose commit object is gone does not keep stratad from starting or
/// status from answering; it is shown with the error, and `cleanup -r` repairs the sysroot.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_commit_object_is_shown_and_cleanup_repairs_it() {
    let env = Env::new(FixtureConfig::default()).await;
    let v1 = env.fx.first_commit().to_string();
    env.fx.commit(&strata_tests::OsRelease::new("2")).unwrap();
    env.strata(&["upgrade"]).await.expect(0);
    // Release 1 is now the rollback deployment: delete its commit object.
    let object = env
        .sysroot()
        .repo_path()
        .join("objects")
        .join(&v1[..2])
        .join(format!("{}.commit", &v1[2..]));
    std::fs::remove_file(&object).unwrap();

    // A daemon started now (a restart) comes up and reports the damage.
    let bus = strata_tests::PrivateBus::start().unwrap();
    let _fresh = strata_tests::Stratad::start(&bus, env.sysroot().path(), &[])
        .await
        .unwrap();
    // The running one reports it too once it reloads.
    env.strata(&["reload"]).await.expect(0);
    let out = env.strata(&["status"]).await.expect(0);
    assert!(out.stdout.contains("Error: Loading commit"), "{out:#?}");
    let j = env.status_json().await;
    assert!(
        j["deployments"][1]["load-error"]
            .as_str()
            .is_some_and(|e| e.contains("Loading commit")),
        "{j}"
    );
    // cleanup -r removes the damaged rollback deployment.
    env.strata(&["cleanup", "-r"]).await.expect(0);
    let j = env.status_json().await;
    assert_eq!(j["deployments"].as_array().unwrap().len(), 1, "{j}");
    assert!(j["deployments"][0].get("load-error").is_none(), "{j}");
}

/// Issue 9.3: when the sysroot cannot be read any more (here a dangling /boot/loader), status
/// says so instead of printing the old state as if nothing happened; it clears once fixed.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reload_is_reported_by_status() {
    let env = Env::new(FixtureConfig::default()).await;
    let loader = env.sysroot().path().join("boot/loader");
    let target = std::fs::read_link(&loader).unwrap();
    std::fs::remove_file(&loader).unwrap();
    std::os::unix::fs::symlink("loader.404", &loader).unwrap();
    // The reload fails (the error is the method's answer too) ...
    env.strata(&["reload"]).await;
    let out = env.strata(&["status"]).await.expect(0);
    assert!(
        out.stdout
            .contains("Warning: stratad could not read the sysroot:"),
        "{out:#?}"
    );
    // ... and once the sysroot is readable again, the warning is gone.
    std::fs::remove_file(&loader).unwrap();
    std::os::unix::fs::symlink(&target, &loader).unwrap();
    env.strata(&["reload"]).await.expect(0);
    let out = env.strata(&["status"]).await.expect(0);
    assert!(!out.stdout.contains("Warning"), "{out:#?}");
}
