//! Writing messages out (text, raw, JSON) and the small shared helpers for
//! notes on stderr and for noticing that the reader of stdout went away.

use std::io::{self, IsTerminal, Write};

use anyhow::{Result, bail};
use base64::Engine;

use crate::cli::FormatArgs;

/// How messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The message and a newline; binary is refused on a terminal.
    Text,
    /// The bytes exactly.
    Raw,
    /// One JSON object per line.
    Json,
}

impl From<FormatArgs> for Format {
    fn from(f: FormatArgs) -> Format {
        if f.raw {
            Format::Raw
        } else if f.json {
            Format::Json
        } else {
            Format::Text
        }
    }
}

/// Whether `msg` is text that is safe to show on a terminal: UTF-8 without
/// control characters other than tab, newline and carriage return (so no
/// escape sequences can reach the terminal).
pub fn is_printable(msg: &[u8]) -> bool {
    match std::str::from_utf8(msg) {
        Ok(s) => !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')),
        Err(_) => false,
    }
}

/// The JSON object for one message: UTF-8 text as a string, anything else as base64.
pub fn message_json(msg: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(msg) {
        Ok(s) => serde_json::json!({ "data": s, "encoding": "utf8", "bytes": msg.len() }),
        Err(_) => serde_json::json!({
            "data": base64::engine::general_purpose::STANDARD.encode(msg),
            "encoding": "base64",
            "bytes": msg.len(),
        }),
    }
}

/// Prints messages to stdout in one format.
pub struct Printer {
    format: Format,
    tty: bool,
    out: io::Stdout,
}

impl Printer {
    /// A printer on stdout.
    pub fn new(format: Format) -> Printer {
        let out = io::stdout();
        Printer {
            format,
            tty: out.is_terminal(),
            out,
        }
    }

    /// Fails if this message must not be printed (binary text to a terminal).
    pub fn check(&self, queue: &str, msg: &[u8]) -> Result<()> {
        if self.format == Format::Text && self.tty && !is_printable(msg) {
            let what = if std::str::from_utf8(msg).is_ok() {
                "control characters"
            } else {
                "bytes that are not UTF-8"
            };
            bail!(
                "the next message of queue {queue:?} is binary ({} bytes with {what}); \
                 not printing it to the terminal (use --raw or --json, or redirect stdout; \
                 the message is still in the queue)",
                msg.len()
            );
        }
        Ok(())
    }

    /// Writes one message and flushes, so that once this returns the message
    /// has left the process.
    pub fn print(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut out = self.out.lock();
        match self.format {
            Format::Text => {
                out.write_all(msg)?;
                out.write_all(b"\n")?;
            }
            Format::Raw => out.write_all(msg)?,
            Format::Json => {
                serde_json::to_writer(&mut out, &message_json(msg))?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    }
}

/// Prints a note (`mq: ...`) to stderr unless quiet.
pub fn note(quiet: bool, text: impl std::fmt::Display) {
    if !quiet {
        let _ = writeln!(io::stderr(), "mq: {text}");
    }
}

/// Whether stdout is a pipe or socket whose reader has gone away (so the
/// next write would fail with EPIPE). Lets `mq get --follow | head -1` stop
/// while it waits, instead of only at the next message.
pub fn stdout_hung_up() -> bool {
    let mut fds = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Whether stdout is a terminal.
pub fn stdout_is_tty() -> bool {
    io::stdout().is_terminal()
}

/// A rate in a human unit: `950/s`, `12.3k/s`, `4.56M/s`.
pub fn human_rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2}M/s", per_sec / 1e6)
    } else if per_sec >= 1e4 {
        format!("{:.1}k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable() {
        assert!(is_printable(b"hello world\n\ttab"));
        assert!(is_printable("grüße".as_bytes()));
        assert!(!is_printable(b"\x1b[2J"));
        assert!(!is_printable(b"nul\0"));
        assert!(!is_printable(&[0xff, 0xfe]));
    }

    #[test]
    fn json() {
        assert_eq!(message_json(b"hi")["encoding"], "utf8");
        let v = message_json(&[0, 0xff]);
        assert_eq!(v["encoding"], "base64");
        assert_eq!(v["data"], "AP8=");
        assert_eq!(v["bytes"], 2);
    }

    #[test]
    fn units() {
        // Sizes are `bytesize::ByteSize` (shared with the demos); the docs
        // and the tutorial show this form.
        use bytesize::ByteSize;
        assert_eq!(ByteSize(512).to_string(), "512 B");
        assert_eq!(ByteSize(4096).to_string(), "4.0 KiB");
        assert_eq!(ByteSize(33_382).to_string(), "32.6 KiB");
        assert_eq!(human_rate(1_234_567.0), "1.23M/s");
    }
}
