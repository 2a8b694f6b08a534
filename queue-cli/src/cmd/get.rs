//! `mq get NAME... [-n COUNT | --all | --follow] [--timeout D | --no-wait] [--raw | --json | --with-name]`
//!
//! With several names, messages come from whichever queue has one
//! (`queue_core::Select`, then a lease from that queue); a queue that is
//! closed and drained leaves the selection, and `--follow` ends when all
//! have.
//!
//! Every message is taken under a lease, written out and flushed, and only
//! then acked: if writing fails (a closed pipe, a full disk, binary refused
//! on a terminal) the lease is dropped and the message goes back to the
//! queue; if the process dies, queue-core re-queues it. Ctrl-C is deferred
//! across write+ack (see `interrupt.rs`), so a message is either printed or
//! still queued.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use queue_core::{GetError, Lease, Queue, Select};

use super::Ctx;
use crate::cli::{GetArgs, WaitMode};
use crate::exit::Exit;
use crate::interrupt;
use crate::output::{Format, Printer, stdout_hung_up};

/// Longest single wait, so that a reader that went away is noticed while
/// waiting (`mq get q --follow | head -1`).
const SLICE: Duration = Duration::from_millis(200);

/// Why taking stopped.
enum Stop {
    /// Waited as long as allowed.
    Timeout(Duration),
    /// Nothing waiting (--no-wait, or --all without --timeout).
    Empty,
    /// Closed and drained.
    Closed,
    /// The reader of stdout went away.
    HungUp,
}

pub fn run(ctx: &Ctx, a: GetArgs) -> Result<Exit> {
    let queues = a
        .names
        .iter()
        .map(|name| ctx.open(name))
        .collect::<Result<Vec<Queue>>>()?;
    let mut sel = Select::new();
    for q in &queues {
        sel.add(q);
    }
    let mut printer = Printer::new(Format::from(a.format));
    let (limit, default_wait) = if a.follow {
        (None, WaitMode::Forever)
    } else if a.all {
        (None, WaitMode::NoWait)
    } else {
        (Some(a.count), WaitMode::Forever)
    };
    let wait = a.wait.mode_or(default_wait);
    let mut got = 0u64;
    let stop = loop {
        if limit.is_some_and(|n| got >= n) {
            return Ok(Exit::Ok);
        }
        let (i, lease) = match take(&queues, &mut sel, wait) {
            Ok(taken) => taken,
            Err(Ok(stop)) => break stop,
            Err(Err((i, e))) => {
                let name = &a.names[i];
                return Err(anyhow!(e).context(format!("cannot get from queue {name:?}")));
            }
        };
        let name = a.names[i].as_str();
        // Dropping the lease on any error below puts the message back.
        printer.check(name, &lease)?;
        interrupt::critical(|| -> Result<()> {
            if a.with_name {
                // Buffered until the printer's flush after the message.
                write!(std::io::stdout(), "{name}: ")?;
            }
            printer.print(&lease)?;
            lease.ack().with_context(|| {
                format!("a message of queue {name:?} was printed, but may be delivered again")
            })
        })?;
        got += 1;
    };
    let which = match a.names.as_slice() {
        [one] => format!("queue {one:?}"),
        many => format!(
            "queues {}",
            many.iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let reason = match stop {
        Stop::HungUp => return Ok(Exit::Ok),
        Stop::Timeout(d) => format!(
            "no message in {which} within {}",
            humantime::format_duration(d)
        ),
        Stop::Empty if a.names.len() == 1 => format!("{which} is empty"),
        Stop::Empty => format!("{which} are empty"),
        Stop::Closed if a.names.len() == 1 => format!("{which} is closed and drained"),
        Stop::Closed => format!("{which} are closed and drained"),
    };
    if got == 0 {
        ctx.note(reason);
        return Ok(Exit::Nothing);
    }
    if let Some(n) = limit {
        ctx.note(format_args!("got {got} of {n} messages: {reason}"));
    }
    Ok(Exit::Ok)
}

/// Takes one message under a lease from whichever selected queue has one,
/// waiting as `wait` allows; returns the queue's index with it. A queue
/// found closed and drained leaves the selection; when none is left, the
/// answer is [`Stop::Closed`].
fn take<'q>(
    queues: &'q [Queue],
    sel: &mut Select<'q>,
    wait: WaitMode,
) -> Result<(usize, Lease<'q>), Result<Stop, (usize, GetError)>> {
    let deadline = match wait {
        WaitMode::Timeout(d) => Some((Instant::now() + d, d)),
        WaitMode::NoWait | WaitMode::Forever => None,
    };
    loop {
        if sel.is_empty() {
            return Err(Ok(Stop::Closed));
        }
        let ready = match (wait, deadline) {
            (WaitMode::NoWait, _) => sel.try_ready(),
            (_, Some((at, d))) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Ok(Stop::Timeout(d)));
                }
                sel.ready_timeout(left.min(SLICE))
            }
            (_, None) => sel.ready_timeout(SLICE),
        };
        let Some(i) = ready else {
            if wait == WaitMode::NoWait {
                return Err(Ok(Stop::Empty));
            }
            if stdout_hung_up() {
                return Err(Ok(Stop::HungUp));
            }
            continue;
        };
        match queues[i].try_get_lease() {
            Ok(lease) => return Ok((i, lease)),
            // Another getter was quicker: ask again.
            Err(GetError::Empty) => {}
            Err(GetError::Closed) => {
                sel.remove(i);
            }
            Err(e) => return Err(Err((i, e))),
        }
    }
}
