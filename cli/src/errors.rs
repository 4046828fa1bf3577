//! What the user reads when something goes wrong: D-Bus errors mapped to advice.

use strata_api::names;

/// The error name of a D-Bus method error, if `err` is one.
pub(crate) fn dbus_error_name(err: &zbus::Error) -> Option<String> {
    match err {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(fdo_error_name(e)),
        _ => None,
    }
}

fn fdo_error_name(e: &zbus::fdo::Error) -> String {
    use zbus::DBusError;
    e.name().to_string()
}

/// The human-readable part of a D-Bus method error (without the error name).
pub(crate) fn dbus_error_text(err: &zbus::Error) -> String {
    match err {
        zbus::Error::MethodError(_, Some(text), _) if !text.is_empty() => text.clone(),
        zbus::Error::MethodError(name, _, _) => name.to_string(),
        zbus::Error::FDO(e) => {
            use zbus::DBusError;
            e.description()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        }
        other => other.to_string(),
    }
}

/// Whether `err` says that nobody owns (or can be activated for) the daemon's bus name.
pub(crate) fn is_daemon_unreachable(err: &zbus::Error) -> bool {
    matches!(
        dbus_error_name(err).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.Spawn.ServiceNotFound"
                | "org.freedesktop.DBus.Error.Spawn.ChildExited"
                | "org.freedesktop.DBus.Error.Spawn.ExecFailed"
                | "org.freedesktop.DBus.Error.TimedOut"
        )
    )
}

/// Whether `err` is rpm-ostree's "transaction in progress" error.
pub(crate) fn is_busy(err: &zbus::Error) -> bool {
    dbus_error_name(err).as_deref() == Some(names::ERROR_BUSY)
}

/// The daemon cannot be reached on the bus.
pub(crate) fn daemon_unreachable(detail: &str) -> String {
    format!(
        "Could not connect to stratad on the system bus: {detail} — is stratad running? \
         (systemctl status stratad)"
    )
}

/// Another transaction holds the daemon.
pub(crate) fn busy(title: &str, program: &str) -> String {
    format!("Transaction in progress: {title} — run `{program} cancel` to cancel it")
}

/// An rpm-ostree verb Strata does not implement yet.
pub(crate) fn unsupported_verb(program: &str, verb: &str, why: &str) -> String {
    format!("\"{program} {verb}\" is not supported yet: {why}")
}

/// An rpm-ostree flag Strata accepts but cannot honour yet.
pub(crate) fn unsupported_flag(program: &str, verb: &str, flag: &str, why: &str) -> String {
    format!("\"{program} {verb} {flag}\" is not supported yet: {why}")
}

/// The daemon went away while we were waiting for a transaction.
pub(crate) const BUS_OWNER_CHANGED: &str =
    "Bus owner changed, aborting. This likely means the daemon crashed; check `journalctl -u stratad`";

/// Printed when Ctrl-C arrives during a transaction.
pub(crate) const CAUGHT_SIGINT: &str = "Caught SIGINT, cancelling transaction";

#[cfg(test)]
mod tests {
    use super::*;

    fn method_error(name: &str, text: &str) -> zbus::Error {
        let msg = zbus::message::Message::method_call("/", "Ping")
            .unwrap()
            .build(&())
            .unwrap();
        zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from(name.to_string()).unwrap(),
            Some(text.to_string()),
            msg,
        )
    }

    #[test]
    fn busy_error_is_recognised_and_worded() {
        let e = method_error(names::ERROR_BUSY, "Transaction in progress: upgrade");
        assert!(is_busy(&e));
        assert!(!is_daemon_unreachable(&e));
        assert_eq!(
            busy("upgrade", "strata"),
            "Transaction in progress: upgrade — run `strata cancel` to cancel it"
        );
    }

    #[test]
    fn unreachable_daemon() {
        let e = method_error(
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "The name is not activatable",
        );
        assert!(is_daemon_unreachable(&e));
        assert_eq!(dbus_error_text(&e), "The name is not activatable");
        let m = daemon_unreachable(&dbus_error_text(&e));
        assert!(m.starts_with("Could not connect to stratad on the system bus: The name"));
        assert!(m.ends_with("is stratad running? (systemctl status stratad)"));
    }

    #[test]
    fn fdo_errors_have_names() {
        let e = zbus::Error::FDO(Box::new(zbus::fdo::Error::ServiceUnknown("gone".into())));
        assert!(is_daemon_unreachable(&e));
        assert_eq!(dbus_error_text(&e), "gone");
    }

    #[test]
    fn unsupported_wording() {
        assert_eq!(
            unsupported_verb(
                "strata",
                "install",
                "package layering comes with a later release"
            ),
            "\"strata install\" is not supported yet: package layering comes with a later release"
        );
        assert_eq!(
            unsupported_flag("rpm-ostree", "upgrade", "--install", "x"),
            "\"rpm-ostree upgrade --install\" is not supported yet: x"
        );
    }
}
