//! Synthetic OS releases ([`OsRelease`]) committed to a throwaway archive repository
//! ([`TestRepo`]) with the `ostree` CLI, the way a compose server would publish them.
//!
//! The tree of every release follows the layout rpm-ostree composes have:
//!
//! ```text
//! bin -> usr/bin   sbin -> usr/sbin   lib -> usr/lib   lib64 -> usr/lib64
//! home -> var/home   root -> var/roothome   ostree -> sysroot/ostree
//! boot/ dev/ proc/ sys/ run/ tmp/ var/ sysroot/ mnt/          (empty)
//! usr/bin/strata-release            (0755, `echo <version>`)
//! usr/sbin/ usr/lib64/ usr/share/
//! usr/lib/os-release                (NAME=StrataTestOS, VERSION=<version>, ...)
//! usr/lib/modules/<kver>/vmlinuz    (kver defaults to 6.1.0-strata)
//! usr/lib/modules/<kver>/initramfs.img
//! usr/etc/os-release -> ../lib/os-release
//! usr/etc/strata-test.conf          (`version=<version>`: changes every release)
//! usr/etc/untouched.conf            (identical in every release)
//! usr/share/strata-test/data/NN/file-NNNNN   (only with `extra_files(n)`)
//! ```
//!
//! Then the release's own [`remove`](OsRelease::remove) list is applied, then its
//! [`files`](OsRelease::file).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, ensure, Context, Result};
use fn_error_context::context;
use ostree::{gio, glib};

use crate::cmd;
use crate::gpg::GpgSigner;

/// `NAME=` in every release's os-release.
pub const OS_NAME: &str = "StrataTestOS";
/// `ID=` in every release's os-release.
pub const OS_ID: &str = "stratatest";
/// Kernel version used unless [`OsRelease::kernel_version`] changes it.
pub const DEFAULT_KERNEL_VERSION: &str = "6.1.0-strata";
/// Seed of the extra data files unless [`OsRelease::extra_files_seed`] changes it.
pub const DEFAULT_EXTRA_FILES_SEED: &str = "base";
/// Directory (under the root) holding the extra data files.
pub const EXTRA_FILES_DIR: &str = "usr/share/strata-test/data";
/// Content of `/usr/etc/untouched.conf` in every release that does not override it.
pub const UNTOUCHED_CONF: &str = "# Identical in every StrataTestOS release\nkey=value\n";
/// Number of directories the extra data files are spread over.
const EXTRA_FILES_DIRS: usize = 100;

/// One entry of a release's tree (see [`OsRelease::entry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEntry {
    /// A regular file with this content and permission bits (e.g. `0o644`).
    Regular {
        /// File content.
        content: Vec<u8>,
        /// Permission bits, e.g. `0o644` or `0o755`.
        mode: u32,
    },
    /// A regular file copied from the host (e.g. a real kernel), with these permission bits.
    Copy {
        /// Host path to copy from.
        source: PathBuf,
        /// Permission bits of the copy.
        mode: u32,
    },
    /// A symbolic link with this target (stored verbatim, relative or absolute).
    Symlink(String),
    /// A directory (mode 0755). Parents of every entry are created automatically.
    Dir,
}

/// Description of one OS release: its version, commit metadata and tree.
///
/// Build it with the builder methods:
///
/// ```no_run
/// # use strata_tests::OsRelease;
/// let rel = OsRelease::new("2")
///     .extra_files(5000)
///     .file("usr/etc/foo.conf", "x\n")
///     .remove("usr/etc/untouched.conf");
/// ```
#[derive(Debug, Clone)]
pub struct OsRelease {
    /// The `version` commit metadata and os-release `VERSION`.
    pub version: String,
    /// Commit timestamp (unix seconds). `None`: one second after the previous commit made by
    /// the same [`TestRepo`] (and not before the current time).
    pub timestamp: Option<u64>,
    /// Commit subject; `None`: `StrataTestOS <version>`.
    pub subject: Option<String>,
    /// Extra string metadata (`--add-metadata-string=K=V`).
    pub metadata: Vec<(String, String)>,
    /// Extra metadata as GVariant text (`--add-metadata=K=V`), e.g. `("n", "uint32 5")`.
    pub metadata_variant: Vec<(String, String)>,
    /// Kernel version: the directory name under `/usr/lib/modules`.
    pub kernel_version: String,
    /// `/usr/lib/modules/<kver>/vmlinuz`.
    pub kernel: FileEntry,
    /// `/usr/lib/modules/<kver>/initramfs.img`.
    pub initramfs: FileEntry,
    /// Number of generated data files under [`EXTRA_FILES_DIR`].
    pub extra_files: usize,
    /// Seed of the data files' content: same seed, same objects.
    pub extra_files_seed: String,
    /// Entries added (or replacing default ones), applied after `remove`.
    pub files: Vec<(String, FileEntry)>,
    /// Default entries to delete (recursively); each must exist.
    pub remove: Vec<String>,
    /// Signing override; `None` uses the repository's signer (see [`TestRepo::set_signer`]).
    pub signing: Option<Signing>,
    /// RPMs installed into the tree (files and an rpmdb at `/usr/share/rpm`) after `files`.
    pub rpms: Vec<PathBuf>,
}

/// How a commit is signed, overriding the repository default (see [`OsRelease::sign_with`]).
#[derive(Debug, Clone)]
pub enum Signing {
    /// Do not sign, even when the repository has a signer.
    Unsigned,
    /// Sign with this key.
    Key(GpgSigner),
}

impl OsRelease {
    /// A release with default tree and metadata and version `version`.
    pub fn new(version: impl Into<String>) -> Self {
        let kernel_version = DEFAULT_KERNEL_VERSION.to_string();
        Self {
            version: version.into(),
            timestamp: None,
            subject: None,
            metadata: Vec::new(),
            metadata_variant: Vec::new(),
            kernel: FileEntry::Regular {
                content: format!("strata test kernel {kernel_version}\n").into_bytes(),
                mode: 0o644,
            },
            initramfs: FileEntry::Regular {
                content: format!("strata test initramfs {kernel_version}\n").into_bytes(),
                mode: 0o644,
            },
            kernel_version,
            extra_files: 0,
            extra_files_seed: DEFAULT_EXTRA_FILES_SEED.to_string(),
            files: Vec::new(),
            remove: Vec::new(),
            signing: None,
            rpms: Vec::new(),
        }
    }

    /// Sets an explicit commit timestamp (unix seconds), e.g. an older one for downgrade tests.
    pub fn timestamp(mut self, secs: u64) -> Self {
        self.timestamp = Some(secs);
        self
    }

    /// Sets the commit subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Adds a string commit metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Adds a commit metadata entry given as GVariant text, e.g. `("x.count", "uint32 5")`.
    pub fn metadata_variant(mut self, key: impl Into<String>, gvariant: impl Into<String>) -> Self {
        self.metadata_variant.push((key.into(), gvariant.into()));
        self
    }

    /// Sets the kernel version (`/usr/lib/modules/<kver>`).
    pub fn kernel_version(mut self, kver: impl Into<String>) -> Self {
        self.kernel_version = kver.into();
        self
    }

    /// Sets the kernel image content.
    pub fn kernel_bytes(mut self, content: impl Into<Vec<u8>>) -> Self {
        self.kernel = FileEntry::Regular {
            content: content.into(),
            mode: 0o644,
        };
        self
    }

    /// Copies the kernel image from a host file (e.g. a real `vmlinuz` for VM tests).
    pub fn kernel_from(mut self, source: impl Into<PathBuf>) -> Self {
        self.kernel = FileEntry::Copy {
            source: source.into(),
            mode: 0o644,
        };
        self
    }

    /// Sets the initramfs content.
    pub fn initramfs_bytes(mut self, content: impl Into<Vec<u8>>) -> Self {
        self.initramfs = FileEntry::Regular {
            content: content.into(),
            mode: 0o644,
        };
        self
    }

    /// Copies the initramfs from a host file.
    pub fn initramfs_from(mut self, source: impl Into<PathBuf>) -> Self {
        self.initramfs = FileEntry::Copy {
            source: source.into(),
            mode: 0o644,
        };
        self
    }

    /// Generates `n` deterministic data files under [`EXTRA_FILES_DIR`].
    pub fn extra_files(mut self, n: usize) -> Self {
        self.extra_files = n;
        self
    }

    /// Sets the seed of the data files: releases with equal seeds share those objects.
    pub fn extra_files_seed(mut self, seed: impl Into<String>) -> Self {
        self.extra_files_seed = seed.into();
        self
    }

    /// Adds (or replaces) a regular file with mode 0644. `path` is relative to the root
    /// (a leading `/` is ignored), e.g. `usr/etc/foo.conf`.
    pub fn file(self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.entry(
            path,
            FileEntry::Regular {
                content: content.into(),
                mode: 0o644,
            },
        )
    }

    /// Adds (or replaces) a regular file with mode 0755.
    pub fn executable(self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.entry(
            path,
            FileEntry::Regular {
                content: content.into(),
                mode: 0o755,
            },
        )
    }

    /// Adds (or replaces) a symlink.
    pub fn symlink(self, path: impl Into<String>, target: impl Into<String>) -> Self {
        self.entry(path, FileEntry::Symlink(target.into()))
    }

    /// Adds a directory.
    pub fn dir(self, path: impl Into<String>) -> Self {
        self.entry(path, FileEntry::Dir)
    }

    /// Adds (or replaces) any entry.
    pub fn entry(mut self, path: impl Into<String>, entry: FileEntry) -> Self {
        self.files.push((path.into(), entry));
        self
    }

    /// Removes a default entry (recursively), e.g. `usr/etc/untouched.conf`.
    pub fn remove(mut self, path: impl Into<String>) -> Self {
        self.remove.push(path.into());
        self
    }

    /// Signs this commit with `signer` whatever the repository's default.
    pub fn sign_with(mut self, signer: GpgSigner) -> Self {
        self.signing = Some(Signing::Key(signer));
        self
    }

    /// Leaves this commit unsigned whatever the repository's default.
    pub fn unsigned(mut self) -> Self {
        self.signing = Some(Signing::Unsigned);
        self
    }

    /// The content of `/usr/lib/os-release` for this release.
    pub fn os_release_text(&self) -> String {
        let v = &self.version;
        format!(
            "NAME={OS_NAME}\nID={OS_ID}\nVERSION={v}\nVERSION_ID={v}\nPRETTY_NAME={OS_NAME}-{v}\n"
        )
    }

    /// Installs these RPMs (built with [`RpmSpec`](crate::RpmSpec)) into the tree with the real
    /// `rpm`, so the commit carries them and a base rpmdb at `/usr/share/rpm`.
    pub fn rpms(mut self, rpms: impl IntoIterator<Item = PathBuf>) -> Self {
        self.rpms.extend(rpms);
        self
    }

    /// Writes this release's tree into the empty (or not yet existing) directory `root`.
    #[context("Building the tree of release {}", self.version)]
    pub fn write_tree(&self, root: &Path) -> Result<()> {
        mkdir_p(root)?;
        for dir in [
            "usr/bin",
            "usr/sbin",
            "usr/lib",
            "usr/lib64",
            "usr/etc",
            "usr/share",
            "boot",
            "dev",
            "proc",
            "sys",
            "run",
            "var",
            "sysroot",
            "mnt",
        ] {
            mkdir_p(&root.join(dir))?;
        }
        mkdir_p(&root.join("tmp"))?;
        set_mode(&root.join("tmp"), 0o1777)?;
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("home", "var/home"),
            ("root", "var/roothome"),
            ("ostree", "sysroot/ostree"),
            ("usr/etc/os-release", "../lib/os-release"),
        ] {
            write_entry(root, link, &FileEntry::Symlink(target.to_string()))?;
        }
        let regular = |content: String, mode| FileEntry::Regular {
            content: content.into_bytes(),
            mode,
        };
        let defaults = [
            (
                "usr/bin/strata-release".to_string(),
                regular(format!("#!/bin/sh\necho {}\n", self.version), 0o755),
            ),
            (
                "usr/lib/os-release".to_string(),
                regular(self.os_release_text(), 0o644),
            ),
            (
                "usr/etc/strata-test.conf".to_string(),
                regular(format!("version={}\n", self.version), 0o644),
            ),
            (
                "usr/etc/untouched.conf".to_string(),
                regular(UNTOUCHED_CONF.to_string(), 0o644),
            ),
            (
                format!("usr/lib/modules/{}/vmlinuz", self.kernel_version),
                self.kernel.clone(),
            ),
            (
                format!("usr/lib/modules/{}/initramfs.img", self.kernel_version),
                self.initramfs.clone(),
            ),
        ];
        for (path, entry) in &defaults {
            write_entry(root, path, entry)?;
        }
        write_extra_files(root, self.extra_files, &self.extra_files_seed)?;
        for path in &self.remove {
            let full = root.join(relative(path)?);
            let meta = fs::symlink_metadata(&full)
                .with_context(|| format!("Removing {path}: not in the default tree"))?;
            if meta.is_dir() {
                fs::remove_dir_all(&full)
            } else {
                fs::remove_file(&full)
            }
            .with_context(|| format!("Removing {}", full.display()))?;
        }
        for (path, entry) in &self.files {
            write_entry(root, path, entry)?;
        }
        crate::rpm::install_into_tree(root, &self.rpms)
    }
}

/// The relative path of the `index`th extra data file (see [`OsRelease::extra_files`]).
pub fn extra_file_path(index: usize) -> String {
    format!(
        "{EXTRA_FILES_DIR}/{:02}/file-{index:05}",
        index % EXTRA_FILES_DIRS
    )
}

/// The content of the `index`th extra data file for `seed`: 64 to 575 bytes of text (more for very long seeds), a pure
/// function of (seed, index).
pub fn extra_file_content(seed: &str, index: usize) -> Vec<u8> {
    // FNV-1a over the seed, then splitmix64 per 8 bytes: cheap, deterministic, well spread.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = h ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = format!("strata-test data seed={seed} index={index}\n").into_bytes();
    let len = (64 + (next() % 512) as usize).max(out.len() + 1);
    while out.len() < len - 1 {
        let word = next();
        for shift in (0..64).step_by(4) {
            out.push(b"0123456789abcdef"[((word >> shift) & 0xf) as usize]);
        }
    }
    out.truncate(len - 1);
    out.push(b'\n');
    out
}

#[context("Writing {n} extra files")]
fn write_extra_files(root: &Path, n: usize, seed: &str) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let base = root.join(EXTRA_FILES_DIR);
    for d in 0..EXTRA_FILES_DIRS.min(n) {
        mkdir_p(&base.join(format!("{d:02}")))?;
    }
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<()> {
                    for index in (t..n).step_by(threads) {
                        let path = root.join(extra_file_path(index));
                        fs::write(&path, extra_file_content(seed, index))
                            .with_context(|| format!("Writing {}", path.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow!("extra file writer panicked"))??;
        }
        Ok(())
    })
}

/// Validates a tree path: relative (a leading `/` is dropped), no `..`, not empty.
fn relative(path: &str) -> Result<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    ensure!(
        rel.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            && rel.components().any(|c| matches!(c, Component::Normal(_))),
        "Invalid tree path {path:?}: must be non-empty and stay inside the root"
    );
    Ok(rel.to_path_buf())
}

fn mkdir_p(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .with_context(|| format!("Creating directory {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("Setting mode {mode:o} on {}", path.display()))
}

/// Writes one entry at `path` under `root`, replacing whatever is there (except that a
/// directory entry keeps an existing directory).
fn write_entry(root: &Path, path: &str, entry: &FileEntry) -> Result<()> {
    let full = root.join(relative(path)?);
    if let Some(parent) = full.parent() {
        mkdir_p(parent)?;
    }
    if let Ok(meta) = fs::symlink_metadata(&full) {
        if meta.is_dir() && *entry == FileEntry::Dir {
            return Ok(());
        }
        if meta.is_dir() {
            fs::remove_dir_all(&full)
        } else {
            fs::remove_file(&full)
        }
        .with_context(|| format!("Replacing {}", full.display()))?;
    }
    match entry {
        FileEntry::Regular { content, mode } => {
            let mut f =
                fs::File::create(&full).with_context(|| format!("Creating {}", full.display()))?;
            f.write_all(content)
                .with_context(|| format!("Writing {}", full.display()))?;
            set_mode(&full, *mode)?;
        }
        FileEntry::Copy { source, mode } => {
            fs::copy(source, &full)
                .with_context(|| format!("Copying {} to {}", source.display(), full.display()))?;
            set_mode(&full, *mode)?;
        }
        FileEntry::Symlink(target) => symlink(target, &full)
            .with_context(|| format!("Creating symlink {} -> {target}", full.display()))?,
        FileEntry::Dir => mkdir_p(&full)?,
    }
    Ok(())
}

/// An `archive` mode ostree repository that releases are committed to, suitable for serving
/// over `file://` or HTTP.
#[derive(Debug)]
pub struct TestRepo {
    path: PathBuf,
    signer: Option<GpgSigner>,
    /// Timestamp of the latest commit made through this value.
    last_timestamp: Mutex<u64>,
}

impl TestRepo {
    /// Creates a new archive repository at `path` (the directory is created if needed).
    #[context("Creating archive repo at {}", path.display())]
    pub fn create(path: &Path) -> Result<Self> {
        crate::init();
        mkdir_p(path)?;
        let mut cmd = Command::new("ostree");
        cmd.arg("init").arg("--mode=archive").arg(repo_arg(path));
        cmd::run(&mut cmd)?;
        Self::open(path)
    }

    /// Uses an existing repository at `path` (any mode).
    pub fn open(path: &Path) -> Result<Self> {
        crate::init();
        let path = fs::canonicalize(path)
            .with_context(|| format!("Resolving repo path {}", path.display()))?;
        Ok(Self {
            path,
            signer: None,
            last_timestamp: Mutex::new(0),
        })
    }

    /// Sets the key that signs every commit (unless an [`OsRelease`] overrides it).
    pub fn set_signer(&mut self, signer: Option<GpgSigner>) {
        self.signer = signer;
    }

    /// The key that signs commits by default, if any.
    pub fn signer(&self) -> Option<&GpgSigner> {
        self.signer.as_ref()
    }

    /// The repository directory (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `file:///...` URL of the repository, for `ostree remote add`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// Commits `rel` on branch `ref_` (the previous head becomes the parent), updates the
    /// summary (unsigned) and returns the new commit checksum.
    #[context("Committing release {} to {ref_}", rel.version)]
    pub fn commit_release(&self, ref_: &str, rel: &OsRelease) -> Result<String> {
        let build = tempfile::Builder::new()
            .prefix("strata-tree-")
            .tempdir()
            .context("Creating a temporary tree directory")?;
        let root = build.path().join("root");
        rel.write_tree(&root)?;

        let timestamp = {
            let mut last = self
                .last_timestamp
                .lock()
                .map_err(|_| anyhow!("timestamp lock poisoned"))?;
            let ts = match rel.timestamp {
                Some(ts) => ts,
                None => unix_now()?.max(*last + 1),
            };
            *last = (*last).max(ts);
            ts
        };
        let subject = rel
            .subject
            .clone()
            .unwrap_or_else(|| format!("{OS_NAME} {}", rel.version));

        let mut cmd = Command::new("ostree");
        cmd.arg("commit")
            .arg(repo_arg(&self.path))
            .arg("--branch")
            .arg(ref_)
            .arg(format!("--tree=dir={}", root.display()))
            .args(["--owner-uid=0", "--owner-gid=0", "--no-xattrs", "--consume"])
            .arg(format!("--timestamp=@{timestamp}"))
            .arg(format!("--subject={subject}"))
            .arg(format!("--add-metadata-string=version={}", rel.version));
        for (key, value) in &rel.metadata {
            ensure!(!key.contains('='), "Metadata key {key:?} contains '='");
            cmd.arg(format!("--add-metadata-string={key}={value}"));
        }
        for (key, value) in &rel.metadata_variant {
            ensure!(!key.contains('='), "Metadata key {key:?} contains '='");
            cmd.arg(format!("--add-metadata={key}={value}"));
        }
        if root.join("usr/lib/modules").is_dir() {
            // Like rpm-ostree composes: ostree.bootable and ostree.linux metadata.
            cmd.arg("--bootable");
        }
        let signer = match &rel.signing {
            Some(Signing::Unsigned) => None,
            Some(Signing::Key(signer)) => Some(signer),
            None => self.signer.as_ref(),
        };
        if let Some(signer) = signer {
            cmd.arg(format!("--gpg-sign={}", signer.key_id))
                .arg(format!("--gpg-homedir={}", signer.homedir.display()));
        }
        let checksum = cmd::run(&mut cmd)?.trim().to_string();
        ensure!(
            checksum.len() == 64 && checksum.bytes().all(|b| b.is_ascii_hexdigit()),
            "Unexpected output of ostree commit: {checksum:?}"
        );
        self.update_summary()?;
        Ok(checksum)
    }

    /// Regenerates the (unsigned) summary file; [`commit_release`](Self::commit_release) and
    /// [`set_ref`](Self::set_ref) already do this.
    pub fn update_summary(&self) -> Result<()> {
        cmd::ostree(["summary".into(), "-u".into(), repo_arg(&self.path)])?;
        Ok(())
    }

    /// Points `ref_` at `rev` (any checksum or ref, even an older one) and updates the summary.
    #[context("Setting ref {ref_} to {rev}")]
    pub fn set_ref(&self, ref_: &str, rev: &str) -> Result<()> {
        let checksum = self.rev_parse(rev)?;
        let mut cmd = Command::new("ostree");
        cmd.arg("refs")
            .arg(repo_arg(&self.path))
            .arg("--force")
            .arg(format!("--create={ref_}"))
            .arg(checksum);
        cmd::run(&mut cmd)?;
        self.update_summary()
    }

    /// Resolves a ref (or checksum) to a commit checksum.
    pub fn rev_parse(&self, rev: &str) -> Result<String> {
        let mut cmd = Command::new("ostree");
        cmd.arg("rev-parse").arg(repo_arg(&self.path)).arg(rev);
        Ok(cmd::run(&mut cmd)?.trim().to_string())
    }

    /// Opens the repository with libostree.
    pub fn ostree_repo(&self) -> Result<ostree::Repo> {
        let repo = ostree::Repo::new_for_path(&self.path);
        repo.open(gio::Cancellable::NONE)
            .with_context(|| format!("Opening repo {}", self.path.display()))?;
        Ok(repo)
    }

    /// The history of `rev`, newest first: `(checksum, version)` pairs following the parent
    /// links as far as the repository has commits. A commit without `version` metadata yields
    /// an empty version string.
    #[context("Reading the history of {rev}")]
    pub fn commit_history(&self, rev: &str) -> Result<Vec<(String, String)>> {
        let repo = self.ostree_repo()?;
        let mut next = repo
            .resolve_rev(rev, false)?
            .map(|c| c.to_string())
            .ok_or_else(|| anyhow!("{rev} not found"))?;
        let mut history = Vec::new();
        loop {
            let commit = match repo.load_commit(&next) {
                Ok((commit, _)) => commit,
                // The parent of a shallow history is missing: the history ends here.
                Err(e) if !history.is_empty() && e.matches(gio::IOErrorEnum::NotFound) => break,
                Err(e) => return Err(e).with_context(|| format!("Loading commit {next}")),
            };
            let version = commit_metadata(&commit)
                .lookup::<String>("version")
                .ok()
                .flatten()
                .unwrap_or_default();
            let parent = ostree::commit_get_parent(&commit).map(|p| p.to_string());
            history.push((next, version));
            match parent {
                Some(parent) => next = parent,
                None => break,
            }
        }
        Ok(history)
    }

    /// The timestamp (unix seconds) of commit `rev`.
    pub fn commit_timestamp(&self, rev: &str) -> Result<u64> {
        let (commit, _) = self.load_commit(rev)?;
        Ok(ostree::commit_get_timestamp(&commit))
    }

    /// A string metadata value of commit `rev`, `None` when the key is absent.
    pub fn commit_metadata_string(&self, rev: &str, key: &str) -> Result<Option<String>> {
        let (commit, checksum) = self.load_commit(rev)?;
        commit_metadata(&commit)
            .lookup::<String>(key)
            .with_context(|| format!("Metadata {key} of {checksum} is not a string"))
    }

    fn load_commit(&self, rev: &str) -> Result<(glib::Variant, String)> {
        let repo = self.ostree_repo()?;
        let checksum = repo
            .resolve_rev(rev, false)
            .with_context(|| format!("Resolving {rev}"))?
            .map(|c| c.to_string())
            .ok_or_else(|| anyhow!("{rev} not found"))?;
        let (commit, _) = repo
            .load_commit(&checksum)
            .with_context(|| format!("Loading commit {checksum}"))?;
        Ok((commit, checksum))
    }
}

/// The metadata dictionary (child 0) of a commit variant.
fn commit_metadata(commit: &glib::Variant) -> glib::VariantDict {
    glib::VariantDict::new(Some(&commit.child_value(0)))
}

fn repo_arg(path: &Path) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from("--repo=");
    arg.push(path);
    arg
}

fn unix_now() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("System clock before 1970")?
        .as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_content_is_deterministic() {
        assert_eq!(extra_file_content("base", 7), extra_file_content("base", 7));
        assert_ne!(extra_file_content("base", 7), extra_file_content("base", 8));
        assert_ne!(
            extra_file_content("base", 7),
            extra_file_content("other", 7)
        );
        for i in 0..200 {
            let c = extra_file_content("base", i);
            assert!((64..=600).contains(&c.len()), "{}", c.len());
        }
        assert_eq!(
            extra_file_path(12345),
            "usr/share/strata-test/data/45/file-12345"
        );
    }

    #[test]
    fn paths_must_stay_inside() {
        assert!(relative("usr/etc/x").is_ok());
        assert_eq!(
            relative("/usr/etc/x").ok(),
            Some(PathBuf::from("usr/etc/x"))
        );
        assert!(relative("usr/../../etc").is_err());
        assert!(relative("/").is_err());
        assert!(relative("").is_err());
    }

    #[test]
    fn tree_layout() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("root");
        OsRelease::new("7")
            .extra_files(150)
            .file("usr/etc/foo.conf", "x")
            .remove("usr/etc/untouched.conf")
            .symlink("usr/bin/sh", "bash")
            .write_tree(&root)?;
        assert_eq!(
            fs::read_to_string(root.join("usr/etc/strata-test.conf"))?,
            "version=7\n"
        );
        assert_eq!(fs::read_to_string(root.join("usr/etc/foo.conf"))?, "x");
        assert!(!root.join("usr/etc/untouched.conf").exists());
        assert_eq!(fs::read_link(root.join("bin"))?, Path::new("usr/bin"));
        assert!(fs::read_to_string(root.join("usr/etc/os-release"))?
            .contains("PRETTY_NAME=StrataTestOS-7\n"));
        assert!(root.join("usr/lib/modules/6.1.0-strata/vmlinuz").is_file());
        assert!(root.join(extra_file_path(149)).is_file());
        let mode = fs::metadata(root.join("usr/bin/strata-release"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert!(OsRelease::new("x")
            .remove("nope")
            .write_tree(&dir.path().join("r2"))
            .is_err());
        Ok(())
    }
}
