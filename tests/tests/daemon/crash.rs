//! Crash safety: SIGKILL the daemon while a transaction (an upgrade, or layering packages)
//! sits at each failpoint; the sysroot is unchanged, the restarted daemon serves status, and
//! the retried operation succeeds (for layering, without the killed one's scratch checkout).
//!
//! Needs `stratad` built with the `failpoints` feature (`cargo test --workspace` does that,
//! through this crate's dev-dependency).

use std::time::Duration;

use futures_util::StreamExt;
use strata_api::options::{DeployOptions, Modifiers};
use strata_tests::{FixtureConfig, PrivateBus, Stratad, TestPackages};

use crate::*;

/// What the crashed transaction does.
enum Work {
    /// `Upgrade` to release 2.
    Upgrade,
    /// `UpdateDeployment` installing packages with a `%pre` and a `%post` (`svc`, `scripted`).
    Install,
}

impl Work {
    async fn start(&self, conn: &zbus::Connection) -> String {
        let os = os_proxy(conn).await;
        match self {
            Work::Upgrade => os.upgrade(&no_opts()).await.unwrap(),
            Work::Install => {
                let m = Modifiers {
                    install_packages: Some(vec!["svc".into(), "scripted".into()]),
                    ..Default::default()
                };
                let o = DeployOptions {
                    no_pull_base: Some(true),
                    ..Default::default()
                };
                os.update_deployment(&m, &o).await.unwrap()
            }
        }
    }
}

async fn crash_at(point: &str, wait_for_task: Option<&str>) {
    crash_during(Work::Upgrade, point, wait_for_task).await;
}

async fn crash_during(work: Work, point: &str, wait_for_task: Option<&str>) {
    let rpms = tempfile::tempdir().unwrap();
    let pkgs = TestPackages::create(rpms.path()).unwrap();
    let fx = Fixture::new(&FixtureConfig {
        release: pkgs.release("1"),
        ..Default::default()
    })
    .unwrap();
    let v2 = fx.commit(&pkgs.release("2")).unwrap();
    let before = fx.sysroot().unwrap().snapshot().unwrap();
    let bus = PrivateBus::start().unwrap();
    let path = fx.sysroot().unwrap().path().to_path_buf();
    let spec = format!("{point}=sleep(600000)");
    let daemon = Stratad::start_with_env(&bus, &path, &[], &[("FAILPOINTS", &spec)])
        .await
        .unwrap();
    let conn = bus.connect().await.unwrap();
    let address = work.start(&conn).await;
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
    let address = work.start(&conn).await;
    let sigs = run_txn(&address).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{point}: {sigs:?}");
    let sysroot = fx.sysroot().unwrap();
    let new = sysroot.deploy_dir(0).unwrap();
    match work {
        Work::Upgrade => assert_eq!(sysroot.deployments().unwrap()[0].checksum, v2),
        Work::Install => {
            assert!(new.join("usr/share/svc/data").is_file(), "{point}");
            assert!(new.join("etc/scripted").is_file(), "{point}");
            // The killed assembly's scratch checkout is gone.
            let tmp = sysroot.repo_path().join("tmp");
            let left: Vec<_> = std::fs::read_dir(&tmp)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("strata-layer-"))
                .collect();
            assert!(left.is_empty(), "{point}: {left:?}");
        }
    }
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

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_layering_solves() {
    crash_during(Work::Install, "transaction::solve", Some("Resolving")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_layering_imports() {
    crash_during(
        Work::Install,
        "transaction::import",
        Some("Importing packages"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_layering_runs_scripts() {
    crash_during(
        Work::Install,
        "transaction::scripts",
        Some("Running pre scripts"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_layering_writes_the_rpmdb() {
    crash_during(Work::Install, "transaction::rpmdb", Some("Writing rpmdb")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_layering_commits() {
    crash_during(
        Work::Install,
        "transaction::commit",
        Some("Writing OSTree commit"),
    )
    .await;
}
