//! Startup checks, idle exit and signals.

use std::process::Command;
use std::time::Duration;

use strata_tests::{Fixture, FixtureConfig, PrivateBus, Stratad};

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

/// Issue 9.10: a run directory other users can write to is refused (they could plant
/// transaction sockets); one that is ours is used, and sockets a crashed stratad left are
/// removed at start.
#[tokio::test(flavor = "multi_thread")]
async fn run_dir_must_be_private_and_stale_sockets_are_cleared() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(FixtureConfig::default()).await;
    let path = env.fx.sysroot().unwrap().path().to_path_buf();
    let dir = tempfile::tempdir().unwrap();

    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(Stratad::binary().unwrap())
        .args(["--session", "--sysroot"])
        .arg(&path)
        .arg("--run-dir")
        .arg(&open)
        .env("DBUS_SESSION_BUS_ADDRESS", env.bus.address())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is writable by other users"), "{stderr}");

    // A socket of a stratad that no longer runs: pid 2^22 + 1 is above the kernel's largest
    // possible pid_max, so no process has it.
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let stale = private.join("transaction-4194305-1.sock");
    std::fs::write(&stale, "").unwrap();
    let bus = strata_tests::PrivateBus::start().unwrap();
    let run_dir = private.to_str().unwrap();
    let _daemon = Stratad::start(&bus, &path, &["--run-dir", run_dir])
        .await
        .unwrap();
    assert!(!stale.exists(), "the stale socket is still there");
}

/// Issue 9.5: stratad raises its soft limit on open files to the hard limit.
#[tokio::test(flavor = "multi_thread")]
async fn raises_its_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    // Each test is a process of its own (nextest): lower our soft limit for the child.
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = Some(256);
    setrlimit(Resource::Nofile, limit).unwrap();
    let env = Env::new(FixtureConfig::default()).await;
    let pid = env.daemon.pid().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "soft limit not raised: {line}");
    assert_ne!(fields[3], "256", "{line}");
}

/// Issue 10: stratad runs with `G_SLICE=always-malloc` even when whoever started it did not
/// set it (bus activation without systemd): it executes itself again with it set.
#[tokio::test(flavor = "multi_thread")]
async fn runs_with_glib_slices_from_malloc() {
    let fx = Fixture::new(&FixtureConfig::default()).unwrap();
    let bus = PrivateBus::start().unwrap();
    let daemon =
        Stratad::start_with_env(&bus, fx.sysroot().unwrap().path(), &[], &[("G_SLICE", "")])
            .await
            .unwrap();
    let pid = daemon.pid().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|kv| kv == b"G_SLICE=always-malloc"),
        "{}",
        String::from_utf8_lossy(&environ)
    );
    // The same process answers on the bus.
    let conn = bus.connect().await.unwrap();
    let sysroot = sysroot_proxy(&conn).await;
    assert!(!sysroot.deployments().await.unwrap().is_empty());
}

/// Issue 9.10: a deployment directory a crash left half-written (no deployment refers to it)
/// is removed when stratad starts, not at the next successful deploy.
#[tokio::test(flavor = "multi_thread")]
async fn a_half_written_deployment_directory_is_removed_at_start() {
    let env = Env::new(FixtureConfig::default()).await;
    let sysroot = env.fx.sysroot().unwrap();
    let orphan = sysroot
        .path()
        .join("ostree/deploy")
        .join(sysroot.osname())
        .join("deploy")
        .join(format!("{}.0", "ab".repeat(32)));
    std::fs::create_dir_all(orphan.join("usr/bin")).unwrap();
    std::fs::write(orphan.join("usr/bin/half"), "x").unwrap();
    let before = sysroot.deployments().unwrap();
    let bus = strata_tests::PrivateBus::start().unwrap();
    let _fresh = Stratad::start(&bus, sysroot.path(), &[]).await.unwrap();
    assert!(
        !orphan.exists(),
        "the half-written deployment is still there"
    );
    assert_eq!(before, sysroot.deployments().unwrap());
}
