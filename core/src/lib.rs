//! Strata's deployment engine: everything that touches an ostree sysroot, with no D-Bus.
//!
//! Operations take a [`Sysroot`] (open one per thread: libostree objects are not `Send`) and an
//! [`OpContext`] for progress and cancellation, and return an [`Outcome`]. Each leaves the
//! deployment list and bootloader entries unchanged when it fails; only libostree's atomic swap
//! changes them.

pub mod bootconfig;
pub mod cleanup;
pub mod commit;
pub mod db;
pub mod deploy;
pub mod finalize;
pub mod image;
pub mod kargs;
pub mod layering;
pub mod origin;
pub mod packages;
mod prepare;
pub mod progress;
mod pull;
pub mod rebase;
pub mod repos;
pub mod rollback;
pub mod stage;
pub mod status;
pub mod sysroot;
pub mod update;
pub mod upgrade;
pub mod variant;

pub use bootconfig::{kargs, KargsOptions};
pub use cleanup::{cleanup, CleanupOptions};
pub use deploy::{deploy, DeployOptions, Revision};
pub use packages::{pkg_change, PackageChange};
pub use progress::{is_cancelled, Cancelled, DownloadProgress, Event, OpContext};
pub use rebase::{rebase, RebaseOptions};
pub use rollback::{rollback, RollbackOptions};
pub use stage::Outcome;
pub use sysroot::Sysroot;
pub use upgrade::{upgrade, UpgradeOptions};
