//! `mq completions SHELL` and the hidden `mq man`: both generated from the
//! clap definitions in `cli.rs`, so they never drift from the real flags.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::Exit;

pub fn run(a: CompletionsArgs) -> Result<Exit> {
    // Some generators list hidden subcommands too: leave them out.
    let full = Cli::command();
    let mut cmd = clap::Command::new("mq")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "mq", &mut out);
    std::io::stdout().write_all(&out)?;
    Ok(Exit::Ok)
}

/// `mq man` prints mq(1); `mq man get` prints mq-get(1); `mq man --out-dir D`
/// writes all of them (the set shipped in docs/man/).
pub fn man(a: ManArgs) -> Result<Exit> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = a.out_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        clap_mangen::generate_to(cmd, &dir)
            .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        return Ok(Exit::Ok);
    }
    let page = match a.subcommand {
        None => cmd,
        Some(name) => match cmd.find_subcommand(&name) {
            Some(sub) if !sub.is_hide_set() => sub.clone(),
            _ => bail!("no subcommand {name:?} (see 'mq --help')"),
        },
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    std::io::stdout().write_all(&out)?;
    Ok(Exit::Ok)
}
