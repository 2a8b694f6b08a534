//! `mq get NAME [-n COUNT | --all | --follow] [--timeout D | --no-wait] [--raw | --json]`
//!
//! Every message is taken under a lease, written out and flushed, and only
//! then acked: if writing fails (a closed pipe, a full disk, binary refused
//! on a terminal) the lease is dropped and the message goes back to the
//! queue; if the process dies, queue-core re-queues it (a remote queue's
//! server redelivers it after the ack wait). Ctrl-C is deferred
//! across write+ack (see `interrupt.rs`), so a message is either printed or
//! still queued.
//!
//! On a queue with a lease timeout (`mq create --lease-timeout`), a helper
//! thread renews the lease every third of the timeout while the message is
//! being written, so a slow reader of stdout (a pipe into a slow program,
//! a huge message) does not lose the lease to another getter.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use queue_net::{AnyLease, AnyQueue, GetError};

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
    let q = ctx.open_any(&a.name)?;
    let name = a.name.as_str();
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
        let lease = match take(&q, wait) {
            Ok(lease) => lease,
            Err(Ok(stop)) => break stop,
            Err(Err(e)) => {
                return Err(anyhow!(e).context(format!("cannot get from queue {name:?}")));
            }
        };
        // Dropping the lease on any error below puts the message back.
        printer.check(name, &lease)?;
        interrupt::critical(|| -> Result<()> {
            print_renewing(&mut printer, &lease, q.lease_timeout())?;
            lease.ack().with_context(|| {
                format!("a message of queue {name:?} was printed, but may be delivered again")
            })
        })?;
        got += 1;
    };
    let reason = match stop {
        Stop::HungUp => return Ok(Exit::Ok),
        Stop::Timeout(d) => format!(
            "no message in queue {name:?} within {}",
            humantime::format_duration(d)
        ),
        Stop::Empty => format!("queue {name:?} is empty"),
        Stop::Closed => format!("queue {name:?} is closed and drained"),
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

/// Takes one message under a lease, waiting as `wait` allows.
fn take(q: &AnyQueue, wait: WaitMode) -> Result<AnyLease<'_>, Result<Stop, GetError>> {
    let deadline = match wait {
        WaitMode::NoWait => {
            return q.try_get_lease().map_err(|e| match e {
                GetError::Empty => Ok(Stop::Empty),
                GetError::Closed => Ok(Stop::Closed),
                e => Err(e),
            });
        }
        WaitMode::Timeout(d) => Some((Instant::now() + d, d)),
        WaitMode::Forever => None,
    };
    loop {
        let slice = match deadline {
            Some((at, d)) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Ok(Stop::Timeout(d)));
                }
                left.min(SLICE)
            }
            None => SLICE,
        };
        match q.get_lease_timeout(slice) {
            Ok(lease) => return Ok(lease),
            Err(GetError::Timeout) => {
                if stdout_hung_up() {
                    return Err(Ok(Stop::HungUp));
                }
            }
            Err(GetError::Closed) => return Err(Ok(Stop::Closed)),
            Err(e) => return Err(Err(e)),
        }
    }
}
