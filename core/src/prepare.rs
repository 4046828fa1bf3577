//! The one path every deployment-changing operation takes, in the manner of rpm-ostree's
//! SysrootUpgrader and bootc's merge state: lock → reload → stateroot → merge deployment →
//! origin → (the verb resolves and fetches its target) → assemble → deploy.
//!
//! Verbs stay thin: they open a [`Prepared`], work out their target commit and origin, and hand
//! both to [`Prepared::deploy`]. Package layering and container images plug in here.

use anyhow::{anyhow, Result};
use fn_error_context::context;

use crate::commit::{self, CommitInfo};
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
    /// The commit the merge deployment runs.
    pub current: CommitInfo,
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
}

impl<'a> Prepared<'a> {
    /// Take the sysroot lock, reload, and read the merge deployment of `osname` (the booted or
    /// default stateroot when `None`) with its origin and commit.
    #[context("Preparing a new deployment")]
    pub fn new(sysroot: &'a Sysroot, osname: Option<&str>) -> Result<Self> {
        let lock = sysroot.lock()?;
        sysroot.reload()?;
        let osname = sysroot.resolve_osname(osname)?;
        let merge = sysroot.merge_deployment(&osname)?;
        let origin = sysroot.origin(&merge)?;
        // Assembly (layering, overrides, initramfs) is not built yet: refuse before fetching
        // anything rather than deploy the base without what the origin asks for.
        require_no_local_assembly(&origin)?;
        let repo = sysroot.repo();
        let current = commit::load(&repo, &merge.csum())?;
        Ok(Self {
            _lock: lock,
            sysroot,
            osname,
            merge,
            origin,
            repo,
            current,
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
        require_no_local_assembly(origin)?;
        stage::write(
            self.sysroot,
            &self.merge,
            &NewDeployment {
                osname: &self.osname,
                revision: &target.checksum,
                origin,
                kargs: finish.kargs.clone(),
                lock_finalization: finish.lock_finalization,
            },
            ctx,
        )
    }
}

/// Refuse origins that need package layering or overrides, which this engine cannot assemble yet:
/// deploying the plain base for them would silently drop what the administrator asked for.
fn require_no_local_assembly(origin: &Origin) -> Result<()> {
    if !origin.needs_local_assembly() {
        return Ok(());
    }
    let mut what = Vec::new();
    let pkgs = origin.requested_packages();
    if !pkgs.is_empty() {
        what.push(format!("layered packages ({})", pkgs.join(", ")));
    }
    if !origin.override_remove().is_empty() || !origin.override_replace_local().is_empty() {
        what.push("base package overrides".to_string());
    }
    if origin.has_initramfs_block() {
        what.push("initramfs settings".to_string());
    }
    if what.is_empty() {
        what.push("local assembly".to_string());
    }
    Err(anyhow!(
        "This deployment's origin requests {}; Strata cannot assemble layered deployments yet, so it refuses rather than deploy the base without them. Remove the requests (rpm-ostree reset) and retry",
        what.join(", ")
    ))
}
