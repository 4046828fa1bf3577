//! `strata-db`: what `strata db list|version|diff` runs (the CLI replaces itself with this
//! program, same command line). It reads the repository directly, as rpm-ostree's `db`
//! commands do, so it works without the daemon and for any user who can read the repository.
//! Texts and formats follow rpm-ostree's (see `strata_core::db` for the package lists).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use strata_cli::args::{Command, DbArgs, DbCommand, DbDiffArgs, DbListArgs, DbVersionArgs};
use strata_core::db::{self, Package, PackageDiff};

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match strata_cli::parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let Command::Db(a) = &cli.command else {
        eprintln!("error: strata-db runs only `strata db ...`");
        std::process::exit(1);
    };
    let sysroot = cli.global.sysroot.clone();
    let code = match run(a, sysroot.as_deref()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(a: &DbArgs, sysroot: Option<&Path>) -> Result<()> {
    // rpm-ostree's default is the booted host's repository.
    let path = match (&a.repo, sysroot) {
        (Some(repo), _) => repo.clone(),
        (None, Some(root)) => root.join("ostree/repo"),
        (None, None) => PathBuf::from("/sysroot/ostree/repo"),
    };
    let repo = ostree::Repo::new_for_path(&path);
    repo.open(ostree::gio::Cancellable::NONE)
        .with_context(|| format!("Opening the repository {}", path.display()))?;
    let mut out = String::new();
    match &a.command {
        DbCommand::List(l) => list(&repo, l, &mut out)?,
        DbCommand::Version(v) => version(&repo, v, &mut out)?,
        DbCommand::Diff(d) => diff(&repo, d, sysroot, &mut out)?,
    }
    print!("{out}");
    Ok(())
}

/// `ostree commit: REV (CHECKSUM)`, or without the checksum when REV is it.
fn commit_header(rev: &str, checksum: &str) -> String {
    let rev = strata_api::text::printable(rev, 256);
    if rev == checksum {
        format!("ostree commit: {rev}\n")
    } else {
        format!("ostree commit: {rev} ({checksum})\n")
    }
}

fn list(repo: &ostree::Repo, a: &DbListArgs, out: &mut String) -> Result<()> {
    // As rpm-ostree: arguments are revisions until the first that does not resolve; it and
    // everything after it are patterns.
    let mut revs = Vec::new();
    let mut rest = a.args.iter();
    let mut patterns = Vec::new();
    for arg in rest.by_ref() {
        match db::resolve(repo, arg) {
            Ok(c) => revs.push((arg, c)),
            Err(_) => {
                patterns.push(arg);
                break;
            }
        }
    }
    patterns.extend(rest);
    let patterns = patterns
        .iter()
        .map(|p| {
            glob::Pattern::new(p).with_context(|| {
                format!(
                    "Invalid package pattern {:?}",
                    strata_api::text::printable(p, 256)
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for (rev, checksum) in revs {
        out.push_str(&commit_header(rev, &checksum));
        // With patterns rpm-ostree reads the rpmdb itself; the lists are the same.
        let pkgs = db::packages(repo, &checksum, !patterns.is_empty())?;
        for p in pkgs
            .iter()
            .filter(|p| patterns.is_empty() || patterns.iter().any(|pat| p.matches(pat)))
        {
            out.push_str(&format!(" {p}\n"));
        }
    }
    Ok(())
}

fn version(repo: &ostree::Repo, a: &DbVersionArgs, out: &mut String) -> Result<()> {
    for rev in &a.commits {
        let checksum = db::resolve(repo, rev)?;
        let v = db::rpmdb_version(repo, &checksum)?;
        out.push_str(&commit_header(rev, &checksum));
        out.push_str(&format!("  rpmdbv is: {v}\n"));
    }
    Ok(())
}

/// One side of a diff: what to call it and its commit.
struct Side {
    desc: String,
    checksum: String,
}

fn diff(
    repo: &ostree::Repo,
    a: &DbDiffArgs,
    sysroot: Option<&Path>,
    out: &mut String,
) -> Result<()> {
    if a.format == "json" && a.changelogs {
        bail!("json format and --changelogs not supported");
    }
    if a.format == "diff" && a.advisories {
        bail!("diff format and --advisories not supported");
    }
    let rev = |r: &str| -> Result<Side> {
        Ok(Side {
            desc: strata_api::text::printable(r, 256),
            checksum: db::resolve(repo, r)?,
        })
    };
    let (from, to) = match (&a.from, &a.to) {
        (Some(f), Some(t)) => (rev(f)?, rev(t)?),
        (Some(t), None) => (deployment_side(sysroot, a.base, Which::Booted)?, rev(t)?),
        _ => default_sides(sysroot, a.base)?,
    };
    let old = db::packages(repo, &from.checksum, false)?;
    let new = db::packages(repo, &to.checksum, false)?;
    let d = db::diff(&old, &new);
    match a.format.as_str() {
        "json" => {
            out.push_str(&json(&from.checksum, &to.checksum, &d)?);
            out.push('\n');
        }
        format => {
            for (label, side) in [("from:", &from), ("to:  ", &to)] {
                if side.desc == side.checksum {
                    out.push_str(&format!("ostree diff commit {label} {}\n", side.desc));
                } else {
                    out.push_str(&format!(
                        "ostree diff commit {label} {} ({})\n",
                        side.desc, side.checksum
                    ));
                }
            }
            if format == "diff" {
                diff_lines(&d, out);
            } else if a.changelogs {
                let old = db::changelogs(repo, &from.checksum)?;
                let new = db::changelogs(repo, &to.checksum)?;
                block_with_changelogs(&d, &old, &new, out);
            } else {
                block(&d, out);
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Which {
    Booted,
    Pending,
    Rollback,
}

/// The commit of the booted, pending or rollback deployment (its base with `--base`).
fn deployment_side(sysroot: Option<&Path>, base: bool, which: Which) -> Result<Side> {
    let sysroot = strata_core::Sysroot::open(sysroot.unwrap_or(Path::new("/")))?;
    let deployments = sysroot.deployments();
    let booted = sysroot
        .booted_deployment()
        .context("Not booted into any deployment")?;
    let booted_at = deployments
        .iter()
        .position(|d| d.equal(&booted))
        .context("The booted deployment is not in the deployment list")?;
    let (d, desc) = match which {
        Which::Booted => (Some(&booted), "booted deployment"),
        // rpm-ostree: the pending deployment is the one before the booted one, the rollback
        // deployment the one after it.
        Which::Pending => (
            booted_at.checked_sub(1).and_then(|i| deployments.get(i)),
            "pending deployment",
        ),
        Which::Rollback => (deployments.get(booted_at + 1), "rollback deployment"),
    };
    let d = d.with_context(|| format!("No {desc}"))?;
    let mut checksum = d.csum().to_string();
    if base {
        let info = strata_core::commit::load(&sysroot.repo(), &checksum)?;
        if info.meta_bool("rpmostree.clientlayer") == Some(true) {
            if let Some(parent) = info.parent {
                checksum = parent;
            }
        }
    }
    Ok(Side {
        desc: desc.to_string(),
        checksum,
    })
}

/// No arguments: booted → pending, else rollback → booted.
fn default_sides(sysroot: Option<&Path>, base: bool) -> Result<(Side, Side)> {
    let booted = deployment_side(sysroot, base, Which::Booted)?;
    if let Ok(pending) = deployment_side(sysroot, base, Which::Pending) {
        return Ok((booted, pending));
    }
    match deployment_side(sysroot, base, Which::Rollback) {
        Ok(rollback) => Ok((rollback, booted)),
        Err(_) => bail!("No pending or rollback deployment to diff against"),
    }
}

fn block(d: &PackageDiff, out: &mut String) {
    let changes = |title: &str, v: &[(Package, Package)], out: &mut String| {
        if v.is_empty() {
            return;
        }
        out.push_str(title);
        out.push('\n');
        for (o, n) in v {
            out.push_str(&format!("  {} {} -> {}\n", o.name, o.evr(), n.evr()));
        }
    };
    let single = |title: &str, v: &[Package], out: &mut String| {
        if v.is_empty() {
            return;
        }
        out.push_str(title);
        out.push('\n');
        for p in v {
            out.push_str(&format!("  {p}\n"));
        }
    };
    changes("Upgraded:", &d.upgraded, out);
    changes("Downgraded:", &d.downgraded, out);
    single("Removed:", &d.removed, out);
    single("Added:", &d.added, out);
}

/// `[EPOCH:]VERSION-RELEASE.ARCH`, as the changelog listing names versions.
fn evra(p: &Package) -> String {
    format!("{}.{}", p.evr(), p.arch)
}

/// The block format with `--changelogs`, as rpm-ostree prints it (GNOME Software parses it
/// for its update history): each upgrade followed by the `%changelog` entries the old
/// package did not have, once per source RPM (after the last of its packages).
fn block_with_changelogs(
    d: &PackageDiff,
    old: &HashMap<String, db::PackageLog>,
    new: &HashMap<String, db::PackageLog>,
    out: &mut String,
) {
    let key = |p: &Package| p.to_string();
    let empty = db::PackageLog::default();
    let srpm = |p: &Package| old.get(&key(p)).map(|l| l.source_rpm.as_str());
    if !d.upgraded.is_empty() {
        out.push_str("Upgraded:\n");
    }
    for (i, (o, n)) in d.upgraded.iter().enumerate() {
        out.push_str(&format!("  {} {} -> {}\n", o.name, evra(o), evra(n)));
        let next = d.upgraded.get(i + 1).and_then(|(next, _)| srpm(next));
        if next.is_some() && next == srpm(o) {
            continue;
        }
        let (ol, nl) = (
            old.get(&key(o)).unwrap_or(&empty),
            new.get(&key(n)).unwrap_or(&empty),
        );
        for e in db::new_entries(ol, nl) {
            let date = ostree::glib::DateTime::from_unix_utc(e.time as i64)
                .and_then(|t| t.format("%a %b %d %Y"))
                .map(|s| s.to_string())
                .unwrap_or_default();
            let text = e.text.replace('\n', "\n    ");
            out.push_str(&format!(
                "    * {date} {}\n    {}\n\n",
                strata_api::text::printable(&e.author, 512),
                text.chars()
                    .filter(|c| *c == '\n' || !c.is_control())
                    .collect::<String>()
            ));
        }
    }
    let changes = |title: &str, v: &[(Package, Package)], out: &mut String| {
        if v.is_empty() {
            return;
        }
        out.push_str(title);
        for (o, n) in v {
            out.push_str(&format!("  {} {} -> {}\n", o.name, evra(o), evra(n)));
        }
    };
    changes("Downgraded:\n", &d.downgraded, out);
    for (title, v) in [("Removed:\n", &d.removed), ("Added:\n", &d.added)] {
        if !v.is_empty() {
            out.push_str(title);
            for p in v.iter() {
                out.push_str(&format!("  {p}\n"));
            }
        }
    }
}

/// `-removed`, `+added`, `!old` / `=new` lines, in package order.
fn diff_lines(d: &PackageDiff, out: &mut String) {
    let mut lines: Vec<(&Package, String)> = Vec::new();
    lines.extend(d.removed.iter().map(|p| (p, format!("-{p}\n"))));
    lines.extend(d.added.iter().map(|p| (p, format!("+{p}\n"))));
    for (o, n) in d.upgraded.iter().chain(&d.downgraded) {
        lines.push((o, format!("!{o}\n={n}\n")));
    }
    lines.sort_by(|a, b| a.0.compare(b.0));
    for (_, l) in lines {
        out.push_str(&l);
    }
}

/// rpm-ostree's `db diff --format=json` object.
#[derive(Serialize)]
struct JsonDiff<'a> {
    #[serde(rename = "ostree-commit-from")]
    from: &'a str,
    #[serde(rename = "ostree-commit-to")]
    to: &'a str,
    pkgdiff: Vec<(String, u32, JsonChange)>,
    advisories: Vec<serde_json::Value>,
}

#[derive(Serialize)]
struct JsonChange {
    #[serde(rename = "PreviousPackage", skip_serializing_if = "Option::is_none")]
    previous: Option<(String, String, String)>,
    #[serde(rename = "NewPackage", skip_serializing_if = "Option::is_none")]
    new: Option<(String, String, String)>,
}

/// rpm-ostree's change types: 0 added, 1 removed, 2 upgraded, 3 downgraded.
fn json(from: &str, to: &str, d: &PackageDiff) -> Result<String> {
    let t = |p: &Package| Some((p.name.clone(), p.evr(), p.arch.clone()));
    let mut pkgdiff = Vec::new();
    for p in &d.added {
        pkgdiff.push((
            p.name.clone(),
            0,
            JsonChange {
                previous: None,
                new: t(p),
            },
        ));
    }
    for p in &d.removed {
        pkgdiff.push((
            p.name.clone(),
            1,
            JsonChange {
                previous: t(p),
                new: None,
            },
        ));
    }
    for (kind, v) in [(2, &d.upgraded), (3, &d.downgraded)] {
        for (o, n) in v {
            pkgdiff.push((
                o.name.clone(),
                kind,
                JsonChange {
                    previous: t(o),
                    new: t(n),
                },
            ));
        }
    }
    pkgdiff.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(serde_json::to_string_pretty(&JsonDiff {
        from,
        to,
        pkgdiff,
        // Strata's commits carry no advisories (`rpmostree.advisories`).
        advisories: Vec::new(),
    })?)
}
