//! The daemon's shared state: settings, configuration, the cached sysroot view and the
//! registered clients. It knows nothing of the D-Bus interfaces that serve it: changes reach the
//! bus as [`Publication`]s, which `publish` puts there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use tokio::sync::Notify;
use zbus::Connection;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::{self, Snapshot, Stamp};

/// How long a freshness check of the sysroot holds for property reads (see
/// [`Daemon::ensure_fresh`]).
const FRESH_FOR: Duration = Duration::from_millis(5);

/// Settings fixed at startup.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub sysroot: PathBuf,
    pub run_dir: PathBuf,
    pub config_path: PathBuf,
    pub no_polkit: bool,
    /// `--idle-exit-timeout`, overriding the config file.
    pub idle_exit_timeout: Option<u64>,
    /// How long a transaction may wait for `Start()` before it is dropped.
    pub start_timeout: std::time::Duration,
}

/// A client registered with `RegisterClient`.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: Option<String>,
    pub uid: Option<u32>,
}

/// Shared daemon state.
#[derive(Debug)]
pub(crate) struct Daemon {
    pub settings: Settings,
    pub conn: Connection,
    pub config: Mutex<Config>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The stamp the snapshot was loaded at; the lock also serialises reloads.
    stamp: tokio::sync::Mutex<Option<Stamp>>,
    /// When the stamp was last compared: property reads within [`FRESH_FOR`] of it trust it.
    checked: Mutex<Option<Instant>>,
    pub clients: Mutex<HashMap<String, Client>>,
    /// One package query (`ListRepos`, `GetPackages`, …) at a time: they are open to every
    /// caller and each loads repository metadata.
    pub repo_queries: tokio::sync::Semaphore,
    /// Notified when the daemon should exit.
    pub shutdown: Notify,
    /// Notified on activity that resets the idle timer (transactions, clients).
    pub activity: Notify,
    /// Why the last reload of the sysroot failed (`None` after a good one): the properties
    /// then show the last state read, and clients must be told.
    pub reload_error: Mutex<Option<String>>,
    /// Changes for the publisher to put on the bus, with a way to say it has.
    publish_tx: tokio::sync::mpsc::UnboundedSender<PublishRequest>,
}

/// A change of state that clients see on the bus.
#[derive(Debug)]
pub(crate) enum Publication {
    /// The sysroot was reloaded: OS objects and their deployment properties.
    Sysroot(Arc<Snapshot>, Arc<Snapshot>),
    /// `ActiveTransaction` / `ActiveTransactionPath` changed.
    ActiveTransaction,
    /// StrataExt's `UpdateDriver` changed.
    UpdateDriver,
    /// StrataExt's `LastReloadError` changed.
    ReloadError,
}

/// A publication and, when the sender waits for it, where to say it is done.
pub(crate) type PublishRequest = (Publication, Option<tokio::sync::oneshot::Sender<()>>);

/// The receiving end of the publications.
pub(crate) type PublishRx = tokio::sync::mpsc::UnboundedReceiver<PublishRequest>;

impl Daemon {
    /// Forget a registered client (it unregistered or left the bus) and wake the idle-exit
    /// watcher; returns whether it was registered.
    pub(crate) fn remove_client(&self, sender: &str) -> bool {
        let removed = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sender)
            .is_some();
        self.activity.notify_waiters();
        removed
    }

    pub(crate) fn new(settings: Settings, conn: Connection, config: Config) -> (Self, PublishRx) {
        let (publish_tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let d = Self {
            publish_tx,
            settings,
            conn,
            config: Mutex::new(config),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            stamp: tokio::sync::Mutex::new(None),
            checked: Mutex::new(None),
            clients: Mutex::new(HashMap::new()),
            repo_queries: tokio::sync::Semaphore::new(1),
            reload_error: Mutex::new(None),
            shutdown: Notify::new(),
            activity: Notify::new(),
        };
        (d, rx)
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reload the snapshot if the sysroot changed (or always with `force`). Returns the old and
    /// new snapshots when it was reloaded. Does not publish.
    pub(crate) async fn reload(
        &self,
        force: bool,
    ) -> anyhow::Result<Option<(Arc<Snapshot>, Arc<Snapshot>)>> {
        self.load(force, false).await
    }

    /// The first load, at start: leftovers of a crash removed, the snapshot loaded and
    /// published.
    pub(crate) async fn start(&self) -> anyhow::Result<()> {
        if let Some((old, new)) = self.load(true, true).await? {
            self.publish(Publication::Sysroot(old, new)).await;
        }
        Ok(())
    }

    async fn load(
        &self,
        force: bool,
        remove_leftovers: bool,
    ) -> anyhow::Result<Option<(Arc<Snapshot>, Arc<Snapshot>)>> {
        let mut guard = self.stamp.lock().await;
        let path = self.settings.sysroot.clone();
        let now = state::stamp(&path);
        *self.checked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if !force && guard.as_ref() == Some(&now) {
            return Ok(None);
        }
        let loaded = tokio::task::spawn_blocking(move || Snapshot::load(&path, remove_leftovers))
            .await
            .context("Loading the sysroot")
            .and_then(|r| r);
        self.note_reload(loaded.as_ref().err());
        let snap = loaded?;
        *guard = Some(now);
        let new = Arc::new(snap);
        let old = std::mem::replace(
            &mut *self.snapshot.write().unwrap_or_else(|e| e.into_inner()),
            new.clone(),
        );
        Ok(Some((old, new)))
    }

    /// Record the outcome of a reload and, when it changed, tell the bus (without waiting: a
    /// reload can run while a property is being served).
    fn note_reload(&self, err: Option<&anyhow::Error>) {
        let new = err.map(|e| format!("{e:#}"));
        let changed = {
            let mut cur = self.reload_error.lock().unwrap_or_else(|e| e.into_inner());
            let changed = *cur != new;
            *cur = new;
            changed
        };
        if changed {
            let _ = self.publish_tx.send((Publication::ReloadError, None));
        }
    }

    /// Reload if needed and publish the changes (object add/remove, PropertiesChanged).
    pub(crate) async fn refresh(&self, force: bool) -> anyhow::Result<()> {
        if let Some((old, new)) = self.reload(force).await? {
            self.publish(Publication::Sysroot(old, new)).await;
        }
        Ok(())
    }

    /// The cheap freshness check done before serving a property: reload when stale, and
    /// publish from a separate task (a property read must not wait on the object server).
    pub(crate) async fn ensure_fresh(&self) {
        // One GetAll or GetManagedObjects reads every property, each of which lands here: the
        // first one checks the stamp (a score of system calls), the others within FRESH_FOR
        // trust it. No client can change the sysroot and read it back within that time.
        let recent = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < FRESH_FOR);
        if recent {
            return;
        }
        match self.reload(false).await {
            Ok(Some((old, new))) => {
                let _ = self.publish_tx.send((Publication::Sysroot(old, new), None));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("Reloading the sysroot: {e:#}"),
        }
    }

    /// Ask the publisher to put `what` on the bus and wait until it has (so a client that
    /// reacts to a later signal reads the new state).
    pub(crate) async fn publish(&self, what: Publication) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.publish_tx.send((what, Some(done))).is_ok() {
            // An error means the publisher is gone (shutting down): nothing to wait for.
            let _ = wait.await;
        }
        self.activity.notify_waiters();
    }

    /// The Unix uid of a bus peer.
    pub(crate) async fn caller_uid(&self, sender: &str) -> Result<u32> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await?;
        let name = zbus::names::BusName::try_from(sender).map_err(Error::failed)?;
        Ok(dbus.get_connection_unix_user(name).await?)
    }

    /// The process id of a bus peer.
    pub(crate) async fn caller_pid(&self, sender: &str) -> Result<u32> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await?;
        let name = zbus::names::BusName::try_from(sender).map_err(Error::failed)?;
        Ok(dbus.get_connection_unix_process_id(name).await?)
    }

    /// Resolves when `name` has left the bus (at once if it already has).
    pub(crate) async fn wait_name_vanished(&self, name: &str) -> anyhow::Result<()> {
        let dbus = zbus::fdo::DBusProxy::new(&self.conn).await?;
        let mut changes = dbus
            .receive_name_owner_changed_with_args(&[(0, name)])
            .await?;
        let bus_name = zbus::names::BusName::try_from(name)?;
        if !dbus.name_has_owner(bus_name).await? {
            return Ok(());
        }
        while let Some(sig) = changes.next().await {
            if sig.args()?.new_owner().is_none() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The id a client registered with, if it registered one.
    pub(crate) fn client_id(&self, sender: &str) -> Option<String> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sender)
            .and_then(|c| c.id.clone())
    }

    /// Record the uid of a registered client, looked up after it registered.
    pub(crate) fn set_client_uid(&self, sender: &str, uid: u32) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get_mut(sender) {
            c.uid = Some(uid);
        }
    }

    /// `client(id:cli dbus::1.5 uid:0)`, as rpm-ostree describes an initiator.
    pub(crate) fn describe_client(&self, sender: &str, uid: Option<u32>) -> String {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = String::from("client(");
        let client = clients.get(sender);
        if let Some(id) = client.and_then(|c| c.id.as_deref()) {
            s.push_str(&format!("id:{id} "));
        }
        let uid = uid.or_else(|| client.and_then(|c| c.uid));
        s.push_str(&format!("dbus:{sender}"));
        if let Some(uid) = uid {
            s.push_str(&format!(" uid:{uid}"));
        }
        s.push(')');
        s
    }
}
