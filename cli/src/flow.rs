//! What every mutating verb shares: the `a{sv}` options it sends, running its transaction,
//! and judging the outcome (exit 77 when nothing changed, the reboot hint when something did).

use std::future::Future;
use std::io::Write;

use anyhow::{anyhow, Result};
use strata_api::names::EXIT_UNCHANGED;

use crate::client::Client;
use crate::transaction;

/// Who we are, for every verb: the program name, `-q`, `--stateroot`, the command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ctx {
    pub program: String,
    pub quiet: bool,
    pub stateroot: Option<String>,
    /// Sent as `initiating-command-line`, so the daemon's journal says who asked.
    pub cmdline: String,
}

impl Ctx {
    /// `initiating-command-line`, which every transaction gets.
    pub(crate) fn cmdline(&self) -> Option<String> {
        Some(self.cmdline.clone())
    }
}

/// A boolean option that is sent only when true (the daemon treats absence as false).
pub(crate) fn flag(on: bool) -> Option<bool> {
    on.then_some(true)
}

/// How a deployment-changing verb reports its end.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    pub reboot: bool,
    pub unchanged_exit_77: bool,
    pub lock_finalization: bool,
    pub quiet: bool,
    /// Printed before the reboot hint when a new deployment was made (e.g. "Kernel
    /// arguments updated.").
    pub changed_note: Option<&'static str>,
}

impl Flow {
    /// The flow of `upgrade`, `deploy` and `rebase`.
    pub(crate) fn deployment(
        reboot: bool,
        unchanged_exit_77: bool,
        common: &crate::args::DeployFlags,
        ctx: &Ctx,
    ) -> Self {
        Flow {
            reboot,
            unchanged_exit_77,
            lock_finalization: common.lock_finalization,
            quiet: ctx.quiet,
            changed_note: None,
        }
    }
}

/// The line rpm-ostree prints after a new default deployment (automation parses it).
pub(crate) const REBOOT_HINT: &str =
    "Changes queued for next boot. Run \"systemctl reboot\" to start a reboot";

/// What rpm-ostree prints instead after a verb's own note ("Kernel arguments updated.").
pub(crate) const SHORT_REBOOT_HINT: &str = "Run \"systemctl reboot\" to start a reboot";

/// What replaces the hint when the daemon manages a sysroot that is not the running system.
pub(crate) const NOT_BOOTED_NOTE: &str =
    "The sysroot is not the running system: the new deployment is used when it next boots";

/// Exit code and closing lines once the transaction succeeded; `changed` says whether the
/// default deployment is a different one now, `booted_host` whether the daemon's sysroot is
/// the one this machine runs (a reboot only means something there).
pub(crate) fn conclude(flow: &Flow, changed: bool, booted_host: bool, out: &mut dyn Write) -> i32 {
    if !changed {
        return if flow.unchanged_exit_77 {
            EXIT_UNCHANGED
        } else {
            0
        };
    }
    if !flow.quiet {
        if let Some(note) = flow.changed_note {
            let _ = writeln!(out, "{note}");
        }
        if !booted_host {
            let _ = writeln!(out, "{NOT_BOOTED_NOTE}");
        } else if !flow.reboot && !flow.lock_finalization {
            let hint = match flow.changed_note {
                Some(_) => SHORT_REBOOT_HINT,
                None => REBOOT_HINT,
            };
            let _ = writeln!(out, "{hint}");
        }
    }
    0
}

/// Start a transaction with `start` (a method call returning its address), follow it, and
/// conclude. Whether anything changed is judged by the default deployment's id before and
/// after, which does not depend on the daemon's wording.
pub(crate) async fn run_deployment_txn<F>(client: &Client, flow: &Flow, start: F) -> Result<i32>
where
    F: Future<Output = zbus::Result<String>>,
{
    let before = client.default_deployment_id().await?;
    run_txn(client, flow.quiet, start).await?;
    let after = client.default_deployment_id().await?;
    let booted_host = client.manages_booted_host().await;
    Ok(conclude(
        flow,
        before != after,
        booted_host,
        &mut std::io::stdout(),
    ))
}

/// Start and follow a transaction; `Err` is the daemon's message.
pub(crate) async fn run_txn<F>(client: &Client, quiet: bool, start: F) -> Result<()>
where
    F: Future<Output = zbus::Result<String>>,
{
    let address = match start.await {
        Ok(a) => a,
        Err(e) => return Err(client.call_error(e).await),
    };
    if address.is_empty() {
        return Err(anyhow!("The daemon did not start a transaction"));
    }
    let mut progress = transaction::progress_for_stdout(quiet);
    transaction::follow(client, &address, progress.as_mut()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(flow: &Flow, changed: bool) -> (i32, String) {
        let mut out = Vec::new();
        let code = conclude(flow, changed, true, &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn no_reboot_hint_on_a_sysroot_that_is_not_running() {
        let mut out = Vec::new();
        assert_eq!(conclude(&Flow::default(), true, false, &mut out), 0);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, format!("{NOT_BOOTED_NOTE}\n"));
    }

    #[test]
    fn unchanged_exit_codes() {
        let mut flow = Flow::default();
        assert_eq!(run(&flow, false), (0, String::new()));
        flow.unchanged_exit_77 = true;
        assert_eq!(run(&flow, false), (77, String::new()));
        assert_eq!(run(&flow, true).0, 0);
    }

    #[test]
    fn reboot_hint() {
        let mut flow = Flow::default();
        assert_eq!(run(&flow, true), (0, format!("{REBOOT_HINT}\n")));
        flow.changed_note = Some("Kernel arguments updated.");
        assert_eq!(
            run(&flow, true).1,
            "Kernel arguments updated.\nRun \"systemctl reboot\" to start a reboot\n"
        );
        flow.reboot = true;
        assert_eq!(run(&flow, true).1, "Kernel arguments updated.\n");
        flow.reboot = false;
        flow.lock_finalization = true;
        assert_eq!(run(&flow, true).1, "Kernel arguments updated.\n");
        flow.quiet = true;
        assert_eq!(run(&flow, true).1, "");
    }

    #[test]
    fn flags_are_sent_only_when_set() {
        assert_eq!(flag(false), None);
        assert_eq!(flag(true), Some(true));
    }
}
