//! `kargs`: read and edit the kernel arguments of a deployment.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use crate::kargs::{self, KargsEdit};
use crate::prepare::{Finish, Prepared};
use crate::progress::OpContext;
use crate::stage::Outcome;
use crate::sysroot::Sysroot;

/// Options of [`kargs`].
#[derive(Debug, Clone, Default)]
pub struct KargsOptions {
    pub osname: Option<String>,
    pub edit: KargsEdit,
    /// Start from this command line (rpm-ostree's `existing`: what the client showed the
    /// user, or `/proc/cmdline`) instead of a deployment's arguments.
    pub existing: Option<String>,
    /// Start from the arguments of the deployment at this index (boot order) instead of the
    /// merge deployment's.
    pub deploy_index: Option<usize>,
    pub lock_finalization: bool,
}

fn source_deployment(
    sysroot: &Sysroot,
    osname: &str,
    deploy_index: Option<usize>,
) -> Result<ostree::Deployment> {
    match deploy_index {
        None => sysroot.merge_deployment(osname),
        Some(i) => {
            let all = sysroot.deployments();
            all.get(i).cloned().ok_or_else(|| {
                anyhow!(
                    "Deployment index {i} is out of range: there are {} deployments (0 to {})",
                    all.len(),
                    all.len().saturating_sub(1)
                )
            })
        }
    }
}

/// The kernel arguments of the merge deployment, or of the one at `deploy_index`.
pub fn current_kargs(
    sysroot: &Sysroot,
    osname: Option<&str>,
    deploy_index: Option<usize>,
) -> Result<Vec<String>> {
    let osname = sysroot.resolve_osname(osname)?;
    let d = source_deployment(sysroot, &osname, deploy_index)?;
    let text = sysroot.deployment_kargs(&d);
    kargs::split(&text).with_context(|| format!("Parsing the kernel arguments {text:?}"))
}

/// Apply `opts.edit` and write a new deployment of the merge deployment's commit and origin
/// with the result. Nothing is written when the arguments would not change.
#[context("Changing kernel arguments")]
pub fn kargs(sysroot: &Sysroot, opts: &KargsOptions, ctx: &OpContext) -> Result<Outcome> {
    opts.edit.validate()?;
    let p = Prepared::new(sysroot, opts.osname.as_deref())?;
    let current = match &opts.existing {
        Some(text) => kargs::split(text)
            .with_context(|| format!("Parsing the existing kernel arguments {text:?}"))?,
        None => current_kargs(sysroot, Some(&p.osname), opts.deploy_index)?,
    };
    let new = opts.edit.apply(&current)?;
    let merge_kargs = kargs::split(&sysroot.deployment_kargs(&p.merge)).unwrap_or_default();
    if new == merge_kargs {
        ctx.message("Kernel arguments are unchanged");
        return Ok(Outcome::Unchanged);
    }
    let finish = Finish {
        allow_downgrade: true,
        download_only: false,
        lock_finalization: opts.lock_finalization,
        kargs: Some(new),
        cache_only: false,
        forbid_inactive: Vec::new(),
    };
    p.deploy(&p.current, &p.origin, &finish, ctx)
}

/// The BLS entry of a deployment (`title`, `linux`, `initrd`, `options`, `version`), as
/// rpm-ostree's `GetDeploymentBootConfig` returns it.
pub fn boot_config(d: &ostree::Deployment) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(b) = d.bootconfig() {
        for key in ["title", "linux", "initrd", "options", "version"] {
            if let Some(v) = b.get(key) {
                m.insert(key.to_string(), v.to_string());
            }
        }
    }
    m
}
