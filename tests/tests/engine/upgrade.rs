use std::time::Duration;

use strata_core::{upgrade, Event, OpContext, Outcome, UpgradeOptions};
use strata_tests::gio::prelude::*;
use strata_tests::glib;
use strata_tests::{FixtureConfig, OsRelease};

use crate::*;

#[test]
fn upgrade_file_remote_deploys_new_release() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let sysroot = open(&fx);
    let (ctx, events) = recording_ctx();
    let out = upgrade(&sysroot, &UpgradeOptions::default(), &ctx).unwrap();
    match out {
        Outcome::Deployed {
            checksum,
            version,
            staged,
            ..
        } => {
            assert_eq!(checksum, v2);
            assert_eq!(version.as_deref(), Some("2"));
            assert!(!staged, "a non-booted sysroot is deployed directly");
        }
        o => panic!("unexpected outcome {o:?}"),
    }
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(deps.len(), 2);
    assert_eq!(deps[0].checksum, v2);
    assert_eq!(deps[1].checksum, fx.first_commit());
    // Kernel arguments are inherited from the merge deployment.
    let kargs = |i: usize| -> Vec<String> {
        deps[i]
            .options
            .as_deref()
            .unwrap()
            .split_whitespace()
            .filter(|a| !a.starts_with("ostree="))
            .map(String::from)
            .collect()
    };
    assert_eq!(kargs(0), ["root=LABEL=root", "rw", "quiet"]);
    assert_eq!(kargs(0), kargs(1));
    assert_eq!(
        read_in_deployment(&fx, 0, "usr/lib/os-release")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VERSION="))
            .unwrap(),
        "VERSION=2"
    );
    let events = events.lock().unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::TaskBegin(t) if t.starts_with("Pulling"))));
    let begin = events
        .iter()
        .position(|e| matches!(e, Event::TaskBegin(t) if t == "Writing deployment"))
        .expect("Writing deployment task");
    assert_eq!(events[begin + 1], Event::TaskEnd("done".into()));
}

#[test]
fn upgrade_http_remote_reports_download_progress() {
    let fx = fixture_with(FixtureConfig {
        http: true,
        ..Default::default()
    });
    let v2 = fx
        .commit(&OsRelease::new("2").extra_files(300).extra_files_seed("v2"))
        .unwrap();
    let http = fx.http().unwrap();
    // Slow the server down so the pull spans several progress updates (one a second).
    http.set_delay(Duration::from_millis(5));
    let before = http.requests();
    let sysroot = open(&fx);
    let (ctx, events) = recording_ctx();
    let out = upgrade(&sysroot, &UpgradeOptions::default(), &ctx).unwrap();
    assert!(matches!(out, Outcome::Deployed { ref checksum, .. } if *checksum == v2));
    assert!(http.requests() > before + 300, "objects came over HTTP");
    let events = events.lock().unwrap();
    let downloads: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Download(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert!(!downloads.is_empty(), "no DownloadProgress events");
    assert!(downloads.iter().any(|d| d.fetched > 0 || d.requested > 0));
    assert!(events.contains(&Event::ProgressEnd));
}

#[test]
fn upgrade_without_new_commit_is_unchanged() {
    let fx = fixture();
    let before = snapshot(&fx);
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert_eq!(out, Outcome::Unchanged);
    assert_eq!(before, snapshot(&fx));
}

#[test]
fn check_only_answers_without_deploying() {
    let fx = fixture();
    let opts = UpgradeOptions {
        check_only: true,
        ..Default::default()
    };
    let before = snapshot(&fx);
    assert_eq!(
        upgrade(&open(&fx), &opts, &OpContext::silent()).unwrap(),
        Outcome::Unchanged
    );
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let out = upgrade(&open(&fx), &opts, &OpContext::silent()).unwrap();
    assert_eq!(
        out,
        Outcome::UpdateAvailable {
            checksum: v2.clone(),
            version: Some("2".into())
        }
    );
    assert_eq!(before, snapshot(&fx), "check-only deployed something");
    // Only the commit object was fetched; the real upgrade then fetches the content.
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { checksum, .. } if checksum == v2));
}

#[test]
fn download_only_then_cache_only() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let before = snapshot(&fx);
    let out = upgrade(
        &open(&fx),
        &UpgradeOptions {
            download_only: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, Outcome::Downloaded { ref checksum, .. } if *checksum == v2));
    assert_eq!(before, snapshot(&fx));
    // Make the remote unusable: cache-only must not need it.
    std::fs::rename(fx.repo().path(), fx.dir().join("repo-moved")).unwrap();
    let out = upgrade(
        &open(&fx),
        &UpgradeOptions {
            cache_only: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, Outcome::Deployed { checksum, .. } if checksum == v2));
}

#[test]
fn downgrade_is_refused_unless_allowed() {
    let fx = fixture();
    let t1 = fx.repo().commit_timestamp(fx.first_commit()).unwrap();
    let older = fx
        .commit(&OsRelease::new("0.9").timestamp(t1 - 3600))
        .unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("older than the current one"), "{err}");
    assert!(err.contains("--allow-downgrade"), "{err}");
    let out = upgrade(
        &open(&fx),
        &UpgradeOptions {
            allow_downgrade: true,
            ..Default::default()
        },
        &OpContext::silent(),
    )
    .unwrap();
    assert!(matches!(out, Outcome::Deployed { checksum, .. } if checksum == older));
}

#[test]
fn unknown_ref_fails_cleanly() {
    let fx = fixture();
    // Point the origin at a ref the remote does not have.
    let origin = origin_file(&fx, 0);
    let text = std::fs::read_to_string(&origin).unwrap();
    std::fs::write(
        &origin,
        text.replace(fx.ref_(), "stratatest/nonexistent/x86_64"),
    )
    .unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("stratatest/nonexistent/x86_64"), "{err}");
    assert!(err.contains("Pulling"), "{err}");
}

#[test]
fn unreachable_remote_fails_cleanly() {
    let fx = fixture_with(FixtureConfig {
        http: true,
        ..Default::default()
    });
    fx.commit(&OsRelease::new("2")).unwrap();
    // Repoint the remote at a closed loopback port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    strata_tests::cmd::ostree([
        "remote",
        "add",
        "--force",
        "--no-gpg-verify",
        &format!("--repo={}", fx.sysroot().unwrap().repo_path().display()),
        "testos",
        &format!("http://127.0.0.1:{port}/repo"),
    ])
    .unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("Pulling"), "{err}");
    assert!(err.contains("testos"), "{err}");
}

#[test]
fn malformed_origin_fails_cleanly() {
    let fx = fixture();
    let origin = origin_file(&fx, 0);
    // Syntactically a keyfile, but with two bases.
    let text = std::fs::read_to_string(&origin).unwrap();
    std::fs::write(
        &origin,
        format!("{text}container-image-reference=ostree-unverified-registry:quay.io/x/y:1\n"),
    )
    .unwrap();
    fx.commit(&OsRelease::new("2")).unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("origin"), "{err}");
    assert!(err.contains(".origin"), "error names the file: {err}");
}

#[test]
fn cancel_mid_pull_leaves_sysroot_unchanged() {
    let fx = fixture_with(FixtureConfig {
        http: true,
        ..Default::default()
    });
    fx.commit(&OsRelease::new("2").extra_files(2000).extra_files_seed("v2"))
        .unwrap();
    let http = fx.http().unwrap();
    // 2,000 new objects at 10 ms each: the pull would take 20 s.
    http.set_delay(Duration::from_millis(10));
    let base = http.requests();
    let (ctx, _events) = recording_ctx();
    let cancellable = ctx.cancellable().clone();
    let before = snapshot(&fx);
    let sysroot = open(&fx);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Cancel once the pull is demonstrably under way.
            http.wait_for_requests(base + 50, Duration::from_secs(60))
                .unwrap();
            cancellable.cancel();
        });
        let err = upgrade(&sysroot, &UpgradeOptions::default(), &ctx).unwrap_err();
        assert!(strata_core::is_cancelled(&err), "{err:#}");
    });
    let served = http.requests() - base;
    assert!(
        served < 1000,
        "the pull ran on after cancel ({served} requests)"
    );
    drop(sysroot);
    assert_eq!(before, snapshot(&fx));
    // And a retry succeeds.
    http.set_delay(Duration::ZERO);
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }));
}

#[test]
fn locked_sysroot_is_refused() {
    let fx = fixture();
    fx.commit(&OsRelease::new("2")).unwrap();
    let holder = open(&fx);
    let _lock = holder.lock().unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.contains("locked by another process"), "{err}");
}

#[test]
fn lock_finalization_needs_a_booted_system() {
    let fx = fixture();
    fx.commit(&OsRelease::new("2")).unwrap();
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(
            s,
            &UpgradeOptions {
                lock_finalization: true,
                ..Default::default()
            },
            &OpContext::silent(),
        )
    });
    assert!(
        err.contains("--lock-finalization needs a booted system"),
        "{err}"
    );
}

/// The texts of the per-layer progress bars among `events` (one per layer fetched).
fn layer_bars(events: &[Event]) -> std::collections::BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Percent { text, .. } if text.contains("Fetching layer") => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// An image-based deployment: `--check` answers from the manifest (the layers a pull would
/// fetch, the cached update with its manifest diff, nothing deployed), an upgrade deploys
/// only when the tag's digest moved and fetches only the layers that changed.
#[test]
fn an_image_based_deployment_follows_its_tag() {
    let fx = fixture();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let oci = fx.dir().join("oci");
    let d2 = strata_tests::oci::encapsulate(fx.repo().path(), &v2, &oci, "stable").unwrap();
    let imgref = format!("ostree-unverified-image:oci:{}:stable", oci.display());
    let rebase = strata_core::RebaseOptions {
        refspec: imgref.clone(),
        ..Default::default()
    };
    let (ctx, events) = recording_ctx();
    strata_core::rebase(&open(&fx), &rebase, &ctx).unwrap();
    let all_layers = strata_tests::oci::layers(&format!("oci:{}:stable", oci.display())).unwrap();
    assert_eq!(
        layer_bars(&events.lock().unwrap()).len(),
        all_layers.len(),
        "a first pull fetches every layer, each with its progress"
    );
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(out.is_unchanged(), "the tag did not move: {out:?}");
    let check = UpgradeOptions {
        check_only: true,
        ..Default::default()
    };
    let out = upgrade(&open(&fx), &check, &OpContext::silent()).unwrap();
    assert!(out.is_unchanged(), "{out:?}");

    let v3 = fx.commit(&OsRelease::new("3")).unwrap();
    let d3 = strata_tests::oci::encapsulate(fx.repo().path(), &v3, &oci, "stable").unwrap();
    let before = fx.sysroot().unwrap().deployments().unwrap();
    let (ctx, events) = recording_ctx();
    let out = upgrade(&open(&fx), &check, &ctx).unwrap();
    match &out {
        Outcome::UpdateAvailable { checksum, .. } => assert_eq!(checksum, &d3),
        o => panic!("{o:?}"),
    }
    assert_eq!(fx.sysroot().unwrap().deployments().unwrap(), before);
    let said = format!("{:?}", events.lock().unwrap());
    assert!(
        layer_bars(&events.lock().unwrap()).is_empty(),
        "a check fetches no layer: {said}"
    );
    let v2_layers: std::collections::BTreeSet<String> = all_layers.iter().cloned().collect();
    let v3_layers = strata_tests::oci::layers(&format!("oci:{}:stable", oci.display())).unwrap();
    let new_layers = v3_layers.iter().filter(|l| !v2_layers.contains(*l)).count();
    assert!(
        new_layers > 0 && new_layers < v3_layers.len(),
        "{v2_layers:?} {v3_layers:?}"
    );
    assert!(
        said.contains(&format!(
            "{new_layers} of {} layers to fetch",
            v3_layers.len()
        )),
        "{said}"
    );
    let cached = strata_core::update::load(&open(&fx), strata_tests::DEFAULT_OSNAME)
        .unwrap()
        .expect("a cached update after the check");
    let cached = glib::VariantDict::new(Some(&cached));
    assert_eq!(
        cached.lookup::<bool>("ref-has-new-commit").unwrap(),
        Some(false)
    );
    assert_eq!(
        cached.lookup::<String>("origin").unwrap(),
        Some(imgref.clone())
    );
    let diff = glib::VariantDict::new(cached.lookup_value("manifest-diff", None).as_ref());
    assert_eq!(
        diff.lookup::<u64>("n-added").unwrap(),
        Some(new_layers as u64)
    );
    assert_eq!(
        diff.lookup::<u64>("total").unwrap(),
        Some(v3_layers.len() as u64)
    );
    assert_ne!(d2, d3);

    let (ctx, events) = recording_ctx();
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &ctx).unwrap();
    assert!(matches!(out, Outcome::Deployed { .. }), "{out:?}");
    assert_eq!(
        layer_bars(&events.lock().unwrap()).len(),
        new_layers,
        "only the changed layers are fetched"
    );
    let release = read_in_deployment(&fx, 0, "usr/bin/strata-release").unwrap();
    assert!(release.contains("echo 3"), "{release}");
    let report = strata_core::status::load(&open(&fx)).unwrap();
    assert_eq!(
        report.deployments[0].extra["container-image-reference-digest"],
        d3.as_str()
    );
    assert_eq!(
        report.deployments[0].container_image_reference.as_deref(),
        Some(imgref.as_str())
    );
    assert_eq!(
        report.deployments[0].version.as_deref(),
        Some("3"),
        "an image's version is its configuration's version label"
    );
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(out.is_unchanged(), "{out:?}");
    let out = upgrade(&open(&fx), &check, &OpContext::silent()).unwrap();
    assert!(out.is_unchanged(), "{out:?}");
    assert!(
        strata_core::update::load(&open(&fx), strata_tests::DEFAULT_OSNAME)
            .unwrap()
            .is_none(),
        "no update once the new image is deployed"
    );
}

/// The paths the fixture's HTTP server was asked for from request `from` on.
fn requested_since(fx: &strata_tests::Fixture, from: usize) -> Vec<String> {
    let log = fx.http().unwrap().request_log();
    log[from.min(log.len())..]
        .iter()
        .map(|r| r.path.clone())
        .collect()
}

#[test]
fn no_update_is_told_from_the_summary_alone() {
    let fx = fixture_with(FixtureConfig {
        http: true,
        ..Default::default()
    });
    let check = UpgradeOptions {
        check_only: true,
        ..Default::default()
    };
    let before = snapshot(&fx);
    for opts in [&check, &UpgradeOptions::default()] {
        let from = fx.http().unwrap().request_log().len();
        let out = upgrade(&open(&fx), opts, &OpContext::silent()).unwrap();
        assert_eq!(out, Outcome::Unchanged);
        // No commit object, no ref, no repo config: no pull, hence no repository transaction.
        let asked = requested_since(&fx, from);
        assert!(
            !asked.is_empty()
                && asked
                    .iter()
                    .all(|p| p.ends_with("/summary") || p.ends_with("/summary.sig")),
            "{asked:?}"
        );
    }
    assert_eq!(before, snapshot(&fx));
    // Once the remote moves, its summary says so and the commit is fetched.
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let from = fx.http().unwrap().request_log().len();
    let out = upgrade(&open(&fx), &check, &OpContext::silent()).unwrap();
    assert!(matches!(out, Outcome::UpdateAvailable { ref checksum, .. } if *checksum == v2));
    let asked = requested_since(&fx, from);
    assert!(asked.iter().any(|p| p.contains(&v2[2..])), "{asked:?}");
}
