//! `org.projectatomic.rpmostree1.Sysroot` at `/org/projectatomic/rpmostree1/Sysroot`.

use std::collections::HashMap;
use std::sync::Arc;

use strata_api::names;
use strata_api::wire::deployment_to_dict;
use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use crate::daemon::{Client, Daemon};
use crate::error::{Error, Result};
use crate::options::{self, Options};
use crate::polkit;
use crate::transaction::Transactions;

#[derive(Debug)]
pub(crate) struct SysrootIface {
    d: Arc<Daemon>,
    txns: Arc<Transactions>,
}

impl SysrootIface {
    pub(crate) fn new(d: Arc<Daemon>, txns: Arc<Transactions>) -> Self {
        Self { d, txns }
    }
}

pub(crate) fn sender(hdr: &Header<'_>) -> Result<String> {
    hdr.sender()
        .map(|s| s.to_string())
        .ok_or_else(|| Error::Failed("The call has no sender".into()))
}

fn object_path(p: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(p.to_string())
        .unwrap_or_else(|_| OwnedObjectPath::try_from("/").expect("valid path"))
}

#[zbus::interface(name = "org.projectatomic.rpmostree1.Sysroot")]
impl SysrootIface {
    async fn register_client(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<()> {
        let sender = sender(&hdr)?;
        let uid = polkit::authorize(&self.d, &sender, &[names::action::CLIENT_MANAGEMENT]).await?;
        let r: strata_api::options::ClientOptions =
            options::read(&options, "Option", "RegisterClient")?;
        let id = r.id;
        if let Some(id) = &id {
            options::plain_name("id", id)?;
        }
        // Without polkit the uid is looked up after the reply (it only describes the client
        // in logs and transaction titles): a call to the bus fewer on every CLI start.
        let new = {
            let mut clients = self.d.clients.lock().unwrap_or_else(|e| e.into_inner());
            let known = clients.get(&sender).and_then(|c| c.uid);
            clients
                .insert(
                    sender.clone(),
                    Client {
                        id: id.clone(),
                        uid: uid.or(known),
                    },
                )
                .is_none()
        };
        tracing::info!(
            "Client {sender} registered (id {})",
            id.as_deref().unwrap_or("none")
        );
        self.d.activity.notify_waiters();
        if new {
            let d = self.d.clone();
            tokio::spawn(async move {
                if uid.is_none() {
                    if let Ok(uid) = d.caller_uid(&sender).await {
                        d.set_client_uid(&sender, uid);
                    }
                }
                if let Err(e) = d.wait_name_vanished(&sender).await {
                    tracing::warn!("Watching client {sender}: {e:#}");
                }
                if d.remove_client(&sender) {
                    tracing::info!("Client {sender} vanished; unregistered");
                }
            });
        }
        Ok(())
    }

    async fn unregister_client(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<()> {
        let sender = sender(&hdr)?;
        polkit::authorize(&self.d, &sender, &[names::action::CLIENT_MANAGEMENT]).await?;
        // rpm-ostree ignores these options (GNOME Software sends its id anyway).
        let _: strata_api::options::ClientOptions =
            options::read(&options, "Option", "UnregisterClient")?;
        if self.d.remove_client(&sender) {
            tracing::info!("Client {sender} unregistered");
        }
        Ok(())
    }

    /// As rpm-ostree's: reload when the sysroot changed (its `ostree_sysroot_load_if_changed`),
    /// which the stamp tells for the price of a few `stat` calls. `strata status` calls this
    /// every time.
    async fn reload(&self) -> Result<()> {
        self.d
            .refresh(false)
            .await
            .map_err(|e| Error::from_anyhow(&e))
    }

    async fn reload_config(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] em: zbus::object_server::SignalEmitter<'_>,
    ) -> Result<()> {
        let sender = sender(&hdr)?;
        polkit::authorize(&self.d, &sender, &[names::action::RELOAD_DAEMON]).await?;
        let config = crate::config::Config::load(&self.d.settings.config_path)
            .map_err(|e| Error::from_anyhow(&e))?;
        let changed = {
            let mut c = self.d.config.lock().unwrap_or_else(|e| e.into_inner());
            let changed = c.automatic_update_policy != config.automatic_update_policy;
            *c = config;
            changed
        };
        if changed {
            self.automatic_update_policy_changed(&em).await?;
        }
        self.d
            .refresh(true)
            .await
            .map_err(|e| Error::from_anyhow(&e))
    }

    #[zbus(name = "GetOS")]
    async fn get_os(&self, name: &str) -> Result<OwnedObjectPath> {
        self.d.ensure_fresh().await;
        let snap = self.d.snapshot();
        let os = if name.is_empty() {
            snap.default_osname().map(str::to_string).ok_or_else(|| {
                Error::Failed(format!(
                    "The sysroot {} has no deployments, so there is no default OS",
                    self.d.settings.sysroot.display()
                ))
            })?
        } else if snap.os.contains_key(name) {
            name.to_string()
        } else {
            let known: Vec<&str> = snap.os.keys().map(String::as_str).collect();
            return Err(Error::Failed(format!(
                "OS \"{name}\" not found; the sysroot has: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        Ok(object_path(&names::os_object_path(&os)))
    }

    #[zbus(property)]
    async fn booted(&self) -> OwnedObjectPath {
        self.d.ensure_fresh().await;
        match &self.d.snapshot().booted_os {
            Some(os) => object_path(&names::os_object_path(os)),
            None => object_path("/"),
        }
    }

    #[zbus(property)]
    fn path(&self) -> String {
        self.d.settings.sysroot.display().to_string()
    }

    #[zbus(property)]
    fn active_transaction(&self) -> (String, String, String) {
        match self.txns.active() {
            Some(t) => (t.method.clone(), t.sender.clone(), t.os_path.clone()),
            None => Default::default(),
        }
    }

    #[zbus(property)]
    fn active_transaction_path(&self) -> String {
        self.txns
            .active()
            .map(|t| t.address.clone())
            .unwrap_or_default()
    }

    #[zbus(property)]
    fn automatic_update_policy(&self) -> String {
        self.d.config().automatic_update_policy.as_str().to_string()
    }

    #[zbus(property)]
    async fn deployments(&self) -> Vec<HashMap<String, OwnedValue>> {
        self.d.ensure_fresh().await;
        self.d
            .snapshot()
            .deployments
            .iter()
            .map(deployment_to_dict)
            .collect()
    }
}

/// `org.projectatomic.rpmostree1.StrataExt` on the Sysroot object: what Strata exposes beyond
/// rpm-ostree's interfaces, which stay exactly rpm-ostree's.
#[derive(Debug)]
pub(crate) struct StrataExtIface {
    d: Arc<Daemon>,
}

impl StrataExtIface {
    pub(crate) fn new(d: Arc<Daemon>) -> Self {
        Self { d }
    }
}

#[zbus::interface(name = "org.projectatomic.rpmostree1.StrataExt")]
impl StrataExtIface {
    /// Why stratad could not read the sysroot the last time it tried ("" when it could); the
    /// deployment properties then show the last state it read.
    #[zbus(property)]
    fn last_reload_error(&self) -> String {
        self.d
            .reload_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// The registered update driver (`driver-name`, `driver-sd-unit`); empty when none.
    #[zbus(property)]
    fn update_driver(&self) -> HashMap<String, String> {
        match crate::driver::load(&self.d.settings.run_dir) {
            Some(d) => HashMap::from([
                (names::DRIVER_NAME.to_string(), d.name),
                (names::DRIVER_SD_UNIT.to_string(), d.sd_unit),
            ]),
            None => HashMap::new(),
        }
    }
}
