//! The cached update and the rpm-diff methods, as Cockpit and GNOME Software call them: on
//! releases whose rpmdbs differ (an upgrade, a removal, an addition), against rpm-ostree's
//! reply types.

use std::collections::HashMap;

use strata_api::options::DeployOptions;
use strata_api::proxy::RpmDiffEntry;
use strata_tests::{FixtureConfig, DEFAULT_OSNAME};
use zbus::zvariant::OwnedValue;

use crate::*;

/// `(name, type, previous (name, evr, arch), new (…))` of an rpm-diff reply.
type Change = (
    String,
    u32,
    Option<(String, String, String)>,
    Option<(String, String, String)>,
);

fn changes(entries: &[RpmDiffEntry]) -> Vec<Change> {
    let pkg = |d: &HashMap<String, OwnedValue>, k: &str| {
        d.get(k).map(|v| {
            assert_eq!(v.value_signature().to_string(), "(sss)", "{k}");
            <(String, String, String)>::try_from(v.try_clone().unwrap()).unwrap()
        })
    };
    entries
        .iter()
        .map(|(name, ty, d)| {
            (
                name.clone(),
                *ty,
                pkg(d, "PreviousPackage"),
                pkg(d, "NewPackage"),
            )
        })
        .collect()
}

fn nva(name: &str, evr: &str) -> Option<(String, String, String)> {
    Some((name.into(), evr.into(), "noarch".into()))
}

/// From release 1 to 2: added `fresh`, removed `gone`, upgraded `base-lib`, in rpm-ostree's
/// order (type, then name).
fn one_to_two() -> Vec<Change> {
    vec![
        ("fresh".into(), 0, None, nva("fresh", "1.0-1")),
        ("gone".into(), 1, nva("gone", "1.0-1"), None),
        (
            "base-lib".into(),
            2,
            nva("base-lib", "1.0-1"),
            nva("base-lib", "2.0-1"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_update_has_rpm_ostree_s_shape_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = strata_tests::rpm::diffing_releases(dir.path()).unwrap();
    let mut env = Env::new(FixtureConfig {
        release: v1,
        ..Default::default()
    })
    .await;
    let os = env.os().await;
    let current = env.fx.first_commit().to_string();

    // A cached update measured from another deployment (left from before a reboot into
    // something else) is stale: not served, and removed.
    let file = env
        .fx
        .sysroot()
        .unwrap()
        .path()
        .join("ostree/deploy")
        .join(DEFAULT_OSNAME)
        .join("var/cache/rpm-ostree/cached-update.gv");
    let stale = ostree::glib::VariantDict::new(None);
    stale.insert("checksum", "0".repeat(64).as_str());
    stale.insert("update-sha256", "1".repeat(64).as_str());
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, stale.end().data()).unwrap();
    assert!(os.cached_update().await.unwrap().is_empty());
    // Removed on stratad's next look at the sysroot: the read above may come within the few
    // milliseconds a property read trusts the last look; inotify brings the next one.
    eventually(
        std::time::Duration::from_secs(10),
        "the stale cached update removed",
        || async { !file.exists() },
    )
    .await;
    assert!(os.cached_update().await.unwrap().is_empty());

    // Nothing fetched yet: the ref still points at the deployed commit.
    let (entries, details) = os.get_cached_update_rpm_diff("").await.unwrap();
    assert!(entries.is_empty(), "{entries:?}");
    assert_eq!(dict_str(&details, "checksum"), current);
    assert!(os.cached_update().await.unwrap().is_empty());
    assert!(!os.has_cached_update_rpm_diff().await.unwrap());

    // Cockpit's "Check for updates": fetch the package database of the new commit.
    let v2 = env.fx.commit(&v2).unwrap();
    let address = os.download_update_rpm_diff().await.unwrap();
    let sigs = run_txn(&address).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    // Only the commit and its rpmdb came: the tree stays partial.
    let repo = ostree::Repo::new_for_path(env.fx.sysroot().unwrap().repo_path());
    repo.open(ostree::gio::Cancellable::NONE).unwrap();
    let (_, state) = repo.load_commit(&v2).unwrap();
    assert!(state.contains(ostree::RepoCommitState::PARTIAL));

    let u = os.cached_update().await.unwrap();
    assert!(os.has_cached_update_rpm_diff().await.unwrap());
    let sig = |k: &str| {
        u.get(k)
            .unwrap_or_else(|| panic!("no {k} in {u:?}"))
            .value_signature()
            .to_string()
    };
    for (k, t) in [
        ("osname", "s"),
        ("checksum", "s"),
        ("version", "s"),
        ("timestamp", "t"),
        ("origin", "s"),
        ("gpg-enabled", "b"),
        ("ref-has-new-commit", "b"),
        ("rpm-diff", "a{sv}"),
        ("advisories", "a(suuasa{sv})"),
        ("update-sha256", "s"),
    ] {
        assert_eq!(sig(k), t, "{k}");
    }
    assert_eq!(dict_str(&u, "osname"), DEFAULT_OSNAME);
    assert_eq!(dict_str(&u, "checksum"), v2);
    assert_eq!(dict_str(&u, "version"), "2");
    assert_eq!(dict_str(&u, "origin"), env.fx.refspec());
    assert_eq!(dict_str(&u, "update-sha256"), current);
    let diff: HashMap<String, OwnedValue> = u["rpm-diff"].try_clone().unwrap().try_into().unwrap();
    let typ = |k: &str| diff[k].value_signature().to_string();
    assert_eq!(typ("upgraded"), "a(us(ss)(ss))");
    assert_eq!(typ("downgraded"), "a(us(ss)(ss))");
    assert_eq!(typ("removed"), "a(usss)");
    assert_eq!(typ("added"), "a(usss)");
    type Modified = (u32, String, (String, String), (String, String));
    let upgraded: Vec<Modified> = diff["upgraded"].try_clone().unwrap().try_into().unwrap();
    assert_eq!(
        upgraded,
        [(
            0,
            "base-lib".to_string(),
            ("1.0-1".to_string(), "noarch".to_string()),
            ("2.0-1".to_string(), "noarch".to_string())
        )]
    );
    let single = |k: &str| -> Vec<(u32, String, String, String)> {
        diff[k].try_clone().unwrap().try_into().unwrap()
    };
    assert_eq!(
        single("removed"),
        [(0, "gone".into(), "1.0-1".into(), "noarch".into())]
    );
    assert_eq!(
        single("added"),
        [(0, "fresh".into(), "1.0-1".into(), "noarch".into())]
    );

    // GetCachedUpdateRpmDiff compares with what was fetched.
    let (entries, details) = os.get_cached_update_rpm_diff("").await.unwrap();
    assert_eq!(changes(&entries), one_to_two());
    assert_eq!(dict_str(&details, "checksum"), v2);
    assert_eq!(dict_str(&details, "version"), "2");
    assert_eq!(
        details["timestamp"].value_signature().to_string(),
        "t",
        "{details:?}"
    );

    // Kept on disk, where rpm-ostree keeps it, and read back by a new daemon.
    assert!(file.is_file(), "{}", file.display());
    env.daemon.signal("TERM").unwrap();
    env.daemon
        .wait_exit(std::time::Duration::from_secs(30))
        .await
        .unwrap();
    env.daemon = strata_tests::Stratad::start(&env.bus, env.fx.sysroot().unwrap().path(), &[])
        .await
        .unwrap();
    let os = env.os().await;
    assert_eq!(os.cached_update().await.unwrap(), u);

    // Once deployed, the update is no longer one: the file goes.
    let address = os.upgrade(&DeployOptions::default()).await.unwrap();
    assert_eq!(finished(&run_txn(&address).await), (true, String::new()));
    assert!(os.cached_update().await.unwrap().is_empty());
    assert!(!os.has_cached_update_rpm_diff().await.unwrap());
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn rpm_diff_methods_compare_deployments_revisions_and_refs() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = strata_tests::rpm::diffing_releases(dir.path()).unwrap();
    let env = Env::new(FixtureConfig {
        release: v1,
        ..Default::default()
    })
    .await;
    let os = env.os().await;
    env.fx.commit(&v2).unwrap();
    let address = os.upgrade(&DeployOptions::default()).await.unwrap();
    assert_eq!(finished(&run_txn(&address).await), (true, String::new()));
    let deps = env.sysroot().await.deployments().await.unwrap();
    let (new, old) = (dict_str(&deps[0], "id"), dict_str(&deps[1], "id"));

    // Cockpit's deployment rows: booted (here the old one) to each other deployment.
    let entries = os.get_deployments_rpm_diff(&old, &new).await.unwrap();
    assert_eq!(changes(&entries), one_to_two());
    let back = os.get_deployments_rpm_diff(&new, &old).await.unwrap();
    assert_eq!(
        changes(&back),
        [
            ("gone".to_string(), 0, None, nva("gone", "1.0-1")),
            ("fresh".to_string(), 1, nva("fresh", "1.0-1"), None),
            (
                "base-lib".to_string(),
                3,
                nva("base-lib", "2.0-1"),
                nva("base-lib", "1.0-1")
            ),
        ]
    );
    assert!(os
        .get_deployments_rpm_diff(&new, &new)
        .await
        .unwrap()
        .is_empty());

    // A revision of the ref: from the merge deployment (release 2) back to version 1.
    let (entries, details) = os
        .get_cached_deploy_rpm_diff("version=1", &[])
        .await
        .unwrap();
    assert_eq!(changes(&entries), changes(&back));
    assert_eq!(dict_str(&details, "checksum"), env.fx.first_commit());
    // The same ref as a rebase target ("REMOTE:" keeps the ref): nothing changes.
    let remote = env.fx.refspec();
    let remote = remote.split(':').next().unwrap();
    let (entries, _) = os
        .get_cached_rebase_rpm_diff(&format!("{remote}:"), &[])
        .await
        .unwrap();
    assert!(entries.is_empty(), "{entries:?}");
    let address = os.download_deploy_rpm_diff("version=1", &[]).await.unwrap();
    assert_eq!(finished(&run_txn(&address).await), (true, String::new()));

    // Bad input: named, nothing changed.
    let err = os.get_deployments_rpm_diff("nope", &new).await.unwrap_err();
    let (_, msg) = error_name(&err);
    assert!(msg.contains("Deployment with id 'nope' not found"), "{msg}");
    let err = os
        .get_cached_rebase_rpm_diff("bad\nref", &[])
        .await
        .unwrap_err();
    assert_eq!(error_name(&err).0, names::ERROR_INVALID_REFSPEC, "{err}");
    let err = os
        .get_cached_deploy_rpm_diff("version=nosuch", &[])
        .await
        .unwrap_err();
    assert!(error_name(&err).1.contains("nosuch"), "{err}");
    let err = os.download_rebase_rpm_diff("x\ty", &[]).await.unwrap_err();
    assert_eq!(error_name(&err).0, names::ERROR_INVALID_REFSPEC, "{err}");
    assert_eq!(
        env.sysroot().await.deployments().await.unwrap().len(),
        deps.len()
    );
}
