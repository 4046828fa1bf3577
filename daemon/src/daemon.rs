//! The daemon's shared state: settings, configuration, the cached sysroot view, the active
//! transaction and the registered clients.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use futures_util::StreamExt;
use strata_api::names;
use tokio::sync::Notify;
use zbus::Connection;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::os_iface::OsIface;
use crate::state::{self, Snapshot, Stamp};
use crate::sysroot_iface::SysrootIface;
use crate::transaction::Txn;

/// Settings fixed at startup.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub sysroot: PathBuf,
    pub run_dir: PathBuf,
    pub config_path: PathBuf,
    pub no_polkit: bool,
    /// `--idle-exit-timeout`, overriding the config file.
    pub idle_exit_timeout: Option<u64>,
}

/// A client registered with `RegisterClient`.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: Option<String>,
    pub uid: Option<u32>,
}

/// An update found by a check (`upgrade --check`, the automatic update timer in check mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedUpdate {
    pub osname: String,
    pub checksum: String,
    pub version: Option<String>,
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
    pub txn: Mutex<Option<Arc<Txn>>>,
    pub clients: Mutex<HashMap<String, Client>>,
    /// `CachedUpdate` per OS object path: what the last check found.
    pub cached_updates: Mutex<HashMap<String, CachedUpdate>>,
    next_txn: AtomicU64,
    /// Notified when the daemon should exit.
    pub shutdown: Notify,
    /// Notified on activity that resets the idle timer (transactions, clients).
    pub activity: Notify,
    /// Reloads done while serving a property, for [`Daemon::run_publisher`] to publish.
    publish_tx: tokio::sync::mpsc::UnboundedSender<(Arc<Snapshot>, Arc<Snapshot>)>,
}

/// The receiving end of the deferred publications.
pub(crate) type PublishRx = tokio::sync::mpsc::UnboundedReceiver<(Arc<Snapshot>, Arc<Snapshot>)>;

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
            txn: Mutex::new(None),
            clients: Mutex::new(HashMap::new()),
            cached_updates: Mutex::new(HashMap::new()),
            next_txn: AtomicU64::new(1),
            shutdown: Notify::new(),
            activity: Notify::new(),
        };
        (d, rx)
    }

    /// Publish the reloads queued by [`Daemon::ensure_fresh`].
    pub(crate) async fn run_publisher(self: Arc<Self>, mut rx: PublishRx) {
        while let Some((old, new)) = rx.recv().await {
            self.publish(&old, &new).await;
        }
    }

    pub(crate) fn next_txn_id(&self) -> u64 {
        self.next_txn.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn active_txn(&self) -> Option<Arc<Txn>> {
        self.txn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn config(&self) -> Config {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reload the snapshot if the sysroot changed (or always with `force`). Returns the old and
    /// new snapshots when it was reloaded. Does not publish.
    async fn reload(&self, force: bool) -> anyhow::Result<Option<(Arc<Snapshot>, Arc<Snapshot>)>> {
        let mut guard = self.stamp.lock().await;
        let path = self.settings.sysroot.clone();
        let now = state::stamp(&path);
        if !force && guard.as_ref() == Some(&now) {
            return Ok(None);
        }
        let snap = tokio::task::spawn_blocking(move || Snapshot::load(&path))
            .await
            .context("Loading the sysroot")??;
        *guard = Some(now);
        let new = Arc::new(snap);
        let old = std::mem::replace(
            &mut *self.snapshot.write().unwrap_or_else(|e| e.into_inner()),
            new.clone(),
        );
        Ok(Some((old, new)))
    }

    /// Reload if needed and publish the changes (object add/remove, PropertiesChanged).
    pub(crate) async fn refresh(self: &Arc<Self>, force: bool) -> anyhow::Result<()> {
        if let Some((old, new)) = self.reload(force).await? {
            self.publish(&old, &new).await;
        }
        Ok(())
    }

    /// The cheap freshness check done before serving a property: reload when stale, and
    /// publish from a separate task (a property read must not wait on the object server).
    pub(crate) async fn ensure_fresh(self: &Arc<Self>) {
        match self.reload(false).await {
            Ok(Some(pair)) => {
                let _ = self.publish_tx.send(pair);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("Reloading the sysroot: {e:#}"),
        }
    }

    /// Make the bus match `new`: OS objects and property change signals.
    async fn publish(self: &Arc<Self>, old: &Snapshot, new: &Snapshot) {
        if let Err(e) = self.publish_inner(old, new).await {
            tracing::warn!("Publishing sysroot changes: {e:#}");
        }
    }

    async fn publish_inner(self: &Arc<Self>, old: &Snapshot, new: &Snapshot) -> anyhow::Result<()> {
        let server = self.conn.object_server();
        for name in old.os.keys().filter(|n| !new.os.contains_key(*n)) {
            tracing::info!("Stateroot {name} is gone; removing its OS object");
            server
                .remove::<OsIface, _>(names::os_object_path(name))
                .await?;
        }
        for (name, st) in &new.os {
            let path = names::os_object_path(name);
            match old.os.get(name) {
                None => {
                    tracing::info!("Stateroot {name}: adding OS object {path}");
                    server
                        .at(path.clone(), OsIface::new(self.clone(), name.clone()))
                        .await?;
                }
                Some(prev) => {
                    let changed =
                        |a: Option<usize>, b: Option<usize>| old.deployment(a) != new.deployment(b);
                    let iface = server.interface::<_, OsIface>(path.as_str()).await?;
                    let em = iface.signal_emitter();
                    let i = iface.get().await;
                    if changed(prev.booted, st.booted) {
                        i.booted_deployment_changed(em).await?;
                    }
                    if changed(prev.default, st.default) {
                        i.default_deployment_changed(em).await?;
                    }
                    if changed(prev.rollback, st.rollback) {
                        i.rollback_deployment_changed(em).await?;
                    }
                }
            }
        }
        let iface = server
            .interface::<_, SysrootIface>(names::SYSROOT_PATH)
            .await?;
        let em = iface.signal_emitter();
        let i = iface.get().await;
        if old.deployments != new.deployments {
            i.deployments_changed(em).await?;
        }
        if old.booted_os != new.booted_os {
            i.booted_changed(em).await?;
        }
        Ok(())
    }

    /// Emit PropertiesChanged for `ActiveTransaction` and `ActiveTransactionPath`.
    pub(crate) async fn publish_txn(&self) {
        let r: anyhow::Result<()> = async {
            let iface = self
                .conn
                .object_server()
                .interface::<_, SysrootIface>(names::SYSROOT_PATH)
                .await?;
            let i = iface.get().await;
            i.active_transaction_changed(iface.signal_emitter()).await?;
            i.active_transaction_path_changed(iface.signal_emitter())
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!("Publishing the active transaction: {e:#}");
        }
        self.activity.notify_waiters();
    }

    /// Emit PropertiesChanged for an OS object's `CachedUpdate`.
    pub(crate) async fn publish_cached_update(&self, os_path: &str) {
        let r: anyhow::Result<()> = async {
            let iface = self
                .conn
                .object_server()
                .interface::<_, OsIface>(os_path)
                .await?;
            iface
                .get()
                .await
                .cached_update_changed(iface.signal_emitter())
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::debug!("Publishing CachedUpdate of {os_path}: {e:#}");
        }
    }

    /// Emit PropertiesChanged for StrataExt's `UpdateDriver`.
    pub(crate) async fn publish_driver(&self) {
        let r: anyhow::Result<()> = async {
            let iface = self
                .conn
                .object_server()
                .interface::<_, crate::sysroot_iface::StrataExtIface>(names::SYSROOT_PATH)
                .await?;
            iface
                .get()
                .await
                .update_driver_changed(iface.signal_emitter())
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!("Publishing the update driver: {e:#}");
        }
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
