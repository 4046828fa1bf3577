//! D-Bus errors as rpm-ostree names them.

use std::fmt;

use strata_api::names;
use zbus::message::{Header, Message};
use zbus::names::ErrorName;

/// An error returned to a D-Bus caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// `org.projectatomic.rpmostreed.Error.Failed`.
    Failed(String),
    /// `org.projectatomic.rpmostreed.Error.InvalidRefspec`.
    InvalidRefspec(String),
    /// `org.projectatomic.rpmostreed.Error.NotAuthorized`.
    NotAuthorized(String),
    /// GIO's `G_IO_ERROR_BUSY`, as GDBus puts it on the wire (a transaction is running).
    Busy(String),
    /// `org.freedesktop.DBus.Error.InvalidArgs`: an option with the wrong type or an unknown key.
    InvalidArgs(String),
}

impl Error {
    pub(crate) fn failed(e: impl fmt::Display) -> Self {
        Error::Failed(e.to_string())
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

    pub(crate) fn message(&self) -> &str {
        match self {
            Error::Failed(m)
            | Error::InvalidRefspec(m)
            | Error::NotAuthorized(m)
            | Error::Busy(m)
            | Error::InvalidArgs(m) => m,
        }
    }

    fn name_str(&self) -> &'static str {
        match self {
            Error::Failed(_) => names::ERROR_FAILED,
            Error::InvalidRefspec(_) => names::ERROR_INVALID_REFSPEC,
            Error::NotAuthorized(_) => names::ERROR_NOT_AUTHORIZED,
            Error::Busy(_) => names::ERROR_BUSY,
            Error::InvalidArgs(_) => "org.freedesktop.DBus.Error.InvalidArgs",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name_str(), self.message())
    }
}

impl std::error::Error for Error {}

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

impl zbus::DBusError for Error {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name_str())?.build(&(self.message(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::from_static_str_unchecked(self.name_str())
    }

    fn description(&self) -> Option<&str> {
        Some(self.message())
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
