//! Client proxies for rpm-ostree's interfaces (used by the CLI and the tests).

use std::collections::HashMap;

use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use crate::options::{
    ClientOptions, DeployOptions, FinalizeOptions, KernelArgsOptions, Modifiers, RefreshMdOptions,
    RollbackOptions,
};

/// `org.projectatomic.rpmostree1.Sysroot`.
#[zbus::proxy(
    interface = "org.projectatomic.rpmostree1.Sysroot",
    default_service = "org.projectatomic.rpmostree1",
    default_path = "/org/projectatomic/rpmostree1/Sysroot"
)]
pub trait Sysroot {
    fn register_client(&self, options: &ClientOptions) -> zbus::Result<()>;
    fn unregister_client(&self, options: &ClientOptions) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
    fn reload_config(&self) -> zbus::Result<()>;
    #[zbus(name = "GetOS")]
    fn get_os(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(property)]
    fn booted(&self) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property)]
    fn path(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_transaction(&self) -> zbus::Result<(String, String, String)>;
    #[zbus(property)]
    fn active_transaction_path(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn automatic_update_policy(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn deployments(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
}

/// One package change of the rpm-diff methods: `(name, type, {"PreviousPackage": (name, evr,
/// arch), "NewPackage": …})`, type 0 added, 1 removed, 2 upgraded, 3 downgraded.
pub type RpmDiffEntry = (String, u32, HashMap<String, OwnedValue>);

/// `org.projectatomic.rpmostree1.OS`.
#[zbus::proxy(
    interface = "org.projectatomic.rpmostree1.OS",
    default_service = "org.projectatomic.rpmostree1"
)]
pub trait OS {
    fn upgrade(&self, options: &DeployOptions) -> zbus::Result<String>;
    fn deploy(&self, revision: &str, options: &DeployOptions) -> zbus::Result<String>;
    fn rebase(
        &self,
        options: &DeployOptions,
        refspec: &str,
        packages: &[&str],
    ) -> zbus::Result<String>;
    fn rollback(&self, options: &RollbackOptions) -> zbus::Result<String>;
    fn clear_rollback_target(&self, options: &RollbackOptions) -> zbus::Result<String>;
    fn kernel_args(
        &self,
        existing: &str,
        added: &[&str],
        replaced: &[&str],
        removed: &[&str],
        options: &KernelArgsOptions,
    ) -> zbus::Result<String>;
    fn get_deployment_boot_config(
        &self,
        deployid: &str,
        is_pending: bool,
    ) -> zbus::Result<HashMap<String, OwnedValue>>;
    fn cleanup(&self, elements: &[&str]) -> zbus::Result<String>;
    fn finalize_deployment(&self, options: &FinalizeOptions) -> zbus::Result<String>;
    fn automatic_update_trigger(&self, options: &DeployOptions) -> zbus::Result<(bool, String)>;
    fn update_deployment(
        &self,
        modifiers: &Modifiers,
        options: &DeployOptions,
    ) -> zbus::Result<String>;
    /// `UpdateDeployment` with modifiers that carry file descriptors
    /// (`install-local-packages`), which [`Modifiers`] cannot hold.
    #[zbus(name = "UpdateDeployment")]
    fn update_deployment_with_files(
        &self,
        modifiers: &HashMap<&str, zbus::zvariant::Value<'_>>,
        options: &DeployOptions,
    ) -> zbus::Result<String>;

    fn get_deployments_rpm_diff(
        &self,
        deployid0: &str,
        deployid1: &str,
    ) -> zbus::Result<Vec<RpmDiffEntry>>;
    fn get_cached_update_rpm_diff(
        &self,
        deployid: &str,
    ) -> zbus::Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)>;
    fn download_update_rpm_diff(&self) -> zbus::Result<String>;
    fn get_cached_rebase_rpm_diff(
        &self,
        refspec: &str,
        packages: &[&str],
    ) -> zbus::Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)>;
    fn download_rebase_rpm_diff(&self, refspec: &str, packages: &[&str]) -> zbus::Result<String>;
    fn get_cached_deploy_rpm_diff(
        &self,
        revision: &str,
        packages: &[&str],
    ) -> zbus::Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)>;
    fn download_deploy_rpm_diff(&self, revision: &str, packages: &[&str]) -> zbus::Result<String>;

    fn refresh_md(&self, options: &RefreshMdOptions) -> zbus::Result<String>;
    fn modify_yum_repo(
        &self,
        repo_id: &str,
        settings: &HashMap<&str, &str>,
    ) -> zbus::Result<String>;
    fn list_repos(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
    fn what_provides(&self, provides: &[&str]) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
    fn get_packages(&self, names: &[&str]) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
    fn search(&self, names: &[&str]) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;

    #[zbus(property)]
    fn booted_deployment(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn default_deployment(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn rollback_deployment(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn cached_update(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
    #[zbus(property)]
    fn has_cached_update_rpm_diff(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
}

/// `org.projectatomic.rpmostree1.Transaction`, at `/` on the peer-to-peer connection whose
/// address a mutating method returned. A peer-to-peer connection routes nothing by name, but
/// zbus's proxy builder insists on a destination: the well-known name serves (and disables
/// sender filtering of signals).
#[zbus::proxy(
    interface = "org.projectatomic.rpmostree1.Transaction",
    default_service = "org.projectatomic.rpmostree1",
    default_path = "/"
)]
pub trait Transaction {
    fn start(&self) -> zbus::Result<bool>;
    fn cancel(&self) -> zbus::Result<()>;

    #[zbus(property)]
    fn title(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn initiating_client_description(&self) -> zbus::Result<String>;

    #[zbus(signal)]
    fn finished(&self, success: bool, error_message: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn message(&self, text: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn task_begin(&self, text: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn task_end(&self, text: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn percent_progress(&self, text: String, percentage: u32) -> zbus::Result<()>;
    #[zbus(signal)]
    #[allow(clippy::too_many_arguments)]
    fn download_progress(
        &self,
        time: (u64, u64),
        outstanding: (u32, u32),
        metadata: (u32, u32, u32),
        delta: (u32, u32, u32, u64),
        content: (u32, u32),
        transfer: (u64, u64),
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    fn progress_end(&self) -> zbus::Result<()>;
}
