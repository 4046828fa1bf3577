//! `rebase`: follow another ref (and/or remote).

use anyhow::{anyhow, Result};
use fn_error_context::context;

use crate::commit;
use crate::deploy::{resolve_revision, Revision};
use crate::origin::{is_container_image_reference, OriginError, Refspec};
use crate::prepare::{Finish, Prepared};
use crate::progress::OpContext;
use crate::pull::{pull, PullRequest};
use crate::stage::Outcome;
use crate::sysroot::Sysroot;

/// Options of [`rebase`].
#[derive(Debug, Clone, Default)]
pub struct RebaseOptions {
    pub osname: Option<String>,
    /// `REMOTE:REF`, `:REF` (a local ref), `REF` (same remote) or `REMOTE:` (same ref).
    pub refspec: String,
    /// Deploy this version/commit of the new ref instead of its head.
    pub revision: Option<Revision>,
    /// Keep the old ref in the repo (it is deleted by default).
    pub skip_purge: bool,
    /// Refuse a target older than the current commit (rebase allows it by default).
    pub disallow_downgrade: bool,
    pub lock_finalization: bool,
    pub cache_only: bool,
    pub download_only: bool,
}

/// Resolve a partial refspec against the current one, as rpm-ostree does.
pub fn resolve_refspec(current: &Refspec, given: &str) -> Result<Refspec, OriginError> {
    let invalid = |problem: &str| OriginError::InvalidRefspec {
        input: crate::origin::caller_text(given),
        problem: problem.to_string(),
    };
    let full = if let Some(local) = given.strip_prefix(':') {
        local.to_string()
    } else if let Some(remote) = given.strip_suffix(':') {
        if remote.contains(':') {
            return Err(invalid("it has more than one ':' before the trailing one"));
        }
        format!("{remote}:{}", current.ref_name())
    } else if given.contains(':') {
        given.to_string()
    } else {
        match current.remote() {
            Some(r) => format!("{r}:{given}"),
            None => given.to_string(),
        }
    };
    let r = Refspec::parse(&full)?;
    if given.starts_with(':') && r.remote().is_some() {
        return Err(invalid("a local ref (:REF) cannot name a remote"));
    }
    Ok(r)
}

/// Rebase onto another ref; layering requests in the origin are carried over unchanged.
#[context("Rebasing to {}", opts.refspec)]
pub fn rebase(sysroot: &Sysroot, opts: &RebaseOptions, ctx: &OpContext) -> Result<Outcome> {
    let p = Prepared::new(sysroot, opts.osname.as_deref())?;
    if is_container_image_reference(&opts.refspec) {
        return rebase_to_image(&p, opts, ctx);
    }
    // From an image, the new ref must be whole (REMOTE:REF or :REF): there is no ref to
    // complete it from.
    let old = match p.origin.refspec() {
        Some(_) => Some(p.refspec()?),
        None => None,
    };
    let new = match &old {
        Some(old) => resolve_refspec(old, &opts.refspec)?,
        None => {
            let given = opts.refspec.strip_prefix(':').unwrap_or(&opts.refspec);
            Refspec::parse(given)?
        }
    };
    match &old {
        Some(old) => rebase_to_ref(&p, opts, old, new, ctx),
        None => rebase_to_ref(&p, opts, &new.clone(), new, ctx),
    }
}

/// Rebase onto the container image `opts.refspec`: pull it, deploy its commit with the
/// reference in the origin (layered packages carried over).
fn rebase_to_image(p: &Prepared<'_>, opts: &RebaseOptions, ctx: &OpContext) -> Result<Outcome> {
    let repo_path = p.repo_path();
    let (image, pin) = match &opts.revision {
        None => (crate::image::pull(&repo_path, &opts.refspec, ctx)?, None),
        Some(Revision::ImageDigest(digest)) => (
            crate::image::pull_digest(&repo_path, &opts.refspec, digest, ctx)?,
            Some(digest.as_str()),
        ),
        Some(other) => {
            return Err(anyhow!(
                "An image is pinned by its manifest digest (sha256:…), not {:?}",
                crate::origin::caller_text(&other.to_string())
            ))
        }
    };
    let target = commit::load(&p.repo, &image.commit)?;
    let mut origin = p.origin.clone();
    origin.set_container_image(&opts.refspec)?;
    origin.set_override_commit(pin);
    let finish = Finish::named_target(
        opts.disallow_downgrade,
        opts.download_only,
        opts.lock_finalization,
        opts.cache_only,
    );
    p.deploy(&target, &origin, &finish, ctx)
}

/// Rebase from `old` (the followed ref; the new one itself when coming from an image) to `new`.
fn rebase_to_ref(
    p: &Prepared<'_>,
    opts: &RebaseOptions,
    old: &Refspec,
    new: Refspec,
    ctx: &OpContext,
) -> Result<Outcome> {
    let from_image = p.origin.refspec().is_none();
    let old = old.clone();
    if new == old && opts.revision.is_none() && !from_image {
        return Err(anyhow!(
            "Old and new refs are equal: {new}; use `upgrade` to update it or `deploy` to pick a revision"
        ));
    }
    let repo = &p.repo;
    if let Some(remote) = new.remote() {
        let known: Vec<String> = repo.remote_list().iter().map(|s| s.to_string()).collect();
        if !known.iter().any(|k| k == remote) {
            return Err(anyhow!(
                "Remote {remote:?} is not configured (known remotes: {}); add it with `ostree remote add`",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        }
    }
    let target = match &opts.revision {
        Some(rev) => resolve_revision(repo, &new, rev, false, opts.cache_only, ctx)?,
        None => {
            if let (Some(remote), false) = (new.remote(), opts.cache_only) {
                let req = PullRequest {
                    remote,
                    refs: vec![new.ref_name().to_string()],
                    commit_only: false,
                    depth: 0,
                    ..Default::default()
                };
                ctx.task(&format!("Pulling {new}"), || pull(repo, &req, ctx))?;
            }
            let csum = commit::resolve(repo, &new.to_string())?
                .ok_or_else(|| anyhow!("The ref {new} is not in the local repo"))?;
            commit::load(repo, &csum)?
        }
    };
    let mut origin = p.origin.clone();
    origin.set_refspec(&new);
    origin.set_override_commit(opts.revision.as_ref().map(|_| target.checksum.as_str()));
    let finish = Finish::named_target(
        opts.disallow_downgrade,
        opts.download_only,
        opts.lock_finalization,
        opts.cache_only,
    );
    let outcome = p.deploy(&target, &origin, &finish, ctx)?;
    if opts.download_only {
        return Ok(outcome);
    }
    if !opts.skip_purge && new != old && !from_image {
        // The old deployment keeps its commit through libostree's deployment refs.
        if let Err(e) = repo.set_ref_immediate(
            old.remote(),
            old.ref_name(),
            None,
            ostree::gio::Cancellable::NONE,
        ) {
            tracing::debug!("Purging old ref {old}: {e}");
        } else {
            ctx.message(format!("Deleted old ref {old}"));
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur() -> Refspec {
        Refspec::parse("fedora:fedora/40/x86_64/silverblue").unwrap()
    }

    #[test]
    fn partial_refspecs() {
        let r = |s| resolve_refspec(&cur(), s).unwrap().to_string();
        assert_eq!(r("other:os/stable"), "other:os/stable");
        assert_eq!(r("os/testing"), "fedora:os/testing");
        assert_eq!(r("mirror:"), "mirror:fedora/40/x86_64/silverblue");
        assert_eq!(r(":vmcheck"), "vmcheck");
    }

    #[test]
    fn bad_refspecs() {
        for bad in ["a:b:c", ":", "x:y z", "bad\nref", "a::"] {
            assert!(resolve_refspec(&cur(), bad).is_err(), "{bad:?} accepted");
        }
    }
}
