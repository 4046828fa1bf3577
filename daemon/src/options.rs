//! Reading `a{sv}` options (typed in `strata_api::options`) and method arguments into the
//! core's plain-data operations.
//!
//! As in rpm-ostree: a key the method does not know is ignored (logged at debug), a known key
//! of the wrong type is an error naming it, a flag at its default value is accepted, and a key
//! that asks for something Strata cannot do yet is refused by name.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use strata_api::options::{self as api, RawOptions};
use strata_core::kargs::KargsEdit;
use strata_core::{
    CleanupOptions, DeployOptions, KargsOptions, OpContext, Outcome, RebaseOptions, Revision,
    RollbackOptions, Sysroot, UpgradeOptions,
};
use zbus::zvariant::OwnedValue;

use crate::error::{Error, Result};

/// Options as they arrive on the bus.
pub(crate) type Options = HashMap<String, OwnedValue>;

/// Read `raw` as `T`, logging the keys it does not know.
pub(crate) fn read<T>(raw: &RawOptions, kind: &'static str, method: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + zbus::zvariant::Type,
{
    let parsed: T = api::read(raw, kind).map_err(|e| Error::InvalidArgs(e.to_string()))?;
    let unknown = api::unknown_keys(raw, &parsed);
    if !unknown.is_empty() {
        let shown: Vec<String> = unknown.iter().take(8).map(|k| bounded(k)).collect();
        tracing::debug!("{method}: ignoring {kind} keys rpm-ostree does not know: {shown:?}");
    }
    Ok(parsed)
}

/// A caller-supplied string for a log line: at most 64 characters, control characters escaped,
/// quoted.
fn bounded(s: &str) -> String {
    format!("\"{}\"", strata_api::text::printable(s, 64))
}

/// The longest client id or update driver name accepted.
pub(crate) const MAX_NAME_BYTES: usize = 256;

/// A name a caller gives itself (`RegisterClient` id, `register-driver`): it ends up in logs,
/// in `status` and in other clients' terminals, so it must be short plain text.
pub(crate) fn plain_name(key: &str, value: &str) -> Result<()> {
    if strata_api::text::is_plain_name(value, MAX_NAME_BYTES) {
        Ok(())
    } else {
        Err(Error::InvalidArgs(format!(
            "Option \"{key}\" must be 1 to {MAX_NAME_BYTES} bytes of text without control \
             characters, got {}",
            bounded(value)
        )))
    }
}

fn not_yet(kind: &str, key: &str) -> Error {
    Error::InvalidArgs(format!("{kind} \"{key}\" is not supported by Strata yet"))
}

/// Deploy-family options, refusing those that ask for what Strata cannot do yet.
fn deploy_options(raw: &RawOptions, method: &str) -> Result<api::DeployOptions> {
    let o: api::DeployOptions = read(raw, "Option", method)?;
    match o.unsupported() {
        Some(key) => Err(not_yet("Option", key)),
        None => Ok(o),
    }
}

/// A canonical text of the arguments of a call, to recognise an identical request.
pub(crate) fn canonical(parts: &[String], opts: &[&Options]) -> String {
    let mut s = parts.join("\u{1f}");
    for o in opts {
        let mut kv: Vec<(&String, &OwnedValue)> = o.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        s.push('\u{1e}');
        for (k, v) in kv {
            s.push_str(&format!("{k}={v:?};"));
        }
    }
    s
}

/// What a transaction does: plain data, so it can cross into the blocking worker.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Upgrade(UpgradeOptions),
    Deploy(DeployOptions),
    Rebase(RebaseOptions),
    Rollback(RollbackOptions),
    Cleanup(CleanupOptions),
    Kargs(KargsOptions),
    Packages(strata_core::PackageChange),
    Finalize(strata_core::finalize::FinalizeOptions),
    /// Fetch a target's package database for the rpm-diff methods (`Download…RpmDiff`).
    PackageDiff(String, strata_core::update::DiffTarget),
    /// `RefreshMd`: (stateroot, force).
    RefreshMd(String, bool),
    /// `ModifyYumRepo`: (stateroot, repo id, settings).
    ModifyRepo(String, String, std::collections::BTreeMap<String, String>),
    /// Only record an update driver (`Deploy("", {register-driver})`).
    RegisterDriver(Registration),
    /// Record an update driver, then run the operation.
    Registered(Registration, Box<Op>),
}

/// An update driver to record in a run dir.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub run_dir: std::path::PathBuf,
    pub driver: crate::driver::UpdateDriver,
}

impl Registration {
    fn record(&self, ctx: &OpContext) -> anyhow::Result<()> {
        crate::driver::save(&self.run_dir, &self.driver)?;
        ctx.message(format!(
            "Registered {} as the update driver",
            self.driver.describe()
        ));
        Ok(())
    }
}

impl Op {
    /// Whether the operation leaves a finalization-locked deployment.
    pub(crate) fn lock_finalization(&self) -> bool {
        match self {
            Op::Upgrade(o) => o.lock_finalization && !o.check_only && !o.download_only,
            Op::Deploy(o) => o.lock_finalization && !o.download_only,
            Op::Rebase(o) => o.lock_finalization && !o.download_only,
            Op::Kargs(o) => o.lock_finalization,
            Op::Packages(o) => o.lock_finalization && !o.dry_run && !o.download_only,
            Op::Registered(_, op) => op.lock_finalization(),
            _ => false,
        }
    }

    pub(crate) fn run(&self, sysroot: &Sysroot, ctx: &OpContext) -> anyhow::Result<Outcome> {
        match self {
            Op::RegisterDriver(r) => {
                r.record(ctx)?;
                Ok(Outcome::Unchanged)
            }
            Op::Registered(r, op) => {
                r.record(ctx)?;
                op.run(sysroot, ctx)
            }
            Op::Upgrade(o) => strata_core::upgrade(sysroot, o, ctx),
            Op::Deploy(o) => strata_core::deploy(sysroot, o, ctx),
            Op::Rebase(o) => strata_core::rebase(sysroot, o, ctx),
            Op::Rollback(o) => strata_core::rollback(sysroot, o, ctx),
            Op::Cleanup(o) => strata_core::cleanup(sysroot, o, ctx),
            Op::Kargs(o) => strata_core::kargs(sysroot, o, ctx),
            Op::Packages(o) => strata_core::pkg_change(sysroot, o, ctx),
            Op::Finalize(o) => strata_core::finalize::finalize(sysroot, o, ctx),
            Op::RefreshMd(osname, force) => {
                strata_core::repos::refresh(sysroot, Some(osname), *force, ctx)
            }
            Op::ModifyRepo(osname, id, settings) => {
                strata_core::repos::modify(sysroot, Some(osname), id, settings, ctx)
            }
            Op::PackageDiff(osname, target) => {
                strata_core::update::download_diff(sysroot, Some(osname), target, ctx)?;
                Ok(Outcome::Unchanged)
            }
        }
    }
}

/// A validated request: the operation, its title, and whether to reboot afterwards.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub op: Op,
    pub title: String,
    pub reboot: bool,
    pub driver: DriverIntent,
}

/// What a request means for the update driver.
#[derive(Debug, Clone, Default)]
pub(crate) struct DriverIntent {
    /// It changes what the system updates to (upgrade, deploy, rebase), so a registered driver
    /// must agree.
    pub guarded: bool,
    /// `bypass-driver`: go ahead even though a driver is registered.
    pub bypass: bool,
    /// `register-driver`: the caller registers itself as the driver.
    pub register: Option<String>,
}

impl DriverIntent {
    fn guarded(o: &api::DeployOptions) -> Self {
        Self {
            guarded: true,
            bypass: o.bypass_driver.unwrap_or(false),
            register: None,
        }
    }
}

/// `reboot`: only when this daemon manages the booted host.
pub(crate) fn reboot_option(reboot: Option<bool>, sysroot: &Path) -> Result<bool> {
    let reboot = reboot.unwrap_or(false);
    if reboot && sysroot != Path::new("/") {
        return Err(Error::InvalidArgs(format!(
            "Option \"reboot\" is only possible when managing the booted system, not the sysroot {}",
            sysroot.display()
        )));
    }
    Ok(reboot)
}

pub(crate) fn parse_revision(s: &str) -> Result<Revision> {
    Revision::parse(s).map_err(|e| Error::Failed(format!("{e:#}")))
}

/// The longest refspec a caller may send (an ostree ref is at most a few hundred bytes).
const MAX_REFSPEC_BYTES: usize = 1024;

/// A refspec argument: bounded, one line.
pub(crate) fn refspec_arg(refspec: &str) -> Result<()> {
    if refspec.len() > MAX_REFSPEC_BYTES || refspec.chars().any(char::is_control) {
        return Err(Error::InvalidRefspec(format!(
            "Invalid refspec {}: at most {MAX_REFSPEC_BYTES} bytes without control characters",
            bounded(refspec)
        )));
    }
    Ok(())
}

/// `RefreshMd`.
pub(crate) fn refresh_md(osname: &str, opts: &Options) -> Result<Request> {
    let r: api::RefreshMdOptions = read(opts, "Option", "RefreshMd")?;
    let force = r.force.unwrap_or(false);
    Ok(Request {
        title: if force {
            "refresh-md (force)"
        } else {
            "refresh-md"
        }
        .into(),
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::RefreshMd(osname.to_string(), force),
    })
}

/// The most entries of a caller's list (package names, settings) one call may pass.
pub(crate) const MAX_LIST_ITEMS: usize = 256;

/// A list of names from a caller: at most [`MAX_LIST_ITEMS`], each plain text of at most
/// [`MAX_NAME_BYTES`].
pub(crate) fn name_list(what: &str, items: &[String]) -> Result<()> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(Error::InvalidArgs(format!(
            "At most {MAX_LIST_ITEMS} {what} per call, got {}",
            items.len()
        )));
    }
    for i in items {
        if !strata_api::text::is_plain_name(i, MAX_NAME_BYTES) {
            return Err(Error::InvalidArgs(format!(
                "Each of {what} must be 1 to {MAX_NAME_BYTES} bytes of text without control characters, got {}",
                bounded(i)
            )));
        }
    }
    Ok(())
}

/// `ModifyYumRepo`.
pub(crate) fn modify_yum_repo(
    osname: &str,
    repo_id: &str,
    settings: &HashMap<String, String>,
) -> Result<Request> {
    plain_name("repo_id", repo_id)?;
    let keys: Vec<String> = settings.keys().cloned().collect();
    let values: Vec<String> = settings.values().cloned().collect();
    name_list("settings", &keys)?;
    if values
        .iter()
        .any(|v| v.len() > MAX_NAME_BYTES || v.chars().any(char::is_control))
    {
        return Err(Error::InvalidArgs(format!(
            "Each setting's value must be at most {MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(Request {
        title: "modify-yum-repo".into(),
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::ModifyRepo(
            osname.to_string(),
            repo_id.to_string(),
            settings.clone().into_iter().collect(),
        ),
    })
}

/// `Download…RpmDiff`: a `package-diff` transaction.
pub(crate) fn package_diff(osname: &str, target: strata_core::update::DiffTarget) -> Request {
    Request {
        title: "package-diff".into(),
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::PackageDiff(osname.to_string(), target),
    }
}

pub(crate) fn upgrade(osname: &str, opts: &Options, sysroot: &Path) -> Result<Request> {
    let r = deploy_options(opts, "Upgrade")?;
    let o = UpgradeOptions {
        osname: Some(osname.to_string()),
        check_only: false,
        download_only: r.download_only.unwrap_or(false),
        cache_only: r.cache_only.unwrap_or(false),
        allow_downgrade: r.allow_downgrade.unwrap_or(false),
        lock_finalization: r.lock_finalization.unwrap_or(false),
    };
    let title = if o.download_only {
        "upgrade (download only)"
    } else {
        "upgrade"
    };
    Ok(Request {
        title: title.into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver: DriverIntent::guarded(&r),
        op: Op::Upgrade(o),
    })
}

pub(crate) fn deploy(
    osname: &str,
    revision: &str,
    opts: &Options,
    sysroot: &Path,
) -> Result<Request> {
    let r = deploy_options(opts, "Deploy")?;
    let mut driver = DriverIntent::guarded(&r);
    driver.register = r.register_driver.clone().filter(|s| !s.is_empty());
    if let Some(name) = &driver.register {
        plain_name("register-driver", name)?;
    }
    if revision.is_empty() {
        let Some(name) = driver.register.clone() else {
            return Err(Error::Failed(
                "Missing revision: expected a checksum, revision=CHECKSUM or version=VERSION (an empty one only registers an update driver, with \"register-driver\")".into(),
            ));
        };
        // Only the registration; the Op is completed with the caller's unit by the caller.
        return Ok(Request {
            title: format!("register update driver {name}"),
            reboot: reboot_option(r.reboot, sysroot)?,
            driver,
            op: Op::RegisterDriver(Registration {
                run_dir: Default::default(),
                driver: crate::driver::UpdateDriver {
                    name,
                    sd_unit: String::new(),
                    client_id: None,
                },
            }),
        });
    }
    let mut o = DeployOptions::new(parse_revision(revision)?);
    o.osname = Some(osname.to_string());
    o.skip_branch_check = r.skip_branch_check.unwrap_or(false);
    o.disallow_downgrade = !r.allow_downgrade.unwrap_or(true);
    o.lock_finalization = r.lock_finalization.unwrap_or(false);
    o.cache_only = r.cache_only.unwrap_or(false);
    o.download_only = r.download_only.unwrap_or(false);
    Ok(Request {
        title: "deploy".into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver,
        op: Op::Deploy(o),
    })
}

pub(crate) fn rebase(
    osname: &str,
    opts: &Options,
    refspec: &str,
    packages: &[String],
    sysroot: &Path,
) -> Result<Request> {
    if !packages.is_empty() {
        return Err(Error::Failed(format!(
            "Rebasing and installing packages in one transaction is not supported yet (requested: {}); rebase, then install",
            bounded(&packages.join(", "))
        )));
    }
    let r = deploy_options(opts, "Rebase")?;
    if refspec.is_empty() {
        return Err(Error::InvalidRefspec(
            "Invalid refspec \"\": expected REMOTE:REF, :REF or REMOTE:".into(),
        ));
    }
    let revision = r.revision.as_deref().map(parse_revision).transpose()?;
    let o = RebaseOptions {
        osname: Some(osname.to_string()),
        refspec: refspec.to_string(),
        revision,
        skip_purge: r.skip_purge.unwrap_or(false),
        disallow_downgrade: !r.allow_downgrade.unwrap_or(true),
        lock_finalization: r.lock_finalization.unwrap_or(false),
        cache_only: r.cache_only.unwrap_or(false),
        download_only: r.download_only.unwrap_or(false),
    };
    Ok(Request {
        title: "rebase".into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver: DriverIntent::guarded(&r),
        op: Op::Rebase(o),
    })
}

pub(crate) fn rollback(osname: &str, opts: &Options, sysroot: &Path) -> Result<Request> {
    let r: api::RollbackOptions = read(opts, "Option", "Rollback")?;
    Ok(Request {
        title: "rollback".into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Rollback(RollbackOptions {
            osname: Some(osname.to_string()),
        }),
    })
}

pub(crate) fn clear_rollback(osname: &str, opts: &Options, sysroot: &Path) -> Result<Request> {
    let r: api::RollbackOptions = read(opts, "Option", "ClearRollbackTarget")?;
    Ok(Request {
        title: "clear-rollback".into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Cleanup(CleanupOptions {
            osname: Some(osname.to_string()),
            rollback: true,
            ..Default::default()
        }),
    })
}

pub(crate) fn cleanup(osname: &str, elements: &[String]) -> Result<Request> {
    let mut o = CleanupOptions {
        osname: Some(osname.to_string()),
        ..Default::default()
    };
    for e in elements {
        match e.as_str() {
            "base" => o.base = true,
            "pending-deploy" => o.pending = true,
            "rollback-deploy" => o.rollback = true,
            "repomd" => o.repomd = true,
            other => {
                return Err(Error::InvalidArgs(format!(
                    "Cleanup element \"{other}\" is not supported: expected base, pending-deploy, rollback-deploy or repomd"
                )))
            }
        }
    }
    Ok(Request {
        title: "cleanup".into(),
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::Cleanup(o),
    })
}

pub(crate) fn kernel_args(
    osname: &str,
    existing: &str,
    added: &[String],
    replaced: &[String],
    removed: &[String],
    opts: &Options,
    sysroot: &Path,
) -> Result<Request> {
    let r: api::KernelArgsOptions = read(opts, "Option", "KernelArgs")?;
    let edit = KargsEdit {
        append: added.to_vec(),
        append_if_missing: r.append_if_missing.unwrap_or_default(),
        delete: removed.to_vec(),
        delete_if_present: r.delete_if_present.unwrap_or_default(),
        replace: replaced.to_vec(),
        replace_all: r.final_kernel_args,
    };
    edit.validate().map_err(Error::failed)?;
    Ok(Request {
        title: "kernel-args".into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Kargs(KargsOptions {
            osname: Some(osname.to_string()),
            edit,
            existing: Some(existing.to_string()).filter(|s| !s.trim().is_empty()),
            deploy_index: r.deploy_index.map(|i| i as usize),
            lock_finalization: r.lock_finalization.unwrap_or(false),
        }),
    })
}

pub(crate) fn finalize(opts: &Options) -> Result<Request> {
    let r: api::FinalizeOptions = read(opts, "Option", "FinalizeDeployment")?;
    Ok(Request {
        title: "finalize-deployment".into(),
        // Finalizing means rebooting into the staged deployment.
        reboot: true,
        driver: DriverIntent::default(),
        op: Op::Finalize(strata_core::finalize::FinalizeOptions {
            checksum: r.checksum,
            allow_missing_checksum: r.allow_missing_checksum.unwrap_or(false),
            allow_unlocked: r.allow_unlocked.unwrap_or(false),
        }),
    })
}

/// `AutomaticUpdateTrigger`'s effective mode: `None` when automatic updates are off.
pub(crate) fn trigger_mode(opts: &Options, policy: &str) -> Result<Option<&'static str>> {
    let r = deploy_options(opts, "AutomaticUpdateTrigger")?;
    let mode = r.mode.unwrap_or_else(|| "auto".into());
    let mode = if mode == "auto" {
        policy.to_string()
    } else {
        mode
    };
    // rpm-ostree's spellings: "ex-stage" and "apply" are older names of "stage".
    match mode.as_str() {
        "none" | "off" => Ok(None),
        "check" => Ok(Some("check")),
        "stage" | "ex-stage" | "apply" => Ok(Some("stage")),
        other => Err(Error::InvalidArgs(format!(
            "Option \"mode\" must be auto, none, check or stage, got {}",
            bounded(other)
        ))),
    }
}

pub(crate) fn automatic_update(osname: &str, mode: &str) -> Request {
    let check_only = mode == "check";
    Request {
        title: if check_only {
            "upgrade (check only)".into()
        } else {
            "upgrade".into()
        },
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::Upgrade(UpgradeOptions {
            osname: Some(osname.to_string()),
            check_only,
            ..Default::default()
        }),
    }
}

/// Options rpm-ostree reads only for package changes, accepted there.
const PACKAGE_OPTIONS: &[&str] = &["dry-run", "no-pull-base", "no-layering"];

/// The modifier carrying local RPM files, as rpm-ostree's clients send them.
const INSTALL_LOCAL: &str = "install-local-packages";

/// The most local packages one call may pass.
const MAX_LOCAL_PACKAGES: usize = 256;

/// The files of `install-local-packages` (`ah`: the message's file descriptors), each checked
/// to be open for reading a regular file.
fn local_files(modifiers: &Options) -> Result<Vec<Arc<std::fs::File>>> {
    use std::os::fd::AsFd;
    use zbus::zvariant::Value;
    let Some(value) = modifiers.get(INSTALL_LOCAL) else {
        return Ok(Vec::new());
    };
    let wrong = || {
        Error::InvalidArgs(format!(
            "Modifier \"{INSTALL_LOCAL}\" must be an array of file descriptors (ah), got {}",
            value.value_signature()
        ))
    };
    let Value::Array(fds) = &**value else {
        return Err(wrong());
    };
    if fds.len() > MAX_LOCAL_PACKAGES {
        return Err(Error::InvalidArgs(format!(
            "Modifier \"{INSTALL_LOCAL}\": at most {MAX_LOCAL_PACKAGES} packages per call"
        )));
    }
    fds.iter()
        .map(|v| {
            let Value::Fd(fd) = v else {
                return Err(wrong());
            };
            let file = std::fs::File::from(
                fd.as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Error::Failed(format!("Duplicating a local package's fd: {e}")))?,
            );
            let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            if !regular {
                return Err(Error::InvalidArgs(format!(
                    "Modifier \"{INSTALL_LOCAL}\": each descriptor must be an .rpm file open for reading"
                )));
            }
            Ok(Arc::new(file))
        })
        .collect()
}

/// The package part of an `UpdateDeployment` (or `PkgChange`) call.
struct PackageRequest {
    install: Vec<String>,
    install_local: Vec<Arc<std::fs::File>>,
    uninstall: Vec<String>,
    uninstall_all: bool,
}

impl PackageRequest {
    /// `Some` when the call changes layered packages.
    fn of(
        m: &api::Modifiers,
        r: &api::DeployOptions,
        install_local: Vec<Arc<std::fs::File>>,
    ) -> Option<PackageRequest> {
        let p = PackageRequest {
            install: m.install_packages.clone().unwrap_or_default(),
            install_local,
            uninstall: m.uninstall_packages.clone().unwrap_or_default(),
            uninstall_all: r.no_layering == Some(true),
        };
        let installs = !p.install.is_empty() || !p.install_local.is_empty();
        (installs || !p.uninstall.is_empty() || p.uninstall_all).then_some(p)
    }

    fn title(&self) -> &'static str {
        match (
            self.install.is_empty() && self.install_local.is_empty(),
            self.uninstall.is_empty() && !self.uninstall_all,
        ) {
            (false, true) => "install",
            (true, false) => "uninstall",
            _ => "install/uninstall",
        }
    }

    fn change(self, osname: &str, r: &api::DeployOptions) -> strata_core::PackageChange {
        strata_core::PackageChange {
            osname: Some(osname.to_string()),
            install: self.install,
            install_local: self.install_local,
            uninstall: self.uninstall,
            uninstall_all: self.uninstall_all,
            idempotent: r.idempotent_layering.unwrap_or(false),
            allow_inactive: r.allow_inactive.unwrap_or(false),
            dry_run: r.dry_run.unwrap_or(false),
            cache_only: r.cache_only.unwrap_or(false),
            download_only: r.download_only.unwrap_or(false),
            lock_finalization: r.lock_finalization.unwrap_or(false),
        }
    }
}

/// rpm-ostree's legacy `PkgChange(options, added, removed)`: `UpdateDeployment` with
/// `install-packages` and `uninstall-packages`.
pub(crate) fn pkg_change(
    osname: &str,
    opts: &Options,
    added: &[String],
    removed: &[String],
    sysroot: &Path,
) -> Result<Request> {
    let m = api::Modifiers {
        install_packages: Some(added.to_vec()),
        uninstall_packages: Some(removed.to_vec()),
        ..Default::default()
    };
    let r: api::DeployOptions = read(opts, "Option", "PkgChange")?;
    let p = PackageRequest::of(&m, &r, Vec::new())
        .ok_or_else(|| Error::InvalidArgs("PkgChange: no packages to add or remove".to_string()))?;
    if let Some(key) = r.unsupported().filter(|k| !PACKAGE_OPTIONS.contains(k)) {
        return Err(not_yet("Option", key));
    }
    Ok(Request {
        title: p.title().into(),
        reboot: reboot_option(r.reboot, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Packages(p.change(osname, &r)),
    })
}

pub(crate) fn update_deployment(
    osname: &str,
    modifiers: &Options,
    opts: &Options,
    sysroot: &Path,
) -> Result<Request> {
    let m: api::Modifiers = read(modifiers, "Modifier", "UpdateDeployment")?;
    if let Some(key) = m.unsupported().or_else(|| {
        api::FD_MODIFIERS
            .iter()
            .copied()
            .filter(|k| *k != INSTALL_LOCAL)
            .find(|k| modifiers.contains_key(*k))
    }) {
        return Err(not_yet("Modifier", key));
    }
    let r: api::DeployOptions = read(opts, "Option", "UpdateDeployment")?;
    let packages = PackageRequest::of(&m, &r, local_files(modifiers)?);
    if let Some(key) = r
        .unsupported()
        .filter(|k| !(packages.is_some() && PACKAGE_OPTIONS.contains(k)))
    {
        return Err(not_yet("Option", key));
    }
    let reboot = reboot_option(r.reboot, sysroot)?;
    if let Some(p) = packages {
        if m.set_refspec.is_some() || m.set_revision.is_some() {
            return Err(not_yet(
                "Modifier",
                "install-packages with set-refspec or set-revision",
            ));
        }
        return Ok(Request {
            title: p.title().into(),
            reboot,
            driver: DriverIntent::default(),
            op: Op::Packages(p.change(osname, &r)),
        });
    }
    let refspec = m.set_refspec;
    let revision = m.set_revision;
    let lock_finalization = r.lock_finalization.unwrap_or(false);
    let cache_only = r.cache_only.unwrap_or(false);
    let download_only = r.download_only.unwrap_or(false);
    // rpm-ostree: allow-downgrade defaults to true when the target is explicit.
    let explicit = refspec.is_some() || revision.is_some();
    let driver = DriverIntent {
        guarded: explicit,
        ..DriverIntent::guarded(&r)
    };
    let allow_downgrade = r.allow_downgrade.unwrap_or(explicit);
    let (title, op) = match (refspec, revision) {
        (Some(refspec), revision) => {
            if refspec.is_empty() {
                return Err(Error::InvalidRefspec(
                    "Invalid refspec \"\": expected REMOTE:REF, :REF or REMOTE:".into(),
                ));
            }
            (
                "rebase",
                Op::Rebase(RebaseOptions {
                    osname: Some(osname.to_string()),
                    refspec,
                    revision: revision.map(|s| parse_revision(&s)).transpose()?,
                    skip_purge: r.skip_purge.unwrap_or(false),
                    disallow_downgrade: !allow_downgrade,
                    lock_finalization,
                    cache_only,
                    download_only,
                }),
            )
        }
        (None, Some(revision)) => {
            let mut o = DeployOptions::new(parse_revision(&revision)?);
            o.osname = Some(osname.to_string());
            o.skip_branch_check = r.skip_branch_check.unwrap_or(false);
            o.disallow_downgrade = !allow_downgrade;
            o.lock_finalization = lock_finalization;
            o.cache_only = cache_only;
            o.download_only = download_only;
            ("deploy", Op::Deploy(o))
        }
        (None, None) => (
            if download_only {
                "upgrade (download only)"
            } else {
                "upgrade"
            },
            Op::Upgrade(UpgradeOptions {
                osname: Some(osname.to_string()),
                check_only: false,
                download_only,
                cache_only,
                allow_downgrade,
                lock_finalization,
            }),
        ),
    };
    Ok(Request {
        title: title.into(),
        reboot,
        driver,
        op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::Value;

    fn opts(kv: &[(&str, Value<'static>)]) -> Options {
        kv.iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn unknown_ignored_default_flags_accepted_mistyped_and_unsupported_named() {
        let o = opts(&[("foo", Value::Bool(true)), ("dry-run", Value::Bool(false))]);
        assert!(upgrade("os", &o, Path::new("/tmp/x")).is_ok());
        let o = opts(&[("reboot", Value::from("yes"))]);
        let e = upgrade("os", &o, Path::new("/tmp/x")).unwrap_err();
        assert_eq!(
            e.message(),
            "Option \"reboot\" has the wrong type: expected a value of signature `b`, got a \
             value of signature `s`"
        );
        let o = opts(&[("reboot", Value::Bool(true))]);
        let e = upgrade("os", &o, Path::new("/tmp/x")).unwrap_err();
        assert!(e.message().contains("reboot"), "{e}");
        let o = opts(&[("dry-run", Value::Bool(true))]);
        let e = upgrade("os", &o, Path::new("/tmp/x")).unwrap_err();
        assert_eq!(
            e.message(),
            "Option \"dry-run\" is not supported by Strata yet"
        );
        let o = opts(&[(
            "override-remove-packages",
            Value::from(vec!["x".to_string()]),
        )]);
        let e = update_deployment("os", &o, &Options::new(), Path::new("/")).unwrap_err();
        assert_eq!(
            e.message(),
            "Modifier \"override-remove-packages\" is not supported by Strata yet"
        );
        // Package changes are accepted, with their options; dry-run elsewhere is not.
        let o = opts(&[("install-packages", Value::from(vec!["x".to_string()]))]);
        let dry = opts(&[
            ("dry-run", Value::Bool(true)),
            ("idempotent-layering", Value::Bool(true)),
        ]);
        let r = update_deployment("os", &o, &dry, Path::new("/")).unwrap();
        let Op::Packages(p) = r.op else {
            panic!("{r:?}")
        };
        assert!(p.dry_run && p.idempotent && p.install == ["x"]);
        let e = update_deployment("os", &Options::new(), &dry, Path::new("/")).unwrap_err();
        assert_eq!(
            e.message(),
            "Option \"dry-run\" is not supported by Strata yet"
        );
        let o = opts(&[("install-packages", Value::from(Vec::<String>::new()))]);
        assert!(update_deployment("os", &o, &Options::new(), Path::new("/")).is_ok());
    }

    #[test]
    fn local_packages_are_file_descriptors_of_regular_files() {
        use zbus::zvariant::Fd;
        let fds = |f: &std::fs::File| -> Options {
            let v = Value::from(vec![Fd::from(f)]).try_to_owned().unwrap();
            [(INSTALL_LOCAL.to_string(), v)].into_iter().collect()
        };
        let file = tempfile::tempfile().unwrap();
        let o = fds(&file);
        let r = update_deployment("os", &o, &Options::new(), Path::new("/")).unwrap();
        let Op::Packages(p) = r.op else {
            panic!("{r:?}")
        };
        assert_eq!(p.install_local.len(), 1);
        assert_eq!(r.title, "install");
        // Names instead of descriptors, and a directory instead of a file, are refused.
        let o = opts(&[(INSTALL_LOCAL, Value::from(vec!["/tmp/x.rpm".to_string()]))]);
        let e = update_deployment("os", &o, &Options::new(), Path::new("/")).unwrap_err();
        assert!(
            e.message()
                .contains("array of file descriptors (ah), got as"),
            "{e}"
        );
        let o = fds(&std::fs::File::open("/").unwrap());
        let e = update_deployment("os", &o, &Options::new(), Path::new("/")).unwrap_err();
        assert!(e.message().contains(".rpm file open for reading"), "{e}");
    }

    #[test]
    fn string_arrays() {
        let o = opts(&[("append-if-missing", Value::from(vec!["a=1".to_string()]))]);
        let req = kernel_args("os", "", &[], &[], &[], &o, Path::new("/x")).unwrap();
        match req.op {
            Op::Kargs(k) => assert_eq!(k.edit.append_if_missing, ["a=1"]),
            o => panic!("{o:?}"),
        }
        let o = opts(&[("append-if-missing", Value::from("a=1"))]);
        let e = kernel_args("os", "", &[], &[], &[], &o, Path::new("/x")).unwrap_err();
        assert!(
            e.message()
                .starts_with("Option \"append-if-missing\" has the wrong type"),
            "{e}"
        );
    }

    #[test]
    fn canonical_is_order_independent() {
        let a = opts(&[("a", Value::Bool(true)), ("b", Value::from("x"))]);
        let b = opts(&[("b", Value::from("x")), ("a", Value::Bool(true))]);
        assert_eq!(canonical(&[], &[&a]), canonical(&[], &[&b]));
        let c = opts(&[("a", Value::Bool(false))]);
        assert_ne!(canonical(&[], &[&a]), canonical(&[], &[&c]));
    }
}
