//! `install` / `uninstall`: change the packages layered on the current base (rpm-ostree's
//! `UpdateDeployment` with `install-packages` / `uninstall-packages` and `no-pull-base`).
//!
//! The requests go into the origin's `[packages] requested`; the new deployment runs the same
//! base with the new set layered (or the plain base when none is left).

use anyhow::{bail, Result};
use fn_error_context::context;

use crate::layering::escape_for_message as esc;
use crate::prepare::{Finish, Prepared};
use crate::progress::OpContext;
use crate::stage::Outcome;
use crate::sysroot::Sysroot;

/// Options of [`pkg_change`].
#[derive(Debug, Clone, Default)]
pub struct PackageChange {
    /// Stateroot; the booted (or default) one when `None`.
    pub osname: Option<String>,
    /// Packages (names or provides) to add to the requests.
    pub install: Vec<String>,
    /// Requested packages to drop.
    pub uninstall: Vec<String>,
    /// Drop every request (`uninstall --all`, `reset`).
    pub uninstall_all: bool,
    /// Skip requests already made / not made instead of failing.
    pub idempotent: bool,
    /// Allow new requests the base already satisfies (they stay inactive).
    pub allow_inactive: bool,
    /// Resolve and report, deploy nothing.
    pub dry_run: bool,
    /// Use only cached repository metadata.
    pub cache_only: bool,
    /// Download and import, deploy nothing.
    pub download_only: bool,
    /// Stage locked: not finalized at shutdown until `finalize-deployment`.
    pub lock_finalization: bool,
}

/// The requested packages after applying `change` to `current`, or an error naming a request
/// that is already made (install) or not made (uninstall) unless `idempotent`.
pub fn apply_change(current: &[String], change: &PackageChange) -> Result<Vec<String>> {
    let mut requested: Vec<String> = if change.uninstall_all {
        Vec::new()
    } else {
        current.to_vec()
    };
    for name in &change.uninstall {
        match requested.iter().position(|r| r == name) {
            Some(i) => {
                requested.remove(i);
            }
            None if change.idempotent || change.uninstall_all => {}
            None => bail!(
                "Package {} is not currently requested; requested packages: {}",
                esc(name),
                if current.is_empty() {
                    "none".to_string()
                } else {
                    current.join(", ")
                }
            ),
        }
    }
    for name in &change.install {
        if requested.contains(name) {
            if change.idempotent {
                continue;
            }
            bail!("Package {} is already requested", esc(name));
        }
        requested.push(name.clone());
    }
    requested.sort();
    requested.dedup();
    Ok(requested)
}

/// Changes the layered packages of the stateroot's next deployment.
#[context("Changing layered packages")]
pub fn pkg_change(sysroot: &Sysroot, change: &PackageChange, ctx: &OpContext) -> Result<Outcome> {
    let p = Prepared::new(sysroot, change.osname.as_deref())?;
    let before = p.origin.requested_packages();
    let after = apply_change(&before, change)?;
    if after == before {
        ctx.message("No change.");
        return Ok(Outcome::Unchanged);
    }
    let mut origin = p.origin.clone();
    origin.set_requested_packages(&after)?;
    if change.dry_run {
        ctx.message(format!(
            "Requested packages would be: {}",
            if after.is_empty() {
                "none".to_string()
            } else {
                after.join(", ")
            }
        ));
        ctx.message("Exiting because of '--dry-run' option");
        return Ok(Outcome::Unchanged);
    }
    let finish = Finish {
        allow_downgrade: true,
        download_only: change.download_only,
        lock_finalization: change.lock_finalization,
        kargs: None,
        cache_only: change.cache_only,
        forbid_inactive: if change.allow_inactive {
            Vec::new()
        } else {
            after
                .iter()
                .filter(|p| !before.contains(p))
                .cloned()
                .collect()
        },
    };
    p.deploy(&p.current, &origin, &finish, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn requests_are_added_and_removed() {
        let change = PackageChange {
            install: v(&["vim", "htop"]),
            uninstall: v(&["tmux"]),
            ..Default::default()
        };
        assert_eq!(
            apply_change(&v(&["tmux", "git"]), &change).unwrap(),
            v(&["git", "htop", "vim"])
        );
    }

    #[test]
    fn repeated_or_missing_requests_fail_unless_idempotent() {
        let install = PackageChange {
            install: v(&["git"]),
            ..Default::default()
        };
        let err = apply_change(&v(&["git"]), &install)
            .unwrap_err()
            .to_string();
        assert!(err.contains("git") && err.contains("already"), "{err}");
        let uninstall = PackageChange {
            uninstall: v(&["vim"]),
            ..Default::default()
        };
        let err = apply_change(&v(&["git"]), &uninstall)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vim") && err.contains("not currently requested"),
            "{err}"
        );
        for mut c in [install, uninstall] {
            c.idempotent = true;
            assert_eq!(apply_change(&v(&["git"]), &c).unwrap(), v(&["git"]));
        }
        let all = PackageChange {
            uninstall_all: true,
            ..Default::default()
        };
        assert!(apply_change(&v(&["git", "vim"]), &all).unwrap().is_empty());
    }
}
