//! `mq create NAME [--capacity N] [--max-msg-size SIZE] [--mode 600]
//! [--priorities N] [--lease-timeout DURATION] [--max-deliveries N]
//! [--dead-letter NAME2] [--exist-ok]`

use std::io::Write;

use anyhow::Result;
use bytesize::ByteSize;
use queue_core::{OpenError, Queue};

use super::Ctx;
use crate::cli::CreateArgs;
use crate::exit::Exit;

pub fn run(ctx: &Ctx, a: CreateArgs) -> Result<Exit> {
    if let queue_net::Target::Remote(_) = ctx.target(&a.name)? {
        return super::remote::create(ctx, &a);
    }
    let mut builder = Queue::builder(&a.name)
        .capacity(usize::try_from(a.capacity).unwrap_or(usize::MAX))
        .max_msg_size(usize::try_from(a.max_msg_size).unwrap_or(usize::MAX))
        .mode(a.mode)
        .max_participants(usize::try_from(a.max_participants).unwrap_or(usize::MAX))
        .priorities(usize::try_from(a.priorities).unwrap_or(usize::MAX))
        .dir(&ctx.dir);
    if let Some(t) = a.lease_timeout {
        builder = builder.lease_timeout(t);
    }
    if let Some(n) = a.max_deliveries {
        builder = builder.max_deliveries(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(dlq) = &a.dead_letter {
        builder = builder.dead_letter(dlq);
    }
    let created = builder.create();
    let q = match created {
        Ok(q) => q,
        Err(OpenError::AlreadyExists { .. }) if a.exist_ok => {
            let q = ctx.open(&a.name)?;
            let mut differs = Vec::new();
            if q.capacity() as u64 != a.capacity {
                differs.push(format!("capacity {}", q.capacity()));
            }
            if q.max_msg_size() as u64 != a.max_msg_size {
                differs.push(format!("max message size {}", q.max_msg_size()));
            }
            let mode = q.stats().mode;
            if mode != a.mode {
                differs.push(format!("mode {mode:o}"));
            }
            if q.priorities() as u64 != a.priorities {
                differs.push(format!("{} priorities", q.priorities()));
            }
            if q.lease_timeout() != a.lease_timeout {
                differs.push(match q.lease_timeout() {
                    Some(t) => format!("lease timeout {}", humantime::format_duration(t)),
                    None => "no lease timeout".into(),
                });
            }
            if q.max_deliveries().map(|n| n as u64) != a.max_deliveries {
                differs.push(match q.max_deliveries() {
                    Some(n) => format!("max deliveries {n}"),
                    None => "unlimited deliveries".into(),
                });
            }
            let dead_letter = q.stats().dead_letter;
            if dead_letter != a.dead_letter {
                differs.push(match dead_letter {
                    Some(n) => format!("dead-letter queue {n:?}"),
                    None => "no dead-letter queue".into(),
                });
            }
            if differs.is_empty() {
                ctx.note(format_args!("queue {:?} already exists", a.name));
            } else {
                ctx.note(format_args!(
                    "queue {:?} already exists with {} (kept)",
                    a.name,
                    differs.join(", ")
                ));
            }
            return Ok(Exit::Ok);
        }
        Err(e) => return Err(e.into()),
    };
    if !ctx.quiet {
        let s = q.stats();
        let levels = if s.priorities > 1 {
            format!(" in each of {} priority levels", s.priorities)
        } else {
            String::new()
        };
        writeln!(
            std::io::stdout(),
            "created queue {:?}: {} messages{levels} of at most {} bytes, mode {:o}, {} of shared memory ({})",
            a.name,
            s.capacity,
            s.max_msg_size,
            s.mode,
            ByteSize(s.segment_size as u64),
            s.path.display()
        )?;
        if let Some(rules) = crate::render::delivery_rules(&s) {
            writeln!(std::io::stdout(), "  {rules}")?;
        }
    }
    Ok(Exit::Ok)
}
