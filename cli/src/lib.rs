//! strata: the rpm-ostree-compatible command line client of stratad.
//!
//! [`run`] parses rpm-ostree's verbs and flags ([`args`]), rejects what the client cannot do
//! before touching the bus, connects to stratad on the system bus ([`client`]), and runs the
//! verb: read-only ones read properties ([`status`], `kargs` without edits), mutating ones
//! start a transaction and follow it to its end ([`flow`], [`transaction`], [`progress`]).
//! The same binary installed as `rpm-ostree` behaves identically.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches};

pub mod args;
mod cancel;
mod cleanup;
mod client;
mod db;
mod deploy;
mod docs;
mod errors;
mod finalize;
mod flow;
mod kargs;
mod packages;
mod progress;
mod rebase;
mod reload;
mod repos;
mod rollback;
mod status;
mod transaction;
mod unsupported;
mod upgrade;

use args::{Cli, Command};
use flow::Ctx;

/// The name we were invoked as: `rpm-ostree` through the compatibility symlink, else `strata`.
pub fn program_name(argv0: Option<&OsString>) -> String {
    match argv0
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
    {
        Some("rpm-ostree") => "rpm-ostree".into(),
        _ => "strata".into(),
    }
}

/// Parse `args` (including argv[0]); `Err` is a clap error to print as is.
pub fn parse(args: &[OsString]) -> Result<Cli, clap::Error> {
    let program = program_name(args.first());
    let matches = Cli::command()
        .bin_name(&program)
        .try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Checks that need no daemon: unsupported verbs and flags, missing arguments, `--sysroot`.
fn preflight(cli: &Cli, program: &str) -> Result<()> {
    client::check_global(&cli.global)?;
    match &cli.command {
        Command::Upgrade(a) => upgrade::validate(a, program),
        Command::Deploy(a) => deploy::plan(a, program).map(|_| ()),
        Command::Rebase(a) => rebase::target(a, program).map(|_| ()),
        Command::Cleanup(a) => cleanup::elements(a).map(|_| ()),
        Command::FinalizeDeployment(a) => finalize::options(a, &Ctx::default()).map(|_| ()),
        _ => Ok(()),
    }
}

/// Run the command line `args` (including argv[0]) and return the exit code: 0, 1, or 77
/// (nothing changed / a deployment is pending). Errors are for the caller to print.
pub async fn run(args: Vec<OsString>) -> Result<i32> {
    let program = program_name(args.first());
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return Ok(code);
        }
    };
    match &cli.command {
        Command::Other(argv) => return unsupported::run(&program, argv),
        Command::GenerateDocs(a) => return docs::run(a),
        Command::Db(_) => return db::exec(&args),
        _ => {}
    }
    preflight(&cli, &program)?;

    let ctx = Ctx {
        program: program.clone(),
        quiet: cli.global.quiet,
        stateroot: cli.global.stateroot.clone(),
        cmdline: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let client = client::Client::connect(&program).await?;
    match &cli.command {
        Command::Status(a) => status::run(&client, a, ctx.stateroot.as_deref()).await,
        Command::Upgrade(a) => upgrade::run(&client, &ctx, a).await,
        Command::Deploy(a) => deploy::run(&client, &ctx, a).await,
        Command::Rebase(a) => rebase::run(&client, &ctx, a).await,
        Command::Rollback(a) => rollback::run(&client, &ctx, a).await,
        Command::Install(a) => packages::install(&client, &ctx, a).await,
        Command::Uninstall(a) => packages::uninstall(&client, &ctx, a).await,
        Command::Reset(a) => packages::reset(&client, &ctx, a).await,
        Command::Kargs(a) => kargs::run(&client, &ctx, a).await,
        Command::Cleanup(a) => cleanup::run(&client, &ctx, a).await,
        Command::Cancel => cancel::run(&client, &ctx).await,
        Command::Reload => reload::run(&client).await,
        Command::FinalizeDeployment(a) => finalize::run(&client, &ctx, a).await,
        Command::RefreshMd(a) => repos::refresh_md(&client, &ctx, a).await,
        Command::Search(a) => repos::search(&client, &ctx, a).await,
        Command::Other(_) | Command::GenerateDocs(_) | Command::Db(_) => {
            unreachable!("handled above")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn invoked_as_rpm_ostree() {
        assert_eq!(
            program_name(Some(&"/usr/bin/rpm-ostree".into())),
            "rpm-ostree"
        );
        assert_eq!(program_name(Some(&"strata".into())), "strata");
        assert_eq!(program_name(Some(&"/x/whatever".into())), "strata");
        assert_eq!(program_name(None), "strata");
        let e = parse(&argv(&["/usr/bin/rpm-ostree", "status", "--bogus"])).unwrap_err();
        assert!(e.to_string().contains("rpm-ostree status"), "{e}");
    }

    #[test]
    fn status_flags() {
        let cli = parse(&argv(&[
            "strata",
            "status",
            "-v",
            "-b",
            "--json",
            "--pending-exit-77",
        ]))
        .unwrap();
        let Command::Status(a) = cli.command else {
            panic!()
        };
        assert!(a.verbose && a.booted && a.json && a.pending_exit_77);
        let cli = parse(&argv(&["strata", "status", "-J", "$.deployments[0].id"])).unwrap();
        let Command::Status(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.jsonpath.as_deref(), Some("$.deployments[0].id"));
        let cli = parse(&argv(&["strata", "status", "--jsonpath=$.x", "-a", "-p"])).unwrap();
        let Command::Status(a) = cli.command else {
            panic!()
        };
        assert!(a.advisories && a.pretty);
        assert!(parse(&argv(&["strata", "status", "--json", "--jsonpath", "$"])).is_err());
    }

    #[test]
    fn global_options_before_and_after_the_verb() {
        let cli = parse(&argv(&[
            "strata",
            "-q",
            "status",
            "--sysroot=/",
            "--os",
            "fedora",
        ]))
        .unwrap();
        assert!(cli.global.quiet);
        assert_eq!(cli.global.stateroot.as_deref(), Some("fedora"));
        assert_eq!(cli.global.sysroot.as_deref(), Some(Path::new("/")));
        let cli = parse(&argv(&["strata", "--stateroot=fcos", "upgrade", "--quiet"])).unwrap();
        assert!(cli.global.quiet);
        assert_eq!(cli.global.stateroot.as_deref(), Some("fcos"));
    }

    #[test]
    fn version_and_help_exit_zero() {
        let e = parse(&argv(&["strata", "--version"])).unwrap_err();
        assert!(!e.use_stderr());
        let e = parse(&argv(&["strata", "deploy", "--help"])).unwrap_err();
        assert!(!e.use_stderr());
        let e = parse(&argv(&["strata"])).unwrap_err();
        assert!(
            e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }

    #[test]
    fn simple_verbs_parse() {
        for v in [
            &["strata", "cancel"][..],
            &["strata", "reload"],
            &["strata", "rollback", "--reboot"],
            &["strata", "update", "--check"],
            &["strata", "finalize-deployment", "abc", "--allow-unlocked"],
            &["strata", "cleanup", "-m"],
            &["strata", "kargs", "--import-proc-cmdline", "--append=x"],
        ] {
            assert!(parse(&argv(v)).is_ok(), "{v:?}");
        }
        assert!(parse(&argv(&["strata", "cancel", "extra"])).is_err());
    }

    #[test]
    fn preflight_catches_errors_before_the_bus() {
        let check = |a: &[&str]| {
            let cli = parse(&argv(a)).unwrap();
            preflight(&cli, "strata").map_err(|e| e.to_string())
        };
        assert!(check(&["strata", "status"]).is_ok());
        assert!(check(&["strata", "status", "--sysroot", "/srv/sysroot"]).is_err());
        assert!(check(&["strata", "cleanup"]).is_err());
        assert!(check(&["strata", "deploy"]).is_err());
        assert!(check(&["strata", "rebase"]).is_err());
        assert!(check(&["strata", "upgrade", "--install=x"]).is_err());
        assert!(check(&["strata", "finalize-deployment"]).is_err());
        assert!(check(&["strata", "kargs", "--delete=x", "--deploy-index=2"]).is_ok());
        assert!(check(&["strata", "deploy", "", "--register-driver=Zincati"]).is_ok());
    }

    #[tokio::test]
    async fn exit_codes_without_a_daemon() {
        // Usage errors exit 1 (as rpm-ostree), --help 0, unsupported verbs are errors.
        assert_eq!(
            run(argv(&["strata", "status", "--bogus"])).await.unwrap(),
            1
        );
        assert_eq!(run(argv(&["strata", "--help"])).await.unwrap(), 0);
        let e = run(argv(&["rpm-ostree", "override", "remove", "x"]))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"rpm-ostree override\" is not supported yet: base package overrides come with a later release"
        );
    }

    #[tokio::test]
    async fn unreachable_daemon_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("no-bus");
        // nextest runs each test in its own process, so setting the variable is contained.
        let addr = format!("unix:path={}", sock.display());
        let e = with_bus_address(&addr, || run(argv(&["strata", "status"])))
            .await
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("Could not connect to stratad on the system bus:"),
            "{msg}"
        );
        assert!(msg.ends_with("(systemctl status stratad)"), "{msg}");
    }

    async fn with_bus_address<F, Fut>(addr: &str, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future,
    {
        std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", addr);
        f().await
    }
}
