//! Progress on stderr: an indicatif bar of bytes and files (with rate and
//! ETA) when stderr is a terminal, plain lines at most once a second when it
//! is not (a log file, a pipe, CI), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use bytesize::ByteSize;
use demos::human_rate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How the copy is going.
pub struct Progress {
    what: &'static str,
    total_bytes: u64,
    total_files: u64,
    bytes: u64,
    files: u64,
    started: Instant,
    last_line: Instant,
    out: Output,
}

enum Output {
    Bar(ProgressBar),
    Lines,
    Quiet,
}

impl Progress {
    /// Starts showing progress of `what` ("copied", "verified").
    pub fn new(what: &'static str, total_bytes: u64, total_files: u64, quiet: bool) -> Progress {
        let out = if quiet {
            Output::Quiet
        } else if std::io::stderr().is_terminal() {
            // Counting bytes when there are any, else files.
            let (len, template) = if total_bytes > 0 {
                (
                    total_bytes,
                    "{spinner:.green} {elapsed_precise} [{wide_bar:.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
            } else {
                (
                    total_files,
                    "{spinner:.green} {elapsed_precise} [{wide_bar:.cyan/blue}] {pos}/{len} files ETA {eta} {msg}",
                )
            };
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            Output::Bar(bar)
        } else {
            Output::Lines
        };
        let now = Instant::now();
        let p = Progress {
            what,
            total_bytes,
            total_files,
            bytes: 0,
            files: 0,
            started: now,
            last_line: now,
            out,
        };
        p.show();
        p
    }

    /// Adds finished work.
    pub fn add(&mut self, bytes: u64, files: u64) {
        self.bytes += bytes;
        self.files += files;
        match &self.out {
            Output::Bar(_) => self.show(),
            Output::Lines if self.last_line.elapsed() >= Duration::from_secs(1) => {
                self.last_line = Instant::now();
                self.show();
            }
            _ => {}
        }
    }

    /// Takes back bytes counted for a copy that then failed and was
    /// removed (shown at the next update).
    pub fn take_back(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    fn show(&self) {
        match &self.out {
            Output::Bar(bar) if self.total_bytes == 0 => {
                bar.set_position(self.files);
                bar.set_message(self.what);
            }
            Output::Bar(bar) => {
                bar.set_position(self.bytes);
                bar.set_message(format!("files {}/{}", self.files, self.total_files));
            }
            Output::Lines if self.total_bytes == 0 => {
                eprintln!(
                    "progress: {} {}/{} files",
                    self.what, self.files, self.total_files
                );
            }
            Output::Lines => {
                let pct = 100.0 * self.bytes as f64 / self.total_bytes as f64;
                eprintln!(
                    "progress: {} {}/{} files, {} of {} ({pct:.0}%), {}",
                    self.what,
                    self.files,
                    self.total_files,
                    ByteSize(self.bytes),
                    ByteSize(self.total_bytes),
                    human_rate(self.bytes, self.started.elapsed()),
                );
            }
            Output::Quiet => {}
        }
    }

    /// Stops the bar (or prints the last line).
    pub fn finish(self) {
        match &self.out {
            Output::Bar(bar) => {
                self.show();
                bar.finish_and_clear();
            }
            Output::Lines => self.show(),
            Output::Quiet => {}
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.out {
            Output::Bar(bar) => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }
}
