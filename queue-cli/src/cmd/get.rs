//! `mq get NAME... [-n COUNT | --all | --follow] [--timeout D | --no-wait] [--raw | --json | --with-name]`
//!
//! One NAME may be a local queue or `nats://HOST:PORT/NAME`. With several
//! (local) names, messages come from whichever queue has one
//! (`queue_core::Select`, then a lease from that queue); a queue that is
//! closed and drained leaves the selection, and `--follow` ends when all
//! have.
//!
//! Every message is taken under a lease, written out and flushed, and only
//! then acked: if writing fails (a closed pipe, a full disk, binary refused
//! on a terminal) the lease is dropped and the message goes back to the
//! queue; if the process dies, queue-core re-queues it (a remote queue's
//! server redelivers it after the ack wait). Ctrl-C is deferred across
//! write+ack (see `interrupt.rs`), so a message is either printed or still
//! queued.
//!
//! A remote queue gives up to [`REMOTE_BATCH`] messages per pull (what is
//! there now, up to what `-n` still wants); they are printed in turn and
//! then acked together, one confirmed round trip for the batch. A failed
//! write acks what was printed and puts the rest back.
//!
//! On a queue with a lease timeout (`mq create --lease-timeout`), a helper
//! thread renews the lease every third of the timeout while the message is
//! being written, so a slow reader of stdout (a pipe into a slow program,
//! a huge message) does not lose the lease to another getter.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use queue_core::{Queue, Select};
use queue_net::{AnyLease, AnyQueue, GetError, Target};

use super::Ctx;
use crate::cli::{GetArgs, WaitMode};
use crate::exit::Exit;
use crate::interrupt;
use crate::output::{Format, Printer, stdout_hung_up};

/// Longest single wait, so that a reader that went away is noticed while
/// waiting (`mq get q --follow | head -1`).
const SLICE: Duration = Duration::from_millis(200);

/// Most messages taken from a remote queue at once (one pull, one confirmed ack).
const REMOTE_BATCH: u64 = 256;

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

/// Where the messages come from.
enum Source<'q> {
    /// One queue, local or remote.
    One(&'q AnyQueue),
    /// Several local queues, waited on at once.
    Many {
        queues: &'q [Queue],
        sel: Select<'q>,
    },
}

pub fn run(ctx: &Ctx, a: GetArgs) -> Result<Exit> {
    // Kept alive for the `Source` that borrows them.
    let one: AnyQueue;
    let many: Vec<Queue>;
    let mut source = if let [name] = a.names.as_slice() {
        one = ctx.open_any(name)?;
        Source::One(&one)
    } else {
        for name in &a.names {
            if let Target::Remote(_) = ctx.target(name)? {
                bail!(
                    "mq get takes several queues only when all are local, and {name:?} is remote (run one 'mq get' per remote queue, or bridge it to a local queue with 'mq bridge')"
                );
            }
        }
        many = a
            .names
            .iter()
            .map(|name| ctx.open(name))
            .collect::<Result<Vec<Queue>>>()?;
        let mut sel = Select::new();
        for q in &many {
            sel.add(q);
        }
        Source::Many { queues: &many, sel }
    };
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
        let max = limit.map_or(REMOTE_BATCH, |n| (n - got).min(REMOTE_BATCH)) as usize;
        let (i, leases, lease_timeout) = match source.take(wait, max) {
            Ok(taken) => taken,
            Err(Ok(stop)) => break stop,
            Err(Err((i, e))) => {
                let name = &a.names[i];
                return Err(anyhow!(e).context(format!("cannot get from queue {name:?}")));
            }
        };
        let name = a.names[i].as_str();
        let mut printed = Vec::with_capacity(leases.len());
        // Dropping a lease unprinted (on an error below) puts it back.
        let failed = interrupt::critical(|| -> Result<Option<anyhow::Error>> {
            let mut failed = None;
            for lease in leases {
                if let Err(e) = print_one(&mut printer, name, &lease, a.with_name, lease_timeout) {
                    failed = Some(e);
                    break;
                }
                printed.push(lease);
            }
            let n = printed.len() as u64;
            AnyLease::ack_many(std::mem::take(&mut printed)).with_context(|| {
                format!("a message of queue {name:?} was printed, but may be delivered again")
            })?;
            got += n;
            Ok(failed)
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
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

/// Checks and prints one leased message (after its queue's name with
/// `--with-name`).
fn print_one(
    printer: &mut Printer,
    name: &str,
    lease: &AnyLease<'_>,
    with_name: bool,
    lease_timeout: Option<Duration>,
) -> Result<()> {
    printer.check(name, lease)?;
    if with_name {
        // Buffered until the printer's flush after the message.
        write!(std::io::stdout(), "{name}: ")?;
    }
    print_renewing(printer, lease, lease_timeout)
}

/// Prints the leased message; with a lease timeout, renews the lease every
/// third of it until the printing is done.
fn print_renewing(
    printer: &mut Printer,
    lease: &AnyLease<'_>,
    timeout: Option<Duration>,
) -> Result<()> {
    let Some(timeout) = timeout else {
        return Ok(printer.print(lease)?);
    };
    let every = (timeout / 3).max(Duration::from_millis(1));
    std::thread::scope(|s| {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        s.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(every)
            {
                // A failed renewal shows up as a failed ack afterwards.
                let _ = lease.renew();
            }
        });
        let printed = printer.print(lease);
        drop(done);
        Ok(printed?)
    })
}

/// Taken messages (one, or a remote batch): the index of their queue, their
/// leases, and the queue's lease timeout.
type Taken<'q> = (usize, Vec<AnyLease<'q>>, Option<Duration>);

impl<'q> Source<'q> {
    /// Takes a message (up to `max` from a remote queue) under a lease,
    /// waiting as `wait` allows.
    fn take(
        &mut self,
        wait: WaitMode,
        max: usize,
    ) -> Result<Taken<'q>, Result<Stop, (usize, GetError)>> {
        let deadline = match wait {
            WaitMode::Timeout(d) => Some((Instant::now() + d, d)),
            WaitMode::NoWait | WaitMode::Forever => None,
        };
        // The next wait: `None` once the deadline has passed.
        let slice = || match deadline {
            Some((at, _)) => {
                let left = at.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| left.min(SLICE))
            }
            None => Some(SLICE),
        };
        let timed_out = || Err(Ok(Stop::Timeout(deadline.map_or(SLICE, |(_, d)| d))));
        match self {
            Source::One(q) => {
                let q: &'q AnyQueue = q;
                let timeout = q.lease_timeout();
                if wait == WaitMode::NoWait {
                    return q
                        .try_get_leases(max)
                        .map(|l| (0, l, timeout))
                        .map_err(|e| match e {
                            GetError::Empty => Ok(Stop::Empty),
                            GetError::Closed => Ok(Stop::Closed),
                            e => Err((0, e)),
                        });
                }
                loop {
                    let Some(slice) = slice() else {
                        return timed_out();
                    };
                    match q.get_leases_timeout(max, slice) {
                        Ok(leases) => return Ok((0, leases, timeout)),
                        Err(GetError::Timeout) => {
                            if stdout_hung_up() {
                                return Err(Ok(Stop::HungUp));
                            }
                        }
                        Err(GetError::Closed) => return Err(Ok(Stop::Closed)),
                        Err(e) => return Err(Err((0, e))),
                    }
                }
            }
            Source::Many { queues, sel } => loop {
                // A queue found closed and drained leaves the selection;
                // when none is left, all are.
                if sel.is_empty() {
                    return Err(Ok(Stop::Closed));
                }
                let ready = if wait == WaitMode::NoWait {
                    sel.try_ready()
                } else {
                    let Some(slice) = slice() else {
                        return timed_out();
                    };
                    sel.ready_timeout(slice)
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
                let q: &'q Queue = &queues[i];
                match q.try_get_lease() {
                    Ok(lease) => return Ok((i, vec![AnyLease::Local(lease)], q.lease_timeout())),
                    // Another getter was quicker: ask again.
                    Err(queue_core::GetError::Empty) => {}
                    Err(queue_core::GetError::Closed) => {
                        sel.remove(i);
                    }
                    Err(e) => return Err(Err((i, e.into()))),
                }
            },
        }
    }
}
