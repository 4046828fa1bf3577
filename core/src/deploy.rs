//! `deploy`: move to a given version or commit of the origin ref, and pin it there.

use std::fmt;

use anyhow::{anyhow, Result};
use fn_error_context::context;

use crate::commit::{self, CommitInfo};
use crate::origin::{is_checksum, Refspec};
use crate::prepare::{Finish, Prepared};
use crate::progress::OpContext;
use crate::pull::{pull, remote_head, PullRequest};
use crate::stage::Outcome;
use crate::sysroot::Sysroot;

/// A revision to deploy: `revision=CHECKSUM`, `version=VERSION`, or bare (a 64-hex string is a
/// checksum, anything else a version), as `rpm-ostree deploy` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    Checksum(String),
    Version(String),
    /// A container image's manifest digest (`sha256:…`), for an image-based deployment (as
    /// Zincati deploys releases of an OCI-based OS).
    ImageDigest(String),
}

/// The longest revision accepted (a version string is a few dozen bytes).
const MAX_REVISION_BYTES: usize = 1024;

impl Revision {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |what: &str| {
            anyhow!(
                "Invalid revision {:?}: {what}; expected a commit checksum (64 hex digits), revision=CHECKSUM or version=VERSION",
                crate::origin::caller_text(s)
            )
        };
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("it contains whitespace or control characters"));
        }
        if s.len() > MAX_REVISION_BYTES {
            return Err(bad(&format!(
                "it is longer than {MAX_REVISION_BYTES} bytes"
            )));
        }
        if let Some(c) = s.strip_prefix("revision=") {
            if !is_checksum(c) {
                return Err(bad("the checksum is not 64 lowercase hex digits"));
            }
            return Ok(Revision::Checksum(c.to_string()));
        }
        if let Some(v) = s.strip_prefix("version=") {
            if v.is_empty() {
                return Err(bad("the version is empty"));
            }
            return Ok(Revision::Version(v.to_string()));
        }
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if is_checksum(s) {
            Ok(Revision::Checksum(s.to_string()))
        } else if crate::origin::is_image_digest(s) {
            Ok(Revision::ImageDigest(s.to_string()))
        } else {
            Ok(Revision::Version(s.to_string()))
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revision::Checksum(c) => write!(f, "revision={c}"),
            Revision::Version(v) => write!(f, "version={v}"),
            Revision::ImageDigest(d) => write!(f, "{d}"),
        }
    }
}

/// Options of [`deploy`].
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub osname: Option<String>,
    pub revision: Revision,
    /// Deploy a checksum even if it is not in the history of the origin ref.
    pub skip_branch_check: bool,
    /// Refuse a target older than the current commit (deploy allows it by default).
    pub disallow_downgrade: bool,
    pub lock_finalization: bool,
    pub cache_only: bool,
    pub download_only: bool,
}

impl DeployOptions {
    pub fn new(revision: Revision) -> Self {
        Self {
            osname: None,
            revision,
            skip_branch_check: false,
            disallow_downgrade: false,
            lock_finalization: false,
            cache_only: false,
            download_only: false,
        }
    }
}

/// Find `revision` for `refspec`: fetch the ref's commit history (commit objects only) unless
/// cache-only, look the version up or check the checksum belongs to the branch, then fetch that
/// commit's content.
pub(crate) fn resolve_revision(
    repo: &ostree::Repo,
    refspec: &Refspec,
    revision: &Revision,
    skip_branch_check: bool,
    cache_only: bool,
    ctx: &OpContext,
) -> Result<CommitInfo> {
    let need_history = matches!(revision, Revision::Version(_)) || !skip_branch_check;
    let remote = refspec.remote().filter(|_| !cache_only);
    if let (Some(remote), Revision::Checksum(c)) = (remote, revision) {
        if let Some(info) = pulled_before(repo, remote, refspec, c, skip_branch_check, ctx)? {
            return Ok(info);
        }
    }
    if let (Some(remote), true) = (remote, need_history) {
        fetch_history(repo, remote, refspec, ctx)?;
    }
    let target = locate_revision(repo, refspec, revision, skip_branch_check)?;
    if let Some(remote) = remote {
        let req = PullRequest {
            remote,
            refs: vec![target.clone()],
            commit_only: false,
            depth: 0,
            ..Default::default()
        };
        ctx.task(&format!("Pulling {}", commit::short(&target)), || {
            pull(repo, &req, ctx)
        })?;
    }
    match commit::load_optional(repo, &target)? {
        Some(info) if commit::is_complete(repo, &target)? => Ok(info),
        _ => Err(anyhow!(
            "Commit {target} is not (fully) in the local repo; run without --cache-only to fetch it"
        )),
    }
}

/// The commit `checksum` when the repo already holds all of it, on the branch as far as the
/// local history of `refspec` shows while the local ref is at the remote's head (unless
/// `skip_branch_check`; the remote's summary says where its head is), signed as `remote` requires
/// (checked here against the remote's keys): what fetching the history and the commit again
/// would confirm, at the cost of two repository transactions (each a `syncfs` and an `fsync`
/// of every object directory). `None` sends the caller to the remote, which has the last word
/// (and the error messages) on anything less certain.
fn pulled_before(
    repo: &ostree::Repo,
    remote: &str,
    refspec: &Refspec,
    checksum: &str,
    skip_branch_check: bool,
    ctx: &OpContext,
) -> Result<Option<CommitInfo>> {
    let Some(info) = commit::load_optional(repo, checksum)? else {
        return Ok(None);
    };
    // Signatures of the sign API (ed25519) are left to the pull.
    let sign_verify = repo
        .remote_boolean_option(remote, "sign-verify", false)
        .unwrap_or(true);
    if sign_verify || !commit::is_complete(repo, checksum)? {
        return Ok(None);
    }
    if !skip_branch_check {
        // The local history counts only while the local ref is where the remote's is (by its
        // summary): a branch the remote reset may no longer hold the commit.
        let Some(local) = commit::resolve(repo, &refspec.to_string())? else {
            return Ok(None);
        };
        if remote_head(repo, remote, refspec.ref_name(), ctx).as_ref() != Some(&local) {
            return Ok(None);
        }
        let (found, _) =
            commit::walk_history(repo, &local, |c| (c.checksum == checksum).then_some(()))?;
        if found.is_none() {
            return Ok(None);
        }
    }
    if repo.remote_get_gpg_verify(remote).unwrap_or(true) {
        let verified = repo
            .verify_commit_for_remote(checksum, remote, Some(ctx.cancellable()))
            .and_then(|r| r.require_valid_signature());
        if let Err(e) = verified {
            tracing::debug!("Commit {checksum} not verified locally: {e}");
            return Ok(None);
        }
    }
    Ok(Some(info))
}

/// Fetch the commit objects of `refspec`'s whole history from `remote` (no trees): what
/// looking a version up, or checking a commit is on the branch, needs.
pub(crate) fn fetch_history(
    repo: &ostree::Repo,
    remote: &str,
    refspec: &Refspec,
    ctx: &OpContext,
) -> Result<()> {
    let req = PullRequest {
        remote,
        refs: vec![refspec.ref_name().to_string()],
        commit_only: true,
        depth: -1,
        ..Default::default()
    };
    ctx.task(&format!("Fetching history of {refspec}"), || {
        pull(repo, &req, ctx)
    })
}

/// The commit `revision` names in the local history of `refspec` (fetched before, commit
/// objects only suffice): the commit of a version, or a checksum checked to be on the branch
/// unless `skip_branch_check`.
pub(crate) fn locate_revision(
    repo: &ostree::Repo,
    refspec: &Refspec,
    revision: &Revision,
    skip_branch_check: bool,
) -> Result<String> {
    let refstr = refspec.to_string();
    let head = || {
        commit::resolve(repo, &refstr)?
            .ok_or_else(|| anyhow!("The ref {refstr} is not in the local repo"))
    };
    let target = match revision {
        Revision::Version(v) => {
            let head = head()?;
            let mut versions = Vec::new();
            let (found, seen) = commit::walk_history(repo, &head, |c| {
                if c.version.as_deref() == Some(v.as_str()) {
                    return Some(c.checksum.clone());
                }
                versions.extend(c.version.clone());
                None
            })?;
            found.ok_or_else(|| {
                let recent: Vec<_> = versions.iter().take(10).cloned().collect();
                anyhow!(
                    "Version {v:?} not found in the history of {refstr} ({seen} commits searched; versions there: {})",
                    if recent.is_empty() { "none".to_string() } else { recent.join(", ") }
                )
            })?
        }
        Revision::Checksum(c) => {
            if !skip_branch_check {
                let head = head()?;
                let (found, seen) =
                    commit::walk_history(repo, &head, |x| (x.checksum == *c).then_some(()))?;
                if found.is_none() {
                    return Err(anyhow!(
                        "Commit {c} is not in the history of {refstr} ({seen} commits searched); pass --skip-branch-check to deploy it anyway"
                    ));
                }
            }
            c.clone()
        }
        Revision::ImageDigest(d) => return Err(image_digest_on_ref(d, refspec)),
    };
    Ok(target)
}

/// The refusal of an image digest for a deployment that follows an ostree ref.
fn image_digest_on_ref(digest: &str, refspec: &Refspec) -> anyhow::Error {
    anyhow!(
        "{digest} names a container image, but the deployment follows the ostree ref {refspec}; \
         rebase to the image reference and the digest instead (rebase IMGREF {digest})"
    )
}

/// Deploy `opts.revision` of the origin ref, pinning the origin to it (`override-commit`).
#[context("Deploying {}", opts.revision)]
pub fn deploy(sysroot: &Sysroot, opts: &DeployOptions, ctx: &OpContext) -> Result<Outcome> {
    let p = Prepared::new(sysroot, opts.osname.as_deref())?;
    if let Some(imgref) = p.origin.container_image_reference() {
        let imgref = imgref.to_string();
        return deploy_image(&p, &imgref, opts, ctx);
    }
    let refspec = p.refspec()?;
    let target = resolve_revision(
        &p.repo,
        &refspec,
        &opts.revision,
        opts.skip_branch_check,
        opts.cache_only,
        ctx,
    )?;
    if target.checksum == p.current.checksum {
        ctx.message(format!("Already at {}", p.current.describe()));
        return Ok(Outcome::Unchanged);
    }
    let mut origin = p.origin.clone();
    origin.set_override_commit(Some(&target.checksum));
    let finish = Finish::named_target(
        opts.disallow_downgrade,
        opts.download_only,
        opts.lock_finalization,
        opts.cache_only,
    );
    p.deploy(&target, &origin, &finish, ctx)
}

/// Deploy the image of the followed repository with manifest digest `opts.revision`, pinning
/// the origin to it (`override-commit=sha256:…`, as rpm-ostree writes it).
fn deploy_image(
    p: &Prepared<'_>,
    imgref: &str,
    opts: &DeployOptions,
    ctx: &OpContext,
) -> Result<Outcome> {
    let Revision::ImageDigest(digest) = &opts.revision else {
        return Err(anyhow!(
            "The deployment follows the container image {imgref}: deploy an image by its manifest digest (sha256:…), not {:?}",
            crate::origin::caller_text(&opts.revision.to_string())
        ));
    };
    if opts.cache_only {
        return Err(anyhow!(
            "An image is deployed by digest from its registry; run without --cache-only"
        ));
    }
    let deployed = p.current.image_digest();
    if deployed.as_deref() == Some(digest.as_str()) {
        ctx.message(format!("Already at {digest}"));
        return Ok(Outcome::Unchanged);
    }
    let image = crate::image::pull_digest(&p.repo_path(), imgref, digest, ctx)?;
    let target = commit::load(&p.repo, &image.commit)?;
    let mut origin = p.origin.clone();
    origin.set_override_commit(Some(digest));
    let finish = Finish::named_target(
        opts.disallow_downgrade,
        opts.download_only,
        opts.lock_finalization,
        opts.cache_only,
    );
    p.deploy(&target, &origin, &finish, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_forms() {
        let c = "a".repeat(64);
        assert_eq!(Revision::parse(&c).unwrap(), Revision::Checksum(c.clone()));
        assert_eq!(
            Revision::parse(&format!("revision={c}")).unwrap(),
            Revision::Checksum(c.clone())
        );
        assert_eq!(
            Revision::parse("version=41.2").unwrap(),
            Revision::Version("41.2".into())
        );
        assert_eq!(
            Revision::parse("41.2").unwrap(),
            Revision::Version("41.2".into())
        );
    }

    #[test]
    fn revision_errors() {
        for bad in [
            "",
            "revision=abc",
            "version=",
            "4 1",
            "x\ny",
            &"A".repeat(64),
        ] {
            let res = Revision::parse(bad);
            if bad == "A".repeat(64) {
                // Upper-case hex is not a checksum: it is taken as a version name.
                assert_eq!(res.unwrap(), Revision::Version(bad.to_string()));
                continue;
            }
            let e = res.unwrap_err().to_string();
            assert!(e.contains("Invalid revision"), "{bad:?}: {e}");
        }
    }
}
