//! `make demo`: a walk through the engine on a throwaway sandbox.
//!
//! Builds a test OS repository with two releases served over HTTP on loopback, a sysroot with
//! release 1 deployed, and drives `strata-core` through status, upgrade --check, upgrade,
//! kargs, rollback and status --json, printing what a person would see. The daemon and the
//! `strata` CLI come with the next issue; until then the demo calls the engine in-process.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use strata_core::kargs::KargsEdit;
use strata_core::status::StatusReport;
use strata_core::{Event, OpContext, Outcome, Sysroot};
use strata_tests::{Fixture, FixtureConfig, OsRelease};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn heading(cmd: &str) {
    println!("\n\x1b[1m$ {cmd}\x1b[0m");
}

/// Print progress events the way a terminal client would.
fn printer() -> OpContext {
    OpContext::new(
        |e| match e {
            Event::Message(m) => println!("{m}"),
            Event::TaskBegin(t) => println!("{t}..."),
            Event::TaskEnd(_) => {}
            Event::Download(d) => {
                print!(
                    "\r  receiving objects: {}/{} ({} bytes)",
                    d.fetched, d.requested, d.bytes_transferred
                );
                let _ = std::io::stdout().flush();
            }
            Event::ProgressEnd => println!(),
            Event::Percent { text, percent } => println!("{text} {percent}%"),
        },
        strata_tests::gio::Cancellable::new(),
    )
}

fn print_status(report: &StatusReport) {
    println!("State: idle");
    println!("Deployments:");
    for d in &report.deployments {
        let mark = if d.booted { "●" } else { " " };
        println!(
            "{mark} {}",
            d.origin.as_deref().unwrap_or("(unknown origin)")
        );
        println!(
            "                  Version: {} (timestamp {})",
            d.version.as_deref().unwrap_or("-"),
            d.timestamp
        );
        println!("                   Commit: {}", d.checksum);
        if let Some(p) = &d.pending_base_checksum {
            println!(
                "             Pending base: {} ({})",
                p,
                d.pending_base_version.as_deref().unwrap_or("-")
            );
        }
        println!();
    }
}

/// What the outcome adds to the engine's own messages.
fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Unchanged => "No changes.".into(),
        Outcome::UpdateAvailable { checksum, .. } => format!("(commit {checksum})"),
        Outcome::Downloaded { checksum, .. } => format!("Downloaded {checksum}"),
        Outcome::Deployed { version, .. } => format!(
            "Version {} is the default for the next boot",
            version.as_deref().unwrap_or("-")
        ),
        Outcome::Changed(_) => "Done.".into(),
    }
}

fn run() -> Result<()> {
    let t0 = Instant::now();
    println!("Creating a sandbox: test OS repository, HTTP server on loopback, sysroot...");
    let fx = Fixture::new(&FixtureConfig {
        http: true,
        release: OsRelease::new("1").extra_files(500),
        ..Default::default()
    })?;
    fx.commit(
        &OsRelease::new("2")
            .extra_files(500)
            .extra_files_seed("release-2"),
    )?;
    let path = fx.sysroot()?.path().to_path_buf();
    println!(
        "Sandbox ready in {:.1}s: sysroot {}, remote testos at {}",
        t0.elapsed().as_secs_f64(),
        path.display(),
        fx.url()
    );
    let open = || Sysroot::open(&path);

    heading("status");
    print_status(&strata_core::status::load(&open()?)?);

    heading("upgrade --check");
    let o = strata_core::upgrade(
        &open()?,
        &strata_core::UpgradeOptions {
            check_only: true,
            ..Default::default()
        },
        &printer(),
    )?;
    println!("{}", describe(&o));

    heading("upgrade");
    let o = strata_core::upgrade(&open()?, &Default::default(), &printer())?;
    println!("{}", describe(&o));

    heading("status");
    print_status(&strata_core::status::load(&open()?)?);

    heading("kargs --append=demo=1");
    let o = strata_core::kargs(
        &open()?,
        &strata_core::KargsOptions {
            edit: KargsEdit {
                append: vec!["demo=1".into()],
                ..Default::default()
            },
            ..Default::default()
        },
        &printer(),
    )?;
    println!("{}", describe(&o));
    let kargs = strata_core::bootconfig::current_kargs(&open()?, None, None)?;
    println!("Kernel arguments now: {kargs}");

    heading("rollback");
    let o = strata_core::rollback(&open()?, &Default::default(), &printer())?;
    println!("{}", describe(&o));

    heading("status --json | head -20");
    let json = serde_json::to_string_pretty(&strata_core::status::load(&open()?)?)?;
    for line in json.lines().take(20) {
        println!("{line}");
    }
    println!(
        "\nDone in {:.1}s; the sandbox is removed.",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
