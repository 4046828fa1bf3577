//! Authorization: uid 0 directly, everyone else through polkit's `CheckAuthorization`.
//!
//! Polkit is asked on the bus the daemon serves, since the subject is a unique name on that bus
//! (on a host that is the system bus; a test bus can run its own polkitd).

use std::collections::HashMap;

use zbus::zvariant::Value;

use crate::daemon::Daemon;
use crate::error::{Error, Result};

const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";
const POLKIT_PATH: &str = "/org/freedesktop/PolicyKit1/Authority";
const POLKIT_IFACE: &str = "org.freedesktop.PolicyKit1.Authority";
/// `AllowUserInteraction`: rpm-ostree always allows interactive authentication.
const ALLOW_USER_INTERACTION: u32 = 1;

/// Check that `sender` may perform every action in `actions`. Returns the caller's uid when it
/// was looked up.
pub(crate) async fn authorize(d: &Daemon, sender: &str, actions: &[&str]) -> Result<Option<u32>> {
    if actions.is_empty() || d.settings.no_polkit {
        return Ok(None);
    }
    let uid = d.caller_uid(sender).await?;
    if uid == 0 {
        return Ok(Some(uid));
    }
    for action in actions {
        check(d, sender, action).await?;
    }
    Ok(Some(uid))
}

async fn check(d: &Daemon, sender: &str, action: &str) -> Result<()> {
    let mut subject_details: HashMap<&str, Value<'_>> = HashMap::new();
    subject_details.insert("name", Value::from(sender));
    let subject = ("system-bus-name", subject_details);
    let details: HashMap<&str, &str> = HashMap::new();
    let reply = d
        .conn
        .call_method(
            Some(POLKIT_NAME),
            POLKIT_PATH,
            Some(POLKIT_IFACE),
            "CheckAuthorization",
            &(subject, action, details, ALLOW_USER_INTERACTION, ""),
        )
        .await
        .map_err(|e| {
            Error::NotAuthorized(format!(
                "Authorization check for {action} failed (is polkit running?): {e}"
            ))
        })?;
    let (authorized, _challenge, _details): (bool, bool, HashMap<String, String>) = reply
        .body()
        .deserialize()
        .map_err(|e| Error::NotAuthorized(format!("Unexpected polkit reply for {action}: {e}")))?;
    if authorized {
        Ok(())
    } else {
        Err(Error::NotAuthorized(format!(
            "Not authorized to perform {action} (caller {sender})"
        )))
    }
}
