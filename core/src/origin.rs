//! rpm-ostree deployment "origin" files: typed, validated access.
//!
//! An origin file is a GKeyFile document stored next to each deployment
//! (`/ostree/deploy/$os/deploy/$checksum.$serial.origin`). It records where the deployment came
//! from (an ostree refspec or a container image reference) and the client-side customizations
//! rpm-ostree layers on top of it (requested packages, overrides, initramfs settings, ...).
//!
//! Parsing and serialising is glib's `GKeyFile` (what libostree and rpm-ostree use, and what
//! libostree writes origins with); this module validates every key rpm-ostree knows and exposes
//! it through typed accessors. Unknown groups and keys, and comments, are kept.
//!
//! ```text
//! [origin]
//! baserefspec=fedora:fedora/40/x86_64/silverblue
//!
//! [packages]
//! requested=htop;vim-enhanced;
//! ```

use std::fmt;
use std::str::FromStr;

use ostree::glib;

/// What a valid refspec looks like, appended to refspec errors.
const REFSPEC_EXPECTED: &str = "expected REMOTE:REF like \"fedora:fedora/40/x86_64/silverblue\"";

/// Errors from parsing or validating origins and refspecs.
///
/// Every message says what is wrong, where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// The text is not a key file at all (GKeyFile's own message).
    #[error("not a valid key file: {message}")]
    Syntax {
        /// What GKeyFile reported, with the line number where it has one.
        message: String,
    },
    /// A value in the key file cannot be interpreted.
    #[error("invalid value {value:?} for key \"{key}\" in group [{group}]: {problem}")]
    InvalidValue {
        /// The group holding the key.
        group: String,
        /// The key whose value is invalid.
        key: String,
        /// The bad value (for lists: the bad element).
        value: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// A refspec is malformed.
    #[error("invalid refspec {input:?}: {problem}; {REFSPEC_EXPECTED}")]
    InvalidRefspec {
        /// The rejected input.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A standalone value (checksum, local package, remote override, ...) is malformed.
    #[error("invalid {what} {value:?}: {problem}")]
    Invalid {
        /// What kind of value this is, e.g. `"commit checksum"`.
        what: &'static str,
        /// The rejected input.
        value: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// The origin names no base to deploy from.
    #[error("origin has no [origin] refspec, baserefspec or container-image-reference")]
    NoBase,
    /// The origin names more than one base.
    #[error(
        "origin has both [origin] {first} and {second}; expected exactly one of refspec, \
         baserefspec or container-image-reference"
    )]
    ConflictingBase {
        /// The first of the conflicting keys.
        first: &'static str,
        /// The second of the conflicting keys.
        second: &'static str,
    },
}

// ---------------------------------------------------------------------------
// Refspec
// ---------------------------------------------------------------------------

/// A caller's input as an error keeps it: at most 200 characters and its length (errors are
/// logged and printed; a megabyte-long refspec must not be). The messages quote it with
/// `{:?}`, which escapes control characters.
pub fn caller_text(s: &str) -> String {
    strata_api::text::truncated(s, 200)
}

/// Whether `s` is an ostree commit checksum: 64 lowercase hex characters.
pub fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a [`Refspec`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefspecKind {
    /// An ostree ref, optionally on a remote.
    Ostree,
    /// A bare commit checksum.
    Checksum,
}

/// An ostree refspec: `remote:ref`, a local `ref` (also accepted as `:ref`),
/// or a bare 64-hex commit checksum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Refspec {
    remote: Option<String>,
    ref_name: String,
    kind: RefspecKind,
}

/// Checks a remote name or ref component against `[A-Za-z0-9_][-._A-Za-z0-9]*`.
fn check_name_component(what: &str, s: &str) -> Result<(), String> {
    let shown = caller_text(s);
    let mut chars = s.chars();
    match chars.next() {
        None => Err(format!("{what} is empty")),
        Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => Err(format!(
            "{what} {shown:?} must start with a letter, digit or '_'"
        )),
        Some(_) => {
            if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
                Ok(())
            } else {
                Err(format!(
                    "{what} {shown:?} may only contain letters, digits, '_', '-', '.'"
                ))
            }
        }
    }
}

fn check_ref_name(name: &str) -> Result<(), String> {
    let shown = caller_text(name);
    if name.starts_with('/') {
        return Err(format!("ref {shown:?} must not start with '/'"));
    }
    if name.ends_with('/') {
        return Err(format!("ref {shown:?} must not end with '/'"));
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(format!(
                "ref {shown:?} must not contain an empty component (\"//\")"
            ));
        }
        if component == "." || component == ".." {
            return Err(format!(
                "ref {shown:?} must not contain a {component:?} component"
            ));
        }
        check_name_component("ref component", component)?;
    }
    Ok(())
}

fn parse_refspec(s: &str) -> Result<Refspec, String> {
    if s.is_empty() {
        return Err("it is empty".to_string());
    }
    if is_checksum(s) {
        return Ok(Refspec {
            remote: None,
            ref_name: s.to_string(),
            kind: RefspecKind::Checksum,
        });
    }
    let (remote, name) = match s.split_once(':') {
        Some(("", name)) => (None, name),
        Some((remote, name)) => {
            check_name_component("remote name", remote)?;
            (Some(remote.to_string()), name)
        }
        None => (None, s),
    };
    if name.is_empty() {
        return Err("it has an empty ref after ':'".to_string());
    }
    check_ref_name(name)?;
    Ok(Refspec {
        remote,
        ref_name: name.to_string(),
        kind: RefspecKind::Ostree,
    })
}

impl Refspec {
    /// Parses and validates a refspec by ostree's rules.
    pub fn parse(s: &str) -> Result<Refspec, OriginError> {
        parse_refspec(s).map_err(|problem| OriginError::InvalidRefspec {
            input: caller_text(s),
            problem,
        })
    }

    /// The remote, if any (`None` for local refs and checksums).
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    /// The ref name, or the checksum for [`RefspecKind::Checksum`].
    pub fn ref_name(&self) -> &str {
        &self.ref_name
    }

    /// Whether this is a ref or a bare checksum.
    pub fn kind(&self) -> RefspecKind {
        self.kind
    }
}

impl fmt::Display for Refspec {
    /// `remote:ref`, `ref` for local refs, the checksum as-is. A local ref that
    /// looks like a checksum is written `:ref` so it parses back as a ref.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.remote, self.kind) {
            (Some(remote), _) => write!(f, "{remote}:{}", self.ref_name),
            (None, RefspecKind::Ostree) if is_checksum(&self.ref_name) => {
                write!(f, ":{}", self.ref_name)
            }
            (None, _) => f.write_str(&self.ref_name),
        }
    }
}

impl FromStr for Refspec {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------
// Origin value types
// ---------------------------------------------------------------------------

/// What a deployment is based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// `[origin] refspec=`: a plain ostree deployment (`ostree admin upgrade` works).
    Refspec(Refspec),
    /// `[origin] baserefspec=`: an ostree base with client-side layering.
    BaseRefspec(Refspec),
    /// `[origin] container-image-reference=`: an ostree-native container image.
    ContainerImage(String),
}

/// A locally provided RPM: `<sha256>:<nevra>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalPackage {
    /// SHA-256 of the package header, 64 lowercase hex characters.
    pub sha256: String,
    /// `name-[epoch:]version-release.arch`.
    pub nevra: String,
}

const LOCAL_PACKAGE_EXPECTED: &str =
    "expected SHA256:NEVRA like \"<64 lowercase hex>:foo-1.0-1.fc40.x86_64\"";

fn parse_local_package(s: &str) -> Result<LocalPackage, String> {
    let Some((sha256, nevra)) = s.split_once(':') else {
        return Err(format!(
            "no ':' after the checksum; {LOCAL_PACKAGE_EXPECTED}"
        ));
    };
    if !is_checksum(sha256) {
        return Err(format!(
            "{sha256:?} is not 64 lowercase hex characters; {LOCAL_PACKAGE_EXPECTED}"
        ));
    }
    if nevra.is_empty() {
        return Err(format!("the NEVRA is empty; {LOCAL_PACKAGE_EXPECTED}"));
    }
    if has_space_or_control(nevra) {
        return Err(format!(
            "NEVRA {nevra:?} contains whitespace or control characters; {LOCAL_PACKAGE_EXPECTED}"
        ));
    }
    Ok(LocalPackage {
        sha256: sha256.to_string(),
        nevra: nevra.to_string(),
    })
}

impl LocalPackage {
    /// Parses `<64 hex>:<nevra>`.
    pub fn parse(s: &str) -> Result<LocalPackage, OriginError> {
        parse_local_package(s).map_err(|problem| OriginError::Invalid {
            what: "local package",
            value: s.to_string(),
            problem,
        })
    }
}

impl fmt::Display for LocalPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sha256, self.nevra)
    }
}

/// Packages replaced from a specific rpm-md repository: `repo=NAME,pkg1,pkg2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteOverride {
    /// The repository id.
    pub repo: String,
    /// The packages taken from it (at least one).
    pub packages: Vec<String>,
}

const REMOTE_OVERRIDE_EXPECTED: &str = "expected \"repo=NAME,PKG[,PKG...]\"";

fn parse_remote_override(s: &str) -> Result<RemoteOverride, String> {
    let Some(rest) = s.strip_prefix("repo=") else {
        return Err(format!(
            "it does not start with \"repo=\"; {REMOTE_OVERRIDE_EXPECTED}"
        ));
    };
    let mut parts = rest.split(',');
    let repo = parts.next().unwrap_or_default();
    if repo.is_empty() || has_space_or_control(repo) {
        return Err(format!(
            "repo name {repo:?} is empty or contains whitespace; {REMOTE_OVERRIDE_EXPECTED}"
        ));
    }
    let packages = parts
        .map(|p| check_package_name(p).map(str::to_string))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{e}; {REMOTE_OVERRIDE_EXPECTED}"))?;
    if packages.is_empty() {
        return Err(format!("no packages listed; {REMOTE_OVERRIDE_EXPECTED}"));
    }
    Ok(RemoteOverride {
        repo: repo.to_string(),
        packages,
    })
}

impl RemoteOverride {
    /// Parses `repo=NAME,pkg1,pkg2`.
    pub fn parse(s: &str) -> Result<RemoteOverride, OriginError> {
        parse_remote_override(s).map_err(|problem| OriginError::Invalid {
            what: "remote override",
            value: s.to_string(),
            problem,
        })
    }
}

impl fmt::Display for RemoteOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "repo={}", self.repo)?;
        for p in &self.packages {
            write!(f, ",{p}")?;
        }
        Ok(())
    }
}

fn has_space_or_control(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_package_name(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        Err("package name is empty; expected a package name like \"htop\"".to_string())
    } else if has_space_or_control(s) {
        Err(format!(
            "package name {s:?} contains whitespace or control characters; expected a \
             package name like \"htop\""
        ))
    } else {
        Ok(s)
    }
}

/// How ostree-ext's image references begin (`ostree-unverified-registry:quay.io/…`): what
/// names a container image rather than an ostree ref.
pub const CONTAINER_IMAGE_PREFIXES: &[&str] = &[
    "ostree-unverified-registry:",
    "ostree-unverified-image:",
    "ostree-image-signed:",
    "ostree-remote-image:",
    "ostree-remote-registry:",
];

/// Whether `s` is a container image reference rather than an ostree refspec.
pub fn is_container_image_reference(s: &str) -> bool {
    CONTAINER_IMAGE_PREFIXES.iter().any(|p| s.starts_with(p))
}

/// Whether `s` is an image manifest digest (`sha256:` and 64 lowercase hex digits, as
/// registries write them), as Zincati deploys image-based releases.
pub fn is_image_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(is_checksum)
}

fn check_container_ref(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("it is empty; expected an image reference like \
             \"ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40\""
            .to_string())
    } else if has_space_or_control(s) {
        Err(
            "it contains whitespace or control characters; expected an image reference like \
             \"ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40\""
                .to_string(),
        )
    } else {
        Ok(())
    }
}

fn check_initramfs_etc(s: &str) -> Result<(), String> {
    if s.starts_with('/') && !s.chars().any(char::is_control) {
        Ok(())
    } else {
        Err("expected an absolute path like \"/etc/crypttab\"".to_string())
    }
}

// ---------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------

const G_ORIGIN: &str = "origin";
const G_PACKAGES: &str = "packages";
const G_OVERRIDES: &str = "overrides";
const G_RPMOSTREE: &str = "rpmostree";
const G_TRANSIENT: &str = "libostree-transient";

const K_REFSPEC: &str = "refspec";
const K_BASEREFSPEC: &str = "baserefspec";
const K_CONTAINER: &str = "container-image-reference";
const K_CONTAINER_DIGEST: &str = "container-image-reference-digest";
const K_OVERRIDE_COMMIT: &str = "override-commit";
const K_CUSTOM_URL: &str = "custom-url";
const K_CUSTOM_DESCRIPTION: &str = "custom-description";
const K_UNCONFIGURED: &str = "unconfigured-state";
const K_REQUESTED: &str = "requested";
const K_REQUESTED_LOCAL: &str = "requested-local";
const K_REQUESTED_LOCAL_FILEOVERRIDE: &str = "requested-local-fileoverride";
const K_REMOVE: &str = "remove";
const K_REPLACE_LOCAL: &str = "replace-local";
const K_REPLACE: &str = "replace";
const K_REGENERATE_INITRAMFS: &str = "regenerate-initramfs";
const K_INITRAMFS_ARGS: &str = "initramfs-args";
const K_INITRAMFS_ETC: &str = "initramfs-etc";
const K_CLIWRAP: &str = "ex-cliwrap";
const K_PINNED: &str = "pinned";

/// A validated rpm-ostree origin file.
///
/// Holds the key file's text (as GKeyFile serialises it) and the validated value of every key
/// rpm-ostree knows. Setters edit the key file and validate the result again, so the typed view
/// and the text never disagree. [`Origin::to_keyfile`] gives libostree its `GKeyFile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    text: String,
    base: BaseSource,
    override_commit: Option<String>,
    custom_origin: Option<(String, String)>,
    unconfigured_state: Option<String>,
    requested_packages: Vec<String>,
    requested_local_packages: Vec<LocalPackage>,
    requested_local_fileoverride_packages: Vec<LocalPackage>,
    override_remove: Vec<String>,
    override_replace_local: Vec<LocalPackage>,
    override_replace: Vec<RemoteOverride>,
    regenerate_initramfs: bool,
    initramfs_args: Vec<String>,
    initramfs_etc: Vec<String>,
    has_initramfs_block: bool,
    cliwrap: bool,
    pinned: bool,
}

/// Typed lookups on a `GKeyFile` that turn "no such group/key" into `None` and every other
/// failure into an error naming the group, key and value.
trait KeyFileExt {
    fn optional_string(&self, group: &str, key: &str) -> Result<Option<String>, OriginError>;
    fn optional_bool(&self, group: &str, key: &str) -> Result<Option<bool>, OriginError>;
    fn optional_list(&self, group: &str, key: &str) -> Result<Option<Vec<String>>, OriginError>;
    fn contains(&self, group: &str, key: &str) -> bool;
}

fn is_missing(e: &glib::Error) -> bool {
    e.matches(glib::KeyFileError::GroupNotFound) || e.matches(glib::KeyFileError::KeyNotFound)
}

fn invalid_value(group: &str, key: &str, value: &str, problem: String) -> OriginError {
    OriginError::InvalidValue {
        group: group.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        problem,
    }
}

impl KeyFileExt for glib::KeyFile {
    fn optional_string(&self, group: &str, key: &str) -> Result<Option<String>, OriginError> {
        match self.string(group, key) {
            Ok(v) => Ok(Some(v.to_string())),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => {
                let raw = self.value(group, key).unwrap_or_default();
                Err(invalid_value(group, key, &raw, e.message().to_string()))
            }
        }
    }

    fn optional_bool(&self, group: &str, key: &str) -> Result<Option<bool>, OriginError> {
        match self.boolean(group, key) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(_) => {
                let raw = self.value(group, key).unwrap_or_default();
                Err(invalid_value(
                    group,
                    key,
                    &raw,
                    "expected a boolean, \"true\" or \"false\"".to_string(),
                ))
            }
        }
    }

    fn optional_list(&self, group: &str, key: &str) -> Result<Option<Vec<String>>, OriginError> {
        match self.string_list(group, key) {
            Ok(v) => Ok(Some(v.iter().map(|s| s.to_string()).collect())),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => {
                let raw = self.value(group, key).unwrap_or_default();
                Err(invalid_value(group, key, &raw, e.message().to_string()))
            }
        }
    }

    fn contains(&self, group: &str, key: &str) -> bool {
        self.has_key(group, key).unwrap_or(false)
    }
}

/// Reads a list and converts each element, naming group, key and element on failure.
fn typed_list<T>(
    kf: &glib::KeyFile,
    group: &str,
    key: &str,
    convert: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, OriginError> {
    kf.optional_list(group, key)?
        .unwrap_or_default()
        .iter()
        .map(|item| convert(item).map_err(|p| invalid_value(group, key, item, p)))
        .collect()
}

fn package_list(kf: &glib::KeyFile, group: &str, key: &str) -> Result<Vec<String>, OriginError> {
    typed_list(kf, group, key, |s| {
        check_package_name(s).map(str::to_string)
    })
}

fn validated_string(
    kf: &glib::KeyFile,
    group: &str,
    key: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Option<String>, OriginError> {
    match kf.optional_string(group, key)? {
        Some(v) => match check(&v) {
            Ok(()) => Ok(Some(v)),
            Err(p) => Err(invalid_value(group, key, &v, p)),
        },
        None => Ok(None),
    }
}

fn check_commit(s: &str) -> Result<(), String> {
    if is_checksum(s) || is_image_digest(s) {
        Ok(())
    } else {
        Err("expected a commit checksum of 64 lowercase hex characters, or an image digest (sha256:…)".to_string())
    }
}

fn origin_refspec(kf: &glib::KeyFile, key: &str) -> Result<Option<Refspec>, OriginError> {
    match kf.optional_string(G_ORIGIN, key)? {
        Some(v) => parse_refspec(&v)
            .map(Some)
            .map_err(|p| invalid_value(G_ORIGIN, key, &v, format!("{p}; {REFSPEC_EXPECTED}"))),
        None => Ok(None),
    }
}

/// Removes `key` (present or not).
fn remove_all(kf: &glib::KeyFile, group: &str, key: &str) {
    // Absent is fine: the goal is that it is gone.
    let _ = kf.remove_key(group, key);
}

/// A copy of `kf` with each key once, holding the value GKeyFile's lookups return (the last).
///
/// GKeyFile keeps a repeated key in its list but looks up and removes only the last one, so
/// removing `refspec` from `refspec=a\nrefspec=b` would leave `refspec=a` in the output. Edits
/// start from this copy. Comments are not carried over, as libostree does not keep them either
/// when it writes an origin.
fn deduplicated(kf: &glib::KeyFile) -> glib::KeyFile {
    let out = glib::KeyFile::new();
    for group in kf.groups().iter() {
        let Ok(keys) = kf.keys(group) else { continue };
        for key in keys.iter() {
            if let Ok(value) = kf.value(group, key) {
                out.set_value(group, key, &value);
            }
        }
    }
    out
}

fn load_keyfile(text: &str) -> Result<glib::KeyFile, OriginError> {
    // GKeyFile takes C strings; a NUL would truncate the text (and glib-rs panics on one).
    if text.contains('\0') {
        return Err(OriginError::Syntax {
            message: "the text contains a NUL character".to_string(),
        });
    }
    let kf = glib::KeyFile::new();
    kf.load_from_data(
        text,
        glib::KeyFileFlags::KEEP_COMMENTS | glib::KeyFileFlags::KEEP_TRANSLATIONS,
    )
    .map_err(|e| OriginError::Syntax {
        message: e.message().to_string(),
    })?;
    Ok(kf)
}

impl Origin {
    /// Parses and validates an origin file.
    pub fn parse(text: &str) -> Result<Origin, OriginError> {
        Self::from_keyfile(&load_keyfile(text)?)
    }

    /// Validates every known key of a key file (e.g. libostree's `Deployment::origin()`).
    pub fn from_keyfile(kf: &glib::KeyFile) -> Result<Origin, OriginError> {
        let present: Vec<&'static str> = [K_REFSPEC, K_BASEREFSPEC, K_CONTAINER]
            .into_iter()
            .filter(|k| kf.contains(G_ORIGIN, k))
            .collect();
        let base = match *present.as_slice() {
            [] => return Err(OriginError::NoBase),
            [first, second, ..] => return Err(OriginError::ConflictingBase { first, second }),
            [_] => {
                if let Some(r) = origin_refspec(kf, K_REFSPEC)? {
                    BaseSource::Refspec(r)
                } else if let Some(r) = origin_refspec(kf, K_BASEREFSPEC)? {
                    BaseSource::BaseRefspec(r)
                } else {
                    let image = validated_string(kf, G_ORIGIN, K_CONTAINER, check_container_ref)?;
                    BaseSource::ContainerImage(image.unwrap_or_default())
                }
            }
        };
        let override_commit = validated_string(kf, G_ORIGIN, K_OVERRIDE_COMMIT, check_commit)?;
        let custom_url = kf.optional_string(G_ORIGIN, K_CUSTOM_URL)?;
        let custom_description = kf.optional_string(G_ORIGIN, K_CUSTOM_DESCRIPTION)?;
        let initramfs_etc = typed_list(kf, G_RPMOSTREE, K_INITRAMFS_ETC, |s| {
            check_initramfs_etc(s).map(|()| s.to_string())
        })?;
        Ok(Origin {
            text: kf.to_data().to_string(),
            base,
            override_commit,
            custom_origin: custom_url.map(|url| (url, custom_description.unwrap_or_default())),
            unconfigured_state: kf.optional_string(G_ORIGIN, K_UNCONFIGURED)?,
            requested_packages: package_list(kf, G_PACKAGES, K_REQUESTED)?,
            requested_local_packages: typed_list(
                kf,
                G_PACKAGES,
                K_REQUESTED_LOCAL,
                parse_local_package,
            )?,
            requested_local_fileoverride_packages: typed_list(
                kf,
                G_PACKAGES,
                K_REQUESTED_LOCAL_FILEOVERRIDE,
                parse_local_package,
            )?,
            override_remove: package_list(kf, G_OVERRIDES, K_REMOVE)?,
            override_replace_local: typed_list(
                kf,
                G_OVERRIDES,
                K_REPLACE_LOCAL,
                parse_local_package,
            )?,
            override_replace: typed_list(kf, G_OVERRIDES, K_REPLACE, parse_remote_override)?,
            regenerate_initramfs: kf
                .optional_bool(G_RPMOSTREE, K_REGENERATE_INITRAMFS)?
                .unwrap_or(false),
            initramfs_args: kf
                .optional_list(G_RPMOSTREE, K_INITRAMFS_ARGS)?
                .unwrap_or_default(),
            initramfs_etc,
            has_initramfs_block: [K_REGENERATE_INITRAMFS, K_INITRAMFS_ARGS, K_INITRAMFS_ETC]
                .iter()
                .any(|k| kf.contains(G_RPMOSTREE, k)),
            cliwrap: kf.optional_bool(G_RPMOSTREE, K_CLIWRAP)?.unwrap_or(false),
            pinned: kf.optional_bool(G_TRANSIENT, K_PINNED)?.unwrap_or(false),
        })
    }

    /// A minimal origin: `[origin]\nrefspec=REFSPEC\n`.
    pub fn from_refspec(r: &Refspec) -> Origin {
        let kf = glib::KeyFile::new();
        kf.set_string(G_ORIGIN, K_REFSPEC, &r.to_string());
        // A validated refspec always makes a valid origin; nothing else is in the file.
        Origin::from_keyfile(&kf).expect("an origin holding only a valid refspec is valid")
    }

    /// The key file, for libostree (a new `GKeyFile` each call: edits to it do not touch `self`).
    pub fn to_keyfile(&self) -> glib::KeyFile {
        // The text came out of GKeyFile itself, so it loads back.
        load_keyfile(&self.text).expect("an origin's own serialisation loads")
    }

    /// Applies `edit` to a copy of the key file, validates the result and, only if it is
    /// valid, makes it this origin. On error `self` is unchanged.
    fn edit(&mut self, edit: impl FnOnce(&glib::KeyFile)) -> Result<(), OriginError> {
        let kf = deduplicated(&self.to_keyfile());
        edit(&kf);
        *self = Origin::from_keyfile(&kf)?;
        Ok(())
    }

    /// What the deployment is based on.
    pub fn base(&self) -> &BaseSource {
        &self.base
    }

    /// The ostree refspec, from either `refspec` or `baserefspec`; `None` for
    /// container-image based origins.
    pub fn refspec(&self) -> Option<&Refspec> {
        match &self.base {
            BaseSource::Refspec(r) | BaseSource::BaseRefspec(r) => Some(r),
            BaseSource::ContainerImage(_) => None,
        }
    }

    /// The container image reference, for container-image based origins.
    pub fn container_image_reference(&self) -> Option<&str> {
        match &self.base {
            BaseSource::ContainerImage(image) => Some(image),
            _ => None,
        }
    }

    /// Rebases onto `r`.
    ///
    /// Keeps the key kind (`refspec` vs `baserefspec`). When the base was a
    /// container image, its `container-image-reference` (and `-digest`) keys
    /// are replaced by `baserefspec` if the origin has local customizations
    /// (see [`Origin::needs_local_assembly`]) and `refspec` otherwise.
    /// Packages, overrides and `[rpmostree]` settings are kept; like
    /// rpm-ostree, `override-commit`, `custom-url` and `custom-description`
    /// are dropped.
    pub fn set_refspec(&mut self, r: &Refspec) {
        let key = match &self.base {
            BaseSource::Refspec(_) => K_REFSPEC,
            BaseSource::BaseRefspec(_) => K_BASEREFSPEC,
            BaseSource::ContainerImage(_) if self.needs_local_assembly() => K_BASEREFSPEC,
            BaseSource::ContainerImage(_) => K_REFSPEC,
        };
        self.edit(|kf| {
            for old in [
                K_CONTAINER,
                K_CONTAINER_DIGEST,
                K_OVERRIDE_COMMIT,
                K_CUSTOM_URL,
                K_CUSTOM_DESCRIPTION,
            ] {
                remove_all(kf, G_ORIGIN, old);
            }
            kf.set_string(G_ORIGIN, key, &r.to_string());
        })
        .expect("replacing the base with a valid refspec keeps the origin valid");
    }

    /// Rebases onto the container image `imgref` (`ostree-unverified-registry:…`): the ref
    /// keys, `override-commit` and the custom origin go, packages and the rest stay, as
    /// rpm-ostree writes an image-based origin.
    pub fn set_container_image(&mut self, imgref: &str) -> Result<(), OriginError> {
        check_container_ref(imgref).map_err(|p| invalid_value(G_ORIGIN, K_CONTAINER, imgref, p))?;
        self.edit(|kf| {
            for old in [
                K_REFSPEC,
                K_BASEREFSPEC,
                K_CONTAINER_DIGEST,
                K_OVERRIDE_COMMIT,
                K_CUSTOM_URL,
                K_CUSTOM_DESCRIPTION,
            ] {
                remove_all(kf, G_ORIGIN, old);
            }
            kf.set_string(G_ORIGIN, K_CONTAINER, imgref);
        })
    }

    /// The commit the deployment is pinned to instead of the refspec's tip.
    pub fn override_commit(&self) -> Option<&str> {
        self.override_commit.as_deref()
    }

    /// Sets (`Some`) or removes (`None`) `override-commit`.
    ///
    /// The checksum must be 64 lowercase hex characters, or for an image-based origin an
    /// image's manifest digest (`sha256:…`, as rpm-ostree pins an image); otherwise nothing
    /// changes and `false` is returned. Returns `true` when applied.
    pub fn set_override_commit(&mut self, commit: Option<&str>) -> bool {
        let image = self.container_image_reference().is_some();
        if commit.is_some_and(|c| !(is_checksum(c) || image && is_image_digest(c))) {
            return false;
        }
        self.edit(|kf| match commit {
            Some(c) => kf.set_string(G_ORIGIN, K_OVERRIDE_COMMIT, c),
            None => remove_all(kf, G_ORIGIN, K_OVERRIDE_COMMIT),
        })
        .is_ok()
    }

    /// `(custom-url, custom-description)` when `custom-url` is set; the
    /// description is empty if missing.
    pub fn custom_origin(&self) -> Option<(String, String)> {
        self.custom_origin.clone()
    }

    /// Sets (`Some((url, description))`, both non-empty) or removes the custom
    /// origin description.
    pub fn set_custom_origin(&mut self, custom: Option<(&str, &str)>) -> Result<(), OriginError> {
        if let Some((url, description)) = custom {
            for (what, value) in [
                ("custom origin URL", url),
                ("custom origin description", description),
            ] {
                let problem = if value.is_empty() {
                    "it is empty; expected a non-empty string"
                } else if value.contains('\0') {
                    "it contains a NUL character; expected text"
                } else {
                    continue;
                };
                return Err(OriginError::Invalid {
                    what,
                    value: value.to_string(),
                    problem: problem.to_string(),
                });
            }
        }
        self.edit(|kf| match custom {
            Some((url, description)) => {
                kf.set_string(G_ORIGIN, K_CUSTOM_URL, url);
                kf.set_string(G_ORIGIN, K_CUSTOM_DESCRIPTION, description);
            }
            None => {
                remove_all(kf, G_ORIGIN, K_CUSTOM_URL);
                remove_all(kf, G_ORIGIN, K_CUSTOM_DESCRIPTION);
            }
        })
    }

    /// `[origin] unconfigured-state`: why the deployment cannot be upgraded.
    pub fn unconfigured_state(&self) -> Option<String> {
        self.unconfigured_state.clone()
    }

    /// `[packages] requested`: layered packages from repositories.
    pub fn requested_packages(&self) -> Vec<String> {
        self.requested_packages.clone()
    }

    /// Replaces `[packages] requested` (sorted, without duplicates; an empty list removes the
    /// key, and the `[packages]` group when nothing else is left in it). Like rpm-ostree, the base key becomes
    /// `baserefspec` while the origin needs local assembly and `refspec` again when it no longer
    /// does. A name that is not a valid package request is an error and nothing changes.
    pub fn set_requested_packages(&mut self, packages: &[String]) -> Result<(), OriginError> {
        let local = self.requested_local_packages.clone();
        self.set_layered_requests(packages, &local)
    }

    /// Replaces `[packages] requested` and `[packages] requested-local` together, as
    /// [`set_requested_packages`](Self::set_requested_packages) does the first.
    pub fn set_layered_requests(
        &mut self,
        packages: &[String],
        local: &[LocalPackage],
    ) -> Result<(), OriginError> {
        let mut sorted: Vec<&str> = packages.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        for p in &sorted {
            // The key file's list separator and escape cannot be part of a request.
            let checked = check_package_name(p).and_then(|p| match p.contains([';', '\\']) {
                true => Err(format!("package name {p:?} contains ';' or '\\'")),
                false => Ok(p),
            });
            if let Err(why) = checked {
                return Err(invalid_value(G_PACKAGES, K_REQUESTED, p, why));
            }
        }
        let mut local: Vec<String> = local.iter().map(LocalPackage::to_string).collect();
        local.sort_unstable();
        local.dedup();
        for l in &local {
            // Parsing again checks what a caller built by hand, and the separators.
            let checked = parse_local_package(l).and_then(|_| match l.contains([';', '\\']) {
                true => Err(format!("{l:?} contains ';' or '\\'")),
                false => Ok(()),
            });
            if let Err(why) = checked {
                return Err(invalid_value(G_PACKAGES, K_REQUESTED_LOCAL, l, why));
            }
        }
        let base = self.refspec().map(|r| r.to_string());
        let keep_base_key = matches!(self.base, BaseSource::ContainerImage(_));
        let others_need_assembly = !self.requested_local_fileoverride_packages.is_empty()
            || !self.override_remove.is_empty()
            || !self.override_replace_local.is_empty()
            || !self.override_replace.is_empty()
            || self.has_initramfs_block();
        let layered = !sorted.is_empty() || !local.is_empty();
        self.edit(|kf| {
            for (key, list) in [
                (K_REQUESTED, &sorted[..]),
                (
                    K_REQUESTED_LOCAL,
                    &local.iter().map(String::as_str).collect::<Vec<_>>()[..],
                ),
            ] {
                if list.is_empty() {
                    remove_all(kf, G_PACKAGES, key);
                } else {
                    // glib 0.18 has no set_string_list; the entries hold no separator or
                    // escape (checked above), so the list's text is them joined by ';'.
                    kf.set_value(G_PACKAGES, key, &format!("{};", list.join(";")));
                }
            }
            if kf.keys(G_PACKAGES).map(|k| k.is_empty()).unwrap_or(false) {
                let _ = kf.remove_group(G_PACKAGES);
            }
            if let (Some(base), false) = (base, keep_base_key) {
                let key = if layered || others_need_assembly {
                    K_BASEREFSPEC
                } else {
                    K_REFSPEC
                };
                remove_all(kf, G_ORIGIN, K_REFSPEC);
                remove_all(kf, G_ORIGIN, K_BASEREFSPEC);
                kf.set_string(G_ORIGIN, key, &base);
            }
        })
    }

    /// `[packages] requested-local`: layered local RPMs.
    pub fn requested_local_packages(&self) -> Vec<LocalPackage> {
        self.requested_local_packages.clone()
    }

    /// `[packages] requested-local-fileoverride`: local RPMs allowed to replace files.
    pub fn requested_local_fileoverride_packages(&self) -> Vec<LocalPackage> {
        self.requested_local_fileoverride_packages.clone()
    }

    /// `[overrides] remove`: base packages removed.
    pub fn override_remove(&self) -> Vec<String> {
        self.override_remove.clone()
    }

    /// `[overrides] replace-local`: base packages replaced by local RPMs.
    pub fn override_replace_local(&self) -> Vec<LocalPackage> {
        self.override_replace_local.clone()
    }

    /// `[overrides] replace`: base packages replaced from repositories.
    pub fn override_replace(&self) -> Vec<RemoteOverride> {
        self.override_replace.clone()
    }

    /// `[rpmostree] regenerate-initramfs`.
    pub fn regenerate_initramfs(&self) -> bool {
        self.regenerate_initramfs
    }

    /// `[rpmostree] initramfs-args`: extra dracut arguments.
    pub fn initramfs_args(&self) -> Vec<String> {
        self.initramfs_args.clone()
    }

    /// `[rpmostree] initramfs-etc`: files from /etc tracked into the initramfs.
    pub fn initramfs_etc(&self) -> Vec<String> {
        self.initramfs_etc.clone()
    }

    /// `[rpmostree] ex-cliwrap`.
    pub fn cliwrap(&self) -> bool {
        self.cliwrap
    }

    /// Whether any of `regenerate-initramfs`, `initramfs-args` or
    /// `initramfs-etc` is present (whatever its value).
    pub fn has_initramfs_block(&self) -> bool {
        self.has_initramfs_block
    }

    /// `[libostree-transient] pinned`: the deployment is kept by cleanup.
    pub fn pinned(&self) -> bool {
        self.pinned
    }

    /// Whether the deployment may need client-side assembly on top of the
    /// base: any layered or overridden package, initramfs regeneration or
    /// tracked /etc files, or cliwrap. (`initramfs-args` alone does not count,
    /// matching rpm-ostree.)
    pub fn needs_local_assembly(&self) -> bool {
        !self.requested_packages.is_empty()
            || !self.requested_local_packages.is_empty()
            || !self.requested_local_fileoverride_packages.is_empty()
            || !self.override_remove.is_empty()
            || !self.override_replace_local.is_empty()
            || !self.override_replace.is_empty()
            || self.regenerate_initramfs
            || !self.initramfs_etc.is_empty()
            || self.cliwrap
    }
}

impl fmt::Display for Origin {
    /// The key file as GKeyFile serialises it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Origin {
    type Err = OriginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "9505cacb7c710ed17125fcc6cb3669e8ddca6c8cd8af6a31f6b3cd64604c3098";
    const SHA_A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    const SHA_B: &str = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    const SHA_C: &str = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";

    const SIMPLE: &str = "[origin]\nrefspec=fedora:fedora/40/x86_64/silverblue\n";

    const LAYERED: &str = "[origin]
baserefspec=fedora:fedora/40/x86_64/silverblue
override-commit=9505cacb7c710ed17125fcc6cb3669e8ddca6c8cd8af6a31f6b3cd64604c3098

[packages]
requested=htop;vim-enhanced;
requested-local=ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb:foo-1.0-1.fc40.x86_64;
requested-local-fileoverride=2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6:bar-2:3.1-4.fc40.noarch;

[overrides]
remove=firefox;firefox-langpacks;
replace-local=3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d:kernel-6.8.9-300.fc40.x86_64;
replace=repo=updates-testing,podman,podman-plugins;repo=copr:copr.fedorainfracloud.org:group:proj,mesa-dri-drivers;

[rpmostree]
regenerate-initramfs=true
initramfs-args=-I;/etc/crypttab;
initramfs-etc=/etc/crypttab;/etc/vconsole.conf;
ex-cliwrap=true
";

    const CONTAINER: &str = "[origin]
container-image-reference=ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40
container-image-reference-digest=sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6

[packages]
requested=tmux;
";

    /// Comments, blank lines, odd spacing, an unknown group, no final newline.
    const COMMENTED: &str = "# Written by hand
\t
[origin]
# the base image
  refspec =  fedora:fedora/40/x86_64/silverblue
unconfigured-state=Upgrade to the next release with rpm-ostree rebase

# layering
[packages]
requested=htop;
[x-site]
owner = ops team ";

    const PINNED: &str = "[origin]
refspec=fedora:fedora/40/x86_64/silverblue

[libostree-transient]
pinned=true
";

    const LOCALE: &str = "[origin]
refspec=9505cacb7c710ed17125fcc6cb3669e8ddca6c8cd8af6a31f6b3cd64604c3098
custom-url=https://example.com/builds/42
custom-description=Nightly\\sbuild; tested
custom-description[de]=N\u{e4}chtlicher Build
custom-description[sr@latin]=No\u{107}na
";

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    fn refspec(s: &str) -> Refspec {
        Refspec::parse(s).unwrap()
    }

    fn lp(sha256: &str, nevra: &str) -> LocalPackage {
        LocalPackage {
            sha256: sha256.to_string(),
            nevra: nevra.to_string(),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn origin_err(text: &str) -> OriginError {
        Origin::parse(text).unwrap_err()
    }

    fn refspec_err(s: &str) -> String {
        let err = Refspec::parse(s).unwrap_err();
        match &err {
            OriginError::InvalidRefspec { input, .. } => assert_eq!(input, s),
            other => panic!("expected InvalidRefspec, got {other:?}"),
        }
        err.to_string()
    }

    /// The validated view without the text (GKeyFile's serialisation of odd input, such as a
    /// stray `\r`, is not a fixed point, but what it means is).
    fn typed(o: &Origin) -> Origin {
        Origin {
            text: String::new(),
            ..o.clone()
        }
    }

    /// The raw value of a key in the origin's serialisation.
    fn raw(o: &Origin, group: &str, key: &str) -> Option<String> {
        o.to_keyfile().value(group, key).ok().map(|v| v.to_string())
    }

    // ----- the key file itself (GKeyFile) -----

    #[test]
    fn well_formed_origins_serialise_unchanged() {
        for text in [SIMPLE, LAYERED, CONTAINER, PINNED, LOCALE] {
            assert_eq!(origin(text).to_string(), text);
        }
    }

    #[test]
    fn unknown_keys_survive_an_edit() {
        let mut o = origin(COMMENTED);
        assert!(o.to_string().contains("# the base image"));
        o.set_refspec(&refspec("fedora:fedora/41/x86_64/silverblue"));
        let text = o.to_string();
        assert_eq!(raw(&o, "x-site", "owner").as_deref(), Some("ops team "));
        assert_eq!(o.requested_packages(), strings(&["htop"]));
        assert_eq!(origin(&text), o);
    }

    #[test]
    fn repeated_keys_count_once_and_edits_remove_them() {
        let mut o = origin("[origin]\nrefspec=a:b\nrefspec=a:c\n");
        assert_eq!(o.refspec(), Some(&refspec("a:c")));
        o.set_refspec(&refspec("a:d"));
        assert_eq!(o.to_string(), "[origin]\nrefspec=a:d\n");
    }

    #[test]
    fn syntax_errors_carry_gkeyfile_message() {
        for text in [
            "refspec=a:b\n",
            "[origin]\nnot a key value pair\n",
            "[origin\nrefspec=a:b\n",
        ] {
            let err = origin_err(text);
            assert!(
                matches!(err, OriginError::Syntax { .. }),
                "{text:?}: {err:?}"
            );
            assert!(
                err.to_string().starts_with("not a valid key file: "),
                "{err}"
            );
        }
    }

    // ----- refspecs -----

    #[test]
    fn refspec_remote_and_ref() {
        let r = refspec("fedora:fedora/40/x86_64/silverblue");
        assert_eq!(r.remote(), Some("fedora"));
        assert_eq!(r.ref_name(), "fedora/40/x86_64/silverblue");
        assert_eq!(r.kind(), RefspecKind::Ostree);
        assert_eq!(r.to_string(), "fedora:fedora/40/x86_64/silverblue");
        let r: Refspec = "my_remote-1.x:a.b/c-d_e".parse().unwrap();
        assert_eq!(r.remote(), Some("my_remote-1.x"));
        assert_eq!(r.ref_name(), "a.b/c-d_e");
    }

    #[test]
    fn refspec_local_forms() {
        for s in [":localref/x", "localref/x"] {
            let r = refspec(s);
            assert_eq!(r.remote(), None);
            assert_eq!(r.ref_name(), "localref/x");
            assert_eq!(r.kind(), RefspecKind::Ostree);
            assert_eq!(r.to_string(), "localref/x");
        }
    }

    #[test]
    fn refspec_checksum_detection() {
        let r = refspec(COMMIT);
        assert_eq!(r.kind(), RefspecKind::Checksum);
        assert_eq!(r.remote(), None);
        assert_eq!(r.ref_name(), COMMIT);
        assert_eq!(r.to_string(), COMMIT);
        // Not checksums: uppercase, wrong length, with a remote.
        for s in [
            COMMIT.to_uppercase(),
            COMMIT[..63].to_string(),
            format!("{COMMIT}0"),
        ] {
            assert_eq!(refspec(&s).kind(), RefspecKind::Ostree, "{s}");
        }
        let r = refspec(&format!("origin:{COMMIT}"));
        assert_eq!(r.kind(), RefspecKind::Ostree);
        assert_eq!(r.remote(), Some("origin"));
        // A local ref spelled like a checksum keeps its ':' so it re-parses as a ref.
        let r = refspec(&format!(":{COMMIT}"));
        assert_eq!(r.kind(), RefspecKind::Ostree);
        assert_eq!(r.to_string(), format!(":{COMMIT}"));
        assert_eq!(refspec(&r.to_string()), r);
        assert!(is_checksum(COMMIT));
        assert!(!is_checksum("xyz"));
    }

    #[test]
    fn refspec_error_empty() {
        assert_eq!(
            refspec_err(""),
            "invalid refspec \"\": it is empty; expected REMOTE:REF like \
             \"fedora:fedora/40/x86_64/silverblue\""
        );
        assert!(refspec_err(":").contains("empty ref"));
    }

    #[test]
    fn refspec_error_spaces() {
        assert_eq!(
            refspec_err("fedora:foo bar"),
            "invalid refspec \"fedora:foo bar\": ref component \"foo bar\" may only contain \
             letters, digits, '_', '-', '.'; expected REMOTE:REF like \
             \"fedora:fedora/40/x86_64/silverblue\""
        );
        assert!(refspec_err(" fedora:foo").contains("remote name \" fedora\" must start with"));
        assert!(refspec_err("fedora:foo ").contains("may only contain"));
    }

    #[test]
    fn refspec_error_newline() {
        let err = refspec_err("fedora:foo\nbar");
        assert!(
            err.starts_with("invalid refspec \"fedora:foo\\nbar\": "),
            "{err}"
        );
        assert!(err.contains("may only contain"), "{err}");
        assert!(refspec_err("fedora:foo\n").contains("may only contain"));
    }

    #[test]
    fn refspec_errors_quote_at_most_200_characters() {
        let huge = format!("fedora:{}", "a b".repeat(1_000_000));
        let err = refspec_err_text(&huge);
        assert!(err.len() < 1000, "{} bytes", err.len());
        assert!(err.contains("(3000007 bytes)"), "{err}");
    }

    fn refspec_err_text(s: &str) -> String {
        Refspec::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn refspec_error_remote_with_empty_ref() {
        assert_eq!(
            refspec_err("fedora:"),
            "invalid refspec \"fedora:\": it has an empty ref after ':'; expected REMOTE:REF \
             like \"fedora:fedora/40/x86_64/silverblue\""
        );
    }

    #[test]
    fn refspec_error_dot_components() {
        assert!(refspec_err("fedora:../etc").contains("must not contain a \"..\" component"));
        assert!(refspec_err("fedora:a/../b").contains("must not contain a \"..\" component"));
        assert!(refspec_err("a/./b").contains("must not contain a \".\" component"));
        assert!(refspec_err("fedora:.hidden").contains("must start with a letter, digit or '_'"));
        assert!(refspec_err("fedora:-x").contains("ref component \"-x\" must start with"));
    }

    #[test]
    fn refspec_error_slashes() {
        assert!(refspec_err("/fedora/40").contains("must not start with '/'"));
        assert!(refspec_err("fedora:/fedora/40").contains("must not start with '/'"));
        assert!(refspec_err("fedora:fedora/").contains("must not end with '/'"));
        assert!(refspec_err("fedora:a//b").contains("empty component"));
    }

    #[test]
    fn refspec_error_bad_remote() {
        assert!(refspec_err("fed ora:foo").contains("remote name \"fed ora\" may only contain"));
        assert!(refspec_err(".x:foo").contains("remote name \".x\" must start with"));
        assert!(refspec_err("a/b:foo").contains("remote name \"a/b\" may only contain"));
        assert!(refspec_err("a:b:c").contains("ref component \"b:c\" may only contain"));
    }

    // ----- origin accessors -----

    #[test]
    fn origin_simple_accessors() {
        let o = origin(SIMPLE);
        let r = refspec("fedora:fedora/40/x86_64/silverblue");
        assert_eq!(o.base(), &BaseSource::Refspec(r.clone()));
        assert_eq!(o.refspec(), Some(&r));
        assert_eq!(o.container_image_reference(), None);
        assert_eq!(o.override_commit(), None);
        assert_eq!(o.custom_origin(), None);
        assert_eq!(o.unconfigured_state(), None);
        assert!(o.requested_packages().is_empty());
        assert!(!o.regenerate_initramfs());
        assert!(!o.cliwrap());
        assert!(!o.pinned());
        assert!(!o.has_initramfs_block());
        assert!(!o.needs_local_assembly());
    }

    #[test]
    fn origin_layered_accessors() {
        let o = origin(LAYERED);
        let r = refspec("fedora:fedora/40/x86_64/silverblue");
        assert_eq!(o.base(), &BaseSource::BaseRefspec(r.clone()));
        assert_eq!(o.refspec(), Some(&r));
        assert_eq!(o.override_commit(), Some(COMMIT));
        assert_eq!(o.requested_packages(), strings(&["htop", "vim-enhanced"]));
        assert_eq!(
            o.requested_local_packages(),
            [lp(SHA_A, "foo-1.0-1.fc40.x86_64")]
        );
        assert_eq!(
            o.requested_local_fileoverride_packages(),
            [lp(SHA_C, "bar-2:3.1-4.fc40.noarch")]
        );
        assert_eq!(
            o.override_remove(),
            strings(&["firefox", "firefox-langpacks"])
        );
        assert_eq!(
            o.override_replace_local(),
            [lp(SHA_B, "kernel-6.8.9-300.fc40.x86_64")]
        );
        assert_eq!(
            o.override_replace(),
            [
                RemoteOverride {
                    repo: "updates-testing".to_string(),
                    packages: strings(&["podman", "podman-plugins"]),
                },
                RemoteOverride {
                    repo: "copr:copr.fedorainfracloud.org:group:proj".to_string(),
                    packages: strings(&["mesa-dri-drivers"]),
                },
            ]
        );
        assert!(o.regenerate_initramfs());
        assert_eq!(o.initramfs_args(), strings(&["-I", "/etc/crypttab"]));
        assert_eq!(
            o.initramfs_etc(),
            strings(&["/etc/crypttab", "/etc/vconsole.conf"])
        );
        assert!(o.cliwrap());
        assert!(o.has_initramfs_block());
        assert!(o.needs_local_assembly());
        assert!(!o.pinned());
    }

    #[test]
    fn origin_container_accessors() {
        let o = origin(CONTAINER);
        let image = "ostree-unverified-registry:quay.io/fedora/fedora-silverblue:40";
        assert_eq!(o.base(), &BaseSource::ContainerImage(image.to_string()));
        assert_eq!(o.container_image_reference(), Some(image));
        assert_eq!(o.refspec(), None);
        assert_eq!(o.requested_packages(), strings(&["tmux"]));
        assert!(o.needs_local_assembly());
    }

    #[test]
    fn origin_pinned_unconfigured_and_unknown_keys() {
        assert!(origin(PINNED).pinned());
        let o = origin(COMMENTED);
        assert_eq!(
            o.unconfigured_state().as_deref(),
            Some("Upgrade to the next release with rpm-ostree rebase")
        );
        assert_eq!(
            o.refspec(),
            Some(&refspec("fedora:fedora/40/x86_64/silverblue"))
        );
        assert_eq!(o.requested_packages(), strings(&["htop"]));
        let o = origin("[origin]\nrefspec=a:b\nfuture-key=???\n[libostree-transient]\npinned=0\n");
        assert!(!o.pinned());
        assert_eq!(raw(&o, "origin", "future-key").as_deref(), Some("???"));
    }

    #[test]
    fn origin_lists_follow_gkeyfile() {
        let list = |v: &str| {
            origin(&format!(
                "[origin]\nrefspec=a:b\n[rpmostree]\ninitramfs-args={v}\n"
            ))
            .initramfs_args()
        };
        assert_eq!(list("a;b;"), strings(&["a", "b"]));
        assert_eq!(list("a;b"), strings(&["a", "b"]));
        assert_eq!(list(""), Vec::<String>::new());
        assert_eq!(list("a\\;b;c;"), strings(&["a;b", "c"]));
    }

    #[test]
    fn origin_custom_origin() {
        let o = origin(LOCALE);
        assert_eq!(o.refspec().map(Refspec::kind), Some(RefspecKind::Checksum));
        assert_eq!(
            o.custom_origin(),
            Some((
                "https://example.com/builds/42".to_string(),
                "Nightly build; tested".to_string()
            ))
        );
        let o = origin("[origin]\nrefspec=a:b\ncustom-url=u\n");
        assert_eq!(o.custom_origin(), Some(("u".to_string(), String::new())));
    }

    #[test]
    fn origin_from_refspec() {
        let o = Origin::from_refspec(&refspec("fedora:fedora/40/x86_64/silverblue"));
        assert_eq!(o.to_string(), SIMPLE);
        assert_eq!(o, origin(SIMPLE));
        let o = Origin::from_refspec(&refspec(":local"));
        assert_eq!(o.to_string(), "[origin]\nrefspec=local\n");
        let o = Origin::from_refspec(&refspec(COMMIT));
        assert_eq!(o.to_string(), format!("[origin]\nrefspec={COMMIT}\n"));
        assert_eq!(o.refspec().map(Refspec::kind), Some(RefspecKind::Checksum));
    }

    #[test]
    fn local_package_and_remote_override_values() {
        let p = LocalPackage::parse(&format!("{SHA_A}:foo-1:2.0-3.fc40.x86_64")).unwrap();
        assert_eq!(p, lp(SHA_A, "foo-1:2.0-3.fc40.x86_64"));
        assert_eq!(p.to_string(), format!("{SHA_A}:foo-1:2.0-3.fc40.x86_64"));
        let err = LocalPackage::parse("abc:foo").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid local package \"abc:foo\": \"abc\" is not 64"),
            "{err}"
        );
        let r = RemoteOverride::parse("repo=fedora,a,b").unwrap();
        assert_eq!(r.repo, "fedora");
        assert_eq!(r.packages, strings(&["a", "b"]));
        assert_eq!(r.to_string(), "repo=fedora,a,b");
        assert!(RemoteOverride::parse("fedora,a").is_err());
    }

    // ----- origin mutations -----

    #[test]
    fn set_refspec_on_layered_keeps_packages_and_drops_override_commit() {
        let mut o = origin(LAYERED);
        let new = refspec("fedora:fedora/41/x86_64/silverblue");
        o.set_refspec(&new);
        let expected = LAYERED
            .replace("fedora/40/x86_64", "fedora/41/x86_64")
            .replace(&format!("override-commit={COMMIT}\n"), "");
        assert_eq!(o.to_string(), expected);
        assert_eq!(o.base(), &BaseSource::BaseRefspec(new.clone()));
        assert_eq!(o.override_commit(), None);
        assert_eq!(o.requested_packages(), strings(&["htop", "vim-enhanced"]));
        assert_eq!(
            o.override_remove(),
            strings(&["firefox", "firefox-langpacks"])
        );
        assert!(o.regenerate_initramfs());
        // The cached view matches a fresh parse of the new text.
        assert_eq!(origin(&o.to_string()), o);
    }

    #[test]
    fn set_refspec_on_plain_origin_keeps_refspec_key_and_drops_custom_origin() {
        let mut o = origin(LOCALE);
        o.set_refspec(&refspec("fedora:fedora/41/x86_64/silverblue"));
        assert_eq!(o.custom_origin(), None);
        assert_eq!(raw(&o, "origin", "custom-url"), None);
        assert_eq!(
            o.base(),
            &BaseSource::Refspec(refspec("fedora:fedora/41/x86_64/silverblue"))
        );
        assert_eq!(origin(&o.to_string()), o);
    }

    #[test]
    fn set_refspec_from_container() {
        let mut o = origin(CONTAINER);
        o.set_refspec(&refspec("fedora:fedora/40/x86_64/silverblue"));
        assert_eq!(
            o.base(),
            &BaseSource::BaseRefspec(refspec("fedora:fedora/40/x86_64/silverblue"))
        );
        assert_eq!(raw(&o, "origin", "container-image-reference"), None);
        assert_eq!(raw(&o, "origin", "container-image-reference-digest"), None);
        assert_eq!(o.requested_packages(), strings(&["tmux"]));
        assert_eq!(origin(&o.to_string()), o);
        // Without layering, the plain refspec key is used.
        let mut o = origin("[origin]\ncontainer-image-reference=docker://x/y\n");
        o.set_refspec(&refspec("fedora:f"));
        assert_eq!(o.to_string(), "[origin]\nrefspec=fedora:f\n");
        assert_eq!(o.base(), &BaseSource::Refspec(refspec("fedora:f")));
    }

    #[test]
    fn set_override_commit_adds_then_removes() {
        let mut o = origin(PINNED);
        assert!(o.set_override_commit(Some(COMMIT)));
        assert_eq!(o.override_commit(), Some(COMMIT));
        assert_eq!(
            raw(&o, "origin", "override-commit").as_deref(),
            Some(COMMIT)
        );
        assert!(o.pinned());
        assert_eq!(origin(&o.to_string()), o);
        assert!(o.set_override_commit(Some(SHA_A)));
        assert_eq!(o.override_commit(), Some(SHA_A));
        assert!(o.set_override_commit(None));
        assert_eq!(o.override_commit(), None);
        assert_eq!(raw(&o, "origin", "override-commit"), None);
        assert!(o.pinned());
        // Invalid checksums are refused and change nothing.
        let before = o.clone();
        for bad in [
            "abc123",
            &COMMIT.to_uppercase(),
            "",
            &format!("{COMMIT}\nx=y"),
            &format!("{COMMIT}\0"),
        ] {
            assert!(!o.set_override_commit(Some(bad)), "{bad:?}");
            assert_eq!(o, before);
        }
        // An image digest pins only an image-based origin.
        let digest = format!("sha256:{}", "0f".repeat(32));
        assert!(!o.set_override_commit(Some(&digest)));
        o.set_container_image("ostree-unverified-registry:quay.io/os:stable")
            .unwrap();
        assert!(o.set_override_commit(Some(&digest)));
        assert_eq!(
            origin(&o.to_string()).override_commit(),
            Some(digest.as_str())
        );
    }

    #[test]
    fn set_custom_origin_and_clear() {
        let plain = format!("[origin]\nrefspec={COMMIT}\n");
        let mut o = origin(&plain);
        o.set_custom_origin(Some(("https://e.com/x", " build 1")))
            .unwrap();
        assert_eq!(
            o.to_string(),
            format!(
                "[origin]\nrefspec={COMMIT}\ncustom-url=https://e.com/x\n\
                 custom-description=\\sbuild 1\n"
            )
        );
        assert_eq!(
            o.custom_origin(),
            Some(("https://e.com/x".to_string(), " build 1".to_string()))
        );
        assert_eq!(origin(&o.to_string()), o);
        let before = o.clone();
        assert!(o.set_custom_origin(Some(("", "d"))).is_err());
        assert!(o.set_custom_origin(Some(("u", ""))).is_err());
        assert!(o.set_custom_origin(Some(("u\0", "d"))).is_err());
        assert_eq!(o, before);
        o.set_custom_origin(None).unwrap();
        assert_eq!(o.to_string(), plain);
    }

    #[test]
    fn needs_local_assembly_and_initramfs_block() {
        let base = "[origin]\nrefspec=a:b\n";
        let check = |extra: &str, assembly: bool, block: bool| {
            let o = origin(&format!("{base}{extra}"));
            assert_eq!(o.needs_local_assembly(), assembly, "{extra}");
            assert_eq!(o.has_initramfs_block(), block, "{extra}");
        };
        check("", false, false);
        check("[packages]\nrequested=\n", false, false);
        check("[packages]\nrequested=x;\n", true, false);
        check(
            &format!("[overrides]\nreplace-local={SHA_A}:k-1-1.x86_64;\n"),
            true,
            false,
        );
        check("[overrides]\nreplace=repo=r,p;\n", true, false);
        check("[rpmostree]\nregenerate-initramfs=false\n", false, true);
        check("[rpmostree]\nregenerate-initramfs=true\n", true, true);
        check("[rpmostree]\ninitramfs-args=-I;\n", false, true);
        check("[rpmostree]\ninitramfs-etc=/etc/x;\n", true, true);
        check("[rpmostree]\nex-cliwrap=true\n", true, false);
    }

    #[test]
    fn from_keyfile_validates_libostree_keyfiles() {
        let kf = origin(SIMPLE).to_keyfile();
        kf.set_string("packages", "requested", "htop;git;");
        let o = Origin::from_keyfile(&kf).unwrap();
        assert_eq!(o.requested_packages(), strings(&["htop", "git"]));
        kf.set_string("packages", "requested", "bad name;");
        assert!(Origin::from_keyfile(&kf).is_err());
        // The keyfile handed out is a copy: editing it leaves the origin alone.
        assert_eq!(o.requested_packages(), strings(&["htop", "git"]));
    }

    // ----- origin errors -----

    #[test]
    fn origin_error_no_base() {
        for text in [
            "",
            "[packages]\nrequested=htop;\n",
            "[origin]\nrefspec[de]=a:b\n",
        ] {
            let err = origin_err(text);
            assert_eq!(err, OriginError::NoBase);
            assert_eq!(
                err.to_string(),
                "origin has no [origin] refspec, baserefspec or container-image-reference"
            );
        }
    }

    #[test]
    fn origin_error_conflicting_bases() {
        let err = origin_err("[origin]\nrefspec=a:b\ncontainer-image-reference=docker://x\n");
        assert_eq!(
            err.to_string(),
            "origin has both [origin] refspec and container-image-reference; expected exactly \
             one of refspec, baserefspec or container-image-reference"
        );
        // Repeated groups merge, as in GKeyFile.
        let err = origin_err("[origin]\nbaserefspec=a:b\n[origin]\nrefspec=a:b\n");
        assert_eq!(
            err,
            OriginError::ConflictingBase {
                first: "refspec",
                second: "baserefspec"
            }
        );
        let err = origin_err("[origin]\nbaserefspec=a:b\ncontainer-image-reference=x\n");
        assert!(err
            .to_string()
            .contains("baserefspec and container-image-reference"));
    }

    #[test]
    fn origin_error_bad_refspec_value() {
        let err = origin_err("[origin]\nrefspec=fedora:foo bar\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"fedora:foo bar\" for key \"refspec\" in group [origin]: ref \
             component \"foo bar\" may only contain letters, digits, '_', '-', '.'; expected \
             REMOTE:REF like \"fedora:fedora/40/x86_64/silverblue\""
        );
        let err = origin_err("[origin]\nbaserefspec=\n").to_string();
        assert!(err.contains("key \"baserefspec\""), "{err}");
        assert!(err.contains("it is empty"), "{err}");
    }

    #[test]
    fn origin_error_bad_override_commit() {
        for bad in ["abc", "", &COMMIT.to_uppercase(), &format!("{COMMIT}x")] {
            let err = origin_err(&format!("[origin]\nrefspec=a:b\noverride-commit={bad}\n"));
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid value {bad:?} for key \"override-commit\" in group [origin]: \
                     expected a commit checksum of 64 lowercase hex characters, or an image \
                     digest (sha256:…)"
                )
            );
        }
    }

    #[test]
    fn origin_error_bad_booleans() {
        let err = origin_err("[origin]\nrefspec=a:b\n[rpmostree]\nregenerate-initramfs=yes\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"yes\" for key \"regenerate-initramfs\" in group [rpmostree]: \
             expected a boolean, \"true\" or \"false\""
        );
        let err = origin_err("[origin]\nrefspec=a:b\n[rpmostree]\nex-cliwrap=on\n");
        assert!(err.to_string().contains("\"ex-cliwrap\""));
        let err = origin_err("[origin]\nrefspec=a:b\n[libostree-transient]\npinned=maybe\n");
        assert!(err.to_string().contains("group [libostree-transient]"));
    }

    #[test]
    fn origin_error_bad_local_packages() {
        let cases = [
            ("requested-local", "foo-1.0-1.x86_64".to_string(), "no ':'"),
            (
                "requested-local",
                "abc:foo-1.0-1.x86_64".to_string(),
                "\"abc\" is not 64",
            ),
            ("requested-local", format!("{SHA_A}:"), "the NEVRA is empty"),
            (
                "requested-local-fileoverride",
                format!("{SHA_A}:foo 1.0"),
                "contains whitespace",
            ),
        ];
        for (key, value, problem) in cases {
            let text = format!("[origin]\nrefspec=a:b\n[packages]\n{key}={value};\n");
            let err = origin_err(&text).to_string();
            assert!(
                err.starts_with(&format!(
                    "invalid value {value:?} for key \"{key}\" in group [packages]: "
                )),
                "{err}"
            );
            assert!(err.contains(problem), "{err}");
            assert!(err.contains("expected SHA256:NEVRA"), "{err}");
        }
        let err = origin_err("[origin]\nrefspec=a:b\n[overrides]\nreplace-local=x:y;\n");
        assert!(err.to_string().contains("group [overrides]"));
    }

    #[test]
    fn origin_error_bad_remote_overrides() {
        for (value, problem) in [
            ("fedora,podman", "does not start with \"repo=\""),
            ("repo=,podman", "repo name \"\" is empty"),
            ("repo=fedora", "no packages listed"),
            ("repo=fedora,,x", "package name is empty"),
        ] {
            let text = format!("[origin]\nrefspec=a:b\n[overrides]\nreplace={value};\n");
            let err = origin_err(&text).to_string();
            assert!(
                err.starts_with(&format!(
                    "invalid value {value:?} for key \"replace\" in group [overrides]: "
                )),
                "{err}"
            );
            assert!(err.contains(problem), "{err}");
        }
    }

    #[test]
    fn origin_error_bad_package_names() {
        let err = origin_err("[origin]\nrefspec=a:b\n[packages]\nrequested=htop;foo bar;\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"foo bar\" for key \"requested\" in group [packages]: package name \
             \"foo bar\" contains whitespace or control characters; expected a package name \
             like \"htop\""
        );
        let err = origin_err("[origin]\nrefspec=a:b\n[packages]\nrequested=htop;;\n");
        assert!(err.to_string().contains("package name is empty"));
        let err = origin_err("[origin]\nrefspec=a:b\n[overrides]\nremove=a\\nb;\n");
        assert!(err.to_string().contains("key \"remove\""));
    }

    #[test]
    fn origin_error_bad_container_reference() {
        let err = origin_err("[origin]\ncontainer-image-reference=\n");
        assert!(err
            .to_string()
            .starts_with("invalid value \"\" for key \"container-image-reference\" in group [origin]: it is empty"));
        let err = origin_err("[origin]\ncontainer-image-reference=docker://a b\n");
        assert!(err.to_string().contains("whitespace"));
    }

    #[test]
    fn origin_error_bad_strings_and_initramfs_etc() {
        let err = origin_err("[origin]\nrefspec=a:b\ncustom-url=x\\y\n");
        assert!(err.to_string().contains("key \"custom-url\""), "{err}");
        assert!(err.to_string().contains("\"x\\\\y\""), "{err}");
        let err = origin_err("[origin]\nrefspec=a:b\n[rpmostree]\ninitramfs-etc=etc/x;\n");
        assert_eq!(
            err.to_string(),
            "invalid value \"etc/x\" for key \"initramfs-etc\" in group [rpmostree]: expected an \
             absolute path like \"/etc/crypttab\""
        );
    }

    // ----- robustness -----

    #[test]
    fn never_panics_on_mangled_input() {
        let odd = [
            "",
            "\n",
            "\r",
            "[",
            "]",
            "=",
            "\\",
            ";",
            "[origin",
            "\u{0}",
            "\u{e9}",
            "\u{1F980}",
            "\x0b",
            "#",
            "[origin]\n",
            "refspec=",
        ];
        for sample in [SIMPLE, LAYERED, CONTAINER, COMMENTED, PINNED, LOCALE] {
            let boundaries: Vec<usize> = (0..=sample.len())
                .filter(|&i| sample.is_char_boundary(i))
                .collect();
            for &i in &boundaries {
                let (head, tail) = sample.split_at(i);
                for insert in odd {
                    let text = format!("{head}{insert}{tail}");
                    if let Ok(mut o) = Origin::parse(&text) {
                        let again = Origin::parse(&o.to_string())
                            .unwrap_or_else(|e| panic!("{text:?} -> {:?}: {e}", o.to_string()));
                        assert_eq!(typed(&again), typed(&o), "{text:?}");
                        o.set_refspec(&refspec("r:x"));
                        let _ = o.set_override_commit(Some(COMMIT));
                        let again = Origin::parse(&o.to_string())
                            .unwrap_or_else(|e| panic!("{text:?} -> {:?}: {e}", o.to_string()));
                        assert_eq!(typed(&again), typed(&o), "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn requesting_packages_switches_between_refspec_and_baserefspec() {
        let mut o = Origin::parse("[origin]\nrefspec=os:os/stable\n").unwrap();
        o.set_requested_packages(&["vim".into(), "htop".into(), "vim".into()])
            .unwrap();
        assert!(matches!(o.base(), BaseSource::BaseRefspec(_)));
        assert_eq!(o.requested_packages(), ["htop", "vim"]);
        let text = o.to_keyfile().to_data().to_string();
        assert!(text.contains("baserefspec=os:os/stable"), "{text}");
        assert!(text.contains("requested=htop;vim;"), "{text}");
        let before = text.clone();
        assert!(o.set_requested_packages(&["bad name\n".into()]).is_err());
        assert_eq!(o.to_keyfile().to_data().to_string(), before);
        o.set_requested_packages(&[]).unwrap();
        assert!(matches!(o.base(), BaseSource::Refspec(_)));
        let text = o.to_keyfile().to_data().to_string();
        assert!(!text.contains("[packages]"), "{text}");
    }
}
