//! `rollback`: make the previous deployment the default again.

use anyhow::Result;
use strata_api::options::RollbackOptions;

use crate::args::RollbackArgs;
use crate::client::Client;
use crate::flow::{self, flag, Ctx, Flow};

pub(crate) fn options(a: &RollbackArgs, ctx: &Ctx) -> RollbackOptions {
    RollbackOptions {
        reboot: flag(a.reboot),
        initiating_command_line: ctx.cmdline(),
    }
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &RollbackArgs) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    let f = Flow {
        reboot: a.reboot,
        quiet: ctx.quiet,
        ..Default::default()
    };
    flow::run_deployment_txn(client, &f, os.rollback(&options(a, ctx))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    #[test]
    fn reboot_flag() {
        let Command::Rollback(a) = Cli::try_parse_from(["strata", "rollback", "-r"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(options(&a, &Ctx::default()).reboot, Some(true));
        let Command::Rollback(a) = Cli::try_parse_from(["strata", "rollback"]).unwrap().command
        else {
            panic!()
        };
        assert!(options(&a, &Ctx::default()).reboot.is_none());
    }
}
