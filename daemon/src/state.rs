//! The cached view of the sysroot that properties are served from, and the cheap check that
//! tells when it is stale.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use strata_core::status::DeploymentStatus;
use strata_core::Sysroot;
use zbus::zvariant::OwnedValue;

/// Which deployments an `OS` object shows, as indexes into [`Snapshot::deployments`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OsState {
    pub booted: Option<usize>,
    pub default: Option<usize>,
    pub rollback: Option<usize>,
}

/// Everything the properties need, loaded at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub deployments: Vec<DeploymentStatus>,
    /// The stateroot of the booted deployment.
    pub booted_os: Option<String>,
    /// The stateroot of the first deployment.
    pub default_os: Option<String>,
    /// One entry per stateroot that has deployments.
    pub os: BTreeMap<String, OsState>,
    /// Whether the sysroot is the running system's.
    pub is_booted: bool,
    /// Each stateroot's cached update (what the last check found), as stored: a serialised
    /// `a{sv}` ([`strata_core::update`]).
    pub cached_updates: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    /// Build from loaded deployments (pure, for tests).
    pub(crate) fn from_deployments(deployments: Vec<DeploymentStatus>) -> Snapshot {
        let booted_os = deployments
            .iter()
            .find(|d| d.booted)
            .map(|d| d.osname.clone());
        let default_os = deployments.first().map(|d| d.osname.clone());
        let mut os: BTreeMap<String, OsState> = BTreeMap::new();
        for d in &deployments {
            os.entry(d.osname.clone()).or_default();
        }
        for (name, st) in os.iter_mut() {
            let idx: Vec<usize> = deployments
                .iter()
                .enumerate()
                .filter(|(_, d)| &d.osname == name)
                .map(|(i, _)| i)
                .collect();
            st.default = idx.first().copied();
            st.booted = idx.iter().copied().find(|&i| deployments[i].booted);
            // libostree's query_deployments_for: the first deployment after the booted one; on
            // a sysroot that is not booted, the one after the default.
            st.rollback = match st.booted {
                Some(b) => idx.iter().copied().find(|&i| i > b),
                None => idx.get(1).copied(),
            };
        }
        Snapshot {
            is_booted: booted_os.is_some(),
            deployments,
            booted_os,
            default_os,
            os,
            cached_updates: BTreeMap::new(),
        }
    }

    /// Load from disk (blocking). With `remove_leftovers` (stratad's start), what a crash left
    /// in the sysroot (a partly written deployment directory) goes first, on the same open
    /// sysroot: opening one is a good part of stratad's start.
    pub(crate) fn load(path: &Path, remove_leftovers: bool) -> Result<Snapshot> {
        let sysroot = Sysroot::open(path)?;
        if remove_leftovers {
            if let Err(e) = strata_core::cleanup::remove_leftovers(&sysroot) {
                tracing::warn!("{e:#}");
            }
        }
        let report = strata_core::status::load(&sysroot)?;
        let mut snap = Snapshot::from_deployments(report.deployments);
        snap.is_booted = sysroot.is_booted();
        for osname in snap.os.keys() {
            // A cached update is an extra: one that cannot be read is logged and left out.
            match strata_core::update::load(&sysroot, osname) {
                // Kept only if it goes on the bus: HasCachedUpdateRpmDiff must not say there is
                // an update whose CachedUpdate reads empty.
                Ok(Some(v)) => match crate::gvariant::to_dict(&v) {
                    Ok(_) => {
                        snap.cached_updates
                            .insert(osname.clone(), v.data().to_vec());
                    }
                    Err(e) => {
                        tracing::warn!("The cached update of {osname} does not convert: {e:#}")
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::warn!("{e:#}"),
            }
        }
        Ok(snap)
    }

    /// The stateroot that an empty name means: the booted one, else the default one.
    pub(crate) fn default_osname(&self) -> Option<&str> {
        self.booted_os.as_deref().or(self.default_os.as_deref())
    }

    pub(crate) fn deployment(&self, i: Option<usize>) -> Option<&DeploymentStatus> {
        i.and_then(|i| self.deployments.get(i))
    }

    /// The cached update of `osname` as a D-Bus dictionary (empty when there is none).
    pub(crate) fn cached_update(&self, osname: &str) -> HashMap<String, OwnedValue> {
        let Some(bytes) = self.cached_updates.get(osname) else {
            return HashMap::new();
        };
        let v = ostree::glib::Variant::from_data_with_type(
            bytes.clone(),
            ostree::glib::VariantTy::VARDICT,
        );
        match crate::gvariant::to_dict(&v) {
            Ok(dict) => dict,
            Err(e) => {
                tracing::warn!("The cached update of {osname} does not decode: {e}");
                HashMap::new()
            }
        }
    }
}

/// Modification times of what changes when the deployments or refs change: libostree bumps
/// `ostree/deploy` on every deployment change (also for `ostree admin` run by hand), pulls
/// rename ref files into `ostree/repo/refs/...`, and the bootloader swap replaces
/// `boot/loader`.
pub(crate) type Stamp = Vec<(PathBuf, Option<SystemTime>)>;

fn mtime(p: &Path) -> Option<SystemTime> {
    fs_err::symlink_metadata(p).and_then(|m| m.modified()).ok()
}

fn walk_dirs(dir: &Path, out: &mut Stamp, depth: usize) {
    out.push((dir.to_path_buf(), mtime(dir)));
    if depth == 0 {
        return;
    }
    if let Ok(rd) = fs_err::read_dir(dir) {
        let mut subdirs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        subdirs.sort();
        for d in subdirs {
            walk_dirs(&d, out, depth - 1);
        }
    }
}

/// The current stamp of the sysroot at `path` (a few `stat` calls).
pub(crate) fn stamp(path: &Path) -> Stamp {
    let mut s = Stamp::new();
    // libostree bumps `ostree/deploy` on every write; each stateroot's `deploy` dir changes
    // when an origin file is replaced (pinning, `ostree admin set-origin`).
    let deploy = path.join("ostree/deploy");
    s.push((deploy.clone(), mtime(&deploy)));
    if let Ok(rd) = fs_err::read_dir(&deploy) {
        let mut roots: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path().join("deploy"))
            .collect();
        roots.sort();
        for r in roots {
            s.push((r.clone(), mtime(&r)));
            // The cached update a check writes (rewritten by rename).
            let cache = r
                .with_file_name("var")
                .join(strata_core::update::CACHE_FILE);
            s.push((cache.clone(), mtime(&cache)));
        }
    }
    // The repo dir changes when a remote's keyring is added.
    for name in [
        "boot/loader",
        "ostree/repo",
        "ostree/repo/config",
        "ostree/repo/refs",
    ] {
        let p = path.join(name);
        s.push((p.clone(), mtime(&p)));
    }
    walk_dirs(&path.join("ostree/repo/refs/remotes"), &mut s, 8);
    walk_dirs(&path.join("ostree/repo/refs/heads"), &mut s, 8);
    if path == Path::new("/") {
        let p = PathBuf::from(strata_core::sysroot::STAGED_LOCKED_PATH);
        s.push((p.clone(), mtime(&p)));
        s.push((
            "/run/ostree/staged-deployment".into(),
            mtime(Path::new("/run/ostree/staged-deployment")),
        ));
    }
    s
}

/// The directories to watch for changes to `stamp`: each directory it reads, and the parent
/// of each file (a file replaced by rename is a new inode, but an event in its directory).
pub(crate) fn watch_dirs(stamp: &Stamp) -> BTreeSet<PathBuf> {
    stamp
        .iter()
        .filter_map(|(p, _)| {
            let is_dir = fs_err::symlink_metadata(p).is_ok_and(|m| m.is_dir());
            if is_dir {
                Some(p.clone())
            } else {
                p.parent().map(Path::to_path_buf)
            }
        })
        .filter(|p| p.is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(os: &str, booted: bool) -> DeploymentStatus {
        DeploymentStatus {
            osname: os.into(),
            booted,
            ..Default::default()
        }
    }

    #[test]
    fn os_slots() {
        let s = Snapshot::from_deployments(vec![
            dep("a", false),
            dep("b", false),
            dep("a", true),
            dep("a", false),
        ]);
        assert_eq!(s.booted_os.as_deref(), Some("a"));
        assert_eq!(s.default_osname(), Some("a"));
        let a = &s.os["a"];
        assert_eq!(
            (a.default, a.booted, a.rollback),
            (Some(0), Some(2), Some(3))
        );
        let b = &s.os["b"];
        assert_eq!((b.default, b.booted, b.rollback), (Some(1), None, None));

        let s = Snapshot::from_deployments(vec![dep("a", false), dep("a", false)]);
        assert_eq!(s.booted_os, None);
        assert_eq!(s.default_osname(), Some("a"));
        assert_eq!(s.os["a"].rollback, Some(1));
        assert!(!s.is_booted);
    }
}
