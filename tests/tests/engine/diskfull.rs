//! Full disks (issue 9, "also prove"): a pull onto a sysroot without room, and a deployment
//! whose kernel does not fit /boot, fail with a clear error and leave the deployments and boot
//! entries unchanged; after room is made, the same operation succeeds. Each filesystem is a
//! size-limited tmpfs mounted over the fixture's directory (root only, as the suite runs).

use std::path::{Path, PathBuf};
use std::process::Command;

use strata_core::{upgrade, OpContext, Outcome, UpgradeOptions};
use strata_tests::OsRelease;

use crate::*;

/// A tmpfs of a given size mounted over `dir`, holding a copy of what `dir` had; unmounted on
/// drop (the original content underneath was never touched).
struct SmallFs {
    dir: PathBuf,
}

fn run(cmd: &mut Command) {
    let line = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bytes used below `dir`.
fn used(dir: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

impl SmallFs {
    /// Room for what `dir` holds now plus `spare` bytes.
    fn over(dir: &Path, spare: u64) -> SmallFs {
        let saved = tempfile::tempdir().unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", dir.display()))
            .arg(saved.path()));
        let size = used(dir) + spare;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir));
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", saved.path().display()))
            .arg(dir));
        SmallFs {
            dir: dir.to_path_buf(),
        }
    }

    /// Make room: grow the filesystem by `more` bytes.
    fn grow(&self, more: u64) {
        let size = used(&self.dir) + more;
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir));
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Incompressible bytes (the archive repo gzips its objects), deterministic per seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

const MB: u64 = 1 << 20;

/// Upgrading to `release` fails for lack of room on the filesystem mounted over `dir` (with
/// `spare` bytes free) and changes nothing; with room, it deploys.
fn full_then_room(release: OsRelease, dir: impl Fn(&strata_tests::Fixture) -> PathBuf, spare: u64) {
    let fx = fixture();
    let v2 = fx.commit(&release).unwrap();
    let small = SmallFs::over(&dir(&fx), spare);
    let err = assert_fails_unchanged(&fx, |s| {
        upgrade(s, &UpgradeOptions::default(), &OpContext::silent())
    });
    assert!(err.to_lowercase().contains("space"), "{err}");
    small.grow(64 * MB);
    let out = upgrade(&open(&fx), &UpgradeOptions::default(), &OpContext::silent()).unwrap();
    assert!(
        matches!(out, Outcome::Deployed { ref checksum, .. } if *checksum == v2),
        "{out:?}"
    );
}

#[test]
fn a_pull_onto_a_full_sysroot_fails_cleanly_and_succeeds_with_room() {
    full_then_room(
        OsRelease::new("2").file("usr/share/big", noise(24 * MB as usize, 7)),
        |fx| fx.sysroot().unwrap().path().to_path_buf(),
        4 * MB,
    );
}

#[test]
fn a_kernel_that_does_not_fit_boot_fails_cleanly_and_succeeds_with_room() {
    full_then_room(
        OsRelease::new("2").kernel_bytes(noise(16 * MB as usize, 11)),
        |fx| fx.sysroot().unwrap().path().join("boot"),
        2 * MB,
    );
}
