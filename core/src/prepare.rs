//! The one path every deployment-changing operation takes, in the manner of rpm-ostree's
//! SysrootUpgrader and bootc's merge state: lock → reload → stateroot → merge deployment →
//! origin → (the verb resolves and fetches its target) → assemble → deploy.
//!
//! Verbs stay thin: they open a [`Prepared`], work out their target commit and origin, and hand
//! both to [`Prepared::deploy`]. Package layering and container images plug in here.

use anyhow::{anyhow, Result};
use fn_error_context::context;

use crate::commit::{self, CommitInfo};
use crate::layering;
use crate::origin::{Origin, Refspec, RefspecKind};
use crate::progress::OpContext;
use crate::stage::{self, NewDeployment, Outcome};
use crate::sysroot::{Sysroot, SysrootLock};

/// The locked sysroot and what a new deployment of a stateroot starts from.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    _lock: SysrootLock<'a>,
    pub sysroot: &'a Sysroot,
    pub osname: String,
    /// The deployment whose `/etc` and kernel arguments the new one starts from.
    pub merge: ostree::Deployment,
    /// The merge deployment's origin: what the verb edits into the new one's.
    pub origin: Origin,
    pub repo: ostree::Repo,
    /// The base commit of the merge deployment: the commit it runs, or the parent of that
    /// commit when it runs layered packages.
    pub current: CommitInfo,
    /// The commit the merge deployment runs (a layered commit when it layers packages).
    pub deployed: CommitInfo,
}

/// How [`Prepared::deploy`] finishes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Finish {
    pub allow_downgrade: bool,
    /// Stop once the commit is in the repo.
    pub download_only: bool,
    pub lock_finalization: bool,
    /// Kernel arguments; `None` inherits the merge deployment's.
    pub kargs: Option<Vec<String>>,
    /// Use only cached repository metadata when packages must be layered.
    pub cache_only: bool,
    /// New package requests the base must not already satisfy.
    pub forbid_inactive: Vec<String>,
}

impl Finish {
    /// How `deploy` and `rebase` finish: a target the user named, so downgrades are allowed
    /// unless refused; kernel arguments inherited.
    pub fn named_target(
        disallow_downgrade: bool,
        download_only: bool,
        lock_finalization: bool,
        cache_only: bool,
    ) -> Finish {
        Finish {
            allow_downgrade: !disallow_downgrade,
            download_only,
            lock_finalization,
            kargs: None,
            cache_only,
            forbid_inactive: Vec::new(),
        }
    }
}

impl<'a> Prepared<'a> {
    /// The sysroot's repository, by path (for ostree-ext, which opens its own handle).
    pub fn repo_path(&self) -> std::path::PathBuf {
        self.sysroot.path().join("ostree/repo")
    }

    /// Take the sysroot lock, reload, and read the merge deployment of `osname` (the booted or
    /// default stateroot when `None`) with its origin and commit.
    #[context("Preparing a new deployment")]
    pub fn new(sysroot: &'a Sysroot, osname: Option<&str>) -> Result<Self> {
        let lock = sysroot.lock()?;
        sysroot.reload()?;
        let osname = sysroot.resolve_osname(osname)?;
        let merge = sysroot.merge_deployment(&osname)?;
        let origin = sysroot.origin(&merge)?;
        // Overrides, local packages and initramfs settings are not built yet: refuse before
        // fetching anything rather than deploy the base without what the origin asks for.
        require_assemblable(&origin)?;
        let repo = sysroot.repo();
        let deployed = commit::load(&repo, &merge.csum())?;
        let current = match deployed.base_checksum() {
            base if base == deployed.checksum => deployed.clone(),
            base => commit::load(&repo, base)?,
        };
        Ok(Self {
            _lock: lock,
            sysroot,
            osname,
            merge,
            origin,
            repo,
            current,
            deployed,
        })
    }

    /// The ostree ref the merge deployment follows, or a clear error for origins without one.
    pub fn refspec(&self) -> Result<Refspec> {
        match self.origin.refspec() {
            Some(r) if r.kind() == RefspecKind::Ostree => Ok(r.clone()),
            Some(r) => Err(anyhow!(
                "The origin is pinned to the bare commit {r}, which has no ref to follow; rebase to a REMOTE:REF first"
            )),
            None => Err(anyhow!(
                "The origin follows a container image, which Strata does not support yet"
            )),
        }
    }

    /// Refuse moving to an older commit unless allowed.
    pub fn check_downgrade(&self, target: &CommitInfo, allow_downgrade: bool) -> Result<()> {
        stage::check_downgrade(&self.current, target, allow_downgrade)
    }

    /// Deploy `target` with `origin`: downgrade check, then (unless download-only) the new
    /// deployment, staged on a booted host.
    pub fn deploy(
        &self,
        target: &CommitInfo,
        origin: &Origin,
        finish: &Finish,
        ctx: &OpContext,
    ) -> Result<Outcome> {
        self.check_downgrade(target, finish.allow_downgrade)?;
        if finish.download_only {
            return Ok(Outcome::Downloaded {
                checksum: target.checksum.clone(),
                version: target.version.clone(),
            });
        }
        require_assemblable(origin)?;
        let revision = self.assemble(target, origin, finish, ctx)?;
        stage::write(
            self.sysroot,
            &self.merge,
            &NewDeployment {
                osname: &self.osname,
                revision: &revision,
                origin,
                kargs: finish.kargs.clone(),
                lock_finalization: finish.lock_finalization,
            },
            ctx,
        )
    }
}

impl Prepared<'_> {
    /// The commit to deploy for base `target` with `origin`: the base itself when nothing is
    /// layered, the merge deployment's own commit when neither the base nor the requests
    /// changed (a kernel-argument edit re-solves nothing), otherwise the layered commit
    /// [`layering::assemble`] builds or reuses.
    fn assemble(
        &self,
        target: &CommitInfo,
        origin: &Origin,
        finish: &Finish,
        ctx: &OpContext,
    ) -> Result<String> {
        let packages = origin.requested_packages();
        let local = origin.requested_local_packages();
        if packages.is_empty() && local.is_empty() {
            return Ok(target.checksum.clone());
        }
        if target.checksum == self.current.checksum
            && packages == self.origin.requested_packages()
            && local == self.origin.requested_local_packages()
            && self.deployed.checksum != self.current.checksum
        {
            return Ok(self.deployed.checksum.clone());
        }
        let req = layering::LayerRequest {
            base: target.checksum.clone(),
            packages,
            local,
            repos_dir: self
                .sysroot
                .deployment_path(&self.merge)
                .join("etc/yum.repos.d"),
            cache_dir: crate::cleanup::layering_cache_dir(self.sysroot, &self.osname),
            cache_only: finish.cache_only,
            forbid_inactive: finish.forbid_inactive.clone(),
            work_dir: self.sysroot.path().join("ostree/repo/tmp"),
        };
        // Every deployment's layered commit is a candidate for reuse.
        let previous: Vec<CommitInfo> = self
            .sysroot
            .deployments()
            .iter()
            .filter_map(|d| commit::load(&self.repo, &d.csum()).ok())
            .filter(|c| c.meta_bool("rpmostree.clientlayer") == Some(true))
            .collect();
        let layered = layering::assemble(&self.repo, &req, &previous, ctx)?;
        for (request, provider) in &layered.inactive {
            ctx.message(format!(
                "Inactive requests: {} (already provided by {})",
                layering::escape_for_message(request),
                provider
            ));
        }
        Ok(layered.commit)
    }
}

/// Refuse origins that need what this engine cannot assemble yet (package layering from repos
/// and local files it can): deploying the plain base for them would silently drop what the
/// administrator asked for.
fn require_assemblable(origin: &Origin) -> Result<()> {
    let mut what = Vec::new();
    if !origin.requested_local_fileoverride_packages().is_empty() {
        what.push("local RPM packages allowed to replace files".to_string());
    }
    if !origin.override_remove().is_empty()
        || !origin.override_replace_local().is_empty()
        || !origin.override_replace().is_empty()
    {
        what.push("base package overrides".to_string());
    }
    if origin.has_initramfs_block() {
        what.push("initramfs settings".to_string());
    }
    if what.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "This deployment's origin requests {}; Strata cannot assemble those yet, so it refuses rather than deploy the base without them. Remove the requests (rpm-ostree reset) and retry",
        what.join(", ")
    ))
}
