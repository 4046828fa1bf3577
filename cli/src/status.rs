//! `status`: the deployments and the daemon's state, as text like rpm-ostree prints it, as
//! JSON (`--json`), or filtered by a JSONPath expression (`--jsonpath`). Reads properties only,
//! so it works unprivileged.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::{json, Value as Json};
use std::collections::HashMap;

use strata_api::names;
use strata_api::status::{DeploymentStatus, UpdateDriver};
use strata_api::wire::{self, DeploymentDict};
use zbus::zvariant::OwnedObjectPath;

use crate::args::StatusArgs;
use crate::client::{Client, Properties};

/// Everything `status` shows, as read from the daemon.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusInput {
    /// The deployments (the `Deployments` dictionaries, typed), in boot order.
    pub deployments: Vec<DeploymentStatus>,
    /// `ActiveTransaction` (method, sender, object path), `None` when idle.
    pub transaction: Option<(String, String, String)>,
    /// The running transaction's title, when we could read it.
    pub transaction_title: Option<String>,
    /// `AutomaticUpdatePolicy`.
    pub policy: String,
    /// The OS object's `CachedUpdate`, `None` when empty.
    pub cached_update: Option<Json>,
    /// The registered update driver, if known.
    pub update_driver: Option<UpdateDriver>,
    /// Why the daemon could not read the sysroot the last time it tried: the deployments
    /// shown are then the last ones it read.
    pub reload_error: Option<String>,
    /// The package changes from the booted deployment to the pending one (`Diff:`).
    pub pending_diff: Option<String>,
    /// The driver's unit as systemd reports it: `ActiveState`, with `StatusText` for a
    /// service that has one (`active; idle`). `None` when systemd does not answer.
    pub driver_state: Option<String>,
}

/// Read the daemon's state: one `GetManagedObjects` call hands over every object's properties
/// (as Cockpit reads them). stratad checks that its view of the sysroot is fresh on every
/// property read, so no `Reload` is needed first.
pub(crate) async fn gather(client: &Client, stateroot: Option<&str>) -> Result<StatusInput> {
    let objects = client.managed_objects().await?;
    let sysroot = Properties::of(&objects, names::SYSROOT_PATH, names::SYSROOT_INTERFACE)
        .context("The daemon serves no Sysroot object")?;
    let deployments: Vec<DeploymentDict> = sysroot.require("Deployments")?;
    let deployments = deployments
        .iter()
        .map(wire::dict_to_deployment)
        .collect::<Result<Vec<_>, _>>()
        .context("Reading the daemon's Deployments property")?;
    let transaction = sysroot
        .get::<(String, String, String)>("ActiveTransaction")
        .filter(|(m, _, _)| !m.is_empty());
    let transaction_title = if transaction.is_some() {
        client.active_transaction_title().await
    } else {
        None
    };
    let policy = sysroot
        .get::<String>("AutomaticUpdatePolicy")
        .unwrap_or_else(|| "none".into());
    // The OS object GetOS would name: the stateroot asked for, else the booted one, else the
    // default deployment's.
    let os_path = match stateroot {
        Some(name) => Some(names::os_object_path(name)),
        None => match sysroot.get::<OwnedObjectPath>("Booted") {
            Some(p) if p.as_str() != "/" => Some(p.to_string()),
            _ => deployments
                .first()
                .map(|d| names::os_object_path(&d.osname)),
        },
    };
    let cached_update = os_path
        .and_then(|p| Properties::of(&objects, &p, names::OS_INTERFACE))
        .and_then(|os| os.get::<DeploymentDict>("CachedUpdate"))
        .filter(|d| !d.is_empty())
        .map(|d| wire::dict_to_json(&d));
    // Strata's own interface; absent from rpm-ostree.
    let ext = Properties::of(&objects, names::SYSROOT_PATH, names::STRATA_EXT_INTERFACE);
    let update_driver = ext
        .and_then(|e| e.get::<HashMap<String, String>>("UpdateDriver"))
        .and_then(|d| {
            let name = d.get(names::DRIVER_NAME).filter(|n| !n.is_empty())?;
            Some(UpdateDriver {
                driver_name: name.clone(),
                driver_sd_unit: d.get(names::DRIVER_SD_UNIT).cloned().unwrap_or_default(),
            })
        });
    let reload_error = ext
        .and_then(|e| e.get::<String>("LastReloadError"))
        .filter(|e| !e.is_empty());
    let driver_state = match update_driver.as_ref().map(|d| d.driver_sd_unit.as_str()) {
        Some(unit) if !unit.is_empty() => unit_state(&client.conn, unit).await,
        _ => None,
    };
    Ok(StatusInput {
        deployments,
        transaction,
        transaction_title,
        policy,
        cached_update,
        update_driver,
        reload_error,
        pending_diff: None,
        driver_state,
    })
}

/// rpm-ostree's `DriverState:` text of a systemd unit: `ActiveState`, then `; StatusText` for
/// a service that has one. `None` when systemd is not on this bus or does not know the unit.
async fn unit_state(conn: &zbus::Connection, unit: &str) -> Option<String> {
    const SYSTEMD: &str = "org.freedesktop.systemd1";
    let manager: zbus::Proxy<'_> = zbus::proxy::Builder::new(conn)
        .destination(SYSTEMD)
        .ok()?
        .path("/org/freedesktop/systemd1")
        .ok()?
        .interface("org.freedesktop.systemd1.Manager")
        .ok()?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()?;
    let path: OwnedObjectPath = manager.call("GetUnit", &(unit,)).await.ok()?;
    let property = |iface: &'static str| {
        let path = path.clone();
        async move {
            zbus::proxy::Builder::<zbus::Proxy<'_>>::new(conn)
                .destination(SYSTEMD)
                .ok()?
                .path(path)
                .ok()?
                .interface(iface)
                .ok()?
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await
                .ok()
        }
    };
    let state: String = property("org.freedesktop.systemd1.Unit")
        .await?
        .get_property("ActiveState")
        .await
        .ok()?;
    let text: Option<String> = if unit.ends_with(".service") {
        match property("org.freedesktop.systemd1.Service").await {
            Some(p) => p.get_property::<String>("StatusText").await.ok(),
            None => None,
        }
    } else {
        None
    };
    Some(match text.filter(|t| !t.is_empty()) {
        Some(t) => format!("{state}; {t}"),
        None => state,
    })
}

/// The first deployment when it is pending: not booted, of the booted stateroot (rpm-ostree's
/// rule for the `Diff:` line), with the booted one.
fn pending_pair(input: &StatusInput) -> Option<(&DeploymentStatus, &DeploymentStatus)> {
    let first = input.deployments.first().filter(|d| !d.booted)?;
    let booted = input.deployments.iter().find(|d| d.booted)?;
    (first.osname == booted.osname).then_some((booted, first))
}

/// `status`: print and pick the exit code.
pub(crate) async fn run(
    client: &Client,
    args: &StatusArgs,
    stateroot: Option<&str>,
) -> Result<i32> {
    let mut input = gather(client, stateroot).await?;
    if !args.json && args.jsonpath.is_none() {
        if let Some((booted, pending)) = pending_pair(&input) {
            // A missing diff leaves the line out; status itself still works.
            input.pending_diff = crate::db::diff_summary(&booted.checksum, &pending.checksum)
                .unwrap_or_else(|e| {
                    debug_note(&e);
                    None
                });
        }
    }
    let out = render(&input, args)?;
    print!("{out}");
    Ok(exit_code(&input, args))
}

/// The whole output for the given flags.
pub(crate) fn render(input: &StatusInput, args: &StatusArgs) -> Result<String> {
    if let Some(expr) = &args.jsonpath {
        let j = apply_jsonpath(&to_json(input, args.booted), expr)?;
        return Ok(format!("{}\n", serde_json::to_string_pretty(&j)?));
    }
    if args.json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&to_json(input, args.booted))?
        ));
    }
    Ok(render_text(input, args.verbose, args.booted))
}

/// 77 with `--pending-exit-77` when there are several deployments and the first one is not
/// the booted one (rpm-ostree's rule: a lone deployment is never pending, and on a sysroot
/// that is not booted, any new deployment is).
pub(crate) fn exit_code(input: &StatusInput, args: &StatusArgs) -> i32 {
    let pending =
        input.deployments.len() > 1 && input.deployments.first().is_some_and(|d| !d.booted);
    if args.pending_exit_77 && pending {
        strata_api::names::EXIT_UNCHANGED
    } else {
        0
    }
}

/// rpm-ostree's `status --json`: always the four top-level keys.
pub(crate) fn to_json(input: &StatusInput, booted_only: bool) -> Json {
    let deployments: Vec<Json> = input
        .deployments
        .iter()
        .filter(|d| !booted_only || d.booted)
        .map(DeploymentStatus::to_sorted_json)
        .collect();
    json!({
        "deployments": deployments,
        "transaction": input.transaction.as_ref().map(|(m, s, p)| json!([m, s, p])),
        "cached-update": input.cached_update,
        "update-driver": input.update_driver,
    })
}

/// Apply a JSONPath expression (RFC 9535); the result is the array of matched nodes, as
/// rpm-ostree prints it.
pub(crate) fn apply_jsonpath(j: &Json, expr: &str) -> Result<Json> {
    let path = serde_json_path::JsonPath::parse(expr)
        .with_context(|| format!("Invalid JSONPath expression {expr:?}"))?;
    Ok(Json::Array(
        path.query(j).all().into_iter().cloned().collect(),
    ))
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn iso8601(ts: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ts);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Width of the right-aligned key column (rpm-ostree's).
const KEY_WIDTH: usize = 23;

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  {key:>KEY_WIDTH$}: {value}");
}

/// Continuation line aligned under the value column.
fn cont(out: &mut String, value: &str) {
    let _ = writeln!(out, "{:width$}{value}", "", width = KEY_WIDTH + 4);
}

/// A non-empty string field.
fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Package lists: plain names, or NEVRA tuples `[nevra, name, epoch, version, release, arch]`.
fn package_names(values: &[Json]) -> Vec<String> {
    values
        .iter()
        .map(|v| match v {
            Json::String(s) => s.clone(),
            Json::Array(t) => t
                .first()
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// One signature tuple (libostree's `ostree_gpg_verify_result_get_all` layout: valid at 0,
/// fingerprint at 5) → "Valid signature by FPR".
fn signature_line(sig: &Json) -> String {
    let fields = sig.as_array().cloned().unwrap_or_default();
    let valid = fields.first().and_then(Json::as_bool).unwrap_or(false);
    let fpr = fields
        .get(5)
        .and_then(Json::as_str)
        .or_else(|| fields.iter().find_map(Json::as_str))
        .unwrap_or("(unknown key)");
    if valid {
        format!("Valid signature by {fpr}")
    } else {
        format!("Invalid signature by {fpr}")
    }
}

/// Text status, in rpm-ostree's layout.
pub(crate) fn render_text(input: &StatusInput, verbose: bool, booted_only: bool) -> String {
    let mut out = String::new();
    match &input.transaction {
        None => out.push_str("State: idle\n"),
        Some((method, _sender, path)) => {
            out.push_str("State: busy\n");
            let title = input.transaction_title.as_deref().unwrap_or(method);
            if verbose {
                let _ = writeln!(out, "Transaction: {title} ({path})");
            } else {
                let _ = writeln!(out, "Transaction: {title}");
            }
        }
    }
    // As rpm-ostree: a registered driver replaces the policy line, which for "none" only
    // --verbose shows.
    let driver = input
        .update_driver
        .as_ref()
        .filter(|d| !d.driver_name.is_empty());
    if let Some(driver) = driver {
        // Written by whichever agent registered: escaped and bounded before it is printed.
        let name = strata_api::text::printable(&driver.driver_name, 128);
        if verbose && !driver.driver_sd_unit.is_empty() {
            let unit = strata_api::text::printable(&driver.driver_sd_unit, 256);
            let _ = writeln!(out, "AutomaticUpdatesDriver: {name} ({unit})");
        } else {
            let _ = writeln!(out, "AutomaticUpdatesDriver: {name}");
        }
        if let Some(state) = &input.driver_state {
            let _ = writeln!(
                out,
                "  DriverState: {}",
                strata_api::text::printable(state, 256)
            );
        }
    } else {
        match input.policy.as_str() {
            "" | "none" | "off" => {
                if verbose {
                    out.push_str("AutomaticUpdates: disabled\n");
                }
            }
            p => {
                let _ = writeln!(out, "AutomaticUpdates: {p}");
            }
        }
    }
    if let Some(err) = &input.reload_error {
        let _ = writeln!(
            out,
            "Warning: stratad could not read the sysroot: {}\n  The deployments below are \
             the last ones it read.",
            strata_api::text::printable(err, 2000)
        );
    }
    out.push_str("Deployments:\n");
    let mut first = true;
    for d in &input.deployments {
        if booted_only && !d.booted {
            continue;
        }
        if !first {
            out.push('\n');
        }
        first = false;
        // Deployments of one commit (e.g. after `kargs`) would look alike: show their serials.
        let twin = input
            .deployments
            .iter()
            .filter(|o| o.checksum == d.checksum && o.osname == d.osname)
            .count()
            > 1;
        let diff = pending_pair(input)
            .filter(|(_, p)| std::ptr::eq(*p, d))
            .and(input.pending_diff.as_deref());
        render_deployment(&mut out, d, verbose || twin, diff);
    }
    // As rpm-ostree: with automatic updates on, what the last check found follows, unless it
    // is the pending deployment (whose Diff: line says it).
    let automatic = !matches!(input.policy.as_str(), "" | "none" | "off");
    if let Some(u) = input.cached_update.as_ref().filter(|_| automatic) {
        let staged = u
            .get("deployment")
            .and_then(Json::as_str)
            .is_some_and(|id| input.deployments.iter().any(|d| d.id == id));
        if !staged {
            out.push('\n');
            out.push_str(&crate::upgrade::render_cached_update(u, verbose));
        }
    }
    out
}

/// The `Diff:` line could not be computed: said only when `STRATA_DEBUG` is set, as the line
/// is a convenience.
fn debug_note(e: &anyhow::Error) {
    if std::env::var_os("STRATA_DEBUG").is_some() {
        eprintln!("debug: package diff of the pending deployment: {e:#}");
    }
}

fn render_deployment(out: &mut String, d: &DeploymentStatus, verbose: bool, diff: Option<&str>) {
    let marker = if d.booted { "●" } else { " " };
    let origin = text(&d.container_image_reference)
        .or(text(&d.origin))
        .unwrap_or("<unknown origin>");
    let _ = writeln!(out, "{marker} {origin}");
    if let Some(err) = text(&d.load_error) {
        kv(out, "Error", err);
        kv(out, "Commit", &d.checksum);
        return;
    }
    if let Some(digest) = d
        .extra
        .get("container-image-reference-digest")
        .and_then(Json::as_str)
    {
        kv(out, "Digest", digest);
    }

    let timestamp = (d.timestamp != 0).then_some(d.timestamp);
    let (version, timestamp) = match text(&d.base_checksum) {
        Some(_) => (
            text(&d.base_version).or(text(&d.version)),
            d.base_timestamp.or(timestamp),
        ),
        None => (text(&d.version), timestamp),
    };
    match (version, timestamp) {
        (Some(v), Some(t)) => kv(out, "Version", &format!("{v} ({})", iso8601(t))),
        (Some(v), None) => kv(out, "Version", v),
        (None, Some(t)) => kv(out, "Timestamp", &iso8601(t)),
        (None, None) => {}
    }
    let checksum = Some(d.checksum.as_str()).filter(|c| !c.is_empty());
    if let Some(base) = text(&d.base_checksum) {
        kv(out, "BaseCommit", base);
        if let (true, Some(c)) = (verbose, checksum) {
            kv(out, "Commit", c);
        }
    } else if let Some(c) = checksum {
        kv(out, "Commit", c);
    }
    if let Some(pending) = text(&d.pending_base_checksum) {
        let v = text(&d.pending_base_version)
            .map(|v| format!("{v} ({pending})"))
            .unwrap_or_else(|| pending.to_string());
        kv(out, "PendingBase", &v);
    }

    match d.signatures.as_deref() {
        Some(sigs) if !sigs.is_empty() => {
            for (i, s) in sigs.iter().enumerate() {
                if i == 0 {
                    kv(out, "GPGSignature", &signature_line(s));
                } else {
                    cont(out, &signature_line(s));
                }
            }
        }
        _ if d.gpg_enabled == Some(true) => kv(out, "GPGSignature", "(unsigned)"),
        _ => {}
    }
    if let Some(err) = text(&d.remote_error) {
        kv(out, "RemoteError", err);
    }
    if let Some(eol) = text(&d.endoflife) {
        kv(out, "EndOfLife", eol);
    }
    if verbose && !d.osname.is_empty() {
        kv(out, "StateRoot", &d.osname);
        kv(out, "Serial", &d.serial.to_string());
    }
    if let Some(diff) = diff {
        kv(out, "Diff", diff);
    }
    let removed = package_names(&d.base_removals);
    if !removed.is_empty() {
        kv(out, "RemovedBasePackages", &removed.join(" "));
    }
    // Requests the base already satisfies (rpm-ostree shows them with --verbose only).
    let inactive: Vec<&str> = d
        .requested_packages
        .iter()
        .filter(|r| !d.packages.contains(r))
        .map(String::as_str)
        .collect();
    if verbose && !inactive.is_empty() {
        kv(out, "InactiveRequests", &inactive.join(" "));
    }
    if !d.packages.is_empty() {
        kv(out, "LayeredPackages", &d.packages.join(" "));
    }
    if !d.requested_local_packages.is_empty() {
        kv(out, "LocalPackages", &d.requested_local_packages.join(" "));
    }
    if d.pinned {
        kv(out, "Pinned", "yes");
    }
    if d.staged {
        kv(out, "Staged", "yes");
        if d.finalization_locked == Some(true) {
            kv(out, "FinalizationLocked", "yes");
        }
    }
    if !d.unlocked.is_empty() && d.unlocked != "none" {
        kv(out, "Unlocked", &d.unlocked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deployment from its status JSON (missing keys take their defaults).
    fn dep(j: Json) -> DeploymentStatus {
        serde_json::from_value(j).unwrap()
    }

    const CSUM_A: &str = "724ce262d4a27f6b7cb1508e8737e2244d69bb78509d2749cebd7972042bf814";
    const CSUM_B: &str = "bc49c681f6c1f931db8547f7d18ee3b9fef5dc044ff475b0076d58a655479f90";
    const FPR: &str = "115DF9AEF857853EE8445D0A0727707EA15B79CC";

    fn fixture() -> StatusInput {
        let staged = json!({
            "id": format!("fedora-coreos-{CSUM_B}.1"),
            "osname": "fedora-coreos",
            "serial": 1,
            "checksum": CSUM_B,
            "booted": false,
            "staged": true,
            "finalization-locked": true,
            "pinned": false,
            "unlocked": "none",
            "version": "40.20240616.3.0",
            "timestamp": 1718560000u64,
            "origin": "fedora:fedora/x86_64/coreos/stable",
            "base-commit-meta": {},
            "packages": [],
            "requested-packages": [],
            "base-removals": [],
        });
        let booted = json!({
            "id": format!("fedora-coreos-{CSUM_A}.0"),
            "osname": "fedora-coreos",
            "serial": 0,
            "checksum": CSUM_A,
            "booted": true,
            "staged": false,
            "pinned": true,
            "unlocked": "none",
            "version": "40.20240519.3.0",
            "timestamp": 1717543275u64,
            "origin": "fedora:fedora/x86_64/coreos/stable",
            "gpg-enabled": true,
            "signatures": [[true, false, false, false, false, FPR, 1717543275i64]],
            "base-commit-meta": {"version": "40.20240519.3.0"},
            "packages": [],
            "requested-packages": [],
            "base-removals": [],
        });
        StatusInput {
            deployments: vec![dep(staged), dep(booted)],
            policy: "none".into(),
            ..Default::default()
        }
    }

    #[test]
    fn pending_diff_and_inactive_requests() {
        let mut input = fixture();
        input.pending_diff = Some("1 upgraded, 3 added".into());
        input.deployments[0].requested_packages = vec!["htop".into(), "vim".into()];
        input.deployments[0].packages = vec!["htop".into()];
        let out = render_text(&input, false, false);
        let staged_block = out.split("\n\n").next().unwrap();
        assert!(
            staged_block.contains(" Diff: 1 upgraded, 3 added\n"),
            "{out}"
        );
        assert_eq!(
            out.matches("Diff:").count(),
            1,
            "only the pending deployment: {out}"
        );
        assert!(!out.contains("InactiveRequests"), "{out}");
        let out = render_text(&input, true, false);
        assert!(out.contains("InactiveRequests: vim\n"), "{out}");
        // No booted deployment: nothing is pending.
        input.deployments[1].booted = false;
        assert!(pending_pair(&input).is_none());
    }

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1717543275), "2024-06-04T23:21:15Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn text_like_rpm_ostree() {
        let out = render_text(&fixture(), false, false);
        let expected = format!(
            "State: idle
Deployments:
  fedora:fedora/x86_64/coreos/stable
                  Version: 40.20240616.3.0 (2024-06-16T17:46:40Z)
                   Commit: {CSUM_B}
                   Staged: yes
       FinalizationLocked: yes

● fedora:fedora/x86_64/coreos/stable
                  Version: 40.20240519.3.0 (2024-06-04T23:21:15Z)
                   Commit: {CSUM_A}
             GPGSignature: Valid signature by {FPR}
                   Pinned: yes
"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn booted_only_and_verbose() {
        let out = render_text(&fixture(), true, true);
        assert!(out.contains("● fedora:fedora/x86_64/coreos/stable\n"));
        assert!(!out.contains("Staged: yes"));
        assert!(
            out.contains("                StateRoot: fedora-coreos\n"),
            "{out}"
        );
    }

    #[test]
    fn busy_state_and_policy() {
        let mut input = fixture();
        input.transaction = Some(("Upgrade".into(), ":1.5".into(), "/org/x".into()));
        input.transaction_title = Some("upgrade (download only)".into());
        input.policy = "stage".into();
        let out = render_text(&input, false, false);
        assert!(out.starts_with(
            "State: busy\nTransaction: upgrade (download only)\nAutomaticUpdates: stage\nDeployments:\n"
        ));
        input.transaction_title = None;
        let out = render_text(&input, false, false);
        assert!(out.contains("Transaction: Upgrade\n"));
    }

    #[test]
    fn layered_and_container_deployments() {
        let d = json!({
            "booted": true,
            "checksum": CSUM_B,
            "base-checksum": CSUM_A,
            "base-version": "41.1",
            "base-timestamp": 0,
            "version": "41.1",
            "timestamp": 100,
            "container-image-reference": "ostree-image-signed:docker://quay.io/fedora/fedora-coreos:stable",
            "container-image-reference-digest": "sha256:abcd",
            "packages": ["htop", "vim-enhanced"],
            "base-removals": [["nano-7.2-4.fc39.x86_64", "nano", 0, "7.2", "4.fc39", "x86_64"]],
            "unlocked": "development",
            "endoflife": "Use the new stream",
        });
        let input = StatusInput {
            deployments: vec![dep(d)],
            ..Default::default()
        };
        let out = render_text(&input, false, false);
        assert!(
            out.contains("● ostree-image-signed:docker://quay.io/fedora/fedora-coreos:stable\n")
        );
        assert!(out.contains("                   Digest: sha256:abcd\n"));
        assert!(out.contains("                  Version: 41.1 (1970-01-01T00:00:00Z)\n"));
        assert!(out.contains(&format!("               BaseCommit: {CSUM_A}\n")));
        assert!(!out.contains("Commit: bc49"), "layered commit only with -v");
        assert!(out.contains("          LayeredPackages: htop vim-enhanced\n"));
        assert!(out.contains("      RemovedBasePackages: nano-7.2-4.fc39.x86_64\n"));
        assert!(out.contains("                 Unlocked: development\n"));
        assert!(out.contains("                EndOfLife: Use the new stream\n"));
        let out = render_text(&input, true, false);
        assert!(out.contains(&format!("                   Commit: {CSUM_B}\n")));
    }

    #[test]
    fn a_failed_reload_and_a_damaged_deployment_are_shown() {
        let mut input = fixture();
        input.reload_error = Some("Loading the sysroot: No such metadata object".into());
        input.deployments[1].load_error = Some("Loading commit 724ce262: gone".into());
        let out = render_text(&input, false, false);
        assert!(
            out.contains("Warning: stratad could not read the sysroot: Loading the sysroot"),
            "{out}"
        );
        assert!(
            out.contains("                    Error: Loading commit 724ce262: gone\n"),
            "{out}"
        );
    }

    #[test]
    fn a_driver_name_is_printed_escaped() {
        let input = StatusInput {
            update_driver: Some(UpdateDriver {
                driver_name: "Evil\u{1b}[2J\nForged: line".into(),
                driver_sd_unit: String::new(),
            }),
            ..Default::default()
        };
        let out = render_text(&input, false, false);
        assert!(
            out.contains("AutomaticUpdatesDriver: Evil\\u{1b}[2J\\nForged: line\n"),
            "{out}"
        );
    }

    /// With automatic updates on, the cached update follows the deployments.
    #[test]
    fn available_update_after_the_deployments() {
        let mut input = StatusInput {
            policy: "check".into(),
            cached_update: Some(json!({
                "checksum": "abc",
                "version": "2",
                "ref-has-new-commit": true,
                "rpm-diff": {"upgraded": [], "downgraded": [], "removed": [], "added": [[0, "x", "1-1", "noarch"]]},
            })),
            ..Default::default()
        };
        let out = render_text(&input, false, false);
        assert!(
            out.ends_with("Deployments:\n\nAvailableUpdate:\n        Version: 2\n         Commit: abc\n           Diff: 1 added\n"),
            "{out}"
        );
        input.policy = "none".into();
        assert!(!render_text(&input, false, false).contains("AvailableUpdate"));
    }

    /// rpm-ostree's driver lines: the unit with --verbose, systemd's view of it, in place of
    /// the policy line.
    #[test]
    fn the_driver_replaces_the_policy_line() {
        let input = StatusInput {
            policy: "check".into(),
            update_driver: Some(UpdateDriver {
                driver_name: "Zincati".into(),
                driver_sd_unit: "zincati.service".into(),
            }),
            driver_state: Some("active; periodically polling for updates".into()),
            ..Default::default()
        };
        assert!(render_text(&input, false, false).starts_with(
            "State: idle\nAutomaticUpdatesDriver: Zincati\n  DriverState: active; periodically polling for updates\nDeployments:\n"
        ));
        assert!(render_text(&input, true, false)
            .contains("AutomaticUpdatesDriver: Zincati (zincati.service)\n"));
        let input = StatusInput {
            update_driver: None,
            ..input
        };
        assert!(render_text(&input, false, false).contains("\nAutomaticUpdates: check\n"));
    }

    #[test]
    fn deployments_of_one_commit_show_their_serials() {
        let d = |serial: i32, booted: bool| {
            dep(json!({"osname": "os", "checksum": CSUM_A, "serial": serial, "booted": booted}))
        };
        let input = StatusInput {
            deployments: vec![d(1, false), d(0, true)],
            ..Default::default()
        };
        let out = render_text(&input, false, false);
        assert!(out.contains("                   Serial: 1\n"), "{out}");
        assert!(out.contains("                   Serial: 0\n"), "{out}");
        // A lone deployment of its commit does not need it.
        let out = render_text(&fixture(), false, false);
        assert!(!out.contains("Serial:"), "{out}");
    }

    #[test]
    fn unsigned_and_multiple_signatures() {
        let mut d = json!({"booted": false, "checksum": "c", "gpg-enabled": true});
        let input = StatusInput {
            deployments: vec![dep(d.clone())],
            ..Default::default()
        };
        assert!(render_text(&input, false, false).contains("GPGSignature: (unsigned)\n"));
        d["signatures"] = json!([
            [true, false, false, false, false, "AAAA"],
            [false, false, false, false, true, "BBBB"]
        ]);
        let input = StatusInput {
            deployments: vec![dep(d)],
            ..Default::default()
        };
        let out = render_text(&input, false, false);
        assert!(out.contains("GPGSignature: Valid signature by AAAA\n"));
        assert!(out.contains(&format!("{}Invalid signature by BBBB\n", " ".repeat(27))));
    }

    #[test]
    fn json_has_all_top_level_keys() {
        let j = to_json(&fixture(), false);
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "deployments",
                "transaction",
                "cached-update",
                "update-driver"
            ]
        );
        assert_eq!(j["transaction"], Json::Null);
        assert_eq!(j["cached-update"], Json::Null);
        assert_eq!(j["update-driver"], Json::Null);
        assert_eq!(j["deployments"].as_array().unwrap().len(), 2);
        assert_eq!(j["deployments"][1]["signatures"][0][5], json!(FPR));

        let mut input = fixture();
        input.transaction = Some(("Upgrade".into(), ":1.5".into(), "/org/x".into()));
        let j = to_json(&input, true);
        assert_eq!(j["transaction"], json!(["Upgrade", ":1.5", "/org/x"]));
        assert_eq!(j["deployments"].as_array().unwrap().len(), 1);
        assert_eq!(j["deployments"][0]["booted"], json!(true));
    }

    #[test]
    fn json_from_dbus_dictionaries_keeps_every_key() {
        let ds = strata_api::status::DeploymentStatus {
            id: "os-abc.0".into(),
            osname: "os".into(),
            checksum: "abc".into(),
            booted: true,
            unlocked: "none".into(),
            version: Some("1".into()),
            ..Default::default()
        };
        let dict = strata_api::wire::deployment_to_dict(&ds);
        let j = wire::dict_to_json(&dict);
        for key in [
            "id",
            "osname",
            "serial",
            "checksum",
            "booted",
            "staged",
            "pinned",
            "unlocked",
            "version",
            "timestamp",
            "base-commit-meta",
            "packages",
            "requested-packages",
            "requested-local-packages",
            "base-removals",
            "base-local-replacements",
            "regenerate-initramfs",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn jsonpath_returns_the_matches() {
        let j = to_json(&fixture(), false);
        assert_eq!(
            apply_jsonpath(&j, "$.deployments[*].booted").unwrap(),
            json!([false, true])
        );
        assert_eq!(
            apply_jsonpath(&j, "$.deployments[?@.booted == true].version").unwrap(),
            json!(["40.20240519.3.0"])
        );
        let e = apply_jsonpath(&j, "$.[").unwrap_err();
        assert!(format!("{e:#}").starts_with("Invalid JSONPath expression"));
    }

    #[test]
    fn render_picks_the_format() {
        let input = fixture();
        let args = StatusArgs {
            json: true,
            ..Default::default()
        };
        let out = render(&input, &args).unwrap();
        let parsed: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["deployments"][0]["staged"], json!(true));
        assert!(out.contains("\n  \"deployments\": ["), "pretty-printed");
        let args = StatusArgs {
            jsonpath: Some("$.deployments[0].checksum".into()),
            ..Default::default()
        };
        assert_eq!(
            render(&input, &args).unwrap(),
            format!("[\n  \"{CSUM_B}\"\n]\n")
        );
    }

    #[test]
    fn pending_exit_77() {
        let input = fixture();
        let mut args = StatusArgs::default();
        assert_eq!(exit_code(&input, &args), 0);
        args.pending_exit_77 = true;
        assert_eq!(exit_code(&input, &args), 77);
        let mut input = input;
        input.deployments.remove(0);
        assert_eq!(exit_code(&input, &args), 0);
    }
}
