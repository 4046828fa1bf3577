//! `upgrade`: `--check`, the update itself, exit 77 and `status --pending-exit-77`.

use strata_tests::{FixtureConfig, OsRelease};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_check_reports_none_then_the_new_version() {
    let env = Env::new(FixtureConfig::default()).await;
    let before = env.sysroot().snapshot().unwrap();
    let none = env.strata(&["upgrade", "--check"]).await.expect(77);
    assert!(none.stdout.contains("No updates available."), "{none:#?}");

    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    let some = env.strata(&["upgrade", "--check"]).await.expect(0);
    assert!(some.stdout.contains("AvailableUpdate:"), "{some:#?}");
    assert!(some.stdout.contains("Version: 2"), "{some:#?}");
    assert!(some.stdout.contains(&format!("Commit: {v2}")), "{some:#?}");
    assert!(!some.stdout.contains("No updates available"), "{some:#?}");
    // A check deploys nothing.
    assert_eq!(checksums(env.sysroot()), [env.fx.first_commit()]);
    assert_eq!(
        before.deployments,
        env.sysroot().snapshot().unwrap().deployments
    );
    // ... and status shows what it found.
    let j = env.status_json().await;
    assert_eq!(j["cached-update"]["checksum"], v2.as_str());
    assert_eq!(j["cached-update"]["version"], "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_deploys_with_progress_and_the_reboot_hint() {
    let env = Env::new(FixtureConfig::default()).await;
    let v1 = env.fx.first_commit().to_string();
    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();

    let out = env.strata(&["upgrade"]).await.expect(0);
    // Not a terminal: plain progress lines, no bar or spinner control characters.
    assert!(out.stdout.contains("... "), "{out:#?}");
    assert!(!out.stdout.contains('\r'), "{out:#?}");
    assert!(
        out.stdout.ends_with(&format!("{NEXT_BOOT}\n")) && !out.stdout.contains("systemctl reboot"),
        "{out:#?}"
    );
    assert_eq!(checksums(env.sysroot()), [v2.clone(), v1.clone()]);

    // On a sysroot that is not booted, deployment 0 is never the booted one: with two
    // deployments, a pending one is reported.
    env.strata(&["status", "--pending-exit-77"])
        .await
        .expect(77);
    let j = env.status_json().await;
    assert_eq!(j["deployments"][0]["version"], "2");
    assert_eq!(j["deployments"][1]["version"], "1");
    assert!(j["cached-update"].is_null(), "an update clears the cache");

    // Up to date now.
    let again = env
        .strata(&["upgrade", "--unchanged-exit-77"])
        .await
        .expect(77);
    assert!(!again.stdout.contains(NEXT_BOOT), "{again:#?}");
    let plain = env.strata(&["upgrade"]).await.expect(0);
    assert!(!plain.stdout.contains(NEXT_BOOT), "{plain:#?}");
    assert_eq!(checksums(env.sysroot()), [v2, v1]);
}
