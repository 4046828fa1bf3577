//! The real `strata` binary against a scripted stand-in for stratad on a private
//! `dbus-daemon`: bus connection, registration, status, a transaction over a peer socket,
//! exit codes and the busy error. (The tests against the real daemon live in `tests/`.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use strata_api::names;
use strata_api::transaction::{TransactionBackend, TransactionServer};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Str};

type Dict = HashMap<String, OwnedValue>;

#[derive(Default)]
struct State {
    deployments: Vec<Dict>,
    registered: Vec<String>,
    deploy_calls: Vec<(String, Vec<String>)>,
    busy: bool,
    /// Whether the next transaction makes a new deployment.
    change: bool,
    /// Whether the next transaction fails.
    fail: Option<String>,
}

type Shared = Arc<Mutex<State>>;

fn deployment(id: &str, booted: bool) -> Dict {
    let mut d = Dict::new();
    let s = |v: &str| OwnedValue::from(Str::from(v.to_string()));
    d.insert("id".into(), s(id));
    d.insert("osname".into(), s("testos"));
    d.insert("checksum".into(), s(&format!("{id}-csum")));
    d.insert("origin".into(), s("local:testos/stable"));
    d.insert("version".into(), s("1.0"));
    d.insert("timestamp".into(), OwnedValue::from(1_717_543_275u64));
    d.insert("booted".into(), OwnedValue::from(booted));
    d.insert("staged".into(), OwnedValue::from(false));
    d.insert("pinned".into(), OwnedValue::from(false));
    d.insert("unlocked".into(), s("none"));
    d
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark")]
enum GioError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Code26(String),
}

struct Sysroot(Shared);

#[zbus::interface(name = "org.projectatomic.rpmostree1.Sysroot")]
impl Sysroot {
    fn register_client(&self, options: HashMap<String, OwnedValue>) {
        let id = options
            .get("id")
            .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
            .unwrap_or_default();
        self.0.lock().unwrap().registered.push(id);
    }
    fn reload(&self) {}
    fn reload_config(&self) {}
    #[zbus(name = "GetOS")]
    fn get_os(&self, _name: &str) -> OwnedObjectPath {
        OwnedObjectPath::try_from(names::os_object_path("testos")).unwrap()
    }
    #[zbus(property)]
    fn booted(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(names::os_object_path("testos")).unwrap()
    }
    #[zbus(property)]
    fn active_transaction(&self) -> (String, String, String) {
        if self.0.lock().unwrap().busy {
            (
                "Upgrade".into(),
                ":1.7".into(),
                names::os_object_path("testos"),
            )
        } else {
            Default::default()
        }
    }
    #[zbus(property)]
    fn active_transaction_path(&self) -> String {
        String::new()
    }
    #[zbus(property)]
    fn automatic_update_policy(&self) -> String {
        "none".into()
    }
    #[zbus(property)]
    fn deployments(&self) -> Vec<Dict> {
        self.0
            .lock()
            .unwrap()
            .deployments
            .iter()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| (k.clone(), v.try_clone().unwrap()))
                    .collect()
            })
            .collect()
    }
}

struct Os {
    state: Shared,
    dir: PathBuf,
}

#[zbus::interface(name = "org.projectatomic.rpmostree1.OS")]
impl Os {
    async fn deploy(
        &self,
        revision: String,
        options: HashMap<String, OwnedValue>,
    ) -> Result<String, GioError> {
        {
            let mut st = self.state.lock().unwrap();
            if st.busy {
                return Err(GioError::Code26(
                    "Transaction in progress: upgrade\n You can cancel the current transaction with `rpm-ostree cancel`".into(),
                ));
            }
            let mut keys: Vec<String> = options.keys().cloned().collect();
            keys.sort();
            st.deploy_calls.push((revision, keys));
        }
        let sock = self.dir.join(format!("txn-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let state = self.state.clone();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let conn = zbus::connection::Builder::unix_stream(stream)
                .server(zbus::Guid::generate())
                .unwrap()
                .p2p()
                .serve_at("/", TransactionServer(Txn(state)))
                .unwrap()
                .build()
                .await
                .unwrap();
            // Keep the connection until the client goes away.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(conn);
        });
        Ok(format!("unix:path={}", sock.display()))
    }
}

struct Txn(Shared);

type Signals = TransactionServer<Txn>;

impl TransactionBackend for Txn {
    fn title(&self) -> zbus::fdo::Result<String> {
        Ok("deploy".into())
    }
    fn initiating_client_description(&self) -> zbus::fdo::Result<String> {
        Ok(String::new())
    }
    async fn start(&self, em: SignalEmitter<'static>) -> zbus::fdo::Result<bool> {
        let state = self.0.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let _ = Signals::task_begin(&em, "Staging deployment").await;
            let _ = Signals::task_end(&em, "done").await;
            let _ = Signals::message(&em, "Transaction complete").await;
            let (ok, msg) = {
                let mut st = state.lock().unwrap();
                match st.fail.take() {
                    Some(m) => (false, m),
                    None => {
                        if st.change {
                            let n = st.deployments.len();
                            st.deployments
                                .insert(0, deployment(&format!("testos-new.{n}"), false));
                        }
                        (true, String::new())
                    }
                }
            };
            let _ = Signals::finished(&em, ok, &msg).await;
        });
        Ok(true)
    }
    async fn cancel(&self, _em: SignalEmitter<'static>) -> zbus::fdo::Result<()> {
        Ok(())
    }
}

struct Bus {
    child: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
    state: Shared,
    _conn: zbus::Connection,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_bus() -> Option<Bus> {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bus");
    let address = format!("unix:path={}", sock.display());
    let child = std::process::Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address={address}"))
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if Path::new(&sock).exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let state: Shared = Arc::new(Mutex::new(State {
        deployments: vec![deployment("testos-booted.0", true)],
        ..Default::default()
    }));
    let conn = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name(names::BUS_NAME)
        .unwrap()
        .serve_at(names::BASE_PATH, zbus::fdo::ObjectManager)
        .unwrap()
        .serve_at(names::SYSROOT_PATH, Sysroot(state.clone()))
        .unwrap()
        .serve_at(
            names::os_object_path("testos"),
            Os {
                state: state.clone(),
                dir: dir.path().to_path_buf(),
            },
        )
        .unwrap()
        .build()
        .await
        .unwrap();
    Some(Bus {
        child,
        address,
        _dir: dir,
        state,
        _conn: conn,
    })
}

async fn strata(bus: &Bus, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env("RPMOSTREE_CLIENT_ID", "fake-test")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

macro_rules! bus_or_skip {
    () => {
        match start_bus().await {
            Some(b) => b,
            None => {
                eprintln!("dbus-daemon not available; skipping");
                return;
            }
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn status_text_and_json() {
    let bus = bus_or_skip!();
    let (code, out, err) = strata(&bus, &["status"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("State: idle\nDeployments:\n● local:testos/stable\n"),
        "{out}"
    );
    assert!(
        out.contains("                  Version: 1.0 (2024-06-04T23:21:15Z)\n"),
        "{out}"
    );
    assert_eq!(bus.state.lock().unwrap().registered, ["fake-test"]);

    let (code, out, _) = strata(&bus, &["status", "--json"]).await;
    assert_eq!(code, 0);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["deployments"][0]["id"], "testos-booted.0");
    assert_eq!(j["transaction"], serde_json::Value::Null);

    let (code, out, _) = strata(&bus, &["status", "--jsonpath", "$.deployments[0].booted"]).await;
    assert_eq!((code, out.as_str()), (0, "[\n  true\n]\n"));
    let (code, _, _) = strata(&bus, &["status", "--pending-exit-77"]).await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_runs_a_transaction() {
    let bus = bus_or_skip!();
    bus.state.lock().unwrap().change = true;
    let (code, out, err) = strata(&bus, &["deploy", "revision=abc", "--lock-finalization"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Staging deployment... done\nTransaction complete\n"),
        "{out}"
    );
    assert!(
        !out.contains("systemctl reboot"),
        "locked: no reboot hint\n{out}"
    );
    {
        let st = bus.state.lock().unwrap();
        assert_eq!(st.deploy_calls[0].0, "revision=abc");
        assert_eq!(
            st.deploy_calls[0].1,
            [
                "allow-downgrade",
                "initiating-command-line",
                "lock-finalization"
            ]
        );
    }
    let (code, out, _) = strata(&bus, &["deploy", "def"]).await;
    assert_eq!(code, 0);
    assert!(
        out.ends_with("Run \"systemctl reboot\" to start a reboot\n"),
        "{out}"
    );

    // Now a pending deployment exists.
    let (code, _, _) = strata(&bus, &["status", "--pending-exit-77"]).await;
    assert_eq!(code, 77);

    bus.state.lock().unwrap().change = false;
    let (code, out, _) = strata(&bus, &["deploy", "def", "--unchanged-exit-77"]).await;
    assert_eq!(code, 77, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_and_busy() {
    let bus = bus_or_skip!();
    bus.state.lock().unwrap().fail = Some("Commit abc not found".into());
    let (code, _, err) = strata(&bus, &["deploy", "abc"]).await;
    assert_eq!(code, 1);
    assert_eq!(err, "error: Commit abc not found\n");

    bus.state.lock().unwrap().busy = true;
    let (code, _, err) = strata(&bus, &["deploy", "abc"]).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: Transaction in progress: Upgrade — run `strata cancel` to cancel it\n"
    );
    let (code, out, _) = strata(&bus, &["status"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("State: busy\nTransaction: Upgrade\n"),
        "{out}"
    );
    let (code, out, _) = strata(&bus, &["cancel"]).await;
    assert_eq!((code, out.as_str()), (0, "No active transaction.\n"));
}
