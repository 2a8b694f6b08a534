//! `mq`: put, get, inspect and watch named shared-memory message queues from
//! the shell. Built on queue-core's public API only.
//!
//! `main` parses the command line, runs one subcommand and turns its outcome
//! into an exit code: 0 ok, 1 nothing received, 2 error (printed once, as
//! `mq: <error chain>`), 130 on Ctrl-C. A broken pipe on stdout ends quietly
//! with 0, like ripgrep and fd.

mod cli;
mod cmd;
mod interrupt;
mod output;
mod parse;
mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    interrupt::install();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "mq: {}", chain(&err));
            ExitCode::from(2)
        }
    }
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
