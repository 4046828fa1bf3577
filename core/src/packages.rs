//! `install` / `uninstall`: change the packages layered on the current base (rpm-ostree's
//! `UpdateDeployment` with `install-packages` / `uninstall-packages` and `no-pull-base`).
//!
//! The requests go into the origin's `[packages] requested`; the new deployment runs the same
//! base with the new set layered (or the plain base when none is left).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use fn_error_context::context;

use crate::layering::escape_for_message as esc;
use crate::layering::Nevra;
use crate::origin::LocalPackage;
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
    /// Local RPM files to layer (`requested-local`), open for reading: the daemon gets them
    /// as file descriptors from its caller, which opened them with its own rights.
    pub install_local: Vec<Arc<File>>,
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

/// What an origin asks to layer: `requested` and `requested-local`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    /// Names or provides from repositories.
    pub packages: Vec<String>,
    /// Local packages.
    pub local: Vec<LocalPackage>,
}

impl Requests {
    fn describe(&self) -> String {
        let all: Vec<String> = self
            .packages
            .iter()
            .cloned()
            .chain(self.local.iter().map(|l| l.nevra.clone()))
            .collect();
        if all.is_empty() {
            "none".to_string()
        } else {
            all.join(", ")
        }
    }
}

/// Whether uninstall argument `name` means local package `l`: its NEVRA or its name.
fn names_local(name: &str, l: &LocalPackage) -> bool {
    l.nevra == name || Nevra::parse(&l.nevra).is_some_and(|n| n.name == name)
}

/// The requests after applying `change` (with its local files already identified as
/// `new_local`) to `current`, or an error naming a request that is already made (install) or
/// not made (uninstall) unless `idempotent`.
pub fn apply_change(
    current: &Requests,
    change: &PackageChange,
    new_local: &[LocalPackage],
) -> Result<Requests> {
    let mut next = if change.uninstall_all {
        Requests::default()
    } else {
        current.clone()
    };
    for name in &change.uninstall {
        if let Some(i) = next.packages.iter().position(|r| r == name) {
            next.packages.remove(i);
            continue;
        }
        let before = next.local.len();
        next.local.retain(|l| !names_local(name, l));
        if next.local.len() < before || change.idempotent || change.uninstall_all {
            continue;
        }
        bail!(
            "Package {} is not currently requested; requested packages: {}",
            esc(name),
            current.describe()
        );
    }
    for name in &change.install {
        if next.packages.contains(name) {
            if change.idempotent {
                continue;
            }
            bail!("Package {} is already requested", esc(name));
        }
        next.packages.push(name.clone());
    }
    for l in new_local {
        if next.local.contains(l) {
            if change.idempotent {
                continue;
            }
            bail!("Local package {} is already requested", l.nevra);
        }
        let name = Nevra::parse(&l.nevra).map(|n| n.name);
        if let Some(other) = next
            .local
            .iter()
            .find(|o| Nevra::parse(&o.nevra).map(|n| n.name) == name)
        {
            bail!(
                "A local package {} is already requested; uninstall it before installing {}",
                other.nevra,
                l.nevra
            );
        }
        next.local.push(l.clone());
    }
    next.packages.sort();
    next.packages.dedup();
    next.local.sort_by(|a, b| a.nevra.cmp(&b.nevra));
    Ok(next)
}

/// A path that opens `file` again (`/proc/self/fd/N`), for readers that take paths.
fn fd_path(file: &File) -> Result<PathBuf> {
    let meta = file.metadata().context("Reading a local package file")?;
    if !meta.is_file() {
        bail!("A local package must be a regular .rpm file");
    }
    Ok(PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())))
}

/// Imports the change's local files into the package cache (or, for a dry run, only reads
/// their headers), refusing what cannot be layered before anything is written.
fn local_requests(
    repo: &ostree::Repo,
    change: &PackageChange,
    ctx: &OpContext,
) -> Result<Vec<LocalPackage>> {
    if change.install_local.is_empty() {
        return Ok(Vec::new());
    }
    ctx.task(
        &format!("Importing local packages ({})", change.install_local.len()),
        || {
            let mut out = Vec::new();
            for file in &change.install_local {
                let path = fd_path(file)?;
                crate::layering::assemble::refuse_unsupported(&path)?;
                let (nevra, sha256) = if change.dry_run {
                    crate::layering::import::identify(&path)?
                } else {
                    let pkg = crate::layering::import_rpm(repo, &path, None, ctx)?;
                    (pkg.nevra, pkg.metadata_sha256)
                };
                out.push(LocalPackage {
                    sha256,
                    nevra: nevra.to_string(),
                });
            }
            Ok(out)
        },
    )
}

/// Changes the layered packages of the stateroot's next deployment.
#[context("Changing layered packages")]
pub fn pkg_change(sysroot: &Sysroot, change: &PackageChange, ctx: &OpContext) -> Result<Outcome> {
    let p = Prepared::new(sysroot, change.osname.as_deref())?;
    let before = Requests {
        packages: p.origin.requested_packages(),
        local: p.origin.requested_local_packages(),
    };
    let new_local = local_requests(&p.repo, change, ctx)?;
    let after = apply_change(&before, change, &new_local)?;
    if after == before {
        ctx.message("No change.");
        return Ok(Outcome::Unchanged);
    }
    let mut origin = p.origin.clone();
    origin.set_layered_requests(&after.packages, &after.local)?;
    if change.dry_run {
        ctx.message(format!("Requested packages would be: {}", after.describe()));
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
                .packages
                .iter()
                .filter(|p| !before.packages.contains(p))
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

    fn r(s: &[&str]) -> Requests {
        Requests {
            packages: v(s),
            local: Vec::new(),
        }
    }

    fn local(nevra: &str, digit: char) -> LocalPackage {
        LocalPackage {
            sha256: std::iter::repeat_n(digit, 64).collect(),
            nevra: nevra.into(),
        }
    }

    #[test]
    fn requests_are_added_and_removed() {
        let change = PackageChange {
            install: v(&["vim", "htop"]),
            uninstall: v(&["tmux"]),
            ..Default::default()
        };
        assert_eq!(
            apply_change(&r(&["tmux", "git"]), &change, &[]).unwrap(),
            r(&["git", "htop", "vim"])
        );
    }

    #[test]
    fn repeated_or_missing_requests_fail_unless_idempotent() {
        let install = PackageChange {
            install: v(&["git"]),
            ..Default::default()
        };
        let err = apply_change(&r(&["git"]), &install, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("git") && err.contains("already"), "{err}");
        let uninstall = PackageChange {
            uninstall: v(&["vim"]),
            ..Default::default()
        };
        let err = apply_change(&r(&["git"]), &uninstall, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vim") && err.contains("not currently requested"),
            "{err}"
        );
        for mut c in [install, uninstall] {
            c.idempotent = true;
            assert_eq!(apply_change(&r(&["git"]), &c, &[]).unwrap(), r(&["git"]));
        }
        let all = PackageChange {
            uninstall_all: true,
            ..Default::default()
        };
        assert_eq!(
            apply_change(&r(&["git", "vim"]), &all, &[]).unwrap(),
            Requests::default()
        );
    }

    #[test]
    fn local_packages_are_added_and_removed_by_name_or_nevra() {
        let tool = local("tool-2.0-1.noarch", 'a');
        let tool = std::slice::from_ref(&tool);
        let add = apply_change(&r(&["git"]), &PackageChange::default(), tool).unwrap();
        assert_eq!(add.local, tool);
        assert_eq!(add.packages, v(&["git"]));
        let err = apply_change(&add, &PackageChange::default(), tool)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already requested"), "{err}");
        let newer = local("tool-2.1-1.noarch", 'b');
        let err = apply_change(&add, &PackageChange::default(), &[newer])
            .unwrap_err()
            .to_string();
        assert!(err.contains("uninstall it before"), "{err}");
        for name in ["tool", "tool-2.0-1.noarch"] {
            let change = PackageChange {
                uninstall: v(&[name]),
                ..Default::default()
            };
            assert_eq!(apply_change(&add, &change, &[]).unwrap(), r(&["git"]));
        }
    }
}
