//! The update driver (`deploy --register-driver=NAME`, as Zincati does): an agent that owns
//! updates. While one is registered, `Upgrade`, `Deploy` and `Rebase` from anyone else need
//! `bypass-driver`. The record lives in `<run-dir>/update-driver.json`, so it survives a
//! daemon restart but not a reboot (as rpm-ostree's in `/run`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use strata_api::names::{DRIVER_NAME, DRIVER_SD_UNIT};

/// File name of the record inside the run dir.
pub(crate) const FILE_NAME: &str = "update-driver.json";

/// A registered update driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpdateDriver {
    pub name: String,
    /// The driver's systemd unit, "" when it could not be found.
    pub sd_unit: String,
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

    /// Whether a caller running in systemd unit `caller_unit` is the driver itself.
    pub(crate) fn is_driver_unit(&self, caller_unit: &str) -> bool {
        !self.sd_unit.is_empty() && self.sd_unit == caller_unit
    }
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
            (!name.is_empty()).then_some(UpdateDriver { name, sd_unit })
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
        };
        save(dir.path(), &d).unwrap();
        assert_eq!(load(dir.path()), Some(d.clone()));
        assert_eq!(
            d.refusal(),
            "Updates are driven by Zincati (zincati.service); use --bypass-driver to override"
        );
        assert!(d.is_driver_unit("zincati.service"));
        assert!(!d.is_driver_unit(""));
        let anon = UpdateDriver {
            name: "Agent".into(),
            sd_unit: String::new(),
        };
        assert!(!anon.is_driver_unit(""));
        assert_eq!(
            anon.refusal(),
            "Updates are driven by Agent; use --bypass-driver to override"
        );
        std::fs::write(path(dir.path()), "not json").unwrap();
        assert_eq!(load(dir.path()), None);
    }
}
