//! `mq rm NAME... [--force]`, `mq rm --stale [NAME...]`
//!
//! `--stale` removes the queues (all in the directory, or the named ones)
//! that no live process is attached to: a queue whose users all crashed or
//! exited, or a segment whose creator died before finishing it. A process
//! that attaches between the check and the removal keeps working on the
//! unlinked segment, as with any removal.
//!
//! Without `--force`, a queue is removed only if it opens cleanly and no
//! other live process is attached to it (those would keep using a segment
//! nobody else can find). `--force` removes it anyway, also when it is
//! corrupted or unfinished, and ignores names that do not exist (like
//! `rm -f`). Files that are not queue segments are never removed.

use std::io::Write;

use anyhow::{Result, anyhow, bail};
use queue_core::{OpenError, Queue, RemoveError};

use super::Ctx;
use crate::cli::RmArgs;
use crate::exit::{self, Exit};
use crate::render::describe_pid;

pub fn run(ctx: &Ctx, a: RmArgs) -> Result<Exit> {
    if a.stale {
        return remove_stale(ctx, &a.names);
    }
    let mut failed = Vec::new();
    for name in &a.names {
        match remove(ctx, name, a.force) {
            Ok(true) => {
                if !ctx.quiet {
                    writeln!(std::io::stdout(), "removed queue {name:?}")?;
                }
            }
            Ok(false) => {}
            Err(e) => {
                if a.names.len() == 1 {
                    return Err(e);
                }
                exit::print_error(&e);
                failed.push(name.as_str());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "could not remove {} of {} queues: {}",
            failed.len(),
            a.names.len(),
            failed.join(", ")
        );
    }
    Ok(Exit::Ok)
}

/// Removes every queue (or every named queue) without a live participant.
fn remove_stale(ctx: &Ctx, names: &[String]) -> Result<Exit> {
    let names = if names.is_empty() {
        queue_core::list(Some(&ctx.dir))
            .map_err(|e| anyhow!("cannot list queue directory {}: {e}", ctx.dir.display()))?
    } else {
        names.to_vec()
    };
    let mut out = std::io::stdout().lock();
    let mut removed = 0;
    for name in &names {
        let stale = match Queue::open_in(&ctx.dir, name) {
            Ok(q) => !q.stats().participants.iter().any(|p| p.alive && !p.is_self),
            Err(OpenError::Unfinished {
                creator_alive: false,
                ..
            }) => true,
            Err(e @ (OpenError::InvalidName { .. } | OpenError::NotFound { .. })) => {
                return Err(e.into());
            }
            Err(e) => {
                // Not ours to judge: corrupted, foreign or not permitted.
                exit::print_error(&anyhow!(e).context(format!("skipping {name:?}")));
                continue;
            }
        };
        if !stale {
            continue;
        }
        match Queue::remove_in(&ctx.dir, name) {
            Ok(()) => {
                removed += 1;
                if !ctx.quiet {
                    writeln!(out, "removed stale queue {name:?}")?;
                }
            }
            Err(RemoveError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if removed == 0 && !ctx.quiet {
        writeln!(out, "no stale queues in {}", ctx.dir.display())?;
    }
    Ok(Exit::Ok)
}

/// Removes one queue; `Ok(false)` if it did not exist and `force` is set.
fn remove(ctx: &Ctx, name: &str, force: bool) -> Result<bool> {
    if let queue_net::Target::Remote(_) = ctx.target(name)? {
        return super::remote::remove(name, force);
    }
    if !force {
        check_unused(ctx, name)?;
    }
    match Queue::remove_in(&ctx.dir, name) {
        Ok(()) => Ok(true),
        Err(RemoveError::NotFound { .. }) if force => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Refuses a queue that other processes use or that does not open cleanly.
fn check_unused(ctx: &Ctx, name: &str) -> Result<()> {
    let q = match Queue::open_in(&ctx.dir, name) {
        Ok(q) => q,
        Err(OpenError::NotFound { .. }) => {
            bail!(
                "queue {name:?} not found in {} (list queues with 'mq ls')",
                ctx.dir.display()
            )
        }
        Err(e @ (OpenError::InvalidName { .. } | OpenError::PermissionDenied { .. })) => {
            return Err(e.into());
        }
        Err(OpenError::NotAQueue { path, .. }) => {
            bail!(
                "{} is not a queue segment, refusing to remove it",
                path.display()
            )
        }
        Err(e) => {
            return Err(anyhow!(e).context(format!("not removing queue {name:?} without --force")));
        }
    };
    let users: Vec<String> = q
        .stats()
        .participants
        .iter()
        .filter(|p| p.alive && !p.is_self)
        .map(describe_pid)
        .collect();
    if !users.is_empty() {
        bail!(
            "queue {name:?} is in use by {} live process{}: {} (stop {}, or remove it anyway with 'mq rm --force {name}')",
            users.len(),
            if users.len() == 1 { "" } else { "es" },
            users.join(", "),
            if users.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(())
}
