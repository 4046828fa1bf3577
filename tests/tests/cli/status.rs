//! `status` in every format, as users and Zincati read it.

use strata_tests::FixtureConfig;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn status_text_json_booted_and_jsonpath() {
    let env = Env::new(FixtureConfig::default()).await;
    let csum = env.fx.first_commit().to_string();

    let text = env.strata(&["status"]).await.expect(0);
    assert!(text.stdout.starts_with("State: idle\n"), "{text:#?}");
    assert!(
        text.stdout.contains("AutomaticUpdates: disabled\n"),
        "{text:#?}"
    );
    assert!(text.stdout.contains("Deployments:\n"), "{text:#?}");
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
