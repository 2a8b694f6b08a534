//! The public handle: [`Queue`], its [`Builder`] and [`Lease`].

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::error::{AckError, CloseError, GetError, OpenError, PutError, RemoveError};
use crate::layout::Geometry;
use crate::liveness;
use crate::ring::{Claim, Cursors, GetBlocked, PutBlocked, Ring};
use crate::segment::{self, Segment};
use crate::wait::{self, Adapt, WaitPoint};

/// Default number of messages a queue holds.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Default largest message, in bytes.
pub const DEFAULT_MAX_MSG_SIZE: usize = 4096;
/// Default file mode of a new segment: owner read/write only.
pub const DEFAULT_MODE: u32 = 0o600;
/// Default number of handles that may be attached at once.
pub const DEFAULT_MAX_PARTICIPANTS: usize = 256;

/// How often a blocked or idle handle looks for dead participants.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(100);

/// The slot protocol bound to a segment.
pub(crate) fn ring(seg: &Segment) -> Ring<'_, Segment> {
    let h = seg.header();
    Ring::new(
        Cursors {
            head: &h.head,
            tail: &h.tail,
            requeued: &h.requeued,
            closed: &h.closed,
        },
        seg,
    )
}

/// Settings for a new queue; made by [`Queue::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    name: String,
    capacity: usize,
    max_msg_size: usize,
    mode: u32,
    max_participants: usize,
    dir: Option<PathBuf>,
}

impl Builder {
    /// Number of messages the queue holds (default 1024; 0 is an error).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Largest message in bytes (default 4096). Every slot reserves this
    /// much, so the segment takes about `capacity * max_msg_size` bytes.
    pub fn max_msg_size(mut self, bytes: usize) -> Self {
        self.max_msg_size = bytes;
        self
    }

    /// File mode of the segment (default `0o600`). Applied exactly, whatever
    /// the umask: `0o660` lets the group use the queue.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How many handles may be attached at once (default 256, at most 4096).
    pub fn max_participants(mut self, n: usize) -> Self {
        self.max_participants = n;
        self
    }

    /// The queue directory (default: `$MQ_DIR`, else `/dev/shm`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    fn geometry(&self) -> Result<Geometry, OpenError> {
        let invalid = |reason: String| OpenError::InvalidConfig {
            name: self.name.clone(),
            reason,
        };
        if self.mode & !0o777 != 0 {
            return Err(invalid(format!(
                "mode {:o} has bits outside 0o777",
                self.mode
            )));
        }
        Geometry::new(
            self.capacity as u64,
            self.max_msg_size as u64,
            self.max_participants as u64,
        )
        .map_err(|e| {
            invalid(match e {
                crate::layout::GeometryError::ZeroCapacity => {
                    "capacity is 0 (a queue must hold at least one message)".into()
                }
                crate::layout::GeometryError::BadParticipants => format!(
                    "max participants is {} (allowed: 1 to {})",
                    self.max_participants,
                    crate::layout::MAX_PARTICIPANTS_LIMIT
                ),
                crate::layout::GeometryError::Overflow => format!(
                    "capacity {} x max message size {} does not fit in memory",
                    self.capacity, self.max_msg_size
                ),
            })
        })
    }

    /// Creates the queue; fails with [`OpenError::AlreadyExists`] if it exists.
    pub fn create(self) -> Result<Queue, OpenError> {
        check_name(&self.name)?;
        let geometry = self.geometry()?;
        let dir = segment::queue_dir(self.dir.as_deref());
        let seg = Segment::create(&self.name, &dir, geometry, self.mode)?;
        Queue::attach(seg)
    }

    /// Opens the queue if it exists (its own sizes win), else creates it.
    /// Safe when many processes race to do this at once: exactly one creates.
    pub fn open_or_create(self) -> Result<Queue, OpenError> {
        check_name(&self.name)?;
        let geometry = self.geometry()?;
        let dir = segment::queue_dir(self.dir.as_deref());
        // A queue removed between our failed create and our open is simply
        // created again; give up only if that keeps happening.
        let mut last = None;
        for _ in 0..100 {
            match Segment::create(&self.name, &dir, geometry, self.mode) {
                Ok(seg) => return Queue::attach(seg),
                Err(OpenError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            match Segment::open(&self.name, &dir) {
                Ok(seg) => return Queue::attach(seg),
                Err(e @ OpenError::NotFound { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("loop ran"))
    }
}

fn check_name(name: &str) -> Result<(), OpenError> {
    segment::validate_name(name).map_err(|reason| OpenError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// A handle on a named queue in shared memory.
///
/// Every handle is a participant: it holds a kernel lock on its entry in the
/// queue's participant table for as long as it lives, which is how the other
/// processes know it is alive. `Queue` is `Send + Sync`; threads of one
/// process can share one handle.
pub struct Queue {
    seg: Segment,
    me: u16,
    born: Instant,
    /// Milliseconds since `born` of the last look for dead participants.
    last_maintenance_ms: AtomicU64,
    /// Milliseconds since `born` of the last full scan for re-queued
    /// messages that the `requeued` hint does not count.
    last_requeue_scan_ms: AtomicU64,
    /// How this handle's getters poll (see `wait::Adapt`).
    get_polling: Adapt,
    /// How this handle's putters poll.
    put_polling: Adapt,
    /// Whether other participants put messages too: then a producer on a
    /// contended core sleeps at once instead of yielding (see `wait.rs`).
    other_producers: AtomicBool,
    /// Milliseconds since `born` when `other_producers` was last looked up
    /// (`u64::MAX`: never).
    producers_scan_ms: AtomicU64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.seg.name)
            .field("path", &self.seg.path)
            .field("participant", &self.me)
            .finish()
    }
}

/// What a blocking call may wait for.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Until(Instant),
    Forever,
}

impl Wait {
    fn timeout(d: Duration) -> Wait {
        match Instant::now().checked_add(d) {
            Some(t) => Wait::Until(t),
            None => Wait::Forever,
        }
    }
}

impl Queue {
    /// Starts building a new queue named `name` (1-200 of `[A-Za-z0-9._-]`,
    /// not starting with '.').
    pub fn builder(name: &str) -> Builder {
        Builder {
            name: name.to_owned(),
            capacity: DEFAULT_CAPACITY,
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            mode: DEFAULT_MODE,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            dir: None,
        }
    }

    /// Opens an existing queue in the queue directory (`$MQ_DIR`, else `/dev/shm`).
    pub fn open(name: &str) -> Result<Queue, OpenError> {
        Self::open_in(segment::queue_dir(None), name)
    }

    /// Opens an existing queue in `dir`.
    pub fn open_in(dir: impl AsRef<Path>, name: &str) -> Result<Queue, OpenError> {
        check_name(name)?;
        Queue::attach(Segment::open(name, dir.as_ref())?)
    }

    /// Removes (unlinks) the queue. Handles that are open keep working on the
    /// old segment until dropped; a queue created later under the same name
    /// is a different queue.
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        Self::remove_in(segment::queue_dir(None), name)
    }

    /// Removes the queue `name` in `dir`.
    pub fn remove_in(dir: impl AsRef<Path>, name: &str) -> Result<(), RemoveError> {
        segment::validate_name(name).map_err(|reason| RemoveError::InvalidName {
            name: name.to_owned(),
            reason,
        })?;
        Segment::remove(name, dir.as_ref())
    }

    fn attach(seg: Segment) -> Result<Queue, OpenError> {
        let me = liveness::attach(&seg)?;
        let q = Queue {
            seg,
            me,
            born: Instant::now(),
            last_maintenance_ms: AtomicU64::new(0),
            last_requeue_scan_ms: AtomicU64::new(0),
            get_polling: Adapt::default(),
            put_polling: Adapt::default(),
            other_producers: AtomicBool::new(false),
            producers_scan_ms: AtomicU64::new(u64::MAX),
        };
        // Clean up after anyone who died since the queue was last used.
        q.maintain();
        Ok(q)
    }

    fn ring(&self) -> Ring<'_, Segment> {
        ring(&self.seg)
    }

    fn getters(&self) -> WaitPoint<'_> {
        let h = self.seg.header();
        WaitPoint {
            seq: &h.get_seq,
            waiters: &h.get_waiters,
            mine: &self.seg.participant(self.me).waiting_get,
            done: &self.seg.participant(self.me).gets,
            adapt: &self.get_polling,
            busy_sleep_flag: None,
        }
    }

    fn putters(&self) -> WaitPoint<'_> {
        let h = self.seg.header();
        WaitPoint {
            seq: &h.put_seq,
            waiters: &h.put_waiters,
            mine: &self.seg.participant(self.me).waiting_put,
            done: &self.seg.participant(self.me).puts,
            adapt: &self.put_polling,
            busy_sleep_flag: Some(&self.other_producers),
        }
    }

    /// Looks for dead participants and repairs what they held; wakes everyone
    /// if anything changed.
    fn maintain(&self) -> u64 {
        let now = self.born.elapsed().as_millis() as u64;
        self.last_maintenance_ms.store(now, Relaxed);
        let repaired = liveness::reap(&self.seg, self.me);
        let changed = repaired.discarded + repaired.requeued;
        if changed > 0 {
            self.getters().notify_all();
            self.putters().notify_all();
        }
        changed
    }

    /// Looks for participants that died and repairs what they held now,
    /// instead of waiting for the next blocked call to do it (which happens
    /// at most every 100 ms). Returns how many slots were repaired: messages
    /// put back for another getter plus half-written messages discarded.
    pub fn recover(&self) -> u64 {
        self.maintain()
    }

    /// Whether a getter with nothing to take should scan the whole ring for
    /// re-queued messages (at most every 100 ms). It has its own clock: the
    /// maintenance clock is usually reset by the sleeper's `idle` step just
    /// before the getter's next attempt, which would then never scan.
    fn requeue_scan_due(&self) -> bool {
        self.interval_due(&self.last_requeue_scan_ms)
    }

    /// Looks up whether other participants put messages, when this handle
    /// first finds the queue full and then at most every 100 ms: a producer
    /// that is not alone sleeps at once on a contended core, one that is
    /// alone yields to the consumer (see `wait.rs`).
    fn scan_producers_if_due(&self) {
        if self.interval_due(&self.producers_scan_ms) {
            let others = liveness::other_producers(&self.seg, self.me);
            self.other_producers.store(others, Relaxed);
        }
    }

    /// Whether [`MAINTENANCE_INTERVAL`] has passed since the time in `last`
    /// (milliseconds since `born`; `u64::MAX`: never); if so, stores now.
    fn interval_due(&self, last: &AtomicU64) -> bool {
        let now = self.born.elapsed().as_millis() as u64;
        let then = last.load(Relaxed);
        let due =
            then == u64::MAX || now.saturating_sub(then) >= MAINTENANCE_INTERVAL.as_millis() as u64;
        if due {
            last.store(now, Relaxed);
        }
        due
    }

    fn maintain_if_due(&self) -> bool {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_maintenance_ms.load(Relaxed);
        if now.saturating_sub(last) >= MAINTENANCE_INTERVAL.as_millis() as u64 {
            self.maintain();
            true
        } else {
            false
        }
    }

    // ---------------------------------------------------------------- put

    /// Puts a message, blocking while the queue is full.
    pub fn put(&self, msg: &[u8]) -> Result<(), PutError> {
        self.put_with(msg, Wait::Forever)
    }

    /// Puts a message if there is a free slot now.
    pub fn try_put(&self, msg: &[u8]) -> Result<(), PutError> {
        self.put_with(msg, Wait::No)
    }

    /// Puts a message, waiting at most `timeout` for a free slot.
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), PutError> {
        self.put_with(msg, Wait::timeout(timeout))
    }

    fn put_with(&self, msg: &[u8], wait: Wait) -> Result<(), PutError> {
        if msg.len() as u64 > self.seg.geometry.max_msg_size {
            return Err(PutError::TooLarge {
                len: msg.len(),
                max: self.max_msg_size(),
            });
        }
        let claim = self.claim_write(wait)?;
        // SAFETY: `claim` holds the slot in WRITING for us; the length was
        // checked against max_msg_size above.
        unsafe { self.seg.write_payload(claim.idx, msg) };
        self.ring().publish(claim);
        self.count_puts(1);
        self.getters().notify_one();
        Ok(())
    }

    /// Puts every message in `msgs`, in order, blocking while the queue is
    /// full. A little cheaper than a loop of [`put`](Self::put) (the sizes
    /// are checked and the handle's counter updated once per batch); a
    /// sleeping consumer is woken at the first message, as by `put`.
    /// On error, returns it together with how many messages were put.
    pub fn put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), (usize, PutError)> {
        let max = self.seg.geometry.max_msg_size;
        if let Some(m) = msgs.iter().find(|m| m.as_ref().len() as u64 > max) {
            let err = PutError::TooLarge {
                len: m.as_ref().len(),
                max: max as usize,
            };
            return Err((0, err));
        }
        let (ring, getters) = (self.ring(), self.getters());
        for (done, msg) in msgs.iter().enumerate() {
            let claim = match self.claim_write(Wait::Forever) {
                Ok(c) => c,
                Err(e) => {
                    self.count_puts(done);
                    return Err((done, e));
                }
            };
            // SAFETY: `claim` holds the slot in WRITING for us; every length
            // was checked against max_msg_size above.
            unsafe { self.seg.write_payload(claim.idx, msg.as_ref()) };
            ring.publish(claim);
            // As in `put`: with nobody asleep this is one load of a word
            // that stays in our cache; holding the announcement back until
            // the end of the batch would let a consumer sleep through
            // messages whenever this process is preempted mid-batch.
            getters.notify_one();
        }
        self.count_puts(msgs.len());
        Ok(())
    }

    fn count_puts(&self, n: usize) {
        self.seg
            .participant(self.me)
            .puts
            .fetch_add(n as u64, Relaxed);
    }

    fn claim_write(&self, wait: Wait) -> Result<Claim, PutError> {
        let ring = self.ring();
        let attempt = || match ring.try_claim_write(self.me) {
            Ok(c) => Some(Ok(c)),
            Err(PutBlocked::Closed) => Some(Err(PutError::Closed)),
            Err(PutBlocked::Corrupt(c)) => Some(Err(PutError::Corrupted(format!(
                "slot {} holds state {:#018x} where lap {} was expected",
                c.idx, c.found, c.expected_lap
            )))),
            Err(PutBlocked::Full) => {
                self.maintain_if_due();
                self.scan_producers_if_due();
                None
            }
        };
        self.block(
            wait,
            self.putters(),
            attempt,
            PutError::Full,
            PutError::Timeout,
        )
    }

    /// The shared blocking skeleton of put and get.
    fn block<T, E>(
        &self,
        wait: Wait,
        wp: WaitPoint<'_>,
        mut attempt: impl FnMut() -> Option<Result<T, E>>,
        would_block: E,
        timed_out: E,
    ) -> Result<T, E> {
        let deadline = match wait {
            Wait::No => return attempt().unwrap_or(Err(would_block)),
            Wait::Until(t) => Some(t),
            Wait::Forever => None,
        };
        let idle = || {
            self.maintain_if_due();
        };
        wait::wait_until(wp, deadline, attempt, idle).unwrap_or(Err(timed_out))
    }

    // ---------------------------------------------------------------- get

    /// Takes the next message, blocking while the queue is empty.
    /// Returns [`GetError::Closed`] once the queue is closed and drained.
    pub fn get(&self) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_into_with(&mut buf, Wait::Forever)?;
        Ok(buf)
    }

    /// Takes the next message if there is one now.
    pub fn try_get(&self) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_into_with(&mut buf, Wait::No)?;
        Ok(buf)
    }

    /// Takes the next message, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_into_with(&mut buf, Wait::timeout(timeout))?;
        Ok(buf)
    }

    /// Takes the next message into `buf` (replacing its contents), blocking
    /// while empty, and returns its length. Reuses `buf`'s allocation.
    pub fn get_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        self.get_into_with(buf, Wait::Forever)
    }

    /// Like [`get_into`](Self::get_into), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        self.get_into_with(buf, Wait::No)
    }

    /// Like [`get_into`](Self::get_into), waiting at most `timeout`.
    pub fn get_into_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, GetError> {
        self.get_into_with(buf, Wait::timeout(timeout))
    }

    fn get_into_with(&self, buf: &mut Vec<u8>, wait: Wait) -> Result<usize, GetError> {
        let claim = self.claim_read(wait)?;
        buf.clear();
        let len = self.copy_out(claim, buf);
        // The hand-over: until this store, our death re-queues the message.
        let handed_over = self.ring().release_read(claim, self.me);
        self.after_release();
        match (len, handed_over) {
            (Ok(len), true) => Ok(len),
            (Err(e), _) => Err(e),
            (Ok(_), false) => Err(lost(claim)),
        }
    }

    /// Takes up to `max` messages: blocks until at least one is there, then
    /// takes whatever else is ready without waiting. Sleeping producers are
    /// woken at the first free slot, as by `get`. Returns
    /// [`GetError::Closed`] only when nothing was taken.
    ///
    /// Allocates one `Vec` per message; a loop that takes many batches is
    /// faster with [`get_many_into`](Self::get_many_into), which reuses one
    /// [`Batch`].
    pub fn get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        self.get_many_with(max, Wait::Forever)
    }

    /// Like [`get_many`](Self::get_many), waiting at most `timeout` for the first message.
    pub fn get_many_timeout(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, GetError> {
        self.get_many_with(max, Wait::timeout(timeout))
    }

    /// Like [`get_many`](Self::get_many), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        self.get_many_with(max, Wait::No)
    }

    fn get_many_with(&self, max: usize, wait: Wait) -> Result<Vec<Vec<u8>>, GetError> {
        let mut out = Vec::new();
        self.take_many(max, wait, |claim| {
            let mut buf = Vec::new();
            let len = self.copy_out(claim, &mut buf)?;
            out.push(buf);
            Ok(len)
        })?;
        Ok(out)
    }

    /// Takes up to `max` messages into `batch` (cleared first), blocking until
    /// at least one is there, and returns how many it took; see
    /// [`get_many`](Self::get_many). Reuses `batch`'s buffers, so a loop over
    /// one `Batch` allocates nothing once it has grown. Returns
    /// [`GetError::Closed`] only when nothing was taken.
    pub fn get_many_into(&self, batch: &mut Batch, max: usize) -> Result<usize, GetError> {
        self.get_many_into_with(batch, max, Wait::Forever)
    }

    /// Like [`get_many_into`](Self::get_many_into), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_many_into(&self, batch: &mut Batch, max: usize) -> Result<usize, GetError> {
        self.get_many_into_with(batch, max, Wait::No)
    }

    /// Like [`get_many_into`](Self::get_many_into), waiting at most `timeout` for the first message.
    pub fn get_many_into_timeout(
        &self,
        batch: &mut Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, GetError> {
        self.get_many_into_with(batch, max, Wait::timeout(timeout))
    }

    fn get_many_into_with(
        &self,
        batch: &mut Batch,
        max: usize,
        wait: Wait,
    ) -> Result<usize, GetError> {
        batch.clear();
        self.take_many(max, wait, |claim| {
            let copied = self.copy_out(claim, batch.data_mut());
            match copied {
                Ok(_) => batch.commit(),
                Err(_) => batch.discard_uncommitted(),
            }
            copied
        })
    }

    /// The loop of the `get_many` family: claims up to `max` messages (the
    /// first with `wait`, the rest only if ready now), hands each claimed slot
    /// to `copy` and then releases it (waking sleeping producers, as `get`
    /// does), and counts the batch once.
    /// Returns how many messages `copy` took; an error only if none.
    fn take_many(
        &self,
        max: usize,
        wait: Wait,
        mut copy: impl FnMut(Claim) -> Result<usize, GetError>,
    ) -> Result<usize, GetError> {
        if max == 0 {
            return Ok(0);
        }
        let (ring, putters) = (self.ring(), self.putters());
        let mut next = Some(self.claim_read(wait)?);
        let (mut taken, mut released) = (0usize, 0u32);
        let mut failure = None;
        while let Some(claim) = next.take() {
            let copied = copy(claim);
            // The hand-over: until this store, our death re-queues the message.
            let handed_over = ring.release_read(claim, self.me);
            released += 1;
            // As in `get`: with nobody asleep this is one load; producers
            // that sleep are woken at the first free slot and refill while
            // we take the rest of the batch.
            putters.notify_one();
            match (copied, handed_over) {
                (Ok(_), true) => taken += 1,
                (Err(e), _) => failure = Some(e),
                (Ok(_), false) => failure = Some(lost(claim)),
            }
            if failure.is_some() || taken >= max {
                break;
            }
            next = ring.try_claim_read(self.me).ok();
        }
        self.seg
            .participant(self.me)
            .gets
            .fetch_add(u64::from(released), Relaxed);
        match failure {
            Some(e) if taken == 0 => Err(e),
            _ => Ok(taken),
        }
    }

    /// Appends the payload of a claimed slot to `buf`.
    fn copy_out(&self, claim: Claim, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        // SAFETY: `claim` holds the slot in READING for us.
        unsafe { self.seg.append_payload(claim.idx, buf) }.map_err(|bad| {
            GetError::Corrupted(format!(
                "slot {} claims a {bad}-byte message, more than the {}-byte maximum (message dropped)",
                claim.idx,
                self.max_msg_size()
            ))
        })
    }

    fn after_release(&self) {
        self.seg.participant(self.me).gets.fetch_add(1, Relaxed);
        self.putters().notify_one();
    }

    fn claim_read(&self, wait: Wait) -> Result<Claim, GetError> {
        let ring = self.ring();
        let closed = &self.seg.header().closed;
        let attempt = || match ring.try_claim_read(self.me) {
            Ok(c) => Some(Ok(c)),
            Err(GetBlocked::Corrupt(c)) => Some(Err(GetError::Corrupted(format!(
                "slot {} holds state {:#018x} where lap {} was expected",
                c.idx, c.found, c.expected_lap
            )))),
            Err(GetBlocked::Empty | GetBlocked::Pending { .. }) => {
                // Now and then, look for dead participants and for re-queued
                // messages the hint may have missed (a crash between the
                // re-queue and its count, or a damaged segment).
                let repaired = self.maintain_if_due();
                if repaired || self.requeue_scan_due() {
                    if let Some(c) = ring.take_requeued(self.me) {
                        return Some(Ok(c));
                    }
                }
                if closed.load(SeqCst) != 0 {
                    if ring.is_drained(self.me) {
                        return Some(Err(GetError::Closed));
                    }
                    // A damaged ring can hold a message the head never
                    // reaches: report it rather than wait for it forever.
                    if let Some(c) = ring.stranded() {
                        return Some(Err(GetError::Corrupted(format!(
                            "the queue is closed and slot {} holds state {:#018x}, which no getter can ever reach (the head waits at lap {})",
                            c.idx, c.found, c.expected_lap
                        ))));
                    }
                }
                None
            }
        };
        self.block(
            wait,
            self.getters(),
            attempt,
            GetError::Empty,
            GetError::Timeout,
        )
    }

    /// Takes the next message under a lease, blocking while empty: the message
    /// stays in the queue (invisible to others) until [`Lease::ack`]. If the
    /// lease is dropped without `ack`, or this process dies first, the message
    /// is delivered again to another getter (at-least-once delivery).
    pub fn get_lease(&self) -> Result<Lease<'_>, GetError> {
        self.lease_with(Wait::Forever)
    }

    /// Like [`get_lease`](Self::get_lease), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_lease(&self) -> Result<Lease<'_>, GetError> {
        self.lease_with(Wait::No)
    }

    /// Like [`get_lease`](Self::get_lease), waiting at most `timeout`.
    pub fn get_lease_timeout(&self, timeout: Duration) -> Result<Lease<'_>, GetError> {
        self.lease_with(Wait::timeout(timeout))
    }

    fn lease_with(&self, wait: Wait) -> Result<Lease<'_>, GetError> {
        let claim = self.claim_read(wait)?;
        let mut data = Vec::new();
        if let Err(e) = self.copy_out(claim, &mut data) {
            self.ring().release_read(claim, self.me);
            self.after_release();
            return Err(e);
        }
        Ok(Lease {
            queue: self,
            claim,
            data,
            settled: false,
        })
    }

    /// A copy of the message the next getter would take, without taking it
    /// (`None` when no message is waiting). Another getter may take it a
    /// moment later: use this to look, not to decide who processes what.
    pub fn peek(&self) -> Option<Vec<u8>> {
        let ring = self.ring();
        let mut buf = Vec::new();
        for _ in 0..100 {
            let (idx, seen) = ring.peek()?;
            if self.seg.peek_payload(idx, &mut buf) && ring.unchanged(idx, seen) {
                return Some(buf);
            }
        }
        None
    }

    // ------------------------------------------------------------- status

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
        self.ring().len() as usize
    }

    /// Whether no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot is taken now.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// Number of messages the queue holds.
    pub fn capacity(&self) -> usize {
        self.seg.geometry.capacity as usize
    }

    /// Largest message in bytes.
    pub fn max_msg_size(&self) -> usize {
        self.seg.geometry.max_msg_size as usize
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.seg.header().closed.load(SeqCst) != 0
    }

    /// Marks end of stream: later puts fail with [`PutError::Closed`], gets
    /// drain what is left and then fail with [`GetError::Closed`], and every
    /// sleeper wakes up. Closing is permanent.
    pub fn close(&self) -> Result<(), CloseError> {
        let h = self.seg.header();
        // SYNC: SeqCst pairs with the producer's re-check after its claim and
        // with the consumer's drain scan (see ring.rs).
        if h.closed.swap(1, SeqCst) != 0 {
            return Err(CloseError::AlreadyClosed);
        }
        self.getters().notify_all();
        self.putters().notify_all();
        Ok(())
    }

    /// Everything `mq inspect` shows.
    pub fn stats(&self) -> crate::Stats {
        crate::stats::collect(&self.seg, self.me)
    }

    /// The state of every slot, for drawing the ring.
    pub fn slots(&self) -> Vec<crate::SlotView> {
        crate::stats::slots(&self.seg)
    }
}

fn lost(claim: Claim) -> GetError {
    GetError::Corrupted(format!(
        "slot {} was taken over by another process while being read",
        claim.idx
    ))
}

impl Drop for Queue {
    fn drop(&mut self) {
        let repaired = liveness::detach(&self.seg, self.me);
        if repaired.discarded + repaired.requeued > 0 {
            self.getters().notify_all();
            self.putters().notify_all();
        }
    }
}

/// A message taken with [`Queue::get_lease`]: it derefs to the bytes, and
/// leaves the queue only when [`ack`](Lease::ack)ed. Dropping it unacked (or
/// dying) puts it back for another getter, counted as `redelivered`.
#[must_use = "an unacked lease puts its message back when dropped"]
pub struct Lease<'q> {
    queue: &'q Queue,
    claim: Claim,
    data: Vec<u8>,
    settled: bool,
}

impl Lease<'_> {
    /// Confirms the message was handled: it leaves the queue for good.
    pub fn ack(mut self) -> Result<(), AckError> {
        self.settled = true;
        let ok = self.queue.ring().release_read(self.claim, self.queue.me);
        self.queue.after_release();
        if ok {
            Ok(())
        } else {
            Err(AckError::Lost {
                slot: self.claim.idx,
            })
        }
    }

    /// Puts the message back for another getter now (same as dropping it).
    pub fn release(mut self) {
        self.put_back();
    }

    /// The message bytes, taken out of the lease.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data.clone()
    }

    fn put_back(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let q = self.queue;
        if q.ring().requeue(self.claim, q.me) {
            q.seg.header().redelivered.fetch_add(1, Relaxed);
        }
        q.getters().notify_all();
    }
}

impl Deref for Lease<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl AsRef<[u8]> for Lease<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl std::fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("slot", &self.claim.idx)
            .field("len", &self.data.len())
            .finish()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.put_back();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A producer learns whether others put too when it first finds the
    /// queue full: only then does it sleep at once on a contended core.
    #[test]
    fn a_full_queue_tells_a_producer_whether_it_is_alone() {
        let dir = std::env::temp_dir().join(format!("mq-unit-producers-{}", std::process::id()));
        let a = Queue::builder("p").dir(&dir).capacity(2).create().unwrap();
        let b = Queue::open_in(&dir, "p").unwrap();
        a.put(b"1").unwrap();
        a.put(b"2").unwrap();
        assert!(matches!(a.try_put(b"3"), Err(PutError::Full)));
        // `b` has put nothing: `a` is the only producer.
        assert!(!a.other_producers.load(Relaxed));
        assert!(!a.putters().sleeps_when_busy());
        assert!(matches!(b.try_put(b"3"), Err(PutError::Full)));
        assert!(b.other_producers.load(Relaxed));
        assert!(b.putters().sleeps_when_busy());
        // Consumers never sleep at once.
        assert!(!b.getters().sleeps_when_busy());
        drop((a, b));
        Queue::remove_in(&dir, "p").unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }
}
