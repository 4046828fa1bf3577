//! Writing a new deployment: staged on a booted host, written directly otherwise.
//!
//! Shared by every operation that creates a deployment (upgrade, deploy, rebase, kargs). The
//! deployment list and bootloader entries only ever change through libostree's atomic swap, so
//! a failure here leaves the previous boot configuration in place.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;
use ostree::gio;

use crate::commit::{self, CommitInfo};
use crate::origin::Origin;
use crate::progress::OpContext;
use crate::sysroot::{deployment_id, Sysroot, STAGED_LOCKED_PATH};

/// The result of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do: the system is already at the requested state.
    Unchanged,
    /// Check only: a newer commit is available.
    UpdateAvailable {
        checksum: String,
        version: Option<String>,
    },
    /// Download only: the commit is in the repo, nothing was deployed.
    Downloaded {
        checksum: String,
        version: Option<String>,
    },
    /// A new deployment was written (or staged, on a booted host).
    Deployed {
        id: String,
        checksum: String,
        version: Option<String>,
        staged: bool,
    },
    /// The boot order changed (rollback) or deployments were removed (cleanup).
    Changed(String),
}

impl Outcome {
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Outcome::Unchanged)
    }
}

/// How a new deployment is written.
#[derive(Debug, Clone)]
pub(crate) struct NewDeployment<'a> {
    pub osname: &'a str,
    pub revision: &'a str,
    pub origin: &'a Origin,
    /// Kernel arguments; `None` inherits the merge deployment's.
    pub kargs: Option<Vec<String>>,
    /// Keep a staged deployment from being finalized at shutdown.
    pub lock_finalization: bool,
}

/// Refuse moving to an older commit unless allowed.
pub(crate) fn check_downgrade(
    current: &CommitInfo,
    target: &CommitInfo,
    allow_downgrade: bool,
) -> Result<()> {
    if !allow_downgrade && target.timestamp < current.timestamp {
        return Err(anyhow!(
            "Target commit {} (timestamp {}) is older than the current one {} (timestamp {}); refusing to downgrade. Pass --allow-downgrade to deploy it anyway",
            target.describe(),
            target.timestamp,
            current.describe(),
            current.timestamp
        ));
    }
    Ok(())
}

/// After a deployment was written: the container images and layers no deployment needs any
/// more go (an image-based deployment that fell off the list), with their objects, as
/// rpm-ostree prunes after each deployment. The deployment is written either way: a failure
/// here is only logged (`cleanup -b` retries).
fn prune_images(sysroot: &Sysroot, ctx: &OpContext) {
    let pruned = crate::image::prune_and_report(sysroot.ostree(), ctx).and_then(|any| {
        if any {
            sysroot.ostree().cleanup(gio::Cancellable::NONE)?;
        }
        Ok(())
    });
    if let Err(e) = pruned {
        tracing::warn!("Pruning container images: {e:#}");
    }
}

/// Write `new` with `merge` as merge deployment. On a booted sysroot the deployment is staged
/// (finalized at shutdown); otherwise it becomes the default at once, the merge deployment is
/// kept as rollback and older deployments of the stateroot are removed (pinned ones stay).
#[context("Deploying {}", commit::short(new.revision))]
pub(crate) fn write(
    sysroot: &Sysroot,
    merge: &ostree::Deployment,
    new: &NewDeployment<'_>,
    ctx: &OpContext,
) -> Result<Outcome> {
    ctx.check_cancelled()?;
    // Before libostree writes the deployment (and prunes the repo): the base of every layered
    // deployment, the new one's included, stays referenced.
    crate::cleanup::regenerate_layering_refs(sysroot, Some(new.revision), false)?;
    let os = sysroot.ostree();
    let keyfile = new.origin.to_keyfile();
    let kargs_refs: Option<Vec<&str>> = new
        .kargs
        .as_ref()
        .map(|k| k.iter().map(String::as_str).collect());
    let opts = ostree::SysrootDeployTreeOpts {
        override_kernel_argv: kargs_refs.as_deref(),
        overlay_initrds: None,
    };
    let staged = sysroot.is_booted();
    let deployment = if staged {
        if new.lock_finalization {
            write_finalization_lock()?;
        } else {
            remove_finalization_lock()?;
        }
        ctx.task("Staging deployment", || {
            Ok(os.stage_tree_with_options(
                Some(new.osname),
                new.revision,
                Some(&keyfile),
                Some(merge),
                &opts,
                Some(ctx.cancellable()),
            )?)
        })?
    } else {
        if new.lock_finalization {
            return Err(anyhow!(
                "--lock-finalization needs a booted system: {} is not the booted sysroot, so new deployments are written directly and there is nothing to finalize",
                sysroot.path().display()
            ));
        }
        let d = ctx.task("Writing deployment", || {
            Ok(os.deploy_tree_with_options(
                Some(new.osname),
                new.revision,
                Some(&keyfile),
                Some(merge),
                Some(&opts),
                Some(ctx.cancellable()),
            )?)
        })?;
        // After this point the swap is atomic and not interruptible.
        let swapped = ctx.check_cancelled().and_then(|()| {
            ctx.task("Writing bootloader entries", || {
                Ok(os.simple_write_deployment(
                    Some(new.osname),
                    &d,
                    Some(merge),
                    ostree::SysrootSimpleWriteDeploymentFlags::NONE,
                    gio::Cancellable::NONE,
                )?)
            })
        });
        if let Err(e) = swapped {
            // The checkout (and a kernel half-copied into /boot) would stay until the next
            // successful deploy: nothing refers to them, so libostree's cleanup (without its
            // repo prune) takes them away now. The deployments and boot entries are unchanged.
            if let Err(c) = os.prepare_cleanup(gio::Cancellable::NONE) {
                tracing::warn!("Removing the unfinished deployment: {c}");
            }
            return Err(e);
        }
        d
    };
    let info = commit::load(&sysroot.repo(), new.revision)?;
    let id = deployment_id(&deployment);
    ctx.message(if staged {
        format!("Staged deployment {id}")
    } else {
        format!("Created deployment {id}")
    });
    sysroot.reload()?;
    prune_images(sysroot, ctx);
    Ok(Outcome::Deployed {
        id,
        checksum: new.revision.to_string(),
        version: info.version,
        staged,
    })
}

fn write_finalization_lock() -> Result<()> {
    let p = Path::new(STAGED_LOCKED_PATH);
    if let Some(dir) = p.parent() {
        fs_err::create_dir_all(dir)?;
    }
    Ok(fs_err::write(p, b"")?)
}

fn remove_finalization_lock() -> Result<()> {
    match fs_err::remove_file(STAGED_LOCKED_PATH) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Removing {STAGED_LOCKED_PATH}")),
    }
}
