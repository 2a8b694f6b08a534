//! `mq ls [--json]`: every queue file in the queue directory. A queue that
//! cannot be looked at (unreadable, corrupted, unfinished, not a queue at
//! all) is still listed, with the reason; it never stops the listing. Each
//! queue is read through a read-only observer (see `Ctx::observe`), so
//! read permission suffices and a full participant table does not matter.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use queue_core::segment_path;
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::LsArgs;
use crate::exit::Exit;
use crate::render::{live_others, user_name};

/// What a row shows of a queue that could be read.
struct Summary {
    len: usize,
    capacity: usize,
    max_msg_size: usize,
    closed: bool,
    /// Live participants.
    live: usize,
    /// Their pids.
    pids: Vec<u32>,
}

/// One row of the listing.
struct Row {
    name: String,
    mode: Option<u32>,
    owner_uid: Option<u32>,
    stats: Option<Summary>,
    error: Option<String>,
}

pub fn run(ctx: &Ctx, a: LsArgs) -> Result<Exit> {
    if let Some(server) = &a.server {
        return super::remote::ls(server, a.json);
    }
    let names = queue_core::list(Some(&ctx.dir)).with_context(|| {
        format!(
            "cannot read queue directory {} (set MQ_DIR or --dir to an existing directory)",
            ctx.dir.display()
        )
    })?;
    let rows: Vec<Row> = names.into_iter().map(|n| row(ctx, n)).collect();
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<Value> = rows.iter().map(row_json).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else if rows.is_empty() {
        ctx.note(format_args!("no queues in {}", ctx.dir.display()));
    } else {
        writeln!(out, "{}", crate::render::table_text(&table(&rows)))?;
    }
    out.flush()?;
    Ok(Exit::Ok)
}

fn row(ctx: &Ctx, name: String) -> Row {
    let meta = std::fs::metadata(segment_path(&ctx.dir, &name)).ok();
    let mut r = Row {
        mode: meta.as_ref().map(|m| m.mode() & 0o7777),
        owner_uid: meta.as_ref().map(|m| m.uid()),
        name,
        stats: None,
        error: None,
    };
    match ctx.observe(&r.name) {
        Ok(q) => {
            let s = q.stats();
            let pids = s
                .participants
                .iter()
                .filter(|p| p.alive && !p.is_self)
                .map(|p| p.pid)
                .collect();
            r.stats = Some(Summary {
                len: s.len,
                capacity: s.capacity,
                max_msg_size: s.max_msg_size,
                closed: s.closed,
                live: live_others(&s),
                pids,
            });
            r.mode = Some(s.mode);
            r.owner_uid = Some(s.owner_uid);
        }
        Err(e) => r.error = Some(e.to_string()),
    }
    r
}

fn table(rows: &[Row]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header([
            "NAME", "MESSAGES", "MAX MSG", "MODE", "OWNER", "CLOSED", "LIVE", "NOTE",
        ]);
    for r in rows {
        let mode = r
            .mode
            .map(|m| format!("{m:o}"))
            .unwrap_or_else(|| "?".into());
        let owner = r.owner_uid.map(user_name).unwrap_or_else(|| "?".into());
        let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        match &r.stats {
            Some(s) => t.add_row([
                Cell::new(&r.name),
                right(format!("{}/{}", s.len, s.capacity)),
                right(s.max_msg_size.to_string()),
                Cell::new(mode),
                Cell::new(owner),
                Cell::new(if s.closed { "yes" } else { "no" }),
                right(s.live.to_string()),
                Cell::new(""),
            ]),
            None => t.add_row([
                Cell::new(&r.name),
                right("?".into()),
                right("?".into()),
                Cell::new(mode),
                Cell::new(owner),
                Cell::new("?"),
                right("?".into()),
                Cell::new(r.error.as_deref().unwrap_or("")),
            ]),
        };
    }
    t
}

fn row_json(r: &Row) -> Value {
    let s = r.stats.as_ref();
    json!({
        "name": r.name,
        "ok": r.error.is_none(),
        "error": r.error,
        "len": s.map(|s| s.len),
        "capacity": s.map(|s| s.capacity),
        "max_msg_size": s.map(|s| s.max_msg_size),
        "closed": s.map(|s| s.closed),
        "live_participants": s.map(|s| s.live),
        "pids": s.map(|s| s.pids.clone()),
        "mode": r.mode.map(|m| format!("{m:o}")),
        "owner_uid": r.owner_uid,
        "owner": r.owner_uid.map(user_name),
    })
}
