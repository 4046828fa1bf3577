//! Image-based deployments pulled from a `docker-registry` on loopback, reached as a
//! plain-HTTP registry is reached on an rpm-ostree host (`registries.conf.d`, `insecure`):
//! what an upgrade fetches, and failures and cancellation leaving the sysroot as it was.

use std::collections::BTreeSet;

use strata_core::{rebase, upgrade, Event, OpContext, Outcome, RebaseOptions, UpgradeOptions};
use strata_tests::gio::prelude::*;
use strata_tests::oci::{self, Registry};
use strata_tests::{Fixture, OsRelease};

use crate::*;

/// A fixture rebased onto `os:stable` of a new registry, holding release 2.
fn on_registry_image() -> (Fixture, Registry, String) {
    let fx = fixture();
    let registry = Registry::start().unwrap();
    push_release(&fx, &registry, "2");
    let imgref = format!("ostree-unverified-registry:{}/os:stable", registry.host());
    let opts = RebaseOptions {
        refspec: imgref.clone(),
        ..Default::default()
    };
    let out = rebase(&open(&fx), &opts, &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    (fx, registry, imgref)
}

/// Commits release `version`, encapsulates it and pushes it as `os:stable`; returns its
/// layers.
fn push_release(fx: &Fixture, registry: &Registry, version: &str) -> Vec<String> {
    let rev = fx.commit(&OsRelease::new(version)).unwrap();
    let dir = fx.dir().join("oci");
    oci::encapsulate(fx.repo().path(), &rev, &dir, version).unwrap();
    registry.push(&dir, version, "os:stable").unwrap();
    oci::layers(&format!("oci:{}:{version}", dir.display())).unwrap()
}

/// An upgrade on a moved tag fetches from the registry exactly the layers the new image does
/// not share with the deployed one.
#[test]
fn an_upgrade_from_a_registry_fetches_only_the_changed_layers() {
    let (fx, registry, _) = on_registry_image();
    let old: BTreeSet<String> = oci::layers(&format!("oci:{}:2", fx.dir().join("oci").display()))
        .unwrap()
        .into_iter()
        .collect();
    let new = push_release(&fx, &registry, "3");
    let changed: BTreeSet<String> = new.iter().filter(|l| !old.contains(*l)).cloned().collect();
    assert!(
        !changed.is_empty() && changed.len() < new.len(),
        "{old:?} {new:?}"
    );

    let before = registry.blobs_fetched().len();
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let fetched: BTreeSet<String> = registry.blobs_fetched()[before..]
        .iter()
        .filter(|d| new.contains(*d) || old.contains(*d))
        .cloned()
        .collect();
    assert_eq!(fetched, changed, "layers fetched by the upgrade");
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 3"), "{release}");
}

/// An unknown tag, a damaged layer and a registry that is gone each fail naming the problem,
/// and change nothing.
#[test]
fn registry_failures_change_nothing() {
    let (fx, mut registry, imgref) = on_registry_image();
    let unknown = RebaseOptions {
        refspec: format!("ostree-unverified-registry:{}/os:nope", registry.host()),
        ..Default::default()
    };
    let err = assert_fails_unchanged(&fx, |s| rebase(s, &unknown, &OpContext::silent()));
    assert!(
        err.contains("os:nope") && err.contains("manifest unknown"),
        "{err}"
    );

    let new = push_release(&fx, &registry, "3");
    let old = oci::layers(&format!("oci:{}:2", fx.dir().join("oci").display())).unwrap();
    let damaged = new.iter().find(|l| !old.contains(l)).unwrap();
    let path = registry.blob_path(damaged);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    // Which check trips first is a race: skopeo's digest check at the end of the blob
    // ("corrupted blob, expecting sha256:…") or, on garbage the damaged deflate stream yields
    // before that, the tar import ("Importing commit: …").
    assert!(
        err.contains(&imgref)
            && (err.contains(&format!("corrupted blob, expecting {damaged}"))
                || err.contains("Importing commit: ")),
        "{err}"
    );

    registry.stop();
    for check_only in [false, true] {
        let opts = UpgradeOptions {
            check_only,
            ..Default::default()
        };
        let err = assert_fails_unchanged(&fx, |s| upgrade(s, &opts, &OpContext::silent()));
        assert!(
            err.contains(&registry.host()) && err.contains("connection refused"),
            "{err}"
        );
    }
}

/// Cancelling while a layer downloads stops the pull: nothing is deployed, and the next
/// upgrade completes.
#[test]
fn cancelling_during_a_layer_download_changes_nothing() {
    let (fx, registry, _) = on_registry_image();
    let old = oci::layers(&format!("oci:{}:2", fx.dir().join("oci").display())).unwrap();
    let new = push_release(&fx, &registry, "3");
    let changed = new.iter().filter(|l| !old.contains(l)).count();
    assert!(changed > 1, "{old:?} {new:?}");
    let fetched_before = registry.blobs_fetched().len();
    let cancellable = strata_tests::gio::Cancellable::new();
    let trigger = cancellable.clone();
    let ctx = OpContext::new(
        move |e| {
            if matches!(e, Event::Percent { text, .. } if text.contains("Fetching layer")) {
                trigger.cancel();
            }
        },
        cancellable,
    );
    let before = snapshot(&fx);
    let err = upgrade(&open(&fx), &UpgradeOptions::default(), &ctx).unwrap_err();
    assert!(strata_core::progress::is_cancelled(&err), "{err:#}");
    assert_eq!(before, snapshot(&fx));
    let fetched = registry.blobs_fetched()[fetched_before..]
        .iter()
        .filter(|d| new.contains(*d))
        .count();
    assert!(
        fetched < changed,
        "the pull went on after the cancel: {fetched} layers"
    );
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 3"), "{release}");
}

/// `deploy sha256:…` on an `oci:` image deployment finds the tag of the directory that names
/// that manifest; the origin is pinned to the digest, and an upgrade follows the tag again.
#[test]
fn deploy_by_digest_from_an_oci_directory() {
    let fx = fixture();
    let oci = fx.dir().join("oci");
    let mut digests = Vec::new();
    for v in ["2", "3", "4"] {
        let rev = fx.commit(&OsRelease::new(v)).unwrap();
        digests.push(oci::encapsulate(fx.repo().path(), &rev, &oci, v).unwrap());
    }
    // The followed tag is release 4; release 3 is deployed by digest.
    let imgref = format!("ostree-unverified-image:oci:{}:4", oci.display());
    let to_2 = RebaseOptions {
        refspec: format!("ostree-unverified-image:oci:{}:2", oci.display()),
        ..Default::default()
    };
    rebase(&open(&fx), &to_2, &OpContext::silent()).unwrap();
    let to_4 = RebaseOptions {
        refspec: imgref.clone(),
        revision: Some(strata_core::Revision::ImageDigest(digests[1].clone())),
        ..Default::default()
    };
    rebase(&open(&fx), &to_4, &OpContext::silent()).unwrap();
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 3"), "{release}");
    let origin = fx.sysroot().unwrap().deployments().unwrap()[0]
        .origin
        .clone()
        .unwrap();
    assert!(
        origin.contains(&format!("container-image-reference={imgref}\n"))
            && origin.contains(&format!("override-commit={}\n", digests[1])),
        "{origin}"
    );

    let unknown = format!("sha256:{}", "0f".repeat(32));
    let deploy = |rev: strata_core::Revision| {
        let opts = strata_core::DeployOptions::new(rev);
        move |s: &strata_core::Sysroot| strata_core::deploy(s, &opts, &OpContext::silent())
    };
    let err = assert_fails_unchanged(
        &fx,
        deploy(strata_core::Revision::ImageDigest(unknown.clone())),
    );
    assert!(
        err.contains(&format!(
            "No tag of the OCI directory {} names the image {unknown}",
            oci.display()
        )),
        "{err}"
    );
    let err = assert_fails_unchanged(&fx, deploy(strata_core::Revision::Version("3".into())));
    assert!(
        err.contains("deploy an image by its manifest digest"),
        "{err}"
    );

    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 4"), "{release}");
    let origin = fx.sysroot().unwrap().deployments().unwrap()[0]
        .origin
        .clone()
        .unwrap();
    assert!(!origin.contains("override-commit"), "{origin}");
}

/// The sysroot repository's refs under `prefix` (ostree-ext keeps one per image and one per
/// layer).
fn repo_refs(fx: &Fixture, prefix: &str) -> BTreeSet<String> {
    let out = std::process::Command::new("ostree")
        .arg(format!(
            "--repo={}",
            fx.sysroot().unwrap().path().join("ostree/repo").display()
        ))
        .args(["refs", prefix])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Images (and their layers) no deployment needs go when a deployment that used them falls
/// off the list, and with `cleanup -b` once no deployment is image-based.
#[test]
fn images_no_deployment_needs_are_pruned() {
    let fx = fixture();
    let oci = fx.dir().join("oci");
    let imgref = format!("ostree-unverified-image:oci:{}:stable", oci.display());
    let release = |v: &str| {
        let rev = fx.commit(&OsRelease::new(v)).unwrap();
        oci::encapsulate(fx.repo().path(), &rev, &oci, "stable").unwrap();
        oci::layers(&format!("oci:{}:stable", oci.display()))
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<String>>()
    };
    let l2 = release("2");
    let opts = RebaseOptions {
        refspec: imgref.clone(),
        ..Default::default()
    };
    rebase(&open(&fx), &opts, &OpContext::silent()).unwrap();
    let l3 = release("3");
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert_eq!(
        repo_refs(&fx, "ostree/container/blob").len(),
        l2.union(&l3).count()
    );
    // Release 2's deployment falls off (a directory sysroot keeps the new one and the
    // rollback): its image and the layers only it used go.
    let l4 = release("4");
    let (ctx, events) = recording_ctx();
    upgrade(&open(&fx), &UpgradeOptions::default(), &ctx).unwrap();
    let said = format!("{:?}", events.lock().unwrap());
    assert!(said.contains("Pruned images: "), "{said}");
    let kept: BTreeSet<&String> = l3.union(&l4).collect();
    assert_eq!(repo_refs(&fx, "ostree/container/blob").len(), kept.len());
    assert_eq!(
        repo_refs(&fx, "ostree/container/image").len(),
        1,
        "one tag, at release 4"
    );

    // Back to the ref, without the image rollback: `cleanup -b` leaves no image behind.
    let back = RebaseOptions {
        refspec: fx.refspec(),
        ..Default::default()
    };
    rebase(&open(&fx), &back, &OpContext::silent()).unwrap();
    let cleanup = |rollback: bool, base: bool| strata_core::CleanupOptions {
        rollback,
        base,
        ..Default::default()
    };
    strata_core::cleanup(&open(&fx), &cleanup(true, false), &OpContext::silent()).unwrap();
    assert!(!repo_refs(&fx, "ostree/container/image").is_empty());
    strata_core::cleanup(&open(&fx), &cleanup(false, true), &OpContext::silent()).unwrap();
    assert_eq!(repo_refs(&fx, "ostree/container"), BTreeSet::new());
    let fsck = std::process::Command::new("ostree")
        .arg(format!(
            "--repo={}",
            fx.sysroot().unwrap().path().join("ostree/repo").display()
        ))
        .args(["fsck", "--quiet"])
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{fsck:?}");
}

/// `ostree-remote-image:REMOTE:…` verifies the ostree commit inside the image with the
/// remote's GPG keys: an image of a signed release deploys; one of an unsigned release, or of
/// a release signed with another key, is refused and changes nothing.
#[test]
fn remote_image_references_are_verified_with_the_remote_s_keys() {
    let fx = fixture_with(strata_tests::FixtureConfig {
        gpg: true,
        ..Default::default()
    });
    let oci = fx.dir().join("oci");
    let signed = fx.commit(&OsRelease::new("2")).unwrap();
    oci::encapsulate(fx.repo().path(), &signed, &oci, "signed").unwrap();
    let unsigned = fx.commit(&OsRelease::new("3").unsigned()).unwrap();
    oci::encapsulate(fx.repo().path(), &unsigned, &oci, "unsigned").unwrap();
    let other_key = strata_tests::GpgKey::generate(&fx.dir().join("other-key")).unwrap();
    let stranger = fx
        .commit(&OsRelease::new("4").sign_with(other_key.signer()))
        .unwrap();
    oci::encapsulate(fx.repo().path(), &stranger, &oci, "stranger").unwrap();
    let reference = |tag: &str| RebaseOptions {
        refspec: format!(
            "ostree-remote-image:{}:oci:{}:{tag}",
            strata_tests::DEFAULT_REMOTE,
            oci.display()
        ),
        ..Default::default()
    };
    let err = assert_fails_unchanged(&fx, |s| {
        rebase(s, &reference("unsigned"), &OpContext::silent())
    });
    assert!(
        err.contains("carries no signature") && err.contains("ostree remote \"testos\""),
        "{err}"
    );
    let err = assert_fails_unchanged(&fx, |s| {
        rebase(s, &reference("stranger"), &OpContext::silent())
    });
    assert!(
        err.contains("Verifying ostree commit")
            && err.contains(&format!(
                "key ID {}",
                &other_key.key_id()[other_key.key_id().len() - 16..]
            ))
            && err.contains("Can't check signature: public key not found"),
        "{err}"
    );
    let out = rebase(&open(&fx), &reference("signed"), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 2"), "{release}");
}

/// `ostree-image-signed:` asks the containers signature policy. Under a policy that accepts
/// anything by default (Debian's, this machine's) nothing can be verified, and the reference is
/// refused saying so. Under one that requires a key for the registry, an image signed with it
/// deploys; an unsigned one, or one signed with another key, is refused and changes nothing.
/// (One test: the policy is the host's, one at a time.)
#[test]
fn signed_image_references_follow_the_signature_policy() {
    let policy = std::fs::read_to_string("/etc/containers/policy.json").unwrap_or_default();
    let fx = fixture();
    let oci = fx.dir().join("oci");
    for v in ["2", "3"] {
        let rev = fx.commit(&OsRelease::new(v)).unwrap();
        oci::encapsulate(fx.repo().path(), &rev, &oci, v).unwrap();
    }
    let local = RebaseOptions {
        refspec: format!("ostree-image-signed:oci:{}:2", oci.display()),
        ..Default::default()
    };
    let err = assert_fails_unchanged(&fx, |s| rebase(s, &local, &OpContext::silent()));
    assert!(policy.contains("insecureAcceptAnything"), "{policy}");
    assert!(
        err.contains("containers-policy.json specifies a default of `insecureAcceptAnything`"),
        "{err}"
    );

    let registry = Registry::start().unwrap();
    let key = strata_tests::GpgKey::generate(&fx.dir().join("image-key")).unwrap();
    let other = strata_tests::GpgKey::generate(&fx.dir().join("other-key")).unwrap();
    // Signatures are kept per repository and manifest: one repository each.
    registry
        .push_signed(&oci, "2", "signed/os:stable", &key)
        .unwrap();
    registry.push(&oci, "3", "unsigned/os:stable").unwrap();
    registry
        .push_signed(&oci, "3", "other/os:stable", &other)
        .unwrap();
    let _policy = oci::SignaturePolicy::install(&registry, &key, fx.dir()).unwrap();
    let signed = |name: &str| RebaseOptions {
        refspec: format!(
            "ostree-image-signed:docker://{}/{name}/os:stable",
            registry.host()
        ),
        ..Default::default()
    };
    let err = assert_fails_unchanged(&fx, |s| {
        rebase(s, &signed("unsigned"), &OpContext::silent())
    });
    assert!(
        err.contains("A signature was required, but no signature exists"),
        "{err}"
    );
    let err = assert_fails_unchanged(&fx, |s| rebase(s, &signed("other"), &OpContext::silent()));
    assert!(
        err.contains("Source image rejected: Invalid GPG signature")
            && err.contains(other.key_id()),
        "{err}"
    );
    let out = rebase(&open(&fx), &signed("signed"), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 2"), "{release}");
}

/// A one-file change on a 5,000-file image: the upgrade fetches the layer holding that file
/// and the commit layer, a small part of the image (the figures are printed for the record).
#[test]
fn a_one_file_change_fetches_a_small_part_of_a_large_image() {
    let fx = fixture();
    let registry = Registry::start().unwrap();
    let oci = fx.dir().join("oci");
    let release = |content: &str| {
        OsRelease::new("2")
            .extra_files(5000)
            .file("usr/share/doc/strata-note", content)
    };
    let publish = |tag: &str, content: &str| {
        let rev = fx.commit(&release(content)).unwrap();
        oci::encapsulate(fx.repo().path(), &rev, &oci, tag).unwrap();
        registry.push(&oci, tag, "os:stable").unwrap();
        oci::layers(&format!("oci:{}:{tag}", oci.display())).unwrap()
    };
    let first = publish("a", "one\n");
    let opts = RebaseOptions {
        refspec: format!("ostree-unverified-registry:{}/os:stable", registry.host()),
        ..Default::default()
    };
    rebase(&open(&fx), &opts, &OpContext::silent()).unwrap();
    let second = publish("b", "two\n");
    let before = registry.blobs_fetched().len();
    upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    let size = |d: &String| std::fs::metadata(registry.blob_path(d)).unwrap().len();
    let fetched: BTreeSet<String> = registry.blobs_fetched()[before..]
        .iter()
        .filter(|d| second.contains(*d))
        .cloned()
        .collect();
    let fetched_bytes: u64 = fetched.iter().map(size).sum();
    let total_bytes: u64 = second.iter().map(size).sum();
    eprintln!(
        "one-file change on a 5,000-file image: fetched {} of {} layers ({:?} bytes), \
         {fetched_bytes} of {total_bytes} bytes ({:.1}%)",
        fetched.len(),
        second.len(),
        fetched.iter().map(size).collect::<Vec<_>>(),
        fetched_bytes as f64 * 100.0 / total_bytes as f64
    );
    let changed = second.iter().filter(|l| !first.contains(l)).count();
    assert_eq!(fetched.len(), changed, "{first:?} {second:?}");
    assert!(
        fetched_bytes * 4 < total_bytes,
        "{fetched_bytes} of {total_bytes} bytes fetched"
    );
    let note = read_in_deployment(&fx, 0, "usr/share/doc/strata-note").unwrap();
    assert_eq!(note, "two\n");
}

/// The cached update of an image deployment pinned by digest (whose image is not stored under
/// its tag's reference): a check records the moved tag's manifest beside the deployed image,
/// and a check after the tag moved back clears it.
#[test]
fn checks_on_a_digest_pinned_image_keep_the_cached_update_right() {
    let fx = fixture();
    let registry = Registry::start().unwrap();
    let oci = fx.dir().join("oci");
    let publish = |v: &str| {
        let rev = fx.commit(&OsRelease::new(v)).unwrap();
        let d = oci::encapsulate(fx.repo().path(), &rev, &oci, v).unwrap();
        registry.push(&oci, v, "os:stable").unwrap();
        d
    };
    let d2 = publish("2");
    let opts = RebaseOptions {
        refspec: format!("ostree-unverified-registry:{}/os:stable", registry.host()),
        revision: Some(strata_core::Revision::ImageDigest(d2)),
        ..Default::default()
    };
    rebase(&open(&fx), &opts, &OpContext::silent()).unwrap();
    let check = UpgradeOptions {
        check_only: true,
        ..Default::default()
    };
    let cached = || strata_core::update::load(&open(&fx), strata_tests::DEFAULT_OSNAME).unwrap();
    publish("3");
    let out = upgrade(&open(&fx), &check, &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::UpdateAvailable { .. }), "{out:?}");
    let update = cached().expect("a cached update for the moved tag");
    let update = strata_tests::glib::VariantDict::new(Some(&update));
    assert_eq!(
        update.lookup::<String>("version").unwrap().as_deref(),
        Some("3")
    );
    assert!(update.lookup_value("manifest-diff", None).is_some());

    registry.push(&oci, "2", "os:stable").unwrap();
    let out = upgrade(&open(&fx), &check, &OpContext::silent()).unwrap();
    assert!(out.is_unchanged(), "{out:?}");
    assert!(cached().is_none(), "the tag is back at the deployed image");
}
