//! `cleanup`: remove pending or rollback deployments, temporary state and caches.

use anyhow::{anyhow, Context, Result};
use cap_std_ext::cap_std::ambient_authority;
use cap_std_ext::cap_std::fs::Dir;
use cap_std_ext::dirext::CapStdExtDirExt;
use fn_error_context::context;
use ostree::{gio, glib};

use crate::commit;
use crate::progress::OpContext;
use crate::rollback::{current_index, slots, Slot};
use crate::stage::Outcome;
use crate::sysroot::{deployment_id, new_ref, Sysroot};

/// What to clean (`rpm-ostree cleanup -b -p -r -m`).
#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    pub osname: Option<String>,
    /// Temporary files, interrupted operations, base refs no deployment needs; prunes the repo.
    pub base: bool,
    /// Deployments queued above the current one (including a staged one).
    pub pending: bool,
    /// Deployments below the current one.
    pub rollback: bool,
    /// The rpm-md cache.
    pub repomd: bool,
}

impl CleanupOptions {
    fn any(&self) -> bool {
        self.base || self.pending || self.rollback || self.repomd
    }
}

/// Which deployments to keep. Pinned deployments and those of other stateroots always stay.
pub fn plan_cleanup(slots: &[Slot], osname: &str, pending: bool, rollback: bool) -> Vec<usize> {
    let Some(current) = current_index(slots, osname) else {
        return (0..slots.len()).collect();
    };
    (0..slots.len())
        .filter(|&i| {
            let s = &slots[i];
            if i == current || s.osname != osname || s.pinned {
                return true;
            }
            !((i < current && pending) || (i > current && rollback))
        })
        .collect()
}

/// The prefix of refs protecting the base commits of layered deployments.
pub const BASE_REF_PREFIX: &str = "rpmostree/base";

#[context("Cleaning up")]
pub fn cleanup(sysroot: &Sysroot, opts: &CleanupOptions, ctx: &OpContext) -> Result<Outcome> {
    if !opts.any() {
        return Err(anyhow!(
            "Nothing to clean: choose at least one of base, pending, rollback, repomd (-b, -p, -r, -m)"
        ));
    }
    let _lock = sysroot.lock()?;
    sysroot.reload()?;
    let osname = sysroot.resolve_osname(opts.osname.as_deref())?;
    let mut done = Vec::new();
    if opts.pending || opts.rollback {
        let deployments = sysroot.deployments();
        let keep = plan_cleanup(&slots(sysroot), &osname, opts.pending, opts.rollback);
        if keep.len() != deployments.len() {
            let removed: Vec<String> = (0..deployments.len())
                .filter(|i| !keep.contains(i))
                .map(|i| deployment_id(&deployments[i]))
                .collect();
            let new: Vec<ostree::Deployment> =
                keep.iter().map(|&i| new_ref(&deployments[i])).collect();
            ctx.check_cancelled()?;
            ctx.task("Removing deployments", || {
                Ok(sysroot
                    .ostree()
                    .write_deployments(&new, gio::Cancellable::NONE)?)
            })?;
            for id in &removed {
                ctx.message(format!("Deleted {id}"));
            }
            done.push(format!("removed {}", removed.join(", ")));
            sysroot.reload()?;
        }
    }
    if opts.base {
        crate::image::prune_and_report(sysroot.ostree(), ctx)?;
        ctx.task("Cleaning up base refs and temporary files", || {
            regenerate_layering_refs(sysroot, None, true)?;
            Ok(sysroot.ostree().cleanup(Some(ctx.cancellable()))?)
        })?;
        done.push("cleaned base".to_string());
    }
    if opts.repomd {
        // Through a handle on the stateroot: every path below it is resolved beneath it, so a
        // symlink planted in var/ cannot point the removal outside the sysroot.
        let stateroot = sysroot.path().join("ostree/deploy").join(&osname);
        let dir = Dir::open_ambient_dir(&stateroot, ambient_authority())
            .with_context(|| format!("Opening {}", stateroot.display()))?;
        // rpm-ostree's caches, and Strata's own (`layering_cache_dir`).
        for p in [
            "var/cache/rpm-ostree/repomd",
            "var/cache/rpm-ostree/solv",
            "var/cache/strata/repomd",
            "var/cache/strata/solv",
        ] {
            let removed = dir
                .remove_all_optional(p)
                .with_context(|| format!("Removing {}", stateroot.join(p).display()))?;
            if removed {
                ctx.message(format!("Removed {}", stateroot.join(p).display()));
            }
        }
        // With the metadata goes what was found with it (as rpm-ostree's wipe of its cache).
        let cached_update = format!("var/{}", crate::update::CACHE_FILE);
        if dir
            .remove_file_optional(&cached_update)
            .with_context(|| format!("Removing {}", stateroot.join(&cached_update).display()))?
        {
            ctx.message(format!(
                "Removed {}",
                stateroot.join(&cached_update).display()
            ));
        }
        done.push("cleaned rpm-md cache".to_string());
    }
    Ok(Outcome::Changed(done.join("; ")))
}

/// Where layering keeps libdnf's repository metadata, solver and lock files for stateroot
/// `osname`: its `/var/cache/strata` (the booted `/var` on a host).
pub(crate) fn layering_cache_dir(sysroot: &Sysroot, osname: &str) -> std::path::PathBuf {
    sysroot
        .path()
        .join("ostree/deploy")
        .join(osname)
        .join("var/cache/strata")
}

/// Remove what an interrupted operation left behind: deployment directories that no
/// deployment refers to (a crash while writing one), old boot versions, staged-deployment
/// leftovers. Everything libostree's cleanup does except pruning the repo, which would drop
/// commits fetched with --download-only. Skipped while another process holds the sysroot lock.
#[context("Removing leftovers of interrupted operations")]
pub fn remove_leftovers(sysroot: &Sysroot) -> Result<bool> {
    // libostree's cleanup also rewrites the deployment refs in a repository transaction (a
    // syncfs and an fsync of every object directory) even when nothing is left over, which
    // made up a good part of stratad's start.
    if !has_leftovers(sysroot) {
        return Ok(false);
    }
    let Ok(_lock) = sysroot.lock() else {
        tracing::info!("The sysroot is locked; leaving leftovers for later");
        return Ok(false);
    };
    // Another process may have written deployments between the load and the lock: cleaning
    // up after an old load would remove what it just wrote.
    sysroot.reload()?;
    if !has_leftovers(sysroot) {
        return Ok(false);
    }
    sysroot.ostree().prepare_cleanup(gio::Cancellable::NONE)?;
    Ok(true)
}

/// Whether [`remove_leftovers`] has anything to do: a bootloader or boot-link version other than
/// the current one, a deployment directory, a boot directory or overlay initramfs, or a
/// deployment ref that no deployment accounts for — what libostree's cleanup removes or
/// rewrites (ostree-sysroot-cleanup.c), judged as it judges them. A few directory reads; in
/// doubt (an error, a name not understood) `true`.
fn has_leftovers(sysroot: &Sysroot) -> bool {
    use std::collections::{HashMap, HashSet};
    let o = sysroot.ostree();
    let (bv, sbv) = (o.bootversion(), o.subbootversion());
    let root = sysroot.path();
    let other_versions = [
        format!("boot/loader.{}", 1 - bv),
        format!("ostree/boot.{}", 1 - bv),
        format!("ostree/boot.{}.0", 1 - bv),
        format!("ostree/boot.{}.1", 1 - bv),
        format!("ostree/boot.{bv}.{}", 1 - sbv),
    ];
    if other_versions
        .iter()
        .any(|p| root.join(p).symlink_metadata().is_ok())
    {
        return true;
    }
    let deployments = o.deployments();
    let mut dirs = HashSet::new();
    let mut bootcsums = HashSet::new();
    let mut overlays = HashSet::new();
    let mut refs = HashMap::new();
    for (i, d) in deployments.iter().enumerate() {
        dirs.insert(format!("{}/{}.{}", d.osname(), d.csum(), d.deployserial()));
        bootcsums.insert(d.bootcsum().to_string());
        for initrd in d
            .bootconfig()
            .map(|b| b.overlay_initrds())
            .unwrap_or_default()
        {
            let name = initrd.rsplit('/').next().unwrap_or_default().to_string();
            overlays.insert(name);
        }
        refs.insert(format!("ostree/{bv}/{sbv}/{i}"), d.csum().to_string());
    }
    // The entries of a directory with whether each is a directory; `None` on any error.
    let entries = |dir: &std::path::Path| -> Option<Vec<(String, bool)>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(dir).ok()? {
            let e = e.ok()?;
            v.push((
                e.file_name().into_string().ok()?,
                e.file_type().ok()?.is_dir(),
            ));
        }
        Some(v)
    };
    // Deployment directories: libostree deletes the directories no deployment is in (their
    // origin files with them) and leaves anything else alone.
    let Some(osnames) = entries(&root.join("ostree/deploy")) else {
        return true;
    };
    for (os, _) in osnames.iter().filter(|(_, is_dir)| *is_dir) {
        let deploy = root.join("ostree/deploy").join(os).join("deploy");
        if !deploy.exists() {
            continue;
        }
        let Some(list) = entries(&deploy) else {
            return true;
        };
        if list
            .iter()
            .any(|(e, is_dir)| *is_dir && !dirs.contains(&format!("{os}/{e}")))
        {
            return true;
        }
    }
    // Boot directories (`OSNAME-BOOTCSUM`, kept while any deployment uses the boot checksum)
    // and overlay initramfs images no deployment names.
    let boot = root.join("boot/ostree");
    if boot.exists() {
        let Some(list) = entries(&boot) else {
            return true;
        };
        for (e, is_dir) in list {
            if e == "initramfs-overlays" {
                let Some(files) = entries(&boot.join(&e)) else {
                    return true;
                };
                if files.iter().any(|(f, _)| !overlays.contains(f)) {
                    return true;
                }
            } else if is_dir && !bootcsums.iter().any(|c| e.ends_with(&format!("-{c}"))) {
                return true;
            }
        }
    }
    // The deployment refs `ostree/BOOTVERSION/SUBBOOTVERSION/INDEX` (ostree-ext keeps other
    // refs under `ostree/`: its images and layers).
    let listed = sysroot.repo().list_refs_ext(
        Some("ostree"),
        ostree::RepoListRefsExtFlags::NONE,
        gio::Cancellable::NONE,
    );
    let Ok(listed) = listed else {
        return true;
    };
    let deployment_ref = |name: &str| {
        name.strip_prefix("ostree/").is_some_and(|rest| {
            let parts: Vec<_> = rest.split('/').collect();
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok())
        })
    };
    let listed: HashMap<String, String> = listed
        .into_iter()
        .filter(|(k, _)| deployment_ref(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    listed != refs
}

/// Point `rpmostree/base/N` at the base commit of every layered deployment (and of `extra`, a
/// layered commit about to be deployed) and delete the rest, so that pruning keeps exactly the
/// bases still needed (rpm-ostree's scheme). With `gc_packages`, also delete the
/// `rpmostree/pkg/*` refs no deployment's packages use.
pub(crate) fn regenerate_layering_refs(
    sysroot: &Sysroot,
    extra: Option<&str>,
    gc_packages: bool,
) -> Result<()> {
    let repo = sysroot.repo();
    let mut bases = Vec::new();
    let mut used_pkgs = std::collections::HashSet::new();
    let commits: Vec<String> = sysroot
        .deployments()
        .iter()
        .map(|d| d.csum().to_string())
        .chain(extra.map(str::to_string))
        .collect();
    for csum in commits {
        // A deployment whose commit is gone has no base to keep; it must not block a deploy
        // or the cleanup that repairs it.
        let info = match commit::load(&repo, &csum) {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!("{e:#}");
                continue;
            }
        };
        if info.meta_bool("rpmostree.clientlayer") != Some(true) {
            continue;
        }
        if let Some(parent) = &info.parent {
            if !bases.contains(parent) {
                bases.push(parent.clone());
            }
        }
        for (name, epoch, version, release, arch) in glib::VariantDict::new(Some(&info.metadata))
            .lookup::<Vec<(String, String, String, String, String)>>("rpmostree.rpmdb.pkglist")
            .ok()
            .flatten()
            .unwrap_or_default()
        {
            let nevra = crate::layering::Nevra {
                name,
                epoch: epoch.parse().unwrap_or(0),
                version,
                release,
                arch,
            };
            used_pkgs.insert(nevra.cache_ref());
        }
    }
    let existing = repo
        .list_refs(Some(BASE_REF_PREFIX), gio::Cancellable::NONE)
        .context("Listing base refs")?;
    for name in existing.keys() {
        let full = format!("{BASE_REF_PREFIX}/{name}");
        repo.set_ref_immediate(None, &full, None, gio::Cancellable::NONE)
            .with_context(|| format!("Deleting {full}"))?;
    }
    for (i, base) in bases.iter().enumerate() {
        let name = format!("{BASE_REF_PREFIX}/{i}");
        repo.set_ref_immediate(None, &name, Some(base), gio::Cancellable::NONE)
            .with_context(|| format!("Writing {name}"))?;
    }
    if gc_packages {
        let prefix = crate::layering::nevra::PKG_REF_PREFIX.trim_end_matches('/');
        let pkgs = repo
            .list_refs(Some(prefix), gio::Cancellable::NONE)
            .context("Listing package refs")?;
        for name in pkgs.keys() {
            let full = format!("{prefix}/{name}");
            if !used_pkgs.contains(&full) {
                repo.set_ref_immediate(None, &full, None, gio::Cancellable::NONE)
                    .with_context(|| format!("Deleting {full}"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(os: &str, booted: bool, pinned: bool) -> Slot {
        Slot {
            osname: os.into(),
            booted,
            staged: false,
            pinned,
        }
    }

    #[test]
    fn rollback_removes_below_current() {
        let s = vec![
            slot("a", false, false),
            slot("a", false, false),
            slot("a", false, false),
        ];
        assert_eq!(plan_cleanup(&s, "a", false, true), vec![0]);
        assert_eq!(plan_cleanup(&s, "a", true, false), vec![0, 1, 2]);
    }

    #[test]
    fn pending_removes_above_booted() {
        let s = vec![
            slot("a", false, false),
            slot("a", true, false),
            slot("a", false, false),
        ];
        assert_eq!(plan_cleanup(&s, "a", true, false), vec![1, 2]);
        assert_eq!(plan_cleanup(&s, "a", true, true), vec![1]);
    }

    #[test]
    fn pinned_and_other_stateroots_stay() {
        let s = vec![
            slot("a", true, false),
            slot("a", false, true),
            slot("b", false, false),
            slot("a", false, false),
        ];
        assert_eq!(plan_cleanup(&s, "a", true, true), vec![0, 1, 2]);
    }
}
