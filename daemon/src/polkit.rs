//! Authorization: uid 0 directly, everyone else through polkit's `CheckAuthorization`
//! (zbus_polkit's `AuthorityProxy`).
//!
//! Polkit is asked on the bus the daemon serves, since the subject is a unique name on that bus
//! (on a host that is the system bus; a test bus can run its own polkitd).

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Str};
use zbus_polkit::policykit1::{AuthorityProxy, CheckAuthorizationFlags, Subject};

use crate::daemon::Daemon;
use crate::error::{Error, Result};

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
    let authority = AuthorityProxy::new(&d.conn)
        .await
        .map_err(|e| Error::NotAuthorized(format!("Connecting to polkit: {e}")))?;
    // The caller's unique bus name, as polkit's "system-bus-name" subject.
    let subject = Subject {
        subject_kind: "system-bus-name".to_string(),
        subject_details: HashMap::from([(
            "name".to_string(),
            OwnedValue::from(Str::from(sender.to_string())),
        )]),
    };
    for action in actions {
        // rpm-ostree always allows interactive authentication.
        let result = authority
            .check_authorization(
                &subject,
                action,
                &HashMap::new(),
                CheckAuthorizationFlags::AllowUserInteraction.into(),
                "",
            )
            .await
            .map_err(|e| {
                Error::NotAuthorized(format!(
                    "Authorization check for {action} failed (is polkit running?): {e}"
                ))
            })?;
        if !result.is_authorized {
            return Err(Error::NotAuthorized(format!(
                "Not authorized to perform {action} (caller {sender})"
            )));
        }
    }
    Ok(Some(uid))
}
