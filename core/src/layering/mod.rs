//! Client-side package layering (DESIGN.md, "The core, step by step", step 4): RPMs imported
//! into the package cache as ostree commits, the way rpm-ostree does it, so a host can move
//! between the two.

pub mod assemble;
pub mod import;
pub mod nevra;
mod owners;
pub mod paths;
pub mod rpmdb;
pub mod scripts;

pub use assemble::{assemble, LayerRequest, Layered};
pub use import::{import_rpm, ImportedPackage, RepoSource};
pub use nevra::Nevra;

/// A path or name from a package, escaped and bounded for an error message or a log line
/// (packages are untrusted input).
pub fn escape_for_message(s: &str) -> String {
    strata_api::text::printable(s, 512)
}
