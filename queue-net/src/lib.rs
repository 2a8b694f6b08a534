//! The queue verbs of `queue_core::Queue` over NATS JetStream, so producers
//! and consumers can run on more than one machine, and the bridge that joins
//! a local queue to a remote one.
//!
//! ```no_run
//! use queue_net::{AnyQueue, CreateOptions};
//! // The same code for a local queue ("jobs") and a remote one.
//! let q = AnyQueue::create("nats://127.0.0.1:4222/jobs", &CreateOptions::default())?;
//! q.put(b"job 1")?;
//! q.close()?;
//! let consumer = AnyQueue::open("nats://127.0.0.1:4222/jobs")?;
//! while let Ok(msg) = consumer.get() {
//!     println!("{}", String::from_utf8_lossy(&msg));
//! } // ends with GetError::Closed once drained
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A remote queue is a WorkQueue-retention stream whose one durable pull
//! consumer all getters share; `max_msgs` + `discard: new` bound it; a lease
//! is an unacked message; close moves the stream to another subject and
//! publishes a close marker. The semantics, the bridge's delivery bound and
//! the figures are in `docs/scale-out.md`.
//!
//! Every verb blocks the calling thread on the crate's own small tokio
//! runtime; do not call them from inside another tokio runtime's task.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

// Layers, bottom up: runtime, target, error; retry (deadlines, back-off),
// consumer (pulls, acks, the close marker), lease - none of them knows a
// queue handle; then `RemoteQueue`, whose methods live in three files by
// concern: remote (the verbs), publish (windowed publishing), admin (the
// control plane); on top, any (local or remote) and bridge.
mod admin;
mod any;
pub mod bridge;
mod consumer;
mod error;
mod lease;
mod publish;
mod remote;
mod retry;
mod runtime;
mod target;

pub use admin::{CreateOptions, DEFAULT_ACK_WAIT, DUPLICATE_WINDOW, RemoteStats};
pub use any::{AnyLease, AnyQueue};
pub use bridge::{BridgeOptions, BridgeReport, bridge};
pub use error::{AckError, CloseError, GetError, NetError, OpenError, PutError, RemoveError};
pub use lease::RemoteLease;
pub use remote::RemoteQueue;
pub use target::{RemoteUrl, SCHEME, Target, is_url};
