//! The code behind this queue's own benchmark figures, shared by `mq bench`
//! (queue-cli) and the comparison bench of this crate (`benches/compare/`,
//! run with `cargo bench -p queue-bench --bench compare`), so that both
//! measure the same loops.
//!
//! * [`produce`] and [`consume`]: the producer and consumer loops, one
//!   message per call (`put` / `get_into`) or in batches (`put_many` /
//!   `get_many_into`), until a count or until the queue is closed;
//! * [`stamp`](mod@stamp): the sequence number at the start of each message and the
//!   [`Tally`] (count and checksum) that proves every message arrived exactly
//!   once;
//! * [`Report`]: the line a worker process prints at the end (`sent COUNT SUM`
//!   or `got COUNT SUM`), and its parsing;
//! * [`machine`]: the one-line description of the machine printed with the
//!   figures.
//!
//! A producer and a consumer, with threads standing in for processes and a
//! temporary directory instead of `/dev/shm`:
//!
//! ```
//! use queue_bench::{Mode, consume, produce};
//! use queue_core::Queue;
//!
//! let dir = std::env::temp_dir().join(format!("mq-doc-bench-{}", std::process::id()));
//! let q = Queue::builder("b").dir(&dir).capacity(16).max_msg_size(64).create()?;
//! let (sent, got) = std::thread::scope(|s| {
//!     let producer = s.spawn(|| {
//!         let p = Queue::open_in(&dir, "b").unwrap();
//!         let sent = produce(&p, 7, 64, Mode::batched(8).limit(1000)).unwrap();
//!         p.close().unwrap(); // end of stream: the consumer stops when drained
//!         sent
//!     });
//!     let got = consume(&q, Mode::batched(8)).unwrap();
//!     (producer.join().unwrap(), got)
//! });
//! assert_eq!(sent.count, 1000);
//! assert_eq!(sent, got); // same count, same checksum: nothing lost or duplicated
//! Queue::remove_in(&dir, "b")?;
//! # std::fs::remove_dir(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod consumer;
mod machine;
mod mode;
mod producer;
mod report;
pub mod stamp;

pub use consumer::consume;
pub use machine::machine;
pub use mode::Mode;
pub use producer::produce;
pub use report::{ParseReportError, Report};
pub use stamp::Tally;
