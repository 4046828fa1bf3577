//! `install`, `uninstall` and `reset`: change the packages layered on the current base
//! (`UpdateDeployment` with `install-packages` / `uninstall-packages` / `no-layering` and
//! `no-pull-base`, as rpm-ostree's client sends it).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use strata_api::options::{DeployOptions, Modifiers};
use zbus::zvariant::{Fd, Value};

use crate::args::{InstallArgs, PackageFlags, ResetArgs, UninstallArgs};
use crate::client::Client;
use crate::errors::unsupported_flag;
use crate::flow::{self, flag, Ctx, Flow};

/// Refuses what Strata cannot layer yet, before anything is sent.
fn check(verb: &str, f: &PackageFlags, ctx: &Ctx) -> Result<()> {
    if f.apply_live {
        bail!(unsupported_flag(
            &ctx.program,
            verb,
            "--apply-live",
            "live changes to the running system come with a later release"
        ));
    }
    if f.force_replacefiles {
        bail!(unsupported_flag(
            &ctx.program,
            verb,
            "--force-replacefiles",
            "packages replacing each other's files come with a later release"
        ));
    }
    Ok(())
}

/// The arguments of `install` split as rpm-ostree's client does: `.rpm` paths and `file://`
/// URLs are local packages, opened here (with the caller's rights) and passed to the daemon
/// as file descriptors; anything else is a name or provide for the repositories.
fn split_local(args: &[String]) -> Result<(Vec<String>, Vec<File>)> {
    let mut names = Vec::new();
    let mut files = Vec::new();
    for arg in args {
        let shown = strata_api::text::truncated(arg, 256);
        if arg.starts_with("http://") || arg.starts_with("https://") {
            bail!(
                "{shown:?}: installing packages by URL is not supported yet; download the .rpm file and give its path"
            );
        }
        let path = arg.strip_prefix("file://");
        if path.is_none() && !arg.ends_with(".rpm") {
            names.push(arg.clone());
            continue;
        }
        let path = Path::new(path.unwrap_or(arg));
        if arg.ends_with(".src.rpm") {
            bail!("{shown:?}: a source package cannot be layered; give the binary package");
        }
        let file = File::open(path).with_context(|| format!("Opening {shown:?}"))?;
        if !file.metadata()?.is_file() {
            bail!("{shown:?} is not a regular file");
        }
        files.push(file);
    }
    Ok((names, files))
}

fn options(f: &PackageFlags, ctx: &Ctx) -> DeployOptions {
    DeployOptions {
        reboot: flag(f.reboot),
        dry_run: flag(f.dry_run),
        cache_only: flag(f.cache_only),
        download_only: flag(f.download_only),
        lock_finalization: flag(f.lock_finalization),
        idempotent_layering: flag(f.idempotent),
        allow_inactive: flag(f.allow_inactive),
        no_pull_base: Some(true),
        initiating_command_line: ctx.cmdline(),
        ..Default::default()
    }
}

fn flow(f: &PackageFlags, ctx: &Ctx) -> Flow {
    Flow {
        reboot: f.reboot,
        // rpm-ostree: --idempotent implies exit 77 when nothing changed.
        unchanged_exit_77: f.unchanged_exit_77 || f.idempotent,
        lock_finalization: f.lock_finalization,
        quiet: ctx.quiet,
        changed_note: None,
    }
}

async fn change(
    client: &Client,
    ctx: &Ctx,
    modifiers: Modifiers,
    local: &[File],
    options: DeployOptions,
    flow: Flow,
) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    if local.is_empty() {
        return flow::run_deployment_txn(client, &flow, os.update_deployment(&modifiers, &options))
            .await;
    }
    // Modifiers has no fd field (its derives need Clone); with files, the dictionary is built
    // by hand: the keys `install`/`uninstall` send, and the descriptors as `ah`.
    let mut raw: HashMap<&str, Value<'_>> = HashMap::new();
    if let Some(names) = &modifiers.install_packages {
        raw.insert("install-packages", Value::from(names.clone()));
    }
    if let Some(names) = &modifiers.uninstall_packages {
        raw.insert("uninstall-packages", Value::from(names.clone()));
    }
    let fds: Vec<Fd<'_>> = local.iter().map(Fd::from).collect();
    raw.insert("install-local-packages", Value::from(fds));
    flow::run_deployment_txn(
        client,
        &flow,
        os.update_deployment_with_files(&raw, &options),
    )
    .await
}

fn some(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

pub(crate) async fn install(client: &Client, ctx: &Ctx, a: &InstallArgs) -> Result<i32> {
    check("install", &a.flags, ctx)?;
    let (names, local) = split_local(&a.packages)?;
    let modifiers = Modifiers {
        install_packages: some(&names),
        uninstall_packages: some(&a.uninstall),
        ..Default::default()
    };
    change(
        client,
        ctx,
        modifiers,
        &local,
        options(&a.flags, ctx),
        flow(&a.flags, ctx),
    )
    .await
}

pub(crate) async fn uninstall(client: &Client, ctx: &Ctx, a: &UninstallArgs) -> Result<i32> {
    check("uninstall", &a.flags, ctx)?;
    let (names, local) = split_local(&a.install)?;
    let modifiers = Modifiers {
        uninstall_packages: some(&a.packages),
        install_packages: some(&names),
        ..Default::default()
    };
    let mut opts = options(&a.flags, ctx);
    opts.no_layering = flag(a.all);
    change(client, ctx, modifiers, &local, opts, flow(&a.flags, ctx)).await
}

pub(crate) async fn reset(client: &Client, ctx: &Ctx, a: &ResetArgs) -> Result<i32> {
    // No flag means everything; Strata has only layered packages to reset.
    let everything = !a.overlays && !a.overrides && !a.initramfs;
    if a.overrides && !everything {
        bail!(unsupported_flag(
            &ctx.program,
            "reset",
            "--overrides",
            "base package overrides come with a later release"
        ));
    }
    if a.initramfs && !everything {
        bail!(unsupported_flag(
            &ctx.program,
            "reset",
            "--initramfs",
            "initramfs regeneration comes with a later release"
        ));
    }
    let flags = PackageFlags {
        reboot: a.reboot,
        lock_finalization: a.lock_finalization,
        ..Default::default()
    };
    let mut opts = options(&flags, ctx);
    opts.no_layering = Some(true);
    change(
        client,
        ctx,
        Modifiers::default(),
        &[],
        opts,
        flow(&flags, ctx),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> Command {
        Cli::try_parse_from(argv).unwrap().command
    }

    #[test]
    fn install_sends_rpm_ostree_options() {
        let Command::Install(a) =
            parse(&["rpm-ostree", "install", "-n", "--idempotent", "htop", "vim"])
        else {
            panic!()
        };
        assert_eq!(a.packages, ["htop", "vim"]);
        let o = options(&a.flags, &Ctx::default());
        assert_eq!(o.dry_run, Some(true));
        assert_eq!(o.idempotent_layering, Some(true));
        assert_eq!(o.no_pull_base, Some(true));
        assert_eq!(o.allow_inactive, None);
        assert!(flow(&a.flags, &Ctx::default()).unchanged_exit_77);
    }

    #[test]
    fn aliases_and_uninstall_all() {
        assert!(matches!(
            parse(&["strata", "pkg-add", "x"]),
            Command::Install(_)
        ));
        assert!(matches!(
            parse(&["strata", "remove", "x"]),
            Command::Uninstall(_)
        ));
        let Command::Uninstall(a) = parse(&["strata", "uninstall", "--all"]) else {
            panic!()
        };
        assert!(a.all && a.packages.is_empty());
        assert!(Cli::try_parse_from(["strata", "uninstall"]).is_err());
        assert!(Cli::try_parse_from(["strata", "install"]).is_err());
    }

    #[test]
    fn local_files_are_opened_and_the_rest_are_names() {
        let dir = tempfile::tempdir().unwrap();
        let rpm = dir.path().join("foo-1.0-1.noarch.rpm");
        std::fs::write(&rpm, b"x").unwrap();
        let args = vec![
            "htop".to_string(),
            rpm.display().to_string(),
            format!("file://{}", rpm.display()),
        ];
        let (names, files) = split_local(&args).unwrap();
        assert_eq!(names, ["htop"]);
        assert_eq!(files.len(), 2);
        for (bad, want) in [
            ("https://example.com/foo.rpm", "by URL"),
            ("foo-1.0-1.src.rpm", "source package"),
            ("/nonexistent/foo.rpm", "Opening"),
        ] {
            let err = format!("{:#}", split_local(&[bad.to_string()]).unwrap_err());
            assert!(err.contains(want) && err.contains(bad), "{err}");
        }
        let err = format!(
            "{:#}",
            split_local(&[dir.path().display().to_string() + "/.rpm"]).unwrap_err()
        );
        assert!(err.contains("Opening"), "{err}");
    }

    #[test]
    fn unsupported_flags_are_refused_clearly() {
        let ctx = Ctx {
            program: "strata".into(),
            ..Default::default()
        };
        let live = PackageFlags {
            apply_live: true,
            ..Default::default()
        };
        let err = check("install", &live, &ctx).unwrap_err();
        assert!(err.to_string().contains("--apply-live"), "{err}");
    }
}
