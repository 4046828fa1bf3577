//! `upgrade`: move the deployment to the newest commit of its origin ref.

use anyhow::{anyhow, Result};
use fn_error_context::context;

use crate::commit;
use crate::prepare::{Finish, Prepared};
use crate::progress::OpContext;
use crate::pull::{pull, remote_head, PullRequest};
use crate::stage::Outcome;
use crate::sysroot::{deployment_id, Sysroot};
use crate::update;

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

/// Pull the origin ref and deploy its newest commit with the current default as merge
/// deployment.
#[context("Upgrading")]
pub fn upgrade(sysroot: &Sysroot, opts: &UpgradeOptions, ctx: &OpContext) -> Result<Outcome> {
    let p = Prepared::new(sysroot, opts.osname.as_deref())?;
    if let Some(imgref) = p.origin.container_image_reference() {
        let imgref = imgref.to_string();
        return upgrade_image(&p, &imgref, opts, ctx);
    }
    let refspec = p.refspec()?;
    let refstr = refspec.to_string();

    if let (Some(remote), false) = (refspec.remote(), opts.cache_only) {
        // No update, the common case of a periodic check, is told from the remote's summary
        // when both it and the local ref are at the deployed commit: the pull would change
        // nothing and costs a repository transaction.
        let at_current = |c: Option<String>| c.as_deref() == Some(p.current.checksum.as_str());
        if p.origin.override_commit().is_none()
            && at_current(commit::resolve(&p.repo, &refstr)?)
            && at_current(remote_head(&p.repo, remote, refspec.ref_name(), ctx))
        {
            return unchanged(sysroot, &p, &refstr, ctx);
        }
        let req = PullRequest {
            remote,
            refs: vec![refspec.ref_name().to_string()],
            commit_only: opts.check_only,
            depth: 0,
            ..Default::default()
        };
        ctx.task(&format!("Pulling {refstr}"), || pull(&p.repo, &req, ctx))?;
    }
    let target = commit::resolve(&p.repo, &refstr)?.ok_or_else(|| {
        anyhow!("The ref {refstr} is not in the local repo; run without --cache-only to fetch it")
    })?;
    if target == p.current.checksum && p.origin.override_commit().is_none() {
        return unchanged(sysroot, &p, &refstr, ctx);
    }
    let target = commit::load(&p.repo, &target)?;
    if opts.check_only {
        p.check_downgrade(&target, opts.allow_downgrade)?;
        // rpm-ostree's composes list their packages in the commit; for one that does not, the
        // package database is fetched too, so that the check can say what would change.
        if !update::has_pkglist(&target) && !opts.cache_only {
            // The update is found either way; without its rpmdb it has no package diff.
            if let Err(e) = update::fetch_rpmdb(&p.repo, refspec.remote(), &target.checksum, ctx) {
                ctx.check_cancelled()?;
                tracing::warn!("{e:#}");
            }
        }
        keep_cached_update(sysroot, &p.osname, None);
        ctx.message(format!("Update available: {}", target.describe()));
        return Ok(Outcome::UpdateAvailable {
            checksum: target.checksum,
            version: target.version,
        });
    }
    if !commit::is_complete(&p.repo, &target.checksum)? {
        return Err(anyhow!(
            "Commit {} is only partially downloaded; run without --cache-only to fetch it",
            target.describe()
        ));
    }
    // Upgrading follows the ref again: drop a pin left by `deploy`.
    let mut origin = p.origin.clone();
    origin.set_override_commit(None);
    let finish = Finish {
        allow_downgrade: opts.allow_downgrade,
        download_only: opts.download_only,
        lock_finalization: opts.lock_finalization,
        kargs: None,
        cache_only: opts.cache_only,
        forbid_inactive: Vec::new(),
    };
    let outcome = p.deploy(&target, &origin, &finish, ctx)?;
    cache_after_deploy(&p, &outcome);
    Ok(outcome)
}

/// The deployment follows `refstr` and is at its newest commit.
fn unchanged(
    sysroot: &Sysroot,
    p: &Prepared<'_>,
    refstr: &str,
    ctx: &OpContext,
) -> Result<Outcome> {
    ctx.message(format!(
        "No upgrade available: {refstr} is at {}",
        p.current.describe()
    ));
    keep_cached_update(sysroot, &p.osname, None);
    Ok(Outcome::Unchanged)
}

/// Pull the image the origin follows and deploy it when its manifest digest is not the
/// deployed one's (the same image imported twice gives another merge commit: the digest is
/// what identifies it). A check reads the manifest alone and says what a pull would fetch.
fn upgrade_image(
    p: &Prepared<'_>,
    imgref: &str,
    opts: &UpgradeOptions,
    ctx: &OpContext,
) -> Result<Outcome> {
    if opts.cache_only {
        return Err(anyhow!(
            "An image-based deployment cannot be upgraded from the cache alone (the registry says whether the tag moved); run without --cache-only"
        ));
    }
    let repo_path = p.repo_path();
    let deployed = p.current.image_digest();
    let unchanged = |digest: &str| {
        ctx.message(format!("No upgrade available: {imgref} is at {digest}"));
        keep_cached_update(p.sysroot, &p.osname, None);
        Ok(Outcome::Unchanged)
    };
    // What the cached update is made of: the image the reference points at now when it is
    // not the deployed one (a failure costs only the cached update).
    let record = |pending: Option<&crate::image::ImageCheck>| {
        if let Err(e) = crate::image::record_pending(&p.repo, &p.current.checksum, pending) {
            tracing::warn!("{e:#}");
        }
    };
    if opts.check_only {
        let check = crate::image::check(&repo_path, imgref, ctx)?;
        if deployed.as_deref() == Some(check.manifest_digest.as_str()) {
            record(None);
            return unchanged(&check.manifest_digest);
        }
        record(Some(&check));
        ctx.message(format!(
            "Update available: {}{}; {}",
            check.manifest_digest,
            check
                .version
                .as_deref()
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default(),
            check.fetch_summary()
        ));
        keep_cached_update(p.sysroot, &p.osname, None);
        return Ok(Outcome::UpdateAvailable {
            checksum: check.manifest_digest,
            version: check.version,
        });
    }
    let image = crate::image::pull(&repo_path, imgref, ctx)?;
    if deployed.as_deref() == Some(image.manifest_digest.as_str()) {
        record(None);
        return unchanged(&image.manifest_digest);
    }
    let target = commit::load(&p.repo, &image.commit)?;
    let finish = Finish {
        allow_downgrade: opts.allow_downgrade,
        download_only: opts.download_only,
        lock_finalization: opts.lock_finalization,
        kargs: None,
        cache_only: false,
        forbid_inactive: Vec::new(),
    };
    // Upgrading follows the tag again: drop a pin left by `deploy sha256:…`.
    let mut origin = p.origin.clone();
    origin.set_override_commit(None);
    let outcome = p.deploy(&target, &origin, &finish, ctx)?;
    cache_after_deploy(p, &outcome);
    Ok(outcome)
}

/// After an upgrade wrote a deployment: the cached update describes it when it is staged.
fn cache_after_deploy(p: &Prepared<'_>, outcome: &Outcome) {
    if let Outcome::Deployed { id, .. } = outcome {
        let new = p
            .sysroot
            .deployments()
            .into_iter()
            .find(|d| &deployment_id(d) == id);
        keep_cached_update(p.sysroot, &p.osname, new.filter(|d| d.is_staged()).as_ref());
    }
}

/// Rewrite the cached update after a check or an upgrade (see [`update::refresh`]). The
/// update itself has happened or been found either way, so a failure here is only logged.
fn keep_cached_update(sysroot: &Sysroot, osname: &str, staged: Option<&ostree::Deployment>) {
    // As rpm-ostree: while a deployment is staged, the cached update describes it.
    let pending = sysroot
        .ostree()
        .staged_deployment()
        .filter(|d| d.osname() == osname);
    if let Err(e) = update::refresh(sysroot, osname, staged.or(pending.as_ref())) {
        tracing::warn!("{e:#}");
    }
}
