//! Pulling from a remote with progress and cancellation.

use anyhow::{anyhow, Context, Result};
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

/// Add what the user can do to libostree's pull errors.
fn explain_pull_error(repo: &ostree::Repo, remote: &str, e: glib::Error) -> anyhow::Error {
    let msg = e.message().to_string();
    let gpg = repo.remote_get_gpg_verify(remote).unwrap_or(false);
    if gpg && (msg.contains("GPG") || msg.contains("signature")) {
        return anyhow!(
            "{msg}\nThe remote {remote:?} has gpg-verify=true: the commit must be signed by a key imported for this remote (ostree remote gpg-import {remote} KEYFILE)"
        );
    }
    if msg.contains("No such branch") || msg.contains("not found") || msg.contains("404") {
        return anyhow!(
            "{msg}\nCheck the ref name (ostree remote refs {remote} lists what the remote has)"
        );
    }
    anyhow::Error::new(e)
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
