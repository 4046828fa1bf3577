//! What an update would change, as rpm-ostree reports it: the cached update (the `CachedUpdate`
//! property, kept on disk across daemon restarts) and the package diffs of the `OS` interface's
//! rpm-diff methods.
//!
//! The cached update is rpm-ostree's `a{sv}`, written where rpm-ostree writes it: the raw
//! serialised variant in `/var/cache/rpm-ostree/cached-update.gv` of the stateroot (on a booted
//! host `/var` is `/ostree/deploy/<stateroot>/var`). It is measured from the booted deployment
//! (the merge deployment on a sysroot that is not booted), and its `update-sha256` key names
//! that deployment's commit: once another deployment is booted the file is stale and removed.
//!
//! Package lists come from [`crate::db`]: a commit's `rpmostree.rpmdb.pkglist` metadata, else
//! its rpmdb. Without either (a commit fetched as its object alone) the diff is left out, as
//! rpm-ostree leaves it out, and a check fetches the commit's `/usr/share/rpm` to fill it.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use fn_error_context::context;
use ostree::glib;
use ostree::glib::prelude::*;

use crate::commit::{self, CommitInfo};
use crate::db::{self, PackageDiff};
use crate::deploy::{fetch_history, locate_revision, Revision};
use crate::origin::{Refspec, RefspecKind};
use crate::progress::OpContext;
use crate::pull::{pull, PullRequest};
use crate::rebase::resolve_refspec;
use crate::sysroot::{deployment_id, Sysroot};

/// Where a stateroot's cached update lives, below the stateroot's `/var`.
pub const CACHE_FILE: &str = "cache/rpm-ostree/cached-update.gv";

/// Where the rpmdb of a tree may be (rpm-ostree's place, and newer systems' with the first a
/// symlink to it): what the rpm-diff downloads fetch of a commit; libostree skips a
/// directory the tree does not have.
const RPMDB_DIRS: [&str; 2] = ["/usr/share/rpm", "/usr/lib/sysimage/rpm"];

/// The largest cached update read back (libostree's limit on commit metadata).
const MAX_CACHE_SIZE: u64 = 128 * 1024 * 1024;

/// rpm-ostree's package type in `rpm-diff` tuples: a package of the base image (0) or a
/// layered one (1).
const PKG_TYPE_BASE: u32 = 0;

/// A changed package in `rpm-diff`: (type, name, (old EVR, old arch), (new EVR, new arch)).
type ChangedPackage = (u32, String, (String, String), (String, String));

/// The cached update file of `osname`.
pub fn cache_path(sysroot: &Sysroot, osname: &str) -> PathBuf {
    sysroot
        .path()
        .join("ostree/deploy")
        .join(osname)
        .join("var")
        .join(CACHE_FILE)
}

/// Replace the cached update of `osname` with `update` (remove it for `None`). The old file
/// goes first, as rpm-ostree does: a failure leaves no cached update rather than a stale one.
/// Paths are resolved beneath the stateroot (a symlink planted in its `var` cannot point the
/// write elsewhere), and the new file is renamed into place.
#[context("Writing the cached update of {osname}")]
pub fn store(sysroot: &Sysroot, osname: &str, update: Option<&glib::Variant>) -> Result<()> {
    use cap_std_ext::cap_std::{ambient_authority, fs::Dir};
    use cap_std_ext::dirext::CapStdExtDirExt;
    let stateroot = sysroot.path().join("ostree/deploy").join(osname);
    let dir = Dir::open_ambient_dir(&stateroot, ambient_authority())?;
    let file = format!("var/{CACHE_FILE}");
    dir.remove_file_optional(&file)?;
    let Some(update) = update else {
        return Ok(());
    };
    let parent = std::path::Path::new(&file)
        .parent()
        .expect("the cache file has a directory");
    dir.create_dir_all(parent)?;
    dir.atomic_write(&file, update.data())?;
    Ok(())
}

/// The cached update of `osname`, if one is stored and still measured from the current
/// deployment; a stale or unreadable file is removed.
#[context("Loading the cached update of {osname}")]
pub fn load(sysroot: &Sysroot, osname: &str) -> Result<Option<glib::Variant>> {
    let path = cache_path(sysroot, osname);
    let bytes = match fs_err::metadata(&path) {
        Ok(m) if m.len() > MAX_CACHE_SIZE => {
            tracing::warn!(
                "Removing {}: {} bytes is too large",
                path.display(),
                m.len()
            );
            fs_err::remove_file(&path)?;
            return Ok(None);
        }
        Ok(_) => fs_err::read(&path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let current = sysroot.merge_deployment(osname).ok().map(|d| d.csum());
    let v = glib::Variant::from_data_with_type(bytes, glib::VariantTy::VARDICT);
    // The file is data from disk: a variant not in normal form is not trusted.
    let stamp = v
        .is_normal_form()
        .then(|| {
            glib::VariantDict::new(Some(&v))
                .lookup::<String>("update-sha256")
                .ok()
                .flatten()
        })
        .flatten();
    match (stamp, current) {
        (Some(s), Some(c)) if s == c.as_str() => Ok(Some(v)),
        _ => {
            tracing::info!(
                "Deleting outdated cached update {} of stateroot {osname}",
                path.display()
            );
            fs_err::remove_file(&path)?;
            Ok(None)
        }
    }
}

/// The ostree ref a deployment follows, if it follows one (not a checksum, not an image).
fn followed_ref(sysroot: &Sysroot, d: &ostree::Deployment) -> Result<Option<Refspec>> {
    Ok(sysroot
        .origin(d)?
        .refspec()
        .filter(|r| r.kind() == RefspecKind::Ostree)
        .cloned())
}

/// rpm-ostree's cached update of `osname`, or `None` when there is no update: the base commit
/// its ref points at in the repo now, or the base of `staged` (the deployment an upgrade just
/// wrote), differs from the base of the current deployment.
#[context("Generating the cached update of {osname}")]
pub fn generate(
    sysroot: &Sysroot,
    osname: &str,
    staged: Option<&ostree::Deployment>,
) -> Result<Option<glib::Variant>> {
    let repo = sysroot.repo();
    let current = sysroot.merge_deployment(osname)?;
    if let Some(imgref) = sysroot.origin(&current)?.container_image_reference() {
        return generate_for_image(sysroot, osname, &current, imgref, staged);
    }
    let Some(refspec) = followed_ref(sysroot, &current)? else {
        return Ok(None);
    };
    let deployed = commit::load(&repo, &current.csum())?;
    let current_base = deployed.base_checksum().to_string();
    let (new, new_base) = match staged {
        Some(s) => {
            let info = commit::load(&repo, &s.csum())?;
            let base = info.base_checksum().to_string();
            (info.checksum, base)
        }
        None => match commit::resolve(&repo, &refspec.to_string())? {
            Some(c) => (c.clone(), c),
            None => return Ok(None),
        },
    };
    if new_base == current_base {
        return Ok(None);
    }
    let dict = details(
        &repo,
        osname,
        &refspec.to_string(),
        refspec.remote(),
        &new_base,
    )?;
    dict.insert("ref-has-new-commit", true);
    // A staged deployment is compared whole (layered packages included), a ref by its base.
    let (from, to) = match staged {
        Some(_) => (deployed.checksum.as_str(), new.as_str()),
        None => (current_base.as_str(), new_base.as_str()),
    };
    match db::diff_commits(&repo, from, to) {
        Ok(d) if !d.is_empty() => dict.insert_value("rpm-diff", &rpm_diff_variant(&d)),
        Ok(_) => {}
        Err(e) => tracing::info!("No package diff for the cached update: {e:#}"),
    }
    dict.insert_value("advisories", &no_advisories());
    if let Some(s) = staged {
        dict.insert("deployment", deployment_id(s));
    }
    dict.insert("update-sha256", current.csum().as_str());
    Ok(Some(dict.end()))
}

/// The cached update of an image-based deployment, as rpm-ostree makes it:
/// - after an upgrade that staged a new image, the staged deployment compared whole;
/// - else the manifest the image reference pointed at when it was last checked, which
///   ostree-ext keeps beside the deployed image (detached metadata of its merge commit): the
///   details of the deployed base (`ref-has-new-commit` false: the new image is not pulled),
///   the new image's `version`, and `manifest-diff` (`total`, `total-size`, `n-removed`,
///   `removed-size`, `n-added`, `added-size`: layers and bytes). No update when no layer
///   changed.
fn generate_for_image(
    sysroot: &Sysroot,
    osname: &str,
    current: &ostree::Deployment,
    imgref: &str,
    staged: Option<&ostree::Deployment>,
) -> Result<Option<glib::Variant>> {
    use ostree_ext::container::{store, version_for_config, ManifestDiff};
    let repo = sysroot.repo();
    let deployed = commit::load(&repo, &current.csum())?;
    let current_base = deployed.base_checksum();
    let dict = match staged {
        Some(s) => {
            let info = commit::load(&repo, &s.csum())?;
            if info.base_checksum() == current_base {
                return Ok(None);
            }
            let dict = details(&repo, osname, imgref, None, info.base_checksum())?;
            dict.insert("ref-has-new-commit", true);
            match db::diff_commits(&repo, &deployed.checksum, &info.checksum) {
                Ok(d) if !d.is_empty() => dict.insert_value("rpm-diff", &rpm_diff_variant(&d)),
                Ok(_) => {}
                Err(e) => tracing::info!("No package diff for the cached update: {e:#}"),
            }
            dict.insert("deployment", deployment_id(s));
            dict
        }
        None => {
            let state = match store::query_image_commit(&repo, current_base) {
                Ok(state) => state,
                Err(e) => {
                    tracing::info!("No image state for {current_base}: {e:#}");
                    return Ok(None);
                }
            };
            let Some(pending) = state
                .cached_update
                .as_ref()
                .filter(|c| c.manifest_digest != state.manifest_digest)
            else {
                return Ok(None);
            };
            let diff = ManifestDiff::new(&state.manifest, &pending.manifest);
            if diff.n_added == 0 && diff.n_removed == 0 {
                return Ok(None);
            }
            let dict = details(&repo, osname, imgref, None, current_base)?;
            dict.insert("ref-has-new-commit", false);
            if let Some(v) = version_for_config(&pending.config) {
                dict.insert("version", v);
            }
            let d = glib::VariantDict::new(None);
            d.insert("total", diff.total);
            d.insert("total-size", diff.total_size);
            d.insert("n-removed", diff.n_removed);
            d.insert("removed-size", diff.removed_size);
            d.insert("n-added", diff.n_added);
            d.insert("added-size", diff.added_size);
            dict.insert_value("manifest-diff", &d.end());
            dict
        }
    };
    dict.insert_value("advisories", &no_advisories());
    dict.insert("update-sha256", current.csum().as_str());
    Ok(Some(dict.end()))
}

/// Generate and store the cached update of `osname` (see [`generate`]); returns whether there
/// is one.
pub fn refresh(
    sysroot: &Sysroot,
    osname: &str,
    staged: Option<&ostree::Deployment>,
) -> Result<bool> {
    let update = generate(sysroot, osname, staged)?;
    store(sysroot, osname, update.as_ref())?;
    Ok(update.is_some())
}

/// An empty `advisories` value: Strata reads no updateinfo (security advisories) yet.
fn no_advisories() -> glib::Variant {
    type Advisory = (
        String,
        u32,
        u32,
        Vec<String>,
        std::collections::HashMap<String, glib::Variant>,
    );
    Vec::<Advisory>::new().to_variant()
}

/// `rpm-diff` of a cached update: `upgraded`/`downgraded` as `a(us(ss)(ss))` (type, name, (old
/// EVR, old arch), (new EVR, new arch)) and `removed`/`added` as `a(usss)` (type, name, EVR,
/// arch), each by name.
fn rpm_diff_variant(d: &PackageDiff) -> glib::Variant {
    let changed = |list: &[(db::Package, db::Package)]| {
        let mut v: Vec<ChangedPackage> = list
            .iter()
            .map(|(o, n)| {
                (
                    PKG_TYPE_BASE,
                    n.name.clone(),
                    (o.evr(), o.arch.clone()),
                    (n.evr(), n.arch.clone()),
                )
            })
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v.to_variant()
    };
    let single = |list: &[db::Package]| {
        let mut v: Vec<(u32, String, String, String)> = list
            .iter()
            .map(|p| (PKG_TYPE_BASE, p.name.clone(), p.evr(), p.arch.clone()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v.to_variant()
    };
    let dict = glib::VariantDict::new(None);
    dict.insert_value("upgraded", &changed(&d.upgraded));
    dict.insert_value("downgraded", &changed(&d.downgraded));
    dict.insert_value("removed", &single(&d.removed));
    dict.insert_value("added", &single(&d.added));
    dict.end()
}

/// What rpm-ostree says about a target commit: `osname`, `checksum`, `version`, `timestamp`,
/// `origin` (the refspec or image reference) and, for a ref of a remote, `gpg-enabled` with
/// the `signatures` (or `remote-error` when the remote is gone).
pub fn details(
    repo: &ostree::Repo,
    osname: &str,
    origin: &str,
    remote: Option<&str>,
    checksum: &str,
) -> Result<glib::VariantDict> {
    let dict = glib::VariantDict::new(None);
    dict.insert("osname", osname);
    dict.insert("checksum", checksum);
    if let Some(info) = commit::load_optional(repo, checksum)? {
        if let Some(v) = &info.version {
            dict.insert("version", v.as_str());
        }
        if info.timestamp > 0 {
            dict.insert("timestamp", info.timestamp);
        }
    }
    dict.insert("origin", origin);
    if let Some(remote) = remote {
        match repo.remote_get_gpg_verify(remote) {
            Ok(enabled) => {
                dict.insert("gpg-enabled", enabled);
                if enabled {
                    if let Some(sigs) = signatures(repo, checksum, remote) {
                        dict.insert_value("signatures", &sigs);
                    }
                }
            }
            Err(e) => dict.insert("remote-error", e.message()),
        }
    }
    Ok(dict)
}

/// The commit's GPG signatures checked against the remote's keys, each a `v` holding
/// libostree's signature tuple; `None` when the check cannot run.
fn signatures(repo: &ostree::Repo, checksum: &str, remote: &str) -> Option<glib::Variant> {
    let result = repo
        .verify_commit_for_remote(checksum, remote, ostree::gio::Cancellable::NONE)
        .map_err(|e| tracing::debug!("GPG verification of {checksum} for {remote}: {e}"))
        .ok()?;
    let sigs: Vec<glib::Variant> = (0..result.count_all())
        .map(|i| result.all(i).to_variant())
        .collect();
    Some(sigs.to_variant())
}

/// A package diff and the details of its target, for the rpm-diff methods.
#[derive(Debug)]
pub struct TargetDiff {
    pub diff: PackageDiff,
    /// [`details`] of the target, as an `a{sv}`.
    pub details: glib::Variant,
}

/// The deployment with `id` (`OSNAME-CHECKSUM.SERIAL`).
fn deployment_by_id(sysroot: &Sysroot, id: &str) -> Result<ostree::Deployment> {
    if id.is_empty() {
        return Err(anyhow!("The deployment ID is empty"));
    }
    sysroot
        .deployments()
        .into_iter()
        .find(|d| deployment_id(d) == id)
        .ok_or_else(|| {
            anyhow!(
                "Deployment with id '{}' not found",
                strata_api::text::printable(id, 256)
            )
        })
}

/// `GetDeploymentsRpmDiff`: from the packages of deployment `id0` to those of `id1`.
#[context("Comparing the packages of two deployments")]
pub fn deployments_diff(sysroot: &Sysroot, id0: &str, id1: &str) -> Result<PackageDiff> {
    let a = deployment_by_id(sysroot, id0)?;
    let b = deployment_by_id(sysroot, id1)?;
    db::diff_commits(&sysroot.repo(), &a.csum(), &b.csum())
}

/// The deployment `deployid` names, or the merge deployment of `osname` for `""`.
fn deployment_or_merge(
    sysroot: &Sysroot,
    osname: &str,
    deployid: &str,
) -> Result<ostree::Deployment> {
    if deployid.is_empty() {
        sysroot.merge_deployment(osname)
    } else {
        deployment_by_id(sysroot, deployid)
    }
}

/// The diff from a deployment to `refspec`'s commit in the local repo (the deployment itself
/// when the ref is not there).
fn diff_to_ref(
    sysroot: &Sysroot,
    osname: &str,
    from: &ostree::Deployment,
    refspec: &Refspec,
) -> Result<TargetDiff> {
    let repo = sysroot.repo();
    let target =
        commit::resolve(&repo, &refspec.to_string())?.unwrap_or_else(|| from.csum().to_string());
    diff_to(sysroot, osname, from, refspec, &target)
}

fn diff_to(
    sysroot: &Sysroot,
    osname: &str,
    from: &ostree::Deployment,
    refspec: &Refspec,
    target: &str,
) -> Result<TargetDiff> {
    let repo = sysroot.repo();
    Ok(TargetDiff {
        diff: db::diff_commits(&repo, &from.csum(), target)?,
        details: details(
            &repo,
            osname,
            &refspec.to_string(),
            refspec.remote(),
            target,
        )?
        .end(),
    })
}

/// `GetCachedUpdateRpmDiff`: from deployment `deployid` (the merge deployment for `""`) to
/// its ref as last fetched; nothing fetched, so an empty diff when the ref has not moved.
#[context("Comparing with the fetched update")]
pub fn update_diff(sysroot: &Sysroot, osname: &str, deployid: &str) -> Result<TargetDiff> {
    let from = deployment_or_merge(sysroot, osname, deployid)?;
    let refspec = followed_ref(sysroot, &from)?.ok_or_else(no_ref)?;
    diff_to_ref(sysroot, osname, &from, &refspec)
}

/// `GetCachedRebaseRpmDiff`: from the merge deployment to `refspec` (partial, as `rebase`
/// takes it) as last fetched.
#[context("Comparing with the fetched rebase target")]
pub fn rebase_diff(sysroot: &Sysroot, osname: &str, refspec: &str) -> Result<TargetDiff> {
    let from = sysroot.merge_deployment(osname)?;
    let current = followed_ref(sysroot, &from)?.ok_or_else(no_ref)?;
    let target = resolve_refspec(&current, refspec)?;
    diff_to_ref(sysroot, osname, &from, &target)
}

/// `GetCachedDeployRpmDiff`: from the merge deployment to `revision` of its ref, found in the
/// history fetched before.
#[context("Comparing with revision {revision}")]
pub fn deploy_diff(sysroot: &Sysroot, osname: &str, revision: &Revision) -> Result<TargetDiff> {
    let from = sysroot.merge_deployment(osname)?;
    let refspec = followed_ref(sysroot, &from)?.ok_or_else(no_ref)?;
    let target = locate_revision(&sysroot.repo(), &refspec, revision, true)?;
    diff_to(sysroot, osname, &from, &refspec, &target)
}

fn no_ref() -> anyhow::Error {
    anyhow!("The deployment follows no ostree ref (a pinned checksum or a container image), so there is no update to compare with")
}

/// What a `Download…RpmDiff` transaction fetches the package database of.
#[derive(Debug, Clone)]
pub enum DiffTarget {
    /// The deployment's ref (`DownloadUpdateRpmDiff`); the cached update is rewritten.
    Update,
    /// Another ref (`DownloadRebaseRpmDiff`), partial as `rebase` takes it.
    Rebase(String),
    /// A revision of the deployment's ref (`DownloadDeployRpmDiff`).
    Deploy(Revision),
}

/// Fetch the commit of `target` with its package database only (its `/usr/share/rpm`), so
/// that the rpm-diff methods can compare it; for [`DiffTarget::Update`] also rewrite the cached
/// update. Returns the commit.
#[context("Downloading the package database of the target")]
pub fn download_diff(
    sysroot: &Sysroot,
    osname: Option<&str>,
    target: &DiffTarget,
    ctx: &OpContext,
) -> Result<String> {
    let osname = sysroot.resolve_osname(osname)?;
    let merge = sysroot.merge_deployment(&osname)?;
    let current = followed_ref(sysroot, &merge)?.ok_or_else(no_ref)?;
    let repo = sysroot.repo();
    let refspec = match target {
        DiffTarget::Rebase(r) => resolve_refspec(&current, r)?,
        DiffTarget::Update | DiffTarget::Deploy(_) => current,
    };
    let refstr = refspec.to_string();
    let checksum = match (target, refspec.remote()) {
        (DiffTarget::Deploy(rev), remote) => {
            // A checksum is taken as it is (no branch check): only a version needs the history.
            if let (Some(remote), Revision::Version(_)) = (remote, rev) {
                fetch_history(&repo, remote, &refspec, ctx)?;
            }
            let c = locate_revision(&repo, &refspec, rev, true)?;
            fetch_rpmdb(&repo, remote, &c, ctx)?;
            c
        }
        (_, remote) => {
            fetch_rpmdb(&repo, remote, refspec.ref_name(), ctx)?;
            commit::resolve(&repo, &refstr)?
                .ok_or_else(|| anyhow!("The ref {refstr} is not in the local repo"))?
        }
    };
    let info = commit::load(&repo, &checksum)?;
    if checksum == commit::load(&repo, &merge.csum())?.base_checksum() {
        ctx.message(match target {
            DiffTarget::Update => "No upgrade available.".to_string(),
            _ => "No change.".to_string(),
        });
    } else {
        ctx.message(format!("Fetched the package list of {}", info.describe()));
    }
    if matches!(target, DiffTarget::Update) {
        refresh(sysroot, &osname, None)?;
    }
    Ok(checksum)
}

/// Fetch `what` (a ref or checksum of `remote`) with the `/usr/share/rpm` of its tree; nothing
/// for a local ref.
pub(crate) fn fetch_rpmdb(
    repo: &ostree::Repo,
    remote: Option<&str>,
    what: &str,
    ctx: &OpContext,
) -> Result<()> {
    let Some(remote) = remote else {
        return Ok(());
    };
    let req = PullRequest {
        remote,
        refs: vec![what.to_string()],
        subdirs: RPMDB_DIRS.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    ctx.task(
        &format!(
            "Fetching the package database of {remote}:{}",
            commit::short(what)
        ),
        || pull(repo, &req, ctx),
    )
}

/// Whether the commit lists its packages in its metadata, so that no rpmdb must be fetched to
/// compare it.
pub(crate) fn has_pkglist(info: &CommitInfo) -> bool {
    glib::VariantDict::new(Some(&info.metadata)).contains("rpmostree.rpmdb.pkglist")
}
