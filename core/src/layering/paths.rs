//! Where a file of an RPM payload lands in an ostree tree (rpm-ostree's translation, so a host can
//! move between the two), and which paths a layered package may not carry at all.
//!
//! - `/usr/...` stays; `/bin`, `/sbin`, `/lib`, `/lib64` are the `/usr` merge's symlinks in the
//!   base, so their content goes to `usr/bin`, ... directly.
//! - `/etc/...` goes to `usr/etc/...` (libostree checks `/usr/etc` out as `/etc` and merges it).
//! - `/boot/...` goes to `usr/lib/ostree-boot/...`.
//! - `/opt/...` goes to `usr/lib/opt/...`, with a `systemd-tmpfiles` link for each top-level
//!   entry (`/opt` is `/var/opt` on the booted system).
//! - `/var/...` and `/run/...` are state, not content: directories become `systemd-tmpfiles`
//!   lines and anything else is dropped.
//! - Anything else (`/srv`, `/home`, `/root`, `/tmp`, `/mnt`, `/media`, a new top-level
//!   directory) is refused: the deployment would not carry it.

use std::fmt;

/// What to do with one payload path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Store it at this path relative to the root of the tree (no leading `/`).
    Tree(String),
    /// A directory under `/var` or `/run`: created at boot by systemd-tmpfiles.
    Tmpfiles(String),
    /// Content under `/var` or `/run` that is not a directory: dropped, as rpm-ostree does.
    Drop,
}

/// A payload path no deployment can carry, or that is not a plain absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath {
    /// The path as the package gives it.
    pub path: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            crate::layering::escape_for_message(&self.path),
            self.reason
        )
    }
}

/// The longest payload path accepted (Linux's `PATH_MAX`).
const MAX_PATH: usize = 4096;

/// The components of an absolute, normalized path: no `.`, `..` or empty components, no NUL,
/// not longer than `PATH_MAX`.
pub fn components(path: &str) -> Result<Vec<&str>, BadPath> {
    let bad = |reason| BadPath {
        path: path.to_string(),
        reason,
    };
    if path.len() > MAX_PATH {
        return Err(bad("longer than PATH_MAX"));
    }
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad("not an absolute path"))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err(bad("has an empty component (`//` or a trailing `/`)")),
            "." | ".." => {
                return Err(bad(
                    "has a `.` or `..` component, which could escape the tree",
                ))
            }
            _ => {}
        }
    }
    Ok(parts)
}

/// Where the payload path `path` (a directory when `is_dir`) goes.
pub fn place(path: &str, is_dir: bool) -> Result<Placement, BadPath> {
    let parts = components(path)?;
    let Some((top, rest)) = parts.split_first() else {
        // The root directory itself: the base owns it.
        return Ok(Placement::Drop);
    };
    let under = |prefix: &str| {
        let mut p = prefix.to_string();
        for part in rest {
            p.push('/');
            p.push_str(part);
        }
        Placement::Tree(p)
    };
    Ok(match *top {
        "usr" => under("usr"),
        "bin" | "sbin" | "lib" | "lib64" => under(&format!("usr/{top}")),
        "etc" => under("usr/etc"),
        "boot" => under("usr/lib/ostree-boot"),
        "opt" => under("usr/lib/opt"),
        "var" | "run" if is_dir => Placement::Tmpfiles(path.to_string()),
        "var" | "run" => Placement::Drop,
        _ => {
            return Err(BadPath {
                path: path.to_string(),
                reason: "outside the directories a layered package may write (/usr, /etc, /opt, /boot, /var, /run)",
            })
        }
    })
}

/// The systemd-tmpfiles line creating `/var` or `/run` directory `path`.
pub fn tmpfiles_dir_line(path: &str, mode: u32, user: &str, group: &str) -> String {
    format!("d {path} {:04o} {user} {group} - -", mode & 0o7777)
}

/// The systemd-tmpfiles line linking the top-level `/opt/NAME` to where the content is (relative
/// to `/var/opt`, which `/opt` links to on ostree systems; rpm-ostree writes the same line).
pub fn tmpfiles_opt_line(name: &str) -> String {
    format!("L /opt/{name} - - - - ../../usr/lib/opt/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(p: &str) -> Placement {
        Placement::Tree(p.to_string())
    }

    #[test]
    fn paths_are_translated_as_rpm_ostree_does() {
        assert_eq!(place("/usr/bin/htop", false), Ok(tree("usr/bin/htop")));
        assert_eq!(
            place("/etc/htop.conf", false),
            Ok(tree("usr/etc/htop.conf"))
        );
        assert_eq!(
            place("/boot/efi/x", false),
            Ok(tree("usr/lib/ostree-boot/efi/x"))
        );
        assert_eq!(
            place("/opt/app/bin", false),
            Ok(tree("usr/lib/opt/app/bin"))
        );
        assert_eq!(
            place("/lib64/libx.so", false),
            Ok(tree("usr/lib64/libx.so"))
        );
        assert_eq!(
            place("/var/lib/app", true),
            Ok(Placement::Tmpfiles("/var/lib/app".into()))
        );
        assert_eq!(place("/var/lib/app/db", false), Ok(Placement::Drop));
        assert_eq!(
            place("/run/app", true),
            Ok(Placement::Tmpfiles("/run/app".into()))
        );
        assert_eq!(place("/", true), Ok(Placement::Drop));
    }

    #[test]
    fn escaping_or_unsupported_paths_are_refused() {
        for (path, why) in [
            ("/usr/../etc/shadow", "`..`"),
            ("/usr/./bin", "`..`"),
            ("usr/bin/x", "absolute"),
            ("/usr//bin", "empty"),
            ("/usr/bin/", "empty"),
            ("/srv/www/index.html", "outside"),
            ("/home/user/.bashrc", "outside"),
            ("/tmp/x", "outside"),
        ] {
            let err = place(path, false).unwrap_err();
            assert!(err.to_string().contains(why), "{path}: {err}");
        }
        assert!(place(&format!("/usr/{}", "a".repeat(5000)), false).is_err());
        assert!(place("/usr/a\0b", false).is_err());
    }

    #[test]
    fn tmpfiles_lines() {
        assert_eq!(
            tmpfiles_dir_line("/var/lib/app", 0o40750, "app", "app"),
            "d /var/lib/app 0750 app app - -"
        );
        assert_eq!(
            tmpfiles_opt_line("app"),
            "L /opt/app - - - - ../../usr/lib/opt/app"
        );
    }
}
