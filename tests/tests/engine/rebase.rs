use strata_core::{rebase, OpContext, Outcome, RebaseOptions, Revision};
use strata_tests::OsRelease;

use crate::*;

const OTHER_REF: &str = "stratatest/testing/x86_64";

fn opts(refspec: &str) -> RebaseOptions {
    RebaseOptions {
        refspec: refspec.to_string(),
        ..Default::default()
    }
}

#[test]
fn rebase_to_other_ref_on_same_remote() {
    let fx = fixture();
    let t = fx
        .repo()
        .commit_release(OTHER_REF, &OsRelease::new("10-testing"))
        .unwrap();
    let out = rebase(&open(&fx), &opts(OTHER_REF), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { ref checksum, .. } if *checksum == t));
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    let origin = deps[0].origin.clone().unwrap();
    assert!(
        origin.contains(&format!("refspec=testos:{OTHER_REF}")),
        "{origin}"
    );
    // The old ref was purged from the sysroot repo.
    let repo = ostree::Repo::new_for_path(fx.sysroot().unwrap().repo_path());
    repo.open(ostree::gio::Cancellable::NONE).unwrap();
    assert!(repo.resolve_rev(&fx.refspec(), true).unwrap().is_none());
}

#[test]
fn rebase_to_other_remote_with_revision() {
    let fx = fixture();
    let sysroot = fx.sysroot().unwrap();
    sysroot
        .add_remote("mirror", &fx.repo().file_url(), None)
        .unwrap();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    fx.commit(&OsRelease::new("3")).unwrap();
    let o = RebaseOptions {
        refspec: "mirror:".into(),
        revision: Some(Revision::Version("2".into())),
        skip_purge: true,
        ..Default::default()
    };
    let out = rebase(&open(&fx), &o, &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { ref checksum, .. } if *checksum == v2));
    let origin = sysroot.deployments().unwrap()[0].origin.clone().unwrap();
    assert!(
        origin.contains(&format!("refspec=mirror:{}", fx.ref_())),
        "{origin}"
    );
    assert!(
        origin.contains(&format!("override-commit={v2}")),
        "{origin}"
    );
}

#[test]
fn rebase_to_local_ref() {
    let fx = fixture();
    let sysroot = fx.sysroot().unwrap();
    // Reference the deployed commit under a local ref, as rpm-ostree's tests do with :vmcheck.
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    sysroot.pull("testos", fx.ref_()).unwrap();
    strata_tests::cmd::ostree([
        "refs",
        &format!("--repo={}", sysroot.repo_path().display()),
        "--create=vmcheck",
        &v2,
    ])
    .unwrap();
    let out = rebase(&open(&fx), &opts(":vmcheck"), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { ref checksum, .. } if *checksum == v2));
    let origin = sysroot.deployments().unwrap()[0].origin.clone().unwrap();
    assert!(origin.contains("refspec=vmcheck\n"), "{origin}");
}

#[test]
fn rebase_errors_change_nothing() {
    let fx = fixture();
    let cases = [
        ("nosuchremote:foo/bar", "not configured"),
        (
            "testos:stratatest/none/x86_64",
            "Check the ref name (ostree remote refs testos",
        ),
        ("testos:bad ref", "Invalid refspec"),
        ("a:b:c", "Invalid refspec"),
        (&*fx.refspec(), "Old and new refs are equal"),
    ];
    for (refspec, expect) in cases {
        let err = assert_fails_unchanged(&fx, |s| rebase(s, &opts(refspec), &OpContext::silent()));
        assert!(
            err.to_lowercase().contains(&expect.to_lowercase()),
            "{refspec}: {err}"
        );
    }
}

#[test]
fn layering_on_a_base_without_an_rpmdb_fails_with_requests_kept() {
    let fx = fixture();
    fx.repo()
        .commit_release(OTHER_REF, &OsRelease::new("10"))
        .unwrap();
    // Give the deployment a layering request, as rpm-ostree would have written it.
    let origin_path = origin_file(&fx, 0);
    let text = std::fs::read_to_string(&origin_path).unwrap();
    let text = text.replace("refspec=", "baserefspec=") + "\n[packages]\nrequested=htop;\n";
    std::fs::write(&origin_path, &text).unwrap();
    let err = assert_fails_unchanged(&fx, |s| rebase(s, &opts(OTHER_REF), &OpContext::silent()));
    // The fixture's releases carry no rpm database to depsolve against.
    assert!(err.contains("no rpm database"), "{err}");
    assert_eq!(std::fs::read_to_string(&origin_path).unwrap(), text);
    // At the origin level the requests survive a rebase.
    let mut origin = strata_core::origin::Origin::parse(&text).unwrap();
    origin
        .set_refspec(&strata_core::origin::Refspec::parse(&format!("testos:{OTHER_REF}")).unwrap());
    assert_eq!(origin.requested_packages(), ["htop"]);
    assert!(origin
        .to_string()
        .contains(&format!("baserefspec=testos:{OTHER_REF}")));
}

/// A ref-based host becomes image-based by rebasing to an `oci:` image of a release, and
/// back by rebasing to the ref, keeping each previous deployment as the rollback; status
/// carries the reference, its digest and the image metadata verbatim.
#[test]
fn rebase_to_an_oci_image_and_back_keeps_the_rollback() {
    let fx = fixture();
    let v1 = fx.first_commit().to_string();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let oci = fx.dir().join("oci");
    let digest = strata_tests::oci::encapsulate(fx.repo().path(), &v2, &oci, "v2").unwrap();
    let imgref = format!("ostree-unverified-image:oci:{}:v2", oci.display());

    let out = rebase(&open(&fx), &opts(&imgref), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(deps.len(), 2);
    assert_eq!(
        deps[1].checksum, v1,
        "the ref deployment stays as the rollback"
    );
    let origin = deps[0].origin.clone().unwrap();
    assert!(
        origin.contains(&format!("container-image-reference={imgref}"))
            && !origin.contains("refspec="),
        "{origin}"
    );
    let report = strata_core::status::load(&open(&fx)).unwrap();
    let d = &report.deployments[0];
    assert_eq!(
        d.container_image_reference.as_deref(),
        Some(imgref.as_str())
    );
    assert_eq!(d.origin, None);
    assert_eq!(d.extra["container-image-reference-digest"], digest.as_str());
    for key in ["ostree.manifest", "ostree.container.image-config"] {
        assert!(
            d.base_commit_meta[key].is_string(),
            "{key}: {:?}",
            d.base_commit_meta
        );
    }
    // The release's own files are what is deployed.
    let release = std::fs::read_to_string(
        fx.sysroot()
            .unwrap()
            .deploy_dir(0)
            .unwrap()
            .join("usr/bin/strata-release"),
    )
    .unwrap();
    assert!(release.contains("echo 2"), "{release}");

    // And back: the ref again, the image deployment as the rollback.
    let out = rebase(&open(&fx), &opts(&fx.refspec()), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    let origin = deps[0].origin.clone().unwrap();
    assert!(
        origin.contains(&format!("refspec={}", fx.refspec()))
            && !origin.contains("container-image"),
        "{origin}"
    );
    assert!(deps[1]
        .origin
        .clone()
        .unwrap()
        .contains("container-image-reference="));

    // A reference that is not one changes nothing.
    let before = snapshot(&fx);
    let err = rebase(
        &open(&fx),
        &opts("ostree-unverified-image:oci:/nonexistent/dir:v9"),
        &OpContext::silent(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/dir"), "{err:#}");
    assert_eq!(before, snapshot(&fx));
}
