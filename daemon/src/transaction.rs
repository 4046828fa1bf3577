//! Transactions: one mutating operation at a time, driven over a per-transaction peer-to-peer
//! socket that serves `org.projectatomic.rpmostree1.Transaction` at `/`.
//!
//! Lifecycle: a mutating method calls [`begin`], which joins an identical running request or
//! refuses with the busy error, creates the socket (mode 0600, owned by the caller, peers
//! checked by SO_PEERCRED) and publishes `ActiveTransaction`. `Start()` runs the core operation
//! on a blocking worker; its events become signals to every connected peer; `Finished` is
//! replayed to a late `Start()`. The slot is released once finished and every peer has gone,
//! when a new request arrives after it finished, 30 s after finishing, or at once if the
//! initiator leaves the bus before `Start()`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use ostree::gio;
use ostree::gio::prelude::*;
use strata_api::transaction::{TransactionBackend, TransactionServer};
use strata_core::{Event, OpContext, Sysroot};
use tokio::net::UnixListener;
use tokio::task::AbortHandle;
use zbus::object_server::SignalEmitter;
use zbus::Connection;

use crate::daemon::{Daemon, Publication};
use crate::error::{Error, Result};
use crate::options::{Op, Request};

/// The most peer connections one transaction serves at once.
const MAX_PEERS: usize = 32;

/// `Finished`'s message for a transaction cancelled before `Start()`.
const CANCELLED_UNSTARTED: &str = "Transaction cancelled before it was started";

/// How long finished transactions keep their slot while peers stay connected.
const FORCE_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a transaction is in its life: `Pending → Running → Finished`, and `Released` (from any
/// of them) once it gave up its slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Phase {
    /// Created; waiting for `Start()`.
    #[default]
    Pending,
    /// The operation is running.
    Running,
    /// The operation ended: `(success, error message)`.
    Finished(bool, String),
    /// The slot is free; the result, if the operation ended, is kept for late peers.
    Released(Option<(bool, String)>),
}

impl Phase {
    /// The operation's result, once it ended.
    fn result(&self) -> Option<(bool, String)> {
        match self {
            Phase::Finished(ok, msg) => Some((*ok, msg.clone())),
            Phase::Released(r) => r.clone(),
            Phase::Pending | Phase::Running => None,
        }
    }
}

#[derive(Debug, Default)]
struct TxnState {
    phase: Phase,
    peers: Vec<(u64, Connection)>,
    next_peer: u64,
}

/// The transaction slot: at most one transaction at a time.
#[derive(Debug)]
pub(crate) struct Transactions {
    slot: Mutex<Option<Arc<Txn>>>,
    next_id: AtomicU64,
}

impl Transactions {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(None),
            next_id: AtomicU64::new(1),
        })
    }

    /// The transaction holding the slot, if any.
    pub(crate) fn active(&self) -> Option<Arc<Txn>> {
        self.slot().clone()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Txn>>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One transaction.
#[derive(Debug)]
pub(crate) struct Txn {
    pub id: u64,
    /// The D-Bus method that created it, e.g. `Upgrade`.
    pub method: String,
    /// Canonical arguments, to recognise an identical request.
    key: String,
    pub title: String,
    pub sender: String,
    pub uid: u32,
    pub os_path: String,
    pub client_description: String,
    pub address: String,
    socket_path: PathBuf,
    cancellable: gio::Cancellable,
    reboot: bool,
    op: Mutex<Option<Op>>,
    state: Mutex<TxnState>,
    daemon: Weak<Daemon>,
    registry: Weak<Transactions>,
    /// Callers that joined this transaction with an identical request: it is theirs too.
    joiners: Mutex<Vec<String>>,
    /// Open peer connections, handshaking or served (at most [`MAX_PEERS`]).
    connections: AtomicUsize,
    tasks: Mutex<Vec<AbortHandle>>,
}

/// The identity of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub sender: String,
    pub uid: u32,
    pub os_path: String,
}

/// Start a transaction for `req` (or join the identical running one); returns its address.
pub(crate) async fn begin(
    d: &Arc<Daemon>,
    txns: &Arc<Transactions>,
    method: &str,
    key: String,
    caller: Caller,
    req: Request,
) -> Result<String> {
    // A transaction that has finished no longer holds the slot, even while its peers are still
    // connected: otherwise a client running two operations back to back races the daemon
    // noticing that the first client hung up, and gets the busy error. Its late peers lose the
    // `Finished` replay once it is released.
    let finished = {
        let mut slot = txns.slot();
        if slot.as_ref().is_some_and(|t| t.finished().is_some()) {
            slot.take()
        } else {
            None
        }
    };
    if let Some(prev) = finished {
        tracing::info!(
            "Transaction {} ({}) finished; releasing it for a new request",
            prev.id,
            prev.title
        );
        prev.release().await;
    }
    let txn = {
        let mut slot = txns.slot();
        if let Some(t) = slot.as_ref() {
            if t.method == method && t.key == key {
                t.joiners
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(caller.sender.clone());
                tracing::info!(
                    "Client {} joining existing transaction {} ({})",
                    caller.sender,
                    t.id,
                    t.title
                );
                return Ok(t.address.clone());
            }
            return Err(Error::Busy(format!(
                "Transaction in progress: {}\n You can cancel the current transaction with `strata cancel`",
                t.title
            )));
        }
        let id = txns.next_id.fetch_add(1, Ordering::Relaxed);
        let socket_path = d
            .settings
            .run_dir
            .join(format!("transaction-{}-{id}.sock", std::process::id()));
        let txn = Arc::new(Txn {
            id,
            method: method.to_string(),
            key,
            title: req.title.clone(),
            client_description: d.describe_client(&caller.sender, Some(caller.uid)),
            sender: caller.sender.clone(),
            uid: caller.uid,
            os_path: caller.os_path.clone(),
            address: format!("unix:path={}", socket_path.display()),
            socket_path,
            cancellable: gio::Cancellable::new(),
            reboot: req.reboot,
            op: Mutex::new(Some(req.op)),
            state: Mutex::new(TxnState::default()),
            daemon: Arc::downgrade(d),
            registry: Arc::downgrade(txns),
            joiners: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        *slot = Some(txn.clone());
        txn
    };
    if let Err(e) = txn.listen() {
        txn.release().await;
        return Err(Error::Failed(format!("{e:#}")));
    }
    tracing::info!(
        txn_id = txn.id,
        client_uid = txn.uid,
        "Transaction {} ({}) started by {} on {}; address {}",
        txn.method,
        txn.title,
        txn.client_description,
        txn.os_path,
        txn.address
    );
    txn.watch_initiator();
    txn.expire_unstarted(d.settings.start_timeout);
    d.publish(Publication::ActiveTransaction).await;
    Ok(txn.address.clone())
}

impl Txn {
    fn daemon(&self) -> Option<Arc<Daemon>> {
        self.daemon.upgrade()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TxnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_task(&self, h: AbortHandle) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(h);
    }

    /// Create the socket and accept peers.
    fn listen(self: &Arc<Self>) -> anyhow::Result<()> {
        use anyhow::Context;
        let dir = self
            .socket_path
            .parent()
            .unwrap_or(std::path::Path::new("/"));
        fs_err::create_dir_all(dir)?;
        match fs_err::remove_file(&self.socket_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("Removing {}", self.socket_path.display()))
            }
        }
        let listener = UnixListener::bind(&self.socket_path)
            .with_context(|| format!("Binding {}", self.socket_path.display()))?;
        fs_err::set_permissions(&self.socket_path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 0600 {}", self.socket_path.display()))?;
        std::os::unix::fs::chown(&self.socket_path, Some(self.uid), None)
            .with_context(|| format!("chown {} {}", self.uid, self.socket_path.display()))?;
        let txn = self.clone();
        let h = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        // A bounded number of peers: a client opening connection after
                        // connection must not exhaust the daemon's descriptors.
                        if txn.connections.fetch_add(1, Ordering::SeqCst) >= MAX_PEERS {
                            txn.connections.fetch_sub(1, Ordering::SeqCst);
                            tracing::warn!(
                                "Transaction {}: refusing a peer beyond {MAX_PEERS}",
                                txn.id
                            );
                            drop(stream);
                            continue;
                        }
                        let txn = txn.clone();
                        tokio::spawn(async move {
                            txn.clone().serve_peer(stream).await;
                            txn.connections.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(e) => {
                        tracing::warn!("Accepting on the transaction socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        self.add_task(h.abort_handle());
        Ok(())
    }

    async fn serve_peer(self: Arc<Self>, stream: tokio::net::UnixStream) {
        let uid = match stream.peer_cred() {
            Ok(c) => c.uid(),
            Err(e) => {
                tracing::warn!("Reading the peer credentials of a transaction client: {e}");
                return;
            }
        };
        if uid != self.uid && uid != 0 {
            tracing::warn!(
                "Refusing transaction peer with uid {uid} (initiator uid {})",
                self.uid
            );
            return;
        }
        let built = async {
            zbus::connection::Builder::socket(crate::peer_socket::PeerStream(stream))
                .server(zbus::Guid::generate())?
                .p2p()
                .serve_at(
                    "/",
                    TransactionServer(Peer {
                        txn: Arc::downgrade(&self),
                    }),
                )?
                .build()
                .await
        }
        .await;
        let conn = match built {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("Setting up a transaction peer connection: {e}");
                return;
            }
        };
        let registered = {
            let mut st = self.state();
            if let Phase::Released(result) = &st.phase {
                Err(result.clone())
            } else {
                st.next_peer += 1;
                let id = st.next_peer;
                st.peers.push((id, conn.clone()));
                Ok(id)
            }
        };
        let peer_id = match registered {
            Ok(id) => id,
            Err(finished) => {
                // A quick operation can start (this peer's Start() is served as soon as the
                // connection is built), finish and release before we get here: give this
                // peer its Finished, then let it hang up.
                if let Some((success, msg)) = finished {
                    self.replay_to_late_peer(&conn, success, &msg).await;
                }
                return;
            }
        };
        tracing::debug!(
            "Transaction {}: peer {peer_id} (uid {uid}) connected",
            self.id
        );
        // The stream ends when the peer closes its end.
        let mut messages = zbus::MessageStream::from(&conn);
        while let Some(m) = messages.next().await {
            if m.is_err() {
                break;
            }
        }
        drop(messages);
        tracing::debug!("Transaction {}: peer {peer_id} disconnected", self.id);
        let release = {
            let mut st = self.state();
            st.peers.retain(|(i, _)| *i != peer_id);
            matches!(st.phase, Phase::Finished(..)) && st.peers.is_empty()
        };
        if release {
            self.release().await;
        }
    }

    /// Send `Finished` to a peer that connected as the transaction was released, and keep
    /// the connection until the peer closes it (at most [`FORCE_CLOSE_TIMEOUT`]).
    async fn replay_to_late_peer(&self, conn: &Connection, success: bool, msg: &str) {
        let mut messages = zbus::MessageStream::from(conn);
        if let Ok(em) = SignalEmitter::new(conn, "/") {
            if let Err(e) = Signals::finished(&em, success, msg).await {
                tracing::debug!("Sending Finished to a late peer: {e}");
                return;
            }
        }
        let _ = tokio::time::timeout(FORCE_CLOSE_TIMEOUT, async {
            while let Some(m) = messages.next().await {
                if m.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Drop the transaction when its initiator, and every caller that joined it, have left the
    /// bus before `Start()`.
    fn watch_initiator(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let Some(d) = self.daemon() else { return };
        let mut watching = self.sender.clone();
        let h = tokio::spawn(async move {
            loop {
                if let Err(e) = d.wait_name_vanished(&watching).await {
                    tracing::warn!("Watching {watching}: {e:#}");
                    return;
                }
                let Some(txn) = weak.upgrade() else { return };
                if txn.state().phase != Phase::Pending {
                    return;
                }
                // Follow the next caller that joined; one that left already is passed at once.
                let next = txn.joiners.lock().unwrap_or_else(|e| e.into_inner()).pop();
                match next {
                    Some(n) => watching = n,
                    None => {
                        let why = format!("Client {watching} disconnected before calling Start");
                        txn.drop_unstarted(&why).await;
                        return;
                    }
                }
            }
        });
        self.add_task(h.abort_handle());
    }

    /// If `Start()` has not run, make sure it never will (checked and changed under the lock
    /// `Start()` takes): the transaction is finished, unsuccessfully, with `why`.
    fn finish_unstarted(&self, why: &str) -> bool {
        let mut st = self.state();
        if st.phase != Phase::Pending {
            return false;
        }
        st.phase = Phase::Finished(false, why.to_string());
        self.op.lock().unwrap_or_else(|e| e.into_inner()).take();
        true
    }

    /// Drop a transaction nobody started (its callers left, or the start timeout passed).
    async fn drop_unstarted(&self, why: &str) {
        if self.finish_unstarted(why) {
            tracing::info!("Transaction {} ({}) dropped: {why}", self.id, self.title);
            self.cancellable.cancel();
            self.release().await;
        }
    }

    /// Drop the transaction if nobody has started it after `timeout`, even while its caller
    /// stays on the bus: an abandoned request must not hold the slot forever.
    fn expire_unstarted(self: &Arc<Self>, timeout: Duration) {
        let weak = Arc::downgrade(self);
        let h = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(txn) = weak.upgrade() else { return };
            let why = format!("Not started within {} s", timeout.as_secs());
            txn.drop_unstarted(&why).await;
        });
        self.add_task(h.abort_handle());
    }

    /// `Start()`: true if this call started the operation.
    fn start(self: &Arc<Self>) -> bool {
        let op = {
            let mut st = self.state();
            if st.phase != Phase::Pending {
                return false;
            }
            st.phase = Phase::Running;
            self.op.lock().unwrap_or_else(|e| e.into_inner()).take()
        };
        let Some(op) = op else { return false };
        let Some(d) = self.daemon() else { return false };
        tracing::info!("Transaction {} ({}) starting", self.id, self.title);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let path = d.settings.sysroot.clone();
        let cancellable = self.cancellable.clone();
        let work = tokio::task::spawn_blocking(move || -> anyhow::Result<strata_core::Outcome> {
            let ctx = OpContext::new(
                move |e: &Event| {
                    let _ = tx.send(e.clone());
                    // After sending, so a test sees the step begin before the point fires.
                    crate::failpoints::on_event(e);
                },
                cancellable,
            );
            ctx.check_cancelled()?;
            crate::failpoints::lock();
            let sysroot = Sysroot::open(&path)?;
            op.run(&sysroot, &ctx)
        });
        let txn = self.clone();
        tokio::spawn(async move {
            // The channel closes when the worker drops its context.
            while let Some(e) = rx.recv().await {
                txn.broadcast(&e).await;
            }
            // Whether the sysroot may have changed beyond what its stamp shows (see `finish`).
            let mut changed = true;
            let result = match work.await {
                Ok(Ok(outcome)) => {
                    tracing::info!(
                        "Txn {} on {} successful: {outcome:?}",
                        txn.method,
                        txn.os_path
                    );
                    changed = !matches!(
                        outcome,
                        strata_core::Outcome::Unchanged
                            | strata_core::Outcome::UpdateAvailable { .. }
                    );
                    (true, String::new())
                }
                Ok(Err(e)) => {
                    let msg = if strata_core::is_cancelled(&e) {
                        "Operation was cancelled".to_string()
                    } else {
                        format!("{e:#}")
                    };
                    tracing::warn!("Txn {} on {} failed: {msg}", txn.method, txn.os_path);
                    (false, msg)
                }
                Err(e) => {
                    tracing::error!("Txn {} on {} crashed: {e}", txn.method, txn.os_path);
                    (false, format!("The transaction's worker failed: {e}"))
                }
            };
            txn.finish(&d, result, changed).await;
        });
        true
    }

    async fn finish(
        self: &Arc<Self>,
        d: &Arc<Daemon>,
        (success, msg): (bool, String),
        changed: bool,
    ) {
        // Properties first, so a client that reacts to Finished reads the new state. A
        // transaction that deployed nothing (a check, an upgrade with no update) changed at
        // most what the sysroot's stamp covers (the cached update file, fetched refs): reloaded
        // only if the stamp moved, which spares the empty transaction a whole sysroot load.
        if let Err(e) = d.refresh(changed).await {
            tracing::warn!("Reloading the sysroot after the transaction: {e:#}");
        }
        // What the work allocated (a pull's object lists, a checkout's caches, in libostree
        // and libcurl as much as here) is free now, but glibc would keep it: give it back, so
        // that stratad is as small after a transaction as before it.
        let _ = tokio::task::spawn_blocking(strata_glibc_malloc::trim).await;
        if self.method == "Deploy" {
            // It may have registered an update driver.
            d.publish(Publication::UpdateDriver).await;
        }
        let peers = self.announce_result(success, &msg).await;
        if success && self.reboot {
            tracing::info!("Rebooting as requested by the transaction");
            let argv = d
                .config
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reboot_command
                .clone();
            let line = argv.join(" ");
            match argv.split_first() {
                Some((prog, args)) => {
                    match tokio::process::Command::new(prog).args(args).status().await {
                        Ok(s) if s.success() => {}
                        Ok(s) => tracing::error!("`{line}` exited with {s}"),
                        Err(e) => tracing::error!("Running `{line}`: {e}"),
                    }
                }
                None => tracing::error!("No reboot command configured"),
            }
        }
        self.release_when_peers_leave(peers).await;
    }

    /// Record the result and send `Finished` to every connected peer; returns the peers.
    async fn announce_result(&self, success: bool, msg: &str) -> Vec<Connection> {
        let peers = {
            let mut st = self.state();
            st.phase = match &st.phase {
                // Released while running (the daemon is shutting down): keep the result.
                Phase::Released(_) => Phase::Released(Some((success, msg.to_string()))),
                _ => Phase::Finished(success, msg.to_string()),
            };
            st.peers.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>()
        };
        for c in &peers {
            if let Ok(em) = SignalEmitter::new(c, "/") {
                if let Err(e) = Signals::finished(&em, success, msg).await {
                    tracing::debug!("Sending Finished: {e}");
                }
            }
        }
        peers
    }

    /// A finished transaction gives up its slot when its last peer hangs up (serve_peer),
    /// at the next request (begin), or after [`FORCE_CLOSE_TIMEOUT`].
    async fn release_when_peers_leave(self: &Arc<Self>, peers: Vec<Connection>) {
        if peers.is_empty() {
            self.release().await;
        } else {
            let txn = Arc::downgrade(self);
            let h = tokio::spawn(async move {
                tokio::time::sleep(FORCE_CLOSE_TIMEOUT).await;
                if let Some(txn) = txn.upgrade() {
                    txn.release().await;
                }
            });
            // Released earlier (its peers left, or the next request came): no timer left to
            // wake an idle daemon.
            self.add_task(h.abort_handle());
        }
    }

    /// Send an engine event as a signal to every peer.
    async fn broadcast(&self, e: &Event) {
        let peers: Vec<Connection> = self.state().peers.iter().map(|(_, c)| c.clone()).collect();
        for c in &peers {
            let Ok(em) = SignalEmitter::new(c, "/") else {
                continue;
            };
            let r = match e {
                Event::Message(t) => Signals::message(&em, t).await,
                Event::TaskBegin(t) => Signals::task_begin(&em, t).await,
                Event::TaskEnd(t) => Signals::task_end(&em, t).await,
                Event::Percent { text, percent } => {
                    Signals::percent_progress(&em, text, *percent).await
                }
                Event::Download(p) => {
                    Signals::download_progress(
                        &em,
                        (p.start_time, p.elapsed_secs),
                        (p.outstanding_fetches, p.outstanding_writes),
                        (
                            p.scanned_metadata,
                            p.metadata_fetched,
                            p.outstanding_metadata_fetches,
                        ),
                        (
                            p.total_delta_parts,
                            p.fetched_delta_parts,
                            p.total_delta_superblocks,
                            p.total_delta_part_size,
                        ),
                        (p.fetched, p.requested),
                        (p.bytes_transferred, p.bytes_per_sec),
                    )
                    .await
                }
                Event::ProgressEnd => Signals::progress_end(&em).await,
            };
            if let Err(err) = r {
                tracing::debug!("Sending a transaction signal: {err}");
            }
        }
    }

    /// Free the slot: idempotent. Everything that must happen is done before the first
    /// `.await`: this can run on one of the transaction's own tasks, which it aborts (an
    /// aborted task stops at its next await point).
    pub(crate) async fn release(&self) {
        let peers = {
            let mut st = self.state();
            if matches!(st.phase, Phase::Released(_)) {
                return;
            }
            st.phase = Phase::Released(st.phase.result());
            std::mem::take(&mut st.peers)
        };
        let cleared = self.registry.upgrade().is_some_and(|txns| {
            let mut slot = txns.slot();
            let mine = slot.as_ref().is_some_and(|t| t.id == self.id);
            if mine {
                *slot = None;
            }
            mine
        });
        if let Err(e) = fs_err::remove_file(&self.socket_path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("Removing {}: {e}", self.socket_path.display());
            }
        }
        for h in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            h.abort();
        }
        if cleared {
            tracing::info!("Transaction {} ({}) released", self.id, self.title);
        }
        // The rest may wait: on a task of its own, so the abort above cannot cut it short.
        let d = self.daemon();
        let tail = tokio::spawn(async move {
            for (_, c) in peers {
                let _ = c.close().await;
            }
            if let (true, Some(d)) = (cleared, d) {
                d.publish(Publication::ActiveTransaction).await;
            }
        });
        let _ = tail.await;
    }

    /// `Cancel()`: stop the operation (cooperatively: the engine checks between and inside
    /// steps). A transaction that was never started has nothing to stop: it gives up its slot
    /// at once, so the next request is not refused as busy.
    pub(crate) async fn cancel(self: &Arc<Self>) {
        tracing::info!("Transaction {} ({}) cancelled", self.id, self.title);
        self.cancellable.cancel();
        if self.finish_unstarted(CANCELLED_UNSTARTED) {
            // Finished, like any other cancelled transaction: the next request is served (begin
            // releases a finished one) and peers get Finished before they hang up.
            let peers = self.announce_result(false, CANCELLED_UNSTARTED).await;
            self.release_when_peers_leave(peers).await;
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.state().phase == Phase::Running
    }

    fn finished(&self) -> Option<(bool, String)> {
        self.state().phase.result()
    }
}

/// The `Transaction` object on one peer connection: the api's interface over this
/// transaction.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) txn: Weak<Txn>,
}

/// Where the `Transaction` signals are declared (once, in the api crate).
type Signals = TransactionServer<Peer>;

impl Peer {
    fn txn(&self) -> zbus::fdo::Result<Arc<Txn>> {
        self.txn
            .upgrade()
            .ok_or_else(|| zbus::fdo::Error::Failed("The transaction is gone".into()))
    }
}

impl TransactionBackend for Peer {
    fn title(&self) -> zbus::fdo::Result<String> {
        Ok(self.txn()?.title.clone())
    }

    fn initiating_client_description(&self) -> zbus::fdo::Result<String> {
        Ok(self.txn()?.client_description.clone())
    }

    async fn start(&self, emitter: SignalEmitter<'static>) -> zbus::fdo::Result<bool> {
        let txn = self.txn()?;
        if txn.start() {
            return Ok(true);
        }
        if let Some((success, msg)) = txn.finished() {
            // A late Start(): replay the result to this peer.
            Signals::finished(&emitter, success, &msg).await?;
        }
        Ok(false)
    }

    async fn cancel(&self, _emitter: SignalEmitter<'static>) -> zbus::fdo::Result<()> {
        self.txn()?.cancel().await;
        Ok(())
    }
}
