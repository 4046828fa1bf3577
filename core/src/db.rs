//! The packages of commits, as rpm-ostree's `db list`, `db version` and `db diff` show them:
//! read from a commit's `rpmostree.rpmdb.pkglist` metadata when it has one, otherwise from its
//! rpmdb, copied out of the commit (no checkout of the tree).
//!
//! Order, NEVRA text and the diff's pairing follow rpm-ostree: packages sort by name, then
//! EVR as rpm compares versions, then arch; a NEVRA shows the epoch only when it is not 0; two
//! lists are paired by name, a package whose arch alone changed (one of that name on each side)
//! is a change rather than a removal and an addition.

use std::cmp::Ordering;
use std::fmt;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;
use ostree::gio;
use sha2::{Digest, Sha256};

use crate::commit;
use crate::layering::rpmdb;

/// One package of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Name`.
    pub name: String,
    /// `Epoch`, as rpm-ostree records it (`"0"` when the package has none).
    pub epoch: String,
    /// `Version`.
    pub version: String,
    /// `Release`.
    pub release: String,
    /// `Arch`.
    pub arch: String,
}

impl Package {
    fn from_tuple((name, epoch, version, release, arch): rpmdb::PkgTuple) -> Package {
        Package {
            name,
            epoch,
            version,
            release,
            arch,
        }
    }

    /// `[EPOCH:]VERSION-RELEASE`, the epoch only when it is not 0.
    pub fn evr(&self) -> String {
        if self.epoch.is_empty() || self.epoch == "0" {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }

    fn rpm_evr(&self) -> rpm_version::Evr<'_> {
        rpmdb::evr(&self.epoch, &self.version, &self.release)
    }

    /// Name, then EVR as rpm compares versions, then arch.
    pub fn compare(&self, other: &Package) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.rpm_evr().cmp(&other.rpm_evr()))
            .then_with(|| self.arch.cmp(&other.arch))
    }

    /// Whether `pattern` (a shell glob, case-insensitive, as rpm-ostree's `db list` matches)
    /// matches the name, `N-[E:]V-R.A`, `N.A` or `N-V-R`.
    pub fn matches(&self, pattern: &glob::Pattern) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: false,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        [
            self.name.clone(),
            self.to_string(),
            format!("{}.{}", self.name, self.arch),
            format!("{}-{}-{}", self.name, self.version, self.release),
        ]
        .iter()
        .any(|s| pattern.matches_with(s, opts))
    }
}

impl fmt::Display for Package {
    /// `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.{}", self.name, self.evr(), self.arch)
    }
}

/// Resolves `rev` (a checksum, a unique checksum prefix, a ref, `REMOTE:REF`, `REV^`) in
/// `repo`; an error names the revision when nothing matches.
pub fn resolve(repo: &ostree::Repo, rev: &str) -> Result<String> {
    commit::resolve(repo, rev)?.ok_or_else(|| {
        anyhow!(
            "Refspec '{}' not found",
            strata_api::text::printable(rev, 256)
        )
    })
}

/// The packages of `checksum`, sorted: the `rpmostree.rpmdb.pkglist` metadata unless
/// `from_rpmdb`, else (or without that metadata) the commit's rpmdb.
#[context("Loading package list")]
pub fn packages(repo: &ostree::Repo, checksum: &str, from_rpmdb: bool) -> Result<Vec<Package>> {
    let info = commit::load(repo, checksum)?;
    if !from_rpmdb {
        let listed = ostree::glib::VariantDict::new(Some(&info.metadata))
            .lookup::<Vec<rpmdb::PkgTuple>>("rpmostree.rpmdb.pkglist")
            .ok()
            .flatten();
        if let Some(listed) = listed {
            let mut pkgs: Vec<Package> = listed.into_iter().map(Package::from_tuple).collect();
            pkgs.sort_by(Package::compare);
            return Ok(pkgs);
        }
    }
    let mut pkgs = rpmdb_order(repo, checksum)?;
    pkgs.sort_by(Package::compare);
    Ok(pkgs)
}

/// The commit's rpmdb in database order, without `gpg-pubkey` entries (keys, not packages).
fn rpmdb_order(repo: &ostree::Repo, checksum: &str) -> Result<Vec<Package>> {
    let work = tempfile::Builder::new()
        .prefix("strata-db-")
        .tempdir()
        .context("Creating a scratch directory")?;
    let dbpath = rpmdb::copy_from_commit(repo, checksum, work.path(), gio::Cancellable::NONE)?;
    Ok(rpmdb::query(work.path(), dbpath)?
        .into_iter()
        .map(Package::from_tuple)
        .filter(|p| p.name != "gpg-pubkey")
        .collect())
}

/// rpm-ostree's "rpmdb version" of a commit: the number of packages and a SHA-256 over each
/// one's `[EPOCH:]NAME-VERSION-RELEASE.ARCH` (epoch when not 0), in name then EVR order (ties
/// in database order), as `COUNT:HEX`. Always read from the rpmdb.
#[context("Computing the rpmdb version")]
pub fn rpmdb_version(repo: &ostree::Repo, checksum: &str) -> Result<String> {
    let mut pkgs = rpmdb_order(repo, checksum)?;
    // Stable: packages equal in name and EVR (multilib) keep the database's order.
    pkgs.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.rpm_evr().cmp(&b.rpm_evr()))
    });
    let mut h = Sha256::new();
    for p in &pkgs {
        let s = if p.epoch.is_empty() || p.epoch == "0" {
            format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch)
        } else {
            format!(
                "{}:{}-{}-{}.{}",
                p.epoch, p.name, p.version, p.release, p.arch
            )
        };
        h.update(s.as_bytes());
    }
    Ok(format!("{}:{}", pkgs.len(), hex::encode(h.finalize())))
}

/// One `%changelog` entry of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// Unix seconds (rpm keeps the day).
    pub time: u64,
    /// The header line after the date: `Name <mail> - 1.0-1`.
    pub author: String,
    pub text: String,
}

/// A package's source RPM and `%changelog` (newest first), as `db diff --changelogs` reads
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageLog {
    pub source_rpm: String,
    pub entries: Vec<ChangelogEntry>,
}

/// The source RPM and changelog of every package of `checksum`, by NEVRA (as [`Package`]
/// shows it), read from the commit's rpmdb (copied out; no checkout).
#[context("Reading the changelogs of {}", commit::short(checksum))]
pub fn changelogs(
    repo: &ostree::Repo,
    checksum: &str,
) -> Result<std::collections::HashMap<String, PackageLog>> {
    let work = tempfile::Builder::new()
        .prefix("strata-db-")
        .tempdir()
        .context("Creating a scratch directory")?;
    let dbpath = rpmdb::copy_from_commit(repo, checksum, work.path(), gio::Cancellable::NONE)?;
    // Two queries of the same database (so in the same order): the packages with the times
    // of their entries (text without blanks), then every entry's author and text. rpm's
    // `shescape` (POSIX single quotes) is its one unambiguous form for multi-line strings in
    // 4.18, and shlex reads it back; the first query's counts say whose entries they are.
    let heads = rpmdb::query_format(
        work.path(),
        dbpath,
        "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t[%{CHANGELOGTIME},]\n",
    )?;
    let bodies = rpmdb::query_format(
        work.path(),
        dbpath,
        "[%{CHANGELOGNAME:shescape} %{CHANGELOGTEXT:shescape} ]",
    )?;
    let words =
        shlex::split(&bodies).context("Unreadable changelogs from rpm (unbalanced quotes)")?;
    let mut words = words.into_iter();
    let mut logs = std::collections::HashMap::new();
    for line in heads.lines().filter(|l| !l.is_empty()) {
        let bad = || {
            anyhow!(
                "Unexpected package line from rpm: {}",
                strata_api::text::printable(line, 256)
            )
        };
        let [name, epoch, version, release, arch, srpm, times] =
            line.split('\t').collect::<Vec<_>>()[..]
        else {
            return Err(bad());
        };
        let mut entries = Vec::new();
        for time in times.split(',').filter(|t| !t.is_empty()) {
            let (Some(author), Some(text)) = (words.next(), words.next()) else {
                return Err(anyhow!(
                    "rpm listed fewer changelog entries than it counted"
                ));
            };
            entries.push(ChangelogEntry {
                time: time.parse().map_err(|_| bad())?,
                author,
                text,
            });
        }
        let p = Package {
            name: name.to_string(),
            epoch: epoch.to_string(),
            version: version.to_string(),
            release: release.to_string(),
            arch: arch.to_string(),
        };
        logs.insert(
            p.to_string(),
            PackageLog {
                source_rpm: srpm.to_string(),
                entries,
            },
        );
    }
    Ok(logs)
}

/// The entries of `new` that `old` does not have: from the newest, until one is older than
/// `old`'s newest or is that entry (rpm-ostree's rule).
pub fn new_entries<'a>(old: &PackageLog, new: &'a PackageLog) -> &'a [ChangelogEntry] {
    let Some(latest) = old.entries.first() else {
        return &[];
    };
    let n = new
        .entries
        .iter()
        .position(|e| latest.time > e.time || latest == e)
        .unwrap_or(new.entries.len());
    &new.entries[..n]
}

/// How two package lists differ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageDiff {
    /// (old, new) with new greater.
    pub upgraded: Vec<(Package, Package)>,
    /// (old, new) with old greater.
    pub downgraded: Vec<(Package, Package)>,
    /// Only in the first list.
    pub removed: Vec<Package>,
    /// Only in the second list.
    pub added: Vec<Package>,
}

impl PackageDiff {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.upgraded.is_empty()
            && self.downgraded.is_empty()
            && self.removed.is_empty()
            && self.added.is_empty()
    }
}

/// The difference between the packages of two commits (see [`packages`]).
pub fn diff_commits(repo: &ostree::Repo, from: &str, to: &str) -> Result<PackageDiff> {
    Ok(diff(
        &packages(repo, from, false)?,
        &packages(repo, to, false)?,
    ))
}

/// The difference from `from` to `to` (each sorted as [`packages`] returns them).
pub fn diff(from: &[Package], to: &[Package]) -> PackageDiff {
    let mut d = PackageDiff::default();
    let mut names: Vec<&str> = from.iter().chain(to).map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let old: Vec<&Package> = from.iter().filter(|p| p.name == name).collect();
        let new: Vec<&Package> = to.iter().filter(|p| p.name == name).collect();
        // One on each side: a change of version or of arch alone is a modification.
        if let ([o], [n]) = (old.as_slice(), new.as_slice()) {
            push_change(&mut d, o, n);
            continue;
        }
        for o in &old {
            match new.iter().find(|n| n.arch == o.arch) {
                Some(n) => push_change(&mut d, o, n),
                None => d.removed.push((*o).clone()),
            }
        }
        for n in &new {
            if !old.iter().any(|o| o.arch == n.arch) {
                d.added.push((*n).clone());
            }
        }
    }
    d
}

fn push_change(d: &mut PackageDiff, old: &Package, new: &Package) {
    match old
        .rpm_evr()
        .cmp(&new.rpm_evr())
        .then_with(|| old.arch.cmp(&new.arch))
    {
        Ordering::Equal => {}
        Ordering::Less => d.upgraded.push((old.clone(), new.clone())),
        Ordering::Greater => d.downgraded.push((old.clone(), new.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, epoch: &str, version: &str, release: &str, arch: &str) -> Package {
        Package {
            name: name.into(),
            epoch: epoch.into(),
            version: version.into(),
            release: release.into(),
            arch: arch.into(),
        }
    }

    #[test]
    fn nevra_and_order_follow_rpm() {
        assert_eq!(
            p("foo", "0", "1.0", "1", "x86_64").to_string(),
            "foo-1.0-1.x86_64"
        );
        assert_eq!(
            p("bar", "2", "1.0", "1", "noarch").to_string(),
            "bar-2:1.0-1.noarch"
        );
        let mut v = [
            p("a", "0", "1.10", "1", "x86_64"),
            p("a", "0", "1.9", "1", "x86_64"),
            p("a", "1", "0.1", "1", "x86_64"),
        ];
        v.sort_by(Package::compare);
        let shown: Vec<String> = v.iter().map(Package::to_string).collect();
        assert_eq!(
            shown,
            ["a-1.9-1.x86_64", "a-1.10-1.x86_64", "a-1:0.1-1.x86_64"]
        );
    }

    #[test]
    fn diff_pairs_by_name_and_arch() {
        let from = vec![
            p("down", "0", "2.0", "1", "x86_64"),
            p("gone", "0", "1", "1", "noarch"),
            p("lib", "0", "1", "1", "i686"),
            p("lib", "0", "1", "1", "x86_64"),
            p("same", "0", "1", "1", "noarch"),
            p("up", "0", "15", "8", "x86_64"),
            p("moved", "0", "1", "1", "noarch"),
        ];
        let to = vec![
            p("down", "0", "1.0", "1", "x86_64"),
            p("lib", "0", "1", "2", "x86_64"),
            p("new", "0", "1", "1", "noarch"),
            p("same", "0", "1", "1", "noarch"),
            p("up", "0", "15.4", "4", "x86_64"),
            p("moved", "0", "1", "1", "x86_64"),
        ];
        let d = diff(&from, &to);
        let pairs = |v: &[(Package, Package)]| -> Vec<String> {
            v.iter().map(|(a, b)| format!("{a} -> {b}")).collect()
        };
        assert_eq!(
            pairs(&d.upgraded),
            [
                "lib-1-1.x86_64 -> lib-1-2.x86_64",
                "moved-1-1.noarch -> moved-1-1.x86_64",
                "up-15-8.x86_64 -> up-15.4-4.x86_64"
            ]
        );
        assert_eq!(
            pairs(&d.downgraded),
            ["down-2.0-1.x86_64 -> down-1.0-1.x86_64"]
        );
        let names = |v: &[Package]| -> Vec<String> { v.iter().map(Package::to_string).collect() };
        assert_eq!(names(&d.removed), ["gone-1-1.noarch", "lib-1-1.i686"]);
        assert_eq!(names(&d.added), ["new-1-1.noarch"]);
        assert!(diff(&to, &to).is_empty());
    }

    #[test]
    fn patterns_match_like_rpm_ostree() {
        let k = p("kernel-core", "0", "6.1", "1", "x86_64");
        let m = |s: &str| k.matches(&glob::Pattern::new(s).unwrap());
        assert!(m("kernel-core"));
        assert!(m("KERNEL*"));
        assert!(m("kernel-core.x86_64"));
        assert!(m("kernel-core-6.1-1"));
        assert!(m("kernel-core-6.1-1.x86_64"));
        assert!(!m("kernel"));
    }
}
