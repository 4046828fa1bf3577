//! Pulling from a remote with progress and cancellation.

use anyhow::{anyhow, Context, Result};
use ostree::gio;
use ostree::glib;

use crate::progress::{DownloadProgress, Event, OpContext};

/// What to pull.
#[derive(Debug, Clone, Default)]
pub(crate) struct PullRequest<'a> {
    pub remote: &'a str,
    /// Refs or commit checksums.
    pub refs: Vec<String>,
    /// Only the commit objects (for "is there an update?" and history lookups).
    pub commit_only: bool,
    /// Parent commits to fetch too: 0 for none, -1 for the whole history.
    pub depth: i32,
    /// Only these directories of the commits' trees (with the commit objects); empty for the
    /// whole tree. The commits stay marked partial.
    pub subdirs: Vec<String>,
}

/// Pull from `req.remote`, reporting [`Event::Download`] about once a second.
///
/// libostree runs the pull in the calling thread's default main context and delivers progress
/// on the context the `AsyncProgress` was made in, so both get a fresh context of their own here.
pub(crate) fn pull(repo: &ostree::Repo, req: &PullRequest<'_>, ctx: &OpContext) -> Result<()> {
    ctx.check_cancelled()?;
    let what = req.refs.join(", ");
    let main = glib::MainContext::new();
    let res = main
        .with_thread_default(|| -> Result<()> {
            let progress = ostree::AsyncProgress::new();
            let sink = ctx.clone();
            progress.connect_changed(move |p| sink.emit(Event::Download(read_progress(p))));
            let opts = glib::VariantDict::new(None);
            opts.insert("refs", &req.refs);
            let mut flags = ostree::RepoPullFlags::NONE;
            if req.commit_only {
                flags |= ostree::RepoPullFlags::COMMIT_ONLY;
            }
            opts.insert("flags", flags.bits() as i32);
            opts.insert("depth", req.depth);
            if !req.subdirs.is_empty() {
                opts.insert("subdirs", &req.subdirs);
            }
            let r = repo.pull_with_options(
                req.remote,
                &opts.end(),
                Some(&progress),
                Some(ctx.cancellable()),
            );
            progress.finish();
            r.map_err(|e| explain_pull_error(repo, req.remote, e))
        })
        .map_err(|e| anyhow!("Setting up the pull's main context: {e}"))?;
    ctx.emit(Event::ProgressEnd);
    res.with_context(|| format!("Pulling {what} from remote {:?}", req.remote))
}

/// The commit `ref_name` is at on `remote` according to the remote's summary file, fetched
/// without a repository transaction (nothing written but libostree's summary cache). `None` when
/// that cannot be told cheaply: no summary, a remote with a collection ID (its refs are keyed
/// differently), a ref the summary does not list, or any error — the caller then pulls, and the
/// pull reports what is wrong.
///
/// libostree's pull resolves a ref from the summary too when the remote has one, so the answer
/// is the pull's. It only ever lets the caller skip a pull that would change nothing: a pull
/// commits a repository transaction (a `syncfs` and an `fsync` of all 256 object directories)
/// even when every object is already here, which is most of an update check's time.
pub(crate) fn remote_head(
    repo: &ostree::Repo,
    remote: &str,
    ref_name: &str,
    ctx: &OpContext,
) -> Option<String> {
    let collection = repo.remote_option(remote, "collection-id", None).ok()?;
    if collection.is_some_and(|c| !c.is_empty()) {
        return None;
    }
    let summary = match strata_ostree_summary::fetch(repo, remote, Some(ctx.cancellable())) {
        Ok(s) => s?,
        Err(e) => {
            tracing::debug!("Fetching the summary of remote {remote:?}: {e}");
            return None;
        }
    };
    summary_ref(&summary, ref_name)
}

/// The commit a summary lists for `ref_name`. The summary is the remote's data: read as an
/// untrusted GVariant of libostree's summary type, checksums checked for length.
fn summary_ref(summary: &glib::Bytes, ref_name: &str) -> Option<String> {
    let ty = glib::VariantTy::new("(a(s(taya{sv}))a{sv})").ok()?;
    let summary = glib::Variant::from_bytes_with_type(summary, ty);
    // As libostree's pull, which also relies on the refs being sorted: a summary in another
    // form is left to the pull to judge.
    if !summary.is_normal_form() {
        return None;
    }
    let refs = summary.try_child_value(0)?;
    refs.iter().find_map(|entry| {
        if entry.try_child_value(0)?.str()? != ref_name {
            return None;
        }
        let csum = entry.try_child_value(1)?.try_child_value(1)?;
        (csum.n_children() == 32).then(|| ostree::checksum_from_bytes_v(&csum).to_string())
    })
}

/// Add what the user can do to libostree's pull errors, judged by the error's domain and code.
fn explain_pull_error(repo: &ostree::Repo, remote: &str, e: glib::Error) -> anyhow::Error {
    // libostree has no Rust binding for its GPG error domain; its quark is this name
    // (G_DEFINE_QUARK (OstreeGpgError, ostree_gpg_error)).
    let gpg_domain = e.domain().as_str() == "OstreeGpgError";
    let gpg = repo.remote_get_gpg_verify(remote).unwrap_or(false);
    let hint = if gpg_domain && gpg {
        format!(
            "The remote {remote:?} has gpg-verify=true: the commit must be signed by a key imported for this remote (ostree remote gpg-import {remote} KEYFILE)"
        )
    } else if ref_not_found(&e) {
        format!("Check the ref name (ostree remote refs {remote} lists what the remote has)")
    } else {
        return anyhow::Error::new(e);
    };
    anyhow!("{}\n{hint}", e.message())
}

/// Whether libostree said the remote does not have a ref. An HTTP 404 is G_IO_ERROR_NOT_FOUND;
/// a ref missing from the remote's summary is only G_IO_ERROR_FAILED ("No such branch '…' in
/// repository summary", ostree-repo-pull.c) and the ostree crate binds no way to list a remote's
/// refs, so that one case is recognised by its fixed prefix.
fn ref_not_found(e: &glib::Error) -> bool {
    e.matches(gio::IOErrorEnum::NotFound) || e.message().starts_with("No such branch")
}

fn read_progress(p: &ostree::AsyncProgress) -> DownloadProgress {
    let u = |k: &str| -> u32 {
        p.variant(k)
            .and_then(|v| v.get::<u32>())
            .unwrap_or_default()
    };
    let t = |k: &str| -> u64 {
        p.variant(k)
            .and_then(|v| v.get::<u64>())
            .unwrap_or_default()
    };
    let start_us = t("start-time");
    let now_us = glib::monotonic_time().max(0) as u64;
    let elapsed = now_us.saturating_sub(start_us) / 1_000_000;
    let bytes = t("bytes-transferred");
    DownloadProgress {
        start_time: start_us / 1_000_000,
        elapsed_secs: elapsed,
        outstanding_fetches: u("outstanding-fetches"),
        outstanding_writes: u("outstanding-writes"),
        scanned_metadata: u("scanned-metadata"),
        metadata_fetched: u("metadata-fetched"),
        outstanding_metadata_fetches: u("outstanding-metadata-fetches"),
        total_delta_parts: u("total-delta-parts"),
        fetched_delta_parts: u("fetched-delta-parts"),
        total_delta_superblocks: u("total-delta-superblocks"),
        total_delta_part_size: t("total-delta-part-size"),
        fetched: u("fetched"),
        requested: u("requested"),
        bytes_transferred: bytes,
        bytes_per_sec: bytes.checked_div(elapsed).unwrap_or(bytes),
    }
}
