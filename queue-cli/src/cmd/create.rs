//! `mq create NAME [--capacity N] [--max-msg-size SIZE] [--mode 600] [--exist-ok]`

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
    let created = Queue::builder(&a.name)
        .capacity(usize::try_from(a.capacity).unwrap_or(usize::MAX))
        .max_msg_size(usize::try_from(a.max_msg_size).unwrap_or(usize::MAX))
        .mode(a.mode)
        .max_participants(usize::try_from(a.max_participants).unwrap_or(usize::MAX))
        .dir(&ctx.dir)
        .create();
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
        writeln!(
            std::io::stdout(),
            "created queue {:?}: {} messages of at most {} bytes, mode {:o}, {} of shared memory ({})",
            a.name,
            s.capacity,
            s.max_msg_size,
            s.mode,
            ByteSize(s.segment_size as u64),
            s.path.display()
        )?;
    }
    Ok(Exit::Ok)
}
