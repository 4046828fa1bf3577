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

use std::future::Future;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;
use ostree::gio::prelude::*;
use ostree::glib;
use ostree_ext::container::store::{
    ImageImporter, ImportProgress, LayerProgress, ManifestLayerState, PrepareResult, PreparedImport,
};
use ostree_ext::container::OstreeImageReference;
use ostree_ext::containers_image_proxy::ImageProxyConfig;
use ostree_ext::oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use crate::progress::{Cancelled, Event, OpContext};

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

/// `imgref` pinned to the manifest `digest` (`sha256:…`), as Zincati deploys a release:
/// `registry:host/name@sha256:…` for a registry; for an `oci:` directory, the tag of the
/// directory's index that names that manifest (skopeo addresses an OCI layout by tag only).
pub fn pinned(imgref: &str, digest: &str) -> Result<OstreeImageReference> {
    use ostree_ext::container::{ImageReference, Transport};
    use ostree_ext::oci_spec::distribution::Reference;
    let parsed = parse_reference(imgref)?;
    if !crate::origin::is_image_digest(digest) {
        return Err(anyhow!(
            "Invalid image digest {:?}: expected sha256: and 64 hex digits",
            crate::origin::caller_text(digest)
        ));
    }
    let name = match parsed.imgref.transport {
        Transport::Registry | Transport::ContainerStorage => {
            let r: Reference = parsed
                .imgref
                .name
                .parse()
                .map_err(|e| anyhow!("Invalid image name in {parsed}: {e}"))?;
            r.clone_with_digest(digest.to_string()).whole()
        }
        Transport::OciDir => {
            let dir = match parsed.imgref.name.rsplit_once(':') {
                Some((dir, _tag)) => dir,
                None => parsed.imgref.name.as_str(),
            };
            let tag = oci_layout_tag(Path::new(dir), digest)?;
            format!("{dir}:{tag}")
        }
        other => {
            return Err(anyhow!(
                "An image is pinned by digest only in a registry, containers-storage or an oci: directory, not {other}: {parsed}"
            ))
        }
    };
    Ok(OstreeImageReference {
        sigverify: parsed.sigverify,
        imgref: ImageReference {
            transport: parsed.imgref.transport,
            name,
        },
    })
}

/// The largest OCI layout index read (an index lists one small entry per tag).
const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;

/// The tag of the OCI layout `dir` whose manifest is `digest`. The index is opened without
/// following a symlink and without blocking (the daemon reads it as root from a path its caller
/// named: a FIFO there must not hang it), and read only if it is a regular file of bounded size.
fn oci_layout_tag(dir: &Path, digest: &str) -> Result<String> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let path = dir.join("index.json");
    let fd = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("Opening {}", path.display()))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_INDEX_BYTES {
        return Err(anyhow!(
            "{} is not an OCI layout index (a regular file of at most {MAX_INDEX_BYTES} bytes)",
            path.display()
        ));
    }
    let mut text = String::new();
    file.take(MAX_INDEX_BYTES).read_to_string(&mut text)?;
    let index: ostree_ext::oci_spec::image::ImageIndex =
        serde_json::from_str(&text).with_context(|| format!("Reading {}", path.display()))?;
    index
        .manifests()
        .iter()
        .filter(|m| m.digest().to_string() == digest)
        .find_map(|m| {
            m.annotations()
                .as_ref()?
                .get("org.opencontainers.image.ref.name")
                .cloned()
        })
        .ok_or_else(|| {
            anyhow!(
                "No tag of the OCI directory {} names the image {digest}",
                dir.display()
            )
        })
}

/// Removes the images no deployment follows and the layers no remaining image or deployment
/// uses (ostree-ext's bookkeeping refs; the objects go with the next repository prune).
/// Returns how many images and layers went. The caller holds the sysroot lock.
pub(crate) fn prune(sysroot: &ostree::Sysroot) -> Result<(usize, u32)> {
    let lock = ostree_ext::sysroot::SysrootLock::from_assumed_locked(sysroot);
    let images = ostree_ext::container::deploy::remove_undeployed_images(&lock)
        .context("Removing images no deployment uses")?;
    let layers = ostree_ext::container::store::gc_image_layers(&sysroot.repo())?;
    Ok((images.len(), layers))
}

/// [`prune`], said as rpm-ostree says it; `true` when anything went.
pub(crate) fn prune_and_report(sysroot: &ostree::Sysroot, ctx: &OpContext) -> Result<bool> {
    let (images, layers) = prune(sysroot)?;
    if images > 0 || layers > 0 {
        ctx.message(format!("Pruned images: {images} (layers: {layers})"));
    }
    Ok(images > 0 || layers > 0)
}

/// What the registry (or `oci:` directory) says about the image a reference names, from its
/// manifest and configuration alone: no layer is fetched.
#[derive(Debug, Clone)]
pub struct ImageCheck {
    /// The manifest digest the reference resolves to now.
    pub manifest_digest: String,
    /// That manifest and the image configuration.
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The image's version label (`org.opencontainers.image.version`), if any.
    pub version: Option<String>,
    /// Layers of the image, and how many of them (and how many bytes) a pull would fetch.
    pub layers: usize,
    pub layers_to_fetch: usize,
    pub bytes_to_fetch: u64,
}

impl ImageCheck {
    /// `2 of 8 layers to fetch (1.2 MB)`.
    pub fn fetch_summary(&self) -> String {
        format!(
            "{} of {} layers to fetch ({})",
            self.layers_to_fetch,
            self.layers,
            glib::format_size(self.bytes_to_fetch)
        )
    }
}

/// Layers of a prepared import that are not in the repository: how many, and their bytes.
fn to_fetch<'a>(layers: impl Iterator<Item = &'a ManifestLayerState>) -> (usize, u64) {
    layers
        .filter(|l| l.commit.is_none())
        .fold((0, 0), |(n, bytes), l| (n + 1, bytes + l.layer().size()))
}

/// Asks where `imgref` points now (manifest and configuration; no layer is fetched). When the
/// repository holds an older image of the same reference, ostree-ext keeps the new manifest
/// beside it (detached metadata of its merge commit), which the cached update reads back.
#[context("Checking {imgref} for updates")]
pub(crate) fn check(repo_path: &Path, imgref: &str, ctx: &OpContext) -> Result<ImageCheck> {
    let imgref = parse_reference(imgref)?;
    ctx.message(format!("Pulling manifest: {imgref}"));
    let repo_path = repo_path.to_path_buf();
    on_own_runtime(ctx, move |_| async move {
        let repo = open_repo(&repo_path)?;
        let mut imp = importer(&repo, &imgref).await?;
        Ok(match imp.prepare().await? {
            PrepareResult::AlreadyPresent(state) => ImageCheck {
                manifest_digest: state.manifest_digest.to_string(),
                version: ostree_ext::container::version_for_config(&state.configuration)
                    .map(str::to_string),
                layers: state.manifest.layers().len(),
                layers_to_fetch: 0,
                bytes_to_fetch: 0,
                manifest: state.manifest.clone(),
                config: state.configuration.clone(),
            },
            PrepareResult::Ready(prep) => {
                let (layers_to_fetch, bytes_to_fetch) = to_fetch(prep.all_layers());
                ImageCheck {
                    manifest_digest: prep.manifest_digest.to_string(),
                    version: prep.version().map(str::to_string),
                    layers: prep.all_layers().count(),
                    layers_to_fetch,
                    bytes_to_fetch,
                    manifest: prep.manifest.clone(),
                    config: prep.config.clone(),
                }
            }
        })
    })
}

/// Records `pending` (an image the reference points at now, not pulled) beside the deployed
/// image's merge commit `deployed`, or clears it (`None`), where the cached update reads it:
/// the detached metadata keys ostree-ext's `query_image_commit` reads back as its
/// `cached_update`. ostree-ext's own `prepare` writes them only on the image stored under the
/// same reference, which is not the deployed one after a digest pin or once an upgrade is
/// staged, and it offers no call to write them elsewhere: the three keys are written here.
pub(crate) fn record_pending(
    repo: &ostree::Repo,
    deployed: &str,
    pending: Option<&ImageCheck>,
) -> Result<()> {
    let meta = pending
        .map(|p| -> Result<glib::Variant> {
            let dict = glib::VariantDict::new(None);
            dict.insert(
                "ostree-ext.cached.manifest-digest",
                p.manifest_digest.as_str(),
            );
            dict.insert(
                "ostree-ext.cached.manifest",
                serde_json::to_string(&p.manifest)?.as_str(),
            );
            dict.insert(
                "ostree-ext.cached.config",
                serde_json::to_string(&p.config)?.as_str(),
            );
            Ok(dict.end())
        })
        .transpose()?;
    repo.write_commit_detached_metadata(deployed, meta.as_ref(), ostree::gio::Cancellable::NONE)
        .with_context(|| format!("Recording the pending image beside {deployed}"))?;
    Ok(())
}

/// Pulls `imgref` into the repository at `repo_path` (the image must be bootable). Only the
/// layers not in the repository are fetched, each reported as percent progress.
#[context("Pulling {imgref}")]
pub(crate) fn pull(repo_path: &Path, imgref: &str, ctx: &OpContext) -> Result<PulledImage> {
    pull_reference(repo_path, parse_reference(imgref)?, ctx)
}

/// Pulls the image `digest` names, of the repository `imgref` names (see [`pinned`]).
#[context("Pulling {digest} of {imgref}")]
pub(crate) fn pull_digest(
    repo_path: &Path,
    imgref: &str,
    digest: &str,
    ctx: &OpContext,
) -> Result<PulledImage> {
    let image = pull_reference(repo_path, pinned(imgref, digest)?, ctx)?;
    if image.manifest_digest != digest {
        return Err(anyhow!(
            "The image pulled has the digest {}, not {digest}",
            image.manifest_digest
        ));
    }
    Ok(image)
}

fn pull_reference(
    repo_path: &Path,
    imgref: OstreeImageReference,
    ctx: &OpContext,
) -> Result<PulledImage> {
    use ostree_ext::container::SignatureSource;
    ctx.message(format!("Pulling manifest: {imgref}"));
    let remote = match &imgref.sigverify {
        SignatureSource::OstreeRemote(r) => Some(r.clone()),
        _ => None,
    };
    let verify_by_copy =
        imgref.sigverify == SignatureSource::ContainerPolicy && !proxy_applies_policy()?;
    let repo_path = repo_path.to_path_buf();
    let pulled = on_own_runtime(ctx, move |ctx| async move {
        let repo = open_repo(&repo_path)?;
        let mut imp = importer(&repo, &imgref).await?;
        let prep = match imp.prepare().await? {
            PrepareResult::AlreadyPresent(state) => {
                ctx.message(format!(
                    "Image {} is already in the repository",
                    state.manifest_digest
                ));
                return Ok(PulledImage {
                    commit: state.merge_commit.clone(),
                    manifest_digest: state.manifest_digest.to_string(),
                });
            }
            PrepareResult::Ready(prep) => prep,
        };
        if verify_by_copy {
            let digest = prep.manifest_digest.to_string();
            drop(imp);
            return pull_by_verified_copy(&repo, &repo_path, &imgref, &digest, &ctx).await;
        }
        import(imp, prep, &imgref, &ctx).await
    });
    match (pulled, remote) {
        // ostree-ext (0.15.3) verifies the commit of an `ostree-remote-image:` with the detached
        // metadata that follows it in the image, and an unsigned commit has none: its error then
        // names the object it found instead. Said in the user's terms.
        (Err(e), Some(remote)) if format!("{e:#}").contains("Expected commitmeta object") => Err(e
            .context(format!(
                "The image's ostree commit carries no signature; an ostree-remote-image: \
                 reference needs one made with a key of the ostree remote {remote:?}"
            ))),
        (pulled, _) => pulled,
    }
}

/// Fetches the layers of a prepared import that the repository lacks, with progress.
async fn import(
    mut imp: ImageImporter,
    prep: Box<PreparedImport>,
    imgref: &OstreeImageReference,
    ctx: &OpContext,
) -> Result<PulledImage> {
    let events = imp.request_progress();
    let bytes = imp.request_layer_progress();
    let (n, size) = to_fetch(prep.all_layers());
    let total = prep.all_layers().count();
    ctx.message(format!(
        "Importing {imgref} (digest: {}): {n} of {total} layers to fetch ({})",
        prep.manifest_digest,
        glib::format_size(size)
    ));
    let mut report = LayerReport::new(ctx, &prep, n);
    let state = report.follow(imp.import(prep), events, bytes).await?;
    Ok(PulledImage {
        commit: state.merge_commit.clone(),
        manifest_digest: state.manifest_digest.to_string(),
    })
}

/// Whether skopeo's image proxy applies the containers signature policy when it opens an
/// image: from skopeo 1.14 on (skopeo pull request 2029, 2023). Older ones (Debian 12 has
/// 1.9.3) hand out any image, signed or not, so that an `ostree-image-signed:` reference
/// would not be verified at all through them.
fn proxy_applies_policy() -> Result<bool> {
    let out = std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .context("Running skopeo --version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "skopeo version 1.9.3" (some builds add " commit: …").
    let version = text
        .split_whitespace()
        .nth(2)
        .ok_or_else(|| anyhow!("Unexpected skopeo --version output {text:?}"))?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    Ok((major, minor) >= (1, 14))
}

/// Pulls an `ostree-image-signed:` image with a skopeo whose image proxy does not apply the
/// signature policy: `skopeo copy` (which applies it) of the manifest `digest` into a `dir:`
/// beside the repository, then an import from there recorded as coming from `imgref`. The
/// cost: every layer is downloaded, not only those the repository lacks.
async fn pull_by_verified_copy(
    repo: &ostree::Repo,
    repo_path: &Path,
    imgref: &OstreeImageReference,
    digest: &str,
    ctx: &OpContext,
) -> Result<PulledImage> {
    use ostree_ext::container::{ImageReference, SignatureSource, Transport};
    let source = pinned(&imgref.to_string(), digest)?.imgref;
    let tmp = tempfile::Builder::new()
        .prefix("strata-signed-image-")
        .tempdir_in(repo_path.join("tmp"))?;
    ctx.message(format!(
        "Verifying {source} against the containers signature policy (copying the whole image: \
         this skopeo's image proxy does not verify)"
    ));
    let out = tokio::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(source.to_string())
        .arg(format!("dir:{}", tmp.path().display()))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("Running skopeo copy")?;
    if !out.status.success() {
        // skopeo's fatal error is a logrus line: `time="…" level=fatal msg="…"`.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = stderr
            .split_once("msg=\"")
            .map_or(stderr.trim(), |(_, m)| m.trim().trim_end_matches('"'));
        return Err(anyhow!(
            "{source} is refused: {}",
            strata_api::text::printable(msg, 500)
        ));
    }
    let local = OstreeImageReference {
        sigverify: SignatureSource::ContainerPolicyAllowInsecure,
        imgref: ImageReference {
            transport: Transport::Dir,
            name: tmp.path().display().to_string(),
        },
    };
    let mut imp = importer(repo, &local).await?;
    imp.set_target(imgref);
    let image = match imp.prepare().await? {
        PrepareResult::AlreadyPresent(state) => PulledImage {
            commit: state.merge_commit.clone(),
            manifest_digest: state.manifest_digest.to_string(),
        },
        PrepareResult::Ready(prep) => import(imp, prep, imgref, ctx).await?,
    };
    if image.manifest_digest != digest {
        return Err(anyhow!(
            "The verified copy of {source} has the digest {}, not {digest}",
            image.manifest_digest
        ));
    }
    Ok(image)
}

/// Turns ostree-ext's layer events into progress: a percent bar per layer fetched
/// (`[2/3] Fetching layer sha256:0123abcd… (1.2 MB)`), ended when the layer is written.
struct LayerReport<'a> {
    ctx: &'a OpContext,
    /// Layer digests of the manifest, in order (byte progress names a layer by its index).
    digests: Vec<String>,
    n_to_fetch: usize,
    started: usize,
    /// The manifest index, text and last percent of the layer being fetched.
    current: Option<(Option<usize>, String, u32)>,
}

impl<'a> LayerReport<'a> {
    fn new(ctx: &'a OpContext, prep: &PreparedImport, n_to_fetch: usize) -> Self {
        Self {
            ctx,
            digests: prep
                .manifest
                .layers()
                .iter()
                .map(|l| l.digest().to_string())
                .collect(),
            n_to_fetch,
            started: 0,
            current: None,
        }
    }

    /// Drives `import` to its end, reporting its events meanwhile.
    async fn follow<T>(
        &mut self,
        import: impl Future<Output = Result<T>>,
        mut events: tokio::sync::mpsc::Receiver<ImportProgress>,
        mut bytes: tokio::sync::watch::Receiver<Option<LayerProgress>>,
    ) -> Result<T> {
        let mut import = std::pin::pin!(import);
        let mut bytes_open = true;
        loop {
            tokio::select! {
                r = &mut import => {
                    self.end_layer();
                    return r;
                }
                Some(ev) = events.recv() => self.event(&ev),
                changed = bytes.changed(), if bytes_open => match changed {
                    Ok(()) => {
                        let p = bytes.borrow_and_update();
                        if let Some(p) = p.as_ref() {
                            self.bytes(p);
                        }
                    }
                    Err(_) => bytes_open = false,
                },
            }
        }
    }

    fn event(&mut self, ev: &ImportProgress) {
        match ev {
            ImportProgress::OstreeChunkStarted(l) | ImportProgress::DerivedLayerStarted(l) => {
                self.start_layer(l)
            }
            ImportProgress::OstreeChunkCompleted(_) | ImportProgress::DerivedLayerCompleted(_) => {
                self.end_layer()
            }
        }
    }

    fn start_layer(&mut self, layer: &Descriptor) {
        self.end_layer();
        self.started += 1;
        let digest = layer.digest().to_string();
        let index = self.digests.iter().position(|d| *d == digest);
        let short = digest.get(..19).unwrap_or(&digest);
        let text = format!(
            "[{}/{}] Fetching layer {short} ({})",
            self.started,
            self.n_to_fetch.max(self.started),
            glib::format_size(layer.size())
        );
        self.ctx.emit(Event::Percent {
            text: text.clone(),
            percent: 0,
        });
        self.current = Some((index, text, 0));
    }

    fn bytes(&mut self, p: &LayerProgress) {
        // Only the layer being reported (a late update of the previous one is dropped).
        let Some((Some(index), text, last)) = self.current.as_mut() else {
            return;
        };
        if *index != p.layer_index {
            return;
        }
        let percent = (p.fetched.saturating_mul(100))
            .checked_div(p.total)
            .unwrap_or(0)
            .min(99) as u32;
        if percent != *last {
            *last = percent;
            self.ctx.emit(Event::Percent {
                text: text.clone(),
                percent,
            });
        }
    }

    fn end_layer(&mut self) {
        if let Some((_, text, _)) = self.current.take() {
            self.ctx.emit(Event::Percent { text, percent: 100 });
            self.ctx.emit(Event::ProgressEnd);
        }
    }
}

fn open_repo(path: &Path) -> Result<ostree::Repo> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(ostree::gio::Cancellable::NONE)
        .with_context(|| format!("Opening the repository {}", path.display()))?;
    Ok(repo)
}

/// An importer of `imgref` for a bootable image, fetching through skopeo configured as the
/// containers stack configures it (`/etc/containers/`).
async fn importer(repo: &ostree::Repo, imgref: &OstreeImageReference) -> Result<ImageImporter> {
    let mut imp = ImageImporter::new(repo, imgref, ImageProxyConfig::default()).await?;
    imp.require_bootable();
    Ok(imp)
}

/// Runs the future `f` makes on a thread of its own with its own runtime (ostree-ext is
/// async and its futures hold libostree objects; the callers run on blocking workers,
/// possibly inside the daemon's runtime). Cancelling `ctx` drops the future: skopeo is
/// stopped, the layer being written is abandoned (a repository transaction, resumed or
/// discarded by the next one), and nothing is deployed.
fn on_own_runtime<T, F, Fut>(ctx: &OpContext, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(OpContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    ctx.check_cancelled()?;
    let ctx = ctx.clone();
    std::thread::spawn(move || -> Result<T> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("Starting the image pull's runtime")?;
        // A handler of our own, disconnected at the end (gio's `future()` would stay connected
        // to the transaction's cancellable when the pull ends first).
        let cancellable = ctx.cancellable().clone();
        let (tx, cancelled) = tokio::sync::oneshot::channel::<()>();
        let handler = cancellable.connect_cancelled(move |_| {
            let _ = tx.send(());
        });
        let r = rt.block_on(async move {
            tokio::select! {
                r = f(ctx) => r,
                _ = cancelled => Err(Cancelled.into()),
            }
        });
        if let Some(h) = handler {
            cancellable.disconnect_cancelled(h);
        }
        r
    })
    .join()
    .map_err(|_| anyhow!("The image pull's thread panicked"))?
}
