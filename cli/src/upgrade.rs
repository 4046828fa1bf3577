//! `upgrade` (alias `update`): pull the origin's latest commit and deploy it; `--check` and
//! `--preview` only look for an update.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde_json::Value as Json;
use strata_api::names::EXIT_UNCHANGED;
use strata_api::options::DeployOptions;
use strata_api::wire;

use crate::args::UpgradeArgs;
use crate::client::Client;
use crate::errors::unsupported_flag;
use crate::flow::{self, flag, Ctx, Flow};
use crate::status::iso8601;

/// Flags we accept but cannot honour yet.
pub(crate) fn validate(a: &UpgradeArgs, program: &str) -> Result<()> {
    let combined = "an upgrade combined with package changes is not built yet; run `install` or `uninstall`, then `upgrade`";
    if !a.common.install.is_empty() {
        bail!(unsupported_flag(program, "upgrade", "--install", combined));
    }
    if !a.common.uninstall.is_empty() {
        bail!(unsupported_flag(
            program,
            "upgrade",
            "--uninstall",
            combined
        ));
    }
    if a.reboot && (a.check || a.preview || a.check_diff) {
        bail!("Cannot specify --reboot with --check or --preview");
    }
    Ok(())
}

/// The `Upgrade` options.
pub(crate) fn options(a: &UpgradeArgs, ctx: &Ctx) -> DeployOptions {
    DeployOptions {
        reboot: flag(a.reboot),
        allow_downgrade: flag(a.allow_downgrade),
        cache_only: flag(a.common.cache_only),
        download_only: flag(a.common.download_only),
        lock_finalization: flag(a.common.lock_finalization),
        bypass_driver: flag(a.common.bypass_driver),
        initiating_command_line: ctx.cmdline(),
        ..Default::default()
    }
}

/// The `AutomaticUpdateTrigger` options: `check` for --check/--preview, the daemon's policy
/// for the timer.
pub(crate) fn trigger_options(mode: &str, ctx: &Ctx) -> DeployOptions {
    DeployOptions {
        mode: Some(mode.to_string()),
        output_to_self: Some(false),
        initiating_command_line: ctx.cmdline(),
        ..Default::default()
    }
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &UpgradeArgs) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    if a.trigger_automatic_update_policy {
        let (enabled, address) = match os
            .automatic_update_trigger(&trigger_options("auto", ctx))
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(client.call_error(e).await),
        };
        if !enabled || address.is_empty() {
            if !ctx.quiet {
                println!("Automatic updates are not enabled; exiting...");
            }
            return Ok(0);
        }
        flow::run_txn(client, ctx.quiet, async { Ok(address) }).await?;
        return Ok(0);
    }
    // `--check-diff` is rpm-ostree's old name of `--preview`.
    let preview = a.preview || a.check_diff;
    if a.check || preview {
        let (_enabled, address) = match os
            .automatic_update_trigger(&trigger_options("check", ctx))
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(client.call_error(e).await),
        };
        if !address.is_empty() {
            flow::run_txn(client, ctx.quiet, async { Ok(address) }).await?;
        }
        client.sync().await;
        let cached = os.cached_update().await.unwrap_or_default();
        if cached.is_empty() {
            println!("No updates available.");
            return Ok(EXIT_UNCHANGED);
        }
        print!(
            "{}",
            render_cached_update(&wire::dict_to_json(&cached), preview)
        );
        return Ok(0);
    }
    let f = Flow::deployment(a.reboot, a.unchanged_exit_77, &a.common, ctx);
    flow::run_deployment_txn(client, &f, os.upgrade(&options(a, ctx))).await
}

/// Width of the keys of the `AvailableUpdate:` block (`SecAdvisories`).
const KEY_WIDTH: usize = 13;

/// rpm-ostree's `AvailableUpdate:` block from the `CachedUpdate` dictionary: version, commit
/// and signatures when the ref has a new commit, then the package changes, summed up in a
/// `Diff:` line, or one line per package with `verbose` (`--preview`).
pub(crate) fn render_cached_update(u: &Json, verbose: bool) -> String {
    let mut out = String::from("AvailableUpdate:\n");
    let mut kv = |k: &str, v: &str| {
        let _ = writeln!(out, "  {k:>KEY_WIDTH$}: {v}");
    };
    if u.get("ref-has-new-commit").and_then(Json::as_bool) == Some(true) {
        let ts = u.get("timestamp").and_then(Json::as_u64);
        match (u.get("version").and_then(Json::as_str), ts) {
            (Some(v), Some(t)) => kv("Version", &format!("{v} ({})", iso8601(t))),
            (Some(v), None) => kv("Version", v),
            (None, Some(t)) => kv("Timestamp", &iso8601(t)),
            (None, None) => {}
        }
        if let Some(c) = u.get("checksum").and_then(Json::as_str) {
            kv("Commit", c);
        }
        if u.get("gpg-enabled").and_then(Json::as_bool) == Some(true) {
            let sigs: Vec<String> = u
                .get("signatures")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .map(describe_signature)
                .collect();
            if sigs.is_empty() {
                kv("GPGSignature", "(unsigned)");
            } else {
                let indent = format!("\n{:width$}", "", width = KEY_WIDTH + 4);
                kv("GPGSignature", &sigs.join(&indent));
            }
        }
    }
    if let Some(diff) = u.get("rpm-diff") {
        out.push_str(&render_rpm_diff(diff, verbose));
    }
    if let Some(diff) = u.get("manifest-diff") {
        out.push_str(&render_manifest_diff(diff));
    }
    out
}

/// The `manifest-diff` of an image's cached update: layers and bytes of the new image, and
/// of the layers it drops and adds, in rpm-ostree's layout (its `Removed layers` key, one
/// character wider than the others, keeps one leading space instead of two).
fn render_manifest_diff(diff: &Json) -> String {
    let n = |k: &str| diff.get(k).and_then(Json::as_u64).unwrap_or(0);
    let size = |k: &str| crate::progress::format_size(n(k));
    let mut out = String::new();
    for (indent, key, value) in [
        ("  ", "Total layers", n("total").to_string()),
        ("  ", "Size", size("total-size")),
        (" ", "Removed layers", n("n-removed").to_string()),
        ("  ", "Size", size("removed-size")),
        ("  ", "Added layers", n("n-added").to_string()),
        ("  ", "Size", size("added-size")),
    ] {
        let _ = writeln!(out, "{indent}{key:>KEY_WIDTH$}: {value}");
    }
    out
}

/// One signature of `signatures` (libostree's tuple, as JSON) the way rpm-ostree prints it.
fn describe_signature(sig: &Json) -> String {
    let field = |i: usize| sig.get(i);
    let fpr = field(5).and_then(Json::as_str).unwrap_or("(unknown key)");
    if field(4).and_then(Json::as_bool) == Some(true) {
        return format!("Can't check signature: public key {fpr} not found");
    }
    let valid = field(0).and_then(Json::as_bool) == Some(true);
    format!(
        "{} signature by {fpr}",
        if valid { "Valid" } else { "Invalid" }
    )
}

/// The `rpm-diff` of a cached update: `Diff: 3 upgraded, 1 added`, or with `verbose` each
/// package under `Upgraded:`, `Downgraded:`, `Removed:` and `Added:`.
fn render_rpm_diff(diff: &Json, verbose: bool) -> String {
    let list = |k: &str| -> Vec<Json> {
        diff.get(k)
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (upgraded, downgraded, removed, added) = (
        list("upgraded"),
        list("downgraded"),
        list("removed"),
        list("added"),
    );
    let mut out = String::new();
    if !verbose {
        if let Some(s) =
            crate::db::summary(upgraded.len(), downgraded.len(), removed.len(), added.len())
        {
            let _ = writeln!(out, "  {:>KEY_WIDTH$}: {s}", "Diff");
        }
        return out;
    }
    let s = |v: &Json, i: usize| {
        v.get(i)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut section = |label: &str, lines: Vec<String>| {
        for (i, line) in lines.iter().enumerate() {
            let (key, sep) = if i == 0 { (label, ":") } else { ("", " ") };
            let _ = writeln!(out, "  {key:>KEY_WIDTH$}{sep} {line}");
        }
    };
    // (type, name, (old EVR, arch), (new EVR, arch)) and (type, name, EVR, arch).
    let modified = |v: &[Json]| -> Vec<String> {
        v.iter()
            .map(|p| {
                let evr = |i: usize| p.get(i).map(|t| s(t, 0)).unwrap_or_default();
                format!("{} {} -> {}", s(p, 1), evr(2), evr(3))
            })
            .collect()
    };
    let single = |v: &[Json]| -> Vec<String> {
        v.iter()
            .map(|p| format!("{}-{}.{}", s(p, 1), s(p, 2), s(p, 3)))
            .collect()
    };
    section("Upgraded", modified(&upgraded));
    section("Downgraded", modified(&downgraded));
    section("Removed", single(&removed));
    section("Added", single(&added));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn parse(argv: &[&str]) -> UpgradeArgs {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Upgrade(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn ctx() -> Ctx {
        Ctx {
            program: "strata".into(),
            cmdline: "strata upgrade".into(),
            ..Default::default()
        }
    }

    #[test]
    fn plain_upgrade_options() {
        let a = parse(&["strata", "upgrade"]);
        let o = options(&a, &ctx());
        assert_eq!(
            o,
            DeployOptions {
                initiating_command_line: Some("strata upgrade".into()),
                ..Default::default()
            }
        );
    }

    #[test]
    fn all_flags() {
        let a = parse(&[
            "strata",
            "update",
            "-r",
            "--allow-downgrade",
            "-C",
            "--download-only",
            "--lock-finalization",
            "--unchanged-exit-77",
            "--bypass-driver",
        ]);
        assert!(a.unchanged_exit_77 && a.common.bypass_driver);
        let o = options(&a, &ctx());
        assert_eq!(
            o,
            DeployOptions {
                reboot: Some(true),
                allow_downgrade: Some(true),
                cache_only: Some(true),
                download_only: Some(true),
                lock_finalization: Some(true),
                bypass_driver: Some(true),
                initiating_command_line: Some("strata upgrade".into()),
                ..Default::default()
            }
        );
        assert!(validate(&a, "strata").is_ok());
    }

    #[test]
    fn hidden_alias_for_unchanged() {
        let a = parse(&["strata", "upgrade", "--upgrade-unchanged-exit-77"]);
        assert!(a.unchanged_exit_77);
        let a = parse(&["strata", "upgrade", "--trigger-automatic-update-policy"]);
        assert!(a.trigger_automatic_update_policy);
    }

    #[test]
    fn reboot_with_check_is_rejected() {
        assert!(Cli::try_parse_from(["strata", "upgrade", "--check", "-r"]).is_err());
        assert!(Cli::try_parse_from(["strata", "upgrade", "--preview", "--reboot"]).is_err());
        let a = UpgradeArgs {
            check: true,
            reboot: true,
            ..Default::default()
        };
        assert!(validate(&a, "strata").is_err());
    }

    #[test]
    fn layering_flags_are_unsupported() {
        let a = parse(&["strata", "upgrade", "--install", "htop"]);
        let e = validate(&a, "strata").unwrap_err().to_string();
        assert!(
            e.starts_with("\"strata upgrade --install\" is not supported yet: an upgrade combined with package changes"),
            "{e}"
        );
        let a = parse(&["strata", "upgrade", "--uninstall=vim"]);
        assert!(validate(&a, "strata").is_err());
        let a = parse(&["strata", "upgrade", "--check-diff"]);
        assert!(validate(&a, "strata").is_ok());
    }

    #[test]
    fn check_trigger_options() {
        let o = trigger_options("check", &ctx());
        assert_eq!(o.mode.as_deref(), Some("check"));
        assert_eq!(o.output_to_self, Some(false));
    }

    #[test]
    fn available_update_block() {
        let mut u = json!({
            "version": "42.1",
            "timestamp": 1717543275u64,
            "checksum": "bbb",
            "ref-has-new-commit": true,
            "gpg-enabled": true,
            "signatures": [[true, false, false, false, false, "FPR"]],
            "rpm-diff": {
                "upgraded": [[0, "a", ["1-1", "x86_64"], ["2-1", "x86_64"]], [0, "b", ["1-1", "noarch"], ["1-2", "noarch"]]],
                "downgraded": [],
                "removed": [[0, "old", "0.1-1", "noarch"]],
                "added": [],
            },
        });
        assert_eq!(
            render_cached_update(&u, false),
            "AvailableUpdate:\n        Version: 42.1 (2024-06-04T23:21:15Z)\n         Commit: bbb\n   GPGSignature: Valid signature by FPR\n           Diff: 2 upgraded, 1 removed\n"
        );
        assert_eq!(
            render_cached_update(&u, true),
            "AvailableUpdate:\n        Version: 42.1 (2024-06-04T23:21:15Z)\n         Commit: bbb\n   GPGSignature: Valid signature by FPR\n       Upgraded: a 1-1 -> 2-1\n                 b 1-1 -> 1-2\n        Removed: old-0.1-1.noarch\n"
        );
        u["signatures"] = json!([]);
        u["ref-has-new-commit"] = json!(false);
        assert!(!render_cached_update(&u, false).contains("Commit"));
        u["ref-has-new-commit"] = json!(true);
        assert!(render_cached_update(&u, false).contains("   GPGSignature: (unsigned)\n"));
    }

    /// Sizes are GLib's, with its no-break space (as rpm-ostree prints them).
    #[test]
    fn available_image_update_block() {
        let u = json!({
            "checksum": "aaa",
            "version": "3",
            "ref-has-new-commit": false,
            "manifest-diff": {
                "total": 8u64, "total-size": 1_500_000u64,
                "n-removed": 2u64, "removed-size": 2000u64,
                "n-added": 2u64, "added-size": 3000u64,
            },
        });
        assert_eq!(
            render_cached_update(&u, false),
            "AvailableUpdate:\n   Total layers: 8\n           Size: 1.5\u{a0}MB\n Removed layers: 2\n           Size: 2.0\u{a0}kB\n   Added layers: 2\n           Size: 3.0\u{a0}kB\n"
        );
    }
}
