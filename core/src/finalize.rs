//! `finalize-deployment`: release the finalization lock of a staged deployment so that it is
//! finalized at the next shutdown (the caller reboots).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use crate::progress::OpContext;
use crate::stage::Outcome;
use crate::sysroot::{Sysroot, STAGED_LOCKED_PATH};

/// Options of [`finalize`].
#[derive(Debug, Clone, Default)]
pub struct FinalizeOptions {
    /// The checksum the caller expects the staged deployment to have.
    pub checksum: Option<String>,
    /// Proceed without `checksum`.
    pub allow_missing_checksum: bool,
    /// Proceed even if the staged deployment is not locked.
    pub allow_unlocked: bool,
}

/// Check the staged deployment against `opts` and remove the finalization lock.
#[context("Finalizing the staged deployment")]
pub fn finalize(sysroot: &Sysroot, opts: &FinalizeOptions, ctx: &OpContext) -> Result<Outcome> {
    ctx.check_cancelled()?;
    if !sysroot.is_booted() {
        return Err(anyhow!(
            "Cannot finalize a deployment in {}: it is not the booted sysroot; only a booted host has a staged deployment",
            sysroot.path().display()
        ));
    }
    let staged = sysroot
        .ostree()
        .staged_deployment()
        .ok_or_else(|| anyhow!("No staged deployment to finalize"))?;
    let csum = staged.csum().to_string();
    // What names the staged deployment, as rpm-ostree compares it: its base commit, or for an
    // image the manifest digest (Zincati passes the release's digest); the deployment's own
    // checksum (a layered commit) is taken too.
    let base = crate::commit::load(&sysroot.repo(), &csum)?;
    let digest = crate::commit::load(&sysroot.repo(), base.base_checksum())?.image_digest();
    let name = digest
        .clone()
        .unwrap_or_else(|| base.base_checksum().to_string());
    match &opts.checksum {
        None if !opts.allow_missing_checksum => {
            return Err(anyhow!(
                "Missing the expected checksum of the staged deployment ({name}); pass it, or allow a missing checksum"
            ))
        }
        Some(c) if *c != csum && *c != base.base_checksum() && Some(c) != digest.as_ref() => {
            return Err(anyhow!(
                "The staged deployment is {name}, not the expected {:?}",
                crate::origin::caller_text(c)
            ))
        }
        _ => {}
    }
    let lock = Path::new(STAGED_LOCKED_PATH);
    if !lock.exists() && !opts.allow_unlocked {
        return Err(anyhow!(
            "The staged deployment {csum} is not locked against finalization; allow an unlocked deployment to finalize it anyway"
        ));
    }
    match fs_err::remove_file(lock) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("Removing {STAGED_LOCKED_PATH}")),
    }
    ctx.message(format!(
        "Staged deployment {csum} will be finalized at shutdown"
    ));
    Ok(Outcome::Changed(format!(
        "unlocked staged deployment {csum}"
    )))
}
