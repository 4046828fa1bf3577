//! Building the status model ([`strata_api::status`]) from a sysroot.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use fn_error_context::context;
use serde_json::{Map, Value};
pub use strata_api::status::*;

use crate::commit;
use crate::origin::{BaseSource, Origin, RefspecKind};
use crate::sysroot::{deployment_id, Sysroot, STAGED_LOCKED_PATH};
use crate::variant;

/// Build the status of every deployment, in boot order.
#[context("Reading the status of {}", sysroot.path().display())]
pub fn load(sysroot: &Sysroot) -> Result<StatusReport> {
    let repo = sysroot.repo();
    let booted = sysroot.booted_deployment();
    let locked = sysroot.is_booted() && Path::new(STAGED_LOCKED_PATH).exists();
    let mut deployments = Vec::new();
    for d in sysroot.deployments() {
        let is_booted = booted.as_ref().is_some_and(|b| b.equal(&d));
        deployments.push(deployment_status(sysroot, &repo, &d, is_booted, locked)?);
    }
    Ok(StatusReport {
        deployments,
        ..Default::default()
    })
}

fn deployment_status(
    sysroot: &Sysroot,
    repo: &ostree::Repo,
    d: &ostree::Deployment,
    booted: bool,
    staged_locked: bool,
) -> Result<DeploymentStatus> {
    let checksum = d.csum().to_string();
    let staged = d.is_staged();
    let info = match commit::load(repo, &checksum) {
        Ok(info) => info,
        // A damaged deployment (its commit object gone) still shows up, with what is wrong:
        // status is how an administrator finds it, and cleanup or rollback repair it.
        Err(e) => {
            tracing::warn!("Deployment {}: {e:#}", deployment_id(d));
            return Ok(DeploymentStatus {
                id: deployment_id(d),
                osname: d.osname().to_string(),
                serial: d.deployserial(),
                checksum,
                booted,
                staged,
                pinned: d.is_pinned(),
                unlocked: ostree::Deployment::unlocked_state_to_string(d.unlocked()).to_string(),
                load_error: Some(format!("{e:#}")),
                ..Default::default()
            });
        }
    };
    let mut s = DeploymentStatus {
        id: deployment_id(d),
        osname: d.osname().to_string(),
        serial: d.deployserial(),
        checksum: checksum.clone(),
        booted,
        staged,
        finalization_locked: (staged && staged_locked).then_some(true),
        pinned: d.is_pinned(),
        unlocked: ostree::Deployment::unlocked_state_to_string(d.unlocked()).to_string(),
        version: info.version.clone(),
        timestamp: info.timestamp,
        endoflife: info.meta_string("ostree.endoflife"),
        base_commit_meta: filtered_meta(&info.metadata),
        ..Default::default()
    };
    // A layered deployment: its commit's parent is the base; version and metadata of both.
    let mut base_checksum = checksum.clone();
    if let (Some(true), Some(parent)) = (info.meta_bool("rpmostree.clientlayer"), &info.parent) {
        s.layered_commit_meta = Some(filtered_meta(&info.metadata));
        s.packages = string_list(&info.metadata, "rpmostree.packages");
        s.base_checksum = Some(parent.clone());
        base_checksum = parent.clone();
        if let Ok(Some(base)) = commit::load_optional(repo, parent) {
            s.base_version = base.version.clone();
            s.base_timestamp = Some(base.timestamp);
            s.base_commit_meta = filtered_meta(&base.metadata);
        }
    }

    // A deployment whose origin cannot be parsed still shows up, without origin fields: status
    // is how an administrator finds out what is on the machine.
    let origin = match sysroot.origin(d) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("{e:#}");
            return Ok(s);
        }
    };
    fill_from_origin(&mut s, &origin);
    // An image's digest names it (its merge commit differs per import): ostree-ext records it
    // in the base commit's metadata.
    if s.container_image_reference.is_some() {
        if let Some(Value::String(digest)) = s.base_commit_meta.get("ostree.manifest-digest") {
            s.extra.insert(
                "container-image-reference-digest".into(),
                Value::String(digest.clone()),
            );
        }
    }

    if let Some(r) = origin.refspec() {
        if r.kind() == RefspecKind::Ostree {
            if let Some(remote) = r.remote() {
                match repo.remote_get_gpg_verify(remote) {
                    Ok(enabled) => {
                        s.gpg_enabled = Some(enabled);
                        if enabled {
                            s.signatures = signatures(repo, &base_checksum, remote);
                        }
                    }
                    Err(e) => s.remote_error = Some(e.to_string()),
                }
            }
            if origin.override_commit().is_none() {
                if let Ok(Some(pending)) = commit::resolve(repo, &r.to_string()) {
                    if pending != base_checksum {
                        if let Ok(Some(p)) = commit::load_optional(repo, &pending) {
                            s.pending_base_version = p.version.clone();
                            s.pending_base_timestamp = Some(p.timestamp);
                        }
                        s.pending_base_checksum = Some(pending);
                    }
                }
            }
        }
    }
    Ok(s)
}

/// An `as` value of a commit's metadata; empty when absent or of another type.
fn string_list(metadata: &ostree::glib::Variant, key: &str) -> Vec<String> {
    ostree::glib::VariantDict::new(Some(metadata))
        .lookup::<Vec<String>>(key)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn fill_from_origin(s: &mut DeploymentStatus, origin: &Origin) {
    match origin.base() {
        BaseSource::Refspec(r) | BaseSource::BaseRefspec(r) => s.origin = Some(r.to_string()),
        BaseSource::ContainerImage(c) => s.container_image_reference = Some(c.clone()),
    }
    s.custom_origin = origin.custom_origin();
    s.requested_packages = origin.requested_packages();
    s.requested_local_packages = origin
        .requested_local_packages()
        .into_iter()
        .map(|p| p.nevra)
        .collect();
    s.requested_local_fileoverride_packages = origin
        .requested_local_fileoverride_packages()
        .into_iter()
        .map(|p| p.nevra)
        .collect();
    s.requested_base_removals = origin.override_remove();
    s.requested_base_local_replacements = origin
        .override_replace_local()
        .into_iter()
        .map(|p| p.nevra)
        .collect();
    let remote = origin.override_replace();
    if !remote.is_empty() {
        s.requested_base_remote_replacements = Some(
            remote
                .into_iter()
                .map(|r| (format!("repo={}", r.repo), r.packages))
                .collect(),
        );
    }
    s.regenerate_initramfs = origin.regenerate_initramfs();
    if origin.has_initramfs_block() {
        s.initramfs_args = Some(origin.initramfs_args());
        s.initramfs_etc = Some(origin.initramfs_etc());
    }
    if origin.cliwrap() {
        s.cliwrap = Some(true);
    }
}

fn filtered_meta(meta: &ostree::glib::Variant) -> Map<String, Value> {
    let bulky: BTreeSet<&str> = BULKY_METADATA_KEYS.iter().copied().collect();
    variant::dict_to_map(meta)
        .into_iter()
        .filter(|(k, _)| !bulky.contains(k.as_str()))
        .collect()
}

/// GPG signatures of a commit as verified against the remote's keyring; `None` when the
/// verification could not run (e.g. the commit carries no signature).
fn signatures(repo: &ostree::Repo, checksum: &str, remote: &str) -> Option<Vec<Value>> {
    let result = repo
        .verify_commit_for_remote(checksum, remote, ostree::gio::Cancellable::NONE)
        .map_err(|e| tracing::debug!("GPG verification of {checksum} for {remote}: {e}"))
        .ok()?;
    Some(
        (0..result.count_all())
            .map(|i| variant::to_json(&result.all(i)))
            .collect(),
    )
}
