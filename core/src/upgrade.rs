//! `upgrade`: move the deployment to the newest commit of its origin ref.

use anyhow::{anyhow, Result};

use crate::commit;
use crate::origin::{Origin, Refspec, RefspecKind};
use crate::progress::OpContext;
use crate::pull::{pull, PullRequest};
use crate::stage::{self, NewDeployment, Outcome};
use crate::sysroot::Sysroot;

/// Options of [`upgrade`].
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    /// Stateroot; the booted (or default) one when `None`.
    pub osname: Option<String>,
    /// Only answer whether an update is available: fetch the commit object, deploy nothing.
    pub check_only: bool,
    /// Fetch everything, deploy nothing.
    pub download_only: bool,
    /// Use only what is already in the repo; no network.
    pub cache_only: bool,
    /// Permit a target commit older than the current one.
    pub allow_downgrade: bool,
    /// Stage locked: not finalized at shutdown until `finalize-deployment`.
    pub lock_finalization: bool,
}

/// The ostree refspec a deployment follows, or a clear error for origins that have none.
pub(crate) fn ostree_refspec(origin: &Origin) -> Result<Refspec> {
    match origin.refspec() {
        Some(r) if r.kind() == RefspecKind::Ostree => Ok(r.clone()),
        Some(r) => Err(anyhow!(
            "The origin is pinned to the bare commit {r}, which has no ref to follow; rebase to a REMOTE:REF first"
        )),
        None => Err(anyhow!(
            "The origin follows a container image, which Strata does not support yet"
        )),
    }
}

/// Pull the origin ref and deploy its newest commit with the current default as merge
/// deployment.
pub fn upgrade(sysroot: &Sysroot, opts: &UpgradeOptions, ctx: &OpContext) -> Result<Outcome> {
    let _lock = sysroot.lock()?;
    sysroot.reload()?;
    let osname = sysroot.resolve_osname(opts.osname.as_deref())?;
    let merge = sysroot.merge_deployment(&osname)?;
    let mut origin = sysroot.origin(&merge)?;
    let refspec = ostree_refspec(&origin)?;
    stage::require_no_local_assembly(&origin)?;
    let repo = sysroot.repo();
    let current = commit::load(&repo, &merge.csum())?;
    let refstr = refspec.to_string();

    if let (Some(remote), false) = (refspec.remote(), opts.cache_only) {
        let req = PullRequest {
            remote,
            refs: vec![refspec.ref_name().to_string()],
            commit_only: opts.check_only,
            depth: 0,
        };
        ctx.task(&format!("Pulling {refstr}"), || pull(&repo, &req, ctx))?;
    }
    let target = commit::resolve(&repo, &refstr)?.ok_or_else(|| {
        anyhow!("The ref {refstr} is not in the local repo; run without --cache-only to fetch it")
    })?;
    if target == current.checksum && origin.override_commit().is_none() {
        ctx.message(format!(
            "No upgrade available: {refstr} is at {}",
            current.describe()
        ));
        return Ok(Outcome::Unchanged);
    }
    let target_info = commit::load(&repo, &target)?;
    stage::check_downgrade(&current, &target_info, opts.allow_downgrade)?;
    if opts.check_only {
        ctx.message(format!("Update available: {}", target_info.describe()));
        return Ok(Outcome::UpdateAvailable {
            checksum: target,
            version: target_info.version,
        });
    }
    if !commit::is_complete(&repo, &target)? {
        return Err(anyhow!(
            "Commit {} is only partially downloaded; run without --cache-only to fetch it",
            target_info.describe()
        ));
    }
    if opts.download_only {
        return Ok(Outcome::Downloaded {
            checksum: target,
            version: target_info.version,
        });
    }
    // Upgrading follows the ref again: drop a pin left by `deploy`.
    origin.set_override_commit(None);
    stage::write(
        sysroot,
        &merge,
        &NewDeployment {
            osname: &osname,
            revision: &target,
            origin: &origin,
            kargs: None,
            lock_finalization: opts.lock_finalization,
        },
        ctx,
    )
}
