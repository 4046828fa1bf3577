//! `finalize-deployment CHECKSUM`: unlock the staged deployment and reboot into it.

use anyhow::{bail, Result};
use zbus::zvariant::Value;

use crate::args::FinalizeArgs;
use crate::client::Client;
use crate::flow::{self, set_flag, Ctx, Options};

pub(crate) fn options(a: &FinalizeArgs, ctx: &Ctx) -> Result<Options> {
    let mut o = ctx.base_options();
    match &a.checksum {
        Some(c) if !c.is_empty() => {
            o.insert("checksum", Value::from(c.clone()));
        }
        _ if a.allow_missing_checksum => {}
        _ => bail!(
            "A checksum of the staged deployment is required (or use --allow-missing-checksum)"
        ),
    }
    set_flag(&mut o, "allow-missing-checksum", a.allow_missing_checksum);
    set_flag(&mut o, "allow-unlocked", a.allow_unlocked);
    Ok(o)
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &FinalizeArgs) -> Result<i32> {
    let opts = options(a, ctx)?;
    let os = client.os(ctx.stateroot.as_deref()).await?;
    flow::run_txn(client, ctx.quiet, os.finalize_deployment(opts)).await?;
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
        assert_eq!(o["checksum"], Value::from("abc"));
        assert_eq!(o.len(), 2);
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
        assert!(!o.contains_key("checksum"));
        assert_eq!(o["allow-missing-checksum"], Value::Bool(true));
        assert_eq!(o["allow-unlocked"], Value::Bool(true));
    }

    #[test]
    fn digest_argument() {
        let o = options(
            &parse(&["strata", "finalize-deployment", "sha256:ff"]),
            &Ctx::default(),
        )
        .unwrap();
        assert_eq!(o["checksum"], Value::from("sha256:ff"));
    }
}
