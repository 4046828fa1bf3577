//! VM end-to-end tests (issue 4): real boots of a test OS under QEMU (TCG), driven by a
//! control script on a second disk, asserted from the host through serial-console markers.
//!
//! Run them (as root) with `make vm-check` (or `cargo nextest run -p strata-tests -E
//! 'binary(vm)'` after `cargo build --workspace --bins`); `make check` runs `make vm-check`
//! after the other tests.
//! See `strata_tests::vm` for what the images contain and what works.

mod boot;
mod finalize;
mod images;
mod kargs;
mod layering;
mod powercut;
mod systemd;
mod upgrade;
