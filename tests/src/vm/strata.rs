//! Puts this project's build output into a VM image: what `make install-files` lays out
//! (`strata` + the `rpm-ostree` symlink, `stratad`, the D-Bus activation file and bus policy,
//! the systemd unit, the polkit actions, tmpfiles, the default `rpm-ostreed.conf`, man pages
//! and completions) from the workspace's current `target/<profile>/` build, with stripped
//! binaries, plus `dbus-daemon`, the `ostree` CLI and every shared library they load.
//!
//! On the busybox guest nothing starts `stratad` by hand: [`START_SYSTEM_BUS`] starts a system
//! bus ([`GUEST_BUS_CONFIG`]: Debian's default deny policy, the packaged policy from
//! `/usr/share/dbus-1/system.d` and the packaged activation file from
//! `/usr/share/dbus-1/system-services`), and the first `strata` call bus-activates
//! `stratad` through that file's `Exec=` line (no systemd there, so no `SystemdService=`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use super::assets::cache_root;
use super::image::{Hasher, ImageSpec};
use crate::bus::system_default_policy;
use crate::{cmd, FileEntry, Stratad};

/// Socket of the guest's system bus (the default system bus address).
pub const GUEST_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";

/// The busybox guest's system bus configuration (`/usr/share/strata-vm/system.conf`): the
/// shape of Debian's `/usr/share/dbus-1/system.conf` without its `<user>`, `<servicehelper>`
/// and systemd activation (dbus-daemon runs as root and execs activated services itself).
pub const GUEST_BUS_CONFIG: &str = concat!(
    r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <standard_system_servicedirs/>
"#,
    system_default_policy!(),
    r#"  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
"#
);

/// Shell lines (busybox sh) that start the guest's system bus ([`GUEST_BUS_CONFIG`]); its
/// output, and that of the `stratad` it activates, goes to `/run/dbus.log`.
pub const START_SYSTEM_BUS: &str = r#"
mkdir -p /run/dbus
dbus-daemon --config-file=/usr/share/strata-vm/system.conf --nofork --nopidfile > /run/dbus.log 2>&1 &
i=0; while [ ! -S /run/dbus/system_bus_socket ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "STRATA-MARKER bus-started $!"
"#;

/// `/etc/rpm-ostreed.conf` of the busybox guest (see `RebootCommand` in
/// packaging/rpm-ostreed.conf).
pub const GUEST_DAEMON_CONFIG: &str = "[Daemon]\nRebootCommand=/usr/bin/reboot\n";

/// The workspace root (where the Makefile is).
fn workspace_root() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests).to_path_buf()
}

/// `make install-files` of the workspace's current build into `dest` (stripped binaries).
#[context("Installing Strata's build output into {}", dest.display())]
fn install_files(dest: &Path) -> Result<()> {
    let stratad = Stratad::binary()?;
    let bindir = stratad
        .parent()
        .ok_or_else(|| anyhow!("no directory in {}", stratad.display()))?;
    cmd::run(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(workspace_root())
            .arg("install-files")
            .arg(format!("DESTDIR={}", dest.display()))
            .arg(format!("BINDIR={}", bindir.display()))
            .arg("INSTALL_PROGRAM=install -s"),
    )?;
    Ok(())
}

/// The `make install-files` tree of the current build, kept under
/// `target/vm-cache/install/<hash of its content>/` (older trees are removed); installed once
/// per process.
pub fn installed_tree() -> Result<PathBuf> {
    static TREE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(t) = TREE.get() {
        return Ok(t.clone());
    }
    let t = install_tree_now()?;
    Ok(TREE.get_or_init(|| t).clone())
}

fn install_tree_now() -> Result<PathBuf> {
    let base = cache_root().join("install");
    fs::create_dir_all(&base)?;
    let work = tempfile::Builder::new().prefix("tmp-").tempdir_in(&base)?;
    let root = work.path().join("root");
    install_files(&root)?;
    let mut h = Hasher(0xcbf2_9ce4_8422_2325);
    h.tree(&root)?;
    let name = format!("{:016x}", h.0);
    let dir = base.join(&name);
    // Fails when another test process installed the same build first: theirs is used.
    let _ = fs::rename(&root, &dir);
    for e in fs::read_dir(&base)?.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n != name && !n.starts_with("tmp-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(dir)
}

/// Every file and symlink under `dir`: (path relative to `dir`, host path).
pub(crate) fn walk(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("Reading {}", d.display()))? {
            let path = e?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)?
                    .to_str()
                    .ok_or_else(|| anyhow!("non-UTF-8 path {}", path.display()))?
                    .to_string();
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Where a host library path lands in the image (`/lib/...` and `/lib64/...` are symlinks
/// into `/usr` in the test OS).
fn image_path(host: &str) -> String {
    let p = host.trim_start_matches('/');
    if p.starts_with("usr/") {
        p.to_string()
    } else {
        format!("usr/{p}")
    }
}

/// `spec` plus [`installed_tree`] (its `/etc` files under `/usr/etc`, the guest's own
/// `rpm-ostreed.conf` instead of the default), `dbus-daemon`, `ostree`, their libraries and
/// the guest bus config.
pub fn with_strata(mut spec: ImageSpec) -> Result<ImageSpec> {
    use std::os::unix::fs::PermissionsExt;
    let tree = installed_tree()?;
    for (rel, path) in walk(&tree)? {
        if rel == "etc/rpm-ostreed.conf" {
            continue;
        }
        let dest = match rel.strip_prefix("etc/") {
            Some(r) => format!("usr/etc/{r}"),
            None => rel,
        };
        let meta = fs::symlink_metadata(&path)?;
        let entry = if meta.file_type().is_symlink() {
            FileEntry::Symlink(fs::read_link(&path)?.to_string_lossy().into_owned())
        } else {
            FileEntry::Copy {
                source: path.clone(),
                mode: meta.permissions().mode() & 0o7777,
            }
        };
        spec = spec.entry(dest, entry);
    }
    let bins = [
        tree.join("usr/libexec/stratad"),
        tree.join("usr/bin/strata"),
        PathBuf::from("/usr/bin/dbus-daemon"),
        // The guest's shutdown path runs `ostree admin finalize-staged` (see GUEST_INIT).
        PathBuf::from("/usr/bin/ostree"),
    ];
    for host in &bins[2..] {
        spec = spec.entry(
            host.to_string_lossy().trim_start_matches('/'),
            FileEntry::Copy {
                source: host.clone(),
                mode: 0o755,
            },
        );
    }
    let mut libs: Vec<String> = Vec::new();
    for host in &bins {
        let ldd = cmd::run(Command::new("ldd").arg(host))?;
        for line in ldd.lines() {
            let path = match line.split_once("=>") {
                Some((_, rhs)) => rhs.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(p) = path.filter(|p| p.starts_with('/')) {
                if !libs.iter().any(|l| l == p) {
                    libs.push(p.to_string());
                }
            }
        }
    }
    for lib in libs {
        let real = fs::canonicalize(&lib).with_context(|| format!("Resolving {lib}"))?;
        spec = spec.entry(
            image_path(&lib),
            FileEntry::Copy {
                source: real,
                mode: 0o755,
            },
        );
    }
    Ok(spec
        // stratad's config: the busybox guest has no `systemctl`; its `reboot` signals the
        // guest init, which takes the shutdown path (finalization) and ends QEMU.
        .entry(
            "usr/etc/rpm-ostreed.conf",
            FileEntry::Regular {
                content: GUEST_DAEMON_CONFIG.as_bytes().to_vec(),
                mode: 0o644,
            },
        )
        .entry(
            "usr/share/strata-vm/system.conf",
            FileEntry::Regular {
                content: GUEST_BUS_CONFIG.as_bytes().to_vec(),
                mode: 0o644,
            },
        ))
}
