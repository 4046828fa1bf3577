//! Importing an RPM into the repository as an ostree commit (the package cache), the way
//! rpm-ostree does, so the commits and refs are interchangeable with its own:
//! `rpmostree/pkg/<name>/<evr>.<arch>`, no parent, timestamp = the package's build time, and the
//! metadata `rpmostree.metadata` (every byte of the RPM before its payload: lead, signature and
//! main header), `rpmostree.metadata_sha256`, `rpmostree.nevra`, `rpmostree.unpack_version`,
//! and for packages from a repo `rpmostree.repo` and `rpmostree.repodata_checksum`.
//!
//! The header is read with the `rpm` crate; the payload is decompressed with the codec the
//! header names and walked with the `cpio` crate, each entry checked against the header before
//! anything of it is written:
//! - every path must be absolute and normalized, and land somewhere a deployment carries it
//!   ([`paths::place`]);
//! - every payload entry must be listed in the header, with the same type and mode (so a payload
//!   cannot add a setuid bit or a file the header does not declare);
//! - device nodes, FIFOs and sockets are refused (an ostree commit cannot carry them);
//! - a path cannot be both a directory and a file or symlink.
//!
//! Files are stored owned by root: ownership and modes from the header are applied when the
//! package is assembled into a tree, after its `%pre` scriptlet may have created the users.
//! File capabilities are not applied yet (see [`ImportedPackage::file_caps`]).
//!
//! Nothing is written to a ref until the whole package has been checked and written; a refused
//! package leaves at most unreferenced objects, which the next prune removes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use fn_error_context::context;
use ostree::gio::prelude::*;
use ostree::{gio, glib};
use sha2::{Digest, Sha256};

use super::escape_for_message as esc;
use super::nevra::Nevra;
use super::paths::{self, Placement};
use crate::progress::OpContext;

/// `rpmostree.unpack_version` and `rpmostree.unpack_minor_version` of the commits rpm-ostree
/// writes today: a commit with them is one rpm-ostree reuses as it is, and so does Strata.
const UNPACK_VERSION: u32 = 1;
const UNPACK_MINOR_VERSION: u32 = 6;

/// Where a package came from, recorded in its commit (`rpmostree.repo`).
#[derive(Debug, Clone)]
pub struct RepoSource {
    /// The repo id.
    pub id: String,
    /// When the repo's metadata was generated (Unix seconds).
    pub timestamp: u64,
    /// The repo metadata's checksum of the package file (`TYPE:HEX`).
    pub checksum: Option<String>,
}

/// A package in the package cache.
#[derive(Debug, Clone)]
pub struct ImportedPackage {
    /// Its identity.
    pub nevra: Nevra,
    /// The commit.
    pub commit: String,
    /// `rpmostree/pkg/...`.
    pub cache_ref: String,
    /// SHA-256 of the RPM's bytes before the payload (lead, signature and header).
    pub metadata_sha256: String,
    /// Whether the commit was already in the cache (nothing was imported).
    pub reused: bool,
    /// The RPM's bytes before the payload (`rpmostree.metadata`): what the rpmdb and the
    /// scriptlets are read from.
    pub header: Vec<u8>,
    /// Paths with file capabilities in the header (not applied yet).
    pub file_caps: Vec<String>,
}

/// Imports the RPM at `path` into `repo` unless the same package (same header bytes) is
/// already in the cache.
#[context("Importing {}", path.display())]
pub fn import_rpm(
    repo: &ostree::Repo,
    path: &Path,
    source: Option<&RepoSource>,
    ctx: &OpContext,
) -> Result<ImportedPackage> {
    let cancellable = Some(ctx.cancellable());
    let file = File::open(path)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let meta = rpm::PackageMetadata::parse(&mut reader)
        .map_err(|e| anyhow!("Not a readable RPM package: {e}"))?;
    // The bytes before the payload, as rpm-ostree hashes and stores them.
    let payload_offset = reader.stream_position()?;
    let lead_and_headers = read_prefix(path, payload_offset)?;
    let metadata_sha256 = hex::encode(Sha256::digest(&lead_and_headers));

    if meta.is_source_package() {
        bail!("It is a source package; only binary packages can be layered");
    }
    let nevra = nevra_of(&meta)?;
    let cache_ref = nevra.cache_ref();
    let pkg = nevra.to_string();

    if let Some(commit) = repo.resolve_rev(&cache_ref, true)? {
        let existing = crate::commit::load(repo, &commit)?;
        if existing.meta_string("rpmostree.metadata_sha256").as_deref()
            == Some(metadata_sha256.as_str())
        {
            return Ok(ImportedPackage {
                file_caps: file_caps(&meta)?,
                nevra,
                commit: commit.to_string(),
                cache_ref,
                metadata_sha256,
                reused: true,
                header: lead_and_headers,
            });
        }
    }

    let plan = Plan::from_header(&pkg, &meta)?;
    let compressor = meta
        .get_payload_compressor()
        .map_err(|e| anyhow!("{pkg}: reading the payload compressor: {e}"))?;
    let payload: Box<dyn Read> = match compressor {
        rpm::CompressionType::None => Box::new(reader),
        rpm::CompressionType::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        rpm::CompressionType::Zstd => Box::new(zstd::Decoder::with_buffer(reader)?),
        rpm::CompressionType::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(reader)),
        other => bail!("{pkg}: payload compression {other:?} is not supported"),
    };

    let txn = repo.auto_transaction(cancellable)?;
    let objects = write_payload(repo, &pkg, &plan, payload, ctx)?;
    let root = build_tree(repo, &nevra, &plan, &objects, cancellable)?;
    let metadata = commit_metadata(&nevra, &lead_and_headers, &metadata_sha256, source);
    let build_time = meta.get_build_time().unwrap_or(0);
    let commit = repo
        .write_commit_with_time(
            None,
            Some(""),
            None,
            Some(&metadata),
            &root,
            build_time,
            cancellable,
        )
        .with_context(|| format!("{pkg}: writing the commit"))?;
    repo.transaction_set_ref(None, &cache_ref, Some(&commit));
    txn.commit(cancellable)?;
    Ok(ImportedPackage {
        file_caps: plan.file_caps,
        nevra,
        commit: commit.to_string(),
        cache_ref,
        metadata_sha256,
        reused: false,
        header: lead_and_headers,
    })
}

/// The NEVRA and header checksum (`rpmostree.metadata_sha256`) of the RPM at `path`, without
/// importing it.
#[context("Reading {}", path.display())]
pub fn identify(path: &Path) -> Result<(Nevra, String)> {
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let meta = rpm::PackageMetadata::parse(&mut reader)
        .map_err(|e| anyhow!("Not a readable RPM package: {e}"))?;
    if meta.is_source_package() {
        bail!("It is a source package; only binary packages can be layered");
    }
    let prefix = read_prefix(path, reader.stream_position()?)?;
    Ok((nevra_of(&meta)?, hex::encode(Sha256::digest(&prefix))))
}

fn read_prefix(path: &Path, len: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(len)?);
    File::open(path)?.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The package's identity from its header.
pub fn nevra_of(meta: &rpm::PackageMetadata) -> Result<Nevra> {
    let s = |r: std::result::Result<&str, rpm::Error>, what: &str| {
        r.map(str::to_string)
            .map_err(|e| anyhow!("The package header has no {what}: {e}"))
    };
    Ok(Nevra {
        name: s(meta.get_name(), "name")?,
        epoch: meta.get_epoch().map(u64::from).unwrap_or(0),
        version: s(meta.get_version(), "version")?,
        release: s(meta.get_release(), "release")?,
        arch: s(meta.get_arch(), "architecture")?,
    })
}

fn file_caps(meta: &rpm::PackageMetadata) -> Result<Vec<String>> {
    Ok(meta
        .get_file_entries()
        .map_err(|e| anyhow!("Reading the file list: {e}"))?
        .iter()
        .filter(|f| f.caps().is_some_and(|c| !c.is_empty()))
        .map(|f| f.path().to_string_lossy().into_owned())
        .collect())
}

/// What the header declares, checked and placed, before the payload is read.
struct Plan {
    /// Header entries by payload path.
    entries: HashMap<String, Declared>,
    /// `/var` and `/run` directories and symlinks as systemd-tmpfiles lines.
    tmpfiles: Vec<String>,
    /// Top-level `/opt` entries (each gets a tmpfiles link).
    opt_roots: Vec<String>,
    /// Paths with file capabilities.
    file_caps: Vec<String>,
}

#[derive(Debug, Clone)]
struct Declared {
    kind: Kind,
    /// Type and permission bits, as in the header.
    mode: u32,
    size: u64,
    placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Regular,
    Dir,
    Symlink(String),
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

impl Plan {
    fn from_header(pkg: &str, meta: &rpm::PackageMetadata) -> Result<Plan> {
        let files = meta
            .get_file_entries()
            .map_err(|e| anyhow!("{pkg}: reading the file list: {e}"))?;
        let mut plan = Plan {
            entries: HashMap::new(),
            tmpfiles: Vec::new(),
            opt_roots: Vec::new(),
            file_caps: Vec::new(),
        };
        for f in &files {
            let path = f.path().to_string_lossy().into_owned();
            if f.flags().contains(rpm::FileFlags::GHOST) {
                // Not in the payload; rpm creates nothing for it either.
                continue;
            }
            let mode = u32::from(f.mode().raw_mode());
            let kind = match f.file_type() {
                rpm::FileType::Regular => Kind::Regular,
                rpm::FileType::Dir => Kind::Dir,
                rpm::FileType::SymbolicLink => Kind::Symlink(f.linkto().unwrap_or("").to_string()),
                other => bail!(
                    "{pkg} carries {} ({other:?}): device nodes, FIFOs and sockets cannot be layered",
                    esc(&path)
                ),
            };
            let path = match path.strip_prefix("/var/run/") {
                Some(rest) => format!("/run/{rest}"),
                None => path,
            };
            let placement =
                paths::place(&path, kind == Kind::Dir).map_err(|e| anyhow!("{pkg}: {e}"))?;
            match (&placement, &kind) {
                (Placement::Tmpfiles(p), _) => {
                    plan.tmpfiles
                        .push(paths::tmpfiles_dir_line(p, mode, f.user(), f.group()))
                }
                (Placement::Drop, Kind::Symlink(target))
                    if path.starts_with("/var/") || path.starts_with("/run/") =>
                {
                    plan.tmpfiles.push(format!("L {path} - - - - {target}"));
                }
                (Placement::Tree(rel), _) => {
                    if let Some(under_opt) = rel.strip_prefix("usr/lib/opt/") {
                        let top = under_opt.split('/').next().unwrap_or(under_opt);
                        if !plan.opt_roots.iter().any(|r| r == top) {
                            plan.opt_roots.push(top.to_string());
                        }
                    }
                }
                _ => {}
            }
            if f.caps().is_some_and(|c| !c.is_empty()) {
                plan.file_caps.push(path.clone());
            }
            plan.entries.insert(
                path,
                Declared {
                    kind,
                    mode,
                    size: f.size() as u64,
                    placement,
                },
            );
        }
        Ok(plan)
    }
}

/// What each placed path became: a content object (file or symlink) or a directory.
#[derive(Debug, Clone)]
enum Object {
    File(String),
    Dir { mode: u32 },
}

/// Reads the cpio payload, checks each entry against the plan and writes the content objects.
fn write_payload(
    repo: &ostree::Repo,
    pkg: &str,
    plan: &Plan,
    mut input: Box<dyn Read>,
    ctx: &OpContext,
) -> Result<BTreeMap<String, Object>> {
    let cancellable = Some(ctx.cancellable());
    let mut objects = BTreeMap::new();
    // Hard links: rpm writes a set's data only with its last member.
    let mut pending_links: HashMap<u32, Vec<String>> = HashMap::new();
    loop {
        ctx.check_cancelled()?;
        let mut entry =
            cpio::NewcReader::new(input).with_context(|| format!("{pkg}: reading the payload"))?;
        if entry.entry().is_trailer() {
            break;
        }
        let raw_name = entry.entry().name().to_string();
        let path = match raw_name.strip_prefix('.') {
            Some(p) if p.starts_with('/') => p.to_string(),
            _ => format!("/{raw_name}"),
        };
        let path = match path.strip_prefix("/var/run/") {
            Some(rest) => format!("/run/{rest}"),
            None => path,
        };
        let declared = plan.entries.get(&path).ok_or_else(|| {
            anyhow!(
                "{pkg}: the payload carries {}, which the package header does not list",
                esc(&path)
            )
        })?;
        let cpio_mode = entry.entry().mode();
        if cpio_mode & (S_IFMT | 0o7777) != declared.mode & (S_IFMT | 0o7777) {
            bail!(
                "{pkg}: {} has mode {cpio_mode:o} in the payload but {:o} in the header",
                esc(&path),
                declared.mode
            );
        }
        let size = u64::from(entry.entry().file_size());
        let object = match &declared.kind {
            Kind::Dir => Some(Object::Dir {
                mode: declared.mode,
            }),
            Kind::Symlink(target) => {
                let mut got = String::new();
                (&mut entry)
                    .take(4096)
                    .read_to_string(&mut got)
                    .with_context(|| format!("{pkg}: reading the symlink {}", esc(&path)))?;
                if &got != target {
                    bail!(
                        "{pkg}: the symlink {} points to {} in the payload but {} in the header",
                        esc(&path),
                        esc(&got),
                        esc(target)
                    );
                }
                let csum = repo.write_symlink(None, 0, 0, None, target, cancellable)?;
                Some(Object::File(csum.to_string()))
            }
            Kind::Regular if entry.entry().nlink() > 1 && size == 0 && declared.size > 0 => {
                pending_links
                    .entry(entry.entry().ino())
                    .or_default()
                    .push(path.clone());
                None
            }
            Kind::Regular => {
                if size != declared.size {
                    bail!(
                        "{pkg}: {} has {size} bytes in the payload but {} in the header",
                        esc(&path),
                        declared.size
                    );
                }
                let mode = S_IFREG | (declared.mode & 0o7777);
                let writer = repo.write_regfile(None, 0, 0, mode, size, None)?;
                let mut out = writer.clone().upcast::<gio::OutputStream>().into_write();
                let copied = io::copy(&mut entry, &mut out)
                    .with_context(|| format!("{pkg}: unpacking {}", esc(&path)))?;
                if copied != size {
                    bail!("{pkg}: {} is truncated in the payload", esc(&path));
                }
                let csum = writer.finish(cancellable)?.to_string();
                for other in pending_links
                    .remove(&entry.entry().ino())
                    .unwrap_or_default()
                {
                    place_object(pkg, plan, &mut objects, &other, Object::File(csum.clone()))?;
                }
                Some(Object::File(csum))
            }
        };
        if let Some(object) = object {
            place_object(pkg, plan, &mut objects, &path, object)?;
        }
        input = entry.finish()?;
    }
    if let Some(paths) = pending_links.into_values().next() {
        bail!(
            "{pkg}: the payload ends before the data of {}",
            esc(&paths.join(", "))
        );
    }
    Ok(objects)
}

fn place_object(
    pkg: &str,
    plan: &Plan,
    objects: &mut BTreeMap<String, Object>,
    path: &str,
    object: Object,
) -> Result<()> {
    let declared = &plan.entries[path];
    if let Placement::Tree(rel) = &declared.placement {
        if objects.insert(rel.clone(), object).is_some() {
            bail!("{pkg}: {} is in the payload twice", esc(path));
        }
    }
    Ok(())
}

/// A directory's metadata object (root-owned).
fn dirmeta(
    repo: &ostree::Repo,
    mode: u32,
    cancellable: Option<&gio::Cancellable>,
) -> Result<String> {
    let info = gio::FileInfo::new();
    info.set_attribute_uint32("unix::uid", 0);
    info.set_attribute_uint32("unix::gid", 0);
    // Directories stay writable by their owner, as rpm-ostree does.
    info.set_attribute_uint32("unix::mode", S_IFDIR | (mode & 0o7777) | 0o200);
    let v = ostree::create_directory_metadata(&info, None);
    Ok(repo
        .write_metadata(ostree::ObjectType::DirMeta, None, &v, cancellable)?
        .to_hex())
}

fn build_tree(
    repo: &ostree::Repo,
    nevra: &Nevra,
    plan: &Plan,
    objects: &BTreeMap<String, Object>,
    cancellable: Option<&gio::Cancellable>,
) -> Result<ostree::RepoFile> {
    let pkg = nevra.to_string();
    let default_meta = dirmeta(repo, 0o755, cancellable)?;
    let mtree = ostree::MutableTree::new();
    mtree.set_metadata_checksum(&default_meta);
    let mut extra: Vec<(String, Object)> = Vec::new();
    let mut tmpfiles = plan.tmpfiles.clone();
    for name in &plan.opt_roots {
        tmpfiles.push(paths::tmpfiles_opt_line(name));
    }
    if !tmpfiles.is_empty() {
        tmpfiles.sort();
        tmpfiles.dedup();
        let text = tmpfiles.join("\n") + "\n";
        let csum = repo.write_regfile_inline(
            None,
            0,
            0,
            S_IFREG | 0o644,
            None,
            text.as_bytes(),
            cancellable,
        )?;
        extra.push((
            format!("usr/lib/rpm-ostree/tmpfiles.d/{}.conf", nevra.name),
            Object::File(csum.to_string()),
        ));
    }
    for (rel, object) in objects
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(extra)
    {
        let parts: Vec<&str> = rel.split('/').collect();
        let (name, _) = parts.split_last().expect("placed paths are not empty");
        let parent = mtree
            .ensure_parent_dirs(&parts, &default_meta)
            .map_err(|e| anyhow!("{pkg}: {}: {e}", esc(&rel)))?;
        let conflict = |e: glib::Error| {
            anyhow!(
                "{pkg}: {} is both a directory and a file or symlink: {e}",
                esc(&rel)
            )
        };
        match object {
            Object::File(csum) => parent.replace_file(name, &csum).map_err(conflict)?,
            Object::Dir { mode } => {
                let dir = parent.ensure_dir(name).map_err(conflict)?;
                dir.set_metadata_checksum(&dirmeta(repo, mode, cancellable)?);
            }
        }
    }
    let root = repo.write_mtree(&mtree, cancellable)?;
    root.downcast::<ostree::RepoFile>()
        .map_err(|_| anyhow!("ostree returned a root that is not a RepoFile"))
}

fn commit_metadata(
    nevra: &Nevra,
    lead_and_headers: &[u8],
    sha256: &str,
    source: Option<&RepoSource>,
) -> glib::Variant {
    let dict = glib::VariantDict::new(None);
    dict.insert_value(
        "rpmostree.metadata",
        &glib::Variant::array_from_fixed_array(lead_and_headers),
    );
    dict.insert("rpmostree.metadata_sha256", sha256);
    dict.insert_value(
        "rpmostree.nevra",
        &(
            nevra.to_string(),
            nevra.name.clone(),
            nevra.epoch,
            nevra.version.clone(),
            nevra.release.clone(),
            nevra.arch.clone(),
        )
            .to_variant(),
    );
    dict.insert("rpmostree.unpack_version", UNPACK_VERSION);
    dict.insert("rpmostree.unpack_minor_version", UNPACK_MINOR_VERSION);
    if let Some(src) = source {
        let repo = glib::VariantDict::new(None);
        repo.insert("id", src.id.as_str());
        repo.insert("timestamp", src.timestamp);
        dict.insert_value("rpmostree.repo", &repo.end());
        if let Some(c) = &src.checksum {
            dict.insert("rpmostree.repodata_checksum", c.as_str());
        }
    }
    dict.end()
}
