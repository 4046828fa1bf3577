//! Process lifecycle: sd_notify, logging, idle exit, signals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::daemon::Daemon;
use crate::transaction::Transactions;

/// Tell systemd about our state (a no-op unless `$NOTIFY_SOCKET` is set).
pub(crate) fn sd_notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Log to the journal when stderr is connected to it (systemd sets `JOURNAL_STREAM`), to
/// stderr otherwise. `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(layer) => {
                let _ = registry
                    .with(layer.with_syslog_identifier("stratad".into()))
                    .try_init();
                return;
            }
            Err(e) => eprintln!("stratad: cannot log to the journal ({e}); using stderr"),
        }
    }
    // Colours only for a person at a terminal, never into a redirected log.
    use std::io::IsTerminal;
    let _ = registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
}

/// A pseudo-random jitter of 0–5 s (no need for a real RNG: it only spreads restarts).
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mix = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    Duration::from_millis(u64::from(mix % 5001))
}

fn status_line(d: &Daemon, txns: &Transactions, idle_in: Option<Duration>) -> String {
    let clients = d.clients.lock().unwrap_or_else(|e| e.into_inner()).len();
    match txns.active() {
        Some(t) => format!(
            "clients={clients}; txn={} caller={} path={}",
            t.method, t.sender, t.os_path
        ),
        None => match idle_in {
            Some(left) => format!("clients={clients}; idle exit in {} seconds", left.as_secs()),
            None => format!("clients={clients}; idle"),
        },
    }
}

/// Watch for idleness (no transaction, no registered client) and ask for shutdown after the
/// configured timeout plus jitter, keeping the sd_notify status current. Wakes up only on
/// activity and at the idle deadline: an idle daemon with idle exit off does not wake at all.
pub(crate) async fn idle_watch(d: Arc<Daemon>, txns: Arc<Transactions>) {
    let disabled = std::env::var_os("RPMOSTREE_DEBUG_DISABLE_DAEMON_IDLE_EXIT").is_some();
    let mut idle_since: Option<(Instant, Duration)> = None;
    let mut last_status = String::new();
    loop {
        // Listen before looking, so that activity while we look is not missed.
        let activity = d.activity.notified();
        tokio::pin!(activity);
        activity.as_mut().enable();
        let timeout = d
            .settings
            .idle_exit_timeout
            .unwrap_or_else(|| d.config().idle_exit_timeout);
        let idle = txns.active().is_none()
            && d.clients
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
        let mut left = None;
        if idle && timeout > 0 && !disabled {
            let (since, limit) = *idle_since.get_or_insert_with(|| {
                let limit = Duration::from_secs(timeout) + jitter();
                tracing::info!(
                    "In idle state; will auto-exit in {} seconds",
                    limit.as_secs()
                );
                (Instant::now(), limit)
            });
            let elapsed = since.elapsed();
            if elapsed >= limit {
                tracing::info!("Idle for {} seconds; exiting", elapsed.as_secs());
                d.shutdown.notify_one();
                return;
            }
            left = Some(limit - elapsed);
        } else {
            idle_since = None;
        }
        let status = status_line(&d, &txns, left);
        if status != last_status {
            sd_notify(&[sd_notify::NotifyState::Status(&status)]);
            last_status = status;
        }
        // Busy: look again now and then (a transaction's state changes without activity).
        let wait = match left {
            Some(left) => Some(left),
            None if idle => None,
            None => Some(Duration::from_secs(10)),
        };
        match wait {
            Some(wait) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = &mut activity => {}
                }
            }
            None => activity.await,
        }
    }
}

/// Publish changes to the sysroot made by other tools (`ostree admin ...`) as
/// PropertiesChanged: inotify on the directories the freshness stamp reads, so that an idle
/// stratad sleeps until something changes. Where inotify is not available (no instances left),
/// it checks the stamp every second instead.
pub(crate) async fn watch_sysroot(d: Arc<Daemon>) {
    if let Err(e) = watch_with_inotify(&d).await {
        tracing::warn!(
            "Watching the sysroot with inotify: {e:#}; checking it every second instead"
        );
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Err(e) = d.refresh(false).await {
                tracing::warn!("Reloading the sysroot: {e:#}");
            }
        }
    }
}

async fn watch_with_inotify(d: &Arc<Daemon>) -> anyhow::Result<()> {
    use futures_util::{FutureExt, StreamExt};
    use inotify::{EventMask, Inotify, WatchMask};
    // libostree replaces files and symlinks by rename and bumps directory times.
    let mask = WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::ONLYDIR;
    let mut events = Inotify::init()?.into_event_stream(vec![0u8; 4096])?;
    let mut watched: std::collections::HashMap<inotify::WatchDescriptor, std::path::PathBuf> =
        Default::default();
    loop {
        // New stateroots and ref directories appear over time: watch what the stamp reads now.
        let want = crate::state::watch_dirs(&crate::state::stamp(&d.settings.sysroot));
        for dir in want {
            if !watched.values().any(|w| *w == dir) {
                match events.watches().add(&dir, mask) {
                    Ok(wd) => {
                        watched.insert(wd, dir);
                    }
                    // Gone since the stamp was taken: the next round sees it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).context(format!("Watching {}", dir.display())),
                }
            }
        }
        let first = events
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("The inotify stream ended"))??;
        // A change is usually a burst of events (a deployment, a pull): let it settle.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut batch = vec![first];
        while let Some(Some(e)) = events.next().now_or_never() {
            batch.push(e?);
        }
        for e in &batch {
            // The directory is gone, and its watch with it.
            if e.mask.contains(EventMask::IGNORED) {
                watched.remove(&e.wd);
            }
        }
        if let Err(e) = d.refresh(false).await {
            tracing::warn!("Reloading the sysroot: {e:#}");
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn signals() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
