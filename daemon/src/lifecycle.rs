//! Process lifecycle: sd_notify, logging, idle exit, signals.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// configured timeout plus jitter; refresh the sd_notify status every 10 s.
pub(crate) async fn idle_watch(d: Arc<Daemon>, txns: Arc<Transactions>) {
    let disabled = std::env::var_os("RPMOSTREE_DEBUG_DISABLE_DAEMON_IDLE_EXIT").is_some();
    let mut idle_since: Option<(Instant, Duration)> = None;
    let mut last_status = Instant::now() - Duration::from_secs(60);
    loop {
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
        if last_status.elapsed() >= Duration::from_secs(10) {
            sd_notify(&[sd_notify::NotifyState::Status(&status_line(
                &d, &txns, left,
            ))]);
            last_status = Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = d.activity.notified() => {}
        }
    }
}

/// Poll the sysroot every second so changes made by other tools (`ostree admin ...`) are
/// published as PropertiesChanged.
pub(crate) async fn poll_sysroot(d: Arc<Daemon>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
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
