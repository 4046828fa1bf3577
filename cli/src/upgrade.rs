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

/// What `--preview` does in Strata.
pub(crate) const PREVIEW_NOTE: &str =
    "Note: --preview shows the available update without a package diff for now (as --check)";

/// Flags we accept but cannot honour yet.
pub(crate) fn validate(a: &UpgradeArgs, program: &str) -> Result<()> {
    let layering = "package layering comes with a later release";
    if !a.common.install.is_empty() {
        bail!(unsupported_flag(program, "upgrade", "--install", layering));
    }
    if !a.common.uninstall.is_empty() {
        bail!(unsupported_flag(
            program,
            "upgrade",
            "--uninstall",
            layering
        ));
    }
    if a.check_diff {
        bail!(unsupported_flag(
            program,
            "upgrade",
            "--check-diff",
            "package diffs come with package layering; use --check"
        ));
    }
    if a.reboot && (a.check || a.preview) {
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
    if a.check || a.preview {
        if !ctx.quiet && a.preview {
            println!("{PREVIEW_NOTE}");
        }
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
        print!("{}", render_cached_update(&wire::dict_to_json(&cached)));
        return Ok(0);
    }
    let f = Flow::deployment(a.reboot, a.unchanged_exit_77, &a.common, ctx);
    flow::run_deployment_txn(client, &f, os.upgrade(&options(a, ctx))).await
}

/// rpm-ostree's `AvailableUpdate:` block from the `CachedUpdate` dictionary.
pub(crate) fn render_cached_update(u: &Json) -> String {
    let mut out = String::from("AvailableUpdate:\n");
    let mut kv = |k: &str, v: &str| {
        let _ = writeln!(out, "  {k:>13}: {v}");
    };
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
    if let Some(sigs) = u.get("signatures").and_then(Json::as_array) {
        if let Some(first) = sigs.first().and_then(Json::as_array) {
            let valid = first.first().and_then(Json::as_bool).unwrap_or(false);
            let fpr = first
                .get(5)
                .and_then(Json::as_str)
                .unwrap_or("(unknown key)");
            let word = if valid { "Valid" } else { "Invalid" };
            kv("GPGSignature", &format!("{word} signature by {fpr}"));
        }
    }
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
        assert_eq!(
            e,
            "\"strata upgrade --install\" is not supported yet: package layering comes with a later release"
        );
        let a = parse(&["strata", "upgrade", "--uninstall=vim"]);
        assert!(validate(&a, "strata").is_err());
        let a = parse(&["strata", "upgrade", "--check-diff"]);
        assert!(validate(&a, "strata").is_err());
    }

    #[test]
    fn check_trigger_options() {
        let o = trigger_options("check", &ctx());
        assert_eq!(o.mode.as_deref(), Some("check"));
        assert_eq!(o.output_to_self, Some(false));
    }

    #[test]
    fn available_update_block() {
        let u = json!({
            "version": "42.1",
            "timestamp": 1717543275u64,
            "checksum": "bbb",
            "signatures": [[true, false, false, false, false, "FPR"]],
        });
        assert_eq!(
            render_cached_update(&u),
            "AvailableUpdate:\n        Version: 42.1 (2024-06-04T23:21:15Z)\n         Commit: bbb\n   GPGSignature: Valid signature by FPR\n"
        );
    }
}
