//! Zincati's exact command lines, through the `rpm-ostree` symlink.

use strata_tests::{FixtureConfig, OsRelease};

use crate::*;

const DRIVER_REFUSAL: &str = "Updates are driven by Zincati";

#[tokio::test(flavor = "multi_thread")]
async fn register_driver_deploy_and_cleanup() {
    let env = Env::new(FixtureConfig::default()).await;
    let v1 = env.fx.first_commit().to_string();

    let reg = env
        .zincati(&["deploy", "", "--register-driver=Zincati"])
        .await
        .expect(0);
    assert_eq!(reg.stderr, "", "{reg:#?}");
    assert_eq!(
        checksums(env.sysroot()),
        [v1.as_str()],
        "registering deploys nothing"
    );
    let j = env.status_json().await;
    assert_eq!(j["update-driver"]["driver-name"], "Zincati", "{j}");
    assert!(j["update-driver"]["driver-sd-unit"].is_string(), "{j}");
    let text = env.strata(&["status"]).await.expect(0);
    assert!(
        text.stdout.contains("\nAutomaticUpdatesDriver: Zincati\n"),
        "{text:#?}"
    );
    // Zincati retries registration: registering again is fine.
    env.zincati(&["deploy", "", "--register-driver=Zincati"])
        .await
        .expect(0);
    let record = std::fs::read_to_string(env.daemon.run_dir().join("update-driver.json")).unwrap();
    assert!(record.contains("\"driver-name\": \"Zincati\""), "{record}");

    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    let rev = format!("revision={v2}");
    let before = env.sysroot().snapshot().unwrap();
    // Zincati's exact argv. Nothing is staged on a sysroot that is not booted, so there is
    // nothing to lock: a clear refusal, before anything is pulled.
    let locked = env
        .zincati(&[
            "deploy",
            "--lock-finalization",
            "--skip-branch-check",
            &rev,
            "--disallow-downgrade",
        ])
        .await
        .expect(1);
    assert!(
        locked
            .stderr
            .contains("--lock-finalization needs a booted system: ")
            && locked.stderr.contains("is not the booted sysroot"),
        "{locked:#?}"
    );
    assert_eq!(before, env.sysroot().snapshot().unwrap());

    // Anyone but the driver is told who drives updates. (The driver registered outside any
    // systemd unit: its client id is what tells it apart.)
    let refused = env
        .strata(&[
            "deploy",
            "--skip-branch-check",
            &rev,
            "--disallow-downgrade",
        ])
        .await
        .expect(1);
    assert!(refused.stderr.contains(DRIVER_REFUSAL), "{refused:#?}");
    assert!(
        refused.stderr.contains("use --bypass-driver to override"),
        "{refused:#?}"
    );
    let up = env.strata(&["upgrade"]).await.expect(1);
    assert!(up.stderr.contains(DRIVER_REFUSAL), "{up:#?}");
    let rb = env
        .strata(&[
            "rebase",
            &format!("{}:{}", strata_tests::DEFAULT_REMOTE, env.fx.ref_()),
        ])
        .await
        .expect(1);
    assert!(rb.stderr.contains(DRIVER_REFUSAL), "{rb:#?}");
    assert_eq!(before, env.sysroot().snapshot().unwrap());

    // Read-only and unrelated verbs still work; --bypass-driver deploys, and so does the
    // driver itself, recognised by its client id.
    env.strata(&["upgrade", "--check"]).await.expect(0);
    let ok = env
        .zincati(&[
            "deploy",
            "--skip-branch-check",
            &rev,
            "--disallow-downgrade",
        ])
        .await
        .expect(0);
    assert!(ok.stdout.contains(NEXT_BOOT), "{ok:#?}");
    assert_eq!(checksums(env.sysroot()), [v2.clone(), v1.clone()]);
    // --disallow-downgrade: going back to release 1 is refused (for another client with
    // --bypass-driver, past the driver check).
    let down = env
        .strata(&[
            "deploy",
            "--skip-branch-check",
            &format!("revision={v1}"),
            "--disallow-downgrade",
            "--bypass-driver",
        ])
        .await
        .expect(1);
    assert!(down.stderr.contains("owngrade"), "{down:#?}");

    // `cleanup -p`, without the client id: nothing is staged here, so nothing changes.
    let c = output(env.rpm_ostree_cmd(&["cleanup", "-p"]))
        .await
        .expect(0);
    assert_eq!(c.stderr, "", "{c:#?}");
    assert_eq!(checksums(env.sysroot()), [v2, v1]);
}

/// Zincati's forms for an OCI-based OS: `rebase --lock-finalization IMGREF sha256:…` to move
/// onto the image stream, then `deploy --lock-finalization sha256:… --disallow-downgrade` for
/// each release, from a registry on loopback. A sysroot that is not booted cannot lock a
/// staged deployment, so the exact argv is refused for that (and nothing changes); without
/// the lock it deploys the digest asked for, pinned in the origin as rpm-ostree pins it.
#[tokio::test(flavor = "multi_thread")]
async fn zincati_s_container_image_forms() {
    let env = Env::new(FixtureConfig::default()).await;
    let registry = strata_tests::oci::Registry::start().unwrap();
    let oci = env.fx.dir().join("oci");
    let mut digests = Vec::new();
    for v in ["2", "3"] {
        let rev = env.fx.commit(&OsRelease::new(v)).unwrap();
        digests.push(strata_tests::oci::encapsulate(env.fx.repo().path(), &rev, &oci, v).unwrap());
        registry.push(&oci, v, "fcos:stable").unwrap();
    }
    let (d2, d3) = (digests[0].as_str(), digests[1].as_str());
    let imgref = format!("ostree-unverified-registry:{}/fcos:stable", registry.host());

    // On an ostree-ref deployment a digest is refused as what it is.
    let before = env.sysroot().snapshot().unwrap();
    let wrong = env
        .zincati(&["deploy", d2, "--disallow-downgrade"])
        .await
        .expect(1);
    assert!(
        wrong
            .stderr
            .contains(&format!("{d2} names a container image"))
            && wrong.stderr.contains("rebase IMGREF"),
        "{wrong:#?}"
    );
    let locked = env
        .zincati(&["rebase", "--lock-finalization", &imgref, d2])
        .await
        .expect(1);
    assert!(
        locked
            .stderr
            .contains("--lock-finalization needs a booted system"),
        "{locked:#?}"
    );
    assert_eq!(before, env.sysroot().snapshot().unwrap());

    env.zincati(&["rebase", &imgref, d2]).await.expect(0);
    let j = env.status_json().await;
    let d = &j["deployments"][0];
    assert_eq!(d["container-image-reference"], imgref.as_str(), "{d}");
    assert_eq!(d["container-image-reference-digest"], d2, "{d}");
    let origin = env.sysroot().deployments().unwrap()[0]
        .origin
        .clone()
        .unwrap();
    assert!(
        origin.contains(&format!("override-commit={d2}\n")),
        "{origin}"
    );

    env.zincati(&["deploy", d3, "--disallow-downgrade"])
        .await
        .expect(0);
    let j = env.status_json().await;
    assert_eq!(j["deployments"][0]["container-image-reference-digest"], d3);
    assert_eq!(j["deployments"][1]["container-image-reference-digest"], d2);
    // The image keys of Zincati's fixtures, with their types.
    let keys = fixture_image_keys();
    assert!(!keys.is_empty());
    for (key, ty) in keys {
        assert_eq!(json_type(&j["deployments"][0][&key]), ty, "{key}");
    }
    let again = env.zincati(&["deploy", d3]).await.expect(0);
    assert!(
        again.stdout.contains(&format!("Already at {d3}")),
        "{again:#?}"
    );

    // A digest the registry does not have fails naming it; nothing changes.
    let before = env.sysroot().snapshot().unwrap();
    let missing = format!("sha256:{}", "ab".repeat(32));
    let gone = env.zincati(&["deploy", &missing]).await.expect(1);
    assert!(gone.stderr.contains(&missing), "{gone:#?}");
    let version = env.zincati(&["deploy", "version=3"]).await.expect(1);
    assert!(
        version
            .stderr
            .contains("deploy an image by its manifest digest"),
        "{version:#?}"
    );
    assert_eq!(before, env.sysroot().snapshot().unwrap());
}

/// The JSON type of a value, for comparing shapes.
fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Keys of Zincati's fixtures that a directory sysroot cannot have, and why.
const NOT_ON_A_DIRECTORY_SYSROOT: &[(&str, &str)] = &[
    (
        "finalization-locked",
        "only a booted host stages (the VM suite covers it)",
    ),
    ("container-image-reference", IMAGE_KEYS_ELSEWHERE),
    ("container-image-reference-digest", IMAGE_KEYS_ELSEWHERE),
];

const IMAGE_KEYS_ELSEWHERE: &str =
    "these deployments follow a ref: zincati_s_container_image_forms checks them on images";

/// The keys of Zincati's fixtures that only image-based deployments have, with their JSON
/// types, from every fixture deployment that has them.
fn fixture_image_keys() -> Vec<(String, &'static str)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/zincati");
    let mut keys = Vec::new();
    for name in [
        "rpm-ostree-staged.json",
        "rpm-ostree-status.json",
        "rpm-ostree-status-annotation.json",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
        for dep in fixture["deployments"].as_array().unwrap() {
            for key in [
                "container-image-reference",
                "container-image-reference-digest",
            ] {
                if let Some(v) = dep.get(key) {
                    keys.push((key.to_string(), json_type(v)));
                }
            }
        }
    }
    keys
}

/// `status --json` has the shape of Zincati's three fixtures (real rpm-ostree output): every
/// top-level and deployment key they have, with the same JSON type, so Zincati's parser reads
/// Strata's output as it reads rpm-ostree's.
#[tokio::test(flavor = "multi_thread")]
async fn status_json_has_the_shape_of_zincati_s_fixtures() {
    let env = Env::new(FixtureConfig {
        gpg: true,
        ..Default::default()
    })
    .await;
    env.zincati(&["deploy", "", "--register-driver=Zincati"])
        .await
        .expect(0);
    env.fx.commit(&OsRelease::new("2")).unwrap();
    env.strata(&["upgrade", "--bypass-driver"]).await.expect(0);
    // The ref moves on again, so the deployments have a pending base (pending-base-*).
    env.fx.commit(&OsRelease::new("3")).unwrap();
    env.strata(&["upgrade", "--download-only", "--bypass-driver"])
        .await
        .expect(0);
    let ours = env.status_json().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/zincati");
    for name in [
        "rpm-ostree-staged.json",
        "rpm-ostree-status.json",
        "rpm-ostree-status-annotation.json",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (k, v) in fixture.as_object().unwrap() {
            let mine = ours
                .get(k)
                .unwrap_or_else(|| panic!("{name}: no top-level {k}: {ours}"));
            if !v.is_null() && !mine.is_null() {
                assert_eq!(json_type(mine), json_type(v), "{name}: {k}");
            }
        }
        for (i, dep) in fixture["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let mine = &ours["deployments"][i.min(1)];
            for (k, v) in dep.as_object().unwrap() {
                if NOT_ON_A_DIRECTORY_SYSROOT.iter().any(|(s, _)| s == k) {
                    continue;
                }
                let got = mine
                    .get(k)
                    .unwrap_or_else(|| panic!("{name}: deployment {i} lacks {k}: {mine:#}"));
                assert_eq!(json_type(got), json_type(v), "{name}: deployment {i}: {k}");
            }
        }
    }
    // What Zincati itself requires of each deployment (its serde structs).
    for d in ours["deployments"].as_array().unwrap() {
        assert!(d["booted"].is_boolean() && d["checksum"].is_string(), "{d}");
        assert!(
            d["version"].is_string() && d["base-commit-meta"].is_object(),
            "{d}"
        );
        assert!(d.get("staged").is_none_or(|s| s.is_boolean()), "{d}");
    }
}
