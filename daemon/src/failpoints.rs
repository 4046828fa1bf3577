//! Crash-safety failpoints (`fail` crate; active with the `failpoints` feature, configured
//! through the `FAILPOINTS` environment variable, e.g. `transaction::pull=sleep(60000)`).
//!
//! `transaction::lock` fires before the worker opens and locks the sysroot; the others fire as
//! the engine begins the matching step: `transaction::pull` (pulling / fetching history),
//! `transaction::deploy` (writing or staging the deployment), `transaction::write` (writing the
//! bootloader entries and deployment list, or removing deployments). Layering adds
//! `transaction::solve` (resolving dependencies), `transaction::import` (importing packages),
//! `transaction::scripts` (running scriptlets), `transaction::rpmdb` (writing the rpmdb) and
//! `transaction::commit` (writing the layered commit).

use strata_core::Event;

pub(crate) fn lock() {
    fail::fail_point!("transaction::lock");
}

pub(crate) fn on_event(e: &Event) {
    let Event::TaskBegin(t) = e else { return };
    let point = if t.starts_with("Pulling") || t.starts_with("Fetching") {
        "transaction::pull"
    } else if t == "Writing deployment" || t == "Staging deployment" {
        "transaction::deploy"
    } else if t == "Writing bootloader entries" || t.starts_with("Removing") {
        "transaction::write"
    } else if t == "Resolving dependencies" {
        "transaction::solve"
    } else if t.starts_with("Importing packages") {
        "transaction::import"
    } else if t.starts_with("Running ") && t.ends_with(" scripts") {
        "transaction::scripts"
    } else if t == "Writing rpmdb" {
        "transaction::rpmdb"
    } else if t == "Writing OSTree commit" {
        "transaction::commit"
    } else {
        return;
    };
    hit(point);
}

// Without the `failpoints` feature the macro expands to nothing.
#[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
fn hit(point: &str) {
    fail::fail_point!(point);
}
