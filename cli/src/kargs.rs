//! `kargs`: show the kernel arguments of a deployment, or change them (flags or `--editor`),
//! which makes a new deployment.

use std::io::Write;
use std::process::Command;

use anyhow::{bail, Context, Result};
use strata_api::names::EXIT_UNCHANGED;
use strata_api::options::KernelArgsOptions;
use strata_api::wire::DeploymentDict;
use zbus::zvariant::OwnedValue;

use crate::args::KargsArgs;
use crate::client::Client;
use crate::flow::{self, flag, Ctx, Flow};

/// The header of the file `--editor` opens.
pub(crate) const EDITOR_HEADER: &str =
    "# Current kernel arguments are shown below, and can be directly edited.\n\
# Empty or # lines will be ignored.\n";

/// Which deployment to read (with `--deploy-index=N` and edits, the edits start from
/// deployment N's arguments, sent as `existing` as rpm-ostree does; the new deployment is
/// still based on the default one): `(id, is_pending)` for `GetDeploymentBootConfig`.
pub(crate) fn target(
    deployments: &[DeploymentDict],
    index: Option<usize>,
) -> Result<(String, bool)> {
    let i = index.unwrap_or(0);
    let Some(d) = deployments.get(i) else {
        bail!(
            "Invalid deployment index {i}: there are {} deployments",
            deployments.len()
        );
    };
    let id = d
        .get("id")
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .context("Deployment without an id")?;
    let staged = d
        .get("staged")
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false);
    Ok((id, staged))
}

/// The options part of `KernelArgs`.
pub(crate) fn options(a: &KargsArgs, final_args: Option<&str>, ctx: &Ctx) -> KernelArgsOptions {
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    KernelArgsOptions {
        append_if_missing: list(&a.append_if_missing),
        delete_if_present: list(&a.delete_if_present),
        final_kernel_args: final_args.map(str::to_string),
        lock_finalization: flag(a.lock_finalization),
        reboot: flag(a.reboot),
        initiating_command_line: ctx.cmdline(),
        deploy_index: None,
    }
}

/// What the editor shows.
pub(crate) fn editor_text(current: &str) -> String {
    format!("{EDITOR_HEADER}{current}\n")
}

/// What the user left in the editor: comment and empty lines dropped, whitespace collapsed.
pub(crate) fn parse_editor_text(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `$VISUAL`, `$EDITOR` or `vi`, split into program and arguments.
pub(crate) fn editor_command(visual: Option<String>, editor: Option<String>) -> Vec<String> {
    let cmd = visual
        .filter(|s| !s.trim().is_empty())
        .or(editor.filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    cmd.split_whitespace().map(str::to_string).collect()
}

fn edit_interactively(current: &str) -> Result<String> {
    let mut file = tempfile::Builder::new()
        .prefix("strata-kargs-")
        .suffix(".txt")
        .tempfile()
        .context("Creating a temporary file for the editor")?;
    file.write_all(editor_text(current).as_bytes())
        .context("Writing the kernel arguments for the editor")?;
    file.flush()?;
    let argv = editor_command(std::env::var("VISUAL").ok(), std::env::var("EDITOR").ok());
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .arg(file.path())
        .status()
        .with_context(|| format!("Running the editor {:?}", argv.join(" ")))?;
    if !status.success() {
        bail!("The editor {:?} failed ({status})", argv.join(" "));
    }
    let text = fs_err::read_to_string(file.path())
        .with_context(|| format!("Reading {}", file.path().display()))?;
    Ok(parse_editor_text(&text))
}

fn string_of(d: &std::collections::HashMap<String, OwnedValue>, key: &str) -> String {
    d.get(key)
        .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
        .unwrap_or_default()
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &KargsArgs) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    client.sync().await;
    let deployments = client.deployments().await?;
    let (id, pending) = target(&deployments, a.deploy_index)?;
    let config = os
        .get_deployment_boot_config(&id, pending)
        .await
        .map_err(|e| client.plain_error(e))
        .context("Reading the kernel arguments")?;
    let current = string_of(&config, "options");
    if !a.modifies() {
        println!("{current}");
        return Ok(0);
    }

    let mut existing = current.clone();
    if a.import_proc_cmdline {
        // As rpm-ostree: the arguments the running system booted with are those of the booted
        // deployment, which the daemon reads (and refuses to invent on a sysroot that is not
        // the running system). Never this machine's /proc/cmdline: the daemon may manage
        // another sysroot.
        let booted = os
            .get_deployment_boot_config("", false)
            .await
            .map_err(|e| client.plain_error(e))
            .context("Importing the booted deployment's kernel arguments")?;
        existing = string_of(&booted, "options");
    }
    let final_args = if a.editor {
        let edited = edit_interactively(&current)?;
        if edited == current {
            if !ctx.quiet {
                println!("Kernel arguments not modified.");
            }
            return Ok(if a.unchanged_exit_77 {
                EXIT_UNCHANGED
            } else {
                0
            });
        }
        Some(edited)
    } else {
        None
    };
    let f = Flow {
        reboot: a.reboot,
        unchanged_exit_77: a.unchanged_exit_77,
        lock_finalization: a.lock_finalization,
        quiet: ctx.quiet,
        changed_note: Some("Kernel arguments updated."),
    };
    let added: Vec<&str> = a.append.iter().map(String::as_str).collect();
    let replaced: Vec<&str> = a.replace.iter().map(String::as_str).collect();
    let removed: Vec<&str> = a.delete.iter().map(String::as_str).collect();
    let opts = options(a, final_args.as_deref(), ctx);
    flow::run_deployment_txn(
        client,
        &f,
        os.kernel_args(&existing, &added, &replaced, &removed, &opts),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command as Verb};
    use clap::Parser;

    fn parse(argv: &[&str]) -> KargsArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Verb::Kargs(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_flags_only_shows() {
        let a = parse(&["strata", "kargs"]);
        assert!(!a.modifies());
        let a = parse(&["strata", "kargs", "--deploy-index=1"]);
        assert!(!a.modifies());
        assert_eq!(a.deploy_index, Some(1));
    }

    #[test]
    fn every_edit_flag() {
        let a = parse(&[
            "strata",
            "kargs",
            "--append=console=ttyS0",
            "--append",
            "quiet",
            "--append-if-missing=foo=bar",
            "--delete=rhgb",
            "--delete-if-present=splash",
            "--replace=console=tty0=ttyS1",
            "--reboot",
            "--unchanged-exit-77",
            "--lock-finalization",
        ]);
        assert!(a.modifies());
        assert_eq!(a.append, ["console=ttyS0", "quiet"]);
        assert_eq!(a.delete, ["rhgb"]);
        assert_eq!(a.replace, ["console=tty0=ttyS1"]);
        let o = options(&a, None, &Ctx::default());
        assert_eq!(o.append_if_missing, Some(vec!["foo=bar".to_string()]));
        assert_eq!(o.delete_if_present, Some(vec!["splash".to_string()]));
        assert_eq!(o.reboot, Some(true));
        assert_eq!(o.lock_finalization, Some(true));
        assert!(o.final_kernel_args.is_none());
    }

    #[test]
    fn kargs_reboot_has_no_short_form() {
        assert!(Cli::try_parse_from(["strata", "kargs", "-r"]).is_err());
    }

    #[test]
    fn editor_mode() {
        let a = parse(&["strata", "kargs", "--editor"]);
        assert!(a.modifies());
        let o = options(&a, Some("root=/dev/vda quiet"), &Ctx::default());
        assert_eq!(o.final_kernel_args.as_deref(), Some("root=/dev/vda quiet"));
        assert!(Cli::try_parse_from(["strata", "kargs", "--editor", "--append=x"]).is_err());
    }

    #[test]
    fn editor_text_round_trip() {
        let t = editor_text("root=UUID=x rw quiet");
        assert!(t.starts_with("# Current kernel arguments"));
        assert_eq!(parse_editor_text(&t), "root=UUID=x rw quiet");
        let edited = "# comment\n\n  root=UUID=x   rw\n# another\nconsole=ttyS0  \n";
        assert_eq!(parse_editor_text(edited), "root=UUID=x rw console=ttyS0");
    }

    #[test]
    fn editor_choice() {
        assert_eq!(editor_command(None, None), ["vi"]);
        assert_eq!(editor_command(None, Some("nano".into())), ["nano"]);
        assert_eq!(
            editor_command(Some("code --wait".into()), Some("nano".into())),
            ["code", "--wait"]
        );
        assert_eq!(editor_command(Some(" ".into()), Some("ed".into())), ["ed"]);
    }

    #[test]
    fn deploy_index_with_changes() {
        let a = parse(&["strata", "kargs", "--append=x", "--deploy-index=1"]);
        assert!(a.modifies());
        assert_eq!(a.deploy_index, Some(1));
    }

    #[test]
    fn target_deployment() {
        let mut d0 = DeploymentDict::new();
        d0.insert(
            "id".into(),
            OwnedValue::from(zbus::zvariant::Str::from("os-a.1")),
        );
        d0.insert("staged".into(), OwnedValue::from(true));
        let mut d1 = DeploymentDict::new();
        d1.insert(
            "id".into(),
            OwnedValue::from(zbus::zvariant::Str::from("os-b.0")),
        );
        let ds = vec![d0, d1];
        assert_eq!(target(&ds, None).unwrap(), ("os-a.1".into(), true));
        assert_eq!(target(&ds, Some(1)).unwrap(), ("os-b.0".into(), false));
        assert!(target(&ds, Some(2))
            .unwrap_err()
            .to_string()
            .contains("there are 2 deployments"));
    }
}
