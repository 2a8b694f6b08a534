//! `mq inspect NAME [--json]`: everything `stats()` knows, the ring drawn as
//! slots with head and tail marked, and who is attached and blocked.
//!
//! Opening the queue attaches this process as a participant (left out of
//! what is shown), which also cleans up after participants that died.

use std::io::Write;

use anyhow::Result;

use super::Ctx;
use crate::cli::InspectArgs;
use crate::exit::Exit;
use crate::render;

pub fn run(ctx: &Ctx, a: InspectArgs) -> Result<Exit> {
    if let queue_net::Target::Remote(_) = ctx.target(&a.name)? {
        return super::remote::inspect(&a.name, a.json);
    }
    let q = ctx.open(&a.name)?;
    let stats = q.stats();
    let slots = q.slots();
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &render::inspect_json(&stats, &slots))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render::inspect_text(&stats, &slots, "inspect"))?;
    }
    out.flush()?;
    Ok(Exit::Ok)
}
