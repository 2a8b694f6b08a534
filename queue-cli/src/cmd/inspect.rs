//! `mq inspect NAME [--json]`: everything `stats()` knows, the ring drawn as
//! slots with head and tail marked, and who is attached and blocked.
//!
//! It looks through a read-only [`Observer`]: it needs only read permission
//! and no free participant entry, and the observer itself never writes a
//! byte. Where this user may also write the queue (and an entry is free) it
//! first attaches for a moment, which recovers after participants that
//! died, as it always did; see [`observe`], shared with `ls`, `watch` and
//! `peek`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use queue_core::{Observer, Queue};

use super::Ctx;
use crate::cli::InspectArgs;
use crate::render;

pub fn run(ctx: &Ctx, a: InspectArgs) -> Result<ExitCode> {
    let q = observe(ctx, &a.name)?;
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
    Ok(ExitCode::SUCCESS)
}

/// Opens queue `name` for looking (`inspect`, `ls`, `watch`, `peek`): a
/// read-only [`Observer`], which needs only read permission and takes no
/// participant entry. If this user may also write the queue and an entry is
/// free, a participant handle is attached and dropped first: attaching
/// recovers after participants that died (what these commands did when they
/// attached). Otherwise - read-only permission, a full participant table -
/// nothing is written, and that attempt's error is not reported: looking
/// works without it.
pub(crate) fn observe(ctx: &Ctx, name: &str) -> Result<Observer> {
    let observer = Queue::observe_in(&ctx.dir, name)?;
    drop(Queue::open_in(&ctx.dir, name));
    Ok(observer)
}
