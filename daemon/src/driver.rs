//! The update driver (`deploy --register-driver=NAME`, as Zincati does): an agent that owns
//! updates. While one is registered, `Upgrade`, `Deploy` and `Rebase` from anyone else need
//! `bypass-driver`. The record lives in `<run-dir>/update-driver.json`, so it survives a
//! daemon restart but not a reboot (as rpm-ostree's in `/run`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use strata_api::names::{DRIVER_NAME, DRIVER_SD_UNIT};

/// File name of the record inside the run dir.
pub(crate) const FILE_NAME: &str = "update-driver.json";

/// Key of the record for the driver's client id (Strata's own; rpm-ostree records the unit
/// alone).
const DRIVER_CLIENT_ID: &str = "driver-client-id";

/// A registered update driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateDriver {
    pub name: String,
    /// The driver's systemd unit, "" when it could not be found.
    pub sd_unit: String,
    /// The id the driver registered with (`RegisterClient`, `$RPMOSTREE_CLIENT_ID`), `None`
    /// for none or the CLI's generic `cli`: how an agent outside any unit is recognised.
    pub client_id: Option<String>,
}

impl UpdateDriver {
    /// "Zincati (zincati.service)", or just the name without a unit.
    pub(crate) fn describe(&self) -> String {
        if self.sd_unit.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.sd_unit)
        }
    }

    /// The refusal for a caller that is not the driver.
    pub(crate) fn refusal(&self) -> String {
        format!(
            "Updates are driven by {}; use --bypass-driver to override",
            self.describe()
        )
    }

    /// Whether a caller is the driver itself: it runs in the driver's systemd unit (rpm-ostree's
    /// rule), or, for a driver registered outside any unit, it has the driver's client id.
    pub(crate) fn is_driver(&self, caller_unit: &str, caller_id: Option<&str>) -> bool {
        if self.sd_unit.is_empty() {
            self.client_id.is_some() && self.client_id.as_deref() == caller_id
        } else {
            self.sd_unit == caller_unit
        }
    }
}

/// The client id that identifies an agent: not none, not the CLI's generic `cli`.
pub(crate) fn agent_id(id: Option<&str>) -> Option<String> {
    id.filter(|i| !i.is_empty() && *i != "cli")
        .map(str::to_string)
}

/// Where the record of `run_dir` lives.
pub(crate) fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE_NAME)
}

/// The registered driver, if any. An unreadable record counts as none (logged).
pub(crate) fn load(run_dir: &Path) -> Option<UpdateDriver> {
    let p = path(run_dir);
    let text = match fs_err::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("Reading {}: {e}", p.display());
            return None;
        }
    };
    let parsed = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let name = v.get(DRIVER_NAME)?.as_str()?.to_string();
            let sd_unit = v
                .get(DRIVER_SD_UNIT)
                .and_then(|u| u.as_str())
                .unwrap_or_default()
                .to_string();
            let client_id = agent_id(v.get(DRIVER_CLIENT_ID).and_then(|u| u.as_str()));
            (!name.is_empty()).then_some(UpdateDriver {
                name,
                sd_unit,
                client_id,
            })
        });
    if parsed.is_none() {
        tracing::warn!(
            "Ignoring the malformed update driver record {}",
            p.display()
        );
    }
    parsed
}

/// Record `driver` (atomically: write a temp file, rename).
pub(crate) fn save(run_dir: &Path, driver: &UpdateDriver) -> Result<()> {
    fs_err::create_dir_all(run_dir)?;
    let p = path(run_dir);
    let tmp = run_dir.join(format!(".{FILE_NAME}.tmp"));
    let text = serde_json::to_string_pretty(&serde_json::json!({
        DRIVER_NAME: driver.name,
        DRIVER_SD_UNIT: driver.sd_unit,
        DRIVER_CLIENT_ID: driver.client_id,
    }))?;
    fs_err::write(&tmp, format!("{text}\n"))?;
    fs_err::rename(&tmp, &p)?;
    Ok(())
}

/// The systemd unit of a process, as systemd answers it (`GetUnitByPID`, then the unit's `Id`).
/// "" when systemd is not on this bus (a test bus, a host without systemd) or the process is
/// in no unit.
pub(crate) async fn unit_of_pid(conn: &zbus::Connection, pid: u32) -> String {
    match systemd_unit_of_pid(conn, pid).await {
        Ok(unit) => unit,
        Err(e) => {
            tracing::debug!("No systemd unit for pid {pid}: {e}");
            String::new()
        }
    }
}

async fn systemd_unit_of_pid(conn: &zbus::Connection, pid: u32) -> zbus::Result<String> {
    const SYSTEMD: &str = "org.freedesktop.systemd1";
    let manager: zbus::Proxy<'_> = zbus::proxy::Builder::new(conn)
        .destination(SYSTEMD)?
        .path("/org/freedesktop/systemd1")?
        .interface("org.freedesktop.systemd1.Manager")?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let unit_path: zbus::zvariant::OwnedObjectPath = manager.call("GetUnitByPID", &(pid,)).await?;
    let unit: zbus::Proxy<'_> = zbus::proxy::Builder::new(conn)
        .destination(SYSTEMD)?
        .path(unit_path)?
        .interface("org.freedesktop.systemd1.Unit")?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    unit.get_property::<String>("Id").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_messages() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let d = UpdateDriver {
            name: "Zincati".into(),
            sd_unit: "zincati.service".into(),
            client_id: Some("zincati".into()),
        };
        save(dir.path(), &d).unwrap();
        assert_eq!(load(dir.path()), Some(d.clone()));
        assert_eq!(
            d.refusal(),
            "Updates are driven by Zincati (zincati.service); use --bypass-driver to override"
        );
        assert!(d.is_driver("zincati.service", None));
        // With a unit, the unit decides.
        assert!(!d.is_driver("", Some("zincati")));
        assert!(!d.is_driver("other.service", Some("zincati")));
        let anon = UpdateDriver {
            name: "Agent".into(),
            sd_unit: String::new(),
            client_id: None,
        };
        assert!(!anon.is_driver("", None));
        // Outside any unit, the client id it registered with recognises it.
        let outside = UpdateDriver {
            client_id: Some("agent".into()),
            ..anon.clone()
        };
        assert!(outside.is_driver("", Some("agent")));
        assert!(!outside.is_driver("", Some("cli")));
        assert!(!outside.is_driver("", None));
        save(dir.path(), &outside).unwrap();
        assert_eq!(load(dir.path()), Some(outside));
        assert_eq!(agent_id(Some("cli")), None);
        assert_eq!(agent_id(Some("")), None);
        assert_eq!(
            anon.refusal(),
            "Updates are driven by Agent; use --bypass-driver to override"
        );
        std::fs::write(path(dir.path()), "not json").unwrap();
        assert_eq!(load(dir.path()), None);
    }
}
