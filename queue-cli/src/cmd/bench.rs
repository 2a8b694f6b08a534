//! `mq bench [--size 64] [--producers 1] [--consumers 1] [--seconds 3]
//! [--batch 1]`: throughput between processes on this machine.
//!
//! A temporary queue `bench-<pid>` is created; producer and consumer
//! processes (this binary's hidden `worker` subcommand) attach and wait for
//! the start signal; the producers then put as fast as they can until the
//! queue is closed after `--seconds`, and the consumers drain it. The rate
//! is the messages taken while the producers ran, divided by that time; the
//! final counts and checksums must match (nothing lost or duplicated).
//!
//! The workers run the producer and consumer loops of the `queue-bench`
//! crate, the ones the comparison bench of queue-core measures too: one
//! message per call (`put` / `get_into`), or with `--batch N` N per call
//! (`put_many` / `get_many_into`).

use std::io::Write;
use std::time::Instant;

use anyhow::{Result, bail};
use bytesize::ByteSize;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use queue_bench::{Report, Tally, machine};
use queue_core::Queue;
use serde_json::json;

use super::Ctx;
use super::worker::Team;
use crate::cli::{BenchArgs, Role};
use crate::exit::Exit;
use crate::output::human_rate;

pub fn run(ctx: &Ctx, a: BenchArgs) -> Result<Exit> {
    if a.batch > a.capacity {
        bail!(
            "--batch {} is larger than the queue's {} slots (a get takes at most that many at once; lower --batch or raise --capacity)",
            a.batch,
            a.capacity
        );
    }
    let name = format!("bench-{}", std::process::id());
    let q = Queue::builder(&name)
        .capacity(a.capacity as usize)
        .max_msg_size(a.size.max(8) as usize)
        .dir(&ctx.dir)
        .create()?;
    let mut team = Team::new(ctx.dir.clone(), name.clone());
    for i in 0..a.producers {
        team.spawn_batched(Role::Producer, a.size, i, a.batch, true)?;
    }
    for i in 0..a.consumers {
        team.spawn_batched(Role::Consumer, a.size, i, a.batch, true)?;
    }
    for w in &mut team.workers {
        let line = w.read_line()?;
        if line != "ready" {
            bail!("unexpected worker output {line:?}");
        }
    }
    if !ctx.quiet && !a.json {
        let _ = writeln!(
            std::io::stderr(),
            "mq bench: {} producer{} -> {} consumer{} (separate processes), {}-byte messages, {}, {} seconds...",
            a.producers,
            plural(a.producers),
            a.consumers,
            plural(a.consumers),
            a.size,
            calls(a.batch),
            a.seconds.as_secs_f64()
        );
    }
    let t0 = Instant::now();
    for w in &mut team.workers {
        w.go()?;
    }
    std::thread::sleep(a.seconds);
    let got_at_close = q.stats().total_got;
    let ran = t0.elapsed();
    q.close()?;
    let (mut sent, mut got) = (Tally::default(), Tally::default());
    for i in 0..team.workers.len() {
        let report = team.finish(i)?;
        match report {
            Report::Sent { .. } => sent.merge(report.tally()),
            Report::Got { .. } => got.merge(report.tally()),
        }
    }
    let drained = t0.elapsed();
    drop(q);
    team.remove_queue()?;
    // Messages under 8 bytes carry no stamp: both checksums are then 0.
    if sent != got {
        bail!(
            "benchmark lost or duplicated messages: {} sent, {} received (checksums {:#x} / {:#x})",
            sent.count,
            got.count,
            sent.sum,
            got.sum
        );
    }
    let got = got.count;
    let secs = ran.as_secs_f64();
    let rate = got_at_close as f64 / secs;
    let mb = rate * a.size as f64 / 1e6;
    let machine = machine();
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(
            &mut out,
            &json!({
                "producers": a.producers, "consumers": a.consumers, "size": a.size,
                "capacity": a.capacity, "batch": a.batch, "seconds": secs, "messages": got_at_close,
                "messages_total": got, "msg_per_s": rate, "mb_per_s": mb,
                "ns_per_msg": if rate > 0.0 { 1e9 / rate } else { 0.0 },
                "machine": machine,
            }),
        )?;
        writeln!(out)?;
    } else {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header([
                "producers",
                "consumers",
                "msg size",
                "capacity",
                "batch",
                "seconds",
                "messages",
                "msg/s",
                "MB/s",
                "ns/msg",
            ]);
        let r = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        t.add_row([
            r(a.producers.to_string()),
            r(a.consumers.to_string()),
            r(ByteSize(a.size).to_string()),
            r(a.capacity.to_string()),
            r(a.batch.to_string()),
            r(format!("{secs:.2}")),
            r(got_at_close.to_string()),
            r(human_rate(rate)),
            r(format!("{mb:.1}")),
            r(if rate > 0.0 {
                format!("{:.0}", 1e9 / rate)
            } else {
                "-".into()
            }),
        ]);
        writeln!(out, "{t}")?;
        writeln!(out, "machine: {machine}")?;
        writeln!(
            out,
            "all {got} messages arrived exactly once (drained {:.2}s after the start)",
            drained.as_secs_f64()
        )?;
    }
    out.flush()?;
    Ok(Exit::Ok)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// How the workers call the queue, for the start line.
fn calls(batch: u64) -> String {
    if batch == 1 {
        "put/get_into one at a time".to_owned()
    } else {
        format!("put_many/get_many_into {batch} at a time")
    }
}
