//! Reading commit objects: version, timestamp, metadata, history.

use anyhow::{Context, Result};
use fn_error_context::context;
use ostree::glib;

/// What status and the operations need from a commit.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub checksum: String,
    pub parent: Option<String>,
    pub version: Option<String>,
    /// Unix seconds.
    pub timestamp: u64,
    /// The commit's `a{sv}` metadata.
    pub metadata: glib::Variant,
}

impl CommitInfo {
    /// A metadata value as a string, if present and a string.
    pub fn meta_string(&self, key: &str) -> Option<String> {
        let dict = glib::VariantDict::new(Some(&self.metadata));
        dict.lookup::<String>(key).ok().flatten()
    }

    /// A metadata value as a boolean, if present and a boolean.
    pub fn meta_bool(&self, key: &str) -> Option<bool> {
        let dict = glib::VariantDict::new(Some(&self.metadata));
        dict.lookup::<bool>(key).ok().flatten()
    }

    /// The manifest digest of the container image this commit was imported from (ostree-ext's
    /// merge commits carry it), which is what identifies an image.
    pub fn image_digest(&self) -> Option<String> {
        self.meta_string("ostree.manifest-digest")
    }

    /// The base commit: the parent of a layered commit (`rpmostree.clientlayer`), else this
    /// commit itself.
    pub fn base_checksum(&self) -> &str {
        match (&self.parent, self.meta_bool("rpmostree.clientlayer")) {
            (Some(parent), Some(true)) => parent,
            _ => &self.checksum,
        }
    }

    /// `version` and timestamp, for messages: `2 (2026-11-22T04:44:21Z)` or the short checksum.
    pub fn describe(&self) -> String {
        match &self.version {
            Some(v) => format!("{v} ({})", short(&self.checksum)),
            None => short(&self.checksum).to_string(),
        }
    }
}

/// The first 12 characters of a checksum.
pub fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// Load a commit object from the repo.
#[context("Loading commit {}", short(checksum))]
pub fn load(repo: &ostree::Repo, checksum: &str) -> Result<CommitInfo> {
    let (commit, _state) = repo
        .load_commit(checksum)
        .with_context(|| format!("Loading commit {checksum}"))?;
    let metadata = commit.child_value(0);
    let parent = ostree::commit_get_parent(&commit).map(|p| p.to_string());
    let timestamp = ostree::commit_get_timestamp(&commit);
    let dict = glib::VariantDict::new(Some(&metadata));
    let version = dict
        .lookup::<String>("version")
        .ok()
        .flatten()
        .or_else(|| image_version(&dict));
    Ok(CommitInfo {
        checksum: checksum.to_string(),
        parent,
        version,
        timestamp,
        metadata,
    })
}

/// The version of an image's merge commit (ostree-ext's, which has no `version` key): the
/// image configuration's version label, as rpm-ostree shows it.
fn image_version(meta: &glib::VariantDict) -> Option<String> {
    let config = meta
        .lookup::<String>("ostree.container.image-config")
        .ok()??;
    let config: ostree_ext::oci_spec::image::ImageConfiguration =
        serde_json::from_str(&config).ok()?;
    ostree_ext::container::version_for_config(&config).map(str::to_string)
}

/// Load a commit if the repo has its object.
pub fn load_optional(repo: &ostree::Repo, checksum: &str) -> Result<Option<CommitInfo>> {
    let present = repo
        .load_variant_if_exists(ostree::ObjectType::Commit, checksum)
        .with_context(|| format!("Looking up commit {checksum}"))?;
    match present {
        Some(_) => load(repo, checksum).map(Some),
        None => Ok(None),
    }
}

/// Walk the history from `head` through parents that are present locally, calling `f` on each
/// commit until it returns `Some`. Returns the result and how many commits were visited.
pub fn walk_history<T>(
    repo: &ostree::Repo,
    head: &str,
    mut f: impl FnMut(&CommitInfo) -> Option<T>,
) -> Result<(Option<T>, usize)> {
    let mut next = Some(head.to_string());
    let mut seen = 0;
    while let Some(csum) = next {
        let Some(info) = load_optional(repo, &csum)? else {
            break;
        };
        seen += 1;
        if let Some(r) = f(&info) {
            return Ok((Some(r), seen));
        }
        next = info.parent.clone();
    }
    Ok((None, seen))
}

/// Resolve a refspec in the local repo.
#[context("Resolving {refspec}")]
pub fn resolve(repo: &ostree::Repo, refspec: &str) -> Result<Option<String>> {
    Ok(repo
        .resolve_rev(refspec, true)
        .with_context(|| format!("Resolving {refspec}"))?
        .map(|s| s.to_string()))
}

/// Whether the repo holds the full tree of a commit (not only the commit object, as after a
/// metadata-only pull).
#[context("Checking that commit {} is complete", short(checksum))]
pub fn is_complete(repo: &ostree::Repo, checksum: &str) -> Result<bool> {
    let (_, state) = repo
        .load_commit(checksum)
        .with_context(|| format!("Loading commit {checksum}"))?;
    Ok(!state.contains(ostree::RepoCommitState::PARTIAL))
}
