//! Startup checks, idle exit and signals.

use std::process::Command;
use std::time::Duration;

use strata_tests::{FixtureConfig, Stratad};

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn second_daemon_on_the_same_bus_fails_clearly() {
    let env = Env::new(FixtureConfig::default()).await;
    let path = env.fx.sysroot().unwrap().path().to_path_buf();
    let err = Stratad::start(&env.bus, &path, &[]).await;
    // The name is owned, so `start` returns at once; the second daemon must exit with an error.
    match err {
        Ok(mut second) => {
            let status = second.wait_exit(Duration::from_secs(20)).await.unwrap();
            assert!(!status.success());
            assert!(
                second.stderr().contains("already owned"),
                "{}",
                second.stderr()
            );
        }
        Err(e) => assert!(format!("{e:#}").contains("already owned"), "{e:#}"),
    }
}

#[test]
fn no_polkit_needs_a_private_bus() {
    let out = Command::new(Stratad::binary().unwrap())
        .args(["--no-polkit", "--sysroot", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-polkit"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_exit_and_sigterm() {
    let mut env = Env::with_args(FixtureConfig::default(), &["--idle-exit-timeout", "1"]).await;
    // A registered client keeps it alive.
    let client = env.client().await;
    let opts = strata_api::options::ClientOptions {
        id: Some("keepalive".into()),
    };
    sysroot_proxy(&client)
        .await
        .register_client(&opts)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        env.daemon.try_wait().unwrap().is_none(),
        "exited with a client registered"
    );
    // Once the client leaves, it exits by itself (1 s + up to 5 s jitter).
    client.close().await.unwrap();
    let status = env.daemon.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(status.success(), "{status}: {}", env.daemon.stderr());
    assert!(
        env.daemon.stderr().contains("idle"),
        "{}",
        env.daemon.stderr()
    );

    // SIGTERM: a clean shutdown.
    let path = env.fx.sysroot().unwrap().path().to_path_buf();
    let mut d = Stratad::start(&env.bus, &path, &[]).await.unwrap();
    d.signal("TERM").unwrap();
    let status = d.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert!(status.success(), "{status}: {}", d.stderr());
}
