//! The rpm-md repositories on the bus, as GNOME Software uses them: `ListRepos`,
//! `ModifyYumRepo`, `RefreshMd`, `GetPackages`, `WhatProvides`, `Search`, on the kit's RPM
//! repository (real `createrepo_c` metadata, real libdnf in stratad).

use std::collections::HashMap;

use strata_api::options::RefreshMdOptions;
use strata_tests::{FixtureConfig, TestPackages};
use zbus::zvariant::OwnedValue;

use crate::*;

fn text(d: &HashMap<String, OwnedValue>, k: &str) -> String {
    dict_str(d, k)
}

fn flag(d: &HashMap<String, OwnedValue>, k: &str) -> bool {
    assert_eq!(d[k].value_signature().to_string(), "b", "{k}");
    bool::try_from(&*d[k]).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn repositories_are_listed_refreshed_switched_and_queried() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = TestPackages::create(dir.path()).unwrap();
    // Over HTTP: libdnf reads a file:// repository in place, which is never "fetched".
    let http = strata_tests::HttpServer::serve(pkgs.repo.path()).unwrap();
    let env = Env::new(FixtureConfig {
        release: pkgs.release_with_url("1", &http.url()),
        ..Default::default()
    })
    .await;
    let os = env.os().await;

    let repos = os.list_repos().await.unwrap();
    assert_eq!(repos.len(), 1, "{repos:?}");
    let r = &repos[0];
    assert_eq!(text(r, "id"), "test");
    assert_eq!(text(r, "description"), "Strata test repository test");
    assert!(flag(r, "is-enabled"));
    assert!(!flag(r, "is-devel") && !flag(r, "is-source"));

    let sigs = run_txn(&os.refresh_md(&RefreshMdOptions::default()).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert!(
        sigs.contains(&Signal::Message("Enabled rpm-md repositories: test".into())),
        "{sigs:?}"
    );
    assert!(
        sigs.contains(&Signal::Message("rpm-md repo 'test'".into())),
        "the first refresh fetches: {sigs:?}"
    );
    // Fresh metadata is kept; forced, it is fetched again.
    let sigs = run_txn(&os.refresh_md(&RefreshMdOptions::default()).await.unwrap()).await;
    assert!(
        sigs.contains(&Signal::Message("rpm-md repo 'test' (cached)".into())),
        "{sigs:?}"
    );
    let forced = RefreshMdOptions { force: Some(true) };
    let sigs = run_txn(&os.refresh_md(&forced).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert!(
        sigs.contains(&Signal::Message("rpm-md repo 'test'".into())),
        "{sigs:?}"
    );

    // GNOME Software's lookups: each with rpm-ostree's keys and types.
    let found = os.get_packages(&["hello", "nosuch"]).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    for (k, v) in [
        ("key", "hello"),
        ("name", "hello"),
        ("version", "1.0"),
        ("arch", "noarch"),
        ("nevra", "hello-1.0-1.noarch"),
        ("evr", "1.0-1"),
        ("summary", "Strata test package hello"),
        ("reponame", "test"),
    ] {
        assert_eq!(text(p, k), v, "{k}");
    }
    assert_eq!(p["epoch"].value_signature().to_string(), "t");
    let provides = os.what_provides(&["libhello"]).await.unwrap();
    assert_eq!(provides.len(), 1, "{provides:?}");
    assert_eq!(text(&provides[0], "name"), "libhello");
    assert!(!provides[0].contains_key("key"));

    // Search: by name and summary, by name (exact first), by summary.
    let found = os.search(&["hello"]).await.unwrap();
    let group = |g: &str| -> Vec<String> {
        found
            .iter()
            .filter(|d| text(d, "key") == g)
            .map(|d| text(d, "name"))
            .collect()
    };
    assert_eq!(group("match_group_b"), ["hello", "libhello"]);
    let mut a = group("match_group_a");
    a.sort();
    assert_eq!(a, ["hello", "libhello"]);
    assert_eq!(group("match_group_c").len(), 2);
    assert!(os.search(&["zzz-no-such"]).await.unwrap().is_empty());
    // One term must match name and summary for the first group: "strata" is in every summary
    // ("Strata test package …") and in no name.
    let found = os.search(&["strata"]).await.unwrap();
    let keys: Vec<String> = found.iter().map(|d| text(d, "key")).collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k == "match_group_c"),
        "{keys:?}"
    );
    let err = os.search(&[]).await.unwrap_err();
    assert!(error_name(&err).1.contains("Must specify a term"), "{err}");
    let err = os.get_packages(&["a\nb"]).await.unwrap_err();
    assert_eq!(
        error_name(&err).0,
        "org.freedesktop.DBus.Error.InvalidArgs",
        "{err}"
    );

    // Switching the repository off edits the deployment's /etc, and it no longer serves.
    let repo_file = env
        .fx
        .sysroot()
        .unwrap()
        .deploy_dir(0)
        .unwrap()
        .join("etc/yum.repos.d/test.repo");
    let off = HashMap::from([("enabled", "0")]);
    let sigs = run_txn(&os.modify_yum_repo("test", &off).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let conf = std::fs::read_to_string(&repo_file).unwrap();
    assert!(conf.contains("enabled=0"), "{conf}");
    assert!(!flag(&os.list_repos().await.unwrap()[0], "is-enabled"));
    assert!(os.get_packages(&["hello"]).await.unwrap().is_empty());

    // Only `enabled`, only 0 or 1, only a repository that exists; the file stays as it was.
    for (id, k, v, why) in [
        (
            "test",
            "gpgcheck",
            "0",
            "Changing 'gpgcheck' is not allowed",
        ),
        ("test", "enabled", "yes", "Only '0' and '1' are allowed"),
        ("nope", "enabled", "1", "Yum repo 'nope' not found"),
    ] {
        let s = HashMap::from([(k, v)]);
        let sigs = run_txn(&os.modify_yum_repo(id, &s).await.unwrap()).await;
        let (ok, msg) = finished(&sigs);
        assert!(!ok && msg.contains(why), "{id} {k}={v}: {msg}");
    }
    assert_eq!(std::fs::read_to_string(&repo_file).unwrap(), conf);
    let on = HashMap::from([("enabled", "1")]);
    let sigs = run_txn(&os.modify_yum_repo("test", &on).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert_eq!(os.get_packages(&["hello"]).await.unwrap().len(), 1);
}
