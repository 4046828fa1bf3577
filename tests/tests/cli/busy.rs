//! Concurrency: busy errors, joining, `cancel` and Ctrl-C, with a slow pull.

use std::time::Duration;

use crate::*;

/// A daemon with a big release 2 behind a slow HTTP server.
async fn slow_env(delay_ms: u64) -> Env {
    let env = Env::new(http()).await;
    env.fx.commit(&big_release("2")).unwrap();
    env.fx
        .http()
        .unwrap()
        .set_delay(Duration::from_millis(delay_ms));
    env
}

/// Start `strata upgrade` and return once its transaction exists and its pull has begun.
async fn upgrade_under_way(env: &Env) -> tokio::process::Child {
    let up = env.strata_cmd(&["upgrade"]).spawn().unwrap();
    env.wait_for_transaction().await;
    env.fx
        .http()
        .unwrap()
        .wait_for_requests(1, Duration::from_secs(30))
        .unwrap();
    up
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_rollback_is_refused_and_an_identical_upgrade_joins() {
    let env = slow_env(200).await;
    let first = env.strata_cmd(&["upgrade"]).spawn().unwrap();
    env.wait_for_transaction().await;

    let busy = env.strata(&["rollback"]).await.expect(1);
    assert!(busy.stderr.contains("Transaction in progress"), "{busy:#?}");
    assert!(busy.stderr.contains("upgrade"), "{busy:#?}");

    let second = env.strata_cmd(&["upgrade"]).spawn().unwrap();
    // Let the second one join, then let the pull finish quickly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.fx.http().unwrap().set_delay(Duration::ZERO);
    let (a, b) = tokio::join!(wait(first), wait(second));
    let a = a.expect(0);
    let b = b.expect(0);
    assert!(a.stdout.contains(NEXT_BOOT), "{a:#?}");
    // The second client followed the same transaction to its end.
    assert!(b.stdout.contains(NEXT_BOOT), "{b:#?}");
    assert!(
        env.daemon.stderr().contains("joining existing transaction"),
        "{}",
        env.daemon.stderr()
    );
    assert_eq!(env.sysroot().deployments().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_running_upgrade() {
    let env = slow_env(400).await;
    let before = env.sysroot().snapshot().unwrap();
    let up = upgrade_under_way(&env).await;
    let c = env.strata(&["cancel"]).await.expect(0);
    assert!(c.stdout.contains("Cancelled"), "{c:#?}");
    env.fx.http().unwrap().set_delay(Duration::ZERO);
    let up = wait(up).await.expect(1);
    assert!(up.stderr.contains("cancelled"), "{up:#?}");
    env.wait_idle().await;
    assert_eq!(before, env.sysroot().snapshot().unwrap());
    env.strata(&["status"]).await.expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_cancels_the_transaction() {
    let env = slow_env(400).await;
    let before = env.sysroot().snapshot().unwrap();
    // The pull has begun, so the client is following the transaction (and handles SIGINT).
    let up = upgrade_under_way(&env).await;
    let pid = up.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    env.fx.http().unwrap().set_delay(Duration::ZERO);
    let up = wait(up).await.expect(1);
    assert!(
        up.stdout.contains("Caught SIGINT, cancelling transaction"),
        "{up:#?}"
    );
    assert!(up.stderr.contains("cancelled"), "{up:#?}");
    env.wait_idle().await;
    assert_eq!(before, env.sysroot().snapshot().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_answers_100_times_while_a_transaction_runs() {
    // 1 s per object: the pull outlasts the 100 calls even on a loaded machine.
    let env = slow_env(1000).await;
    let up = env.strata_cmd(&["upgrade"]).spawn().unwrap();
    env.wait_for_transaction().await;
    for i in 0..100 {
        let json = env.status_json().await;
        // Every answer shows the running transaction and the unchanged deployment list.
        assert_eq!(json["transaction"][0], "Upgrade", "call {i}: {json:#}");
        assert_eq!(json["deployments"].as_array().unwrap().len(), 1, "call {i}");
    }
    // The text form says the daemon is busy.
    let text = env.strata(&["status"]).await.expect(0);
    assert!(text.stdout.contains("State: busy"), "{text:#?}");
    env.fx.http().unwrap().set_delay(Duration::ZERO);
    wait(up).await.expect(0);
}
