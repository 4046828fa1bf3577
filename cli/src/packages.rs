//! `install`, `uninstall` and `reset`: change the packages layered on the current base
//! (`UpdateDeployment` with `install-packages` / `uninstall-packages` / `no-layering` and
//! `no-pull-base`, as rpm-ostree's client sends it).

use anyhow::{bail, Result};
use strata_api::options::{DeployOptions, Modifiers};

use crate::args::{InstallArgs, PackageFlags, ResetArgs, UninstallArgs};
use crate::client::Client;
use crate::errors::unsupported_flag;
use crate::flow::{self, flag, Ctx, Flow};

/// Refuses what Strata cannot layer yet, before anything is sent.
fn check(verb: &str, names: &[String], f: &PackageFlags, ctx: &Ctx) -> Result<()> {
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
    for n in names {
        if n.ends_with(".rpm") || n.starts_with("file://") || n.contains("://") {
            bail!(
                "{:?}: layering local or downloaded .rpm files is not supported yet; give a package name from a configured repository",
                strata_api::text::truncated(n, 256)
            );
        }
    }
    Ok(())
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
    options: DeployOptions,
    flow: Flow,
) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    flow::run_deployment_txn(client, &flow, os.update_deployment(&modifiers, &options)).await
}

pub(crate) async fn install(client: &Client, ctx: &Ctx, a: &InstallArgs) -> Result<i32> {
    check("install", &a.packages, &a.flags, ctx)?;
    let modifiers = Modifiers {
        install_packages: Some(a.packages.clone()),
        uninstall_packages: (!a.uninstall.is_empty()).then(|| a.uninstall.clone()),
        ..Default::default()
    };
    change(
        client,
        ctx,
        modifiers,
        options(&a.flags, ctx),
        flow(&a.flags, ctx),
    )
    .await
}

pub(crate) async fn uninstall(client: &Client, ctx: &Ctx, a: &UninstallArgs) -> Result<i32> {
    check("uninstall", &a.install, &a.flags, ctx)?;
    let modifiers = Modifiers {
        uninstall_packages: (!a.packages.is_empty()).then(|| a.packages.clone()),
        install_packages: (!a.install.is_empty()).then(|| a.install.clone()),
        ..Default::default()
    };
    let mut opts = options(&a.flags, ctx);
    opts.no_layering = flag(a.all);
    change(client, ctx, modifiers, opts, flow(&a.flags, ctx)).await
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
    change(client, ctx, Modifiers::default(), opts, flow(&flags, ctx)).await
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
    fn local_files_and_unsupported_flags_are_refused_clearly() {
        let ctx = Ctx {
            program: "strata".into(),
            ..Default::default()
        };
        let f = PackageFlags::default();
        let err = check("install", &["./foo-1.0.rpm".into()], &f, &ctx).unwrap_err();
        assert!(err.to_string().contains("foo-1.0.rpm"), "{err}");
        let live = PackageFlags {
            apply_live: true,
            ..Default::default()
        };
        let err = check("install", &["htop".into()], &live, &ctx).unwrap_err();
        assert!(err.to_string().contains("--apply-live"), "{err}");
    }
}
