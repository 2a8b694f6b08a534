//! `mq bench [--size 64] [--producers 1] [--consumers 1] [--seconds 3]`:
//! throughput between processes on this machine.
//!
//! A temporary queue `bench-<pid>` is created; producer and consumer
//! processes (this binary's hidden `worker` subcommand) attach and wait for
//! the start signal; the producers then put as fast as they can until the
//! queue is closed after `--seconds`, and the consumers drain it. The rate
//! is the messages taken while the producers ran, divided by that time; the
//! final counts and checksums must match (nothing lost or duplicated).

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use queue_core::Queue;
use serde_json::json;

use super::Ctx;
use super::worker::{Report, Team};
use crate::cli::{BenchArgs, Role};
use crate::output::{human_bytes, human_rate};

pub fn run(ctx: &Ctx, a: BenchArgs) -> Result<ExitCode> {
    let name = format!("bench-{}", std::process::id());
    let q = Queue::builder(&name)
        .capacity(a.capacity as usize)
        .max_msg_size(a.size.max(8) as usize)
        .dir(&ctx.dir)
        .create()?;
    let mut team = Team::new(ctx.dir.clone(), name.clone());
    for i in 0..a.producers {
        team.spawn(Role::Producer, a.size, i, true)?;
    }
    for i in 0..a.consumers {
        team.spawn(Role::Consumer, a.size, i, true)?;
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
            "mq bench: {} producer{} -> {} consumer{} (separate processes), {}-byte messages, {} seconds...",
            a.producers,
            plural(a.producers),
            a.consumers,
            plural(a.consumers),
            a.size,
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
    let (mut sent, mut sent_sum, mut got, mut got_sum) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..team.workers.len() {
        match team.finish(i)? {
            Report::Sent { count, sum } => {
                sent += count;
                sent_sum = sent_sum.wrapping_add(sum);
            }
            Report::Got { count, sum } => {
                got += count;
                got_sum = got_sum.wrapping_add(sum);
            }
        }
    }
    let drained = t0.elapsed();
    drop(q);
    team.remove_queue()?;
    if sent != got || (a.size >= 8 && sent_sum != got_sum) {
        bail!(
            "benchmark lost or duplicated messages: {sent} sent, {got} received (checksums {sent_sum:#x} / {got_sum:#x})"
        );
    }
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
                "capacity": a.capacity, "seconds": secs, "messages": got_at_close,
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
            r(human_bytes(a.size)),
            r(a.capacity.to_string()),
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
    Ok(ExitCode::SUCCESS)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// CPU model, CPU count and kernel release.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cpus} CPUs, Linux {kernel}")
}
