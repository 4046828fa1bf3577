//! Real (non-booted) ostree sysroots in a directory, built with the `ostree` CLI, plus
//! read-only views of their state for assertions: deployments, BLS boot entries, the
//! `/boot/loader` symlink, and a [`SysrootSnapshot`] of all of it.
//!
//! libostree deploys fine without any bootloader installed: it still writes BLS entries to
//! `/boot/loader.N/entries/ostree-<N>-<osname>.conf` and swaps the `/boot/loader` symlink
//! (the first deployment lands in `loader.1`, then they alternate). The entry of the default
//! (first) deployment has the highest `version`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, ensure, Context, Result};
use fn_error_context::context;
use ostree::gio;

use crate::cmd;

/// Default OS name (`ostree admin os-init`).
pub const DEFAULT_OSNAME: &str = "stratatest";
/// Default remote name.
pub const DEFAULT_REMOTE: &str = "testos";
/// Default ref the releases are committed to and deployed from.
pub const DEFAULT_REF: &str = "stratatest/stable/x86_64";
/// Default kernel arguments of the first deployment.
pub const DEFAULT_KARGS: &[&str] = &["root=LABEL=root", "rw", "quiet"];

/// How [`TestSysroot::create`] sets the sysroot up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysrootConfig {
    /// Stateroot name (default [`DEFAULT_OSNAME`]).
    pub osname: String,
    /// Remote name (default [`DEFAULT_REMOTE`]).
    pub remote: String,
    /// URL of the remote (`file:///...` or `http://...`); must be set.
    pub url: String,
    /// Ref to pull and deploy (default [`DEFAULT_REF`]).
    pub ref_: String,
    /// `Some(public key)`: the remote has `gpg-verify=true` and this key imported;
    /// `None`: `--no-gpg-verify`.
    pub gpg: Option<PathBuf>,
    /// Kernel arguments of the first deployment (default [`DEFAULT_KARGS`]).
    pub kargs: Vec<String>,
    /// Pull and deploy the ref (default `true`); `false` stops after adding the remote.
    pub deploy: bool,
}

impl Default for SysrootConfig {
    fn default() -> Self {
        Self {
            osname: DEFAULT_OSNAME.to_string(),
            remote: DEFAULT_REMOTE.to_string(),
            url: String::new(),
            ref_: DEFAULT_REF.to_string(),
            gpg: None,
            kargs: DEFAULT_KARGS.iter().map(|s| s.to_string()).collect(),
            deploy: true,
        }
    }
}

impl SysrootConfig {
    /// The default configuration with the remote at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The refspec deployed: `remote:ref`.
    pub fn refspec(&self) -> String {
        format!("{}:{}", self.remote, self.ref_)
    }
}

/// One deployment, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    /// Stateroot.
    pub osname: String,
    /// Commit checksum.
    pub checksum: String,
    /// Deploy serial (`CSUM.SERIAL`).
    pub serial: i32,
    /// Pinned (kept by cleanup).
    pub pinned: bool,
    /// Staged (to be finalized at shutdown).
    pub staged: bool,
    /// Text of the origin file (`None` if there is none).
    pub origin: Option<String>,
    /// The `options` line of its BLS entry (kernel arguments).
    pub options: Option<String>,
}

impl DeploymentInfo {
    /// Path relative to the sysroot: `ostree/deploy/OS/deploy/CSUM.SERIAL`.
    pub fn relpath(&self) -> PathBuf {
        PathBuf::from(format!(
            "ostree/deploy/{}/deploy/{}.{}",
            self.osname, self.checksum, self.serial
        ))
    }
}

/// One BLS entry of `/boot/loader/entries`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootEntry {
    /// File name, e.g. `ostree-1-stratatest.conf`.
    pub file_name: String,
    /// `title`.
    pub title: String,
    /// `version` (ostree writes an integer; the highest is the default entry).
    pub version: String,
    /// `options` (kernel command line, including `ostree=`).
    pub options: String,
    /// `linux` (kernel path relative to /boot).
    pub linux: String,
    /// `initrd`.
    pub initrd: String,
}

impl BootEntry {
    /// Reads a BLS entry file with libostree's [`ostree::BootconfigParser`] (unknown keys are
    /// ignored, missing ones left empty).
    #[context("Parsing BLS entry {}", path.display())]
    pub fn read(path: &Path) -> Result<BootEntry> {
        let parser = ostree::BootconfigParser::new();
        parser.parse(&gio::File::for_path(path), gio::Cancellable::NONE)?;
        let get = |key: &str| parser.get(key).map(String::from).unwrap_or_default();
        Ok(BootEntry {
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            title: get("title"),
            version: get("version"),
            options: get("options"),
            linux: get("linux"),
            initrd: get("initrd"),
        })
    }

    /// The kernel arguments of `options`, split on whitespace.
    pub fn kargs(&self) -> Vec<&str> {
        self.options.split_whitespace().collect()
    }
}

/// Sorts entries the way a BLS bootloader would: highest `version` first (numerically when
/// both are integers), ties by file name descending.
pub fn sort_boot_entries(entries: &mut [BootEntry]) {
    entries.sort_by(|a, b| {
        let by_version = match (a.version.parse::<u64>(), b.version.parse::<u64>()) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            _ => b.version.cmp(&a.version),
        };
        by_version.then_with(|| b.file_name.cmp(&a.file_name))
    });
}

/// Everything a failed operation must leave unchanged, for `assert_eq!` before/after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysrootSnapshot {
    /// Deployments in boot order.
    pub deployments: Vec<DeploymentInfo>,
    /// Target of `/boot/loader` (`loader.0` / `loader.1`), `None` when missing.
    pub loader_target: Option<String>,
    /// File name → content of every file in `/boot/loader/entries/`.
    pub boot_entries: BTreeMap<String, String>,
    /// `OS/CSUM.SERIAL` of every directory under `ostree/deploy/*/deploy/`, sorted.
    pub deploy_dirs: Vec<String>,
}

/// A sysroot in a directory, built with the `ostree` CLI (see [`TestSysroot::create`]).
#[derive(Debug)]
pub struct TestSysroot {
    path: PathBuf,
    config: SysrootConfig,
}

impl TestSysroot {
    /// Builds a sysroot in `dir` (created if missing): `ostree admin init-fs`, `os-init`,
    /// `remote add`, and (if `config.deploy`) `pull` + `admin deploy` of the configured ref
    /// with `config.kargs`.
    #[context("Creating test sysroot in {}", dir.display())]
    pub fn create(dir: &Path, config: &SysrootConfig) -> Result<TestSysroot> {
        crate::init();
        ensure!(!config.url.is_empty(), "SysrootConfig.url is not set");
        fs::create_dir_all(dir).with_context(|| format!("Creating {}", dir.display()))?;
        let path = fs::canonicalize(dir).context("Resolving the sysroot path")?;
        let sysroot = TestSysroot {
            path,
            config: config.clone(),
        };
        cmd::run(
            Command::new("ostree")
                .args(["admin", "init-fs"])
                .arg(&sysroot.path),
        )?;
        cmd::run(
            Command::new("ostree")
                .args(["admin", "os-init"])
                .arg(sysroot.sysroot_arg())
                .arg(&config.osname),
        )?;
        sysroot.add_remote(&config.remote, &config.url, config.gpg.as_deref())?;
        if config.deploy {
            let kargs: Vec<&str> = config.kargs.iter().map(String::as_str).collect();
            sysroot.pull(&config.remote, &config.ref_)?;
            sysroot.deploy(&config.refspec(), Some(&kargs))?;
        }
        Ok(sysroot)
    }

    /// The sysroot directory (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stateroot name.
    pub fn osname(&self) -> &str {
        &self.config.osname
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &SysrootConfig {
        &self.config
    }

    /// `DIR/ostree/repo`.
    pub fn repo_path(&self) -> PathBuf {
        self.path.join("ostree/repo")
    }

    /// Adds a remote to the sysroot repo: with `gpg` a public key to import and
    /// `gpg-verify=true`, without `--no-gpg-verify`.
    #[context("Adding remote {name} ({url})")]
    pub fn add_remote(&self, name: &str, url: &str, gpg: Option<&Path>) -> Result<()> {
        let mut cmd = Command::new("ostree");
        cmd.arg("remote").arg("add").arg(self.repo_arg());
        match gpg {
            Some(key) => {
                let mut import = OsString::from("--gpg-import=");
                import.push(key);
                cmd.arg("--set=gpg-verify=true").arg(import);
            }
            None => {
                cmd.arg("--no-gpg-verify");
            }
        }
        cmd.arg(name).arg(url);
        cmd::run(&mut cmd)?;
        Ok(())
    }

    /// `ostree pull` of `remote ref` into the sysroot repo; returns the pulled checksum.
    #[context("Pulling {remote}:{ref_}")]
    pub fn pull(&self, remote: &str, ref_: &str) -> Result<String> {
        cmd::run(
            Command::new("ostree")
                .arg("pull")
                .arg(self.repo_arg())
                .arg(remote)
                .arg(ref_),
        )?;
        let refspec = format!("{remote}:{ref_}");
        let out = cmd::run(
            Command::new("ostree")
                .arg("rev-parse")
                .arg(self.repo_arg())
                .arg(&refspec),
        )?;
        Ok(out.trim().to_string())
    }

    /// `ostree admin deploy` of `refspec` (already pulled) as the new default deployment.
    /// `kargs`: `Some` replaces the kernel arguments (`--karg=` each), `None` inherits them from
    /// the current default deployment.
    #[context("Deploying {refspec}")]
    pub fn deploy(&self, refspec: &str, kargs: Option<&[&str]>) -> Result<()> {
        let mut cmd = Command::new("ostree");
        cmd.args(["admin", "deploy"])
            .arg(self.sysroot_arg())
            .arg(format!("--os={}", self.config.osname));
        if let Some(kargs) = kargs {
            cmd.arg("--karg-none");
            for karg in kargs {
                cmd.arg(format!("--karg={karg}"));
            }
        }
        cmd.arg(refspec);
        cmd::run(&mut cmd)?;
        Ok(())
    }

    /// Pulls the configured ref and deploys it (kernel arguments inherited): what a plain
    /// `ostree admin upgrade` would do. Returns the deployed checksum.
    pub fn upgrade_cli(&self) -> Result<String> {
        let checksum = self.pull(&self.config.remote, &self.config.ref_)?;
        self.deploy(&self.config.refspec(), None)?;
        Ok(checksum)
    }

    /// Loads the sysroot with libostree (a fresh load each call).
    pub fn load(&self) -> Result<ostree::Sysroot> {
        let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(&self.path)));
        sysroot
            .load(gio::Cancellable::NONE)
            .with_context(|| format!("Loading sysroot {}", self.path.display()))?;
        Ok(sysroot)
    }

    /// The deployments in boot order, as plain data.
    #[context("Listing deployments")]
    pub fn deployments(&self) -> Result<Vec<DeploymentInfo>> {
        let sysroot = self.load()?;
        sysroot
            .deployments()
            .iter()
            .map(|d| {
                let origin_path = self.path.join(d.origin_relpath().as_str());
                let origin = match fs::read_to_string(&origin_path) {
                    Ok(text) => Some(text),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        d.origin().map(|kf| kf.to_data().to_string())
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("Reading {}", origin_path.display()))
                    }
                };
                Ok(DeploymentInfo {
                    osname: d.osname().to_string(),
                    checksum: d.csum().to_string(),
                    serial: d.deployserial(),
                    pinned: d.is_pinned(),
                    staged: d.is_staged(),
                    origin,
                    options: d
                        .bootconfig()
                        .and_then(|b| b.get("options"))
                        .map(|o| o.to_string()),
                })
            })
            .collect()
    }

    /// Absolute path of the `index`th deployment (boot order) checkout:
    /// `DIR/ostree/deploy/OS/deploy/CSUM.SERIAL`.
    pub fn deploy_dir(&self, index: usize) -> Result<PathBuf> {
        let sysroot = self.load()?;
        let deployments = sysroot.deployments();
        let d = deployments.get(index).ok_or_else(|| {
            anyhow!(
                "No deployment {index}: the sysroot has {}",
                deployments.len()
            )
        })?;
        Ok(self.path.join(sysroot.deployment_dirpath(d).as_str()))
    }

    /// Target of the `/boot/loader` symlink: `loader.0` or `loader.1`.
    pub fn loader_target(&self) -> Result<String> {
        let link = self.path.join("boot/loader");
        let target =
            fs::read_link(&link).with_context(|| format!("Reading symlink {}", link.display()))?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// The BLS entries of `/boot/loader/entries/*.conf`, default (highest version) first.
    pub fn boot_entries(&self) -> Result<Vec<BootEntry>> {
        let dir = self.path.join("boot/loader/entries");
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut entries = read_dir_names(&dir)?
            .into_iter()
            .filter(|name| name.ends_with(".conf"))
            .map(|name| BootEntry::read(&dir.join(name)))
            .collect::<Result<Vec<_>>>()?;
        sort_boot_entries(&mut entries);
        Ok(entries)
    }

    /// Captures the state described by [`SysrootSnapshot`].
    #[context("Snapshotting sysroot {}", self.path.display())]
    pub fn snapshot(&self) -> Result<SysrootSnapshot> {
        let loader_target = match fs::symlink_metadata(self.path.join("boot/loader")) {
            Ok(_) => Some(self.loader_target()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).context("Reading /boot/loader"),
        };
        let mut deploy_dirs = Vec::new();
        let deploy_root = self.path.join("ostree/deploy");
        for os in read_dir_names(&deploy_root)? {
            let dir = deploy_root.join(&os).join("deploy");
            if !dir.is_dir() {
                continue;
            }
            for name in read_dir_names(&dir)? {
                if dir.join(&name).is_dir() {
                    deploy_dirs.push(format!("{os}/{name}"));
                }
            }
        }
        deploy_dirs.sort();
        Ok(SysrootSnapshot {
            deployments: self.deployments()?,
            loader_target,
            boot_entries: self.read_entry_files()?,
            deploy_dirs,
        })
    }

    /// Name → content of every file in `/boot/loader/entries` (empty if it does not exist).
    fn read_entry_files(&self) -> Result<BTreeMap<String, String>> {
        let dir = self.path.join("boot/loader/entries");
        let mut files = BTreeMap::new();
        if !dir.exists() {
            return Ok(files);
        }
        for name in read_dir_names(&dir)? {
            let path = dir.join(&name);
            let text =
                fs::read_to_string(&path).with_context(|| format!("Reading {}", path.display()))?;
            files.insert(name, text);
        }
        Ok(files)
    }

    fn sysroot_arg(&self) -> OsString {
        let mut arg = OsString::from("--sysroot=");
        arg.push(&self.path);
        arg
    }

    fn repo_arg(&self) -> OsString {
        let mut arg = OsString::from("--repo=");
        arg.push(self.repo_path());
        arg
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("Listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("Listing {}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_and_sort_entries() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ostree-2-x.conf");
        fs::write(&path, "# comment\ntitle StrataTestOS-1 (ostree:0)\nversion 2\noptions root=LABEL=root rw ostree=/ostree/boot.1/x/y/0\nlinux /ostree/x/vmlinuz-6.1.0-strata\ninitrd /ostree/x/initramfs-6.1.0-strata.img\n")?;
        let e = BootEntry::read(&path)?;
        assert_eq!(e.file_name, "ostree-2-x.conf");
        assert_eq!(e.title, "StrataTestOS-1 (ostree:0)");
        assert_eq!(e.version, "2");
        assert_eq!(e.kargs()[..2], ["root=LABEL=root", "rw"]);
        assert_eq!(e.initrd, "/ostree/x/initramfs-6.1.0-strata.img");
        let mut v = vec![
            BootEntry {
                version: "9".into(),
                ..Default::default()
            },
            BootEntry {
                version: "10".into(),
                ..Default::default()
            },
        ];
        sort_boot_entries(&mut v);
        assert_eq!(v[0].version, "10");
        Ok(())
    }
}
