//! OS updates shipped as container images (ostree-native, "bootable" OCI images), through
//! ostree-ext, the library rpm-ostree and bootc use: an image reference
//! (`ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable`,
//! `ostree-unverified-image:oci:/path:tag`, …) is pulled into the sysroot's repository as a
//! merge commit carrying the manifest and configuration (`ostree.manifest`,
//! `ostree.manifest-digest`, `ostree.container.image-config`), which is deployed like any
//! commit, with the reference in the origin's `container-image-reference`.
//!
//! ostree-ext fetches through `skopeo` (its image proxy), so registries, TLS and signature
//! policy are configured as for the containers stack (`/etc/containers/`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;
use ostree_ext::container::store::{ImageImporter, PrepareResult};
use ostree_ext::container::OstreeImageReference;
use ostree_ext::containers_image_proxy::ImageProxyConfig;

use crate::progress::OpContext;

/// The longest image reference accepted.
const MAX_REFERENCE_BYTES: usize = 2048;

/// An image pulled into the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The commit to deploy (ostree-ext's merge commit of the image's layers).
    pub commit: String,
    /// The manifest digest (`sha256:…`), which identifies the image: importing the same
    /// image twice gives different merge commits.
    pub manifest_digest: String,
}

/// Parses an ostree image reference, with a message naming the input and the forms expected.
pub fn parse_reference(s: &str) -> Result<OstreeImageReference> {
    if s.len() > MAX_REFERENCE_BYTES || s.chars().any(char::is_control) {
        return Err(anyhow!(
            "Invalid image reference {:?}: at most {MAX_REFERENCE_BYTES} bytes without control characters",
            crate::origin::caller_text(s)
        ));
    }
    OstreeImageReference::try_from(s).map_err(|e| {
        anyhow!(
            "Invalid image reference {:?}: {e:#}; expected e.g. \
             ostree-unverified-registry:quay.io/fedora/fedora-coreos:stable or \
             ostree-unverified-image:oci:/path/to/dir:tag",
            crate::origin::caller_text(s)
        )
    })
}

/// Pulls `imgref` into the repository at `repo_path` (the image must be bootable). Only the
/// layers not in the repository are fetched.
#[context("Pulling {imgref}")]
pub(crate) fn pull(repo_path: &Path, imgref: &str, ctx: &OpContext) -> Result<PulledImage> {
    let imgref = parse_reference(imgref)?;
    let repo_path: PathBuf = repo_path.to_path_buf();
    ctx.message(format!("Pulling manifest: {imgref}"));
    // ostree-ext is async and its futures hold libostree objects: a thread of its own with its
    // own runtime (this runs on a blocking worker, possibly inside the daemon's runtime).
    let pulled = std::thread::spawn(move || -> Result<(PulledImage, Option<usize>)> {
        let repo = ostree::Repo::new_for_path(&repo_path);
        repo.open(ostree::gio::Cancellable::NONE)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("Starting the image pull's runtime")?;
        rt.block_on(async {
            let mut imp = ImageImporter::new(&repo, &imgref, ImageProxyConfig::default()).await?;
            imp.require_bootable();
            let (state, fetched) = match imp.prepare().await? {
                PrepareResult::AlreadyPresent(state) => (state, None),
                PrepareResult::Ready(prep) => {
                    let n = prep.layers_to_fetch().count();
                    (imp.import(prep).await?, Some(n))
                }
            };
            Ok((
                PulledImage {
                    commit: state.merge_commit.clone(),
                    manifest_digest: state.manifest_digest.to_string(),
                },
                fetched,
            ))
        })
    })
    .join()
    .map_err(|_| anyhow!("The image pull's thread panicked"))??;
    let (image, fetched) = pulled;
    ctx.message(match fetched {
        Some(n) => format!(
            "Fetched {n} layer{} of {}",
            if n == 1 { "" } else { "s" },
            image.manifest_digest
        ),
        None => format!(
            "Image {} is already in the repository",
            image.manifest_digest
        ),
    });
    Ok(image)
}
