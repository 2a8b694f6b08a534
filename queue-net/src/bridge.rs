//! [`bridge`]: moves every message from one queue to another, in order per
//! source, until the source is closed and drained, then closes the
//! destination. It survives `kill -9` at any moment: a message leaves the
//! source only after the destination has confirmed it.
//!
//! * local -> remote: lease a batch locally, publish each with a message id
//!   `KEY.SEQ.HASH` (KEY: this bridge, SEQ: a sequence checkpointed on the
//!   server, HASH: the content), wait for every publish ack, advance the
//!   checkpoint, then ack the local leases.
//! * remote -> local: pull a batch, put it locally with `put_many`, then ack
//!   it on the server (the last one of the batch with the confirmed form,
//!   awaited together with the next pull).
//!
//! What duplicates remain and their bound are argued in `docs/scale-out.md`.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, kv};
use bytes::Bytes;
use queue_core::Queue;
use thiserror::Error;

use crate::any::AnyQueue;
use crate::consumer::{Pulled, confirm_all, is_close_marker, pull};
use crate::error::{AckError, CloseError, GetError, NetError, PutError};
use crate::publish::publish_all;
use crate::remote::RemoteQueue;
use crate::retry::{Deadline, GoneCheck, away_backoff};
use crate::runtime;

/// KV bucket (on the destination server) holding each local -> remote
/// bridge's checkpoint.
pub const CHECKPOINT_BUCKET: &str = "mq-bridge";

/// Settings of a bridge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// Messages moved per round trip (default 256). It is also the bound on
    /// duplicates one `kill -9` of the bridge can cause.
    pub batch: usize,
    /// How long one wait for the source lasts before looking again (default 200 ms).
    pub poll: Duration,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            batch: 256,
            poll: Duration::from_millis(200),
        }
    }
}

impl BridgeOptions {
    /// Sets the batch size (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
}

/// What a finished bridge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BridgeReport {
    /// Messages moved by this run.
    pub moved: u64,
    /// Whether this run closed the destination (false if it was closed already).
    pub closed_destination: bool,
}

/// Why a bridge stopped before the source was closed and drained.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// Taking from the source failed.
    #[error("bridge cannot take from {src}: {error}")]
    Source {
        /// The source queue.
        src: String,
        /// What failed.
        error: GetError,
    },
    /// Putting into the destination failed (e.g. it was closed by someone else).
    #[error("bridge cannot put into {dst}: {error}")]
    Destination {
        /// The destination queue.
        dst: String,
        /// What failed.
        error: PutError,
    },
    /// Acking on the source failed.
    #[error("bridge cannot ack on {src}: {error}")]
    Ack {
        /// The source queue.
        src: String,
        /// What failed.
        error: AckError,
    },
    /// Closing the destination failed.
    #[error("bridge cannot close {dst}: {error}")]
    Close {
        /// The destination queue.
        dst: String,
        /// What failed.
        error: CloseError,
    },
    /// The checkpoint on the destination server could not be read or written.
    #[error("bridge cannot keep its checkpoint on {dst}: {error}")]
    Checkpoint {
        /// The destination queue.
        dst: String,
        /// What failed.
        error: NetError,
    },
}

/// Moves every message from `src` to `dst` until `src` is closed and
/// drained, then closes `dst`. Run one bridge per (source, destination).
pub fn bridge(
    src: &AnyQueue,
    dst: &AnyQueue,
    opts: &BridgeOptions,
) -> Result<BridgeReport, BridgeError> {
    let mut report = match (src, dst) {
        (AnyQueue::Local(s), AnyQueue::Remote(d)) => local_to_remote(s, d, opts)?,
        (AnyQueue::Remote(s), AnyQueue::Local(d)) => remote_to_local(s, d, opts)?,
        _ => one_by_one(src, dst, opts)?,
    };
    report.closed_destination = match dst.close() {
        Ok(()) => true,
        Err(CloseError::AlreadyClosed) => false,
        Err(error) => {
            return Err(BridgeError::Close {
                dst: dst.display(),
                error,
            });
        }
    };
    Ok(report)
}

/// FNV-1a, 64 bits: stable across builds and platforms (the checkpoint key
/// and message ids must be the same after a restart with another binary).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// The key of a local -> remote bridge: this host, the source segment's path
/// and the destination URL. Two machines bridging their own `jobs` into one
/// remote queue get different keys, so their message ids never collide.
fn bridge_key(src: &Queue, dst: &RemoteQueue) -> String {
    let h = fnv1a(&[
        hostname().as_bytes(),
        src.path().as_os_str().as_encoded_bytes(),
        dst.url().to_string().as_bytes(),
    ]);
    format!("b{h:016x}")
}

/// The checkpoint: the last sequence whose batch was fully published.
struct Checkpoint {
    kv: kv::Store,
    key: String,
}

/// How long a starting bridge waits for the checkpoint bucket.
const OPEN_PATIENCE: Duration = Duration::from_secs(30);

impl Checkpoint {
    /// Opens (or creates) the bucket, retrying for a while: a bridge
    /// restarted together with the server finds it still loading.
    async fn open(js: &jetstream::Context, key: String, dst: String) -> Result<Self, BridgeError> {
        let deadline = Deadline::after(OPEN_PATIENCE);
        let mut away = away_backoff();
        loop {
            let kv = match js.get_key_value(CHECKPOINT_BUCKET).await {
                Ok(kv) => Ok(kv),
                Err(_) => js
                    .create_or_update_key_value(kv::Config {
                        bucket: CHECKPOINT_BUCKET.to_owned(),
                        description: "mq bridge checkpoints (docs/scale-out.md)".to_owned(),
                        history: 1,
                        storage: jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string()),
            };
            match kv {
                Ok(kv) => return Ok(Checkpoint { kv, key }),
                Err(detail) => {
                    if !away.pause(deadline).await {
                        return Err(BridgeError::Checkpoint {
                            dst: dst.clone(),
                            error: NetError::Server {
                                action: "open the checkpoint bucket on",
                                url: dst,
                                detail,
                            },
                        });
                    }
                }
            }
        }
    }

    /// Reads the checkpoint, retrying while the server is away.
    async fn load(&self) -> u64 {
        let mut away = away_backoff();
        loop {
            match self.kv.get(self.key.as_str()).await {
                Ok(v) => {
                    return v
                        .and_then(|b| std::str::from_utf8(&b).ok()?.parse().ok())
                        .unwrap_or(0);
                }
                Err(_) => {
                    away.pause(Deadline::Never).await;
                }
            }
        }
    }

    /// Writes the checkpoint, retrying while the server is away.
    async fn store(&self, seq: u64) {
        let mut away = away_backoff();
        while self
            .kv
            .put(self.key.as_str(), Bytes::from(seq.to_string()))
            .await
            .is_err()
        {
            away.pause(Deadline::Never).await;
        }
    }
}

fn local_to_remote(
    src: &Queue,
    dst: &RemoteQueue,
    opts: &BridgeOptions,
) -> Result<BridgeReport, BridgeError> {
    let key = bridge_key(src, dst);
    let checkpoint = runtime::block_on(Checkpoint::open(
        &dst.js,
        key.clone(),
        dst.url().to_string(),
    ))?;
    let mut seq = runtime::block_on(checkpoint.load());
    let mut room = 0;
    let mut report = BridgeReport::default();
    let src_err = |error: queue_core::GetError| BridgeError::Source {
        src: src.name().to_owned(),
        error: error.into(),
    };
    loop {
        // A batch: wait for the first message, then take what is there.
        let mut leases = Vec::with_capacity(opts.batch);
        match src.get_lease_timeout(opts.poll) {
            Ok(l) => leases.push(l),
            Err(queue_core::GetError::Timeout) => continue,
            Err(queue_core::GetError::Closed) => return Ok(report),
            Err(e) => return Err(src_err(e)),
        }
        while leases.len() < opts.batch {
            match src.try_get_lease() {
                Ok(l) => leases.push(l),
                Err(_) => break,
            }
        }
        let msgs: Vec<(String, Bytes)> = leases
            .iter()
            .zip(seq + 1..)
            .map(|(l, s)| {
                let hash = fnv1a(&[l]);
                (format!("{key}.{s}.{hash:016x}"), Bytes::copy_from_slice(l))
            })
            .collect();
        runtime::block_on(publish_all(dst, &msgs, &mut room, Deadline::Never)).map_err(
            |(_, error)| BridgeError::Destination {
                dst: dst.url().to_string(),
                error,
            },
        )?;
        seq += msgs.len() as u64;
        // Checkpoint before the local acks: a crash between the two
        // re-publishes these messages under new sequences (duplicates,
        // bounded by one batch), never reuses a sequence for other content.
        runtime::block_on(checkpoint.store(seq));
        for lease in leases {
            lease.ack().map_err(|e| BridgeError::Ack {
                src: src.name().to_owned(),
                error: e.into(),
            })?;
        }
        report.moved += msgs.len() as u64;
    }
}

fn remote_to_local(
    src: &RemoteQueue,
    dst: &Queue,
    opts: &BridgeOptions,
) -> Result<BridgeReport, BridgeError> {
    let mut report = BridgeReport::default();
    // A batch whose local puts wait this long tells the server it is still
    // being worked on, so its ack wait does not run out.
    let progress_every = (src.ack_wait / 3).max(Duration::from_millis(1));
    runtime::block_on(async {
        let mut away = away_backoff();
        let mut gone = GoneCheck::new();
        // The last message of the last batch put locally: its confirmed ack
        // (sent with the next pull) covers the batch's plain acks.
        let mut unconfirmed: Vec<jetstream::Message> = Vec::new();
        loop {
            // What is there now, up to a batch; if nothing, wait for one
            // (a waiting pull for a whole batch would hold the first
            // message until the batch filled or the request expired).
            // The pull overlaps the confirmation of the last batch's acks;
            // nothing of the new batch is put before that returns, so at
            // most one batch is ever put and not confirmed (the bound).
            let (_, pulled) = tokio::join!(
                confirm_all(&unconfirmed),
                pull(&src.consumer, opts.batch, None)
            );
            unconfirmed.clear();
            let pulled = match pulled {
                Ok(Pulled::Nothing) => pull(&src.consumer, 1, Some(opts.poll)).await,
                other => other,
            };
            let msgs = match pulled {
                Ok(Pulled::Messages(m)) => m,
                Ok(Pulled::Nothing) => continue,
                Err(_) => {
                    if let Some(e) = gone.judge(src.gone_async().await) {
                        return Err(BridgeError::Source {
                            src: src.url().to_string(),
                            error: GetError::Net(e),
                        });
                    }
                    away.pause(Deadline::Never).await;
                    continue;
                }
            };
            away = away_backoff();
            // The pull stops at the close marker, so it can only be the last.
            let mut msgs = msgs;
            let marker = match msgs.last() {
                Some(m) if is_close_marker(m) => msgs.pop(),
                _ => None,
            };
            let payloads: Vec<&[u8]> = msgs.iter().map(|m| &m.message.payload[..]).collect();
            let mut done = 0;
            while done < payloads.len() {
                // The local put blocks this thread only briefly at a time.
                match tokio::task::block_in_place(|| {
                    dst.put_many_timeout(&payloads[done..], progress_every)
                }) {
                    Ok(()) => done = payloads.len(),
                    Err((n, queue_core::PutError::Timeout)) => {
                        // A full local queue: tell the server the rest is
                        // still being worked on, so its ack wait does not
                        // run out and hand them to someone else.
                        done += n;
                        for m in &msgs[done..] {
                            let _ = m.ack_with(AckKind::Progress).await;
                        }
                    }
                    Err((n, e)) => {
                        confirm_all(&msgs[..done + n]).await;
                        return Err(BridgeError::Destination {
                            dst: dst.name().to_owned(),
                            error: e.into(),
                        });
                    }
                }
            }
            // Acked only now that every one is in the local queue: a crash
            // before the server has the acks redelivers at most the batch
            // (duplicates). Confirmed with the next pull, or now at the end.
            report.moved += msgs.len() as u64;
            if let Some(marker) = marker {
                // Our own batch acked first, so it does not count as in
                // flight; then stop only if nothing before the marker can
                // still come back (a killed bridge's batch awaiting
                // redelivery), else keep pulling.
                confirm_all(&msgs).await;
                if src.at_close_marker(&marker).await {
                    return Ok(report);
                }
                continue;
            }
            // Plain acks now; the last one (whose confirmation covers the
            // batch) with the next pull.
            let last = msgs.pop();
            for m in &msgs {
                let _ = m.ack().await;
            }
            unconfirmed.extend(last);
        }
    })
}

/// Local -> local and remote -> remote: lease, put, ack, one at a time.
fn one_by_one(
    src: &AnyQueue,
    dst: &AnyQueue,
    opts: &BridgeOptions,
) -> Result<BridgeReport, BridgeError> {
    let mut report = BridgeReport::default();
    loop {
        let lease = match src.get_lease_timeout(opts.poll) {
            Ok(l) => l,
            Err(GetError::Timeout) => continue,
            Err(GetError::Closed) => return Ok(report),
            Err(error) => {
                return Err(BridgeError::Source {
                    src: src.display(),
                    error,
                });
            }
        };
        dst.put(&lease).map_err(|error| BridgeError::Destination {
            dst: dst.display(),
            error,
        })?;
        lease.ack().map_err(|error| BridgeError::Ack {
            src: src.display(),
            error,
        })?;
        report.moved += 1;
    }
}
