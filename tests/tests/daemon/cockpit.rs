//! The D-Bus API driven the way Cockpit (`cockpit-ostree`) drives it, without Strata's code on
//! the client side: `tests/python/cockpit_client.py` (Debian's python3-dbus and python3-gi)
//! finds the OS object through `org.freedesktop.DBus.ObjectManager`, reads `Deployments`, calls
//! `Deploy(checksum, {reboot: false})`, connects peer-to-peer to the returned address, calls
//! `Start` and waits for `Finished`.

use std::path::PathBuf;
use std::process::Command;

use strata_tests::{FixtureConfig, OsRelease};

use crate::*;

const PYTHON: &str = "/usr/bin/python3";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/cockpit_client.py")
}

/// Fails (never skips) when the system Python lacks the D-Bus bindings the client needs.
fn require_python_dbus() {
    let out = Command::new(PYTHON)
        .args([
            "-c",
            "import dbus, dbus.connection, dbus.mainloop.glib; from gi.repository import GLib",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {PYTHON} ({e}): apt-get install python3 (make deps)")
        });
    assert!(
        out.status.success(),
        "{PYTHON} cannot import dbus / gi: apt-get install python3-dbus python3-gi \
         (the Makefile's deps target installs them):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strings(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cockpit_style_python_client_deploys() {
    require_python_dbus();
    let env = Env::new(FixtureConfig::default()).await;
    let v1 = env.fx.first_commit().to_string();
    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    assert_eq!(
        env.fx.sysroot().unwrap().deployments().unwrap()[0].checksum,
        v1
    );

    let address = env.bus.address().to_string();
    let checksum = v2.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(PYTHON)
            .arg(script())
            .arg(&address)
            .arg(&checksum)
            .output()
    })
    .await
    .unwrap()
    .expect("running the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cockpit_client.py failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nstratad:\n{}",
        out.status,
        env.daemon.stderr()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad JSON from the client ({e}):\n{stdout}\n{stderr}"));

    let os_path = names::os_object_path(strata_tests::DEFAULT_OSNAME);
    assert_eq!(
        strings(&summary, "os_paths"),
        vec![os_path.to_string()],
        "{summary}"
    );
    assert_eq!(summary["sysroot_exported"], true, "{summary}");
    assert_eq!(
        strings(&summary, "deployments_before"),
        vec![v1.clone()],
        "{summary}"
    );
    let txn = summary["transaction_address"].as_str().unwrap_or_default();
    assert!(txn.starts_with("unix:path="), "{summary}");
    assert_eq!(summary["started"], true, "{summary}");
    assert_eq!(summary["finished"]["success"], true, "{summary}");
    assert_eq!(summary["finished"]["error"], "", "{summary}");
    assert!(
        !strings(&summary, "messages").is_empty(),
        "no Message signal: {summary}"
    );
    let after = strings(&summary, "deployments_after");
    assert_eq!(after.first(), Some(&v2), "{summary}");
    assert!(
        after.contains(&v1),
        "the old deployment stays as rollback: {summary}"
    );

    let on_disk = env.fx.sysroot().unwrap().deployments().unwrap();
    let on_disk: Vec<&str> = on_disk.iter().map(|d| d.checksum.as_str()).collect();
    assert_eq!(on_disk, vec![v2.as_str(), v1.as_str()]);
}
