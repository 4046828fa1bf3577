//! Putting the daemon's state on the bus: OS objects appear and go with their stateroots, and
//! property changes become PropertiesChanged signals. The only module that knows both the state
//! and the interfaces serving it; everything else asks for a [`Publication`] through
//! [`Daemon::publish`].

use std::sync::Arc;

use strata_api::names;

use crate::daemon::{Daemon, Publication, PublishRx};
use crate::os_iface::{OsExperimentalIface, OsIface};
use crate::state::Snapshot;
use crate::sysroot_iface::{StrataExtIface, SysrootIface};
use crate::transaction::Transactions;

/// Publish every request, in order, and say when each is done.
pub(crate) async fn run(d: Arc<Daemon>, txns: Arc<Transactions>, mut rx: PublishRx) {
    while let Some((what, done)) = rx.recv().await {
        if let Err(e) = publish(&d, &txns, &what).await {
            tracing::warn!("Publishing {what:?}: {e:#}");
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

async fn publish(
    d: &Arc<Daemon>,
    txns: &Arc<Transactions>,
    what: &Publication,
) -> anyhow::Result<()> {
    let server = d.conn.object_server();
    match what {
        Publication::Sysroot(old, new) => sysroot(d, txns, old, new).await,
        Publication::ActiveTransaction => {
            let iface = server
                .interface::<_, SysrootIface>(names::SYSROOT_PATH)
                .await?;
            let i = iface.get().await;
            i.active_transaction_changed(iface.signal_emitter()).await?;
            i.active_transaction_path_changed(iface.signal_emitter())
                .await?;
            Ok(())
        }
        Publication::ReloadError | Publication::UpdateDriver => {
            let iface = server
                .interface::<_, StrataExtIface>(names::SYSROOT_PATH)
                .await?;
            let (i, em) = (iface.get().await, iface.signal_emitter());
            if matches!(what, Publication::ReloadError) {
                i.last_reload_error_changed(em).await?;
            } else {
                i.update_driver_changed(em).await?;
            }
            Ok(())
        }
    }
}

/// Make the bus match `new`: OS objects and property change signals.
async fn sysroot(
    d: &Arc<Daemon>,
    txns: &Arc<Transactions>,
    old: &Snapshot,
    new: &Snapshot,
) -> anyhow::Result<()> {
    let server = d.conn.object_server();
    for name in old.os.keys().filter(|n| !new.os.contains_key(*n)) {
        tracing::info!("Stateroot {name} is gone; removing its OS object");
        let path = names::os_object_path(name);
        server.remove::<OsIface, _>(path.as_str()).await?;
        server
            .remove::<OsExperimentalIface, _>(path.as_str())
            .await?;
    }
    for (name, st) in &new.os {
        let path = names::os_object_path(name);
        match old.os.get(name) {
            None => {
                tracing::info!("Stateroot {name}: adding OS object {path}");
                crate::properties::serve_at(
                    server,
                    &path,
                    OsIface::new(d.clone(), txns.clone(), name.clone()),
                )
                .await?;
                crate::properties::serve_at(server, &path, OsExperimentalIface).await?;
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
                let (was, is) = (old.cached_updates.get(name), new.cached_updates.get(name));
                if was != is {
                    i.cached_update_changed(em).await?;
                    if was.is_some() != is.is_some() {
                        i.has_cached_update_rpm_diff_changed(em).await?;
                    }
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
