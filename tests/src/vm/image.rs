//! Bootable disk images of a test OS (see the module documentation of [`crate::vm`]).
//!
//! [`VmImage::build`] turns an [`ImageSpec`] into `target/vm-cache/images/<hash>/disk.qcow2`:
//!
//! 1. an initramfs (busybox-static, the ext4 + virtio modules in `modprobe --show-depends`
//!    order, Debian's `ostree-prepare-root` with its libraries, [`INITRAMFS_INIT`] as `/init`);
//! 2. an [`OsRelease`] whose `/usr` has busybox (`/usr/bin/busybox` + applet symlinks), the
//!    guest kernel, that initramfs and [`GUEST_INIT`] as `/usr/sbin/init`, committed to an
//!    archive repo kept next to the image (`repo/`, for later upgrade scenarios);
//! 3. a sysroot made with the `ostree` CLI, prepared for libostree's syslinux backend
//!    (`boot/syslinux/syslinux.cfg -> ../loader/syslinux.cfg`, `boot/loader -> loader.0`)
//!    before the first deploy;
//! 4. two ext4 filesystems filled with `mkfs.ext4 -d` (`boot`: `-b 4096 -O ^64bit` for
//!    syslinux), `extlinux --install` on a loop mount of `boot`, assembled with `truncate` +
//!    `sfdisk` + `dd`, syslinux's `mbr.bin` in the MBR, converted to qcow2.
//!
//! The image directory name is a hash of every input (files' bytes included), so a second
//! build with the same inputs is a cache hit.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use super::assets::{cache_root, GuestAssets, BUSYBOX, SYSLINUX_MBR};
use crate::{cmd, FileEntry, OsRelease, SysrootConfig, TestRepo, TestSysroot, DEFAULT_REF};

/// Bump when the build recipe changes in a way the hashed inputs do not show.
const BUILDER_VERSION: &str = "vm-image-4";

/// Modules the initramfs loads (with their dependencies). `overlay` is for package layering's
/// scriptlet sandbox: a host's kernel loads it on demand from `/lib/modules`, which the guests'
/// roots do not carry, so it is loaded here and stays loaded after the switch to the root.
const INITRAMFS_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "ext4", "overlay"];

/// Kernel arguments of the first deployment. `panic=-1` + QEMU's `-no-reboot` turn a kernel
/// panic into a QEMU exit instead of a hang.
pub const GUEST_KARGS: &[&str] = &["root=LABEL=root", "rw", "console=ttyS0", "panic=-1"];

/// Size of the `/boot` partition in MiB.
const BOOT_MIB: u64 = 128;
/// Size of the root partition in MiB (sparse).
const ROOT_MIB: u64 = 2048;

/// `/init` of the initramfs (busybox sh).
pub const INITRAMFS_INIT: &str = r#"#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
fail() { echo "STRATA-MARKER initramfs-failed $*"; sync; sleep 1; reboot -f; }
echo "STRATA-MARKER initramfs"
for m in $(cat /etc/modules.order); do insmod /lib/modules/$m 2>/dev/null; done
root=
for arg in $(cat /proc/cmdline); do
  case $arg in root=*) root=${arg#root=} ;; esac
done
[ -n "$root" ] || fail "no root= on the kernel command line"
i=0
while :; do
  case $root in LABEL=*|UUID=*) dev=$(findfs "$root" 2>/dev/null) ;; *) dev=$root ;; esac
  [ -n "$dev" ] && [ -b "$dev" ] && break
  i=$((i+1)); [ $i -gt 300 ] && fail "root device $root not found"
  sleep 0.1
done
mount -t ext4 -o rw "$dev" /sysroot || fail "mounting $dev"
mkdir -p /run/ostree && touch /run/ostree/initramfs-mount-var
/usr/lib/ostree/ostree-prepare-root /sysroot || fail "ostree-prepare-root"
mount --move /run /sysroot/run || fail "moving /run"
mount --move /dev /sysroot/dev || fail "moving /dev"
umount /sys /proc
exec switch_root /sysroot /sbin/init
"#;

/// `/sbin/init` of the guest (busybox sh): mounts the API filesystems and `/boot`, unpacks
/// the control tar from `/dev/vdb` into `/run/strata-control`, runs its `control.sh`, then
/// powers off (QEMU exits).
pub const GUEST_INIT: &str = r#"#!/bin/sh
export PATH=/usr/bin:/usr/sbin:/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
hostname strata-vm
echo "STRATA-MARKER init"
bootdev=$(findfs LABEL=boot 2>/dev/null) && mount -t ext4 "$bootdev" /boot
mkdir -p /run/strata-control
if [ -b /dev/vdb ]; then tar -xf /dev/vdb -C /run/strata-control; fi
# `reboot`/`poweroff` without -f signal PID 1 (busybox: SIGTERM/SIGUSR2): note the request and
# take the shutdown path below at once, as a real init would (the control script is stopped).
shutdown_req=
trap 'shutdown_req=reboot' TERM
trap 'shutdown_req=poweroff' USR2
if [ -f /run/strata-control/control.sh ]; then
  cd /run/strata-control
  sh ./control.sh &
  wait $!
  rc=$?
  if [ -n "$shutdown_req" ]; then
    echo "STRATA-MARKER shutdown-requested $shutdown_req"
  else
    echo "STRATA-MARKER control-exit $rc"
  fi
  cd /
else
  echo "STRATA-MARKER no-control"
fi
sync
# Shutdown. Stop every other process (stratad, dbus-daemon) first, then finalize a staged
# deployment the way ostree-finalize-staged.service does on systemd hosts; a control script
# can create /run/strata-skip-finalize to leave it unfinalized (a power cut after staging).
# A deployment staged with --lock-finalization has /run/ostree/staged-deployment-locked:
# libostree 2022.7's finalize-staged itself declines it ("Not finalizing; found ...", exit 0),
# reported here as `finalize locked`. `finalize-start` is printed just before finalize-staged
# runs (the power-cut scenario kills QEMU on it).
for p in /proc/[0-9]*; do
  pid=${p#/proc/}; [ "$pid" = 1 ] || kill -TERM "$pid" 2>/dev/null
done
sleep 0.5
if [ -e /run/ostree/staged-deployment ]; then
  if [ -e /run/strata-skip-finalize ]; then
    echo "STRATA-MARKER finalize skipped"
  elif echo "STRATA-MARKER finalize-start" && ostree admin finalize-staged > /run/finalize.log 2>&1; then
    if [ -e /run/ostree/staged-deployment-locked ]; then
      echo "STRATA-MARKER finalize locked $(tail -n 2 /run/finalize.log | tr '\n' ' ')"
    else
      echo "STRATA-MARKER finalize ok"
    fi
  else
    echo "STRATA-MARKER finalize failed $(tail -n 5 /run/finalize.log | tr '\n' ' ')"
  fi
fi
sync
umount /boot 2>/dev/null
mount -o remount,ro /sysroot 2>/dev/null
sync
echo "STRATA-MARKER poweroff"
# Either ends QEMU (-no-reboot).
if [ "$shutdown_req" = reboot ]; then reboot -f; else poweroff -f; fi
"#;

/// What goes into an image: the OS release's version, kernel arguments and extra files.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Version of the deployed release.
    pub version: String,
    /// Kernel arguments of the first deployment (default [`GUEST_KARGS`]).
    pub kargs: Vec<String>,
    /// Extra entries of the release's tree (after the image's own).
    pub files: Vec<(String, FileEntry)>,
}

impl ImageSpec {
    /// Release `version` with [`GUEST_KARGS`] and no extra files.
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            kargs: GUEST_KARGS.iter().map(|s| s.to_string()).collect(),
            files: Vec::new(),
        }
    }

    /// Adds an entry to the release's tree.
    pub fn entry(mut self, path: impl Into<String>, entry: FileEntry) -> Self {
        self.files.push((path.into(), entry));
        self
    }

    /// Adds a kernel argument.
    pub fn karg(mut self, arg: impl Into<String>) -> Self {
        self.kargs.push(arg.into());
        self
    }
}

/// A built (or cached) image.
#[derive(Debug, Clone)]
pub struct VmImage {
    /// `target/vm-cache/images/<hash>`.
    pub dir: PathBuf,
    /// The pristine base disk (never booted directly: see [`VmImage::overlay`]).
    pub disk: PathBuf,
    /// Archive repo holding the deployed commit (ref [`DEFAULT_REF`]).
    pub repo: PathBuf,
    /// The deployed commit.
    pub commit: String,
    /// Guest kernel version.
    pub kver: String,
    /// True when the image came from the cache.
    pub cached: bool,
    /// Time spent in [`VmImage::build`].
    pub build_time: Duration,
}

impl VmImage {
    /// Builds the image for `spec`, or returns the cached one.
    #[context("Building the VM image of release {}", spec.version)]
    pub fn build(spec: &ImageSpec) -> Result<VmImage> {
        crate::init();
        let start = Instant::now();
        let assets = GuestAssets::get()?;
        let hash = input_hash(assets, spec)?;
        Self::cached(&hash, start, |work| build_into(assets, spec, work))
    }

    /// The image `target/vm-cache/images/<name>`, made by `build` (into a temporary directory
    /// renamed into place, so concurrent builders never see a half-made image) unless it
    /// is there already. `build` writes `disk.qcow2`, `repo/` and `image.env` (`COMMIT=`,
    /// `KVER=`).
    pub(crate) fn cached(
        name: &str,
        start: Instant,
        build: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<VmImage> {
        let images = cache_root().join("images");
        fs::create_dir_all(&images)?;
        let dir = images.join(name);
        let mut cached = true;
        if !dir.join("image.env").exists() {
            cached = false;
            let work = tempfile::Builder::new()
                .prefix(&format!("{name}.tmp-"))
                .tempdir_in(&images)?;
            build(work.path())?;
            // Another process may have finished the same image first: keep theirs.
            if fs::rename(work.path(), &dir).is_ok() {
                let _ = work.keep();
            }
        }
        eprintln!(
            "image {} ({}) in {:.1?}",
            dir.display(),
            if cached { "cached" } else { "built" },
            start.elapsed()
        );
        let env = fs::read_to_string(dir.join("image.env"))?;
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
                .ok_or_else(|| anyhow!("no {k} in {}", dir.join("image.env").display()))
        };
        Ok(VmImage {
            disk: dir.join("disk.qcow2"),
            repo: dir.join("repo"),
            commit: get("COMMIT")?,
            kver: get("KVER")?,
            dir,
            cached,
            build_time: start.elapsed(),
        })
    }

    /// A raw ext4 disk image holding a copy of this image's archive repo with `spec`'s release
    /// (same kernel and initramfs as the image) committed on top, on [`DEFAULT_REF`]; cached
    /// next to the image. Attach it with [`Control::disk`](super::Control::disk) and mount it
    /// read-only in the guest (`mount -o ro,noload /dev/vdc DIR`), then point the remote at
    /// `file://DIR`. Returns the disk and the new commit.
    #[context("Building the upgrade disk of release {} on {}", spec.version, self.dir.display())]
    pub fn upgrade_disk(&self, spec: &ImageSpec) -> Result<(PathBuf, String)> {
        let assets = GuestAssets::get()?;
        let name = format!("upgrade-{}", input_hash(assets, spec)?);
        let initramfs = self.dir.join("initramfs.img");
        repo_disk(&self.repo, &self.dir, &name, |repo| {
            repo.commit_release(DEFAULT_REF, &release(assets, spec, &initramfs)?)
        })
    }

    /// Creates a qcow2 overlay of the base disk at `path` (a test's writable disk).
    pub fn overlay(&self, path: &Path) -> Result<PathBuf> {
        cmd::run(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
                .arg(&self.disk)
                .arg(path),
        )?;
        Ok(path.to_path_buf())
    }
}

/// FNV-1a 64 over a stream of labelled inputs.
pub(crate) struct Hasher(pub(crate) u64);

impl Hasher {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        for x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 = (self.0 ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// The file's content only: the cache must not depend on where the checkout lives.
    pub(crate) fn file(&mut self, p: &Path) -> Result<()> {
        self.bytes(&fs::read(p).with_context(|| format!("Reading {}", p.display()))?);
        Ok(())
    }
    /// Every entry under `dir` (relative paths, modes, file contents, symlink targets), in
    /// sorted order.
    pub(crate) fn tree(&mut self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("Reading {}", dir.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let meta = fs::symlink_metadata(&path)?;
            self.bytes(e.file_name().as_encoded_bytes());
            self.bytes(&meta.mode().to_le_bytes());
            if meta.is_dir() {
                self.tree(&path)?;
            } else if meta.file_type().is_symlink() {
                self.bytes(fs::read_link(&path)?.as_os_str().as_encoded_bytes());
            } else {
                self.file(&path)?;
            }
        }
        Ok(())
    }
}

fn input_hash(assets: &GuestAssets, spec: &ImageSpec) -> Result<String> {
    let mut h = Hasher(0xcbf2_9ce4_8422_2325);
    for s in [
        BUILDER_VERSION,
        INITRAMFS_INIT,
        GUEST_INIT,
        &assets.kver,
        &spec.version,
    ] {
        h.bytes(s.as_bytes());
    }
    h.bytes(spec.kargs.join(" ").as_bytes());
    for p in [
        assets.vmlinuz.as_path(),
        &assets.prepare_root,
        Path::new(BUSYBOX),
        Path::new(SYSLINUX_MBR),
    ] {
        h.file(p)?;
    }
    for (path, entry) in &spec.files {
        h.bytes(path.as_bytes());
        h.bytes(format!("{entry:?}").as_bytes());
        if let FileEntry::Copy { source, .. } = entry {
            h.file(source)?;
        }
    }
    Ok(format!("{:016x}", h.0))
}

pub(crate) fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).with_context(|| format!("Creating {}", p.display()))
}

pub(crate) fn write_exec(p: &Path, text: &str) -> Result<()> {
    fs::write(p, text).with_context(|| format!("Writing {}", p.display()))?;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Applet names of the host's busybox.
fn busybox_applets() -> Result<Vec<String>> {
    let list = cmd::run(Command::new(BUSYBOX).arg("--list"))?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !["busybox", "init", "linuxrc"].contains(a))
        .map(str::to_string)
        .collect())
}

/// Copies `bin` and the shared libraries `ldd` reports into `root` at the same paths.
fn copy_with_libs(bin: &Path, dest_in_root: &str, root: &Path) -> Result<()> {
    let dest = root.join(dest_in_root.trim_start_matches('/'));
    mkdir(dest.parent().unwrap_or(root))?;
    fs::copy(bin, &dest).with_context(|| format!("Copying {}", bin.display()))?;
    let ldd = cmd::run(Command::new("ldd").arg(bin))?;
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let to = root.join(path.trim_start_matches('/'));
        if !to.exists() {
            mkdir(to.parent().unwrap_or(root))?;
            fs::copy(path, &to).with_context(|| format!("Copying {path}"))?;
        }
    }
    Ok(())
}

#[context("Building the initramfs")]
pub(crate) fn build_initramfs(assets: &GuestAssets, work: &Path) -> Result<PathBuf> {
    let root = work.join("initramfs");
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "run",
        "sysroot",
        "tmp",
        "etc",
        "lib/modules",
    ] {
        mkdir(&root.join(d))?;
    }
    symlink("bin", root.join("sbin"))?;
    fs::copy(BUSYBOX, root.join("bin/busybox"))?;
    for applet in busybox_applets()? {
        let link = root.join("bin").join(&applet);
        if !link.exists() {
            symlink("busybox", link)?;
        }
    }
    copy_with_libs(
        &assets.prepare_root,
        "/usr/lib/ostree/ostree-prepare-root",
        &root,
    )?;
    let mut order = String::new();
    for ko in assets.module_files(INITRAMFS_MODULES)? {
        let name = ko
            .file_name()
            .ok_or_else(|| anyhow!("bad module path {}", ko.display()))?
            .to_string_lossy()
            .to_string();
        fs::copy(&ko, root.join("lib/modules").join(&name))?;
        writeln!(order, "{name}")?;
    }
    fs::write(root.join("etc/modules.order"), order)?;
    write_exec(&root.join("init"), INITRAMFS_INIT)?;
    // The kernel opens /dev/console before /init runs: without it /init has no output.
    cmd::run(
        Command::new("mknod")
            .arg(root.join("dev/console"))
            .args(["c", "5", "1"]),
    )?;
    cmd::run(
        Command::new("mknod")
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"]),
    )?;
    let img = work.join("initramfs.img");
    cmd::run(
        Command::new("sh")
            .arg("-c")
            .arg(r#"cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6 > "$2""#)
            .arg("sh")
            .arg(&root)
            .arg(&img),
    )?;
    Ok(img)
}

fn release(assets: &GuestAssets, spec: &ImageSpec, initramfs: &Path) -> Result<OsRelease> {
    let mut rel = OsRelease::new(spec.version.clone())
        .kernel_version(assets.kver.clone())
        .kernel_from(&assets.vmlinuz)
        .initramfs_from(initramfs)
        .entry(
            "usr/bin/busybox",
            FileEntry::Copy {
                source: BUSYBOX.into(),
                mode: 0o755,
            },
        )
        .executable("usr/sbin/init", GUEST_INIT)
        .dir("boot")
        .file("usr/etc/hostname", "strata-vm\n")
        .file("usr/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        .file("usr/etc/group", "root:x:0:\n");
    for applet in busybox_applets()? {
        rel = rel.symlink(format!("usr/bin/{applet}"), "busybox");
    }
    for (path, entry) in &spec.files {
        rel = rel.entry(path.clone(), entry.clone());
    }
    Ok(rel)
}

#[context("Building the image in {}", dir.display())]
fn build_into(assets: &GuestAssets, spec: &ImageSpec, dir: &Path) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(dir.parent().unwrap_or(dir))?;
    let work = work.path();
    let t = Instant::now();
    let initramfs = build_initramfs(assets, work)?;
    tracing::debug!("initramfs built in {:?}", t.elapsed());

    // Release committed to an archive repo kept with the image.
    let repo = TestRepo::create(&dir.join("repo"))?;
    let commit = repo.commit_release(DEFAULT_REF, &release(assets, spec, &initramfs)?)?;
    repo.update_summary()?;

    let cfg = write_disk(&repo, &spec.kargs, ROOT_MIB, work, &dir.join("disk.qcow2"))?;
    fs::write(
        dir.join("image.env"),
        format!("COMMIT={commit}\nKVER={}\n", assets.kver),
    )?;
    fs::write(dir.join("syslinux.cfg"), cfg)?;
    // Kept for releases committed later on top of this image (see [`VmImage::upgrade_disk`]).
    fs::copy(&initramfs, dir.join("initramfs.img"))?;
    Ok(())
}

/// Makes the bootable disk `out` (qcow2) of `repo`'s [`DEFAULT_REF`]: a libostree sysroot
/// prepared for the syslinux backend with that commit deployed with `kargs`, split into an
/// ext4 `/boot` (extlinux installed) and an ext4 root of `root_mib` MiB, behind syslinux's MBR.
/// Returns the `syslinux.cfg` libostree wrote.
#[context("Writing the disk image {}", out.display())]
pub(crate) fn write_disk(
    repo: &TestRepo,
    kargs: &[String],
    root_mib: u64,
    work: &Path,
    out: &Path,
) -> Result<String> {
    // Sysroot prepared for the syslinux backend, then the first deployment.
    let sysroot_dir = work.join("sysroot");
    let config = SysrootConfig {
        url: repo.file_url(),
        kargs: kargs.to_vec(),
        deploy: false,
        ..SysrootConfig::new(repo.file_url())
    };
    let sysroot = TestSysroot::create(&sysroot_dir, &config)?;
    let boot = sysroot_dir.join("boot");
    mkdir(&boot.join("loader.0"))?;
    fs::write(boot.join("loader.0/syslinux.cfg"), "")?;
    symlink("loader.0", boot.join("loader"))?;
    mkdir(&boot.join("syslinux"))?;
    symlink("../loader/syslinux.cfg", boot.join("syslinux/syslinux.cfg"))?;
    let karg_refs: Vec<&str> = kargs.iter().map(String::as_str).collect();
    sysroot.pull(&config.remote, &config.ref_)?;
    sysroot.deploy(&config.refspec(), Some(&karg_refs))?;
    let cfg = fs::read_to_string(boot.join("loader/syslinux.cfg"))
        .context("libostree wrote no syslinux.cfg (syslinux backend not detected)")?;
    tracing::debug!("syslinux.cfg:\n{cfg}");

    // Split: /boot's content becomes the boot filesystem, the rest the root filesystem.
    let bootfs = work.join("bootfs");
    fs::rename(&boot, &bootfs)?;
    mkdir(&boot)?;
    let boot_img = work.join("boot.img");
    let root_img = work.join("root.img");
    mkfs(
        &boot_img,
        BOOT_MIB,
        "boot",
        &bootfs,
        &["-b", "4096", "-O", "^64bit"],
    )?;
    mkfs(&root_img, root_mib, "root", &sysroot_dir, &[])?;
    install_extlinux(&boot_img, work)?;

    // Disk: MBR + boot (active) + root.
    let raw = work.join("disk.raw");
    let total_mib = 1 + BOOT_MIB + root_mib + 1;
    cmd::run(
        Command::new("truncate")
            .arg(format!("-s{total_mib}M"))
            .arg(&raw),
    )?;
    let sectors = |mib: u64| mib * 2048;
    let table = format!(
        "label: dos\nstart={}, size={}, type=83, bootable\nstart={}, size={}, type=83\n",
        sectors(1),
        sectors(BOOT_MIB),
        sectors(1 + BOOT_MIB),
        sectors(root_mib)
    );
    let table_file = work.join("table.sfdisk");
    fs::write(&table_file, table)?;
    cmd::run(
        Command::new("sh")
            .arg("-c")
            .arg(r#"sfdisk --quiet "$1" < "$2""#)
            .arg("sh")
            .arg(&raw)
            .arg(&table_file),
    )?;
    dd(&boot_img, &raw, "bs=1M", &format!("seek={}", 1))?;
    dd(&root_img, &raw, "bs=1M", &format!("seek={}", 1 + BOOT_MIB))?;
    dd(Path::new(SYSLINUX_MBR), &raw, "bs=440", "count=1")?;
    cmd::run(
        Command::new("qemu-img")
            .args(["convert", "-q", "-O", "qcow2"])
            .arg(&raw)
            .arg(out),
    )?;
    Ok(cfg)
}

/// A raw ext4 disk image `<dir>/<name>/disk.img` holding a copy of the archive repo `src`
/// with one more commit made by `commit` (which returns its checksum), kept with that
/// checksum in `<dir>/<name>/commit`; cached under that name. The pair is made in a temporary
/// directory renamed into place in one step: concurrent tests building the same disk each
/// make their own (with different commit timestamps) and the first rename wins, so a disk
/// never pairs with another build's checksum. Returns the disk and the commit.
pub(crate) fn repo_disk(
    src: &Path,
    dir: &Path,
    name: &str,
    commit: impl FnOnce(&TestRepo) -> Result<String>,
) -> Result<(PathBuf, String)> {
    let done = dir.join(name);
    if !done.join("commit").exists() {
        let start = Instant::now();
        let work = tempfile::Builder::new()
            .prefix(&format!("{name}.tmp-"))
            .tempdir_in(dir)?;
        let repo_dir = work.path().join("repo");
        cmd::run(Command::new("cp").arg("-a").arg(src).arg(&repo_dir))?;
        let repo = TestRepo::open(&repo_dir)?;
        let checksum = commit(&repo)?;
        repo.update_summary()?;
        mkfs_for(&work.path().join("disk.img"), "upgrade", &repo_dir)?;
        fs::remove_dir_all(&repo_dir)?;
        fs::write(work.path().join("commit"), &checksum)?;
        // Fails when another process got there first: theirs is used (and ours dropped).
        if fs::rename(work.path(), &done).is_ok() {
            let _ = work.keep();
        }
        eprintln!(
            "upgrade disk {} built in {:.1?}",
            done.display(),
            start.elapsed()
        );
    }
    let checksum = fs::read_to_string(done.join("commit"))?.trim().to_string();
    Ok((done.join("disk.img"), checksum))
}

/// An ext4 image holding `from`, twice its size plus 32 MiB (sparse).
pub(crate) fn mkfs_for(img: &Path, label: &str, from: &Path) -> Result<()> {
    let du = cmd::run(Command::new("du").args(["-sm"]).arg(from))?;
    let mib: u64 = du
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("unexpected du output {du:?}"))?;
    mkfs(img, mib * 2 + 32, label, from, &[])
}

pub(crate) fn mkfs(img: &Path, mib: u64, label: &str, from: &Path, extra: &[&str]) -> Result<()> {
    cmd::run(Command::new("truncate").arg(format!("-s{mib}M")).arg(img))?;
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label])
            .args(extra)
            .arg("-d")
            .arg(from)
            .arg(img),
    )?;
    Ok(())
}

fn dd(from: &Path, to: &Path, bs: &str, extra: &str) -> Result<()> {
    cmd::run(
        Command::new("dd")
            .arg(format!("if={}", from.display()))
            .arg(format!("of={}", to.display()))
            .args([bs, extra, "conv=notrunc,sparse", "status=none"]),
    )?;
    Ok(())
}

/// `extlinux --install` into `syslinux/` of the boot filesystem, through a loop mount (root).
#[context("Installing extlinux")]
fn install_extlinux(boot_img: &Path, work: &Path) -> Result<()> {
    let mnt = work.join("bootmnt");
    mkdir(&mnt)?;
    cmd::run(
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(boot_img)
            .arg(&mnt),
    )?;
    let res = cmd::run(
        Command::new("extlinux")
            .arg("--install")
            .arg(mnt.join("syslinux")),
    );
    let umount = cmd::run(Command::new("umount").arg(&mnt));
    res?;
    umount?;
    Ok(())
}
