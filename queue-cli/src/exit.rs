//! Every way `mq` ends: the exit codes (one enum, like fd's `exit_codes.rs`)
//! and the one place errors are printed (`mq: <error chain>`).
//!
//! | code | [`Exit`] | meaning |
//! |---|---|---|
//! | 0 | `Ok` | done (also when the reader of a pipe went away) |
//! | 1 | `Nothing` | nothing received, or a put timed out / found the queue full |
//! | 2 | `Error` | usage or runtime error, printed once by [`print_error`] |
//! | 130 | `Interrupted` | Ctrl-C (128 + SIGINT) |
//!
//! docs/cli.md and the README show the same table.

use std::io::Write;
use std::process::ExitCode;

/// How `mq` ends. The discriminant is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Nothing received: `get`/`peek` found no message, or `put` timed out
    /// (or `--no-wait`) on a full queue.
    Nothing = 1,
    /// A usage or runtime error (printed before exiting).
    Error = 2,
    /// Interrupted by Ctrl-C.
    Interrupted = 130,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Leaves the process now with this code (for the Ctrl-C handler, which
    /// cannot return through `main`).
    pub fn exit_now(self) -> ! {
        std::process::exit(i32::from(self.code()))
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The outcome of a run as an exit code: an error is printed once (see
/// [`print_error`]) and becomes [`Exit::Error`], except a broken pipe on
/// stdout, which ends quietly with [`Exit::Ok`] like ripgrep and fd.
pub fn finish(outcome: anyhow::Result<Exit>) -> Exit {
    match outcome {
        Ok(exit) => exit,
        Err(err) if is_broken_pipe(&err) => Exit::Ok,
        Err(err) => {
            print_error(&err);
            Exit::Error
        }
    }
}

/// Prints `mq: <error chain>` to stderr: the one way `mq` reports an error,
/// also for an error it reports and then carries on after (`mq rm a b`).
pub fn print_error(err: &anyhow::Error) {
    let _ = writeln!(std::io::stderr(), "mq: {}", chain(err));
}

/// Whether the error comes from writing to a closed pipe.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, `outer: inner`, skipping a cause whose text the
/// outer message already ends with (some errors print their source too).
fn chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(
            [Exit::Ok, Exit::Nothing, Exit::Error, Exit::Interrupted].map(Exit::code),
            [0, 1, 2, 130]
        );
    }

    #[test]
    fn chain_joins_causes_once() {
        let inner = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(inner).context("cannot read \"x\"");
        assert_eq!(chain(&err), "cannot read \"x\": disk on fire");
        // A cause the outer text already ends with is not repeated.
        let err = anyhow::anyhow!("disk on fire").context("cannot read: disk on fire");
        assert_eq!(chain(&err), "cannot read: disk on fire");
    }

    #[test]
    fn a_broken_pipe_ends_quietly() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(
            finish(Err(anyhow::Error::new(pipe).context("write"))),
            Exit::Ok
        );
        assert_eq!(finish(Ok(Exit::Nothing)), Exit::Nothing);
    }
}
