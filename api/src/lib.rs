//! Strata's wire contract, shared by the daemon and the CLI so they cannot drift: rpm-ostree's
//! D-Bus names, paths, error names and polkit actions ([`names`]), the `status --json` model
//! ([`status`]), its conversion to and from D-Bus `a{sv}` dictionaries ([`wire`]), and client
//! proxies for the `Sysroot`, `OS` and `Transaction` interfaces ([`proxy`]). No libostree here.

pub mod names;
#[cfg(feature = "dbus")]
pub mod options;
#[cfg(feature = "dbus")]
pub mod proxy;
pub mod status;
pub mod text;
#[cfg(feature = "dbus")]
pub mod transaction;
#[cfg(feature = "dbus")]
pub mod wire;
