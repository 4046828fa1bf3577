//! Test RPMs built with the real `rpmbuild` ([`RpmSpec`]) and repositories indexed with the real
//! `createrepo_c` ([`RpmRepo`]), for the layering tests, the demo and the VM images.
//!
//! ```no_run
//! # use strata_tests::{RpmRepo, RpmSpec};
//! # fn main() -> anyhow::Result<()> {
//! let repo = RpmRepo::create(std::path::Path::new("/tmp/x/rpms"))?;
//! repo.add_all(&[
//!     RpmSpec::new("hello", "1.0").requires("libhello").executable("usr/bin/hello", "#!/bin/sh\n"),
//!     RpmSpec::new("libhello", "1.0").file("usr/lib64/libhello.so.1", "elf\n"),
//! ])?;
//! std::fs::write("/tmp/x/yum.repos.d/test.repo", repo.repo_file("test", &repo.file_url()))?;
//! # Ok(())
//! # }
//! ```
//!
//! Every package is built with `AutoReqProv: no` (its dependencies are exactly the ones given),
//! without build-id links, debuginfo or post-install processing, so the payload is exactly the
//! entries given. rpmbuild still adds `rpmlib(...)` requirements and, for each shell scriptlet, a
//! `Requires(<phase>): /bin/sh` that the base must provide (see [`base_shell_package`]).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, ensure, Context, Result};
use fn_error_context::context;

use crate::cmd;

/// One entry of a package's payload (see [`RpmSpec::entry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpmEntry {
    /// A regular file with this content and permission bits (owned by `owner`).
    Regular {
        /// File content.
        content: Vec<u8>,
        /// Permission bits, e.g. `0o644`, `0o4755`.
        mode: u32,
    },
    /// A `%config(noreplace)` file.
    Config {
        /// File content.
        content: Vec<u8>,
    },
    /// A regular file copied from the host (e.g. a real program), with these permission bits.
    Copy {
        /// Host path to copy from.
        source: PathBuf,
        /// Permission bits of the copy.
        mode: u32,
    },
    /// A directory owned by the package, with these permission bits.
    Dir {
        /// Permission bits, e.g. `0o755`.
        mode: u32,
    },
    /// A symbolic link with this target, stored verbatim.
    Symlink(String),
    /// A hard link to the regular file at this other path of the same package.
    HardLink(String),
    /// A device node declared with `%dev` (rpmbuild records it without creating it).
    Device {
        /// `'c'` or `'b'`.
        kind: char,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// When a scriptlet runs (the spec section that holds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptPhase {
    /// `%pre`.
    Pre,
    /// `%post`.
    Post,
    /// `%posttrans`.
    PostTrans,
    /// `%preun`.
    PreUn,
    /// `%postun`.
    PostUn,
    /// `%filetriggerin -- PATHS`: runs when a package installs files under the prefixes.
    FileTriggerIn(Vec<String>),
    /// `%transfiletriggerin -- PATHS`: once at the end of the transaction.
    TransFileTriggerIn(Vec<String>),
}

impl ScriptPhase {
    fn section(&self) -> String {
        let triggered = |name: &str, paths: &[String]| format!("%{name} -- {}", paths.join(" "));
        match self {
            ScriptPhase::Pre => "%pre".into(),
            ScriptPhase::Post => "%post".into(),
            ScriptPhase::PostTrans => "%posttrans".into(),
            ScriptPhase::PreUn => "%preun".into(),
            ScriptPhase::PostUn => "%postun".into(),
            ScriptPhase::FileTriggerIn(p) => triggered("filetriggerin", p),
            ScriptPhase::TransFileTriggerIn(p) => triggered("transfiletriggerin", p),
        }
    }
}

/// A scriptlet: its phase, interpreter (`None`: `/bin/sh`; `Some("<lua>")`: rpm's embedded Lua)
/// and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scriptlet {
    /// When it runs.
    pub phase: ScriptPhase,
    /// `-p` argument; `None` is the default shell.
    pub interpreter: Option<String>,
    /// The script itself.
    pub body: String,
}

/// Payload compression (`_binary_payload`). Fedora builds use zstd; rpmbuild's default here is
/// gzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// rpmbuild's default on this host.
    #[default]
    Default,
    /// `w19.zstdio`, as Fedora and CentOS Stream build.
    Zstd,
    /// `w9.gzdio`.
    Gzip,
    /// `w6.xzdio`.
    Xz,
    /// `w.ufdio`: no compression, so tests can edit the payload in place (see [`patch`]).
    None,
}

/// Description of one binary RPM, built by [`RpmSpec::build`] with `rpmbuild -bb`.
#[derive(Debug, Clone)]
pub struct RpmSpec {
    /// `Name:`.
    pub name: String,
    /// `Epoch:` (none by default).
    pub epoch: Option<u32>,
    /// `Version:`.
    pub version: String,
    /// `Release:` (default `1`).
    pub release: String,
    /// `BuildArch:` (default `noarch`).
    pub arch: String,
    /// `Requires:` lines (each may carry a version: `libfoo >= 1.0`).
    pub requires: Vec<String>,
    /// `Provides:` lines.
    pub provides: Vec<String>,
    /// `Conflicts:` lines.
    pub conflicts: Vec<String>,
    /// `Obsoletes:` lines.
    pub obsoletes: Vec<String>,
    /// Payload entries (relative paths), in order.
    pub files: Vec<(String, RpmEntry)>,
    /// Owner and group of every payload entry (default `root`, `root`).
    pub owner: (String, String),
    /// Scriptlets.
    pub scripts: Vec<Scriptlet>,
    /// Payload compression.
    pub compression: Compression,
    /// `%changelog` entries, newest first: (date as rpm writes it, e.g. `Mon Nov 30 2026`,
    /// author line, text).
    pub changelog: Vec<(String, String, String)>,
}

impl RpmSpec {
    /// A noarch package `name-version-1` with no files, dependencies or scripts.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        RpmSpec {
            name: name.into(),
            epoch: None,
            version: version.into(),
            release: "1".into(),
            arch: "noarch".into(),
            requires: Vec::new(),
            provides: Vec::new(),
            conflicts: Vec::new(),
            obsoletes: Vec::new(),
            files: Vec::new(),
            owner: ("root".into(), "root".into()),
            scripts: Vec::new(),
            compression: Compression::Default,
            changelog: Vec::new(),
        }
    }

    /// Adds a `%changelog` entry (give them newest first, as rpm keeps them): `date` as rpm
    /// writes it (`Mon Nov 30 2026`), `author` (`Name <mail> - 1.0-1`), `text` (lines).
    pub fn changelog(
        mut self,
        date: impl Into<String>,
        author: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        self.changelog
            .push((date.into(), author.into(), text.into()));
        self
    }

    /// Sets `Release:`.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = release.into();
        self
    }

    /// Sets `Epoch:`.
    pub fn epoch(mut self, epoch: u32) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// Sets `BuildArch:` (e.g. `x86_64` for a package with a host program in it).
    pub fn arch(mut self, arch: impl Into<String>) -> Self {
        self.arch = arch.into();
        self
    }

    /// Adds a `Requires:`.
    pub fn requires(mut self, dep: impl Into<String>) -> Self {
        self.requires.push(dep.into());
        self
    }

    /// Adds a `Provides:`.
    pub fn provides(mut self, cap: impl Into<String>) -> Self {
        self.provides.push(cap.into());
        self
    }

    /// Adds a `Conflicts:`.
    pub fn conflicts(mut self, dep: impl Into<String>) -> Self {
        self.conflicts.push(dep.into());
        self
    }

    /// Adds an `Obsoletes:`.
    pub fn obsoletes(mut self, dep: impl Into<String>) -> Self {
        self.obsoletes.push(dep.into());
        self
    }

    /// Adds a regular 0644 file.
    pub fn file(self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.entry(
            path,
            RpmEntry::Regular {
                content: content.into(),
                mode: 0o644,
            },
        )
    }

    /// Adds a regular 0755 file.
    pub fn executable(self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.entry(
            path,
            RpmEntry::Regular {
                content: content.into(),
                mode: 0o755,
            },
        )
    }

    /// Adds a `%config(noreplace)` file.
    pub fn config(self, path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.entry(
            path,
            RpmEntry::Config {
                content: content.into(),
            },
        )
    }

    /// Adds an owned 0755 directory.
    pub fn dir(self, path: impl Into<String>) -> Self {
        self.entry(path, RpmEntry::Dir { mode: 0o755 })
    }

    /// Adds a symbolic link.
    pub fn symlink(self, path: impl Into<String>, target: impl Into<String>) -> Self {
        self.entry(path, RpmEntry::Symlink(target.into()))
    }

    /// Adds any entry.
    pub fn entry(mut self, path: impl Into<String>, entry: RpmEntry) -> Self {
        self.files.push((path.into(), entry));
        self
    }

    /// Sets the owner and group of every payload entry.
    pub fn owner(mut self, user: impl Into<String>, group: impl Into<String>) -> Self {
        self.owner = (user.into(), group.into());
        self
    }

    /// Adds a `/bin/sh` scriptlet.
    pub fn script(mut self, phase: ScriptPhase, body: impl Into<String>) -> Self {
        self.scripts.push(Scriptlet {
            phase,
            interpreter: None,
            body: body.into(),
        });
        self
    }

    /// Adds a scriptlet run by `interpreter` (`<lua>` for rpm's embedded Lua).
    pub fn script_with(
        mut self,
        phase: ScriptPhase,
        interpreter: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        self.scripts.push(Scriptlet {
            phase,
            interpreter: Some(interpreter.into()),
            body: body.into(),
        });
        self
    }

    /// Sets the payload compression.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
    pub fn nevra(&self) -> String {
        format!("{}-{}.{}", self.name, self.evr(), self.arch)
    }

    /// `[EPOCH:]VERSION-RELEASE`.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// The file name rpmbuild gives the package: `NAME-VERSION-RELEASE.ARCH.rpm`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}.{}.rpm",
            self.name, self.version, self.release, self.arch
        )
    }

    /// The spec file text, with payload entries taken from `payload` by `%install`.
    fn spec_text(&self, payload: &Path) -> Result<String> {
        for word in [&self.name, &self.version, &self.release, &self.arch] {
            check_spec_word(word)?;
        }
        let mut s = String::new();
        let _ = writeln!(s, "Name: {}", self.name);
        if let Some(e) = self.epoch {
            let _ = writeln!(s, "Epoch: {e}");
        }
        let _ = writeln!(s, "Version: {}", self.version);
        let _ = writeln!(s, "Release: {}", self.release);
        let _ = writeln!(s, "Summary: Strata test package {}", self.name);
        let _ = writeln!(s, "License: MIT");
        let _ = writeln!(s, "BuildArch: {}", self.arch);
        let _ = writeln!(s, "AutoReqProv: no");
        for (tag, deps) in [
            ("Requires", &self.requires),
            ("Provides", &self.provides),
            ("Conflicts", &self.conflicts),
            ("Obsoletes", &self.obsoletes),
        ] {
            for dep in deps {
                ensure!(
                    !dep.contains(['\n', '%']),
                    "{tag} {dep:?} of {}: no newlines or '%'",
                    self.name
                );
                let _ = writeln!(s, "{tag}: {dep}");
            }
        }
        let _ = writeln!(s, "\n%description\nStrata test package {}.\n", self.name);
        let _ = writeln!(s, "%install\nmkdir -p %{{buildroot}}");
        let _ = writeln!(
            s,
            "cp -a {}/. %{{buildroot}}/\n",
            shell_quote(&payload.to_string_lossy())
        );
        for script in &self.scripts {
            let mut header = script.phase.section();
            if let Some(interp) = &script.interpreter {
                let _ = write!(header, " -p {interp}");
            }
            let _ = writeln!(s, "{header}\n{}\n", script.body.replace('%', "%%"));
        }
        let (user, group) = &self.owner;
        check_spec_word(user)?;
        check_spec_word(group)?;
        let _ = writeln!(s, "%files");
        for (path, entry) in &self.files {
            let path = format!("/{}", path.trim_start_matches('/'));
            check_spec_word(&path)?;
            let line = match entry {
                RpmEntry::Regular { mode, .. } | RpmEntry::Copy { mode, .. } => {
                    format!("%attr({mode:o},{user},{group}) {path}")
                }
                RpmEntry::Config { .. } => {
                    format!("%config(noreplace) %attr(644,{user},{group}) {path}")
                }
                RpmEntry::Dir { mode } => format!("%dir %attr({mode:o},{user},{group}) {path}"),
                RpmEntry::Symlink(_) | RpmEntry::HardLink(_) => {
                    format!("%attr(-,{user},{group}) {path}")
                }
                RpmEntry::Device { kind, major, minor } => {
                    format!("%dev({kind},{major},{minor}) %attr(600,{user},{group}) {path}")
                }
            };
            let _ = writeln!(s, "{line}");
        }
        if !self.changelog.is_empty() {
            let _ = writeln!(s, "\n%changelog");
            for (date, author, text) in &self.changelog {
                ensure!(
                    !date.contains(['\n', '%']) && !author.contains(['\n', '%']),
                    "changelog header of {}: no newlines or '%'",
                    self.name
                );
                let _ = writeln!(s, "* {date} {author}\n{}\n", text.replace('%', "%%"));
            }
        }
        Ok(s)
    }

    /// Writes the payload entries into `root` (what `%install` copies).
    fn write_payload(&self, root: &Path) -> Result<()> {
        fs::create_dir_all(root)?;
        for (path, entry) in &self.files {
            let full = root.join(path.trim_start_matches('/'));
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            match entry {
                RpmEntry::Regular { content, mode } => {
                    fs::write(&full, content)?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(*mode))?;
                }
                RpmEntry::Config { content } => fs::write(&full, content)?,
                RpmEntry::Copy { source, mode } => {
                    fs::copy(source, &full)
                        .with_context(|| format!("Copying {}", source.display()))?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(*mode))?;
                }
                RpmEntry::Dir { mode } => {
                    fs::create_dir_all(&full)?;
                    fs::set_permissions(&full, fs::Permissions::from_mode(*mode))?;
                }
                RpmEntry::Symlink(target) => symlink(target, &full)?,
                RpmEntry::HardLink(other) => {
                    fs::hard_link(root.join(other.trim_start_matches('/')), &full)?
                }
                // `%dev` entries are virtual: rpmbuild records them from the spec alone.
                RpmEntry::Device { .. } => {}
            }
        }
        Ok(())
    }

    /// Builds the package with `rpmbuild -bb` into `out_dir` and returns the `.rpm` path.
    #[context("Building the test RPM {}", self.nevra())]
    pub fn build(&self, out_dir: &Path) -> Result<PathBuf> {
        fs::create_dir_all(out_dir)?;
        let work = tempfile::Builder::new()
            .prefix(".rpmbuild-")
            .tempdir_in(out_dir)?;
        let payload = work.path().join("payload");
        self.write_payload(&payload)?;
        let spec = work.path().join(format!("{}.spec", self.name));
        fs::write(&spec, self.spec_text(&payload)?)?;
        let mut c = Command::new("rpmbuild");
        c.arg("-bb").arg("--quiet");
        for (name, value) in [
            (
                "_topdir",
                work.path().join("top").to_string_lossy().into_owned(),
            ),
            ("_rpmdir", out_dir.to_string_lossy().into_owned()),
            (
                "_rpmfilename",
                "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm".to_string(),
            ),
            ("_build_id_links", "none".to_string()),
            ("debug_package", "%{nil}".to_string()),
            ("__os_install_post", "%{nil}".to_string()),
            ("_binary_payload", self.payload_macro().to_string()),
            // Debian's macros point the database at ~/.rpmdb; rpmbuild never needs one.
            (
                "_dbpath",
                work.path().join("db").to_string_lossy().into_owned(),
            ),
        ] {
            if !value.is_empty() {
                c.arg("--define").arg(format!("{name} {value}"));
            }
        }
        c.arg(&spec);
        cmd::run(&mut c)?;
        let rpm = out_dir.join(self.file_name());
        ensure!(rpm.is_file(), "rpmbuild did not write {}", rpm.display());
        Ok(rpm)
    }

    fn payload_macro(&self) -> &'static str {
        match self.compression {
            Compression::Default => "",
            Compression::Zstd => "w19.zstdio",
            Compression::Gzip => "w9.gzdio",
            Compression::Xz => "w6.xzdio",
            Compression::None => "w.ufdio",
        }
    }
}

/// Replaces every occurrence of `from` by `to` (same length) in the file at `path`: a way to
/// build packages rpmbuild refuses to make (a `..` path, a payload entry the header does not
/// list), from one built with [`Compression::None`]. Fails when `from` does not occur.
pub fn patch(path: &Path, from: &[u8], to: &[u8]) -> Result<usize> {
    ensure!(
        from.len() == to.len(),
        "patch: {from:?} and {to:?} differ in length"
    );
    let mut data = fs::read(path)?;
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= data.len() {
        if &data[i..i + from.len()] == from {
            data[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    ensure!(
        n > 0,
        "patch: {:?} does not occur in {}",
        String::from_utf8_lossy(from),
        path.display()
    );
    fs::write(path, data)?;
    Ok(n)
}

/// A spec word (name, version, path, ...) must not break the spec: no whitespace, `%` or
/// newline. The kit refuses rather than escape, so tests stay readable.
fn check_spec_word(word: &str) -> Result<()> {
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || c == '%') {
        bail!("{word:?} cannot be written into a spec file (empty, whitespace or '%')");
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Two releases whose package databases differ in each way an update can: from "1" to "2",
/// `base-lib` 1.0-1 → 2.0-1 (upgraded), `gone` removed, `fresh` added, the shell package the
/// same. The packages are built under `dir`.
#[context("Building two releases with different packages in {}", dir.display())]
pub fn diffing_releases(dir: &Path) -> Result<(crate::OsRelease, crate::OsRelease)> {
    let sh = base_shell_package().build(dir)?;
    let v1 = crate::OsRelease::new("1").rpms([
        sh.clone(),
        RpmSpec::new("base-lib", "1.0")
            .file("usr/lib/base-lib.txt", "1\n")
            .build(dir)?,
        RpmSpec::new("gone", "1.0")
            .file("usr/share/gone", "x\n")
            .build(dir)?,
    ]);
    let v2 = crate::OsRelease::new("2").rpms([
        sh,
        RpmSpec::new("base-lib", "2.0")
            .file("usr/lib/base-lib.txt", "2\n")
            .build(dir)?,
        RpmSpec::new("fresh", "1.0")
            .file("usr/share/fresh", "x\n")
            .build(dir)?,
    ]);
    Ok((v1, v2))
}

/// A package providing `/bin/sh` (rpmbuild makes every shell scriptlet require it), with a
/// static busybox as `/usr/bin/sh` when the host has one, so scriptlets run inside the tree.
pub fn base_shell_package() -> RpmSpec {
    let spec = RpmSpec::new("strata-test-sh", "1.0")
        .arch(host_arch())
        .provides("/bin/sh")
        .provides("/usr/bin/sh");
    match busybox() {
        Some(bb) => spec.entry(
            "usr/bin/sh",
            RpmEntry::Copy {
                source: bb,
                mode: 0o755,
            },
        ),
        None => spec.executable("usr/bin/sh", "#!/nonexistent\n"),
    }
}

/// A Debian binary package repackaged as an RPM of the host's architecture: its files (without
/// `/usr/share/doc` and `/usr/share/man`) from `dpkg-deb -x` into `extract_dir` (which must
/// outlive the build), its version split into version and release at the last `-`, and its
/// `Depends` as `Requires` by name, leaving out `skip` (packages the target system has without
/// an rpmdb entry, such as `libc6`).
#[context("Repackaging {} as an RPM", deb.display())]
pub fn rpm_from_deb(deb: &Path, extract_dir: &Path, skip: &[&str]) -> Result<RpmSpec> {
    let field = |name: &str| -> Result<String> {
        Ok(
            cmd::run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))?
                .trim()
                .to_string(),
        )
    };
    let name = field("Package")?;
    let full = field("Version")?;
    let (epoch, rest) = match full.split_once(':') {
        Some((e, v)) => (Some(e.parse::<u32>()?), v),
        None => (None, full.as_str()),
    };
    let (version, release) = rest.rsplit_once('-').unwrap_or((rest, "1"));
    let mut spec = RpmSpec::new(&name, version)
        .release(release)
        .arch(host_arch());
    if let Some(e) = epoch {
        spec = spec.epoch(e);
    }
    // `a (>= 1), b | c` → a, b: names only, the first of alternatives.
    for dep in field("Depends")?.split(',') {
        let dep = dep.split('|').next().unwrap_or("").trim();
        let dep = dep.split([' ', '(', ':']).next().unwrap_or("");
        if !dep.is_empty() && !skip.contains(&dep) {
            spec = spec.requires(dep);
        }
    }
    fs::create_dir_all(extract_dir)?;
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(extract_dir))?;
    let mut stack = vec![extract_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let path = e?.path();
            let rel = path
                .strip_prefix(extract_dir)?
                .to_string_lossy()
                .into_owned();
            if rel == "usr/share/doc" || rel == "usr/share/man" {
                continue;
            }
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&path)?.to_string_lossy().into_owned();
                spec = spec.entry(rel, RpmEntry::Symlink(target));
            } else {
                let mode = meta.permissions().mode() & 0o7777;
                spec = spec.entry(rel, RpmEntry::Copy { source: path, mode });
            }
        }
    }
    Ok(spec)
}

/// The host's static busybox, if installed (`busybox-static`).
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The rpm architecture of this host (`x86_64`, `aarch64`, ...).
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

/// A directory of RPMs indexed by `createrepo_c`: an rpm-md repository.
#[derive(Debug)]
pub struct RpmRepo {
    dir: PathBuf,
}

impl RpmRepo {
    /// An empty (but indexed) repository in `dir`.
    #[context("Creating an RPM repository in {}", dir.display())]
    pub fn create(dir: &Path) -> Result<RpmRepo> {
        fs::create_dir_all(dir)?;
        let repo = RpmRepo {
            dir: dir.to_path_buf(),
        };
        repo.index()?;
        Ok(repo)
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `file://` URL of the repository.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Builds `spec` into the repository and re-indexes it; returns the `.rpm` path.
    pub fn add(&self, spec: &RpmSpec) -> Result<PathBuf> {
        let path = spec.build(&self.dir)?;
        self.index()?;
        Ok(path)
    }

    /// Builds every spec, then indexes once.
    pub fn add_all(&self, specs: &[RpmSpec]) -> Result<Vec<PathBuf>> {
        let paths = specs
            .iter()
            .map(|s| s.build(&self.dir))
            .collect::<Result<Vec<_>>>()?;
        self.index()?;
        Ok(paths)
    }

    /// Removes a package file and re-indexes.
    pub fn remove(&self, spec: &RpmSpec) -> Result<()> {
        let path = self.dir.join(spec.file_name());
        fs::remove_file(&path).with_context(|| format!("Removing {}", path.display()))?;
        self.index()
    }

    /// Runs `createrepo_c` over the directory.
    #[context("Indexing {} with createrepo_c", self.dir.display())]
    pub fn index(&self) -> Result<()> {
        cmd::run(
            Command::new("createrepo_c")
                .arg("--quiet")
                .arg("--no-database")
                .arg("--excludes")
                .arg(".rpmbuild-*")
                .arg(&self.dir),
        )?;
        Ok(())
    }

    /// The text of a `.repo` file for `/etc/yum.repos.d` naming this repository `id` at
    /// `baseurl` (its [`file_url`](Self::file_url) or an HTTP URL serving [`path`](Self::path)).
    pub fn repo_file(&self, id: &str, baseurl: &str) -> String {
        format!(
            "[{id}]\nname=Strata test repository {id}\nbaseurl={baseurl}\nenabled=1\ngpgcheck=0\n"
        )
    }
}

/// Installs `rpms` into the tree `root` with the real `rpm` (files and database, no scripts),
/// the database at `/usr/share/rpm` as on rpm-ostree systems, then moves what landed in `/etc`
/// to `/usr/etc` (an ostree commit carries the vendor `/etc` there).
#[context("Installing {} base RPMs into {}", rpms.len(), root.display())]
pub fn install_into_tree(root: &Path, rpms: &[PathBuf]) -> Result<()> {
    if rpms.is_empty() {
        return Ok(());
    }
    let mut c = Command::new("rpm");
    c.arg("--root")
        .arg(root)
        .args(["--dbpath", "/usr/share/rpm"])
        .args(["-i", "--nodeps", "--noscripts", "--notriggers"])
        .args(rpms);
    cmd::run(&mut c)?;
    let etc = root.join("etc");
    if etc.exists() {
        move_tree(&etc, &root.join("usr/etc"))?;
        fs::remove_dir_all(&etc)?;
    }
    // As a compose would leave it: readable on a read-only /usr.
    strata_core::layering::rpmdb::use_rollback_journal(&root.join("usr/share/rpm"))
}

/// Puts the tree's `/usr/share/rpm` in rollback-journal mode, as a compose leaves it
/// (see [`strata_core::layering::rpmdb::use_rollback_journal`]).
pub fn use_rollback_journal_in(root: &Path) -> Result<()> {
    strata_core::layering::rpmdb::use_rollback_journal(&root.join("usr/share/rpm"))
}

/// Moves every entry under `from` to the same relative path under `to` (merging directories).
fn move_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() && dest.is_dir() {
            move_tree(&entry.path(), &dest)?;
        } else {
            ensure!(
                fs::symlink_metadata(&dest).is_err(),
                "{} is in the tree twice (etc and usr/etc)",
                dest.display()
            );
            fs::rename(entry.path(), &dest)
                .map_err(|e| anyhow!("Moving {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The kit's standard layering fixture: base RPMs for a release's rpmdb and an indexed repo of
/// packages to layer, configured in the release as `/etc/yum.repos.d/test.repo`.
///
/// Base (installed in every [`release`](Self::release)): `strata-test-sh` (provides `/bin/sh`)
/// and `base-lib-1.0` (its `%transfiletriggerin` on `/usr/share/triggered` writes the matched
/// paths to `/usr/lib/base-lib.triggered`). Repo `test`: `hello` (requires `libhello`, ships `/usr/bin/hello`,
/// `/etc/hello.conf` and `/var/lib/hello`), `libhello`, `tool`, `clash` (conflicts with
/// `base-lib`), `base-lib-2.0`, and scriptlet packages: `scripted` (`%post` writes
/// `/etc/scripted`), `appender` (`%post` appends to the base's `/etc/untouched.conf` in place),
/// `svc` (`%pre` adds user and group `svc`, which own `/usr/share/svc/data`), `lua` (a Lua
/// `%post`), `forever` (a `%post` that never ends), `failing` (a `%post` exiting 3),
/// `triggered` (a file under `/usr/share/triggered`) and `watcher` (its own
/// `%transfiletriggerin` there, writing `/usr/share/watcher.seen`). Releases carry `/etc/passwd` and `/etc/group` with root only.
#[derive(Debug)]
pub struct TestPackages {
    /// The repository of packages to layer.
    pub repo: RpmRepo,
    /// The base packages' files.
    pub base_rpms: Vec<PathBuf>,
}

impl TestPackages {
    /// Builds the packages under `dir` (`dir/base`, `dir/repo`).
    #[context("Building the test packages in {}", dir.display())]
    pub fn create(dir: &Path) -> Result<TestPackages> {
        let base_dir = dir.join("base");
        let base_rpms = vec![
            base_shell_package().build(&base_dir)?,
            RpmSpec::new("base-lib", "1.0")
                .file("usr/lib/base-lib.txt", "1\n")
                .script(
                    ScriptPhase::TransFileTriggerIn(vec!["/usr/share/triggered".into()]),
                    "cat > /usr/lib/base-lib.triggered",
                )
                .build(&base_dir)?,
        ];
        let repo = RpmRepo::create(&dir.join("repo"))?;
        repo.add_all(&[
            RpmSpec::new("hello", "1.0")
                .requires("libhello")
                .executable("usr/bin/hello", "#!/bin/sh\necho hello\n")
                .config("etc/hello.conf", "greeting=hi\n")
                .dir("var/lib/hello"),
            RpmSpec::new("libhello", "1.0").file("usr/lib/libhello.txt", "lib\n"),
            RpmSpec::new("tool", "2.0").executable("usr/bin/tool", "#!/bin/sh\necho tool\n"),
            RpmSpec::new("clash", "1.0").conflicts("base-lib"),
            RpmSpec::new("base-lib", "2.0").file("usr/lib/base-lib.txt", "2\n"),
            RpmSpec::new("scripted", "1.0")
                .file("usr/share/scripted", "x\n")
                .script(ScriptPhase::Post, "echo post > /etc/scripted"),
            RpmSpec::new("appender", "1.0")
                .script(ScriptPhase::Post, "echo appended >> /etc/untouched.conf"),
            RpmSpec::new("svc", "1.0")
                .script(
                    ScriptPhase::Pre,
                    "echo 'svc:x:990:990::/:/sbin/nologin' >> /etc/passwd\n\
                     echo 'svc:x:990:' >> /etc/group",
                )
                .owner("svc", "svc")
                .file("usr/share/svc/data", "svc data\n"),
            RpmSpec::new("lua", "1.0").script_with(ScriptPhase::Post, "<lua>", "print('hi')"),
            RpmSpec::new("forever", "1.0").script(
                ScriptPhase::Post,
                "echo started > /tmp/started\nwhile :; do :; done",
            ),
            RpmSpec::new("failing", "1.0")
                .script(ScriptPhase::Post, "echo 'about to fail'\nexit 3"),
            RpmSpec::new("triggered", "1.0").file("usr/share/triggered/a.txt", "a\n"),
            RpmSpec::new("watcher", "1.0").script(
                ScriptPhase::TransFileTriggerIn(vec!["/usr/share/triggered/".into()]),
                "cat > /usr/share/watcher.seen",
            ),
        ])?;
        Ok(TestPackages { repo, base_rpms })
    }

    /// Release `version` with the base packages installed and the repo configured (at its
    /// `file://` URL).
    pub fn release(&self, version: &str) -> crate::OsRelease {
        self.release_with_url(version, &self.repo.file_url())
    }

    /// Like [`release`](Self::release), with the repo at `baseurl` (e.g. an HTTP server of
    /// [`RpmRepo::path`]).
    pub fn release_with_url(&self, version: &str, baseurl: &str) -> crate::OsRelease {
        crate::OsRelease::new(version)
            .rpms(self.base_rpms.clone())
            .file(
                "usr/etc/yum.repos.d/test.repo",
                self.repo.repo_file("test", baseurl),
            )
    }
}
