//! Authorization through a real `polkitd` on the private bus (no `--no-polkit`).
//!
//! polkitd (Debian's package `polkitd`) is started by the kit's [`Polkitd`]: as root, in its own
//! mount namespace with only Strata's `packaging/org.projectatomic.rpmostree1.policy` (and a test
//! rule) bind-mounted over its action and rules directories, pointed at the private bus through
//! `DBUS_SYSTEM_BUS_ADDRESS`; it switches to user `polkitd` itself. See [`Polkitd`] for why.
//!
//! The non-root caller is `gdbus call --address ...` run as uid/gid 65534 (`nobody`) through
//! `CommandExt::uid/gid` (std also drops root's supplementary groups): a client that is not
//! ours, on a connection the bus credits to uid 65534, which is what polkitd looks up. It has
//! no logind session, so polkit applies each action's `allow_any` default (`auth_admin`), and
//! with no authentication agent that is a denial — unless a rule says yes, which the test uses
//! to show the daemon follows polkitd's answer rather than refusing every non-root caller.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_tests::{Fixture, OsRelease, Polkitd, PrivateBus, Stratad, DEFAULT_OSNAME};

use crate::*;

const NOBODY: u32 = 65534;

/// Lets `nobody` reload the daemon config and nothing else.
const TEST_RULE: &str = r#"polkit.addRule(function(action, subject) {
    if (action.id == "org.projectatomic.rpmostree1.reload-daemon" && subject.user == "nobody") {
        return polkit.Result.YES;
    }
});
"#;

fn policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/org.projectatomic.rpmostree1.policy")
}

/// `gdbus call` on the private bus as uid/gid 65534.
async fn gdbus_as_nobody(bus: &PrivateBus, object: &str, method: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("gdbus");
    cmd.args(["call", "--address", bus.address()])
        .args(["--dest", names::BUS_NAME, "--object-path", object])
        .args(["--method", method])
        .args(args)
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY);
    let line = strata_tests::cmd::command_line(&cmd);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{line}: {e} (apt-get install libglib2.0-bin)"))
}

/// The real `strata` binary on the private bus (as its system bus) as uid/gid 65534. The
/// binary is copied to a world-readable directory first: the build tree may sit below a
/// directory nobody cannot enter.
async fn strata_as_nobody(bus: &PrivateBus, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let strata = dir.path().join("strata");
    std::fs::copy(Stratad::binary().unwrap().with_file_name("strata"), &strata).unwrap();
    std::fs::set_permissions(&strata, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(&strata);
    cmd.args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY);
    let line = strata_tests::cmd::command_line(&cmd);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    drop(dir);
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A call that must fail with NotAuthorized naming `action`: polkitd's "no", not a failed check
/// (which the daemon reports as "Authorization check for ... failed").
fn assert_denied(out: &Output, action: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should be denied: {}", text(out));
    assert!(
        stderr.contains(&format!(
            "GDBus.Error:{}: Not authorized to perform {action}",
            names::ERROR_NOT_AUTHORIZED
        )),
        "expected NotAuthorized for {action}: {}",
        text(out)
    );
}

fn assert_ok(out: &Output) -> String {
    assert!(out.status.success(), "should succeed: {}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_polkitd_denies_non_root_mutations_and_allows_reads() {
    let fx = Fixture::new(&FixtureConfig::default()).unwrap();
    let v1 = fx.first_commit().to_string();
    let v2 = fx.commit(&OsRelease::new("2")).unwrap();
    let sysroot = fx.sysroot().unwrap();
    let bus = PrivateBus::start_shared().unwrap();
    let polkitd = Polkitd::start(&bus, &[&policy()], &[("50-strata-test.rules", TEST_RULE)])
        .await
        .unwrap();
    let daemon = Stratad::start_with_polkit(&bus, sysroot.path(), &[])
        .await
        .unwrap();
    let diag = || {
        format!(
            "stratad:\n{}\npolkitd:\n{}",
            daemon.stderr(),
            polkitd.log_text()
        )
    };
    let os_path = names::os_object_path(DEFAULT_OSNAME).to_string();
    let before = sysroot.snapshot().unwrap();

    // Mutations as nobody: polkitd says no, and nothing happens.
    let out = gdbus_as_nobody(
        &bus,
        &os_path,
        "org.projectatomic.rpmostree1.OS.Upgrade",
        &["{}"],
    )
    .await;
    assert_denied(&out, names::action::UPGRADE);
    let out = gdbus_as_nobody(
        &bus,
        &os_path,
        "org.projectatomic.rpmostree1.OS.Deploy",
        &[&v2, "{'reboot': <false>}"],
    )
    .await;
    assert_denied(&out, names::action::DEPLOY);
    let conn = bus.connect().await.unwrap();
    let root_sysroot = sysroot_proxy(&conn).await;
    assert_eq!(
        root_sysroot.active_transaction_path().await.unwrap(),
        "",
        "a denied call starts no transaction"
    );
    assert_eq!(
        sysroot.snapshot().unwrap(),
        before,
        "denied calls changed the sysroot"
    );

    // polkitd's yes is honoured too (the test rule grants nobody reload-daemon).
    let out = gdbus_as_nobody(
        &bus,
        names::SYSROOT_PATH,
        "org.projectatomic.rpmostree1.Sysroot.ReloadConfig",
        &[],
    )
    .await;
    assert_ok(&out);

    // Read-only calls need no authorization.
    let out = gdbus_as_nobody(
        &bus,
        names::SYSROOT_PATH,
        "org.freedesktop.DBus.Properties.Get",
        &[names::SYSROOT_INTERFACE, "Deployments"],
    )
    .await;
    let deployments = assert_ok(&out);
    assert!(deployments.contains(&v1), "{deployments}");
    let out = gdbus_as_nobody(
        &bus,
        names::SYSROOT_PATH,
        "org.projectatomic.rpmostree1.Sysroot.GetOS",
        &[DEFAULT_OSNAME],
    )
    .await;
    let os = assert_ok(&out);
    assert!(os.contains(&format!("'{os_path}'")), "{os}");
    let root_os = os_proxy(&conn).await;
    let deployments_now = root_sysroot.deployments().await.unwrap();
    let id = dict_str(&deployments_now[0], "id");
    let out = gdbus_as_nobody(
        &bus,
        &os_path,
        "org.projectatomic.rpmostree1.OS.GetDeploymentBootConfig",
        &[&id, "false"],
    )
    .await;
    let bootconfig = assert_ok(&out);
    assert!(bootconfig.contains("'options'"), "{bootconfig}");
    assert_eq!(sysroot.snapshot().unwrap(), before);

    // The `strata` CLI as nobody: status works (property reads only), upgrade is refused by
    // polkitd with the action named and exit 1.
    let out = strata_as_nobody(&bus, &["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["deployments"][0]["id"], id.as_str(), "{}", text(&out));
    let out = strata_as_nobody(&bus, &["status"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Deployments:"),
        "{}",
        text(&out)
    );
    let out = strata_as_nobody(&bus, &["upgrade"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("org.projectatomic.rpmostree1.upgrade"),
        "{}",
        text(&out)
    );
    assert_eq!(sysroot.snapshot().unwrap(), before);

    // The same Upgrade as root is allowed (uid 0 needs no polkit) and works.
    let address = root_os
        .upgrade(&no_opts())
        .await
        .unwrap_or_else(|e| panic!("root Upgrade: {e}\n{}", diag()));
    let sigs = run_txn(&address).await;
    assert_eq!(
        finished(&sigs),
        (true, String::new()),
        "{sigs:?}\n{}",
        diag()
    );
    let on_disk = sysroot.deployments().unwrap();
    assert_eq!(on_disk[0].checksum, v2);
}

/// `gdbus call` to the bus driver itself as uid/gid 65534.
async fn bus_driver_call_as_nobody(bus: &PrivateBus, method: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("gdbus");
    cmd.args(["call", "--address", bus.address()])
        .args([
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
        ])
        .args(["--method", method])
        .args(args)
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

/// The packaged D-Bus policy on a bus with the system bus's default policy (not allow-all):
/// an unprivileged user reads properties, introspects and runs `strata status`, but cannot
/// own stratad's name or set its properties.
#[tokio::test(flavor = "multi_thread")]
async fn packaged_bus_policy_for_an_unprivileged_user() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/org.projectatomic.rpmostree1.conf");
    let bus = PrivateBus::start_with_system_policy(&[&conf]).unwrap();
    let fx = Fixture::new(&FixtureConfig::default()).unwrap();
    // stratad runs as root, whom the packaged policy lets own the name.
    let _daemon = Stratad::start(&bus, fx.sysroot().unwrap().path(), &[])
        .await
        .unwrap();

    let out = gdbus_as_nobody(
        &bus,
        names::SYSROOT_PATH,
        "org.freedesktop.DBus.Properties.Get",
        &["org.projectatomic.rpmostree1.Sysroot", "Path"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = gdbus_as_nobody(
        &bus,
        names::SYSROOT_PATH,
        "org.freedesktop.DBus.Introspectable.Introspect",
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = strata_as_nobody(&bus, &["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // Reserved: setting properties, and owning the name.
    let out = gdbus_as_nobody(
        &bus,
        names::SYSROOT_PATH,
        "org.freedesktop.DBus.Properties.Set",
        &["org.projectatomic.rpmostree1.Sysroot", "Path", "<'/'>"],
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("AccessDenied"), "{}", text(&out));
    let out = bus_driver_call_as_nobody(
        &bus,
        "org.freedesktop.DBus.RequestName",
        &[names::BUS_NAME, "4"],
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("AccessDenied"), "{}", text(&out));
}
