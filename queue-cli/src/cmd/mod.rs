//! One module per subcommand; `run` dispatches. Each subcommand returns the
//! [`Exit`] it wants (`Ok`, or `Nothing` for "nothing received"); errors
//! become `Exit::Error` in `main` (see `exit.rs`).

mod bench;
mod bridge;
mod close;
mod completions;
mod create;
mod demo;
mod get;
mod inspect;
mod ls;
mod peek;
mod put;
mod remote;
mod rm;
mod watch;
mod worker;

use std::path::PathBuf;

use anyhow::Result;
use queue_core::{Observer, Queue};
use queue_net::{AnyQueue, RemoteQueue, Target};

use crate::cli::{Cli, Command};
use crate::exit::Exit;

/// What every subcommand needs besides its own arguments.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The queue directory (`--dir`, else `$MQ_DIR`, else /dev/shm).
    pub dir: PathBuf,
    /// Suppress confirmations and notes.
    pub quiet: bool,
}

impl Ctx {
    /// Opens an existing queue (attaching as a participant).
    pub fn open(&self, name: &str) -> Result<Queue> {
        Ok(Queue::open_in(&self.dir, name)?)
    }

    /// Opens an existing queue by name (in the queue directory) or by
    /// `nats://HOST:PORT/NAME`: the one place a queue argument is told
    /// local from remote.
    pub fn open_any(&self, name_or_url: &str) -> Result<AnyQueue> {
        Ok(match self.target(name_or_url)? {
            Target::Local(name) => self.open(&name)?.into(),
            Target::Remote(_) => RemoteQueue::open(name_or_url)?.into(),
        })
    }

    /// Whether `name_or_url` is a local name or a remote URL (checked).
    pub fn target(&self, name_or_url: &str) -> Result<Target> {
        Ok(Target::parse(name_or_url)?)
    }

    /// Opens queue `name` for looking (`inspect`, `ls`, `watch`, `peek`): a
    /// read-only [`Observer`], which needs only read permission and takes no
    /// participant entry. If this user may also write the queue and an entry is
    /// free, a participant handle is attached and dropped first: attaching
    /// recovers after participants that died (what these commands did when they
    /// attached). Otherwise - read-only permission, a full participant table -
    /// nothing is written, and that attempt's error is not reported: looking
    /// works without it.
    pub fn observe(&self, name: &str) -> Result<Observer> {
        let observer = Queue::observe_in(&self.dir, name)?;
        drop(Queue::open_in(&self.dir, name));
        Ok(observer)
    }

    /// Prints a note to stderr unless quiet.
    pub fn note(&self, text: impl std::fmt::Display) {
        crate::output::note(self.quiet, text);
    }
}

/// Runs the subcommand.
pub fn run(cli: Cli) -> Result<Exit> {
    let ctx = Ctx {
        dir: queue_core::queue_dir(cli.dir.as_deref().filter(|d| !d.as_os_str().is_empty())),
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Create(a) => create::run(&ctx, a),
        Command::Put(a) => put::run(&ctx, a),
        Command::Get(a) => get::run(&ctx, a),
        Command::Peek(a) => peek::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Rm(a) => rm::run(&ctx, a),
        Command::Close(a) => close::run(&ctx, a),
        Command::Bridge(a) => bridge::run(&ctx, a),
        Command::Watch(a) => watch::run(&ctx, a),
        Command::Bench(a) => bench::run(&ctx, a),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => completions::man(a),
        Command::Worker(a) => worker::run(&ctx, a),
    }
}
