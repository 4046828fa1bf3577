//! The status model: what `rpm-ostree status --json` shows.
//!
//! Plain serde data with rpm-ostree's key names and types; the engine fills it from a sysroot,
//! the daemon serves it as the `Deployments` property, the CLI renders it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Base commit metadata keys too bulky for status, as rpm-ostree leaves them out.
pub const BULKY_METADATA_KEYS: &[&str] = &[
    "rpmostree.rpmdb.pkglist",
    "rpmostree.advisories",
    "rpmostree.packages",
];

/// Top level of `status --json`: always all four keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StatusReport {
    pub deployments: Vec<DeploymentStatus>,
    /// `[method, sender, object path]` of the running transaction.
    pub transaction: Option<(String, String, String)>,
    pub cached_update: Option<Value>,
    pub update_driver: Option<UpdateDriver>,
}

/// A registered update driver (`deploy --register-driver`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateDriver {
    pub driver_name: String,
    pub driver_sd_unit: String,
}

/// One deployment, with rpm-ostree's key names and types. Missing keys read as their defaults;
/// keys this model does not know are kept in [`DeploymentStatus::extra`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct DeploymentStatus {
    pub id: String,
    pub osname: String,
    pub serial: i32,
    pub checksum: String,
    pub booted: bool,
    pub staged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalization_locked: Option<bool>,
    pub pinned: bool,
    pub unlocked: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_origin: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpg_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_error: Option<String>,
    /// GPG verification results, one tuple per signature, as libostree's
    /// `ostree_gpg_verify_result_get_all` lays them out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_base_checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_base_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_base_timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_timestamp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endoflife: Option<String>,
    pub base_commit_meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layered_commit_meta: Option<Map<String, Value>>,
    pub packages: Vec<String>,
    pub base_removals: Vec<Value>,
    pub base_local_replacements: Vec<Value>,
    pub base_remote_replacements: Map<String, Value>,
    pub requested_packages: Vec<String>,
    pub requested_local_packages: Vec<String>,
    pub requested_local_fileoverride_packages: Vec<String>,
    pub requested_base_removals: Vec<String>,
    pub requested_base_local_replacements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_base_remote_replacements: Option<Vec<(String, Vec<String>)>>,
    pub regenerate_initramfs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initramfs_args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initramfs_etc: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cliwrap: Option<bool>,
    /// Strata's: why this deployment could not be read (e.g. its commit object is missing);
    /// the other fields are then only what libostree's deployment list says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
    /// Keys of a newer daemon (or of rpm-ostree) that this model does not name, verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl DeploymentStatus {
    /// The deployment's JSON object with its keys sorted, as `status --json` prints it.
    pub fn to_sorted_json(&self) -> Value {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
            other => other,
        }
    }
}
