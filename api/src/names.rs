//! rpm-ostree's D-Bus names, paths, error names and polkit action ids, verbatim.

/// Well-known bus name.
pub const BUS_NAME: &str = "org.projectatomic.rpmostree1";
/// Base object path; the `org.freedesktop.DBus.ObjectManager` lives here.
pub const BASE_PATH: &str = "/org/projectatomic/rpmostree1";
/// The `Sysroot` object.
pub const SYSROOT_PATH: &str = "/org/projectatomic/rpmostree1/Sysroot";

pub const SYSROOT_INTERFACE: &str = "org.projectatomic.rpmostree1.Sysroot";
pub const OS_INTERFACE: &str = "org.projectatomic.rpmostree1.OS";
pub const TRANSACTION_INTERFACE: &str = "org.projectatomic.rpmostree1.Transaction";
/// Strata's own extension interface on the `Sysroot` object (not part of rpm-ostree's
/// contract, so its interfaces stay exactly rpm-ostree's): the registered update driver.
pub const STRATA_EXT_INTERFACE: &str = "org.projectatomic.rpmostree1.StrataExt";

/// Keys of the update driver record (`deploy --register-driver`), as rpm-ostree's JSON names
/// them.
pub const DRIVER_NAME: &str = "driver-name";
pub const DRIVER_SD_UNIT: &str = "driver-sd-unit";

/// rpm-ostree's error domain: `org.projectatomic.rpmostreed.Error.<Name>`.
pub const ERROR_PREFIX: &str = "org.projectatomic.rpmostreed.Error";
pub const ERROR_FAILED: &str = "org.projectatomic.rpmostreed.Error.Failed";
pub const ERROR_INVALID_SYSROOT: &str = "org.projectatomic.rpmostreed.Error.InvalidSysroot";
pub const ERROR_NOT_AUTHORIZED: &str = "org.projectatomic.rpmostreed.Error.NotAuthorized";
pub const ERROR_UPDATE_IN_PROGRESS: &str = "org.projectatomic.rpmostreed.Error.UpdateInProgress";
pub const ERROR_INVALID_REFSPEC: &str = "org.projectatomic.rpmostreed.Error.InvalidRefspec";
/// "Transaction in progress" goes out as GIO's `G_IO_ERROR_BUSY`, which GDBus puts on the wire
/// under this name; GNOME Software matches on it (rpm-ostree#3070).
pub const ERROR_BUSY: &str = "org.gtk.GDBus.UnmappedGError.Quark._g_2dio_2derror_2dquark.Code26";

/// Exit code for "nothing changed" (`--unchanged-exit-77`) and "a deployment is pending"
/// (`status --pending-exit-77`).
pub const EXIT_UNCHANGED: i32 = 77;

/// The object path of a stateroot's `OS` object: `-` and `/` become `_`, other bytes outside
/// `[A-Za-z0-9_]` become `_XX` (hex), e.g. `fedora-silverblue` → `.../fedora_silverblue`.
pub fn os_object_path(osname: &str) -> String {
    let mut p = String::from(BASE_PATH);
    p.push('/');
    for b in osname.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => p.push(b as char),
            b'-' | b'/' => p.push('_'),
            _ => p.push_str(&format!("_{b:02x}")),
        }
    }
    p
}

/// rpm-ostree's polkit action ids.
pub mod action {
    pub const INSTALL_UNINSTALL_PACKAGES: &str =
        "org.projectatomic.rpmostree1.install-uninstall-packages";
    pub const INSTALL_LOCAL_PACKAGES: &str = "org.projectatomic.rpmostree1.install-local-packages";
    pub const OVERRIDE: &str = "org.projectatomic.rpmostree1.override";
    pub const DEPLOY: &str = "org.projectatomic.rpmostree1.deploy";
    pub const UPGRADE: &str = "org.projectatomic.rpmostree1.upgrade";
    pub const REBASE: &str = "org.projectatomic.rpmostree1.rebase";
    pub const ROLLBACK: &str = "org.projectatomic.rpmostree1.rollback";
    pub const BOOTCONFIG: &str = "org.projectatomic.rpmostree1.bootconfig";
    pub const RELOAD_DAEMON: &str = "org.projectatomic.rpmostree1.reload-daemon";
    pub const CANCEL: &str = "org.projectatomic.rpmostree1.cancel";
    pub const CLEANUP: &str = "org.projectatomic.rpmostree1.cleanup";
    pub const REPO_REFRESH: &str = "org.projectatomic.rpmostree1.repo-refresh";
    pub const REPO_MODIFY: &str = "org.projectatomic.rpmostree1.repo-modify";
    pub const CLIENT_MANAGEMENT: &str = "org.projectatomic.rpmostree1.client-management";
    pub const FINALIZE_DEPLOYMENT: &str = "org.projectatomic.rpmostree1.finalize-deployment";

    /// Every action id, for the policy file and its test.
    pub const ALL: &[&str] = &[
        INSTALL_UNINSTALL_PACKAGES,
        INSTALL_LOCAL_PACKAGES,
        OVERRIDE,
        DEPLOY,
        UPGRADE,
        REBASE,
        ROLLBACK,
        BOOTCONFIG,
        RELOAD_DAEMON,
        CANCEL,
        CLEANUP,
        REPO_REFRESH,
        REPO_MODIFY,
        CLIENT_MANAGEMENT,
        FINALIZE_DEPLOYMENT,
    ];
}

/// The polkit action a method needs (`None`: open to everyone). `UpdateDeployment` needs a set
/// computed from its modifiers; see [`update_deployment_actions`].
pub fn action_for_method(interface: &str, method: &str) -> Option<&'static str> {
    use action::*;
    match (interface, method) {
        (SYSROOT_INTERFACE, "GetOS" | "Reload") => None,
        (SYSROOT_INTERFACE, "ReloadConfig") => Some(RELOAD_DAEMON),
        (SYSROOT_INTERFACE, "RegisterClient" | "UnregisterClient") => Some(CLIENT_MANAGEMENT),
        (TRANSACTION_INTERFACE, "Cancel") => Some(CANCEL),
        (OS_INTERFACE, m) => match m {
            "GetDeploymentsRpmDiff"
            | "GetCachedUpdateRpmDiff"
            | "DownloadUpdateRpmDiff"
            | "GetCachedRebaseRpmDiff"
            | "DownloadRebaseRpmDiff"
            | "GetCachedDeployRpmDiff"
            | "DownloadDeployRpmDiff"
            | "RefreshMd" => Some(REPO_REFRESH),
            "ModifyYumRepo" => Some(REPO_MODIFY),
            "Deploy" => Some(DEPLOY),
            "Upgrade" | "AutomaticUpdateTrigger" => Some(UPGRADE),
            "Rebase" => Some(REBASE),
            "SetInitramfsState" | "KernelArgs" | "InitramfsEtc" => Some(BOOTCONFIG),
            "Cleanup" => Some(CLEANUP),
            "Rollback" | "ClearRollbackTarget" => Some(ROLLBACK),
            "PkgChange" => Some(INSTALL_UNINSTALL_PACKAGES),
            "FinalizeDeployment" => Some(FINALIZE_DEPLOYMENT),
            _ => None,
        },
        _ => None,
    }
}

/// The actions an `UpdateDeployment` call needs, all of which must be granted (rpm-ostree's
/// rules): rebase for `set-refspec`, deploy for `set-revision`, else upgrade unless
/// `no-pull-base`; install-uninstall for package changes or `no-layering`; install-local for
/// local packages; override for override changes or `no-overrides`; bootconfig for
/// `no-initramfs`; override as the fallback when nothing else applies.
pub fn update_deployment_actions(
    modifier_keys: &[&str],
    option_keys: &[&str],
) -> Vec<&'static str> {
    use action::*;
    let has_mod = |k: &str| modifier_keys.contains(&k);
    let has_opt = |k: &str| option_keys.contains(&k);
    let mut actions = Vec::new();
    if has_mod("set-refspec") {
        actions.push(REBASE);
    } else if has_mod("set-revision") {
        actions.push(DEPLOY);
    } else if !has_opt("no-pull-base") {
        actions.push(UPGRADE);
    }
    if [
        "install-packages",
        "uninstall-packages",
        "install-modules",
        "uninstall-modules",
    ]
    .iter()
    .any(|k| has_mod(k))
        || has_opt("no-layering")
    {
        actions.push(INSTALL_UNINSTALL_PACKAGES);
    }
    if [
        "install-local-packages",
        "install-local-fileoverride-packages",
    ]
    .iter()
    .any(|k| has_mod(k))
    {
        actions.push(INSTALL_LOCAL_PACKAGES);
    }
    if [
        "override-remove-packages",
        "override-reset-packages",
        "override-replace-packages",
        "override-replace-local-packages",
    ]
    .iter()
    .any(|k| has_mod(k))
        || has_opt("no-overrides")
    {
        actions.push(OVERRIDE);
    }
    if has_opt("no-initramfs") {
        actions.push(BOOTCONFIG);
    }
    if actions.is_empty() {
        actions.push(OVERRIDE);
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_path_escaping() {
        assert_eq!(
            os_object_path("fedora-silverblue"),
            "/org/projectatomic/rpmostree1/fedora_silverblue"
        );
        assert_eq!(os_object_path("a/b"), "/org/projectatomic/rpmostree1/a_b");
        assert_eq!(os_object_path("a.b"), "/org/projectatomic/rpmostree1/a_2eb");
        assert_eq!(
            os_object_path("fcos_1"),
            "/org/projectatomic/rpmostree1/fcos_1"
        );
    }

    #[test]
    fn method_actions() {
        assert_eq!(
            action_for_method(OS_INTERFACE, "Deploy"),
            Some(action::DEPLOY)
        );
        assert_eq!(
            action_for_method(OS_INTERFACE, "GetDeploymentBootConfig"),
            None
        );
        assert_eq!(action_for_method(SYSROOT_INTERFACE, "GetOS"), None);
        assert_eq!(
            action_for_method(OS_INTERFACE, "KernelArgs"),
            Some(action::BOOTCONFIG)
        );
        assert_eq!(action::ALL.len(), 15);
    }

    #[test]
    fn update_deployment_action_sets() {
        assert_eq!(
            update_deployment_actions(&["set-refspec"], &[]),
            [action::REBASE]
        );
        assert_eq!(
            update_deployment_actions(&["set-revision"], &[]),
            [action::DEPLOY]
        );
        assert_eq!(
            update_deployment_actions(&["install-packages"], &["no-pull-base"]),
            [action::INSTALL_UNINSTALL_PACKAGES]
        );
        assert_eq!(
            update_deployment_actions(&[], &["no-pull-base"]),
            [action::OVERRIDE]
        );
        assert_eq!(
            update_deployment_actions(&["set-refspec", "install-packages"], &[]),
            [action::REBASE, action::INSTALL_UNINSTALL_PACKAGES]
        );
    }
}

#[cfg(test)]
mod packaging_tests {
    use super::*;

    const POLICY: &str = include_str!("../../packaging/org.projectatomic.rpmostree1.policy");
    const BUSCONF: &str = include_str!("../../packaging/org.projectatomic.rpmostree1.conf");
    const ACTIVATION: &str = include_str!("../../packaging/org.projectatomic.rpmostree1.service");

    #[test]
    fn polkit_policy_declares_every_action() {
        let declared = POLICY.matches("<action id=").count();
        assert_eq!(declared, action::ALL.len());
        for id in action::ALL {
            assert!(
                POLICY.contains(&format!("<action id=\"{id}\">")),
                "{id} missing from the polkit policy"
            );
        }
    }

    #[test]
    fn bus_policy_matches_the_interfaces() {
        assert!(BUSCONF.contains(&format!("<allow own=\"{BUS_NAME}\"/>")));
        for iface in [OS_INTERFACE, SYSROOT_INTERFACE] {
            assert!(
                BUSCONF.contains(&format!("send_interface=\"{iface}\"")),
                "{iface}"
            );
        }
        assert!(ACTIVATION.contains(&format!("Name={BUS_NAME}")));
    }
}
