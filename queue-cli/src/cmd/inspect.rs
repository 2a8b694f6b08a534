//! `mq inspect NAME [--json]`: everything `stats()` knows, the ring drawn as
//! slots with head and tail marked, and who is attached and blocked.
//!
//! It looks through a read-only `Observer`: it needs only read permission
//! and no free participant entry, and the observer itself never writes a
//! byte. Where this user may also write the queue (and an entry is free) it
//! first attaches for a moment, which recovers after participants that
//! died, as it always did; see `Ctx::observe`, shared with `ls`, `watch` and
//! `peek`.

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
    let q = ctx.observe(&a.name)?;
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
