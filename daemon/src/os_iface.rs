//! `org.projectatomic.rpmostree1.OS`, one object per stateroot.

use std::collections::HashMap;
use std::sync::Arc;

use strata_api::names::{self, action_for_method, update_deployment_actions, OS_INTERFACE};
use strata_api::wire::deployment_to_dict;
use zbus::message::Header;
use zbus::zvariant::{OwnedValue, Value};

use crate::daemon::Daemon;
use crate::driver;
use crate::error::{Error, Result};
use crate::options::{self, canonical, Op, Options, Request};
use crate::polkit;
use crate::sysroot_iface::sender;
use crate::transaction::{self, Caller, Transactions};
use strata_core::db::{Package, PackageDiff};
use strata_core::update::{DiffTarget, TargetDiff};

/// One package change of an rpm-diff: `(name, type, {"PreviousPackage": (name, evr, arch),
/// "NewPackage": …})`, type 0 added … (see `strata_core::db`).
type RpmDiffEntry = (String, u32, HashMap<String, OwnedValue>);

#[derive(Debug)]
pub(crate) struct OsIface {
    d: Arc<Daemon>,
    txns: Arc<Transactions>,
    name: String,
}

impl OsIface {
    pub(crate) fn new(d: Arc<Daemon>, txns: Arc<Transactions>, name: String) -> Self {
        Self { d, txns, name }
    }

    async fn authorize(&self, sender: &str, actions: &[&str]) -> Result<u32> {
        match polkit::authorize(&self.d, sender, actions).await? {
            Some(uid) => Ok(uid),
            None => self.d.caller_uid(sender).await,
        }
    }

    /// Authorize `method`, then start (or join) its transaction.
    async fn transaction(
        &self,
        method: &str,
        hdr: &Header<'_>,
        key: String,
        make: impl FnOnce() -> Result<Request>,
    ) -> Result<String> {
        let sender = sender(hdr)?;
        let actions: Vec<&str> = action_for_method(OS_INTERFACE, method)
            .into_iter()
            .collect();
        let uid = self.authorize(&sender, &actions).await?;
        let req = make()?;
        let req = self.check_request(&sender, req).await?;
        self.begin(method, key, sender, uid, req).await
    }

    /// What is refused before a transaction starts: a finalization lock where nothing is
    /// staged, and a change of update target while another agent drives updates. Completes
    /// a driver registration with the caller's systemd unit.
    async fn check_request(&self, sender: &str, mut req: Request) -> Result<Request> {
        if req.op.lock_finalization() && !self.d.snapshot().is_booted {
            return Err(Error::Failed(format!(
                "--lock-finalization needs a booted system: {} is not the booted sysroot, so new deployments are written directly and there is nothing to finalize",
                self.sysroot().display()
            )));
        }
        let intent = req.driver.clone();
        if !intent.guarded && intent.register.is_none() {
            return Ok(req);
        }
        let run_dir = self.d.settings.run_dir.clone();
        let caller_unit = match self.d.caller_pid(sender).await {
            Ok(pid) => driver::unit_of_pid(&self.d.conn, pid).await,
            Err(e) => {
                tracing::debug!("No pid for {sender}: {e}");
                String::new()
            }
        };
        let caller_id = driver::agent_id(self.d.client_id(sender).as_deref());
        if let Some(current) = driver::load(&run_dir) {
            let reregistering = intent.register.as_deref() == Some(current.name.as_str());
            if intent.guarded
                && !intent.bypass
                && !reregistering
                && !current.is_driver(&caller_unit, caller_id.as_deref())
            {
                return Err(Error::Failed(current.refusal()));
            }
        }
        if let Some(name) = intent.register {
            let reg = options::Registration {
                run_dir,
                driver: driver::UpdateDriver {
                    name,
                    sd_unit: caller_unit,
                    client_id: caller_id,
                },
            };
            req.op = match req.op {
                Op::RegisterDriver(_) => Op::RegisterDriver(reg),
                op => Op::Registered(reg, Box::new(op)),
            };
        }
        Ok(req)
    }

    async fn begin(
        &self,
        method: &str,
        key: String,
        sender: String,
        uid: u32,
        req: Request,
    ) -> Result<String> {
        let os_path = names::os_object_path(&self.name);
        let key = format!("{os_path}\u{1d}{key}");
        transaction::begin(
            &self.d,
            &self.txns,
            method,
            key,
            Caller {
                sender,
                uid,
                os_path,
            },
            req,
        )
        .await
    }

    fn deployment(
        &self,
        which: fn(&crate::state::OsState) -> Option<usize>,
    ) -> HashMap<String, OwnedValue> {
        let snap = self.d.snapshot();
        snap.os
            .get(&self.name)
            .and_then(|st| snap.deployment(which(st)))
            .map(deployment_to_dict)
            .unwrap_or_default()
    }

    fn sysroot(&self) -> &std::path::Path {
        &self.d.settings.sysroot
    }

    /// Authorize a method that starts no transaction.
    async fn authorize_method(&self, method: &str, hdr: &Header<'_>) -> Result<u32> {
        let sender = sender(hdr)?;
        let actions: Vec<&str> = action_for_method(OS_INTERFACE, method)
            .into_iter()
            .collect();
        self.authorize(&sender, &actions).await
    }

    /// [`Self::blocking`] for a package query, one at a time.
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&strata_core::Sysroot, &str) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let _one = self.d.repo_queries.acquire().await.map_err(Error::failed)?;
        self.blocking(f).await
    }

    /// Run `f` on a freshly opened sysroot, off the bus's threads (libostree blocks).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&strata_core::Sysroot, &str) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = self.d.settings.sysroot.clone();
        let osname = self.name.clone();
        tokio::task::spawn_blocking(move || {
            let sysroot = strata_core::Sysroot::open(&path)?;
            f(&sysroot, &osname)
        })
        .await
        .map_err(Error::failed)?
        .map_err(|e| Error::from_anyhow(&e))
    }

    /// An rpm-diff method's reply: the changes and the target's details.
    async fn target_diff(
        &self,
        f: impl FnOnce(&strata_core::Sysroot, &str) -> anyhow::Result<TargetDiff> + Send + 'static,
    ) -> Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)> {
        self.blocking(move |sysroot, osname| {
            let t = f(sysroot, osname)?;
            Ok((diff_entries(&t.diff), crate::gvariant::to_dict(&t.details)?))
        })
        .await
    }
}

/// An `a{sv}` from typed values.
fn dict<const N: usize>(entries: [(&str, Value<'_>); N]) -> HashMap<String, OwnedValue> {
    entries
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), OwnedValue::try_from(v).ok()?)))
        .collect()
}

/// A package as rpm-ostree's package queries describe it.
fn package_dict(p: strata_core::repos::PackageInfo) -> HashMap<String, OwnedValue> {
    let mut d = dict([
        ("name", Value::from(p.name)),
        ("epoch", Value::from(p.epoch)),
        ("version", Value::from(p.version)),
        ("arch", Value::from(p.arch)),
        ("nevra", Value::from(p.nevra)),
        ("evr", Value::from(p.evr)),
        ("summary", Value::from(p.summary)),
        ("reponame", Value::from(p.reponame)),
    ]);
    if let Some(k) = p.key {
        d.extend(dict([("key", Value::from(k))]));
    }
    d
}

/// rpm-ostree's package change types in `a(sua{sv})` replies.
const DIFF_ADDED: u32 = 0;
const DIFF_REMOVED: u32 = 1;
const DIFF_UPGRADED: u32 = 2;
const DIFF_DOWNGRADED: u32 = 3;

/// A package as `(name, evr, arch)`.
fn package_value(p: &Package) -> OwnedValue {
    let s = zbus::zvariant::StructureBuilder::new()
        .add_field(p.name.clone())
        .add_field(p.evr())
        .add_field(p.arch.clone())
        .build()
        .expect("a structure of three strings");
    OwnedValue::try_from(Value::Structure(s)).expect("strings hold no file descriptors")
}

/// A diff as rpm-ostree's rpm-diff methods return it: one `(name, type, {PreviousPackage,
/// NewPackage})` per change, by type (added, removed, upgraded, downgraded), then name.
fn diff_entries(d: &PackageDiff) -> Vec<RpmDiffEntry> {
    let entry = |ty: u32, old: Option<&Package>, new: Option<&Package>| {
        let name = new.or(old).map(|p| p.name.clone()).unwrap_or_default();
        let mut dict = HashMap::new();
        if let Some(p) = old {
            dict.insert("PreviousPackage".to_string(), package_value(p));
        }
        if let Some(p) = new {
            dict.insert("NewPackage".to_string(), package_value(p));
        }
        (name, ty, dict)
    };
    let mut out: Vec<RpmDiffEntry> = Vec::new();
    out.extend(d.added.iter().map(|p| entry(DIFF_ADDED, None, Some(p))));
    out.extend(d.removed.iter().map(|p| entry(DIFF_REMOVED, Some(p), None)));
    out.extend(
        d.upgraded
            .iter()
            .map(|(o, n)| entry(DIFF_UPGRADED, Some(o), Some(n))),
    );
    out.extend(
        d.downgraded
            .iter()
            .map(|(o, n)| entry(DIFF_DOWNGRADED, Some(o), Some(n))),
    );
    out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[zbus::interface(name = "org.projectatomic.rpmostree1.OS")]
impl OsIface {
    async fn upgrade(&self, options: Options, #[zbus(header)] hdr: Header<'_>) -> Result<String> {
        let key = canonical(&[], &[&options]);
        self.transaction("Upgrade", &hdr, key, || {
            options::upgrade(&self.name, &options, self.sysroot())
        })
        .await
    }

    async fn deploy(
        &self,
        revision: String,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let key = canonical(std::slice::from_ref(&revision), &[&options]);
        self.transaction("Deploy", &hdr, key, || {
            options::deploy(&self.name, &revision, &options, self.sysroot())
        })
        .await
    }

    async fn rebase(
        &self,
        options: Options,
        refspec: String,
        packages: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let mut parts = vec![refspec.clone()];
        parts.extend(packages.iter().cloned());
        let key = canonical(&parts, &[&options]);
        self.transaction("Rebase", &hdr, key, || {
            options::rebase(&self.name, &options, &refspec, &packages, self.sysroot())
        })
        .await
    }

    async fn rollback(&self, options: Options, #[zbus(header)] hdr: Header<'_>) -> Result<String> {
        let key = canonical(&[], &[&options]);
        self.transaction("Rollback", &hdr, key, || {
            options::rollback(&self.name, &options, self.sysroot())
        })
        .await
    }

    async fn clear_rollback_target(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let key = canonical(&[], &[&options]);
        self.transaction("ClearRollbackTarget", &hdr, key, || {
            options::clear_rollback(&self.name, &options, self.sysroot())
        })
        .await
    }

    async fn kernel_args(
        &self,
        existing: String,
        added: Vec<String>,
        replaced: Vec<String>,
        removed: Vec<String>,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let parts: Vec<String> = [
            vec![existing.clone()],
            vec![added.join("\u{1f}")],
            vec![replaced.join("\u{1f}")],
            vec![removed.join("\u{1f}")],
        ]
        .concat();
        let key = canonical(&parts, &[&options]);
        self.transaction("KernelArgs", &hdr, key, || {
            options::kernel_args(
                &self.name,
                &existing,
                &added,
                &replaced,
                &removed,
                &options,
                self.sysroot(),
            )
        })
        .await
    }

    async fn cleanup(
        &self,
        elements: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let key = canonical(&elements, &[]);
        self.transaction("Cleanup", &hdr, key, || {
            options::cleanup(&self.name, &elements)
        })
        .await
    }

    async fn finalize_deployment(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let key = canonical(&[], &[&options]);
        let is_booted = self.d.snapshot().is_booted;
        let sysroot = self.sysroot().display().to_string();
        self.transaction("FinalizeDeployment", &hdr, key, || {
            let req = options::finalize(&options)?;
            if !is_booted {
                return Err(Error::Failed(format!(
                    "Cannot finalize a deployment in {sysroot}: it is not the booted sysroot; only a booted host has a staged deployment"
                )));
            }
            Ok(req)
        })
        .await
    }

    async fn automatic_update_trigger(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(bool, String)> {
        let sender = sender(&hdr)?;
        let uid = self.authorize(&sender, &[names::action::UPGRADE]).await?;
        let policy = self.d.config().automatic_update_policy.as_str();
        let Some(mode) = options::trigger_mode(&options, policy)? else {
            return Ok((false, String::new()));
        };
        let req = options::automatic_update(&self.name, mode);
        let req = self.check_request(&sender, req).await?;
        let key = canonical(&[mode.to_string()], &[&options]);
        let addr = self
            .begin("AutomaticUpdateTrigger", key, sender, uid, req)
            .await?;
        Ok((true, addr))
    }

    async fn update_deployment(
        &self,
        modifiers: Options,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let sender = sender(&hdr)?;
        let mkeys: Vec<&str> = modifiers.keys().map(String::as_str).collect();
        let okeys: Vec<&str> = options.keys().map(String::as_str).collect();
        let actions = update_deployment_actions(&mkeys, &okeys);
        let uid = self.authorize(&sender, &actions).await?;
        let req = options::update_deployment(&self.name, &modifiers, &options, self.sysroot())?;
        let req = self.check_request(&sender, req).await?;
        let key = canonical(&[], &[&modifiers, &options]);
        self.begin("UpdateDeployment", key, sender, uid, req).await
    }

    /// rpm-ostree's older way to layer packages (`UpdateDeployment` with `install-packages`
    /// and `uninstall-packages` is the current one).
    async fn pkg_change(
        &self,
        options: Options,
        packages_added: Vec<String>,
        packages_removed: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let mut parts = packages_added.clone();
        parts.push(String::new());
        parts.extend(packages_removed.iter().cloned());
        let key = canonical(&parts, &[&options]);
        self.transaction("PkgChange", &hdr, key, || {
            options::pkg_change(
                &self.name,
                &options,
                &packages_added,
                &packages_removed,
                self.sysroot(),
            )
        })
        .await
    }

    async fn get_deployment_boot_config(
        &self,
        deployid: String,
        is_pending: bool,
    ) -> Result<HashMap<String, OwnedValue>> {
        let path = self.d.settings.sysroot.clone();
        let osname = self.name.clone();
        let bc =
            tokio::task::spawn_blocking(move || boot_config(&path, &osname, &deployid, is_pending))
                .await
                .map_err(Error::failed)?
                .map_err(|e| Error::from_anyhow(&e))?;
        let mut out = HashMap::new();
        for (k, v) in bc.0 {
            out.insert(
                k,
                OwnedValue::try_from(Value::from(v)).map_err(Error::failed)?,
            );
        }
        out.insert(
            "staged".to_string(),
            OwnedValue::try_from(Value::from(bc.1)).map_err(Error::failed)?,
        );
        Ok(out)
    }

    async fn get_deployments_rpm_diff(
        &self,
        deployid0: String,
        deployid1: String,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Vec<RpmDiffEntry>> {
        self.authorize_method("GetDeploymentsRpmDiff", &hdr).await?;
        let diff = self
            .blocking(move |sysroot, _| {
                strata_core::update::deployments_diff(sysroot, &deployid0, &deployid1)
            })
            .await?;
        Ok(diff_entries(&diff))
    }

    #[zbus(out_args("result", "details"))]
    async fn get_cached_update_rpm_diff(
        &self,
        deployid: String,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)> {
        self.authorize_method("GetCachedUpdateRpmDiff", &hdr)
            .await?;
        self.target_diff(move |sysroot, osname| {
            strata_core::update::update_diff(sysroot, osname, &deployid)
        })
        .await
    }

    async fn download_update_rpm_diff(&self, #[zbus(header)] hdr: Header<'_>) -> Result<String> {
        let osname = self.name.clone();
        self.transaction("DownloadUpdateRpmDiff", &hdr, String::new(), || {
            Ok(options::package_diff(&osname, DiffTarget::Update))
        })
        .await
    }

    /// `packages` is ignored, as rpm-ostree ignores it.
    #[zbus(out_args("result", "details"))]
    async fn get_cached_rebase_rpm_diff(
        &self,
        refspec: String,
        packages: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)> {
        let _ = packages;
        self.authorize_method("GetCachedRebaseRpmDiff", &hdr)
            .await?;
        options::refspec_arg(&refspec)?;
        self.target_diff(move |sysroot, osname| {
            strata_core::update::rebase_diff(sysroot, osname, &refspec)
        })
        .await
    }

    async fn download_rebase_rpm_diff(
        &self,
        refspec: String,
        packages: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let _ = packages;
        let osname = self.name.clone();
        let key = canonical(std::slice::from_ref(&refspec), &[]);
        self.transaction("DownloadRebaseRpmDiff", &hdr, key, || {
            options::refspec_arg(&refspec)?;
            Ok(options::package_diff(
                &osname,
                DiffTarget::Rebase(refspec.clone()),
            ))
        })
        .await
    }

    /// `packages` is ignored, as rpm-ostree ignores it.
    #[zbus(out_args("result", "details"))]
    async fn get_cached_deploy_rpm_diff(
        &self,
        revision: String,
        packages: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Vec<RpmDiffEntry>, HashMap<String, OwnedValue>)> {
        let _ = packages;
        self.authorize_method("GetCachedDeployRpmDiff", &hdr)
            .await?;
        let revision = options::parse_revision(&revision)?;
        self.target_diff(move |sysroot, osname| {
            strata_core::update::deploy_diff(sysroot, osname, &revision)
        })
        .await
    }

    async fn download_deploy_rpm_diff(
        &self,
        revision: String,
        packages: Vec<String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let _ = packages;
        let osname = self.name.clone();
        let key = canonical(std::slice::from_ref(&revision), &[]);
        self.transaction("DownloadDeployRpmDiff", &hdr, key, || {
            let revision = options::parse_revision(&revision)?;
            Ok(options::package_diff(&osname, DiffTarget::Deploy(revision)))
        })
        .await
    }

    /// rpm-ostree regenerates the initramfs on the host (dracut); Strata has no initramfs
    /// generation and keeps the base image's.
    async fn set_initramfs_state(
        &self,
        regenerate: bool,
        args: Vec<String>,
        options: Options,
    ) -> Result<String> {
        let _ = (regenerate, args, options);
        Err(Error::not_built(
            "OS.SetInitramfsState (initramfs --enable)",
            "Strata cannot regenerate the initramfs on the host; the deployment keeps its base image's initramfs",
        ))
    }

    /// Tracking `/etc` files into the initramfs needs initramfs generation, as
    /// `SetInitramfsState` does.
    async fn initramfs_etc(
        &self,
        track: Vec<String>,
        untrack: Vec<String>,
        untrack_all: bool,
        force_sync: bool,
        options: Options,
    ) -> Result<String> {
        let _ = (track, untrack, untrack_all, force_sync, options);
        Err(Error::not_built(
            "OS.InitramfsEtc (initramfs-etc)",
            "Strata cannot add files to the initramfs; the deployment keeps its base image's initramfs",
        ))
    }

    async fn refresh_md(
        &self,
        options: Options,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let key = canonical(&[], &[&options]);
        self.transaction("RefreshMd", &hdr, key, || {
            options::refresh_md(&self.name, &options)
        })
        .await
    }

    async fn modify_yum_repo(
        &self,
        repo_id: String,
        settings: HashMap<String, String>,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String> {
        let mut parts = vec![repo_id.clone()];
        let mut kv: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        kv.sort();
        parts.extend(kv);
        let key = canonical(&parts, &[]);
        self.transaction("ModifyYumRepo", &hdr, key, || {
            options::modify_yum_repo(&self.name, &repo_id, &settings)
        })
        .await
    }

    /// Every repository of the deployment's `/etc/yum.repos.d` (`id`, `description`,
    /// `is-enabled`, `is-devel`, `is-source`); nothing is fetched.
    async fn list_repos(&self) -> Result<Vec<HashMap<String, OwnedValue>>> {
        let repos = self.query(strata_core::repos::list).await?;
        Ok(repos
            .into_iter()
            .map(|r| {
                dict([
                    ("id", Value::from(r.id)),
                    ("description", Value::from(r.description)),
                    ("is-enabled", Value::from(r.enabled)),
                    ("is-devel", Value::from(r.is_devel)),
                    ("is-source", Value::from(r.is_source)),
                ])
            })
            .collect())
    }

    async fn what_provides(
        &self,
        provides: Vec<String>,
    ) -> Result<Vec<HashMap<String, OwnedValue>>> {
        options::name_list("provides", &provides)?;
        let found = self
            .query(move |sysroot, osname| {
                strata_core::repos::what_provides(sysroot, osname, &provides)
            })
            .await?;
        Ok(found.into_iter().map(package_dict).collect())
    }

    async fn get_packages(&self, names: Vec<String>) -> Result<Vec<HashMap<String, OwnedValue>>> {
        options::name_list("names", &names)?;
        let found = self
            .query(move |sysroot, osname| strata_core::repos::get_packages(sysroot, osname, &names))
            .await?;
        Ok(found.into_iter().map(package_dict).collect())
    }

    async fn search(&self, names: Vec<String>) -> Result<Vec<HashMap<String, OwnedValue>>> {
        options::name_list("names", &names)?;
        let found = self
            .query(move |sysroot, osname| strata_core::repos::search(sysroot, osname, &names))
            .await?;
        Ok(found.into_iter().map(package_dict).collect())
    }

    #[zbus(property)]
    async fn booted_deployment(&self) -> HashMap<String, OwnedValue> {
        self.d.ensure_fresh().await;
        self.deployment(|s| s.booted)
    }

    #[zbus(property)]
    async fn default_deployment(&self) -> HashMap<String, OwnedValue> {
        self.d.ensure_fresh().await;
        self.deployment(|s| s.default)
    }

    #[zbus(property)]
    async fn rollback_deployment(&self) -> HashMap<String, OwnedValue> {
        self.d.ensure_fresh().await;
        self.deployment(|s| s.rollback)
    }

    /// What the last check (or upgrade) found, as rpm-ostree's `CachedUpdate`; `{}` when
    /// nothing newer was found.
    #[zbus(property)]
    async fn cached_update(&self) -> HashMap<String, OwnedValue> {
        self.d.ensure_fresh().await;
        self.d.snapshot().cached_update(&self.name)
    }

    /// Whether there is a cached update (rpm-ostree's meaning: not that it has a diff).
    #[zbus(property)]
    async fn has_cached_update_rpm_diff(&self) -> bool {
        self.d.ensure_fresh().await;
        self.d.snapshot().cached_updates.contains_key(&self.name)
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// The BLS entry of a deployment and whether it is staged (blocking).
fn boot_config(
    path: &std::path::Path,
    osname: &str,
    deployid: &str,
    is_pending: bool,
) -> anyhow::Result<(std::collections::BTreeMap<String, String>, bool)> {
    use anyhow::anyhow;
    let sysroot = strata_core::Sysroot::open(path)?;
    let all = sysroot.deployments();
    let d = if deployid.is_empty() {
        if is_pending {
            sysroot
                .ostree()
                .staged_deployment()
                .or_else(|| all.iter().find(|d| d.osname() == osname).cloned())
        } else {
            // The booted deployment is host state: on a sysroot that is not the running system
            // there is none, and inventing one (the merge deployment) would mislead.
            let booted = sysroot.booted_deployment().ok_or_else(|| {
                anyhow!(
                    "{} is not the booted sysroot: there is no booted deployment to read (is_pending=false)",
                    path.display()
                )
            })?;
            if booted.osname() != osname {
                return Err(anyhow!(
                    "The booted deployment belongs to stateroot {:?}, not {osname:?}",
                    booted.osname().as_str()
                ));
            }
            Some(booted)
        }
        .ok_or_else(|| anyhow!("No deployment of {osname} found"))?
    } else {
        all.iter()
            .find(|d| strata_core::sysroot::deployment_id(d) == deployid)
            .cloned()
            .ok_or_else(|| anyhow!("Deployment {deployid:?} not found"))?
    };
    Ok((strata_core::bootconfig::boot_config(&d), d.is_staged()))
}

/// `org.projectatomic.rpmostree1.OSExperimental`, beside `OS` on each OS object: rpm-ostree's
/// experimental members, none of which Strata has.
#[derive(Debug)]
pub(crate) struct OsExperimentalIface;

#[zbus::interface(name = "org.projectatomic.rpmostree1.OSExperimental")]
impl OsExperimentalIface {
    /// rpm-ostree's self-test method (a cow); there is nothing of Strata's to test through it.
    async fn moo(&self, utf8: bool) -> Result<String> {
        let _ = utf8;
        Err(Error::not_built(
            "OSExperimental.Moo",
            "it is rpm-ostree's self-test method",
        ))
    }

    /// Applying changes to the running system (`apply-live`).
    async fn live_fs(&self, options: Options) -> Result<String> {
        let _ = options;
        Err(Error::not_built(
            "OSExperimental.LiveFs (apply-live)",
            "changes take effect at the next boot",
        ))
    }

    async fn download_packages(&self, queries: Vec<String>, source: String) -> Result<()> {
        let _ = (queries, source);
        Err(Error::not_built(
            "OSExperimental.DownloadPackages",
            "packages are downloaded only as part of a layering transaction",
        ))
    }
}
