//! Progress reporting and cancellation for long operations.
//!
//! Every operation takes an [`OpContext`]: a sink for [`Event`]s (the daemon maps them to the
//! transaction signals `Message`, `TaskBegin`, `TaskEnd`, `PercentProgress`, `DownloadProgress`
//! and `ProgressEnd`; the CLI renders them) and a `gio::Cancellable` that libostree checks in its
//! own loops and that we check between steps.

use std::fmt;
use std::sync::Arc;

use anyhow::Result;
use ostree::gio;
use ostree::gio::prelude::*;

/// Download counters, in the order of rpm-ostree's `DownloadProgress` signal
/// `((tt)(uu)(uuu)(uuut)(uu)(tt))`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadProgress {
    /// Unix time (seconds) the pull started, and seconds elapsed since.
    pub start_time: u64,
    pub elapsed_secs: u64,
    pub outstanding_fetches: u32,
    pub outstanding_writes: u32,
    pub scanned_metadata: u32,
    pub metadata_fetched: u32,
    pub outstanding_metadata_fetches: u32,
    pub total_delta_parts: u32,
    pub fetched_delta_parts: u32,
    pub total_delta_superblocks: u32,
    pub total_delta_part_size: u64,
    /// Content objects fetched and requested so far.
    pub fetched: u32,
    pub requested: u32,
    pub bytes_transferred: u64,
    pub bytes_per_sec: u64,
}

/// One progress event of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line of text for the user.
    Message(String),
    /// A named step starts ("Pulling stratatest/stable", "Deploying").
    TaskBegin(String),
    /// The current step ended successfully; the text ends its line ("done").
    TaskEnd(String),
    /// Percent progress of a step.
    Percent { text: String, percent: u32 },
    /// Pull progress.
    Download(DownloadProgress),
    /// The current progress display (percent or download) is over.
    ProgressEnd,
}

type Sink = dyn Fn(&Event) + Send + Sync;

/// What an operation reports to and how it is cancelled.
#[derive(Clone)]
pub struct OpContext {
    sink: Arc<Sink>,
    cancellable: gio::Cancellable,
}

impl fmt::Debug for OpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpContext")
            .field("cancelled", &self.cancellable.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// The error returned when an operation stopped because it was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("Operation was cancelled")]
pub struct Cancelled;

impl OpContext {
    /// A context reporting to `sink`, cancelled through `cancellable`.
    pub fn new(
        sink: impl Fn(&Event) + Send + Sync + 'static,
        cancellable: gio::Cancellable,
    ) -> Self {
        Self {
            sink: Arc::new(sink),
            cancellable,
        }
    }

    /// A context that drops all events and is never cancelled from outside.
    pub fn silent() -> Self {
        Self::new(|_| {}, gio::Cancellable::new())
    }

    pub fn cancellable(&self) -> &gio::Cancellable {
        &self.cancellable
    }

    pub fn emit(&self, event: Event) {
        (self.sink)(&event)
    }

    pub fn message(&self, text: impl Into<String>) {
        self.emit(Event::Message(text.into()))
    }

    /// Fail with [`Cancelled`] if the operation has been cancelled.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancellable.is_cancelled() {
            return Err(Cancelled.into());
        }
        Ok(())
    }

    /// Run `f` as a named step: checks cancellation first, emits `TaskBegin(name)`, and
    /// `TaskEnd("done")` when it succeeded (rpm-ostree's `TaskEnd` carries the word that ends
    /// the step's line: "Pulling…... done").
    pub fn task<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_cancelled()?;
        self.emit(Event::TaskBegin(name.to_string()));
        let r = f()?;
        self.emit(Event::TaskEnd("done".to_string()));
        Ok(r)
    }
}

/// Whether `err` (or anything in its chain) is a cancellation, ours or GIO's.
pub fn is_cancelled(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<Cancelled>()
            || e.downcast_ref::<ostree::glib::Error>()
                .is_some_and(|g| g.matches(gio::IOErrorEnum::Cancelled))
    })
}
