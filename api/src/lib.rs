//! Strata's wire contract, shared by the daemon and the CLI so they cannot drift: rpm-ostree's
//! D-Bus names, paths, error names and polkit actions ([`names`]), the `status --json` model
//! ([`status`]), its conversion to and from D-Bus `a{sv}` dictionaries ([`wire`]), and client
//! proxies for the `Sysroot`, `OS` and `Transaction` interfaces ([`proxy`]). No libostree here.

pub mod names;
pub mod options;
pub mod proxy;
pub mod status;
pub mod transaction;
pub mod wire;
