//! D-Bus errors as rpm-ostree names them.
//!
//! Every name starts with `org.`, so one `zbus::DBusError` derive with that prefix spells all
//! of them: rpm-ostree's own, GDBus's encoding of GIO's `G_IO_ERROR_BUSY`, and the bus's
//! `InvalidArgs`. A test holds them to the names in `strata_api::names`.

use std::fmt;

/// An error returned to a D-Bus caller; the string is the message the caller reads.
#[derive(Debug, Clone, PartialEq, Eq, zbus::DBusError)]
#[zbus(prefix = "org")]
pub(crate) enum Error {
    /// `org.projectatomic.rpmostreed.Error.Failed`.
    #[zbus(name = "projectatomic.rpmostreed.Error.Failed")]
    Failed(String),
    /// `org.projectatomic.rpmostreed.Error.InvalidRefspec`.
    #[zbus(name = "projectatomic.rpmostreed.Error.InvalidRefspec")]
    InvalidRefspec(String),
    /// `org.projectatomic.rpmostreed.Error.NotAuthorized`.
    #[zbus(name = "projectatomic.rpmostreed.Error.NotAuthorized")]
    NotAuthorized(String),
    /// GIO's `G_IO_ERROR_BUSY`, as GDBus puts it on the wire (a transaction is running).
    #[zbus(name = "gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code26")]
    Busy(String),
    /// `org.freedesktop.DBus.Error.InvalidArgs`: an option with the wrong type, say.
    #[zbus(name = "freedesktop.DBus.Error.InvalidArgs")]
    InvalidArgs(String),
    /// `org.freedesktop.DBus.Error.NotSupported`: a member of rpm-ostree's interfaces whose
    /// feature Strata does not have (see [`Error::not_built`]).
    #[zbus(name = "freedesktop.DBus.Error.NotSupported")]
    NotSupported(String),
}

impl Error {
    pub(crate) fn failed(e: impl fmt::Display) -> Self {
        Error::Failed(e.to_string())
    }

    /// The answer of a member of rpm-ostree's interfaces whose feature Strata does not have:
    /// it names the member and what is missing, never `UnknownMethod`.
    pub(crate) fn not_built(member: &str, why: &str) -> Self {
        Error::NotSupported(format!("Strata does not support {member}: {why}"))
    }

    /// A core failure: the whole context chain, so the user reads what went wrong and why.
    pub(crate) fn from_anyhow(e: &anyhow::Error) -> Self {
        let msg = format!("{e:#}");
        let bad_refspec = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<strata_core::origin::OriginError>(),
                Some(strata_core::origin::OriginError::InvalidRefspec { .. })
            )
        });
        if bad_refspec {
            return Error::InvalidRefspec(msg);
        }
        Error::Failed(msg)
    }

    /// The message the caller reads.
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        zbus::DBusError::description(self).unwrap_or_default()
    }
}

impl From<zbus::Error> for Error {
    fn from(e: zbus::Error) -> Self {
        Error::Failed(e.to_string())
    }
}

impl From<zbus::fdo::Error> for Error {
    fn from(e: zbus::fdo::Error) -> Self {
        Error::Failed(e.to_string())
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::names;
    use zbus::DBusError;

    #[test]
    fn names_are_rpm_ostree_s() {
        let m = || "m".to_string();
        for (e, name) in [
            (Error::Failed(m()), names::ERROR_FAILED),
            (Error::InvalidRefspec(m()), names::ERROR_INVALID_REFSPEC),
            (Error::NotAuthorized(m()), names::ERROR_NOT_AUTHORIZED),
            (Error::Busy(m()), names::ERROR_BUSY),
            (
                Error::InvalidArgs(m()),
                "org.freedesktop.DBus.Error.InvalidArgs",
            ),
            (
                Error::NotSupported(m()),
                "org.freedesktop.DBus.Error.NotSupported",
            ),
        ] {
            assert_eq!(e.name().as_str(), name);
            assert_eq!(e.description(), Some("m"));
            assert_eq!(e.to_string(), format!("{name}: m"));
        }
    }
}
