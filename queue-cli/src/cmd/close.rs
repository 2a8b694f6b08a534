//! `mq close NAME`: end of stream.

use std::io::Write;

use anyhow::Result;
use queue_net::CloseError;

use super::Ctx;
use crate::cli::CloseArgs;
use crate::exit::Exit;

pub fn run(ctx: &Ctx, a: CloseArgs) -> Result<Exit> {
    let q = ctx.open_any(&a.name)?;
    match q.close() {
        Ok(()) => {
            if !ctx.quiet {
                let left = q.len()?;
                writeln!(
                    std::io::stdout(),
                    "closed queue {:?}: puts now fail; {left} message{} left for getters, then they stop",
                    a.name,
                    if left == 1 { " is" } else { "s are" }
                )?;
            }
        }
        // Closing twice reaches the state asked for: not an error.
        Err(CloseError::AlreadyClosed) => {
            ctx.note(format_args!("queue {:?} was already closed", a.name))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Exit::Ok)
}
