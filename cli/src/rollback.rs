//! `rollback`: make the previous deployment the default again.

use anyhow::Result;

use crate::args::RollbackArgs;
use crate::client::Client;
use crate::flow::{self, set_flag, Ctx, Flow, Options};

pub(crate) fn options(a: &RollbackArgs, ctx: &Ctx) -> Options {
    let mut o = ctx.base_options();
    set_flag(&mut o, "reboot", a.reboot);
    o
}

pub(crate) async fn run(client: &Client, ctx: &Ctx, a: &RollbackArgs) -> Result<i32> {
    let os = client.os(ctx.stateroot.as_deref()).await?;
    let f = Flow {
        reboot: a.reboot,
        quiet: ctx.quiet,
        ..Default::default()
    };
    flow::run_deployment_txn(client, &f, os.rollback(options(a, ctx))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use zbus::zvariant::Value;

    #[test]
    fn reboot_flag() {
        let Command::Rollback(a) = Cli::try_parse_from(["strata", "rollback", "-r"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(options(&a, &Ctx::default())["reboot"], Value::Bool(true));
        let Command::Rollback(a) = Cli::try_parse_from(["strata", "rollback"]).unwrap().command
        else {
            panic!()
        };
        assert!(!options(&a, &Ctx::default()).contains_key("reboot"));
    }
}
