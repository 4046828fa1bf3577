//! Puts this project's build output into a VM image: `strata` (+ the `rpm-ostree` symlink),
//! `stratad`, `dbus-daemon` and every shared library they load, plus a bus configuration for a
//! private system bus inside the guest. Control scripts start the bus and the daemon with
//! [`START_STRATAD`].
//!
//! The binaries are the workspace's `target/<profile>/` builds (build them first:
//! `cargo build -p strata-daemon -p strata-cli`), copied with debug info stripped into
//! `target/vm-cache/bin/` (so the image stays small); their bytes are part of the image hash,
//! so a rebuild of Strata produces a new image.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::assets::cache_root;
use super::image::ImageSpec;
use crate::{cmd, FileEntry, Stratad};

/// Socket of the guest's private system bus.
pub const GUEST_BUS_SOCKET: &str = "/run/strata-bus.sock";

/// Shell lines (busybox sh) that start `dbus-daemon` on [`GUEST_BUS_SOCKET`] and
/// `stratad --no-polkit` on it, export `DBUS_SYSTEM_BUS_ADDRESS`, and wait for the daemon's
/// bus name. The daemon logs to `/run/stratad.log`.
pub const START_STRATAD: &str = r#"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/strata-bus.sock
dbus-daemon --config-file=/usr/share/strata-vm/bus.conf --fork --nopidfile
i=0; while [ ! -S /run/strata-bus.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
/usr/libexec/stratad --bus-address "$DBUS_SYSTEM_BUS_ADDRESS" --sysroot / --no-polkit > /run/stratad.log 2>&1 &
echo "STRATA-MARKER stratad-started $!"
"#;

/// `/etc/rpm-ostreed.conf` of the guest (see `RebootCommand` in packaging/rpm-ostreed.conf).
pub const GUEST_DAEMON_CONFIG: &str = "[Daemon]\nRebootCommand=/usr/bin/reboot\n";

/// A stripped copy of `bin` under `target/vm-cache/bin/`.
fn stripped(bin: &Path) -> Result<PathBuf> {
    let dir = cache_root().join("bin");
    fs::create_dir_all(&dir)?;
    let name = bin.file_name().context("binary without a name")?;
    let out = dir.join(name);
    let tmp = dir.join(format!(
        "{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    cmd::run(
        Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&tmp)
            .arg(bin),
    )?;
    fs::rename(&tmp, &out)?;
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

/// `spec` plus Strata's binaries, `dbus-daemon`, their libraries and the guest bus config.
pub fn with_strata(mut spec: ImageSpec) -> Result<ImageSpec> {
    let stratad = Stratad::binary()?;
    let strata = stratad.with_file_name("strata");
    let bins = [
        (stripped(&stratad)?, "usr/libexec/stratad"),
        (stripped(&strata)?, "usr/bin/strata"),
        (PathBuf::from("/usr/bin/dbus-daemon"), "usr/bin/dbus-daemon"),
        // The guest's shutdown path runs `ostree admin finalize-staged` (see GUEST_INIT).
        (PathBuf::from("/usr/bin/ostree"), "usr/bin/ostree"),
    ];
    let mut libs: Vec<String> = Vec::new();
    for (host, dest) in &bins {
        spec = spec.entry(
            *dest,
            FileEntry::Copy {
                source: host.clone(),
                mode: 0o755,
            },
        );
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
        .entry("usr/bin/rpm-ostree", FileEntry::Symlink("strata".into()))
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
            "usr/share/strata-vm/bus.conf",
            FileEntry::Regular {
                content: crate::bus::allow_all_bus_config("system", GUEST_BUS_SOCKET).into_bytes(),
                mode: 0o644,
            },
        ))
}
