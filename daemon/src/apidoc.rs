//! The D-Bus API reference, generated from the interfaces themselves: the introspection XML
//! (`docs/dbus/org.projectatomic.rpmostree1.xml`) and a Markdown page (`docs/dbus-api.md`).
//! The test `api_reference_is_current` fails when either is stale; `STRATA_UPDATE_DOCS=1`
//! rewrites them.

use std::fmt::Write as _;
use std::sync::{Arc, Weak};

use strata_api::names;
use strata_api::transaction::TransactionServer;
use zbus::object_server::Interface;

use crate::daemon::{Daemon, Settings};
use crate::os_iface::{OsExperimentalIface, OsIface};
use crate::sysroot_iface::{StrataExtIface, SysrootIface};
use crate::transaction::{Peer, Transactions};

/// The introspection of every interface Strata serves, grouped by object.
pub(crate) fn introspection_xml(d: Arc<Daemon>) -> String {
    let txns = Transactions::new();
    let objects: Vec<(&str, Vec<Introspect>)> = vec![
        (
            names::SYSROOT_PATH,
            vec![
                boxed(SysrootIface::new(d.clone(), txns.clone())),
                boxed(StrataExtIface::new(d.clone())),
            ],
        ),
        (
            "/org/projectatomic/rpmostree1/OSNAME",
            vec![
                boxed(OsIface::new(d, txns, "OSNAME".into())),
                boxed(OsExperimentalIface),
            ],
        ),
        (
            "/ (on the transaction's peer-to-peer connection)",
            vec![boxed(TransactionServer(Peer { txn: Weak::new() }))],
        ),
    ];
    let mut xml = String::from(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n\
         <!-- Generated from stratad's interfaces; do not edit (see daemon/src/apidoc.rs). -->\n\
         <node>\n",
    );
    for (path, ifaces) in objects {
        let _ = writeln!(xml, "  <!-- Object {path} -->");
        for write in ifaces {
            write(&mut xml);
        }
    }
    xml.push_str("</node>\n");
    xml
}

/// Writes one interface's introspection.
type Introspect = Box<dyn Fn(&mut String)>;

fn boxed<I: Interface>(iface: I) -> Introspect {
    Box::new(move |out: &mut String| iface.introspect_to_writer(out, 2))
}

/// The Markdown reference, from the XML.
pub(crate) fn markdown(xml: &str) -> anyhow::Result<String> {
    let node = zbus_xml::Node::from_reader(xml.as_bytes())?;
    let mut md = String::from(
        "# D-Bus API reference\n\n\
         Generated from stratad's interfaces (`daemon/src/apidoc.rs`); do not edit. The same data \
         as XML: [dbus/org.projectatomic.rpmostree1.xml](dbus/org.projectatomic.rpmostree1.xml).\n\n\
         Bus name `org.projectatomic.rpmostree1` on the system bus. The `Sysroot` interface is at \
         `/org/projectatomic/rpmostree1/Sysroot`, one `OS` object per stateroot at \
         `/org/projectatomic/rpmostree1/<stateroot>` (with `-` and `.` as `_`), and each \
         mutating method returns the address of a peer-to-peer socket serving `Transaction` at \
         `/`. `StrataExt` is Strata's own; everything else is rpm-ostree's contract.\n",
    );
    for iface in node.interfaces() {
        let name = iface.name();
        if name.starts_with("org.freedesktop.DBus.") {
            continue;
        }
        let _ = write!(md, "\n## `{name}`\n");
        if !iface.methods().is_empty() {
            md.push_str("\n### Methods\n\n");
            for m in iface.methods() {
                let args = |dir: zbus_xml::ArgDirection| {
                    m.args()
                        .iter()
                        .filter(|a| a.direction() == Some(dir))
                        .map(|a| format!("{} `{}`", a.name().unwrap_or("_"), a.ty().inner()))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let (ins, outs) = (
                    args(zbus_xml::ArgDirection::In),
                    args(zbus_xml::ArgDirection::Out),
                );
                let outs = if outs.is_empty() {
                    String::new()
                } else {
                    format!(" → {outs}")
                };
                let _ = writeln!(md, "- `{}`({ins}){outs}", m.name());
            }
        }
        if !iface.properties().is_empty() {
            md.push_str("\n### Properties\n\n");
            for p in iface.properties() {
                let access = match p.access() {
                    zbus_xml::PropertyAccess::Read => "read",
                    zbus_xml::PropertyAccess::Write => "write",
                    zbus_xml::PropertyAccess::ReadWrite => "read/write",
                };
                let _ = writeln!(md, "- `{}`: `{}` ({access})", p.name(), p.ty().inner());
            }
        }
        if !iface.signals().is_empty() {
            md.push_str("\n### Signals\n\n");
            for s in iface.signals() {
                let args = s
                    .args()
                    .iter()
                    .map(|a| format!("{} `{}`", a.name().unwrap_or("_"), a.ty().inner()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(md, "- `{}`({args})", s.name());
            }
        }
    }
    Ok(md)
}

/// A daemon state for the interfaces to describe (never served: a peer-to-peer pair).
pub(crate) async fn idle_daemon() -> anyhow::Result<Arc<Daemon>> {
    let (a, b) = tokio::net::UnixStream::pair()?;
    let guid = zbus::Guid::generate();
    let server = zbus::connection::Builder::unix_stream(a)
        .server(guid)?
        .p2p()
        .build();
    let client = zbus::connection::Builder::unix_stream(b).p2p().build();
    let (server, _client) = tokio::try_join!(server, client)?;
    let settings = Settings {
        sysroot: "/".into(),
        run_dir: std::env::temp_dir(),
        config_path: "/nonexistent".into(),
        no_polkit: true,
        idle_exit_timeout: None,
        start_timeout: std::time::Duration::from_secs(60),
    };
    let (d, _rx) = Daemon::new(settings, server, Default::default());
    Ok(Arc::new(d))
}

/// rpm-ostree's interfaces as Strata's contract (see the file's header).
pub(crate) const CONTRACT_XML: &str =
    include_str!("../../api/contract/org.projectatomic.rpmostree1.xml");

/// Every member of `iface` as a line: `method Name(in sig) -> (out sig)`, `property Name sig
/// access`, `signal Name(sig)`; sorted, so two interfaces compare as sets.
fn members(iface: &zbus_xml::Interface<'_>) -> Vec<String> {
    let sig = |args: &mut dyn Iterator<Item = &zbus_xml::Arg>| {
        args.map(|a| a.ty().inner().to_string()).collect::<String>()
    };
    let mut out = Vec::new();
    for m in iface.methods() {
        let dir = |d| sig(&mut m.args().iter().filter(move |a| a.direction() == Some(d)));
        out.push(format!(
            "method {}({}) -> ({})",
            m.name(),
            dir(zbus_xml::ArgDirection::In),
            dir(zbus_xml::ArgDirection::Out)
        ));
    }
    for p in iface.properties() {
        out.push(format!(
            "property {} {} {:?}",
            p.name(),
            p.ty().inner(),
            p.access()
        ));
    }
    for s in iface.signals() {
        out.push(format!(
            "signal {}({})",
            s.name(),
            sig(&mut s.args().iter())
        ));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strata serves every member of rpm-ostree's four interfaces with rpm-ostree's signature,
    /// and nothing else on them.
    #[tokio::test(flavor = "multi_thread")]
    async fn introspection_matches_rpm_ostree() {
        let served = introspection_xml(idle_daemon().await.unwrap());
        let served = zbus_xml::Node::from_reader(served.as_bytes()).unwrap();
        let contract = zbus_xml::Node::from_reader(CONTRACT_XML.as_bytes()).unwrap();
        assert_eq!(contract.interfaces().len(), 4);
        for want in contract.interfaces() {
            let got = served
                .interfaces()
                .iter()
                .find(|i| i.name() == want.name())
                .unwrap_or_else(|| panic!("{} is not served", want.name()));
            let (want_m, got_m) = (members(want), members(got));
            let missing: Vec<_> = want_m.iter().filter(|m| !got_m.contains(m)).collect();
            let extra: Vec<_> = got_m.iter().filter(|m| !want_m.contains(m)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{}:\n  missing or different: {missing:#?}\n  not in rpm-ostree's: {extra:#?}",
                want.name()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn api_reference_is_current() {
        let xml = introspection_xml(idle_daemon().await.unwrap());
        let md = markdown(&xml).unwrap();
        // Every rpm-ostree interface Strata serves is there, with its signals.
        for needle in [
            "org.projectatomic.rpmostree1.Sysroot",
            "org.projectatomic.rpmostree1.OS",
            "org.projectatomic.rpmostree1.Transaction",
            "name=\"DownloadProgress\"",
            "name=\"KernelArgs\"",
        ] {
            assert!(xml.contains(needle), "{needle}");
        }
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let files = [
            (docs.join("dbus/org.projectatomic.rpmostree1.xml"), xml),
            (docs.join("dbus-api.md"), md),
        ];
        if std::env::var_os("STRATA_UPDATE_DOCS").is_some() {
            for (path, text) in &files {
                fs_err::create_dir_all(path.parent().unwrap()).unwrap();
                fs_err::write(path, text).unwrap();
            }
        }
        for (path, text) in &files {
            let committed = fs_err::read_to_string(path).unwrap_or_default();
            assert!(
                committed == *text,
                "{} is stale: run `make docs` (STRATA_UPDATE_DOCS=1 cargo test -p strata-daemon \
                 api_reference) and commit it",
                path.display()
            );
        }
    }
}
