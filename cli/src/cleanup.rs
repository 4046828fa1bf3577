//! `cleanup`: remove the pending or rollback deployment, temporary data, cached metadata.

use anyhow::{bail, Result};

use crate::args::CleanupArgs;
use crate::client::Client;
use crate::flow::{self, Ctx};

/// The `Cleanup` elements the flags ask for; at least one is required.
pub(crate) fn elements(a: &CleanupArgs) -> Result<Vec<&'static str>> {
    let mut e = Vec::new();
    if a.base {
        e.push("base");
    }
    if a.pending {
        e.push("pending-deploy");
    }
    if a.rollback {
        e.push("rollback-deploy");
    }
    if a.repomd {
        e.push("repomd");
    }
    if e.is_empty() {
        bail!("At least one cleanup option must be specified (-b, -p, -r or -m)");
    }
    Ok(e)
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &CleanupArgs) -> Result<i32> {
    let elements = elements(a)?;
    let os = client.os(ctx.stateroot.as_deref()).await?;
    flow::run_txn(client, ctx.quiet, os.cleanup(&elements)).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> CleanupArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Cleanup(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_to_elements() {
        assert_eq!(
            elements(&parse(&["strata", "cleanup", "-p"])).unwrap(),
            ["pending-deploy"]
        );
        assert_eq!(
            elements(&parse(&["strata", "cleanup", "-b", "-p", "-r", "-m"])).unwrap(),
            ["base", "pending-deploy", "rollback-deploy", "repomd"]
        );
        assert_eq!(
            elements(&parse(&["strata", "cleanup", "--rollback", "--repomd"])).unwrap(),
            ["rollback-deploy", "repomd"]
        );
        assert_eq!(
            elements(&parse(&["strata", "cleanup", "-bp"])).unwrap(),
            ["base", "pending-deploy"]
        );
    }

    #[test]
    fn one_flag_required() {
        let e = elements(&parse(&["strata", "cleanup"])).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("At least one cleanup option must be specified"));
    }
}
