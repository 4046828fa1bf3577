//! Opening and locking an ostree sysroot, and reading its deployments.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;
use ostree::gio;
use ostree::gio::prelude::*;
use ostree::glib;

use crate::origin::Origin;

/// libostree's finalization lock: while it exists, a staged deployment is not finalized at
/// shutdown (`rpm-ostree deploy --lock-finalization`).
pub const STAGED_LOCKED_PATH: &str = "/run/ostree/staged-deployment-locked";

/// An ostree sysroot at a path: `/` on a host, any directory in tests.
///
/// Not `Send` (libostree objects are not): open one per thread.
pub struct Sysroot {
    path: PathBuf,
    inner: ostree::Sysroot,
}

impl std::fmt::Debug for Sysroot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sysroot")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Holds the sysroot lock; unlocks on drop.
#[derive(Debug)]
pub struct SysrootLock<'a> {
    sysroot: &'a Sysroot,
}

impl Drop for SysrootLock<'_> {
    fn drop(&mut self) {
        self.sysroot.inner.unlock();
    }
}

impl Sysroot {
    /// Open and load the sysroot at `path`.
    #[context("Opening sysroot {}", path.display())]
    pub fn open(path: &Path) -> Result<Self> {
        route_glib_output();
        if !path.join("ostree").is_dir() {
            return Err(anyhow!(
                "{} is not an ostree sysroot (no ostree/ directory)",
                path.display()
            ));
        }
        let inner = ostree::Sysroot::new(Some(&gio::File::for_path(path)));
        inner.load(gio::Cancellable::NONE)?;
        Ok(Self {
            path: path.to_path_buf(),
            inner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The libostree object, for what this wrapper does not cover.
    pub fn ostree(&self) -> &ostree::Sysroot {
        &self.inner
    }

    pub fn repo(&self) -> ostree::Repo {
        self.inner.repo()
    }

    /// Reload if something changed on disk; returns whether it did.
    pub fn reload(&self) -> Result<bool> {
        Ok(self.inner.load_if_changed(gio::Cancellable::NONE)?)
    }

    /// Whether this sysroot is the one the running system booted from. New deployments are
    /// staged on a booted sysroot and written directly otherwise.
    pub fn is_booted(&self) -> bool {
        self.inner.booted_deployment().is_some()
    }

    /// Take the sysroot lock, failing at once if another process holds it.
    pub fn lock(&self) -> Result<SysrootLock<'_>> {
        let got = self.inner.try_lock().context("Locking sysroot")?;
        if !got {
            return Err(anyhow!(
                "The sysroot {} is locked by another process (an ostree or rpm-ostree operation is running); wait for it to finish and retry",
                self.path.display()
            ));
        }
        Ok(SysrootLock { sysroot: self })
    }

    /// All deployments in boot order (index 0 is the default for the next boot).
    pub fn deployments(&self) -> Vec<ostree::Deployment> {
        self.inner.deployments()
    }

    pub fn booted_deployment(&self) -> Option<ostree::Deployment> {
        self.inner.booted_deployment()
    }

    /// The stateroot an operation applies to when none is named: the booted one, else that of the
    /// default deployment.
    pub fn default_osname(&self) -> Result<String> {
        if let Some(b) = self.inner.booted_deployment() {
            return Ok(b.osname().to_string());
        }
        self.deployments()
            .first()
            .map(|d| d.osname().to_string())
            .ok_or_else(|| anyhow!("The sysroot {} has no deployments", self.path.display()))
    }

    /// Resolve an explicit stateroot name, or the default one.
    pub fn resolve_osname(&self, osname: Option<&str>) -> Result<String> {
        match osname {
            None => self.default_osname(),
            Some(name) => {
                if self.deployments().iter().any(|d| d.osname() == name) {
                    Ok(name.to_string())
                } else {
                    Err(anyhow!(
                        "No deployments for stateroot {name:?} in {}",
                        self.path.display()
                    ))
                }
            }
        }
    }

    /// The deployment whose `/etc` and kernel arguments a new deployment of `osname` starts
    /// from: the booted one if it belongs to `osname`, else the first of `osname`.
    pub fn merge_deployment(&self, osname: &str) -> Result<ostree::Deployment> {
        self.inner
            .merge_deployment(Some(osname))
            .ok_or_else(|| anyhow!("No deployment of stateroot {osname:?} to start from"))
    }

    /// Absolute path of a deployment's root directory.
    pub fn deployment_path(&self, d: &ostree::Deployment) -> PathBuf {
        self.path.join(self.inner.deployment_dirpath(d).as_str())
    }

    /// The origin file of a deployment, as text, parsed.
    pub fn origin(&self, d: &ostree::Deployment) -> Result<Origin> {
        let text = self.origin_text(d)?;
        Origin::parse(&text).with_context(|| {
            format!(
                "Parsing origin file {} of deployment {}",
                self.origin_path(d).display(),
                deployment_id(d)
            )
        })
    }

    /// Path of a deployment's origin file.
    pub fn origin_path(&self, d: &ostree::Deployment) -> PathBuf {
        let dir = gio::File::for_path(self.deployment_path(d));
        ostree::Sysroot::deployment_origin_path(&dir)
            .path()
            .unwrap_or_default()
    }

    /// The origin file text; libostree's in-memory copy when the file is absent (staged).
    pub fn origin_text(&self, d: &ostree::Deployment) -> Result<String> {
        let p = self.origin_path(d);
        match fs_err::read_to_string(&p) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match d.origin() {
                Some(kf) => Ok(kf.to_data().to_string()),
                None => Err(anyhow!(
                    "Deployment {} has no origin file ({})",
                    deployment_id(d),
                    p.display()
                )),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The kernel arguments of a deployment (its BLS `options`).
    pub fn deployment_kargs(&self, d: &ostree::Deployment) -> String {
        d.bootconfig()
            .and_then(|b| b.get("options"))
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// Whether a staged deployment is locked against finalization.
    pub fn finalization_locked(&self) -> bool {
        self.is_booted() && Path::new(STAGED_LOCKED_PATH).exists()
    }
}

/// libostree reports some things with `g_print` (e.g. "Freed objects: 1.2 kB" after pruning),
/// which would land on the stdout of whatever process embeds the engine. Send it to the log
/// instead. Process-wide and idempotent.
fn route_glib_output() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        glib::set_print_handler(|msg| tracing::info!(target: "libostree", "{}", msg.trim_end()));
        glib::set_printerr_handler(|msg| tracing::warn!(target: "libostree", "{}", msg.trim_end()));
    });
}

/// Another reference to the same deployment object.
///
/// Not `d.clone()`: the ostree crate's inherent `Deployment::clone` is
/// `ostree_deployment_clone`, a *copy*, and libostree recognises the booted deployment in a
/// list passed to `write_deployments` by identity — a list of copies reads as "removing the
/// booted deployment".
pub(crate) fn new_ref(d: &ostree::Deployment) -> ostree::Deployment {
    Clone::clone(d)
}

/// rpm-ostree's deployment id: `<osname>-<checksum>.<serial>`.
pub fn deployment_id(d: &ostree::Deployment) -> String {
    format!("{}-{}.{}", d.osname(), d.csum(), d.deployserial())
}
