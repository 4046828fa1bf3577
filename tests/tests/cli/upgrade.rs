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

/// `--check` sums up the package changes of the update, `--preview` lists them, as
/// rpm-ostree's `AvailableUpdate:` block does; `status --json` carries the same cached update.
#[tokio::test(flavor = "multi_thread")]
async fn check_and_preview_show_the_package_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = strata_tests::rpm::diffing_releases(dir.path()).unwrap();
    let env = Env::new(FixtureConfig {
        release: v1,
        ..Default::default()
    })
    .await;
    let v2 = env.fx.commit(&v2).unwrap();
    let check = env.strata(&["upgrade", "--check"]).await.expect(0);
    // `Version: 2 (TIMESTAMP)`: the commit's time, as status shows it.
    let ts = check
        .stdout
        .split_once("Version: 2 (")
        .and_then(|(_, rest)| rest.split_once(")\n"))
        .map(|(ts, _)| ts.to_string())
        .unwrap_or_else(|| panic!("{check:#?}"));
    assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    // The transaction's progress, then the block.
    let block = |out: &Out| {
        out.stdout
            .find("AvailableUpdate:")
            .map(|i| out.stdout[i..].to_string())
            .unwrap_or_else(|| panic!("{out:#?}"))
    };
    assert_eq!(
        block(&check),
        format!(
            "AvailableUpdate:\n        Version: 2 ({ts})\n         Commit: {v2}\n           Diff: 1 upgraded, 1 removed, 1 added\n"
        ),
        "{check:#?}"
    );
    let preview = output(env.rpm_ostree_cmd(&["upgrade", "--preview"]))
        .await
        .expect(0);
    assert_eq!(
        block(&preview),
        format!(
            "AvailableUpdate:\n        Version: 2 ({ts})\n         Commit: {v2}\n       Upgraded: base-lib 1.0-1 -> 2.0-1\n        Removed: gone-1.0-1.noarch\n          Added: fresh-1.0-1.noarch\n"
        ),
        "{preview:#?}"
    );
    let j = env.status_json().await;
    let u = &j["cached-update"];
    assert_eq!(u["checksum"], v2.as_str());
    assert_eq!(u["ref-has-new-commit"], true);
    assert_eq!(
        u["rpm-diff"]["upgraded"],
        serde_json::json!([[0, "base-lib", ["1.0-1", "noarch"], ["2.0-1", "noarch"]]])
    );
    assert_eq!(u["advisories"], serde_json::json!([]));
    // The check fetched the commit and its package database, not the tree: nothing deployed.
    assert_eq!(checksums(env.sysroot()), [env.fx.first_commit()]);
}
