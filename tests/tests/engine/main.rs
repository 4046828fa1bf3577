//! Integration tests of the core engine against real sysroots built by the test kit.
//!
//! Each test builds its own fixture (repo, optional GPG key and HTTP server, sysroot) in a temp
//! directory and drives `strata_core` in-process.

mod cleanup;
mod deploy;
mod diskfull;
mod etc_merge;
mod gpg;
mod images;
mod kargs;
mod rebase;
mod rollback;
mod status;
mod upgrade;

use std::sync::{Arc, Mutex};

use anyhow::Result;
use strata_core::{Event, OpContext, Sysroot};
use strata_tests::{Fixture, FixtureConfig, SysrootSnapshot};

/// A fixture with release "1" deployed from a `file://` remote.
pub fn fixture() -> Fixture {
    Fixture::new(&FixtureConfig::default()).expect("fixture")
}

/// A fixture with `config`.
pub fn fixture_with(config: FixtureConfig) -> Fixture {
    Fixture::new(&config).expect("fixture")
}

/// Open the fixture's sysroot with the engine.
pub fn open(fx: &Fixture) -> Sysroot {
    Sysroot::open(fx.sysroot().expect("sysroot").path()).expect("open sysroot")
}

pub fn snapshot(fx: &Fixture) -> SysrootSnapshot {
    fx.sysroot().expect("sysroot").snapshot().expect("snapshot")
}

/// An operation context that records every event.
pub fn recording_ctx() -> (OpContext, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let ctx = OpContext::new(
        move |e| sink.lock().expect("events lock").push(e.clone()),
        strata_tests::gio::Cancellable::new(),
    );
    (ctx, events)
}

/// Run a failing operation and assert the sysroot did not change; returns the error text
/// (whole chain).
pub fn assert_fails_unchanged(
    fx: &Fixture,
    op: impl FnOnce(&Sysroot) -> Result<strata_core::Outcome>,
) -> String {
    let before = snapshot(fx);
    let sysroot = open(fx);
    let err = match op(&sysroot) {
        Ok(o) => panic!("operation succeeded unexpectedly: {o:?}"),
        Err(e) => format!("{e:#}"),
    };
    drop(sysroot);
    assert_eq!(
        before,
        snapshot(fx),
        "sysroot changed by a failed operation: {err}"
    );
    err
}

/// Read a file below the `index`th deployment.
pub fn read_in_deployment(fx: &Fixture, index: usize, rel: &str) -> Option<String> {
    let dir = fx
        .sysroot()
        .expect("sysroot")
        .deploy_dir(index)
        .expect("deploy dir");
    std::fs::read_to_string(dir.join(rel)).ok()
}

/// Path of the origin file of the `index`th deployment (`CSUM.SERIAL.origin`).
pub fn origin_file(fx: &Fixture, index: usize) -> std::path::PathBuf {
    let dir = fx
        .sysroot()
        .expect("sysroot")
        .deploy_dir(index)
        .expect("deploy dir");
    std::path::PathBuf::from(format!("{}.origin", dir.display()))
}
