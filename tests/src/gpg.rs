//! Throwaway GPG signing keys for signed-commit tests.
//!
//! Each [`GpgKey`] lives in its own GnuPG home directory (so two keys never see each other) and
//! is an ed25519 signing key without passphrase; libostree 2022.7's gpgme verifies ed25519
//! signatures fine. Dropping the key stops the `gpg-agent` that signing started and deletes the
//! home directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use crate::cmd;

/// GnuPG puts its agent socket in the home directory; a Unix socket path must fit in 108 bytes.
/// Homes longer than this are created under `/tmp` instead.
const MAX_HOMEDIR_LEN: usize = 80;

/// What [`crate::TestRepo`] needs to sign a commit: a key id and the GnuPG home holding it.
///
/// Plain data (cheap to clone); the [`GpgKey`] it came from must outlive its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpgSigner {
    /// Full fingerprint of the signing key (`--gpg-sign=`).
    pub key_id: String,
    /// GnuPG home directory (`--gpg-homedir=`).
    pub homedir: PathBuf,
}

/// A freshly generated GPG signing key in its own GnuPG home directory.
#[derive(Debug)]
pub struct GpgKey {
    home: tempfile::TempDir,
    fingerprint: String,
    public_key: PathBuf,
}

impl GpgKey {
    /// Generates a new ed25519 signing key in a new home directory inside `dir` (or under
    /// `/tmp` when `dir` is too long for GnuPG's socket paths), and exports its public key.
    #[context("Generating a GPG test key in {}", dir.display())]
    pub fn generate(dir: &Path) -> Result<GpgKey> {
        crate::init();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let parent = if dir.as_os_str().len() + 16 <= MAX_HOMEDIR_LEN {
            dir.to_path_buf()
        } else {
            PathBuf::from("/tmp")
        };
        fs::create_dir_all(&parent).with_context(|| format!("Creating {}", parent.display()))?;
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in(&parent)
            .with_context(|| format!("Creating a GnuPG home in {}", parent.display()))?;
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700))
            .context("Setting GnuPG home permissions")?;

        let uid = format!("Strata Test {n} <test{n}@strata.invalid>");
        cmd::run(
            gpg(home.path())
                .args(["--pinentry-mode", "loopback", "--passphrase", ""])
                .args(["--quick-gen-key", &uid, "ed25519", "sign", "never"]),
        )?;
        let listing = cmd::run(gpg(home.path()).args(["--with-colons", "--list-secret-keys"]))?;
        let fingerprint = parse_fingerprint(&listing).ok_or_else(|| {
            anyhow!("No fingerprint in gpg --list-secret-keys output:\n{listing}")
        })?;
        let armored = cmd::run(gpg(home.path()).args(["--armor", "--export", &fingerprint]))?;
        let public_key = home.path().join("public.asc");
        fs::write(&public_key, armored)
            .with_context(|| format!("Writing {}", public_key.display()))?;
        Ok(GpgKey {
            home,
            fingerprint,
            public_key,
        })
    }

    /// Full fingerprint of the key (usable as `--gpg-sign=` key id).
    pub fn key_id(&self) -> &str {
        &self.fingerprint
    }

    /// The GnuPG home directory holding the secret key.
    pub fn homedir(&self) -> &Path {
        self.home.path()
    }

    /// ASCII-armored public key, for `ostree remote add --gpg-import=`.
    pub fn public_key_path(&self) -> &Path {
        &self.public_key
    }

    /// The key id and home, to hand to [`crate::TestRepo::set_signer`] or
    /// [`crate::OsRelease::sign_with`].
    pub fn signer(&self) -> GpgSigner {
        GpgSigner {
            key_id: self.fingerprint.clone(),
            homedir: self.home.path().to_path_buf(),
        }
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let mut cmd = Command::new("gpgconf");
        cmd.arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"]);
        if let Err(e) = cmd::run(&mut cmd) {
            tracing::debug!("Stopping gpg-agent: {e:#}");
        }
    }
}

/// A `gpg --batch` command using `home`.
fn gpg(home: &Path) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.arg("--batch").arg("--homedir").arg(home);
    cmd
}

/// The first `fpr` record of `gpg --with-colons` output.
fn parse_fingerprint(listing: &str) -> Option<String> {
    listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|rest| rest.split(':').find(|f| !f.is_empty()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_from_colons() {
        let listing = "sec:u:255:22:15EDB3C62097A1C8:1795323028:::u:::scSC:::+:::ed25519:::0:\n\
                       fpr:::::::::BB7E69B8A29BCDFFB9E537C815EDB3C62097A1C8:\n\
                       grp:::::::::1234:\n";
        assert_eq!(
            parse_fingerprint(listing).as_deref(),
            Some("BB7E69B8A29BCDFFB9E537C815EDB3C62097A1C8")
        );
        assert_eq!(parse_fingerprint("sec:u\n"), None);
    }
}
