//! File ownership from the package header, applied to the assembled tree once the package's
//! `%pre` scriptlet may have created its users (the package cache stores every file as root).
//!
//! Names are resolved against the tree's own `/usr/etc/passwd` and `/usr/lib/passwd` (and
//! `group`), never this host's: the hand-written lookup reads the colon-separated fields of
//! those files because NSS would answer for the machine running the daemon.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::escape_for_message as esc;
use super::nevra::Nevra;
use super::paths::{self, Placement};

/// The id of `name` in the tree's `passwd` or `group` database (`db`).
fn lookup(root: &Path, db: &str, name: &str) -> Result<Option<u32>> {
    for rel in [format!("usr/etc/{db}"), format!("usr/lib/{db}")] {
        let Ok(text) = fs::read_to_string(root.join(&rel)) else {
            continue;
        };
        for line in text.lines() {
            let mut f = line.split(':');
            if f.next() == Some(name) {
                let id = f.nth(1).and_then(|id| id.parse().ok());
                if id.is_some() {
                    return Ok(id);
                }
            }
        }
    }
    Ok(None)
}

/// Applies the owner, group and mode the header gives each file not owned by root.
pub fn apply(root: &Path, nevra: &Nevra, header: &[u8]) -> Result<()> {
    let meta = rpm::PackageMetadata::parse(&mut &header[..])
        .map_err(|e| anyhow!("{nevra}: reading the package header: {e}"))?;
    let files = meta
        .get_file_entries()
        .map_err(|e| anyhow!("{nevra}: reading the file list: {e}"))?;
    for f in files {
        if (f.user() == "root" && f.group() == "root") || f.flags().contains(rpm::FileFlags::GHOST)
        {
            continue;
        }
        let path = f.path().to_string_lossy().into_owned();
        let is_dir = f.file_type() == rpm::FileType::Dir;
        let Ok(Placement::Tree(rel)) = paths::place(&path, is_dir) else {
            continue;
        };
        let uid = lookup(root, "passwd", f.user())?.ok_or_else(|| {
            anyhow!(
                "{nevra}: {} is owned by user {}, which neither the base nor the package's scriptlets define",
                esc(&path),
                esc(f.user())
            )
        })?;
        let gid = lookup(root, "group", f.group())?.ok_or_else(|| {
            anyhow!(
                "{nevra}: {} belongs to group {}, which neither the base nor the package's scriptlets define",
                esc(&path),
                esc(f.group())
            )
        })?;
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).with_context(|| format!("{nevra}: {}", esc(&path)))?;
        // Files and symlinks in the tree are hard links to repository objects: chown a new
        // copy, never the object.
        if m.file_type().is_symlink() {
            let target = fs::read_link(&p)?;
            fs::remove_file(&p)?;
            symlink(&target, &p)?;
        } else if m.is_file() {
            let tmp = p.with_file_name(format!(
                ".{}.strata-owner",
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            fs::copy(&p, &tmp)?;
            fs::rename(&tmp, &p)?;
        } else if !m.is_dir() {
            bail!(
                "{nevra}: {} is not a file, directory or symlink",
                esc(&path)
            );
        }
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
        if !m.file_type().is_symlink() {
            // chown clears setuid and setgid; the header's mode puts them back.
            let mode = u32::from(f.permissions()) & 0o7777;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}
