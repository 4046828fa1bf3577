//! The systemd guest: a minimal Debian 12 made with `debootstrap` (systemd, udev, dbus,
//! `ostree` and `ostree-boot` with its `ostree-finalize-staged.path`/`.service`), turned into
//! an ostree commit with this project's `make install-files` output in it, and booted through
//! the same initramfs and syslinux disk layout as the busybox guest ([`super::image`]).
//!
//! What differs from the busybox guest is what a real host does:
//! - `systemd` is PID 1; `stratad` is started by D-Bus activation through the packaged
//!   `org.projectatomic.rpmostree1.service` (`SystemdService=stratad.service`) on the system
//!   bus, under the packaged bus policy and `stratad.service` unit;
//! - a staged deployment is finalized by `ostree-finalize-staged.service` (started by its
//!   `.path` unit when libostree writes `/run/ostree/staged-deployment`; `ExecStop=ostree admin
//!   finalize-staged`) on the way down, not by a test init.
//!
//! Test plumbing in the image (and nothing else of ours): [`CONTROL_SCRIPT`] run by
//! [`CONTROL_UNIT`] once the system is up (it unpacks the control tar from `/dev/vdb` and runs
//! `control.sh` with its output on the serial console, then powers off) and [`SHUTDOWN_UNIT`],
//! which prints the `poweroff` marker after `ostree-finalize-staged.service` has stopped.
//! Gettys and apt's timers are masked. The image has an empty rpmdb in `/usr/share/rpm`, so
//! packages can be layered on it (the Debian packages themselves are not in it).
//!
//! The debootstrapped tree is cached in `target/vm-cache/debian/<hash>/` (about 360 MB,
//! about 50 s to make with a nearby mirror); the mirror is `$STRATA_VM_DEBIAN_MIRROR` or
//! `http://deb.debian.org/debian`. When the mirror cannot be reached, [`debian_rootfs`] fails
//! with [`MirrorUnreachable`] and the systemd test skips with that message.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use super::assets::{cache_root, GuestAssets, SYSLINUX_MBR};
use super::image::{
    build_initramfs, mkdir, repo_disk, write_disk, write_exec, Hasher, VmImage, GUEST_KARGS,
    INITRAMFS_INIT,
};
use crate::{cmd, TestRepo, DEFAULT_REF};

/// Bump when the recipe changes in a way the hashed inputs do not show.
const BUILDER_VERSION: &str = "vm-systemd-3";

/// Debian release the guest is made of.
pub const SUITE: &str = "bookworm";

/// Packages added to debootstrap's `minbase` variant.
pub const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "ostree",
    "ostree-boot",
    "kmod",
    // What stratad needs at run time beyond libostree: libdnf's library, and for package
    // layering rpm (the rpmdb) and bubblewrap (scriptlets).
    "libdnf2",
    "rpm",
    "bubblewrap",
    // Container image pulls: ostree-ext fetches through skopeo's image proxy (which brings
    // containers-common: /etc/containers/policy.json and registries.conf). containers-common
    // depends on the virtual `container-network-stack`, which debootstrap does not resolve:
    // one of its providers, named.
    "skopeo",
    "containernetworking-plugins",
];

/// Root partition size in MiB (sparse): the Debian tree, its copy in the sysroot's repo and
/// two deployments' worth of changes.
const ROOT_MIB: u64 = 3072;

/// Runs the boot's `control.sh` (see the module documentation).
pub const CONTROL_SCRIPT: &str = r#"#!/bin/sh
# Strata VM test: run control.sh from the tar on /dev/vdb, output on the serial console.
exec > /dev/ttyS0 2>&1
echo "STRATA-MARKER init"
mkdir -p /run/strata-control
if [ -b /dev/vdb ] && tar -xf /dev/vdb -C /run/strata-control; then
  cd /run/strata-control
  sh ./control.sh
  echo "STRATA-MARKER control-exit $?"
else
  echo "STRATA-MARKER no-control"
fi
systemctl --no-block poweroff
"#;

/// The unit running [`CONTROL_SCRIPT`] once the system is up.
pub const CONTROL_UNIT: &str = "[Unit]
Description=Strata VM test control script
After=basic.target dbus.socket local-fs.target systemd-user-sessions.service

[Service]
Type=exec
ExecStart=/usr/libexec/strata-vm-control

[Install]
WantedBy=multi-user.target
";

/// Prints `STRATA-MARKER poweroff` on the serial console late in shutdown: it is stopped after
/// `ostree-finalize-staged.service` (ordered before it, so stopped after it), with whether the
/// staged deployment was consumed.
pub const SHUTDOWN_UNIT: &str = "[Unit]
Description=Strata VM test shutdown marker
DefaultDependencies=no
After=local-fs.target
Before=ostree-finalize-staged.service shutdown.target final.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'if [ -e /run/ostree/staged-deployment ]; then s=left-staged; else s=none-staged; fi; echo \"STRATA-MARKER poweroff $s\" > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
";

/// The Debian mirror debootstrap uses.
pub fn mirror() -> String {
    std::env::var("STRATA_VM_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_string())
}

/// The systemd guest cannot be built here: the Debian mirror is unreachable.
#[derive(Debug)]
pub struct MirrorUnreachable(pub String);

impl fmt::Display for MirrorUnreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the Debian mirror is unreachable ({}); set STRATA_VM_DEBIAN_MIRROR to a reachable one",
            self.0
        )
    }
}

impl std::error::Error for MirrorUnreachable {}

/// True when `err` (or anything in its chain) is a [`MirrorUnreachable`].
pub fn is_mirror_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<MirrorUnreachable>())
}

/// GETs `<mirror>/dists/<SUITE>/Release` with a plain HTTP/1.1 request (debootstrap itself
/// would retry for minutes before failing).
fn probe_mirror(url: &str) -> std::result::Result<(), MirrorUnreachable> {
    let fail = |what: String| MirrorUnreachable(format!("{url}: {what}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// mirrors are supported".into()))?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hostport_with_port = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = hostport_with_port
        .to_socket_addrs()
        .map_err(|e| fail(format!("resolving {hostport}: {e}")))?
        .next()
        .ok_or_else(|| fail(format!("{hostport} has no address")))?;
    let timeout = Duration::from_secs(15);
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| fail(format!("connecting to {addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(timeout));
    let host = hostport.split(':').next().unwrap_or(hostport);
    let path = path.trim_end_matches('/');
    write!(
        s,
        "HEAD /{path}/dists/{SUITE}/Release HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| fail(format!("sending a request: {e}")))?;
    let mut head = [0u8; 64];
    let n = s
        .read(&mut head)
        .map_err(|e| fail(format!("reading the answer: {e}")))?;
    let status = String::from_utf8_lossy(&head[..n]);
    let status = status.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(fail(format!("dists/{SUITE}/Release answered {status:?}")))
    }
}

/// The debootstrapped Debian tree (cached; see the module documentation).
#[context("Making the Debian {SUITE} tree with debootstrap")]
pub fn debian_rootfs() -> Result<PathBuf> {
    let mirror = mirror();
    let mut h = Hasher(0xcbf2_9ce4_8422_2325);
    for s in [BUILDER_VERSION, SUITE, &mirror] {
        h.bytes(s.as_bytes());
    }
    h.bytes(PACKAGES.join(",").as_bytes());
    let base = cache_root().join("debian");
    let dir = base.join(format!("{:016x}", h.0));
    let root = dir.join("root");
    if dir.join("complete").exists() {
        return Ok(root);
    }
    probe_mirror(&mirror)?;
    mkdir(&base)?;
    let work = tempfile::Builder::new()
        .prefix("debootstrap.tmp-")
        .tempdir_in(&base)?;
    let t = Instant::now();
    let log = work.path().join("debootstrap.log");
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "--merged-usr"])
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(work.path().join("root"))
        .arg(&mirror)
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(work.path().join("debootstrap.err"))?)
        .status()
        .context("Running debootstrap (apt-get install debootstrap)")?;
    if !status.success() {
        let out = fs::read(&log).unwrap_or_default();
        let err = fs::read(work.path().join("debootstrap.err")).unwrap_or_default();
        return Err(anyhow!(
            "debootstrap {SUITE} from {mirror} failed ({status}):\n{}\n{}",
            cmd::tail(&out, 20),
            cmd::tail(&err, 20)
        ));
    }
    // apt's downloaded packages are not part of the OS.
    cmd::run(
        Command::new("sh")
            .arg("-c")
            .arg(r#"rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*"#)
            .arg("sh")
            .arg(work.path().join("root")),
    )?;
    fs::write(work.path().join("complete"), "")?;
    eprintln!("debootstrap {SUITE}: {:.1?}", t.elapsed());
    if fs::rename(work.path(), &dir).is_ok() {
        let _ = work.keep();
    }
    Ok(root)
}

/// `/usr/lib/os-release` of release `version`. No spaces or bare digits in `PRETTY_NAME` (nor
/// a bare-digit `version`): libostree 2022.7's syslinux label is `PRETTY_NAME VERSION
/// (ostree:N)` and its words after the first reach the kernel command line, where a bare
/// digit is a runlevel for systemd (`1` = rescue mode).
fn os_release(version: &str) -> String {
    format!(
        "NAME=StrataTestDebian\nID=debian\nVERSION={version}\nVERSION_ID={version}\n\
         PRETTY_NAME=StrataTestDebian\n"
    )
}

/// Builds (or returns the cached) systemd guest image of release `version`.
#[context("Building the systemd VM image of release {version}")]
pub fn build(version: &str) -> Result<VmImage> {
    crate::init();
    let start = Instant::now();
    let assets = GuestAssets::get()?;
    let rootfs = debian_rootfs()?;
    // Named by a hash of its content: hashing the path covers every installed file.
    let strata = super::strata::installed_tree()?;

    let mut h = Hasher(0xcbf2_9ce4_8422_2325);
    for s in [
        BUILDER_VERSION,
        INITRAMFS_INIT,
        CONTROL_SCRIPT,
        CONTROL_UNIT,
        SHUTDOWN_UNIT,
        &assets.kver,
        version,
        &rootfs.display().to_string(),
        &strata.display().to_string(),
    ] {
        h.bytes(s.as_bytes());
    }
    h.bytes(GUEST_KARGS.join(" ").as_bytes());
    for p in [
        assets.vmlinuz.as_path(),
        &assets.prepare_root,
        Path::new(SYSLINUX_MBR),
    ] {
        h.file(p)?;
    }
    VmImage::cached(&format!("systemd-{:016x}", h.0), start, |work| {
        build_into(assets, &rootfs, &strata, version, work)
    })
}

/// An upgrade disk for a systemd image: release `version` is the image's commit with only
/// `/usr/lib/os-release` changed (see [`VmImage::upgrade_disk`] for how it is used).
#[context("Building the systemd upgrade disk of release {version}")]
pub fn upgrade_disk(image: &VmImage, version: &str) -> Result<(PathBuf, String)> {
    let name = format!("upgrade-systemd-{version}");
    repo_disk(&image.repo, &image.dir, &name, |repo| {
        let overlay = tempfile::tempdir()?;
        let lib = overlay.path().join("usr/lib");
        mkdir(&lib)?;
        fs::write(lib.join("os-release"), os_release(version))?;
        commit(
            repo,
            &format!("ref={}", image.commit),
            Some(overlay.path()),
            version,
        )
    })
}

/// Two raw ext4 disks, each holding an OCI image layout `oci/` (mount it read-only in the
/// guest, the same path each boot): in the first, tag `stable` is the image's own release
/// encapsulated as a chunked container image; in the second, `stable` has moved to release
/// `version` (only `/usr/lib/os-release` changed), the first image's blobs still there.
/// Cached beside the image.
#[derive(Debug, Clone)]
pub struct ImageDisks {
    pub first: PathBuf,
    pub first_digest: String,
    pub moved: PathBuf,
    pub moved_digest: String,
    /// The ostree commit inside the moved tag's image.
    pub moved_commit: String,
}

#[context("Building the container image disks of release {version} on {}", image.dir.display())]
pub fn image_disks(image: &VmImage, version: &str) -> Result<ImageDisks> {
    let done = image.dir.join(format!("images-{version}"));
    if !done.join("digests").exists() {
        let t = Instant::now();
        let work = tempfile::Builder::new()
            .prefix(&format!("images-{version}.tmp-"))
            .tempdir_in(&image.dir)?;
        let repo_dir = work.path().join("repo");
        cmd::run(Command::new("cp").arg("-a").arg(&image.repo).arg(&repo_dir))?;
        let repo = TestRepo::open(&repo_dir)?;
        let overlay = tempfile::tempdir()?;
        let lib = overlay.path().join("usr/lib");
        mkdir(&lib)?;
        fs::write(lib.join("os-release"), os_release(version))?;
        let moved = commit(
            &repo,
            &format!("ref={}", image.commit),
            Some(overlay.path()),
            version,
        )?;
        let layout = work.path().join("layout");
        let oci = layout.join("oci");
        let mut digests = Vec::new();
        for (rev, disk) in [(&image.commit, "first.img"), (&moved, "moved.img")] {
            digests.push(crate::oci::encapsulate(&repo_dir, rev, &oci, "stable")?);
            // skopeo runs as `nobody` under systemd: everything readable.
            cmd::run(Command::new("chmod").args(["-R", "a+rX"]).arg(&layout))?;
            super::image::mkfs_for(&work.path().join(disk), "images", &layout)?;
        }
        fs::remove_dir_all(&repo_dir)?;
        fs::remove_dir_all(&layout)?;
        fs::write(
            work.path().join("digests"),
            format!("{}\n{}\n{moved}\n", digests[0], digests[1]),
        )?;
        if fs::rename(work.path(), &done).is_ok() {
            let _ = work.keep();
        }
        eprintln!(
            "image disks {} built in {:.1?}",
            done.display(),
            t.elapsed()
        );
    }
    let digests = fs::read_to_string(done.join("digests"))?;
    let mut lines = digests.lines().map(str::to_string);
    let mut next = || {
        lines
            .next()
            .ok_or_else(|| anyhow!("{} is incomplete", done.join("digests").display()))
    };
    Ok(ImageDisks {
        first: done.join("first.img"),
        first_digest: next()?,
        moved: done.join("moved.img"),
        moved_digest: next()?,
        moved_commit: next()?,
    })
}

/// `ostree commit` of `tree` (`dir=PATH` or `ref=REV`, plus an optional overlay directory)
/// on [`DEFAULT_REF`], keeping file ownership (the Debian tree has non-root groups).
fn commit(repo: &TestRepo, tree: &str, overlay: Option<&Path>, version: &str) -> Result<String> {
    let mut c = Command::new("ostree");
    c.arg("commit")
        .arg(format!("--repo={}", repo.path().display()))
        .arg(format!("--branch={DEFAULT_REF}"))
        .arg(format!("--tree={tree}"));
    if let Some(o) = overlay {
        c.arg(format!("--tree=dir={}", o.display()));
    }
    c.args(["--no-xattrs", "--bootable"])
        .arg(format!("--subject=StrataTestDebian {version}"))
        .arg(format!("--add-metadata-string=version={version}"));
    let checksum = cmd::run(&mut c)?.trim().to_string();
    repo.update_summary()?;
    Ok(checksum)
}

#[context("Building the systemd image in {}", dir.display())]
fn build_into(
    assets: &GuestAssets,
    rootfs: &Path,
    strata: &Path,
    version: &str,
    dir: &Path,
) -> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(dir.parent().unwrap_or(dir))?;
    let work = work.path();
    let initramfs = build_initramfs(assets, work)?;

    let tree = work.join("tree");
    cmd::run(Command::new("cp").arg("-a").arg(rootfs).arg(&tree))?;
    cmd::run(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", strata.display()))
            .arg(&tree),
    )?;
    write_exec(&tree.join("usr/libexec/strata-vm-control"), CONTROL_SCRIPT)?;
    let units = tree.join("usr/lib/systemd/system");
    let wants = tree.join("etc/systemd/system/multi-user.target.wants");
    mkdir(&wants)?;
    for (name, text) in [
        ("strata-vm-control.service", CONTROL_UNIT),
        ("strata-vm-shutdown.service", SHUTDOWN_UNIT),
    ] {
        fs::write(units.join(name), text)?;
        symlink(format!("/usr/lib/systemd/system/{name}"), wants.join(name))?;
    }
    for masked in [
        "serial-getty@ttyS0.service",
        "getty@tty1.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
    ] {
        let _ = fs::remove_file(tree.join("etc/systemd/system").join(masked));
        symlink("/dev/null", tree.join("etc/systemd/system").join(masked))?;
    }
    fs::write(
        tree.join("etc/fstab"),
        "LABEL=boot /boot ext4 defaults 0 0\n",
    )?;
    fs::write(tree.join("etc/hostname"), "strata-systemd\n")?;
    fs::write(tree.join("etc/strata-test.conf"), "origin=image\n")?;
    fs::write(tree.join("usr/lib/os-release"), os_release(version))?;
    // An empty rpmdb where rpm-ostree systems keep it: packages can be layered on the image.
    mkdir(&tree.join("usr/share/rpm"))?;
    cmd::run(Command::new("rpm").arg("--root").arg(&tree).args([
        "--dbpath",
        "/usr/share/rpm",
        "--initdb",
    ]))?;

    // The ostree layout: /etc in /usr/etc, empty API and state directories, the kernel and
    // initramfs in /usr/lib/modules/<kver>/, /sysroot and the /ostree link.
    fs::rename(tree.join("etc"), tree.join("usr/etc"))?;
    for d in ["var", "dev", "proc", "sys", "run", "tmp", "boot"] {
        let p = tree.join(d);
        fs::remove_dir_all(&p).with_context(|| format!("Emptying {}", p.display()))?;
        mkdir(&p)?;
    }
    mkdir(&tree.join("sysroot"))?;
    symlink("sysroot/ostree", tree.join("ostree"))?;
    let modules = tree.join("usr/lib/modules").join(&assets.kver);
    mkdir(&modules)?;
    fs::copy(&assets.vmlinuz, modules.join("vmlinuz"))?;
    fs::copy(&initramfs, modules.join("initramfs.img"))?;

    let repo = TestRepo::create(&dir.join("repo"))?;
    let checksum = commit(&repo, &format!("dir={}", tree.display()), None, version)?;
    let kargs: Vec<String> = GUEST_KARGS.iter().map(|s| s.to_string()).collect();
    let cfg = write_disk(&repo, &kargs, ROOT_MIB, work, &dir.join("disk.qcow2"))?;
    fs::write(
        dir.join("image.env"),
        format!("COMMIT={checksum}\nKVER={}\n", assets.kver),
    )?;
    fs::write(dir.join("syslinux.cfg"), cfg)?;
    Ok(())
}
