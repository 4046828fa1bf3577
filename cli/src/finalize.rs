//! `finalize-deployment CHECKSUM`: unlock the staged deployment and reboot into it.

use anyhow::{bail, Result};
use strata_api::options::FinalizeOptions;

use crate::args::FinalizeArgs;
use crate::client::Client;
use crate::flow::{self, flag, Ctx};

pub(crate) fn options(a: &FinalizeArgs, ctx: &Ctx) -> Result<FinalizeOptions> {
    let checksum = match &a.checksum {
        Some(c) if !c.is_empty() => Some(c.clone()),
        _ if a.allow_missing_checksum => None,
        _ => bail!(
            "A checksum of the staged deployment is required (or use --allow-missing-checksum)"
        ),
    };
    Ok(FinalizeOptions {
        checksum,
        allow_missing_checksum: flag(a.allow_missing_checksum),
        allow_unlocked: flag(a.allow_unlocked),
        initiating_command_line: ctx.cmdline(),
    })
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &FinalizeArgs) -> Result<i32> {
    let opts = options(a, ctx)?;
    let os = client.os(ctx.stateroot.as_deref()).await?;
    flow::run_txn(client, ctx.quiet, os.finalize_deployment(&opts)).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> FinalizeArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::FinalizeDeployment(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn checksum_required() {
        let o = options(
            &parse(&["rpm-ostree", "finalize-deployment", "abc"]),
            &Ctx::default(),
        )
        .unwrap();
        assert_eq!(o.checksum.as_deref(), Some("abc"));
        assert_eq!(o.allow_missing_checksum, None);
        assert_eq!(o.allow_unlocked, None);
        assert!(options(&parse(&["strata", "finalize-deployment"]), &Ctx::default()).is_err());
        let o = options(
            &parse(&[
                "strata",
                "finalize-deployment",
                "--allow-missing-checksum",
                "--allow-unlocked",
            ]),
            &Ctx::default(),
        )
        .unwrap();
        assert!(o.checksum.is_none());
        assert_eq!(o.allow_missing_checksum, Some(true));
        assert_eq!(o.allow_unlocked, Some(true));
    }

    #[test]
    fn digest_argument() {
        let o = options(
            &parse(&["strata", "finalize-deployment", "sha256:ff"]),
            &Ctx::default(),
        )
        .unwrap();
        assert_eq!(o.checksum.as_deref(), Some("sha256:ff"));
    }
}
