//! The connection to stratad: system bus, client registration, OS object lookup and the mapping
//! of daemon errors to advice.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use strata_api::names;
use strata_api::options::ClientOptions;
use strata_api::proxy::{OSProxy, SysrootProxy, TransactionProxy};
use strata_api::wire::DeploymentDict;
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedValue;

use zbus::Connection;

use crate::args::GlobalOpts;
use crate::errors;

/// Environment variable with which agents identify themselves (rpm-ostree's name).
pub(crate) const CLIENT_ID_ENV: &str = "RPMOSTREE_CLIENT_ID";

/// The id to register with: `$RPMOSTREE_CLIENT_ID` or `cli`.
pub(crate) fn client_id(env: Option<String>) -> String {
    env.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cli".to_string())
}

/// Reject what the client cannot do: `--sysroot` other than `/`, `--peer`.
pub(crate) fn check_global(global: &GlobalOpts) -> Result<()> {
    if let Some(s) = &global.sysroot {
        if s.as_os_str() != "/" {
            bail!(
                "--sysroot {}: the client only supports /; the daemon decides which sysroot it \
                 manages (start it with `stratad --sysroot DIR`)",
                s.display()
            );
        }
    }
    if global.peer {
        bail!("--peer is not supported: strata always talks to stratad over the system bus");
    }
    Ok(())
}

/// A connection to stratad on the system bus.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) conn: Connection,
    pub(crate) sysroot: SysrootProxy<'static>,
    /// `strata` or `rpm-ostree`, for advice like "run `strata cancel`".
    pub(crate) program: String,
}

impl Client {
    /// Connect to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured) and register as a
    /// client, which also activates the daemon.
    pub(crate) async fn connect(program: &str) -> Result<Self> {
        // Every call answers at once (transactions report through their own socket): one that
        // does not within METHOD_TIMEOUT fails instead of hanging the command.
        let conn = zbus::connection::Builder::system()
            .map_err(|e| anyhow!(errors::daemon_unreachable(&e.to_string())))?
            .method_timeout(METHOD_TIMEOUT)
            .build()
            .await
            .map_err(|e| anyhow!(errors::daemon_unreachable(&e.to_string())))?;
        let sysroot = SysrootProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .context("Creating the Sysroot proxy")?;
        let client = Self {
            conn,
            sysroot,
            program: program.to_string(),
        };
        client.register().await?;
        Ok(client)
    }

    async fn register(&self) -> Result<()> {
        let id = client_id(std::env::var(CLIENT_ID_ENV).ok());
        // A daemon caught while flushing for idle exit does not answer; try again a few times.
        for _ in 0..3 {
            let opts = ClientOptions {
                id: Some(id.clone()),
            };
            match self.sysroot.register_client(&opts).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if errors::dbus_error_name(&e).as_deref()
                        == Some("org.freedesktop.DBus.Error.NoReply") =>
                {
                    continue
                }
                Err(e) if errors::is_daemon_unreachable(&e) => {
                    bail!(errors::daemon_unreachable(&errors::dbus_error_text(&e)))
                }
                // Unprivileged callers may not register; that is fine for read-only verbs.
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// The OS object for `--stateroot NAME`, or the booted one.
    pub(crate) async fn os(&self, stateroot: Option<&str>) -> Result<OSProxy<'static>> {
        let path = match stateroot {
            Some(name) => self
                .sysroot
                .get_os(name)
                .await
                .map_err(|e| self.plain_error(e))
                .with_context(|| format!("Looking up stateroot {name:?}"))?,
            None => match self.sysroot.booted().await {
                Ok(p) if p.as_str() != "/" => p,
                _ => self
                    .sysroot
                    .get_os("")
                    .await
                    .map_err(|e| self.plain_error(e))
                    .context("Looking up the booted OS")?,
            },
        };
        OSProxy::builder(&self.conn)
            .path(path)?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .context("Creating the OS proxy")
    }

    /// Ask the daemon to reload the sysroot, so properties read afterwards are fresh.
    pub(crate) async fn sync(&self) {
        if let Err(e) = self.sysroot.reload().await {
            // Not fatal: the properties are at worst slightly stale.
            let _ = e;
        }
    }

    /// All deployments, in boot order.
    pub(crate) async fn deployments(&self) -> Result<Vec<DeploymentDict>> {
        self.sysroot
            .deployments()
            .await
            .map_err(|e| self.plain_error(e))
            .context("Reading the Deployments property")
    }

    /// The id of the default (next boot) deployment, after a reload.
    pub(crate) async fn default_deployment_id(&self) -> Result<Option<String>> {
        self.sync().await;
        Ok(default_id(&self.deployments().await?))
    }

    /// Every object the daemon serves, with all its properties, in one call.
    pub(crate) async fn managed_objects(&self) -> Result<ManagedObjects> {
        let om = zbus::fdo::ObjectManagerProxy::builder(&self.conn)
            .destination(names::BUS_NAME)?
            .path(names::BASE_PATH)?
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .context("Creating the ObjectManager proxy")?;
        om.get_managed_objects()
            .await
            .map_err(|e| self.plain_error(e.into()))
            .context("Reading the daemon's objects")
    }

    /// Whether the daemon's sysroot is the running system (its `Booted` property names an OS
    /// object; it is "/" on any other sysroot). Unknown counts as yes.
    pub(crate) async fn manages_booted_host(&self) -> bool {
        match self.sysroot.booted().await {
            Ok(path) => path.as_str() != "/",
            Err(_) => true,
        }
    }

    /// The title of the running transaction: the transaction's own `Title` when we may connect
    /// to it, else the method name from `ActiveTransaction`.
    pub(crate) async fn active_transaction_title(&self) -> Option<String> {
        if let Ok(addr) = self.sysroot.active_transaction_path().await {
            if !addr.is_empty() {
                if let Ok(title) = transaction_title(&addr).await {
                    if !title.is_empty() {
                        return Some(title);
                    }
                }
            }
        }
        match self.sysroot.active_transaction().await {
            Ok((method, _, _)) if !method.is_empty() => Some(method),
            _ => None,
        }
    }

    /// Turn the error of a transaction-starting call into advice: busy, unreachable, or the
    /// daemon's own message.
    pub(crate) async fn call_error(&self, err: zbus::Error) -> anyhow::Error {
        if errors::is_busy(&err) {
            let title = match self.active_transaction_title().await {
                Some(t) => t,
                None => errors::dbus_error_text(&err)
                    .trim_start_matches("Transaction in progress:")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            return anyhow!(errors::busy(&title, &self.program));
        }
        self.plain_error(err)
    }

    /// Errors of calls that do not start transactions.
    pub(crate) fn plain_error(&self, err: zbus::Error) -> anyhow::Error {
        if errors::is_daemon_unreachable(&err) {
            return anyhow!(errors::daemon_unreachable(&errors::dbus_error_text(&err)));
        }
        anyhow!(errors::dbus_error_text(&err))
    }
}

/// The `id` of the first deployment.
pub(crate) fn default_id(deployments: &[DeploymentDict]) -> Option<String> {
    deployments
        .first()
        .and_then(|d| d.get("id"))
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
}

/// Connect to a transaction's peer-to-peer address.
pub(crate) async fn connect_transaction(address: &str) -> Result<Connection> {
    connect_transaction_within(address, HANDSHAKE_TIMEOUT).await
}

/// How long a D-Bus call to stratad may take.
const METHOD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long the connection to a transaction socket (connect and D-Bus handshake) may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn connect_transaction_within(
    address: &str,
    timeout: std::time::Duration,
) -> Result<Connection> {
    let build = zbus::connection::Builder::address(address)
        .with_context(|| format!("Parsing transaction address {address:?}"))?
        .p2p()
        .build();
    match tokio::time::timeout(timeout, build).await {
        Ok(conn) => conn.with_context(|| format!("Connecting to the transaction at {address}")),
        Err(_) => bail!(
            "Timed out after {} s connecting to the transaction at {address}: stratad did not \
             answer the handshake (it may be out of file descriptors or stuck); see \
             `journalctl -u stratad`",
            timeout.as_secs_f32()
        ),
    }
}

/// The transaction object on a peer connection (properties never cached).
pub(crate) async fn txn_proxy(conn: &Connection) -> zbus::Result<TransactionProxy<'static>> {
    TransactionProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

async fn transaction_title(address: &str) -> Result<String> {
    let conn = connect_transaction(address).await?;
    Ok(txn_proxy(&conn).await?.title().await?)
}

/// The well-known name we watch for crashes.
pub(crate) const BUS_NAME: &str = names::BUS_NAME;

/// What `GetManagedObjects` returns: object path → interface → property → value.
pub(crate) type ManagedObjects = zbus::fdo::ManagedObjects;

/// One interface's properties out of [`ManagedObjects`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Properties<'a>(&'a HashMap<String, OwnedValue>);

impl<'a> Properties<'a> {
    /// The properties of `interface` at `path`, if the daemon serves it.
    pub(crate) fn of(objects: &'a ManagedObjects, path: &str, interface: &str) -> Option<Self> {
        objects
            .iter()
            .find(|(p, _)| p.as_str() == path)
            .and_then(|(_, ifaces)| ifaces.iter().find(|(i, _)| i.as_str() == interface))
            .map(|(_, props)| Properties(props))
    }

    /// Property `name` as a `T`; `None` when absent or of another type.
    pub(crate) fn get<T: TryFrom<OwnedValue>>(&self, name: &str) -> Option<T> {
        let value = self.0.get(name)?.try_clone().ok()?;
        T::try_from(value).ok()
    }

    /// Property `name`, which the daemon must have, as a `T`.
    pub(crate) fn require<T: TryFrom<OwnedValue>>(&self, name: &str) -> Result<T> {
        self.get(name)
            .ok_or_else(|| anyhow!("The daemon's {name} property is missing or of another type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Issue 9.5: a transaction socket that accepts but never answers (a daemon out of file
    /// descriptors) must not hang the client.
    #[tokio::test]
    async fn a_silent_transaction_socket_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("txn.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let address = format!("unix:path={}", path.display());
        let err = connect_transaction_within(&address, std::time::Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Timed out after 0.3 s connecting"), "{err}");
    }

    #[test]
    fn client_id_from_env() {
        assert_eq!(client_id(None), "cli");
        assert_eq!(client_id(Some(String::new())), "cli");
        assert_eq!(client_id(Some("zincati".into())), "zincati");
    }

    #[test]
    fn sysroot_other_than_root_is_refused() {
        let mut g = GlobalOpts::default();
        assert!(check_global(&g).is_ok());
        g.sysroot = Some(PathBuf::from("/"));
        assert!(check_global(&g).is_ok());
        g.sysroot = Some(PathBuf::from("/mnt/sysroot"));
        let e = check_global(&g).unwrap_err().to_string();
        assert!(e.contains("--sysroot /mnt/sysroot"), "{e}");
        assert!(e.contains("stratad --sysroot DIR"), "{e}");
        let g = GlobalOpts {
            peer: true,
            ..Default::default()
        };
        assert!(check_global(&g).is_err());
    }

    #[test]
    fn default_deployment_id() {
        let mut d = DeploymentDict::new();
        d.insert(
            "id".into(),
            OwnedValue::from(zbus::zvariant::Str::from("fedora-abc.0")),
        );
        assert_eq!(default_id(&[d]).as_deref(), Some("fedora-abc.0"));
        assert_eq!(default_id(&[]), None);
    }
}
