//! `mq peek NAME [--raw | --json]`: the next message, left in the queue.
//! Another getter may take it a moment later; peek is for looking, through
//! a read-only observer (see `Ctx::observe`): read permission suffices.

use anyhow::Result;
use queue_net::{RemoteQueue, Target};

use super::Ctx;
use crate::cli::PeekArgs;
use crate::exit::Exit;
use crate::output::{Format, Printer};

pub fn run(ctx: &Ctx, a: PeekArgs) -> Result<Exit> {
    let (msg, closed) = match ctx.target(&a.name)? {
        Target::Local(name) => {
            let q = ctx.observe(&name)?;
            let peeked = q.peek_with_origin();
            if let Some((_, Some(origin))) = &peeked {
                ctx.note(format_args!(
                    "a dead letter of queue {:?}, moved after {} deliveries there",
                    origin.queue, origin.deliveries
                ));
            }
            (peeked.map(|(msg, _)| msg), q.is_closed())
        }
        Target::Remote(_) => {
            let q = RemoteQueue::open(&a.name)?;
            let msg = q.peek()?;
            let closed = msg.is_none() && q.is_closed()?;
            (msg, closed)
        }
    };
    let Some(msg) = msg else {
        let closed = if closed { " (and closed)" } else { "" };
        ctx.note(format_args!("queue {:?} is empty{closed}", a.name));
        return Ok(Exit::Nothing);
    };
    let mut printer = Printer::new(Format::from(a.format));
    printer.check(&a.name, &msg)?;
    printer.print(&msg)?;
    Ok(Exit::Ok)
}
