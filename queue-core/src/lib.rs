//! A named, bounded, multi-producer multi-consumer message queue in shared
//! memory, which survives `kill -9` of any participant.
//!
//! Unrelated processes open the same queue by name; each message goes to
//! exactly one getter. Two programs, run in two terminals:
//!
//! ```no_run
//! // producer.rs
//! use queue_core::Queue;
//! let q = Queue::builder("jobs").capacity(1024).open_or_create()?;
//! for i in 0..10 {
//!     q.put(format!("job {i}").as_bytes())?; // blocks while the queue is full
//! }
//! q.close()?; // end of stream: the consumer stops after the last message
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```no_run
//! // consumer.rs
//! use queue_core::{GetError, Queue};
//! let q = Queue::builder("jobs").open_or_create()?;
//! loop {
//!     match q.get() {                     // blocks while the queue is empty
//!         Ok(msg) => println!("{}", String::from_utf8_lossy(&msg)),
//!         Err(GetError::Closed) => break, // closed and drained
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! Queue::remove("jobs")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same in one runnable piece (threads stand in for the processes; the
//! queue directory is a temporary one instead of `/dev/shm`):
//!
//! ```
//! use queue_core::{GetError, Queue};
//! let dir = std::env::temp_dir().join(format!("mq-doc-{}", std::process::id()));
//! let q = Queue::builder("jobs").dir(&dir).capacity(4).create()?;
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let producer = Queue::open_in(&dir, "jobs").unwrap();
//!         for i in 0..10 {
//!             producer.put(format!("job {i}").as_bytes()).unwrap();
//!         }
//!         producer.close().unwrap();
//!     });
//!     let mut got = 0;
//!     while let Ok(msg) = q.get() {
//!         assert_eq!(msg, format!("job {got}").as_bytes());
//!         got += 1;
//!     }
//!     assert_eq!(got, 10);
//!     assert_eq!(q.get(), Err(GetError::Closed));
//! });
//! Queue::remove_in(&dir, "jobs")?;
//! # std::fs::remove_dir(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Delivery guarantees
//! * A message whose `put` returned `Ok` is delivered exactly once by `get`,
//!   unless the getter dies in the last instructions after taking it.
//! * With [`Queue::get_lease`] + [`Lease::ack`] delivery is at-least-once:
//!   the message comes back unless acked, whatever the consumer was doing
//!   when it died.
//! * A producer that dies mid-`put` never delivers half a message.
//! * Dead participants are found through kernel record locks (not pids) and
//!   cleaned up by whoever waits next, within about a second.
//! * A re-delivered message may overtake younger ones (FIFO is kept otherwise).
//!
//! # Delivery control
//! Set when the queue is created, stored in the segment so every process
//! follows them (docs/design.md, "Delivery control"):
//! [`Builder::priorities`] (levels served highest first,
//! [`Queue::put_priority`]), [`Builder::lease_timeout`] (a lease not acked or
//! [renewed](Lease::renew) in time goes back to another getter even if its
//! holder lives; the late ack fails with [`AckError::Expired`]),
//! [`Builder::max_deliveries`] (a poison message is dropped after that many
//! deliveries, [`Lease::deliveries`] counts them).
//!
//! The design, the segment layout byte by byte, and the crash-safety argument
//! are in `docs/design.md`; the tutorial for classes (processes, queues, pools) starts at
//! [`docs/tutorial/README.md`](https://example.invalid/mq/blob/main/docs/tutorial/README.md).
//!
//! # Looking without taking part
//! [`Queue::observe`] gives a read-only [`Observer`] (stats, slots, peek):
//! it needs only read permission, takes no participant entry and never
//! writes a byte. `mq inspect`, `ls`, `watch` and `peek` use it.
//!
//! # Waiting on many queues, and async
//! [`Select`] waits until one of several queues has a message (or is
//! closed) and says which, taking nothing; then take with a `try_` verb. It
//! sleeps in the kernel on every queue at once (`futex_waitv`), so a blocked
//! selector uses no CPU. With the cargo feature `async`, `Queue::get_async`,
//! `put_async` and `get_lease_async` are cancel-safe futures for any
//! executor, woken by one waiter thread per process.
//!
//! # Cargo features
//! * `serde` (on by default): `TypedQueue`, serde values encoded with
//!   postcard (and, for now, the process pool).
//! * `async` (off by default): `get_async`, `put_async`, `get_lease_async`.
//!
//! # Where queues live
//! Queue `jobs` is the file `mq.jobs` in the queue directory: the builder's
//! [`Builder::dir`], else the `MQ_DIR` environment variable, else `/dev/shm`.

#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(loom, allow(dead_code))]
#![warn(missing_docs)]

mod sync;

mod ring;
#[cfg(all(test, loom))]
mod select_loom;

#[cfg(not(loom))]
mod batch;
#[cfg(not(loom))]
mod dead_letter;
#[cfg(not(loom))]
mod delivery;
#[cfg(not(loom))]
mod error;
#[cfg(all(feature = "async", not(loom)))]
mod future;
#[cfg(not(loom))]
mod layout;
#[cfg(not(loom))]
mod levels;
#[cfg(not(loom))]
mod liveness;
#[cfg(not(loom))]
mod observe;
#[cfg(not(loom))]
mod queue;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod select;
#[cfg(not(loom))]
mod stats;
#[cfg(not(loom))]
mod sys;
// The tutorial's programs use `TypedQueue` and the pool.
#[cfg(all(doctest, feature = "serde", not(loom)))]
mod tutorial;
#[cfg(all(feature = "serde", not(loom)))]
mod typed;
#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use batch::{Batch, Iter as BatchIter};
#[cfg(not(loom))]
pub use dead_letter::DeadLetter;
#[cfg(not(loom))]
pub use error::{AckError, CloseError, Corruption, GetError, OpenError, PutError, RemoveError};
#[cfg(not(loom))]
pub use observe::Observer;
#[cfg(not(loom))]
pub use queue::{
    Builder, DEFAULT_CAPACITY, DEFAULT_MAX_MSG_SIZE, DEFAULT_MAX_PARTICIPANTS, DEFAULT_MODE, Lease,
    Queue,
};
#[cfg(not(loom))]
pub use segment::{FILE_PREFIX, MAX_NAME_LEN, list, queue_dir, segment_path, validate_name};
#[cfg(not(loom))]
pub use select::Select;
#[cfg(not(loom))]
pub use stats::{LeaseView, Level, Participant, SlotView, Stats};
#[cfg(all(feature = "serde", not(loom)))]
pub use typed::{TypedGetError, TypedLease, TypedPutError, TypedQueue};

/// The on-segment layout constants, for tools that inspect segments.
#[cfg(not(loom))]
pub mod segment_layout {
    pub use crate::layout::{
        HEADER_SIZE, LAYOUT_VERSION, MAGIC, PARTICIPANT_SIZE, SLOT_HEADER_SIZE, SLOT_META_SIZE,
    };
}
