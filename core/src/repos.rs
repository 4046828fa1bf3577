//! The rpm-md repositories of a deployment, as rpm-ostree's `OS` interface exposes them:
//! `RefreshMd`, `ListRepos`, `ModifyYumRepo`, `GetPackages`, `WhatProvides` and `Search`.
//!
//! Each call opens a libdnf context on the merge deployment (the booted one on a host): its
//! `/etc/yum.repos.d`, `$releasever` from its os-release and the stateroot's metadata cache
//! (the one layering uses), without an installed set (as rpm-ostree's, they answer what the
//! repositories offer). Queries answer from the cached metadata however old, downloading only
//! what was never fetched, as rpm-ostree does; `RefreshMd` is how a client asks for fresh
//! metadata.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context as _, Result};
use fn_error_context::context;

use crate::layering::rpmdb;
use crate::progress::{Event, OpContext};
use crate::stage::Outcome;
use crate::sysroot::Sysroot;

/// A repository as `ListRepos` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    pub id: String,
    /// Its `name=`.
    pub description: String,
    pub enabled: bool,
    pub is_devel: bool,
    pub is_source: bool,
}

/// A package as `GetPackages`, `WhatProvides` and `Search` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// What matched it: the name asked for (`GetPackages`) or the search group
    /// (`match_group_a`…`c`); `None` for `WhatProvides`.
    pub key: Option<String>,
    pub name: String,
    pub epoch: u64,
    pub version: String,
    pub arch: String,
    pub nevra: String,
    pub evr: String,
    pub summary: String,
    pub reponame: String,
}

impl PackageInfo {
    fn of(p: &libdnf::Package<'_>, key: Option<&str>) -> PackageInfo {
        PackageInfo {
            key: key.map(str::to_string),
            name: p.name(),
            epoch: p.epoch(),
            version: p.version(),
            arch: p.arch(),
            nevra: p.nevra(),
            evr: p.evr(),
            summary: p.summary(),
            reponame: p.repo_name(),
        }
    }
}

/// The most results a `Search` group holds, as rpm-ostree caps them.
const SEARCH_GROUP_LIMIT: usize = 50;

/// A libdnf context on the merge deployment of `osname`, with its (empty) install root.
struct Repos {
    dnf: libdnf::Context,
    _root: tempfile::TempDir,
}

/// Queries are of what the repositories offer: no installed set is loaded, so the install
/// root is an empty directory (the deployment's own must not be handed to libdnf: its rpmdb
/// hard-links repository objects).
fn open(sysroot: &Sysroot, osname: &str, ctx: &OpContext) -> Result<Repos> {
    let merge = sysroot.merge_deployment(osname)?;
    let deployment = sysroot.deployment_path(&merge);
    let root = tempfile::Builder::new()
        .prefix("strata-repos-")
        .tempdir()
        .context("Creating a scratch directory")?;
    let config = libdnf::Config {
        install_root: root.path().to_path_buf(),
        rpmdb: rpmdb::RPMOSTREE_DBPATH.to_string(),
        repos_dir: deployment.join("etc/yum.repos.d"),
        cache_dir: crate::cleanup::layering_cache_dir(sysroot, osname),
        release_ver: release_ver(&deployment)?,
        arch: None,
    };
    let mut dnf = libdnf::Context::new(&config, Some(ctx.cancellable()))?;
    dnf.skip_installed();
    Ok(Repos { dnf, _root: root })
}

/// `VERSION_ID` of the deployment's os-release (what `$releasever` in `.repo` files means).
fn release_ver(root: &std::path::Path) -> Result<String> {
    for rel in ["usr/lib/os-release", "etc/os-release", "usr/etc/os-release"] {
        let Ok(text) = fs_err::read_to_string(root.join(rel)) else {
            continue;
        };
        // KEY=value lines; one plain or quoted value is read, no shell words.
        for line in text.lines() {
            if let Some(v) = line.trim().strip_prefix("VERSION_ID=") {
                return Ok(v.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    bail!("The deployment has no VERSION_ID in its os-release, which $releasever needs")
}

impl Repos {
    /// Load the sack, with one progress line per repository whose metadata is fetched;
    /// returns the ids of those repositories.
    fn load(&mut self, policy: libdnf::Metadata, ctx: &OpContext) -> Result<Vec<String>> {
        let mut progress = |repo: &str, percent: u32| {
            ctx.emit(Event::Percent {
                text: format!(
                    "Updating metadata for '{}'",
                    crate::layering::escape_for_message(repo)
                ),
                percent,
            })
        };
        let r = self
            .dnf
            .load(policy, &mut progress, Some(ctx.cancellable()));
        ctx.emit(Event::ProgressEnd);
        Ok(r?)
    }
}

/// `ListRepos`: every repository of the deployment's `/etc/yum.repos.d`, enabled or not; no
/// metadata is fetched.
#[context("Listing the rpm-md repositories")]
pub fn list(sysroot: &Sysroot, osname: &str) -> Result<Vec<RepoSummary>> {
    let repos = open(sysroot, osname, &OpContext::silent())?;
    Ok(repos
        .dnf
        .repos()
        .into_iter()
        .map(|r| RepoSummary {
            id: r.id,
            description: r.description,
            enabled: r.enabled,
            is_devel: r.is_devel,
            is_source: r.is_source,
        })
        .collect())
}

/// `RefreshMd`: fetch the metadata of every enabled repository (all of it with `force`,
/// otherwise what `metadata_expire` says is stale).
#[context("Refreshing the rpm-md repositories")]
pub fn refresh(
    sysroot: &Sysroot,
    osname: Option<&str>,
    force: bool,
    ctx: &OpContext,
) -> Result<Outcome> {
    let osname = sysroot.resolve_osname(osname)?;
    let mut repos = open(sysroot, &osname, ctx)?;
    let enabled: Vec<String> = repos
        .dnf
        .repos()
        .into_iter()
        .filter(|r| r.enabled)
        .map(|r| crate::layering::escape_for_message(&r.id))
        .collect();
    if enabled.is_empty() {
        ctx.message("No enabled rpm-md repositories.".to_string());
        return Ok(Outcome::Unchanged);
    }
    ctx.message(format!(
        "Enabled rpm-md repositories: {}",
        enabled.join(" ")
    ));
    let policy = if force {
        libdnf::Metadata::Refresh
    } else {
        libdnf::Metadata::Default
    };
    let fetched = repos.load(policy, ctx)?;
    // rpm-ostree's line per repository, "(cached)" for one whose metadata was fresh enough.
    for r in repos.dnf.repos().into_iter().filter(|r| r.enabled) {
        let cached = if fetched.contains(&r.id) {
            ""
        } else {
            " (cached)"
        };
        ctx.message(format!(
            "rpm-md repo '{}'{cached}",
            crate::layering::escape_for_message(&r.id)
        ));
    }
    Ok(Outcome::Changed("refreshed rpm-md metadata".into()))
}

/// `ModifyYumRepo`: change a repository's `.repo` file in the merge deployment's `/etc`
/// (the live `/etc` on a host). Only `enabled` (`0` or `1`) may change, as in rpm-ostree.
#[context(
    "Modifying rpm-md repository {}",
    crate::layering::escape_for_message(id)
)]
pub fn modify(
    sysroot: &Sysroot,
    osname: Option<&str>,
    id: &str,
    settings: &BTreeMap<String, String>,
    ctx: &OpContext,
) -> Result<Outcome> {
    let shown = crate::layering::escape_for_message;
    for (k, v) in settings {
        if k != "enabled" {
            bail!(
                "Changing '{}' is not allowed in yum .repo files (only 'enabled' is)",
                shown(k)
            );
        }
        if v != "0" && v != "1" {
            bail!(
                "Only '0' and '1' are allowed for the '{}' key, not '{}'",
                shown(k),
                shown(v)
            );
        }
    }
    let _lock = sysroot.lock()?;
    let osname = sysroot.resolve_osname(osname)?;
    let mut repos = open(sysroot, &osname, ctx)?;
    if !repos.dnf.repos().iter().any(|r| r.id == id) {
        return Err(anyhow!("Yum repo '{}' not found", shown(id)));
    }
    for (k, v) in settings {
        repos.dnf.set_repo_option(id, k, v)?;
        ctx.message(format!("Set {k}={v} for repository '{}'", shown(id)));
    }
    Ok(Outcome::Changed(format!(
        "modified repository {}",
        shown(id)
    )))
}

/// `GetPackages`: for each name, the newest package of that exact name per architecture in
/// the enabled repositories.
#[context("Looking up packages")]
pub fn get_packages(sysroot: &Sysroot, osname: &str, names: &[String]) -> Result<Vec<PackageInfo>> {
    let ctx = OpContext::silent();
    let mut repos = open(sysroot, osname, &ctx)?;
    repos.load(libdnf::Metadata::PreferCache, &ctx)?;
    let mut out = Vec::new();
    for name in names {
        let q = repos.dnf.query()?.available()?.name(name)?.latest();
        out.extend(
            q.run()
                .iter()
                .map(|p| PackageInfo::of(p, Some(name.as_str()))),
        );
    }
    Ok(out)
}

/// `WhatProvides`: the newest packages per architecture providing each capability.
#[context("Looking up what provides")]
pub fn what_provides(
    sysroot: &Sysroot,
    osname: &str,
    provides: &[String],
) -> Result<Vec<PackageInfo>> {
    let ctx = OpContext::silent();
    let mut repos = open(sysroot, osname, &ctx)?;
    repos.load(libdnf::Metadata::PreferCache, &ctx)?;
    // As rpm-ostree: every provider of any of the capabilities, then the newest of each
    // name and architecture.
    let mut newest: Vec<libdnf::Package<'_>> = Vec::new();
    for cap in provides {
        for p in repos.dnf.query()?.available()?.provides(cap)?.run() {
            let same = newest
                .iter()
                .position(|n| n.name() == p.name() && n.arch() == p.arch());
            match same {
                Some(i) if newer(&p, &newest[i]) => newest[i] = p,
                Some(_) => {}
                None => newest.push(p),
            }
        }
    }
    Ok(newest.iter().map(|p| PackageInfo::of(p, None)).collect())
}

/// Whether `a` is newer than `b`, by EVR as rpm compares them.
fn newer(a: &libdnf::Package<'_>, b: &libdnf::Package<'_>) -> bool {
    let (ae, av, ar) = (a.epoch().to_string(), a.version(), a.release());
    let (be, bv, br) = (b.epoch().to_string(), b.version(), b.release());
    rpmdb::evr(&ae, &av, &ar) > rpmdb::evr(&be, &bv, &br)
}

/// How one search term matches a text: glob terms as globs, others exactly or as a
/// substring, all ignoring case (libdnf's `HY_GLOB`/`HY_EQ`/`HY_SUBSTR` with `HY_ICASE`).
#[derive(Debug)]
struct Term {
    lower: String,
    glob: Option<glob::Pattern>,
}

impl Term {
    fn new(t: &str) -> Term {
        let lower = t.to_lowercase();
        let glob = (t.contains(['*', '?', '[']))
            .then(|| glob::Pattern::new(&lower).ok())
            .flatten();
        Term { lower, glob }
    }

    fn exact(&self, text: &str) -> bool {
        let text = text.to_lowercase();
        match &self.glob {
            Some(g) => g.matches(&text),
            None => text == self.lower,
        }
    }

    fn matches(&self, text: &str) -> bool {
        self.exact(text) || (self.glob.is_none() && text.to_lowercase().contains(&self.lower))
    }
}

/// `Search`: three groups, as rpm-ostree builds them (each at most 50 packages, one per name):
/// `match_group_a`, packages whose name and summary match a single term, or whose name or
/// summary matches each of several; `match_group_b`, whose name matches every term (exact
/// matches first); `match_group_c`, whose summary does.
///
/// The matching runs here over the available packages rather than as libdnf query filters:
/// the groups are unions and intersections of per-term filters, which the binding's queries
/// (one filter chain each) do not express; the comparisons are libdnf's.
#[context("Searching the rpm-md repositories")]
pub fn search(sysroot: &Sysroot, osname: &str, terms: &[String]) -> Result<Vec<PackageInfo>> {
    if terms.is_empty() {
        bail!("Must specify a term for search");
    }
    let ctx = OpContext::silent();
    let mut repos = open(sysroot, osname, &ctx)?;
    repos.load(libdnf::Metadata::PreferCache, &ctx)?;
    let all = repos.dnf.query()?.available()?.run();
    let terms: Vec<Term> = terms.iter().map(|t| Term::new(t)).collect();
    let mut out = Vec::new();
    // rpm-ostree's rule: one term must match the name and the summary; of several, each must
    // match one of them.
    let both = all.iter().filter(|p| {
        let (n, s) = (p.name(), p.summary());
        match terms.as_slice() {
            [t] => t.matches(&n) && t.matches(&s),
            _ => terms.iter().all(|t| t.matches(&n) || t.matches(&s)),
        }
    });
    push_group(&mut out, "match_group_a", both);
    push_group(
        &mut out,
        "match_group_b",
        matching(&all, &terms, |p| p.name()).into_iter(),
    );
    push_group(
        &mut out,
        "match_group_c",
        matching(&all, &terms, |p| p.summary()).into_iter(),
    );
    Ok(out)
}

/// The packages whose `text` every term matches: exact matches first, then the others.
fn matching<'a, 'c>(
    all: &'a [libdnf::Package<'c>],
    terms: &[Term],
    text: fn(&libdnf::Package<'c>) -> String,
) -> Vec<&'a libdnf::Package<'c>> {
    let exact = |p: &libdnf::Package<'c>| terms.iter().all(|t| t.exact(&text(p)));
    let partial = |p: &libdnf::Package<'c>| terms.iter().all(|t| t.matches(&text(p)));
    let mut v: Vec<&libdnf::Package<'c>> = all.iter().filter(|p| exact(p)).collect();
    v.extend(all.iter().filter(|p| partial(p) && !exact(p)));
    v
}

/// Appends a search group: one package per name, at most [`SEARCH_GROUP_LIMIT`].
fn push_group<'a, 'c: 'a>(
    out: &mut Vec<PackageInfo>,
    key: &str,
    picked: impl Iterator<Item = &'a libdnf::Package<'c>>,
) {
    let mut names = std::collections::BTreeSet::new();
    for p in picked {
        if names.len() >= SEARCH_GROUP_LIMIT {
            break;
        }
        if names.insert(p.name()) {
            out.push(PackageInfo::of(p, Some(key)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_match_as_libdnf_compares() {
        let t = Term::new("Hel");
        assert!(t.matches("hello") && !t.exact("hello") && t.exact("HEL"));
        let g = Term::new("he*o");
        assert!(g.exact("Hello") && g.matches("hello") && !g.matches("ahello"));
    }
}
