//! `mq`: put, get, inspect and watch named shared-memory message queues from
//! the shell. Built on queue-core's public API only.
//!
//! `main` parses the command line, runs one subcommand and turns its outcome
//! into an exit code through `exit.rs`: 0 ok, 1 nothing received, 2 error
//! (printed once, as `mq: <error chain>`), 130 on Ctrl-C. A broken pipe on
//! stdout ends quietly with 0, like ripgrep and fd.

// The `mq inspect --json` object is one `json!` literal deeper than the default limit.
#![recursion_limit = "256"]

mod cli;
mod cmd;
mod exit;
mod interrupt;
mod output;
mod parse;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap formats usage errors, --help and --version itself.
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Error
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    interrupt::install();
    exit::finish(cmd::run(cli)).into()
}
