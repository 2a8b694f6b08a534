//! The subcommands whose output or settings differ for a remote queue
//! (`nats://HOST:PORT/NAME`): create, inspect, rm and `ls nats://HOST:PORT`.
//! put, get, peek, close and bridge serve both kinds through
//! [`Ctx::open_any`](super::Ctx::open_any).

use std::io::Write;

use anyhow::{Result, bail};
use queue_net::{CreateOptions, NetError, RemoteQueue, RemoteStats};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::CreateArgs;
use crate::exit::Exit;

/// `mq create nats://HOST:PORT/NAME [--capacity N] [--max-msg-size S] [--ack-wait D]`.
pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<Exit> {
    let opts = CreateOptions::default()
        .capacity(usize::try_from(a.capacity).unwrap_or(usize::MAX))
        .max_msg_size(usize::try_from(a.max_msg_size).unwrap_or(usize::MAX))
        .ack_wait(a.ack_wait);
    let q = match RemoteQueue::create(&a.name, &opts) {
        Ok(q) => q,
        Err(NetError::AlreadyExists { .. }) if a.exist_ok => {
            let q = RemoteQueue::open(&a.name)?;
            let mut differs = Vec::new();
            if q.capacity() != opts.capacity {
                differs.push(format!("capacity {}", q.capacity()));
            }
            if q.max_msg_size() != opts.max_msg_size {
                differs.push(format!("max message size {}", q.max_msg_size()));
            }
            if differs.is_empty() {
                ctx.note(format_args!("queue {} already exists", a.name));
            } else {
                ctx.note(format_args!(
                    "queue {} already exists with {} (kept)",
                    a.name,
                    differs.join(", ")
                ));
            }
            return Ok(Exit::Ok);
        }
        Err(e) => return Err(e.into()),
    };
    if !ctx.quiet {
        writeln!(
            std::io::stdout(),
            "created queue {}: {} messages of at most {} bytes, ack wait {}",
            q.url(),
            q.capacity(),
            q.max_msg_size(),
            humantime::format_duration(q.ack_wait())
        )?;
    }
    Ok(Exit::Ok)
}

/// `mq inspect nats://HOST:PORT/NAME [--json]`.
pub fn inspect(name: &str, json: bool) -> Result<Exit> {
    let s = RemoteQueue::open(name)?.stats()?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &stats_json(&s))?;
        writeln!(out)?;
    } else {
        let waiting = s.len.saturating_sub(s.in_flight);
        writeln!(out, "queue          {}", s.url)?;
        writeln!(
            out,
            "stream         {} (NATS JetStream, WorkQueue)",
            s.stream
        )?;
        writeln!(
            out,
            "state          {}",
            if s.closed { "closed" } else { "open" }
        )?;
        writeln!(out, "messages       {} of {}", s.len, s.capacity)?;
        writeln!(out, "  waiting      {waiting}")?;
        writeln!(out, "  in flight    {} (taken, not yet acked)", s.in_flight)?;
        writeln!(out, "  redelivered  {} (of those in flight)", s.redelivered)?;
        writeln!(out, "consumers      {} waiting in get", s.getters_waiting)?;
        writeln!(
            out,
            "ack wait       {}",
            humantime::format_duration(s.ack_wait)
        )?;
        writeln!(out, "max message    {} bytes", s.max_msg_size)?;
        writeln!(out, "total put      {}", s.total_put)?;
        writeln!(out, "bytes stored   {}", s.bytes)?;
    }
    out.flush()?;
    Ok(Exit::Ok)
}

fn stats_json(s: &RemoteStats) -> Value {
    json!({
        "url": s.url,
        "stream": s.stream,
        "closed": s.closed,
        "capacity": s.capacity,
        "max_msg_size": s.max_msg_size,
        "len": s.len,
        "waiting": s.len.saturating_sub(s.in_flight),
        "in_flight": s.in_flight,
        "redelivered": s.redelivered,
        "consumers_waiting": s.getters_waiting,
        "ack_wait_ms": u64::try_from(s.ack_wait.as_millis()).unwrap_or(u64::MAX),
        "total_put": s.total_put,
        "bytes": s.bytes,
    })
}

/// `mq rm nats://HOST:PORT/NAME`; `Ok(false)` if missing and `force`.
pub fn remove(name: &str, force: bool) -> Result<bool> {
    match RemoteQueue::remove(name) {
        Ok(()) => Ok(true),
        Err(NetError::NotFound { .. }) if force => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `mq ls nats://HOST:PORT [--json]`.
pub fn ls(server: &str, json: bool) -> Result<Exit> {
    if !queue_net::is_url(server) {
        bail!(
            "{server:?} is not a server URL (list a NATS server's queues with 'mq ls nats://HOST:PORT', the queue directory with 'mq ls')"
        );
    }
    let all = RemoteQueue::list(server)?;
    let mut out = std::io::stdout().lock();
    if json {
        let v: Vec<Value> = all.iter().map(stats_json).collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else if all.is_empty() {
        writeln!(out, "no queues on {server}")?;
    } else {
        writeln!(
            out,
            "{:<40} {:>10} {:>10} {:>9}  state",
            "queue", "messages", "capacity", "in flight"
        )?;
        for s in &all {
            writeln!(
                out,
                "{:<40} {:>10} {:>10} {:>9}  {}",
                s.url,
                s.len,
                s.capacity,
                s.in_flight,
                if s.closed { "closed" } else { "open" }
            )?;
        }
    }
    out.flush()?;
    Ok(Exit::Ok)
}
