//! Crash safety: SIGKILL the daemon while a transaction sits at each failpoint; the sysroot is
//! unchanged, the restarted daemon serves status, and the retried operation succeeds.
//!
//! Needs `stratad` built with the `failpoints` feature (`cargo test --workspace` does that,
//! through this crate's dev-dependency).

use std::time::Duration;

use futures_util::StreamExt;
use strata_tests::{FixtureConfig, OsRelease, PrivateBus, Stratad};

use crate::*;

async fn crash_at(point: &str, wait_for_task: Option<&str>) {
    let fx = Fixture::new(&FixtureConfig::default()).unwrap();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let before = fx.sysroot().unwrap().snapshot().unwrap();
    let bus = PrivateBus::start().unwrap();
    let path = fx.sysroot().unwrap().path().to_path_buf();
    let spec = format!("{point}=sleep(600000)");
    let daemon = Stratad::start_with_env(&bus, &path, &[], &[("FAILPOINTS", &spec)])
        .await
        .unwrap();
    let conn = bus.connect().await.unwrap();
    let address = os_proxy(&conn).await.upgrade(&no_opts()).await.unwrap();
    let (_peer, txn) = connect_txn(&address).await;
    let mut stream = signals(&txn).await;
    assert!(txn.start().await.unwrap());
    match wait_for_task {
        Some(prefix) => {
            tokio::time::timeout(Duration::from_secs(60), async {
                while let Some(s) = stream.next().await {
                    if matches!(&s, Signal::TaskBegin(t) if t.starts_with(prefix)) {
                        return;
                    }
                    assert!(!matches!(s, Signal::Finished(..)), "finished early: {s:?}");
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no TaskBegin {prefix}; stderr:\n{}", daemon.stderr()));
        }
        None => tokio::time::sleep(Duration::from_secs(1)).await,
    }
    // Let the worker reach the point.
    tokio::time::sleep(Duration::from_millis(300)).await;
    eprintln!("daemon stderr before SIGKILL:\n{}", daemon.stderr());
    daemon.signal("KILL").unwrap();
    drop(daemon);

    let after = fx.sysroot().unwrap().snapshot().unwrap();
    assert_eq!(before.deployments, after.deployments, "{point}");
    assert_eq!(before.loader_target, after.loader_target, "{point}");
    assert_eq!(before.boot_entries, after.boot_entries, "{point}");

    // Restart without failpoints: status works, the retry succeeds.
    let _daemon = Stratad::start(&bus, &path, &[]).await.unwrap();
    let conn = bus.connect().await.unwrap();
    let deps = sysroot_proxy(&conn).await.deployments().await.unwrap();
    assert_eq!(deps.len(), 1, "{point}");
    let address = os_proxy(&conn).await.upgrade(&no_opts()).await.unwrap();
    let sigs = run_txn(&address).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{point}: {sigs:?}");
    assert_eq!(fx.sysroot().unwrap().deployments().unwrap()[0].checksum, v2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_lock() {
    crash_at("transaction::lock", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_pull() {
    crash_at("transaction::pull", Some("Pulling")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_deploy() {
    crash_at("transaction::deploy", Some("Writing deployment")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_write() {
    crash_at("transaction::write", Some("Writing bootloader entries")).await;
}
