//! `rebase REFSPEC [REVISION]`: switch the origin to another branch, remote or image.

use anyhow::{bail, Result};
use strata_api::options::DeployOptions;

use crate::args::RebaseArgs;
use crate::client::Client;
use crate::errors::unsupported_flag;
use crate::flow::{self, flag, Ctx, Flow};

/// The refspec and optional revision the arguments name. With `-b`/`-m` the refspec is built
/// as `REMOTE:BRANCH` (either side may be empty: keep the current one) and the only
/// positional argument is the revision.
pub(crate) fn target(a: &RebaseArgs, program: &str) -> Result<(String, Option<String>)> {
    let layering = "package layering comes with a later release";
    if !a.common.install.is_empty() {
        bail!(unsupported_flag(program, "rebase", "--install", layering));
    }
    if !a.common.uninstall.is_empty() {
        bail!(unsupported_flag(program, "rebase", "--uninstall", layering));
    }
    if a.custom_origin_url.is_some() || a.custom_origin_description.is_some() {
        bail!(unsupported_flag(
            program,
            "rebase",
            "--custom-origin-url",
            "custom origins come with a later release"
        ));
    }
    if a.experimental {
        bail!(unsupported_flag(
            program,
            "rebase",
            "--experimental",
            "there are no experimental rebase features"
        ));
    }
    if a.branch.is_some() || a.remote.is_some() {
        if a.positional.len() > 1 {
            bail!("Too many arguments: with --branch or --remote, only REVISION may be given");
        }
        let refspec = format!(
            "{}:{}",
            a.remote.as_deref().unwrap_or_default(),
            a.branch.as_deref().unwrap_or_default()
        );
        return Ok((refspec, a.positional.first().cloned()));
    }
    match a.positional.as_slice() {
        [] => bail!("Missing REFSPEC argument (REMOTE:BRANCH, :BRANCH, REMOTE: or a container image reference)"),
        [refspec] => Ok((refspec.clone(), None)),
        [refspec, revision] => Ok((refspec.clone(), Some(revision.clone()))),
        _ => bail!("Too many arguments"),
    }
}

/// The `Rebase` options; downgrades are allowed unless `--disallow-downgrade`.
pub(crate) fn options(a: &RebaseArgs, revision: Option<&str>, ctx: &Ctx) -> DeployOptions {
    DeployOptions {
        allow_downgrade: Some(!a.disallow_downgrade),
        reboot: flag(a.reboot),
        skip_purge: flag(a.skip_purge),
        cache_only: flag(a.common.cache_only),
        download_only: flag(a.common.download_only),
        lock_finalization: flag(a.common.lock_finalization),
        bypass_driver: flag(a.common.bypass_driver),
        revision: revision.map(str::to_string),
        initiating_command_line: ctx.cmdline(),
        ..Default::default()
    }
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &RebaseArgs) -> Result<i32> {
    let (refspec, revision) = target(a, &ctx.program)?;
    let os = client.os(ctx.stateroot.as_deref()).await?;
    let f = Flow::deployment(a.reboot, false, &a.common, ctx);
    let opts = options(a, revision.as_deref(), ctx);
    flow::run_deployment_txn(client, &f, os.rebase(&opts, &refspec, &[])).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> RebaseArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Rebase(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refspec_and_revision() {
        let a = parse(&["strata", "rebase", "fedora:fedora/41/x86_64/silverblue"]);
        assert_eq!(
            target(&a, "strata").unwrap(),
            ("fedora:fedora/41/x86_64/silverblue".into(), None)
        );
        let a = parse(&["strata", "rebase", "os:stable", "abc"]);
        let (r, rev) = target(&a, "strata").unwrap();
        assert_eq!((r.as_str(), rev.as_deref()), ("os:stable", Some("abc")));
        let o = options(&a, rev.as_deref(), &Ctx::default());
        assert_eq!(o.revision.as_deref(), Some("abc"));
        assert_eq!(o.allow_downgrade, Some(true));
    }

    #[test]
    fn zincati_oci_rebase() {
        let a = parse(&[
            "rpm-ostree",
            "rebase",
            "--lock-finalization",
            "ostree-image-signed:docker://quay.io/fedora/fedora-coreos:stable",
            "sha256:0123",
            "--disallow-downgrade",
        ]);
        let (r, rev) = target(&a, "rpm-ostree").unwrap();
        assert_eq!(
            r,
            "ostree-image-signed:docker://quay.io/fedora/fedora-coreos:stable"
        );
        let o = options(&a, rev.as_deref(), &Ctx::default());
        assert_eq!(o.revision.as_deref(), Some("sha256:0123"));
        assert_eq!(o.allow_downgrade, Some(false));
        assert_eq!(o.lock_finalization, Some(true));
    }

    #[test]
    fn branch_and_remote() {
        let a = parse(&["strata", "rebase", "-b", "testing"]);
        assert_eq!(target(&a, "strata").unwrap().0, ":testing");
        let a = parse(&["strata", "rebase", "-m", "mirror"]);
        assert_eq!(target(&a, "strata").unwrap().0, "mirror:");
        let a = parse(&[
            "strata", "rebase", "--remote", "mirror", "--branch", "os/next", "abc",
        ]);
        assert_eq!(
            target(&a, "strata").unwrap(),
            ("mirror:os/next".into(), Some("abc".into()))
        );
        let a = parse(&["strata", "rebase", "-b", "x", "a", "b"]);
        assert!(target(&a, "strata").is_err());
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "strata",
            "rebase",
            "os:x",
            "-r",
            "--skip-purge",
            "-C",
            "--download-only",
            "--bypass-driver",
        ]);
        let o = options(&a, None, &Ctx::default());
        for (k, v) in [
            ("reboot", o.reboot),
            ("skip-purge", o.skip_purge),
            ("cache-only", o.cache_only),
            ("download-only", o.download_only),
            ("bypass-driver", o.bypass_driver),
        ] {
            assert_eq!(v, Some(true), "{k}");
        }
        assert!(o.revision.is_none());
    }

    #[test]
    fn errors() {
        let a = parse(&["strata", "rebase"]);
        assert!(target(&a, "strata")
            .unwrap_err()
            .to_string()
            .starts_with("Missing REFSPEC"));
        assert!(Cli::try_parse_from(["strata", "rebase", "a", "b", "c"]).is_err());
        let a = parse(&["strata", "rebase", "os:x", "--custom-origin-url", "u"]);
        assert!(target(&a, "strata").is_err());
        let a = parse(&["strata", "rebase", "os:x", "--experimental"]);
        assert!(target(&a, "strata").is_err());
    }
}
