//! [`Observer`]: a read-only, non-participating view of a queue, for tools
//! that look (`mq inspect`, `ls`, `watch`, `peek`) and for users who may only
//! read a queue.
//!
//! The segment is opened `O_RDONLY` and mapped `PROT_READ`, validated like a
//! participant's (one shared `Segment::validate`), and read with the same
//! [`stats`] functions as [`Queue::stats`]. An observer takes
//! no participant entry, holds no lock, never recovers and never writes a
//! byte: any store through its mapping would fault. Liveness of the
//! participants is asked of the kernel with `F_OFD_GETLK`, which works on a
//! read-only descriptor.

use std::path::Path;
use std::sync::atomic::Ordering::*;

use crate::dead_letter::DeadLetter;
use crate::error::OpenError;
use crate::queue::{Queue, check_name};
use crate::segment::{self, Segment};
use crate::stats::{self, SlotView, Stats, count};

/// A read-only view of a queue, made by [`Queue::observe`] or
/// [`Queue::observe_in`]. Needs only read permission on the segment file.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mq-doc-observe-{}", std::process::id()));
/// use queue_core::Queue;
/// let q = Queue::builder("jobs").dir(&dir).create()?;
/// q.put(b"hello")?;
/// let o = Queue::observe_in(&dir, "jobs")?;
/// assert_eq!(o.len(), 1);
/// assert_eq!(o.peek().as_deref(), Some(&b"hello"[..]));
/// assert_eq!(o.stats().participants.len(), 1, "only `q`: the observer is none");
/// # drop((o, q));
/// # Queue::remove_in(&dir, "jobs")?;
/// # std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Observer {
    seg: Segment,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("name", &self.seg.name)
            .field("path", &self.seg.path)
            .finish()
    }
}

impl Queue {
    /// A read-only, non-participating view of queue `name` in the queue
    /// directory (`$MQ_DIR`, else `/dev/shm`): needs only read permission,
    /// takes no participant entry, never recovers or writes a byte.
    pub fn observe(name: &str) -> Result<Observer, OpenError> {
        Self::observe_in(segment::queue_dir(None), name)
    }

    /// A read-only, non-participating view of queue `name` in `dir`; see
    /// [`observe`](Self::observe).
    pub fn observe_in(dir: impl AsRef<Path>, name: &str) -> Result<Observer, OpenError> {
        check_name(name)?;
        Ok(Observer {
            seg: Segment::open_read_only(name, dir.as_ref())?,
        })
    }
}

impl Observer {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.seg.name
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.seg.path
    }

    /// Messages waiting now (a snapshot; leased messages are not counted).
    pub fn len(&self) -> usize {
        count(self.seg.queued())
    }

    /// Whether no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot of every priority level is taken now.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity().saturating_mul(self.priorities())
    }

    /// Number of priority levels (1: no priorities).
    pub fn priorities(&self) -> usize {
        count(self.seg.geometry.priorities)
    }

    /// Number of messages each priority level holds (the whole queue,
    /// without priorities), as [`Queue::capacity`].
    pub fn capacity(&self) -> usize {
        count(self.seg.geometry.capacity)
    }

    /// Largest message in bytes.
    pub fn max_msg_size(&self) -> usize {
        count(self.seg.geometry.max_msg_size)
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.seg.header().closed.load(SeqCst) != 0
    }

    /// Everything `mq inspect` shows. Every participant has `is_self` false:
    /// the observer is not one of them.
    pub fn stats(&self) -> Stats {
        stats::collect(&self.seg, None)
    }

    /// The state of every slot, for drawing the ring.
    pub fn slots(&self) -> Vec<SlotView> {
        stats::slots(&self.seg)
    }

    /// A copy of the message the next getter would take (`None` when no
    /// message is waiting), as [`Queue::peek`].
    pub fn peek(&self) -> Option<Vec<u8>> {
        stats::peek(&self.seg)
    }

    /// [`peek`](Self::peek), with where the message came from if it is a
    /// dead letter (moved here from the queue it names after its deliveries
    /// there; see [`Builder::dead_letter`](crate::Builder::dead_letter)).
    pub fn peek_with_origin(&self) -> Option<(Vec<u8>, Option<DeadLetter>)> {
        stats::peek_with_origin(&self.seg)
    }
}
