//! Host-side inputs of the VM images: the guest kernel and its modules, Debian's
//! `ostree-prepare-root`, busybox-static, syslinux, and the QEMU binary.
//!
//! Kernel, `ostree-prepare-root` and (when the host has none) QEMU are Debian packages
//! *extracted* by `tests/vm/fetch-assets.sh` into `<cache>/assets/`; nothing is installed
//! into the host's `/boot`. The rest are ordinary host packages (see [`HOST_PACKAGES`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use crate::cmd;

/// Debian packages the VM suite needs installed on the host (`apt-get install -y
/// --no-install-recommends ...`). QEMU itself is not in the list: `qemu-system-x86` conflicts
/// with the backported `qemu-utils` of these machines, so the fetch script extracts it.
pub const HOST_PACKAGES: &[&str] = &[
    "busybox-static",
    "debootstrap",
    "syslinux",
    "syslinux-common",
    "extlinux",
    "kmod",
    "fdisk",
    "cpio",
    "e2fsprogs",
    "qemu-utils",
];

/// Shared libraries the extracted `qemu-system-x86_64` 7.2 needs that a Debian 12 host with
/// the project's packages lacks (installed with apt, they are plain libraries).
pub const QEMU_LIB_PACKAGES: &[&str] = &[
    "libcapstone4",
    "libfdt1",
    "libpmem1",
    "librdmacm1",
    "libibverbs1",
    "libslirp0",
    "libvdeplug2",
];

/// The syslinux MBR boot code written to the first 440 bytes of the disk.
pub const SYSLINUX_MBR: &str = "/usr/lib/syslinux/mbr/mbr.bin";
/// busybox-static on the host.
pub const BUSYBOX: &str = "/bin/busybox";

/// `target/vm-cache` (or `$STRATA_VM_CACHE`): extracted packages and built images.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRATA_VM_CACHE") {
        return PathBuf::from(dir);
    }
    // tests/ -> workspace root; honour CARGO_TARGET_DIR when set at run time.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            root.parent().unwrap_or(root).join("target")
        });
    target.join("vm-cache")
}

/// The extracted guest kernel, `ostree-prepare-root` and the QEMU to run.
#[derive(Debug, Clone)]
pub struct GuestAssets {
    /// `<cache>/assets`.
    pub dir: PathBuf,
    /// Kernel version, e.g. `6.1.0-56-amd64`.
    pub kver: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// `lib/modules/<kver>` of the extracted kernel (depmod'ed).
    pub modules_dir: PathBuf,
    /// The extracted `ostree-prepare-root`.
    pub prepare_root: PathBuf,
    /// `qemu-system-x86_64` (host's or extracted).
    pub qemu: PathBuf,
    /// `-L` directories for QEMU's firmware (only for the extracted QEMU).
    pub qemu_firmware_dirs: Vec<PathBuf>,
}

impl GuestAssets {
    /// The assets, fetched on first use (runs `tests/vm/fetch-assets.sh`, needs the network
    /// to the Debian mirror once).
    pub fn get() -> Result<&'static GuestAssets> {
        static ASSETS: OnceLock<GuestAssets> = OnceLock::new();
        if let Some(a) = ASSETS.get() {
            return Ok(a);
        }
        let a = Self::load_or_fetch()?;
        Ok(ASSETS.get_or_init(|| a))
    }

    fn load_or_fetch() -> Result<GuestAssets> {
        let dir = cache_root().join("assets");
        let env = dir.join("assets.env");
        if !env.exists() {
            // Test processes start together on a cold cache: one fetches (under an exclusive
            // `flock` on `<cache>/assets.lock`), the others wait and find `assets.env`.
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("vm/fetch-assets.sh");
            fs::create_dir_all(cache_root())?;
            cmd::run(
                Command::new("flock")
                    .arg(cache_root().join("assets.lock"))
                    .arg("sh")
                    .arg("-c")
                    .arg(r#"[ -e "$1/assets.env" ] || sh "$2" "$1""#)
                    .arg("sh")
                    .arg(&dir)
                    .arg(&script),
            )
            .context("Fetching the VM guest assets (kernel, ostree-prepare-root, QEMU)")?;
        }
        let text =
            fs::read_to_string(&env).with_context(|| format!("Reading {}", env.display()))?;
        let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let kver = vars
            .get("KVER")
            .ok_or_else(|| anyhow!("no KVER in {}", env.display()))?;
        let qemu = vars
            .get("QEMU")
            .ok_or_else(|| anyhow!("no QEMU in {}", env.display()))?;
        let qemu = PathBuf::from(qemu);
        let mut qemu_firmware_dirs = Vec::new();
        if qemu.starts_with(&dir) {
            qemu_firmware_dirs.push(dir.join("qemu/usr/share/qemu"));
            qemu_firmware_dirs.push(dir.join("qemu/usr/share/seabios"));
        }
        let a = GuestAssets {
            vmlinuz: dir.join(format!("kernel/boot/vmlinuz-{kver}")),
            modules_dir: dir.join(format!("kernel/lib/modules/{kver}")),
            prepare_root: dir.join("ostree-boot/usr/lib/ostree/ostree-prepare-root"),
            kver: kver.to_string(),
            qemu,
            qemu_firmware_dirs,
            dir,
        };
        for p in [&a.vmlinuz, &a.modules_dir, &a.prepare_root] {
            if !p.exists() {
                bail!(
                    "{} is missing: remove {} to fetch the assets again",
                    p.display(),
                    a.dir.join("assets.env").display()
                );
            }
        }
        for p in [SYSLINUX_MBR, BUSYBOX] {
            if !Path::new(p).exists() {
                bail!(
                    "{p} is missing: install the VM suite's host packages: apt-get install -y {}",
                    HOST_PACKAGES.join(" ")
                );
            }
        }
        Ok(a)
    }

    /// The `.ko` files that load `modules` with their dependencies, in load order
    /// (`modprobe --show-depends`), without duplicates.
    pub fn module_files(&self, modules: &[&str]) -> Result<Vec<PathBuf>> {
        let base = self.dir.join("kernel");
        let mut out: Vec<PathBuf> = Vec::new();
        for m in modules {
            let text = cmd::run(Command::new("modprobe").arg("-d").arg(&base).args([
                "-S",
                &self.kver,
                "--show-depends",
                m,
            ]))?;
            for line in text.lines() {
                // "insmod /path/x.ko [params]"; "builtin x" lines need nothing.
                if let Some(rest) = line.strip_prefix("insmod ") {
                    let path = PathBuf::from(rest.split_whitespace().next().unwrap_or_default());
                    if !out.contains(&path) {
                        out.push(path);
                    }
                }
            }
        }
        Ok(out)
    }
}
