//! Package scriptlets (`%pre`, `%post`, `%posttrans`, and `%transfiletriggerin` of base and
//! layered packages) run in a bubblewrap sandbox over the assembled tree, as rpm-ostree runs
//! them.
//!
//! The tree is a hard-link checkout: its files are the repository's objects, which a script
//! writing a file in place (`echo x >> /etc/passwd`) would corrupt. So the sandbox's `/usr` is
//! an overlayfs whose lower layer is the tree's `usr` and whose upper layer is a scratch
//! directory; after the scripts, what they changed (new and modified files, removals as
//! whiteouts) is moved into the tree, replacing the hard links it touches. The overlay is
//! mounted in a private mount namespace (`unshare --mount`) that ends with the sandbox, so a
//! killed daemon leaves no mount behind.
//!
//! Inside: `/usr` (the overlay), `/etc` → `usr/etc`, the `/usr` merge's symlinks, a fresh
//! `/proc`, `/dev`, tmpfs `/tmp`, `/run` and `/var` (state written there is not part of the
//! tree, as in rpm-ostree), `/run/ostree-booted`; no network (new network namespace), its own
//! pid, ipc and uts namespaces; every capability dropped but the few package scripts need;
//! environment cleared but `PATH` and `SYSTEMD_OFFLINE=1`. Lua scriptlets (rpm's embedded
//! interpreter) are refused, naming the package. Cancelling kills the sandbox.

use std::fs::{self, File};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::escape_for_message as esc;
use super::nevra::Nevra;
use crate::progress::OpContext;

/// When a scriptlet runs, in rpm's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// `%pre`: before the package's files (here: before ownership is applied).
    Pre,
    /// `%post`.
    Post,
    /// `%posttrans`: after every package's `%post`.
    PostTrans,
    /// `%transfiletriggerin`: once after the transaction, with the matching files on stdin.
    TransFileTriggerIn,
    /// The tree's `systemd-sysusers`, for the users and groups new packages declare in
    /// `/usr/lib/sysusers.d` (after `%pre`, before ownership is applied).
    Sysusers,
}

impl Phase {
    /// rpm's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pre => "%pre",
            Phase::Post => "%post",
            Phase::PostTrans => "%posttrans",
            Phase::TransFileTriggerIn => "%transfiletriggerin",
            Phase::Sysusers => "systemd-sysusers",
        }
    }

    /// The argument rpm passes: the number of instances of the package after the operation
    /// (1 on a fresh install) for `%pre` and `%post`; `%posttrans` gets none.
    fn arg(self) -> Option<&'static str> {
        match self {
            Phase::Pre | Phase::Post => Some("1"),
            Phase::PostTrans | Phase::TransFileTriggerIn | Phase::Sysusers => None,
        }
    }
}

/// One scriptlet of one package.
#[derive(Debug, Clone)]
pub struct Scriptlet {
    /// The package.
    pub nevra: Nevra,
    /// When it runs.
    pub phase: Phase,
    /// Interpreter and its arguments (`/bin/sh` when the header names none).
    pub program: Vec<String>,
    /// The script; `None` for an interpreter-only scriptlet (`%post -p /sbin/ldconfig`).
    pub body: Option<String>,
    /// What the script reads on stdin (a file trigger's matching paths, one per line).
    pub input: Option<String>,
}

/// The scriptlets of a package's header (its lead-and-headers bytes), refusing Lua.
pub fn scriptlets(nevra: &Nevra, header: &[u8]) -> Result<Vec<Scriptlet>> {
    let meta = rpm::PackageMetadata::parse(&mut &header[..])
        .map_err(|e| anyhow!("{nevra}: reading the package header: {e}"))?;
    let h = &meta.header;
    use rpm::IndexTag::*;
    let mut out = Vec::new();
    for (phase, body_tag, prog_tag) in [
        (Phase::Pre, RPMTAG_PREIN, RPMTAG_PREINPROG),
        (Phase::Post, RPMTAG_POSTIN, RPMTAG_POSTINPROG),
        (Phase::PostTrans, RPMTAG_POSTTRANS, RPMTAG_POSTTRANSPROG),
    ] {
        let body = h
            .get_entry_data_as_string(body_tag)
            .ok()
            .map(str::to_string);
        let program: Vec<String> = h
            .get_entry_data_as_string_array(prog_tag)
            .map(|v| v.into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        if body.is_none() && program.is_empty() {
            continue;
        }
        if program.first().map(String::as_str) == Some("<lua>") {
            bail!(
                "{nevra} has a Lua {} scriptlet; Strata runs scriptlets in a sandboxed shell and cannot run rpm's embedded Lua, so it refuses to layer this package",
                phase.name()
            );
        }
        let program = if program.is_empty() {
            vec!["/bin/sh".to_string()]
        } else {
            program
        };
        out.push(Scriptlet {
            nevra: nevra.clone(),
            phase,
            program,
            body,
            input: None,
        });
    }
    Ok(out)
}

/// Where packages declare their users and groups.
const SYSUSERS_DIR: &str = "/usr/lib/sysusers.d/";

/// The tree's `systemd-sysusers` to run when one of the new packages (their nevra and
/// lead-and-headers bytes) ships a `sysusers.d` file; `None` when none does, or when the tree
/// has no `systemd-sysusers` (then only scriptlets create users, and a file owned by a user
/// nobody created is an error naming it).
pub fn sysusers(root: &Path, packages: &[(Nevra, Vec<u8>)]) -> Result<Option<Scriptlet>> {
    const PROGRAM: &str = "usr/bin/systemd-sysusers";
    for (nevra, header) in packages {
        let meta = rpm::PackageMetadata::parse(&mut &header[..])
            .map_err(|e| anyhow!("{nevra}: reading the package header: {e}"))?;
        let ships = meta
            .get_file_paths()
            .map_err(|e| anyhow!("{nevra}: reading the file list: {e}"))?
            .iter()
            .any(|p| p.to_string_lossy().starts_with(SYSUSERS_DIR));
        if ships {
            let present = fs::symlink_metadata(root.join(PROGRAM)).is_ok();
            return Ok(present.then(|| Scriptlet {
                nevra: nevra.clone(),
                phase: Phase::Sysusers,
                program: vec![format!("/{PROGRAM}")],
                body: None,
                input: None,
            }));
        }
    }
    Ok(None)
}

/// rpm's `RPMSENSE_TRIGGERIN`: the trigger runs on installation.
const SENSE_TRIGGERIN: u32 = 1 << 16;
/// rpm's `RPMSCRIPT_FLAG_EXPAND`: the script is macro-expanded first.
const SCRIPT_FLAG_EXPAND: u32 = 1;
/// Separates the fields of [`trans_file_triggers`]'s query.
const FIELDS: [&str; 7] = [
    "@strata-scripts@",
    "@strata-progs@",
    "@strata-flags@",
    "@strata-names@",
    "@strata-index@",
    "@strata-sense@",
    "@strata-end@",
];

/// The `%transfiletriggerin` scripts of every package in the tree's rpmdb (the base's and the
/// layered ones), each with the files under its path prefixes in the tree, as rpm-ostree runs
/// them after `%posttrans`: a trigger whose prefixes match nothing does not run; prefixes
/// outside `/usr` or under `/usr/local` are not looked at. rpm's Lua is refused, naming the
/// package, except glibc-common's, which rpm-ostree also replaces by `/sbin/ldconfig`.
pub fn trans_file_triggers(root: &Path, dbpath: &str) -> Result<Vec<Scriptlet>> {
    // rpm prints the trigger tags with its `shescape` format (POSIX single quotes), the only
    // unambiguous text form rpm 4.18 has for multi-line strings; shlex reads it back. The
    // bare marker words separate the arrays.
    let qf = format!(
        "%{{NAME:shescape}} %{{EPOCHNUM}} %{{VERSION:shescape}} %{{RELEASE:shescape}} \
         %{{ARCH:shescape}} {} [%{{TRANSFILETRIGGERSCRIPTS:shescape}} ]{} \
         [%{{TRANSFILETRIGGERSCRIPTPROG:shescape}} ]{} [%{{TRANSFILETRIGGERSCRIPTFLAGS}} ]{} \
         [%{{TRANSFILETRIGGERNAME:shescape}} ]{} [%{{TRANSFILETRIGGERINDEX}} ]{} \
         [%{{TRANSFILETRIGGERFLAGS}} ]{}\n",
        FIELDS[0], FIELDS[1], FIELDS[2], FIELDS[3], FIELDS[4], FIELDS[5], FIELDS[6]
    );
    let out = super::rpmdb::query_format(root, dbpath, &qf)?;
    let words = shlex::split(&out)
        .ok_or_else(|| anyhow!("Unreadable trigger list from rpm (unbalanced quotes)"))?;
    let mut out = Vec::new();
    for record in words.split(|w| w == FIELDS[6]).filter(|r| !r.is_empty()) {
        out.extend(record_triggers(root, record)?);
    }
    Ok(out)
}

/// The triggers of one package's record of the query above.
fn record_triggers(root: &Path, record: &[String]) -> Result<Vec<Scriptlet>> {
    let bad = || {
        anyhow!(
            "Unexpected trigger list from rpm: {}",
            esc(&record.join(" "))
        )
    };
    let [name, epoch, version, release, arch, rest @ ..] = record else {
        return Err(bad());
    };
    let nevra = Nevra {
        name: name.clone(),
        epoch: epoch.parse().map_err(|_| bad())?,
        version: version.clone(),
        release: release.clone(),
        arch: arch.clone(),
    };
    // rest = @scripts@ S.. @progs@ P.. @flags@ F.. @names@ N.. @index@ I.. @sense@ T..
    let mut fields: Vec<&[String]> = Vec::new();
    let mut start = None;
    for (i, w) in rest.iter().enumerate() {
        if FIELDS[..6].contains(&w.as_str()) {
            if let Some(s) = start {
                fields.push(&rest[s..i]);
            }
            start = Some(i + 1);
        }
    }
    fields.push(&rest[start.ok_or_else(bad)?..]);
    let [scripts, progs, flags, names, index, sense] = fields[..] else {
        return Err(bad());
    };
    let number = |v: &String| v.parse::<u32>().map_err(|_| bad());
    let flags: Vec<u32> = flags.iter().map(number).collect::<Result<_>>()?;
    let index: Vec<u32> = index.iter().map(number).collect::<Result<_>>()?;
    let sense: Vec<u32> = sense.iter().map(number).collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (i, script) in scripts.iter().enumerate() {
        let patterns: Vec<&str> = names
            .iter()
            .enumerate()
            .filter(|(j, _)| index.get(*j) == Some(&(i as u32)))
            .filter(|(j, _)| sense.get(*j).is_some_and(|s| s & SENSE_TRIGGERIN != 0))
            .map(|(_, n)| n.trim_start_matches('/'))
            .filter(|n| !n.is_empty())
            .collect();
        if patterns.is_empty() {
            continue;
        }
        let mut files = Vec::new();
        for p in patterns {
            matching_files(root, p, &mut files)?;
        }
        if files.is_empty() {
            continue;
        }
        let (program, body) = match progs.get(i).map(String::as_str).unwrap_or("/bin/sh") {
            "<lua>" if nevra.name == "glibc-common" => {
                ("/usr/bin/sh".to_string(), "/sbin/ldconfig".to_string())
            }
            "<lua>" => bail!(
                "{nevra} has a Lua %transfiletriggerin scriptlet; Strata runs scriptlets in a sandboxed shell and cannot run rpm's embedded Lua"
            ),
            prog => (prog.to_string(), script.clone()),
        };
        if flags.get(i).is_some_and(|f| f & SCRIPT_FLAG_EXPAND != 0) {
            bail!(
                "{nevra} has a %transfiletriggerin scriptlet that needs rpm macro expansion, which Strata cannot do"
            );
        }
        out.push(Scriptlet {
            nevra: nevra.clone(),
            phase: Phase::TransFileTriggerIn,
            program: vec![program],
            body: Some(body),
            input: Some(files.iter().map(|f| format!("{f}\n")).collect()),
        });
    }
    Ok(out)
}

/// The files under `pattern` (a path relative to the root, a file or a directory) in the tree,
/// as absolute paths, like `find PATTERN -not -type d`; only under `/usr`, not `/usr/local`.
fn matching_files(root: &Path, pattern: &str, out: &mut Vec<String>) -> Result<()> {
    let pattern = pattern.trim_end_matches('/');
    if !pattern.starts_with("usr/") || pattern.starts_with("usr/local") {
        return Ok(());
    }
    if pattern.split('/').any(|c| c == "..") {
        return Ok(());
    }
    let path = root.join(pattern);
    // The prefix itself may be a symlink to a directory (followed, as rpm-ostree does); below
    // it, symlinks are entries like files.
    match fs::metadata(&path) {
        Ok(m) if m.is_dir() => walk_files(&path, &format!("/{pattern}"), out),
        Ok(_) => {
            out.push(format!("/{pattern}"));
            Ok(())
        }
        Err(_) => Ok(()),
    }
}

fn walk_files(dir: &Path, shown: &str, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = format!("{shown}/{name}");
        if e.file_type()?.is_dir() {
            walk_files(&e.path(), &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

/// The capabilities package scripts keep (rpm-ostree's list).
const KEPT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
];

/// Runs scriptlets over the tree `root` and keeps what they change.
#[derive(Debug)]
pub struct Sandbox {
    root: PathBuf,
    scratch: PathBuf,
}

impl Sandbox {
    /// A sandbox over `root`, with its scratch space in `scratch` (on the same filesystem, so
    /// changed files can be moved into the tree).
    pub fn new(root: &Path, scratch: &Path) -> Result<Sandbox> {
        fs::create_dir_all(scratch)?;
        Ok(Sandbox {
            root: root.to_path_buf(),
            scratch: scratch.to_path_buf(),
        })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// Runs `scripts` in order, then moves what they changed into the tree.
    pub fn run_all(&self, scripts: &[Scriptlet], ctx: &OpContext) -> Result<()> {
        if scripts.is_empty() {
            return Ok(());
        }
        for d in ["upper", "work", "merged"] {
            let p = self.dir(d);
            if p.exists() {
                fs::remove_dir_all(&p)?;
            }
            fs::create_dir_all(&p)?;
        }
        for (i, s) in scripts.iter().enumerate() {
            ctx.check_cancelled()?;
            self.run_one(i, s, ctx)?;
        }
        apply_upper(&self.dir("upper"), &self.root.join("usr"))
            .context("Keeping what the scriptlets changed")?;
        fs::remove_dir_all(self.dir("upper"))?;
        fs::remove_dir_all(self.dir("work"))?;
        Ok(())
    }

    fn run_one(&self, i: usize, s: &Scriptlet, ctx: &OpContext) -> Result<()> {
        let what = format!("{} {} scriptlet", s.nevra, s.phase.name());
        let script = self.dir(&format!("script-{i}"));
        fs::write(&script, s.body.as_deref().unwrap_or(""))?;
        let booted = self.dir("ostree-booted");
        File::create(&booted)?;
        let log_path = self.dir(&format!("script-{i}.log"));
        let log = File::create(&log_path)?;

        let overlay = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.root.join("usr").display(),
            self.dir("upper").display(),
            self.dir("work").display()
        );
        let merged = self.dir("merged");
        let mut cmd = Command::new("unshare");
        // The overlay exists only in this private mount namespace, which ends with the sandbox.
        cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg("mount -t overlay overlay -o \"$1\" \"$2\" && shift 2 && exec \"$@\"")
            .arg("sh")
            .arg(&overlay)
            .arg(&merged)
            .arg("bwrap")
            .args([
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-net",
                "--unshare-cgroup-try",
                "--die-with-parent",
                "--new-session",
                "--cap-drop",
                "ALL",
            ]);
        for cap in KEPT_CAPS {
            cmd.args(["--cap-add", cap]);
        }
        cmd.args(["--clearenv", "--setenv", "PATH", "/usr/sbin:/usr/bin"])
            .args(["--setenv", "SYSTEMD_OFFLINE", "1"])
            .arg("--bind")
            .arg(&merged)
            .arg("/usr")
            .args(["--symlink", "usr/etc", "/etc"]);
        for dir in ["bin", "sbin", "lib", "lib64"] {
            cmd.args(["--symlink", &format!("usr/{dir}"), &format!("/{dir}")]);
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev"])
            .args(["--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/var"])
            .arg("--ro-bind")
            .arg(&booted)
            .arg("/run/ostree-booted")
            .arg("--ro-bind")
            .arg(&script)
            .arg("/run/strata-scriptlet")
            .args(["--chdir", "/", "--"])
            .args(&s.program);
        if s.body.is_some() {
            cmd.arg("/run/strata-scriptlet");
        }
        if let Some(arg) = s.phase.arg() {
            cmd.arg(arg);
        }
        let stdin = match &s.input {
            Some(text) => {
                let path = self.dir(&format!("script-{i}.input"));
                fs::write(&path, text)?;
                Stdio::from(File::open(&path)?)
            }
            None => Stdio::null(),
        };
        cmd.stdin(stdin).stdout(log.try_clone()?).stderr(log);
        tracing::debug!("Running {what}");
        let mut child = cmd.spawn().with_context(|| {
            format!("Starting the sandbox for the {what} (are unshare and bwrap installed?)")
        })?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if ctx.check_cancelled().is_err() {
                // bwrap's child dies with it (--die-with-parent), and with it the namespaces.
                let _ = child.kill();
                let _ = child.wait();
                return Err(crate::progress::Cancelled.into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        if !output.trim().is_empty() {
            tracing::info!("{what}: {}", esc(output.trim()));
        }
        if !status.success() {
            let tail: Vec<&str> = output.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "The {what} failed ({status}){}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(":\n{}", esc(&tail.join("\n")))
                }
            );
        }
        Ok(())
    }
}

/// overlayfs marks a removed entry with a 0:0 character device.
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether overlayfs marked the directory opaque (it replaces the lower one entirely).
fn is_opaque(path: &Path) -> bool {
    let mut v = [0u8; 2];
    matches!(rustix::fs::lgetxattr(path, "trusted.overlay.opaque", &mut v), Ok(1) if v[0] == b'y')
}

/// Removes overlayfs' own extended attributes (`trusted.overlay.*`) from `path`.
fn strip_overlay_xattrs(path: &Path) -> Result<()> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            let name = std::str::from_utf8(name).unwrap_or_default();
            rustix::fs::lremovexattr(path, name)
                .with_context(|| format!("Removing {name} from {}", path.display()))?;
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// Moves the overlay's upper layer `upper` into `target`: whiteouts remove, opaque
/// directories replace, files and symlinks replace (new inodes, so the repository's hard-linked
/// objects are never written), directories merge and take the upper's ownership and mode.
pub fn apply_upper(upper: &Path, target: &Path) -> Result<()> {
    for entry in fs::read_dir(upper)? {
        let entry = entry?;
        let src = entry.path();
        let dest = target.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        if is_whiteout(&meta) {
            remove_any(&dest)?;
        } else if meta.is_dir() {
            let dest_is_dir = fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir());
            if !dest_is_dir || is_opaque(&src) {
                remove_any(&dest)?;
                fs::create_dir(&dest)?;
            }
            std::os::unix::fs::lchown(&dest, Some(meta.uid()), Some(meta.gid()))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
            apply_upper(&src, &dest)?;
        } else {
            remove_any(&dest)?;
            fs::rename(&src, &dest)
                .with_context(|| format!("Moving {} into the tree", src.display()))?;
            strip_overlay_xattrs(&dest)?;
        }
    }
    Ok(())
}
