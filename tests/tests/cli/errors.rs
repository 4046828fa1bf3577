//! Failures before any transaction: unsupported verbs, no daemon.

use strata_tests::PrivateBus;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_verb_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("unix:path={}", tmp.path().join("none").display());
    let out = output(command(
        &strata_binary(),
        &addr,
        &["override", "remove", "foo"],
    ))
    .await
    .expect(1);
    assert!(
        out.stderr
            .contains("\"strata override\" is not supported yet"),
        "{out:#?}"
    );
    assert_eq!(out.stdout, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_not_running_is_explained() {
    // No bus at all.
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("unix:path={}", tmp.path().join("none").display());
    let out = output(command(&strata_binary(), &addr, &["status"]))
        .await
        .expect(1);
    assert!(
        out.stderr
            .starts_with("error: Could not connect to stratad on the system bus:"),
        "{out:#?}"
    );
    // A bus, but nobody owns the name.
    let bus = PrivateBus::start().unwrap();
    let out = output(command(&strata_binary(), bus.address(), &["upgrade"]))
        .await
        .expect(1);
    assert!(
        out.stderr.contains("Could not connect to stratad"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("systemctl status stratad"), "{out:#?}");
}
