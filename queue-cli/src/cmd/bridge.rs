//! `mq bridge SRC DST [--batch N]`: moves every message from SRC to DST
//! (each a local name or `nats://HOST:PORT/NAME`) until SRC is closed and
//! drained, then closes DST and exits 0. The delivery argument (nothing
//! lost across `kill -9`, duplicates bounded by the batch) is in
//! docs/scale-out.md.

use anyhow::{Context, Result};
use queue_net::BridgeOptions;

use super::Ctx;
use crate::cli::BridgeArgs;
use crate::exit::Exit;

pub fn run(ctx: &Ctx, a: BridgeArgs) -> Result<Exit> {
    let src = ctx.open_any(&a.src)?;
    let dst = ctx.open_any(&a.dst)?;
    let opts = BridgeOptions::default().batch(usize::try_from(a.batch).unwrap_or(usize::MAX));
    ctx.note(format_args!("bridging {} -> {}", a.src, a.dst));
    let report = queue_net::bridge(&src, &dst, &opts)
        .with_context(|| format!("bridge {} -> {} stopped", a.src, a.dst))?;
    ctx.note(format_args!(
        "{} is closed and drained: moved {} messages, {}",
        a.src,
        report.moved,
        if report.closed_destination {
            format!("closed {}", a.dst)
        } else {
            format!("{} was already closed", a.dst)
        }
    ));
    Ok(Exit::Ok)
}
