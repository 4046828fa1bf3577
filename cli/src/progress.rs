//! Showing a transaction's progress: a progress bar and spinners on a terminal, plain lines
//! otherwise (logs, pipes, agents).

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `DownloadProgress` as the daemon sends it (rpm-ostree's layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Download {
    /// (start time, elapsed seconds)
    pub time: (u64, u64),
    /// (outstanding fetches, outstanding writes)
    pub outstanding: (u32, u32),
    /// (scanned, fetched, outstanding) metadata objects
    pub metadata: (u32, u32, u32),
    /// (total parts, fetched parts, total superblocks, total size) of static deltas
    pub delta: (u32, u32, u32, u64),
    /// (fetched, requested) content objects
    pub content: (u32, u32),
    /// (bytes transferred, bytes per second)
    pub transfer: (u64, u64),
}

/// One signal of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Message(String),
    TaskBegin(String),
    TaskEnd(String),
    Percent(String, u32),
    Download(Download),
    ProgressEnd,
    Finished(bool, String),
}

/// Where progress goes.
pub(crate) trait Progress {
    fn event(&mut self, ev: &Event);
    /// Print a line outside of any progress display (e.g. "Caught SIGINT").
    fn note(&mut self, line: &str);
}

/// Sizes as rpm-ostree shows them: GLib's `g_format_size` (SI units).
pub(crate) fn format_size(bytes: u64) -> String {
    glib::format_size(bytes).to_string()
}

/// The one-line description of a download, as rpm-ostree's client words it; without the
/// object percentage when a bar shows it beside the text.
fn download_line(d: &Download, with_percent: bool) -> String {
    let (outstanding_fetches, outstanding_writes) = d.outstanding;
    let (scanned, meta_fetched, meta_outstanding) = d.metadata;
    let (total_parts, fetched_parts, _, total_size) = d.delta;
    let (fetched, requested) = d.content;
    let (bytes, rate) = d.transfer;
    if outstanding_fetches > 0 {
        let rate = if rate == 0 {
            "-".to_string()
        } else {
            format_size(rate)
        };
        let bytes = format_size(bytes);
        if total_parts > 0 {
            format!(
                "Receiving delta parts: {fetched_parts}/{total_parts} {rate}/s {bytes}/{}",
                format_size(total_size)
            )
        } else if meta_outstanding > 0 {
            format!("Receiving metadata objects: {meta_fetched}/(estimating) {rate}/s {bytes}")
        } else {
            let pct = (fetched as u64 * 100)
                .checked_div(requested as u64)
                .unwrap_or(0);
            if with_percent {
                format!("Receiving objects: {pct}% ({fetched}/{requested}) {rate}/s {bytes}")
            } else {
                format!("Receiving objects: ({fetched}/{requested}) {rate}/s {bytes}")
            }
        }
    } else if outstanding_writes > 0 {
        format!("Writing objects: {outstanding_writes}")
    } else {
        format!("Scanning metadata: {scanned}")
    }
}

/// The summary line after a download, like `ostree pull` prints it.
pub(crate) fn download_summary(d: &Download) -> String {
    format!(
        "{} metadata, {} content objects fetched; {} transferred in {} seconds",
        d.metadata.1,
        d.content.0,
        format_size(d.transfer.0),
        d.time.1
    )
}

/// Plain lines: for pipes, logs and agents. `TaskBegin` opens a `task... ` line that the
/// matching `TaskEnd` closes; messages are printed as they come; a download is summarised
/// once it ends.
#[derive(Debug)]
pub(crate) struct Plain<W: Write> {
    out: W,
    quiet: bool,
    open_line: bool,
    percent_task: Option<String>,
    last_download: Option<Download>,
}

impl<W: Write> Plain<W> {
    pub(crate) fn new(out: W, quiet: bool) -> Self {
        Self {
            out,
            quiet,
            open_line: false,
            percent_task: None,
            last_download: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }

    fn close_line(&mut self, end: &str) {
        if self.open_line {
            let _ = writeln!(self.out, "{end}");
            self.open_line = false;
        }
    }

    fn finish_download(&mut self) {
        if let Some(d) = self.last_download.take() {
            let _ = writeln!(self.out, "{}", download_summary(&d));
        }
    }
}

impl<W: Write> Progress for Plain<W> {
    fn event(&mut self, ev: &Event) {
        if self.quiet {
            return;
        }
        match ev {
            Event::Message(m) => {
                self.close_line("");
                let _ = writeln!(self.out, "{m}");
            }
            Event::TaskBegin(t) => {
                self.close_line("");
                self.percent_task = None;
                let _ = write!(self.out, "{t}... ");
                self.open_line = true;
            }
            Event::TaskEnd(t) => {
                let end = if t.is_empty() { "done" } else { t.as_str() };
                self.close_line(end);
            }
            Event::Percent(text, pct) => {
                if self.percent_task.as_deref() != Some(text.as_str()) {
                    self.close_line("");
                    let _ = write!(self.out, "{text}... ");
                    self.open_line = true;
                    self.percent_task = Some(text.clone());
                }
                if *pct >= 100 {
                    self.close_line("100%");
                }
            }
            Event::Download(d) => self.last_download = Some(*d),
            Event::ProgressEnd => {
                self.close_line("done");
                self.percent_task = None;
                self.finish_download();
            }
            Event::Finished(..) => {
                self.close_line("");
                self.finish_download();
            }
        }
        let _ = self.out.flush();
    }

    fn note(&mut self, line: &str) {
        self.close_line("");
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }
}

/// A terminal: a spinner with the task name between `TaskBegin` and `TaskEnd`, a bar for
/// percentages and downloads.
#[derive(Debug)]
pub(crate) struct Terminal {
    bar: Option<ProgressBar>,
    task: String,
    last_download: Option<Download>,
}

impl Terminal {
    pub(crate) fn new() -> Self {
        Self {
            bar: None,
            task: String::new(),
            last_download: None,
        }
    }

    fn spinner(msg: &str) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(100));
        pb
    }

    fn bar(len: u64, msg: &str) -> ProgressBar {
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
        pb.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {percent}%")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(msg.to_string());
        pb
    }

    fn finish(&mut self, end: Option<&str>) {
        if let Some(pb) = self.bar.take() {
            match end {
                Some(end) => {
                    pb.set_style(
                        ProgressStyle::with_template("{msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    pb.finish_with_message(format!("{}... {end}", self.task));
                }
                None => pb.finish_and_clear(),
            }
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(pb) => pb.println(line),
            None => println!("{line}"),
        }
    }
}

impl Progress for Terminal {
    fn event(&mut self, ev: &Event) {
        match ev {
            Event::Message(m) => self.println(m),
            Event::TaskBegin(t) => {
                self.finish(Some("done"));
                self.task = t.clone();
                self.bar = Some(Self::spinner(t));
            }
            Event::TaskEnd(t) => {
                let end = if t.is_empty() { "done" } else { t.as_str() };
                self.finish(Some(end));
            }
            Event::Percent(text, pct) => {
                let same =
                    self.task == *text && self.bar.as_ref().and_then(|b| b.length()) == Some(100);
                if !same {
                    self.finish(Some("done"));
                    self.task = text.clone();
                    self.bar = Some(Self::bar(100, text));
                }
                if let Some(pb) = &self.bar {
                    pb.set_position(u64::from((*pct).min(100)));
                }
            }
            Event::Download(d) => {
                self.last_download = Some(*d);
                let (fetched, requested) = d.content;
                let want_bar = requested > 0 && d.metadata.2 == 0;
                // With a bar, its own percentage is the only one shown.
                let line = download_line(d, !want_bar);
                let have_bar = self.bar.as_ref().and_then(|b| b.length()).is_some();
                if self.bar.is_none() || want_bar != have_bar || self.task != "Receiving" {
                    self.finish(None);
                    self.task = "Receiving".into();
                    self.bar = Some(if want_bar {
                        Self::bar(requested.into(), &line)
                    } else {
                        Self::spinner(&line)
                    });
                }
                if let Some(pb) = &self.bar {
                    if want_bar {
                        pb.set_length(requested.into());
                        pb.set_position(fetched.into());
                    }
                    pb.set_message(line);
                }
            }
            Event::ProgressEnd => {
                if self.task == "Receiving" {
                    self.finish(None);
                } else {
                    self.finish(Some("done"));
                }
                if let Some(d) = self.last_download.take() {
                    println!("{}", download_summary(&d));
                }
            }
            Event::Finished(..) => {
                self.finish(None);
                if let Some(d) = self.last_download.take() {
                    println!("{}", download_summary(&d));
                }
            }
        }
    }

    fn note(&mut self, line: &str) {
        self.println(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(events: &[Event]) -> String {
        let mut p = Plain::new(Vec::new(), false);
        for e in events {
            p.event(e);
        }
        String::from_utf8(p.into_inner()).unwrap()
    }

    /// GLib puts a no-break space between number and unit (so does rpm-ostree's output).
    #[test]
    fn sizes_like_glib() {
        assert_eq!(format_size(0), "0 bytes");
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(999), "999 bytes");
        assert_eq!(format_size(1000), "1.0\u{a0}kB");
        assert_eq!(format_size(1_536_000), "1.5\u{a0}MB");
        assert_eq!(format_size(3_000_000_000), "3.0\u{a0}GB");
    }

    #[test]
    fn download_lines() {
        let mut d = Download {
            outstanding: (3, 0),
            content: (50, 200),
            transfer: (2_000_000, 500_000),
            ..Default::default()
        };
        assert_eq!(
            download_line(&d, true),
            "Receiving objects: 25% (50/200) 500.0\u{a0}kB/s 2.0\u{a0}MB"
        );
        // Beside a bar, the text leaves the percentage to the bar.
        assert_eq!(
            download_line(&d, false),
            "Receiving objects: (50/200) 500.0\u{a0}kB/s 2.0\u{a0}MB"
        );
        d.metadata = (1, 4, 2);
        assert_eq!(
            download_line(&d, true),
            "Receiving metadata objects: 4/(estimating) 500.0\u{a0}kB/s 2.0\u{a0}MB"
        );
        d.delta = (10, 3, 1, 9_000_000);
        assert_eq!(
            download_line(&d, true),
            "Receiving delta parts: 3/10 500.0\u{a0}kB/s 2.0\u{a0}MB/9.0\u{a0}MB"
        );
        let d = Download {
            outstanding: (0, 7),
            ..Default::default()
        };
        assert_eq!(download_line(&d, true), "Writing objects: 7");
        let d = Download {
            metadata: (12, 0, 0),
            ..Default::default()
        };
        assert_eq!(download_line(&d, true), "Scanning metadata: 12");
        let d = Download {
            outstanding: (1, 0),
            content: (0, 0),
            ..Default::default()
        };
        assert_eq!(
            download_line(&d, true),
            "Receiving objects: 0% (0/0) -/s 0 bytes"
        );
    }

    #[test]
    fn plain_tasks_messages_and_download_summary() {
        let d = Download {
            time: (0, 3),
            metadata: (5, 8, 0),
            content: (13, 13),
            transfer: (1_026_000, 0),
            ..Default::default()
        };
        let out = plain(&[
            Event::Message("Updating from: os:stable".into()),
            Event::TaskBegin("Receiving objects".into()),
            Event::Download(d),
            Event::ProgressEnd,
            Event::TaskBegin("Staging deployment".into()),
            Event::TaskEnd("".into()),
            Event::TaskBegin("Writing".into()),
            Event::Message("interleaved".into()),
            Event::TaskEnd("ok".into()),
            Event::Finished(true, String::new()),
        ]);
        assert_eq!(
            out,
            "Updating from: os:stable\n\
             Receiving objects... done\n\
             8 metadata, 13 content objects fetched; 1.0\u{a0}MB transferred in 3 seconds\n\
             Staging deployment... done\n\
             Writing... \n\
             interleaved\n"
        );
    }

    #[test]
    fn plain_percent() {
        let out = plain(&[
            Event::Percent("Checking out tree".into(), 10),
            Event::Percent("Checking out tree".into(), 60),
            Event::Percent("Checking out tree".into(), 100),
            Event::Message("next".into()),
        ]);
        assert_eq!(out, "Checking out tree... 100%\nnext\n");
    }

    #[test]
    fn quiet_prints_nothing() {
        let mut p = Plain::new(Vec::new(), true);
        p.event(&Event::Message("hello".into()));
        p.event(&Event::TaskBegin("x".into()));
        assert!(p.into_inner().is_empty());
    }
}
