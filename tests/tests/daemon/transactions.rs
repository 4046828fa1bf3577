//! Transactions over the bus and the peer-to-peer socket.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use strata_api::names;
use strata_api::options::{DeployOptions, Modifiers};
use strata_tests::{FixtureConfig, OsRelease};

use crate::*;

fn http() -> FixtureConfig {
    FixtureConfig {
        http: true,
        ..Default::default()
    }
}

/// A release with enough files that a delayed HTTP pull takes a while.
fn big_release(v: &str) -> OsRelease {
    OsRelease::new(v).extra_files(40).extra_files_seed(v)
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_over_the_bus() {
    let env = Env::new(http()).await;
    let v2 = env.fx.commit(&big_release("2")).unwrap();
    // Slow enough for ostree to report progress at least once.
    env.fx.http().unwrap().set_delay(Duration::from_millis(40));
    let os = env.os().await;
    let address = os.upgrade(&no_opts()).await.unwrap();
    assert!(address.starts_with("unix:path="), "{address}");
    let sock = address.trim_start_matches("unix:path=");
    let mode = std::fs::metadata(sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "transaction socket mode");
    let sysroot = env.sysroot().await;
    assert_eq!(sysroot.active_transaction_path().await.unwrap(), address);
    let (method, sender, path) = sysroot.active_transaction().await.unwrap();
    assert_eq!(method, "Upgrade");
    assert_eq!(sender, env.conn.unique_name().unwrap().to_string());
    assert_eq!(path, names::os_object_path(strata_tests::DEFAULT_OSNAME));

    let (_peer, txn) = connect_txn(&address).await;
    assert_eq!(txn.title().await.unwrap(), "upgrade");
    assert!(txn
        .initiating_client_description()
        .await
        .unwrap()
        .contains(env.conn.unique_name().unwrap().as_str()));
    let mut stream = signals(&txn).await;
    assert!(txn.start().await.unwrap());
    assert!(
        !txn.start().await.unwrap(),
        "a second Start does not restart"
    );
    let sigs = until_finished(&mut stream, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert!(
        sigs.iter()
            .any(|s| matches!(s, Signal::TaskBegin(t) if t.starts_with("Pulling"))),
        "{sigs:?}"
    );
    assert!(
        sigs.iter().any(|s| matches!(s, Signal::TaskEnd(_))),
        "{sigs:?}"
    );
    assert!(
        sigs.iter().any(|s| matches!(s, Signal::Download { .. })),
        "no DownloadProgress: {sigs:?}"
    );
    assert!(
        sigs.iter().any(|s| matches!(s, Signal::ProgressEnd)),
        "{sigs:?}"
    );

    let on_disk = env.fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(on_disk.len(), 2);
    assert_eq!(on_disk[0].checksum, v2);
    // Properties are fresh as soon as Finished arrives.
    let deps = sysroot.deployments().await.unwrap();
    assert_eq!(deps.len(), 2);
    assert_eq!(dict_str(&deps[0], "checksum"), v2);
    assert_eq!(dict_str(&deps[0], "version"), "2");

    // The slot is released once the peer goes away.
    drop(stream);
    drop(txn);
    drop(_peer);
    eventually(Duration::from_secs(10), "slot release", || async {
        sysroot.active_transaction_path().await.unwrap().is_empty()
    })
    .await;
    assert!(!std::path::Path::new(sock).exists(), "socket removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_error_and_identical_request_joins() {
    let env = Env::new(http()).await;
    env.fx.commit(&big_release("2")).unwrap();
    env.fx.http().unwrap().set_delay(Duration::from_millis(300));
    let os = env.os().await;
    let opts = DeployOptions {
        allow_downgrade: Some(true),
        ..Default::default()
    };
    let address = os.upgrade(&opts).await.unwrap();

    let other = env.client().await;
    let os2 = os_proxy(&other).await;
    // Same method, same arguments: joins (also from another client).
    assert_eq!(os2.upgrade(&opts).await.unwrap(), address);
    // Anything else is refused with GIO's busy error.
    let err = os2.upgrade(&no_opts()).await.unwrap_err();
    let (name, msg) = error_name(&err);
    assert_eq!(name, names::ERROR_BUSY);
    assert_eq!(
        msg,
        "Transaction in progress: upgrade\n You can cancel the current transaction with `strata cancel`"
    );
    let err = os2.cleanup(&["base"]).await.unwrap_err();
    assert_eq!(error_name(&err).0, names::ERROR_BUSY);

    // Still busy once started; cancel to finish quickly.
    let (_peer, txn) = connect_txn(&address).await;
    let mut stream = signals(&txn).await;
    assert!(txn.start().await.unwrap());
    let err = os2.rollback(&no_opts()).await.unwrap_err();
    assert_eq!(error_name(&err).0, names::ERROR_BUSY);
    txn.cancel().await.unwrap();
    let sigs = until_finished(&mut stream, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!finished(&sigs).0, "{sigs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_mid_pull_leaves_sysroot_unchanged() {
    let env = Env::new(http()).await;
    env.fx.commit(&big_release("2")).unwrap();
    let before = env.fx.sysroot().unwrap().snapshot().unwrap();
    let server = env.fx.http().unwrap();
    server.set_delay(Duration::from_millis(500));
    let os = env.os().await;
    let address = os.upgrade(&no_opts()).await.unwrap();
    let (_peer, txn) = connect_txn(&address).await;
    let mut stream = signals(&txn).await;
    let requests = server.requests();
    assert!(txn.start().await.unwrap());
    server
        .wait_for_requests(requests + 1, Duration::from_secs(30))
        .unwrap();
    txn.cancel().await.unwrap();
    let sigs = until_finished(&mut stream, Duration::from_secs(60))
        .await
        .unwrap();
    let (ok, msg) = finished(&sigs);
    assert!(!ok, "{sigs:?}");
    assert!(msg.to_lowercase().contains("cancel"), "{msg}");
    assert_eq!(before, env.fx.sysroot().unwrap().snapshot().unwrap());
    let sysroot = env.sysroot().await;
    assert_eq!(sysroot.deployments().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_vanishing_before_start_drops_the_transaction() {
    let env = Env::new(FixtureConfig::default()).await;
    env.fx.commit(&OsRelease::new("2")).unwrap();
    let before = env.fx.sysroot().unwrap().snapshot().unwrap();
    let client = env.client().await;
    let address = os_proxy(&client).await.upgrade(&no_opts()).await.unwrap();
    let sysroot = env.sysroot().await;
    assert_eq!(sysroot.active_transaction_path().await.unwrap(), address);
    client.close().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the transaction to be dropped",
        || async { sysroot.active_transaction_path().await.unwrap().is_empty() },
    )
    .await;
    assert_eq!(
        sysroot.active_transaction().await.unwrap(),
        (String::new(), String::new(), String::new())
    );
    let sock = address.trim_start_matches("unix:path=");
    assert!(!std::path::Path::new(sock).exists(), "socket removed");
    assert_eq!(before, env.fx.sysroot().unwrap().snapshot().unwrap());
    // A new transaction can start.
    let address = env.os().await.upgrade(&no_opts()).await.unwrap();
    let sigs = run_txn(&address).await;
    assert!(finished(&sigs).0, "{sigs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_is_replayed_to_a_late_start() {
    let env = Env::new(FixtureConfig::default()).await;
    let os = env.os().await;
    let address = os.cleanup(&["base"]).await.unwrap();
    let (_peer1, txn1) = connect_txn(&address).await;
    let mut s1 = signals(&txn1).await;
    assert!(txn1.start().await.unwrap());
    let sigs = until_finished(&mut s1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(finished(&sigs), (true, String::new()));

    // The first peer is still connected, so the transaction is still there.
    let (_peer2, txn2) = connect_txn(&address).await;
    assert_eq!(txn2.title().await.unwrap(), "cleanup");
    let mut s2 = signals(&txn2).await;
    assert!(!txn2.start().await.unwrap(), "already started");
    let sigs = until_finished(&mut s2, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(sigs, [Signal::Finished(true, String::new())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_served_while_a_transaction_runs() {
    let env = Env::new(http()).await;
    env.fx.commit(&big_release("2")).unwrap();
    env.fx.http().unwrap().set_delay(Duration::from_millis(300));
    let os = env.os().await;
    let address = os.upgrade(&no_opts()).await.unwrap();
    let (_peer, txn) = connect_txn(&address).await;
    let mut stream = signals(&txn).await;
    assert!(txn.start().await.unwrap());
    let sysroot = env.sysroot().await;
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let deps = sysroot.deployments().await.unwrap();
        assert_eq!(deps.len(), 1);
    }
    let took = started.elapsed();
    // Still running: the 100 reads did not wait for it.
    assert_eq!(sysroot.active_transaction_path().await.unwrap(), address);
    eprintln!("100 Deployments reads during a transaction took {took:?}");
    txn.cancel().await.unwrap();
    until_finished(&mut stream, Duration::from_secs(60))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_kargs_rollback_and_cleanup() {
    let env = Env::new(FixtureConfig::default()).await;
    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    let os = env.os().await;
    // Deploy a checksum, as Cockpit does.
    let opts = DeployOptions {
        reboot: Some(false),
        ..Default::default()
    };
    let sigs = run_txn(&os.deploy(&v2, &opts).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let deps = env.fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(deps[0].checksum, v2);

    let address = os
        .kernel_args("", &["strata.test=1"], &[], &[], &no_opts())
        .await
        .unwrap();
    let sigs = run_txn(&address).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let bc = os.get_deployment_boot_config("", true).await.unwrap();
    assert!(dict_str(&bc, "options").contains("strata.test=1"), "{bc:?}");

    let before = env.fx.sysroot().unwrap().deployments().unwrap();
    let sigs = run_txn(&os.rollback(&no_opts()).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let after = env.fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(after[0].checksum, before[1].checksum);

    let sigs = run_txn(&os.clear_rollback_target(&no_opts()).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let n = env.fx.sysroot().unwrap().deployments().unwrap().len();
    assert_eq!(n, after.len() - 1);
    let deps = env.sysroot().await.deployments().await.unwrap();
    assert_eq!(deps.len(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_transaction_reports_the_error_chain() {
    let env = Env::new(FixtureConfig::default()).await;
    let os = env.os().await;
    let address = os.deploy(&"0".repeat(64), &no_opts()).await.unwrap();
    let sigs = run_txn(&address).await;
    let (ok, msg) = finished(&sigs);
    assert!(!ok);
    assert!(
        msg.contains(&"0".repeat(64)) || msg.contains("000000"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn update_deployment_set_revision_deploys() {
    let env = Env::new(FixtureConfig::default()).await;
    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    let os = env.os().await;
    let modifiers = Modifiers {
        set_revision: Some(format!("revision={v2}")),
        ..Default::default()
    };
    let address = os.update_deployment(&modifiers, &no_opts()).await.unwrap();
    let (_p, txn) = connect_txn(&address).await;
    assert_eq!(txn.title().await.unwrap(), "deploy");
    let mut stream = signals(&txn).await;
    assert!(txn.start().await.unwrap());
    let sigs = until_finished(&mut stream, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert_eq!(
        env.fx.sysroot().unwrap().deployments().unwrap()[0].checksum,
        v2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_update_trigger_check_mode() {
    let env = Env::new(FixtureConfig::default()).await;
    env.fx.commit(&OsRelease::new("2")).unwrap();
    let os = env.os().await;
    // Policy none (default) and mode auto: disabled.
    let (enabled, addr) = os.automatic_update_trigger(&no_opts()).await.unwrap();
    assert!(!enabled);
    assert_eq!(addr, "");
    let opts = DeployOptions {
        mode: Some("check".into()),
        ..Default::default()
    };
    let (enabled, addr) = os.automatic_update_trigger(&opts).await.unwrap();
    assert!(enabled);
    let (_p, txn) = connect_txn(&addr).await;
    assert_eq!(txn.title().await.unwrap(), "upgrade (check only)");
    let mut stream = signals(&txn).await;
    assert!(txn.start().await.unwrap());
    let sigs = until_finished(&mut stream, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert_eq!(env.fx.sysroot().unwrap().deployments().unwrap().len(), 1);
}

/// Issue 9.4: `Cancel` of a transaction nobody started frees the slot at once.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_before_start_frees_the_slot() {
    let env = Env::new(FixtureConfig::default()).await;
    let os = env.os().await;
    let address = os.upgrade(&no_opts()).await.unwrap();
    let (_p, txn) = connect_txn(&address).await;
    txn.cancel().await.unwrap();
    // Another request is served, not refused as busy.
    let next = os.upgrade(&no_opts()).await.unwrap();
    assert_ne!(next, address);
    let (ok, msg) = finished(&run_txn(&next).await);
    assert!(ok, "{msg}");
}

/// Issue 9.4: a transaction whose caller stays on the bus but never starts it is dropped
/// after the start timeout.
#[tokio::test(flavor = "multi_thread")]
async fn an_unstarted_transaction_is_dropped_after_the_timeout() {
    let env = Env::with_args(
        FixtureConfig::default(),
        &["--transaction-start-timeout", "2"],
    )
    .await;
    let os = env.os().await;
    let sysroot = env.sysroot().await;
    os.upgrade(&no_opts()).await.unwrap();
    assert_ne!(sysroot.active_transaction_path().await.unwrap(), "");
    eventually(Duration::from_secs(15), "the slot to be free", || async {
        sysroot.active_transaction_path().await.unwrap().is_empty()
    })
    .await;
    let (ok, msg) = finished(&run_txn(&os.upgrade(&no_opts()).await.unwrap()).await);
    assert!(ok, "{msg}");
}

/// Issue 9.10: a transaction belongs to all who joined it: the initiator leaving before
/// `Start()` does not drop it while a joiner is still there.
#[tokio::test(flavor = "multi_thread")]
async fn a_joined_transaction_survives_its_initiator_leaving() {
    let env = Env::new(FixtureConfig::default()).await;
    let initiator = env.client().await;
    let address = os_proxy(&initiator)
        .await
        .upgrade(&no_opts())
        .await
        .unwrap();
    let joiner = env.os().await;
    assert_eq!(joiner.upgrade(&no_opts()).await.unwrap(), address);
    drop(initiator);
    // Give the daemon time to notice the initiator has gone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ok, msg) = finished(&run_txn(&address).await);
    assert!(ok, "{msg}");
}

/// An image-based host over D-Bus, as Cockpit and GNOME Software drive it: `UpdateDeployment`
/// with `set-refspec` an image reference (per-layer `PercentProgress`), then
/// `AutomaticUpdateTrigger(check)` once the tag moved (the `CachedUpdate` property carries the
/// manifest diff and the new version), then `Upgrade`.
#[tokio::test(flavor = "multi_thread")]
async fn image_rebase_check_and_upgrade_over_the_bus() {
    let env = Env::new(FixtureConfig::default()).await;
    let registry = strata_tests::oci::Registry::start().unwrap();
    let oci = env.fx.dir().join("oci");
    let push = |v: &str| {
        let rev = env.fx.commit(&OsRelease::new(v)).unwrap();
        let digest = strata_tests::oci::encapsulate(env.fx.repo().path(), &rev, &oci, v).unwrap();
        registry.push(&oci, v, "os:stable").unwrap();
        digest
    };
    push("2");
    let imgref = format!("ostree-unverified-registry:{}/os:stable", registry.host());
    let os = env.os().await;
    let modifiers = Modifiers {
        set_refspec: Some(imgref.clone()),
        ..Default::default()
    };
    let sigs = run_txn(&os.update_deployment(&modifiers, &no_opts()).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    assert!(
        sigs.iter()
            .any(|s| matches!(s, Signal::Percent(t, 100) if t.contains("Fetching layer"))),
        "{sigs:?}"
    );
    let origin = env.fx.sysroot().unwrap().deployments().unwrap()[0]
        .origin
        .clone()
        .unwrap();
    assert!(
        origin.contains(&format!("container-image-reference={imgref}")),
        "{origin}"
    );

    let d3 = push("3");
    let check = DeployOptions {
        mode: Some("check".into()),
        ..Default::default()
    };
    let (_, address) = os.automatic_update_trigger(&check).await.unwrap();
    let sigs = run_txn(&address).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let cached = os.cached_update().await.unwrap();
    assert_eq!(dict_str(&cached, "origin"), imgref);
    assert_eq!(dict_str(&cached, "version"), "3");
    let diff: HashMap<String, zbus::zvariant::OwnedValue> = cached["manifest-diff"]
        .try_clone()
        .unwrap()
        .try_into()
        .unwrap();
    let n_added: u64 = diff["n-added"].try_clone().unwrap().try_into().unwrap();
    assert!(n_added > 0, "{diff:?}");

    let sigs = run_txn(&os.upgrade(&no_opts()).await.unwrap()).await;
    assert_eq!(finished(&sigs), (true, String::new()), "{sigs:?}");
    let report = strata_core::status::load(
        &strata_core::Sysroot::open(env.fx.sysroot().unwrap().path()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report.deployments[0].extra["container-image-reference-digest"],
        d3.as_str()
    );
    assert!(
        os.cached_update().await.unwrap().is_empty(),
        "the update is deployed"
    );
}
