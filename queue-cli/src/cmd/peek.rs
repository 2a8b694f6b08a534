//! `mq peek NAME [--raw | --json]`: the next message, left in the queue.
//! Another getter may take it a moment later; peek is for looking, through
//! a read-only observer (see `Ctx::observe`): read permission suffices.

use anyhow::Result;

use super::Ctx;
use crate::cli::PeekArgs;
use crate::exit::Exit;
use crate::output::{Format, Printer};

pub fn run(ctx: &Ctx, a: PeekArgs) -> Result<Exit> {
    let q = ctx.observe(&a.name)?;
    let Some(msg) = q.peek() else {
        let closed = if q.is_closed() { " (and closed)" } else { "" };
        ctx.note(format_args!("queue {:?} is empty{closed}", a.name));
        return Ok(Exit::Nothing);
    };
    let mut printer = Printer::new(Format::from(a.format));
    printer.check(&a.name, &msg)?;
    printer.print(&msg)?;
    Ok(Exit::Ok)
}
