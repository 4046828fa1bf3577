//! `org.freedesktop.DBus.Properties` on Strata's objects, in place of zbus's own.
//!
//! zbus 5 answers `Set` of a property that has no setter with `UnknownProperty`. The D-Bus
//! specification, GDBus and so rpm-ostree answer `PropertyReadOnly`, and a client must be able
//! to tell "this property does not exist" from "you cannot write it". Every property Strata
//! serves is read-only, so `Set` only has to find out which of the two errors applies. `Get`
//! and `GetAll` are the interfaces' own answers (the code zbus's macro generated), reached
//! through their typed handles; zbus offers no other way in (its object tree is private).
//!
//! Replacing the interface on an object that an ObjectManager already announces makes zbus
//! emit `InterfacesRemoved`/`InterfacesAdded` naming `org.freedesktop.DBus.Properties`. That
//! only happens for a stateroot created while stratad runs (the objects of the first load are
//! in place before stratad owns its name); GDBus and Cockpit ignore a standard interface there.

use std::collections::HashMap;

use zbus::fdo;
use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::{Interface, InterfaceRef, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, ObjectServer};

use crate::os_iface::{OsExperimentalIface, OsIface};
use crate::sysroot_iface::{StrataExtIface, SysrootIface};

/// Serve `iface` at `path`, with [`Properties`] answering for the object.
pub(crate) async fn serve_at<I: Interface>(
    server: &ObjectServer,
    path: &str,
    iface: I,
) -> zbus::Result<()> {
    server.at(path, iface).await?;
    // An object's Properties serves all its interfaces: replace zbus's once per object.
    if server.interface::<_, Properties>(path).await.is_err() {
        server.remove::<fdo::Properties, _>(path).await?;
        server.at(path, Properties).await?;
    }
    Ok(())
}

/// Where a call came from, to hand on to the interface's generated code.
struct Call<'a> {
    server: &'a ObjectServer,
    conn: &'a Connection,
    header: &'a Header<'a>,
    emitter: &'a SignalEmitter<'a>,
}

/// The interfaces Strata serves with properties. `ObjectManager` has none.
enum Served {
    Sysroot,
    StrataExt,
    Os,
    /// `OSExperimental`, which has no properties.
    OsExperimental,
}

impl Served {
    fn find(name: &InterfaceName<'_>) -> fdo::Result<Self> {
        if *name == SysrootIface::name() {
            Ok(Self::Sysroot)
        } else if *name == StrataExtIface::name() {
            Ok(Self::StrataExt)
        } else if *name == OsIface::name() {
            Ok(Self::Os)
        } else if *name == OsExperimentalIface::name() {
            Ok(Self::OsExperimental)
        } else {
            Err(unknown_interface(name))
        }
    }
}

fn unknown_interface(name: &InterfaceName<'_>) -> fdo::Error {
    fdo::Error::UnknownInterface(format!("Unknown interface '{name}'"))
}

fn unknown_property(name: &str) -> fdo::Error {
    fdo::Error::UnknownProperty(format!(
        "Unknown property '{}'",
        strata_api::text::printable(name, 256)
    ))
}

/// Interface `I` at the call's object.
async fn served<I: Interface>(call: &Call<'_>) -> fdo::Result<InterfaceRef<I>> {
    let path = call.header.path().ok_or(zbus::Error::MissingField)?;
    call.server
        .interface::<_, I>(path)
        .await
        .map_err(|_| unknown_interface(&I::name()))
}

/// One property of interface `I` at the call's object, or `None` when `I` has no such
/// property.
async fn get_one<I: Interface>(call: &Call<'_>, property: &str) -> fdo::Result<Option<OwnedValue>> {
    let iface = served::<I>(call).await?;
    let guard = iface.get().await;
    let value = Interface::get(
        &*guard,
        property,
        call.server,
        call.conn,
        Some(call.header),
        call.emitter,
    )
    .await;
    value.transpose()
}

async fn get_all<I: Interface>(call: &Call<'_>) -> fdo::Result<HashMap<String, OwnedValue>> {
    let iface = served::<I>(call).await?;
    let guard = iface.get().await;
    Interface::get_all(
        &*guard,
        call.server,
        call.conn,
        Some(call.header),
        call.emitter,
    )
    .await
}

async fn lookup(
    call: &Call<'_>,
    interface: &InterfaceName<'_>,
    property: &str,
) -> fdo::Result<OwnedValue> {
    let value = match Served::find(interface)? {
        Served::Sysroot => get_one::<SysrootIface>(call, property).await?,
        Served::StrataExt => get_one::<StrataExtIface>(call, property).await?,
        Served::Os => get_one::<OsIface>(call, property).await?,
        Served::OsExperimental => get_one::<OsExperimentalIface>(call, property).await?,
    };
    value.ok_or_else(|| unknown_property(property))
}

/// See the module documentation.
pub(crate) struct Properties;

#[zbus::interface(name = "org.freedesktop.DBus.Properties", introspection_docs = false)]
impl Properties {
    async fn get(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<OwnedValue> {
        let call = Call {
            server,
            conn,
            header: &header,
            emitter: &emitter,
        };
        lookup(&call, &interface_name, property_name).await
    }

    // Three arguments are the D-Bus signature's; zbus injects the rest.
    #[allow(clippy::too_many_arguments)]
    async fn set(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        _value: Value<'_>,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<()> {
        let call = Call {
            server,
            conn,
            header: &header,
            emitter: &emitter,
        };
        lookup(&call, &interface_name, property_name).await?;
        Err(fdo::Error::PropertyReadOnly(format!(
            "Property '{}' is read-only",
            strata_api::text::printable(property_name, 256)
        )))
    }

    async fn get_all(
        &self,
        interface_name: InterfaceName<'_>,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedValue>> {
        let call = Call {
            server,
            conn,
            header: &header,
            emitter: &emitter,
        };
        match Served::find(&interface_name)? {
            Served::Sysroot => get_all::<SysrootIface>(&call).await,
            Served::StrataExt => get_all::<StrataExtIface>(&call).await,
            Served::Os => get_all::<OsIface>(&call).await,
            Served::OsExperimental => get_all::<OsExperimentalIface>(&call).await,
        }
    }

    /// Emitted by zbus's property-change code on Strata's behalf; declared here so that the
    /// introspection lists it as zbus's own interface does.
    #[zbus(signal)]
    async fn properties_changed(
        emitter: &SignalEmitter<'_>,
        interface_name: InterfaceName<'_>,
        changed_properties: HashMap<&str, Value<'_>>,
        invalidated_properties: &[&str],
    ) -> zbus::Result<()>;
}
