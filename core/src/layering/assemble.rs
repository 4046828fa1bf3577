//! Assembling a layered commit: the requested packages depsolved with libdnf against a copy of
//! the base's rpmdb, the base checked out with hard links, the packages downloaded, imported
//! into the package cache and checked out over it, the rpmdb rewritten, and the tree committed
//! with the devino cache (unchanged files are not read again) and rpm-ostree's metadata,
//! parent = base.
//!
//! Incremental layering (rpm-ostree always starts from the base): when a layered commit of the
//! same base holds a subset of the resolved packages, identical to the ones now resolved, it is
//! checked out instead of the base and only the missing packages are added, their scriptlets
//! run. Anything removed, or a new base, starts from the base. Each layered commit records its
//! inputs (`strata.layered-inputs`) for this; both paths give the same tree and rpmdb
//! contents. Scriptlets of packages added later run after those of the packages already there,
//! which is also the order rpm would run them in two transactions.
//!
//! Base packages are never replaced or removed: every installed package is locked in the
//! solver, and a solution that would still touch one is refused, naming it. The same base with
//! the same resolved package set gives the same `rpmostree.state-sha512`; a layered commit of
//! an existing deployment with that digest and base is reused without downloading or writing
//! anything (rpm-ostree only compares with the merge deployment; Strata looks at every
//! deployment, so installing again what a rollback deployment already layers costs nothing).
//!
//! `%pre`, `%post` and `%posttrans` of the new packages, then every package's
//! `%transfiletriggerin` (base and layered, over the whole tree), run in a bubblewrap sandbox
//! over an overlay of the tree ([`scripts`]); ownership from the header is applied after
//! `%pre` ([`owners`]).
//!
//! Not built yet, and refused with an error naming the package rather than done halfway:
//! packages with old-style `%triggerin` (rpm-ostree refuses them too) or `%filetriggerin`
//! (rpm-ostree skips those silently), file capabilities.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ostree::gio::prelude::*;
use ostree::{gio, glib};
use sha2::{Digest, Sha512};

use super::escape_for_message as esc;
use super::import::{import_rpm, nevra_of, RepoSource};
use super::nevra::Nevra;
use super::{owners, rpmdb, scripts};
use crate::commit::CommitInfo;
use crate::progress::{Event, OpContext};

/// `rpmostree.clientlayer_version` of the commits rpm-ostree writes today.
pub const CLIENTLAYER_VERSION: u32 = 6;

/// What to layer on which base.
#[derive(Debug, Clone)]
pub struct LayerRequest {
    /// The base commit.
    pub base: String,
    /// `[packages] requested`: names or provides.
    pub packages: Vec<String>,
    /// `[packages] requested-local`: packages imported from local files, found in the package
    /// cache by NEVRA and header checksum.
    pub local: Vec<crate::origin::LocalPackage>,
    /// The directory of `.repo` files (the merge deployment's `/etc/yum.repos.d`).
    pub repos_dir: PathBuf,
    /// libdnf's metadata, solver and package caches.
    pub cache_dir: PathBuf,
    /// Use only cached repository metadata.
    pub cache_only: bool,
    /// New requests the base must not already satisfy (rpm-ostree refuses them unless
    /// `--allow-inactive`; requests that became inactive through an upgrade stay allowed).
    pub forbid_inactive: Vec<String>,
    /// Scratch space on the repository's filesystem (the tree is a hard-link checkout), as a
    /// real path: `rpm` runs as a separate process and cannot follow the `/proc/self/fd` path
    /// libostree may hand out for the repository.
    pub work_dir: PathBuf,
}

/// The result of [`assemble`].
#[derive(Debug, Clone)]
pub struct Layered {
    /// The commit to deploy: the layered commit, or the base when nothing is left to layer.
    pub commit: String,
    /// Whether an existing layered commit was reused.
    pub reused: bool,
    /// The layered commit this one was built on when only packages were added (incremental
    /// layering); `None` when built from the base.
    pub incremental_from: Option<String>,
    /// The packages layered (requested and their dependencies).
    pub packages: Vec<Nevra>,
    /// Requests the base already satisfies: (request, providing base package).
    pub inactive: Vec<(String, String)>,
}

/// Assembles (or reuses) the layered commit for `req` in `repo`.
pub fn assemble(
    repo: &ostree::Repo,
    req: &LayerRequest,
    previous: &[CommitInfo],
    ctx: &OpContext,
) -> Result<Layered> {
    let cancellable = Some(ctx.cancellable());
    remove_stale_work_dirs(&req.work_dir);
    let work = tempfile::Builder::new()
        .prefix(WORK_PREFIX)
        .tempdir_in(&req.work_dir)?;
    let (base_tree, _) = repo.read_commit(&req.base, cancellable)?;
    // The solver needs only the base's rpmdb: a copy of that one directory, so a request that
    // ends in reuse (or an error) never checks out the whole base.
    let solve_root = work.path().join("solve");
    let dbpath = rpmdb::copy_from_commit(repo, &req.base, &solve_root, cancellable)?;

    let config = libdnf::Config {
        install_root: solve_root,
        rpmdb: dbpath.to_string(),
        repos_dir: req.repos_dir.clone(),
        cache_dir: req.cache_dir.clone(),
        release_ver: release_ver(&base_tree, cancellable)?,
        arch: None,
    };
    let mut dnf = libdnf::Context::new(&config, cancellable)?;
    let local = cached_local_packages(repo, &req.local, &work.path().join("local"))?;
    let policy = if req.cache_only {
        libdnf::Metadata::CacheOnly
    } else {
        libdnf::Metadata::Default
    };
    // One progress line per repository that needs fresh metadata, as rpm-ostree shows it.
    ctx.check_cancelled()?;
    let loaded = {
        let mut progress = |repo: &str, percent: u32| {
            ctx.emit(Event::Percent {
                text: format!("Updating metadata for '{}'", esc(repo)),
                percent,
            })
        };
        dnf.load(policy, &mut progress, cancellable)
    };
    ctx.emit(Event::ProgressEnd);
    loaded?;

    let local_pkgs = local
        .iter()
        .map(|l| dnf.add_local_package(&l.header_file))
        .collect::<Result<Vec<_>, _>>()?;
    let Solution { installs, inactive } = ctx.task("Resolving dependencies", || {
        solve(&dnf, &req.packages, &local_pkgs)
    })?;
    if let Some((request, provider)) = inactive
        .iter()
        .find(|(r, _)| req.forbid_inactive.contains(r))
    {
        bail!(
            "\"{}\" is already provided by {provider} in the base; use --allow-inactive to request it anyway",
            esc(request)
        );
    }
    let packages: Vec<Nevra> = installs.iter().map(nevra_of_pkg).collect();
    if installs.is_empty() {
        return Ok(Layered {
            commit: req.base.clone(),
            reused: false,
            incremental_from: None,
            packages,
            inactive,
        });
    }
    let inputs: Vec<Input> = installs
        .iter()
        .map(|p| Input::of(p, &local))
        .collect::<Result<_>>()?;
    let state = state_digest(&req.base, &inputs);
    if let Some(prev) = previous.iter().find(|prev| {
        prev.parent.as_deref() == Some(req.base.as_str())
            && prev.meta_string("rpmostree.state-sha512").as_deref() == Some(state.as_str())
    }) {
        return Ok(Layered {
            commit: prev.checksum.clone(),
            reused: true,
            incremental_from: None,
            packages,
            inactive,
        });
    }

    // Incremental: start from a layered commit of the same base whose packages are all still
    // wanted, and add only the rest. Anything removed or a new base means from scratch.
    let start = incremental_start(previous, &req.base, &inputs);
    let no_packages = BTreeSet::new();
    let (start_commit, present) = match &start {
        Some((prev, present)) => {
            ctx.message(format!(
                "Adding to layered commit {} ({} package{} already in it)",
                crate::commit::short(&prev.checksum),
                present.len(),
                if present.len() == 1 { "" } else { "s" }
            ));
            (prev.checksum.as_str(), present)
        }
        None => (req.base.as_str(), &no_packages),
    };
    let installs: Vec<&libdnf::Package<'_>> = installs
        .iter()
        .zip(&inputs)
        .filter(|(_, input)| !present.contains(*input))
        .map(|(p, _)| p)
        .collect();
    let is_local = |p: &libdnf::Package<'_>| p.repo_name() == libdnf::COMMANDLINE_REPO;
    let (local_installs, installs): (Vec<_>, Vec<_>) =
        installs.into_iter().partition(|p| is_local(p));

    let root = work.path().join("root");
    let devino = ostree::RepoDevInoCache::new();
    ctx.task(
        &format!("Checking out tree {}", crate::commit::short(start_commit)),
        || {
            let opts = ostree::RepoCheckoutAtOptions {
                devino_to_csum_cache: Some(devino.clone()),
                ..Default::default()
            };
            repo.checkout_at(
                Some(&opts),
                rustix::fs::CWD.as_raw_fd(),
                &root,
                start_commit,
                cancellable,
            )
            .context("Checking out the tree to layer on")
        },
    )?;
    rpmdb::detach(&root, dbpath)?;

    let size: u64 = installs.iter().map(|p| p.download_size()).sum();
    if !installs.is_empty() {
        ctx.message(format!(
            "Will download: {} package{} ({})",
            installs.len(),
            if installs.len() == 1 { "" } else { "s" },
            glib::format_size(size)
        ));
    }
    ctx.check_cancelled()?;
    let files = {
        let mut progress = |percent: u32| {
            ctx.emit(Event::Percent {
                text: "Downloading packages".into(),
                percent,
            })
        };
        dnf.download(installs.iter().copied(), &mut progress, cancellable)
    };
    ctx.emit(Event::ProgressEnd);
    let files = files?;

    // Local packages are in the cache since the request was made.
    let mut imported: Vec<Unpacked> = local_installs
        .iter()
        .map(|p| {
            let l = local
                .iter()
                .find(|l| l.nevra == nevra_of_pkg(p))
                .expect("a local package solved is one of the requested");
            Unpacked {
                nevra: l.nevra.clone(),
                commit: l.commit.clone(),
                header: l.header.clone(),
            }
        })
        .collect();
    ctx.task(&format!("Importing packages ({})", installs.len()), || {
        for (pkg, file) in installs.iter().zip(&files) {
            ctx.check_cancelled()?;
            refuse_unsupported(file)?;
            let source = RepoSource {
                id: pkg.repo_name(),
                timestamp: 0,
                checksum: pkg.checksum(),
            };
            let pkg = import_rpm(repo, file, Some(&source), ctx)?;
            imported.push(Unpacked {
                nevra: pkg.nevra,
                commit: pkg.commit,
                header: pkg.header,
            });
            // Once in the package cache, a downloaded file is not needed again (rpm-ostree
            // deletes it too). A package of a local repo is that repo's own file: kept.
            if file.starts_with(&req.cache_dir) {
                if let Err(e) = fs::remove_file(file) {
                    tracing::warn!("Removing {}: {e}", file.display());
                }
            }
        }
        Ok(())
    })?;

    ctx.task(
        &format!("Checking out packages ({})", imported.len()),
        || {
            for pkg in &imported {
                ctx.check_cancelled()?;
                overlay(repo, &pkg.commit, &pkg.nevra, &root, cancellable)?;
            }
            merge_tmpfiles(&root)
        },
    )?;

    let headers: Vec<(Nevra, Vec<u8>)> =
        imported.into_iter().map(|p| (p.nevra, p.header)).collect();
    let order = install_order(&headers)?;
    let mut scripts = Vec::new();
    for &i in &order {
        scripts.extend(scripts::scriptlets(&headers[i].0, &headers[i].1)?);
    }
    let sandbox = scripts::Sandbox::new(&root, &work.path().join("sandbox"))?;
    let phase = |p: scripts::Phase| -> Vec<scripts::Scriptlet> {
        scripts.iter().filter(|s| s.phase == p).cloned().collect()
    };
    let pre = phase(scripts::Phase::Pre);
    if !pre.is_empty() {
        ctx.task("Running pre scripts", || sandbox.run_all(&pre, ctx))?;
    }
    // Users and groups a new package declares in sysusers.d (rpm ≥ 4.19 packages create them
    // this way instead of in %pre), before ownership is applied, as rpm does.
    if let Some(sysusers) = scripts::sysusers(&root, &headers)? {
        ctx.task("Creating users and groups", || {
            sandbox.run_all(std::slice::from_ref(&sysusers), ctx)
        })?;
    }
    for &i in &order {
        owners::apply(&root, &headers[i].0, &headers[i].1)?;
    }
    let post = phase(scripts::Phase::Post);
    if !post.is_empty() {
        ctx.task("Running post scripts", || sandbox.run_all(&post, ctx))?;
    }
    let posttrans = phase(scripts::Phase::PostTrans);
    if !posttrans.is_empty() {
        ctx.task("Running posttrans scripts", || {
            sandbox.run_all(&posttrans, ctx)
        })?;
    }
    let by_name: Vec<(String, Vec<u8>)> = order
        .iter()
        .map(|&i| (headers[i].0.to_string(), headers[i].1.clone()))
        .collect();
    ctx.task("Writing rpmdb", || {
        rpmdb::add_packages(&root, dbpath, &by_name)
    })?;
    // Base and layered packages' %transfiletriggerin, over the whole tree (as rpm-ostree: also
    // on the incremental path, so both give the same tree).
    let triggers = scripts::trans_file_triggers(&root, dbpath)?;
    if !triggers.is_empty() {
        ctx.task("Running file triggers", || sandbox.run_all(&triggers, ctx))?;
    }
    let pkglist = rpmdb::list(&root, dbpath)?;

    let base_info = crate::commit::load(repo, &req.base)?;
    // rpm-ostree records the requests that are active (`status` shows them as LayeredPackages).
    let active: Vec<String> = req
        .packages
        .iter()
        .filter(|p| !inactive.iter().any(|(r, _)| r == *p))
        .cloned()
        .collect();
    let metadata = layered_metadata(&base_info, &active, &pkglist, &inputs, &state);
    let commit = ctx.task("Writing OSTree commit", || {
        commit_tree(repo, &root, &req.base, &metadata, &devino, cancellable)
    })?;
    let incremental_from = start.map(|(prev, _)| prev.checksum.clone());
    Ok(Layered {
        commit,
        reused: false,
        incremental_from,
        packages,
        inactive,
    })
}

/// The prefix of assembly's scratch directories.
const WORK_PREFIX: &str = "strata-layer-";

/// Removes scratch directories an assembly killed midway left (a whole hard-link checkout
/// each). Only one transaction runs at a time (the sysroot lock), so none is in use.
fn remove_stale_work_dirs(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(WORK_PREFIX) {
            tracing::info!(
                "Removing {}, left by an interrupted assembly",
                e.path().display()
            );
            if let Err(err) = fs::remove_dir_all(e.path()) {
                tracing::warn!("Removing {}: {err}", e.path().display());
            }
        }
    }
}

/// `VERSION_ID` from the base's os-release, for `$releasever` in `.repo` files.
fn release_ver(tree: &gio::File, cancellable: Option<&gio::Cancellable>) -> Result<String> {
    for rel in ["usr/lib/os-release", "usr/etc/os-release"] {
        // Followed if a symlink (Fedora's /usr/etc/os-release points to ../lib/os-release).
        let Ok((bytes, _)) = tree.resolve_relative_path(rel).load_contents(cancellable) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        // os-release is shell-style KEY=value lines; only one unquoted or quoted value is read,
        // which does not need a shell-word parser.
        for line in text.lines() {
            if let Some(v) = line.trim().strip_prefix("VERSION_ID=") {
                return Ok(v.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    bail!(
        "The base has no VERSION_ID in /usr/lib/os-release, which $releasever in .repo files needs"
    )
}

/// One input of a layered commit: a package's NEVRA and its checksum (the repository's
/// checksum of the package file; empty when the repository gives none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Input {
    nevra: String,
    checksum: String,
}

impl Input {
    /// A local package's checksum is its header's, as in `requested-local`.
    fn of(p: &libdnf::Package<'_>, local: &[LocalInCache]) -> Result<Input> {
        let checksum = if p.repo_name() == libdnf::COMMANDLINE_REPO {
            let nevra = nevra_of_pkg(p);
            let l = local.iter().find(|l| l.nevra == nevra).ok_or_else(|| {
                anyhow!("{nevra} was solved as a local package but not requested")
            })?;
            format!("local:{}", l.sha256)
        } else {
            p.checksum().unwrap_or_default()
        };
        Ok(Input {
            nevra: p.nevra(),
            checksum,
        })
    }
}

/// A package to check out over the tree: its cache commit and header.
struct Unpacked {
    nevra: Nevra,
    commit: String,
    header: Vec<u8>,
}

/// A `requested-local` package found in the package cache.
struct LocalInCache {
    nevra: Nevra,
    sha256: String,
    commit: String,
    header: Vec<u8>,
    /// The header alone as a file: libdnf reads it as a package without a payload, which is
    /// all the solver needs.
    header_file: PathBuf,
}

/// Finds each local package's commit in the package cache (its ref, with the header checksum
/// the origin records) and writes its header into `dir` for the solver.
fn cached_local_packages(
    repo: &ostree::Repo,
    requested: &[crate::origin::LocalPackage],
    dir: &Path,
) -> Result<Vec<LocalInCache>> {
    let mut out = Vec::new();
    for l in requested {
        let nevra = Nevra::parse(&l.nevra).ok_or_else(|| {
            anyhow!(
                "requested-local {}: not a NAME-VERSION-RELEASE.ARCH",
                esc(&l.nevra)
            )
        })?;
        let missing = || {
            anyhow!(
                "The local package {nevra} (header sha256 {}) is not in the package cache; install its .rpm file again",
                l.sha256
            )
        };
        let commit = repo
            .resolve_rev(&nevra.cache_ref(), true)?
            .ok_or_else(missing)?
            .to_string();
        let info = crate::commit::load(repo, &commit)?;
        if info.meta_string("rpmostree.metadata_sha256").as_deref() != Some(l.sha256.as_str()) {
            return Err(missing());
        }
        let header: Vec<u8> = glib::VariantDict::new(Some(&info.metadata))
            .lookup_value("rpmostree.metadata", Some(glib::VariantTy::BYTE_STRING))
            .map(|v| v.fixed_array::<u8>().map(<[u8]>::to_vec))
            .transpose()?
            .ok_or_else(|| anyhow!("{nevra}: its cache commit has no rpmostree.metadata"))?;
        fs::create_dir_all(dir)?;
        let header_file = dir.join(format!("{}.rpm", nevra.cache_ref().replace('/', "_")));
        fs::write(&header_file, &header)?;
        out.push(LocalInCache {
            nevra,
            sha256: l.sha256.clone(),
            commit,
            header,
            header_file,
        });
    }
    Ok(out)
}

/// Strata's own commit metadata key: the inputs of `rpmostree.state-sha512`, `a(ss)` of
/// (NEVRA, checksum), so a later request can tell which packages a layered commit holds.
pub const INPUTS_KEY: &str = "strata.layered-inputs";

/// The layered commit of `base` to build on for `wanted`: the one holding the most packages
/// whose inputs are all in `wanted` (and not all of it: that is reuse), with the inputs it
/// holds. A commit whose recorded inputs do not give its own state digest is not trusted.
fn incremental_start<'p>(
    previous: &'p [CommitInfo],
    base: &str,
    wanted: &[Input],
) -> Option<(&'p CommitInfo, BTreeSet<Input>)> {
    previous
        .iter()
        .filter(|prev| prev.parent.as_deref() == Some(base))
        .filter_map(|prev| {
            let inputs: Vec<(String, String)> = glib::VariantDict::new(Some(&prev.metadata))
                .lookup(INPUTS_KEY)
                .ok()??;
            let mut inputs: Vec<Input> = inputs
                .into_iter()
                .map(|(nevra, checksum)| Input { nevra, checksum })
                .collect();
            inputs.sort();
            let digest = state_digest(base, &inputs);
            (prev.meta_string("rpmostree.state-sha512").as_deref() == Some(digest.as_str())
                && inputs.len() < wanted.len()
                && inputs.iter().all(|i| wanted.contains(i)))
            .then(|| (prev, inputs.into_iter().collect::<BTreeSet<_>>()))
        })
        .max_by_key(|(_, inputs)| inputs.len())
}

/// The packages to install, and the requests the base already satisfies (request, provider).
struct Solution<'c> {
    installs: Vec<libdnf::Package<'c>>,
    inactive: Vec<(String, String)>,
}

/// Depsolves the requests and the local packages against the installed set.
fn solve<'c>(
    dnf: &'c libdnf::Context,
    requests: &[String],
    local: &[libdnf::Package<'c>],
) -> Result<Solution<'c>> {
    let mut goal = dnf.goal()?;
    for p in local {
        goal.install(p)?;
    }
    let mut inactive = Vec::new();
    let mut missing = Vec::new();
    for spec in requests {
        let installed = dnf.query()?.installed()?.name(spec)?.run();
        let installed = if installed.is_empty() {
            dnf.query()?.installed()?.provides(spec)?.run()
        } else {
            installed
        };
        if let Some(p) = installed.first() {
            inactive.push((spec.clone(), p.nevra()));
            continue;
        }
        if !goal.install_spec(spec)? {
            missing.push(esc(spec));
        }
    }
    if !missing.is_empty() {
        bail!("Packages not found: {}", missing.join(", "));
    }
    if requests.len() == inactive.len() && local.is_empty() {
        return Ok(Solution {
            installs: Vec::new(),
            inactive,
        });
    }
    for p in dnf.query()?.installed()?.run() {
        goal.lock(&p)?;
    }
    goal.solve(true).map_err(|e| anyhow!("{e}"))?;
    let mut touched = Vec::new();
    for change in [
        libdnf::Change::Erase,
        libdnf::Change::Upgrade,
        libdnf::Change::Downgrade,
        libdnf::Change::Reinstall,
        libdnf::Change::Obsoleted,
    ] {
        for p in goal.list(change) {
            touched.push(format!("{} ({change:?})", p.nevra()));
        }
    }
    if !touched.is_empty() {
        bail!(
            "The request would replace or remove base packages, which layering never does: {}",
            touched.join(", ")
        );
    }
    let mut installs = goal.list(libdnf::Change::Install);
    installs.sort_by_key(|p| p.nevra());
    Ok(Solution { installs, inactive })
}

fn nevra_of_pkg(p: &libdnf::Package<'_>) -> Nevra {
    Nevra {
        name: p.name(),
        epoch: p.epoch(),
        version: p.version(),
        release: p.release(),
        arch: p.arch(),
    }
}

/// rpm-ostree's `rpmostree.state-sha512` idea: a digest of the inputs (the base and each package
/// to install with its checksum, sorted by NEVRA), equal inputs → equal digest.
fn state_digest(base: &str, inputs: &[Input]) -> String {
    let mut h = Sha512::new();
    h.update(b"strata-layering-1\0");
    h.update(base.as_bytes());
    for i in inputs {
        h.update(b"\0install\0");
        h.update(i.nevra.as_bytes());
        h.update(b"\0");
        h.update(i.checksum.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Refuses a package file assembly cannot layer yet, naming the package (see the module
/// documentation).
pub fn refuse_unsupported(file: &Path) -> Result<()> {
    let meta = rpm::PackageMetadata::open(file)
        .map_err(|e| anyhow!("{}: not a readable RPM: {e}", file.display()))?;
    let nevra = nevra_of(&meta)?;
    let h = &meta.header;
    use rpm::IndexTag::*;
    // %transfiletriggerin runs (see `scripts::trans_file_triggers`); old-style triggers are
    // refused as rpm-ostree refuses them; %filetriggerin, which rpm-ostree skips silently, is
    // refused too rather than left unrun.
    for (tag, what) in [
        (RPMTAG_FILETRIGGERSCRIPTS, "%filetriggerin/%filetriggerun"),
        (RPMTAG_TRIGGERSCRIPTS, "%triggerin/%triggerun"),
    ] {
        if h.entry_is_present(tag) {
            bail!(
                "{nevra} has a {what} scriptlet; Strata runs only %transfiletriggerin triggers, so it refuses to layer this package rather than install it half-configured"
            );
        }
    }
    for f in meta
        .get_file_entries()
        .map_err(|e| anyhow!("{nevra}: reading the file list: {e}"))?
    {
        if f.caps().is_some_and(|c| !c.is_empty()) {
            bail!(
                "{nevra}: {} has file capabilities, which Strata cannot layer yet",
                esc(&f.path().to_string_lossy())
            );
        }
    }
    Ok(())
}

/// Install order: a package after the packages providing what it requires (names, provides
/// or files), ties by name; a dependency cycle keeps name order for the packages in it.
fn install_order(headers: &[(Nevra, Vec<u8>)]) -> Result<Vec<usize>> {
    use rpm::IndexTag::*;
    let mut requires = Vec::new();
    let mut provides = Vec::new();
    for (nevra, bytes) in headers {
        let meta = rpm::PackageMetadata::parse(&mut &bytes[..])
            .map_err(|e| anyhow!("{nevra}: reading the package header: {e}"))?;
        let strings = |tag| -> Vec<String> {
            meta.header
                .get_entry_data_as_string_array(tag)
                .map(|v| v.into_iter().map(str::to_string).collect())
                .unwrap_or_default()
        };
        requires.push(strings(RPMTAG_REQUIRENAME));
        let mut p = strings(RPMTAG_PROVIDENAME);
        p.push(nevra.name.clone());
        if let Ok(files) = meta.get_file_entries() {
            p.extend(
                files
                    .iter()
                    .map(|f| f.path().to_string_lossy().into_owned()),
            );
        }
        provides.push(p);
    }
    let n = headers.len();
    let deps: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i && requires[i].iter().any(|r| provides[j].contains(r)))
                .collect()
        })
        .collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let ready = (0..n).find(|&i| !done[i] && deps[i].iter().all(|&j| done[j]));
        // In a cycle nothing is ready: take the first remaining package.
        let next = ready.unwrap_or_else(|| (0..n).find(|&i| !done[i]).expect("one remains"));
        done[next] = true;
        order.push(next);
    }
    Ok(order)
}

/// Checks a package's commit out over the tree. A file that exists with other content is a
/// conflict; a directory of the package where the tree has a symlink is refused (checking out
/// through it could write outside the tree).
fn overlay(
    repo: &ostree::Repo,
    commit: &str,
    nevra: &Nevra,
    root: &Path,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let (tree, _) = repo.read_commit(commit, cancellable)?;
    check_dirs(&tree, root, Path::new(""), nevra, cancellable)?;
    let opts = ostree::RepoCheckoutAtOptions {
        overwrite_mode: ostree::RepoCheckoutOverwriteMode::UnionIdentical,
        // libostree compares files by inode in this mode, so it requires hard links.
        no_copy_fallback: true,
        ..Default::default()
    };
    repo.checkout_at(
        Some(&opts),
        rustix::fs::CWD.as_raw_fd(),
        root,
        commit,
        cancellable,
    )
    .map_err(|e| anyhow!("{nevra} conflicts with the files already in the tree: {e}"))
}

fn check_dirs(
    dir: &gio::File,
    root: &Path,
    rel: &Path,
    nevra: &Nevra,
    cancellable: Option<&gio::Cancellable>,
) -> Result<()> {
    let children = dir.enumerate_children(
        "standard::name,standard::type",
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        cancellable,
    )?;
    while let Some(info) = children.next_file(cancellable)? {
        if info.file_type() != gio::FileType::Directory {
            continue;
        }
        let name = info.name();
        let child_rel = rel.join(&name);
        match fs::symlink_metadata(root.join(&child_rel)) {
            Ok(m) if m.file_type().is_symlink() => bail!(
                "{nevra} has a directory /{} where the tree has a symlink; refusing to write through it",
                esc(&child_rel.to_string_lossy())
            ),
            Ok(m) if !m.is_dir() => bail!(
                "{nevra} has a directory /{} where the tree has a file",
                esc(&child_rel.to_string_lossy())
            ),
            Ok(_) => check_dirs(&dir.child(&name), root, &child_rel, nevra, cancellable)?,
            // New directory: nothing below it exists in the tree either.
            Err(_) => {}
        }
    }
    Ok(())
}

/// Gathers the packages' `/var` and `/run` tmpfiles lines into the file systemd-tmpfiles reads,
/// as rpm-ostree does (`usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf`).
fn merge_tmpfiles(root: &Path) -> Result<()> {
    let dir = root.join("usr/lib/rpm-ostree/tmpfiles.d");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    let target = root.join("usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf");
    let mut lines = BTreeSet::new();
    if let Ok(existing) = fs::read_to_string(&target) {
        lines.extend(existing.lines().map(str::to_string));
    }
    for e in entries {
        let text = fs::read_to_string(e?.path())?;
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    fs::create_dir_all(target.parent().expect("has a parent"))?;
    // A new file (the old one may be a hard link to a repository object).
    let _ = fs::remove_file(&target);
    fs::write(
        &target,
        lines.into_iter().collect::<Vec<_>>().join("\n") + "\n",
    )?;
    Ok(())
}

fn layered_metadata(
    base: &CommitInfo,
    requested: &[String],
    pkglist: &[rpmdb::PkgTuple],
    inputs: &[Input],
    state: &str,
) -> glib::Variant {
    let dict = glib::VariantDict::new(None);
    if let Some(v) = &base.version {
        dict.insert("version", v.as_str());
    }
    dict.insert("rpmostree.clientlayer", true);
    dict.insert("rpmostree.clientlayer_version", CLIENTLAYER_VERSION);
    let mut requested: Vec<String> = requested.to_vec();
    requested.sort();
    dict.insert("rpmostree.packages", requested);
    dict.insert("rpmostree.modules", Vec::<String>::new());
    dict.insert_value(
        "rpmostree.removed-base-packages",
        &glib::Variant::array_from_iter_with_type(
            glib::VariantTy::VARIANT,
            std::iter::empty::<glib::Variant>(),
        ),
    );
    dict.insert_value(
        "rpmostree.replaced-base-packages",
        &glib::Variant::array_from_iter_with_type(
            glib::VariantTy::new("(vv)").expect("valid type"),
            std::iter::empty::<glib::Variant>(),
        ),
    );
    dict.insert_value("rpmostree.rpmdb.pkglist", &pkglist.to_vec().to_variant());
    dict.insert("rpmostree.state-sha512", state);
    let inputs: Vec<(String, String)> = inputs
        .iter()
        .map(|i| (i.nevra.clone(), i.checksum.clone()))
        .collect();
    dict.insert_value(INPUTS_KEY, &inputs.to_variant());
    dict.end()
}

fn commit_tree(
    repo: &ostree::Repo,
    root: &Path,
    base: &str,
    metadata: &glib::Variant,
    devino: &ostree::RepoDevInoCache,
    cancellable: Option<&gio::Cancellable>,
) -> Result<String> {
    let txn = repo.auto_transaction(cancellable)?;
    let mtree = ostree::MutableTree::new();
    let modifier = ostree::RepoCommitModifier::new(ostree::RepoCommitModifierFlags::CONSUME, None);
    modifier.set_devino_cache(devino);
    let root_dir = gio::File::for_path(root);
    repo.write_directory_to_mtree(&root_dir, &mtree, Some(&modifier), cancellable)?;
    let tree = repo.write_mtree(&mtree, cancellable)?;
    let tree = tree
        .downcast::<ostree::RepoFile>()
        .map_err(|_| anyhow!("ostree returned a root that is not a RepoFile"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let commit = repo.write_commit_with_time(
        Some(base),
        Some(""),
        None,
        Some(metadata),
        &tree,
        now,
        cancellable,
    )?;
    txn.commit(cancellable)?;
    Ok(commit.to_string())
}
