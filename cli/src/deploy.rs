//! `deploy REVISION`: deploy a given commit or version of the current origin; also registers
//! update drivers (`deploy "" --register-driver=NAME`, as Zincati does).

use anyhow::{bail, Result};
use strata_api::options::DeployOptions;

use crate::args::DeployArgs;
use crate::client::Client;
use crate::errors::unsupported_flag;
use crate::flow::{self, flag, Ctx, Flow};

/// What the arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Deploy REVISION (prefixes `revision=`/`version=` pass through to the daemon).
    Deploy(String),
    /// Empty REVISION with `--register-driver`: only register the driver.
    RegisterOnly(String),
}

pub(crate) fn plan(a: &DeployArgs, program: &str) -> Result<Plan> {
    let layering = "package layering comes with a later release";
    if !a.common.install.is_empty() {
        bail!(unsupported_flag(program, "deploy", "--install", layering));
    }
    if !a.common.uninstall.is_empty() {
        bail!(unsupported_flag(program, "deploy", "--uninstall", layering));
    }
    if a.ex_cliwrap {
        bail!(unsupported_flag(
            program,
            "deploy",
            "--ex-cliwrap",
            "cliwrap is not part of Strata"
        ));
    }
    if a.preview {
        bail!(unsupported_flag(
            program,
            "deploy",
            "--preview",
            "package diffs come with package layering"
        ));
    }
    let revision = a.revision.clone().unwrap_or_default();
    match (revision.is_empty(), &a.register_driver) {
        (true, Some(driver)) => Ok(Plan::RegisterOnly(driver.clone())),
        (true, None) => {
            bail!("Missing REVISION argument (a checksum, revision=CHECKSUM or version=VERSION)")
        }
        (false, _) => Ok(Plan::Deploy(revision)),
    }
}

/// The `Deploy` options. rpm-ostree allows downgrades for `deploy` unless told otherwise.
pub(crate) fn options(a: &DeployArgs, ctx: &Ctx) -> DeployOptions {
    DeployOptions {
        allow_downgrade: Some(!a.disallow_downgrade),
        reboot: flag(a.reboot),
        cache_only: flag(a.common.cache_only),
        download_only: flag(a.common.download_only),
        skip_branch_check: flag(a.skip_branch_check),
        lock_finalization: flag(a.common.lock_finalization),
        bypass_driver: flag(a.common.bypass_driver),
        register_driver: a.register_driver.clone(),
        initiating_command_line: ctx.cmdline(),
        ..Default::default()
    }
}

/// Only the driver registration.
pub(crate) fn register_options(driver: &str, ctx: &Ctx) -> DeployOptions {
    DeployOptions {
        register_driver: Some(driver.to_string()),
        initiating_command_line: ctx.cmdline(),
        ..Default::default()
    }
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &DeployArgs) -> Result<i32> {
    let plan = plan(a, &ctx.program)?;
    let os = client.os(ctx.stateroot.as_deref()).await?;
    match plan {
        Plan::RegisterOnly(driver) => {
            flow::run_txn(
                client,
                ctx.quiet,
                os.deploy("", &register_options(&driver, ctx)),
            )
            .await?;
            Ok(0)
        }
        Plan::Deploy(revision) => {
            let f = Flow::deployment(a.reboot, a.unchanged_exit_77, &a.common, ctx);
            flow::run_deployment_txn(client, &f, os.deploy(&revision, &options(a, ctx))).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> DeployArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Deploy(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn zincati_deploy() {
        let a = parse(&[
            "rpm-ostree",
            "deploy",
            "--lock-finalization",
            "--skip-branch-check",
            "revision=abc123",
            "--disallow-downgrade",
        ]);
        assert_eq!(
            plan(&a, "rpm-ostree").unwrap(),
            Plan::Deploy("revision=abc123".into())
        );
        let o = options(&a, &Ctx::default());
        assert_eq!(o.allow_downgrade, Some(false));
        assert_eq!(o.lock_finalization, Some(true));
        assert_eq!(o.skip_branch_check, Some(true));
        assert!(o.reboot.is_none());
    }

    #[test]
    fn zincati_register_driver() {
        let a = parse(&["rpm-ostree", "deploy", "", "--register-driver=Zincati"]);
        assert_eq!(
            plan(&a, "rpm-ostree").unwrap(),
            Plan::RegisterOnly("Zincati".into())
        );
        let o = register_options("Zincati", &Ctx::default());
        assert_eq!(
            o,
            DeployOptions {
                register_driver: Some("Zincati".into()),
                initiating_command_line: Some(String::new()),
                ..Default::default()
            }
        );
        // Without the empty positional too.
        let a = parse(&["strata", "deploy", "--register-driver", "Zincati"]);
        assert_eq!(
            plan(&a, "strata").unwrap(),
            Plan::RegisterOnly("Zincati".into())
        );
    }

    #[test]
    fn version_prefix_and_defaults() {
        let a = parse(&[
            "strata",
            "deploy",
            "version=41.20250101.0",
            "-r",
            "-C",
            "--download-only",
        ]);
        assert_eq!(
            plan(&a, "strata").unwrap(),
            Plan::Deploy("version=41.20250101.0".into())
        );
        let o = options(&a, &Ctx::default());
        assert_eq!(o.allow_downgrade, Some(true));
        assert_eq!(o.reboot, Some(true));
        assert_eq!(o.cache_only, Some(true));
        assert_eq!(o.download_only, Some(true));
        let a = parse(&[
            "strata",
            "deploy",
            "sha256:abcd",
            "--unchanged-exit-77",
            "--bypass-driver",
        ]);
        assert!(a.unchanged_exit_77 && a.common.bypass_driver);
        assert_eq!(
            plan(&a, "strata").unwrap(),
            Plan::Deploy("sha256:abcd".into())
        );
    }

    #[test]
    fn missing_revision_and_unsupported() {
        let a = parse(&["strata", "deploy"]);
        assert!(plan(&a, "strata")
            .unwrap_err()
            .to_string()
            .starts_with("Missing REVISION"));
        let a = parse(&["strata", "deploy", "abc", "--preview"]);
        assert!(plan(&a, "strata")
            .unwrap_err()
            .to_string()
            .contains("deploy --preview"));
        let a = parse(&["strata", "deploy", "abc", "--install", "htop"]);
        assert!(plan(&a, "strata").is_err());
    }
}
