use strata_core::status;
use strata_tests::OsRelease;

use crate::*;

const ARRAY_KEYS: &[&str] = &[
    "packages",
    "base-removals",
    "base-local-replacements",
    "requested-packages",
    "requested-local-packages",
    "requested-local-fileoverride-packages",
    "requested-base-removals",
    "requested-base-local-replacements",
];

#[test]
fn status_json_has_rpm_ostree_shape() {
    let fx = fixture();
    let report = status::load(&open(&fx)).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let top = json.as_object().unwrap();
    for key in [
        "deployments",
        "transaction",
        "cached-update",
        "update-driver",
    ] {
        assert!(top.contains_key(key), "top-level key {key} missing");
    }
    let deps = json["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 1);
    let d = deps[0].as_object().unwrap();
    let csum = fx.first_commit();
    assert_eq!(d["id"], format!("stratatest-{csum}.0"));
    assert_eq!(d["osname"], "stratatest");
    assert_eq!(d["serial"], 0);
    assert_eq!(d["checksum"], csum);
    assert_eq!(d["version"], "1");
    assert_eq!(d["origin"], fx.refspec());
    assert_eq!(d["booted"], false);
    assert_eq!(d["staged"], false);
    assert_eq!(d["pinned"], false);
    assert_eq!(d["unlocked"], "none");
    assert_eq!(d["gpg-enabled"], false);
    assert_eq!(d["regenerate-initramfs"], false);
    assert_eq!(
        d["timestamp"].as_u64().unwrap(),
        fx.repo().commit_timestamp(csum).unwrap()
    );
    for key in ARRAY_KEYS {
        assert_eq!(
            d[*key],
            serde_json::json!([]),
            "{key} must be an empty array"
        );
    }
    assert_eq!(d["base-remote-replacements"], serde_json::json!({}));
    assert!(!d.contains_key("pending-base-checksum"));
    assert!(!d.contains_key("finalization-locked"));
    // Round trip through the typed model.
    let back: status::StatusReport = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, report);
}

#[test]
fn base_commit_meta_is_verbatim() {
    let fx = fixture();
    let v2 = fx
        .commit(
            &OsRelease::new("2")
                .metadata("fedora-coreos.stream", "testing")
                .metadata_variant("custom.number", "uint32 7")
                .metadata_variant("custom.list", "['a', 'b']")
                .metadata_variant("rpmostree.rpmdb.pkglist", "['bulky']"),
        )
        .unwrap();
    strata_core::upgrade(
        &open(&fx),
        &Default::default(),
        &strata_core::OpContext::silent(),
    )
    .unwrap();
    let report = status::load(&open(&fx)).unwrap();
    let d = &report.deployments[0];
    assert_eq!(d.checksum, v2);
    let meta = &d.base_commit_meta;
    assert_eq!(meta["version"], "2");
    assert_eq!(meta["fedora-coreos.stream"], "testing");
    assert_eq!(meta["custom.number"], 7);
    assert_eq!(meta["custom.list"], serde_json::json!(["a", "b"]));
    assert!(
        !meta.contains_key("rpmostree.rpmdb.pkglist"),
        "bulky key kept"
    );
}

#[test]
fn pending_base_appears_when_the_ref_moves() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    // A metadata-only check moves the local ref without deploying.
    let out = strata_core::upgrade(
        &open(&fx),
        &strata_core::UpgradeOptions {
            check_only: true,
            ..Default::default()
        },
        &strata_core::OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, strata_core::Outcome::UpdateAvailable { .. }));
    let report = status::load(&open(&fx)).unwrap();
    let d = &report.deployments[0];
    assert_eq!(d.checksum, fx.first_commit());
    assert_eq!(d.pending_base_checksum.as_deref(), Some(v2.as_str()));
    assert_eq!(d.pending_base_version.as_deref(), Some("2"));
    assert_eq!(
        d.pending_base_timestamp,
        Some(fx.repo().commit_timestamp(&v2).unwrap())
    );
}

#[test]
fn status_orders_deployments_for_next_boot() {
    let fx = fixture();
    fx.commit(&OsRelease::new("2")).unwrap();
    strata_core::upgrade(
        &open(&fx),
        &Default::default(),
        &strata_core::OpContext::silent(),
    )
    .unwrap();
    let report = status::load(&open(&fx)).unwrap();
    let versions: Vec<_> = report
        .deployments
        .iter()
        .map(|d| d.version.clone().unwrap())
        .collect();
    assert_eq!(versions, ["2", "1"]);
    assert_eq!(report.deployments[0].serial, 0);
}

#[test]
fn garbage_origin_is_a_clear_error() {
    let fx = fixture();
    let origin = origin_file(&fx, 0);
    let before = snapshot(&fx);
    let good = std::fs::read_to_string(&origin).unwrap();
    std::fs::write(&origin, "this is not a keyfile\n").unwrap();
    let err = match strata_core::Sysroot::open(fx.sysroot().unwrap().path()) {
        // libostree refuses to load a sysroot with an unparsable origin...
        Err(e) => format!("{e:#}"),
        // ...or, if it loads, every operation that needs the origin names the file.
        Ok(s) => {
            let e =
                strata_core::upgrade(&s, &Default::default(), &strata_core::OpContext::silent())
                    .unwrap_err();
            format!("{e:#}")
        }
    };
    assert!(err.contains("origin"), "{err}");
    assert!(err.contains("Opening sysroot"), "{err}");
    // Nothing else changed: with the origin restored, the sysroot is as before.
    std::fs::write(&origin, good).unwrap();
    assert_eq!(before, snapshot(&fx));
}
