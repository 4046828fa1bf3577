//! The rpmdb of an assembled tree, written and read with the real `rpm`, so `rpm -q` on the
//! booted system (and rpm-ostree) sees base and layered packages alike.
//!
//! Packages are added with `rpm --justdb` from their headers alone: the package cache keeps each
//! package's lead and headers (`rpmostree.metadata`), which rpm accepts as a package without a
//! payload when it only records it in the database.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::os::fd::AsRawFd;

use anyhow::{anyhow, bail, ensure, Context, Result};
use fn_error_context::context;
use ostree::gio;
use ostree::gio::prelude::*;

use super::escape_for_message as esc;

/// Where rpm-ostree systems keep the rpmdb, relative to the root.
pub const RPMOSTREE_DBPATH: &str = "usr/share/rpm";
/// Where newer composes keep the real one (`/usr/share/rpm` then links to it).
pub const SYSIMAGE_DBPATH: &str = "usr/lib/sysimage/rpm";

/// The files one of which makes a directory an rpm database (sqlite, bdb, ndb).
pub const DATABASE_FILES: [&str; 3] = ["rpmdb.sqlite", "Packages", "Packages.db"];

/// An EVR as rpm compares versions; epoch `"0"` is the same as none.
pub(crate) fn evr<'a>(epoch: &'a str, version: &'a str, release: &'a str) -> rpm_version::Evr<'a> {
    let epoch = if epoch == "0" { "" } else { epoch };
    rpm_version::Evr::new(epoch, version, release)
}

/// Copies the rpmdb directory of `commit` (`/usr/share/rpm` unless only `/usr/lib/sysimage/rpm`
/// is a real directory with a database) to the same place under `root`, without checking out
/// anything else, and returns its absolute path inside the tree. Copies, not hard links: SQLite may write beside
/// what it opens.
#[context("Copying the rpm database out of {}", crate::commit::short(commit))]
pub fn copy_from_commit(
    repo: &ostree::Repo,
    commit: &str,
    root: &Path,
    cancellable: Option<&gio::Cancellable>,
) -> Result<&'static str> {
    let (tree, _) = repo.read_commit(commit, cancellable)?;
    let dbpath = [RPMOSTREE_DBPATH, SYSIMAGE_DBPATH]
        .into_iter()
        .find(|rel| {
            let dir = tree.resolve_relative_path(rel);
            dir.query_file_type(gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS, cancellable)
                == gio::FileType::Directory
                && DATABASE_FILES
                    .iter()
                    .any(|f| dir.child(f).query_exists(cancellable))
        })
        .ok_or_else(|| {
            anyhow!(
                "The commit has no rpm database (/usr/share/rpm or /usr/lib/sysimage/rpm): packages cannot be layered on it or listed"
            )
        })?;
    let dest = root.join(dbpath);
    fs::create_dir_all(dest.parent().expect("a dbpath has a parent"))?;
    let opts = ostree::RepoCheckoutAtOptions {
        subpath: Some(format!("/{dbpath}").into()),
        force_copy: true,
        ..Default::default()
    };
    repo.checkout_at(
        Some(&opts),
        rustix::fs::CWD.as_raw_fd(),
        &dest,
        commit,
        cancellable,
    )?;
    Ok(if dbpath == RPMOSTREE_DBPATH {
        "/usr/share/rpm"
    } else {
        "/usr/lib/sysimage/rpm"
    })
}

/// Replaces each file of the tree's rpmdb directory by a copy of itself: the checkout
/// hard-links them to repository objects, which neither SQLite (opening it) nor rpm (writing
/// it) may touch.
#[context("Copying the rpm database out of the repository")]
pub fn detach(root: &Path, dbpath: &str) -> Result<()> {
    let dir = root.join(dbpath.trim_start_matches('/'));
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let tmp = dir.join(format!(
            ".{}.strata-copy",
            entry.file_name().to_string_lossy()
        ));
        fs::copy(&path, &tmp)?;
        fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// One package as `rpmostree.rpmdb.pkglist` records it: name, epoch, version, release, arch.
pub type PkgTuple = (String, String, String, String, String);

/// Adds packages to the tree's database from their lead-and-headers bytes.
#[context("Writing the rpm database")]
pub fn add_packages(root: &Path, dbpath: &str, headers: &[(String, Vec<u8>)]) -> Result<()> {
    if headers.is_empty() {
        return Ok(());
    }
    // Beside the tree, not in it: rpm opens the package files before it enters the root.
    let scratch = tempfile::Builder::new()
        .prefix(".strata-rpmdb-")
        .tempdir_in(root.parent().unwrap_or(root))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (i, (nevra, bytes)) in headers.iter().enumerate() {
        ensure!(
            !bytes.is_empty(),
            "{}: no package header in the cache",
            esc(nevra)
        );
        let f = scratch.path().join(format!("{i}.rpm"));
        fs::write(&f, bytes)?;
        files.push(f);
    }
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .args(["--dbpath", dbpath])
        .args([
            "--install",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--notriggers",
            "--nodigest",
            "--nosignature",
        ])
        .args(&files);
    run(&mut cmd)?;
    let dir = root.join(dbpath.trim_start_matches('/'));
    remove_leftovers(&dir)?;
    use_rollback_journal(&dir)
}

/// Switches an SQLite rpmdb from rpm's write-ahead log to a rollback journal. A WAL database
/// cannot be opened on a read-only filesystem without its `-shm` file, so on a booted
/// deployment (read-only `/usr`) `rpm -q` would fail; in rollback-journal mode a reader needs
/// nothing but the database file. rpm switches back to WAL whenever it writes.
#[context("Setting the rpmdb's journal mode in {}", dir.display())]
pub fn use_rollback_journal(dir: &Path) -> Result<()> {
    let db = dir.join("rpmdb.sqlite");
    if !db.is_file() {
        // A Berkeley DB or ndb database: nothing to do.
        return Ok(());
    }
    let conn = rusqlite::Connection::open(&db)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=DELETE", [], |row| row.get(0))?;
    ensure!(
        mode.eq_ignore_ascii_case("delete"),
        "SQLite kept journal mode {mode}"
    );
    conn.close().map_err(|(_, e)| e)?;
    remove_leftovers(dir)
}

/// `(name, epoch, version, release, arch)` of every package in the tree's database, sorted as
/// rpm-ostree sorts `rpmostree.rpmdb.pkglist`: name, then EVR as rpm compares versions, then
/// arch.
pub fn list(root: &Path, dbpath: &str) -> Result<Vec<PkgTuple>> {
    let mut pkgs = query(root, dbpath)?;
    pkgs.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| evr(&a.1, &a.2, &a.3).cmp(&evr(&b.1, &b.2, &b.3)))
            .then_with(|| a.4.cmp(&b.4))
    });
    Ok(pkgs)
}

/// `rpm -qa --queryformat QF` over the tree's database.
pub fn query_format(root: &Path, dbpath: &str, qf: &str) -> Result<String> {
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .args(["--dbpath", dbpath, "--query", "--all", "--queryformat", qf]);
    let out = run(&mut cmd)?;
    remove_leftovers(&root.join(dbpath.trim_start_matches('/')))?;
    Ok(out)
}

/// `(name, epoch, version, release, arch)` of every package in the tree's database, in the
/// database's order (`rpm -qa`).
#[context("Listing the rpm database")]
pub fn query(root: &Path, dbpath: &str) -> Result<Vec<PkgTuple>> {
    let mut cmd = Command::new("rpm");
    cmd.arg("--root")
        .arg(root)
        .args(["--dbpath", dbpath, "--query", "--all", "--queryformat"])
        .arg("%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\n");
    let out = run(&mut cmd)?;
    let pkgs = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                [n, e, v, r, a] => Ok((
                    n.to_string(),
                    e.to_string(),
                    v.to_string(),
                    r.to_string(),
                    a.to_string(),
                )),
                _ => Err(anyhow!("Unexpected line from rpm -qa: {}", esc(l))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    remove_leftovers(&root.join(dbpath.trim_start_matches('/')))?;
    Ok(pkgs)
}

/// rpm closes its SQLite database with the write-ahead log folded in, but leaves the empty log
/// and the shared-memory index beside it: a commit carries only the database (and rpm's
/// `.rpm.lock`, which rpm-ostree's trees have too).
pub fn remove_leftovers(dir: &Path) -> Result<()> {
    let wal = dir.join("rpmdb.sqlite-wal");
    if let Ok(meta) = fs::metadata(&wal) {
        ensure!(
            meta.len() == 0,
            "rpm left an unmerged write-ahead log in {}",
            wal.display()
        );
        fs::remove_file(&wal)?;
    }
    match fs::remove_file(dir.join("rpmdb.sqlite-shm")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    // Debian's rpm macros point the database at ~/.rpmdb; --dbpath is always given, and HOME
    // is pointed away so nothing is created there either way.
    cmd.env("HOME", "/nonexistent");
    let out = cmd
        .output()
        .with_context(|| "Running rpm (is it installed?)".to_string())?;
    if !out.status.success() {
        bail!(
            "rpm failed ({}): {}",
            out.status,
            esc(String::from_utf8_lossy(&out.stderr).trim())
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
