//! The public handle: [`Queue`], a participant of one queue. This file holds
//! the handle itself - opening, its wait points, recovery, status and close;
//! the operations live beside it, one concern per file:
//!
//! * `builder.rs`: [`Builder`] and the defaults;
//! * `put.rs`: the put family over one `put_until(msg, deadline)`;
//! * `get.rs`: the get family over one `get_into_until(buf, deadline)` and
//!   one `take_many(max, deadline, copy)`;
//! * `lease.rs`: leases over one `lease_until(deadline)`, and [`Lease`].
//!
//! Every blocking verb is a shorthand that picks a [`Deadline`] and calls
//! [`Queue::block`], the one skeleton over `wait::wait_until`.

mod builder;
mod dead_letter;
mod get;
mod lease;
mod put;

pub use builder::{
    Builder, DEFAULT_CAPACITY, DEFAULT_MAX_MSG_SIZE, DEFAULT_MAX_PARTICIPANTS, DEFAULT_MODE,
};
pub use lease::Lease;

use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::delivery;
use crate::error::{CloseError, OpenError, RemoveError};
use crate::layout::ParticipantEntry;
use crate::liveness;
use crate::ring::Ring;
use crate::segment::{self, Segment};
use crate::stats::{self, count};
use crate::wait::{self, Adapt, Deadline, WaitPoint};
pub(crate) use builder::check_name;

/// How often a blocked or idle handle looks for dead participants (and for
/// re-queued messages, and for other producers).
const RECOVERY_INTERVAL: Duration = Duration::from_millis(100);

/// The payload bytes a batch verb moves at once: `put_many` publishes its
/// messages in runs of at most this many bytes (or one larger message), so
/// consumers start on the first while the rest is written, and one
/// `get_many` call stops taking messages once it holds this many (passing
/// it by one message at most), so the caller's buffer stays in the core's
/// cache. Only large messages reach it: 64 messages of 4 KiB are 256 KiB.
/// Measured with 64 KiB messages in batches of 64 (docs/performance.md,
/// "Batches of large messages").
const BATCH_BYTES: u64 = 256 << 10;

/// Batches of fewer messages than this are put (and taken) message by
/// message while the fast claim of `put` (`get`) succeeds: below the size
/// of a recorded run, a run costs more than its messages alone (callgrind,
/// `hot_path N 64 2`: 490 instructions a message as a run, 290 so).
const FEW: usize = crate::ring::RECORD_FROM as usize;

/// What is left of [`BATCH_BYTES`] for one `put_many` run or one get of
/// many.
struct ByteBudget(u64);

impl ByteBudget {
    /// A full budget, or `None` when `count` messages of at most `max`
    /// bytes cannot pass [`BATCH_BYTES`] (then nothing needs counting).
    fn needed(max: u64, count: u64) -> Option<ByteBudget> {
        (max.saturating_mul(count) > BATCH_BYTES).then_some(ByteBudget(BATCH_BYTES))
    }

    /// Takes `len` bytes if they fit in what is left.
    fn admit(&mut self, len: u64) -> bool {
        len <= self.0 && {
            self.0 -= len;
            true
        }
    }

    /// Takes `len` bytes whether they fit or not (a run's first message).
    fn spend(&mut self, len: u64) {
        self.0 = self.0.saturating_sub(len);
    }

    /// Whether nothing is left.
    fn is_spent(&self) -> bool {
        self.0 == 0
    }
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
    /// Our participant entry, `seg.participant(me)`, looked up once: the
    /// hot path counts its messages there without re-checking the index.
    entry: NonNull<ParticipantEntry>,
    born: Instant,
    /// Milliseconds since `born` of the last look for dead participants.
    last_recovery_ms: AtomicU64,
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
    /// One priority level and no `max_deliveries`: a get claims straight
    /// from the ring, with no delivery rule to apply (see `get.rs`).
    plain_gets: bool,
    /// The dead-letter queue's segment, opened at the first need (see
    /// `dead_letter.rs`); empty for a queue without one. Boxed: the hot
    /// fields of the handle stay as compact as without it.
    dead_letters: std::sync::OnceLock<Box<Segment>>,
}

// SAFETY: `entry` points into the mapping `seg` owns (shared memory that is
// only accessed through atomics, valid on any thread, `Segment` being Send
// and Sync); every other field is Send and Sync.
unsafe impl Send for Queue {}
// SAFETY: as above; `entry` is only ever read through `&ParticipantEntry`.
unsafe impl Sync for Queue {}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.seg.name)
            .field("path", &self.seg.path)
            .field("participant", &self.me)
            .finish()
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
            lease_timeout: None,
            max_deliveries: None,
            priorities: 1,
            dead_letter: None,
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
        let plain_gets = seg.geometry.priorities == 1 && seg.delivery.max_deliveries == 0;
        let entry = NonNull::from(seg.participant(me));
        let q = Queue {
            seg,
            me,
            entry,
            born: Instant::now(),
            last_recovery_ms: AtomicU64::new(0),
            last_requeue_scan_ms: AtomicU64::new(0),
            get_polling: Adapt::default(),
            put_polling: Adapt::default(),
            other_producers: AtomicBool::new(false),
            producers_scan_ms: AtomicU64::new(u64::MAX),
            plain_gets,
            dead_letters: std::sync::OnceLock::new(),
        };
        // A move lock left by the previous holder of our index (it looks
        // alive to everyone else now that the index is ours).
        q.resolve_moves(true);
        // Clean up after anyone who died since the queue was last used.
        q.recover_now();
        Ok(q)
    }

    #[inline]
    fn ring(&self) -> Ring<'_, Segment> {
        self.seg.ring()
    }

    /// This handle's participant entry.
    #[inline]
    fn entry(&self) -> &ParticipantEntry {
        // SAFETY: `entry` is `seg.participant(me)`, a reference into the
        // mapping, which `seg` keeps in place (it never moves) for as long
        // as `self` lives.
        unsafe { self.entry.as_ref() }
    }

    pub(crate) fn getters(&self) -> WaitPoint<'_> {
        let h = self.seg.header();
        WaitPoint {
            seq: &h.get_seq,
            waiters: &h.get_waiters,
            mine: &self.entry().waiting_get,
            done: &self.entry().gets,
            adapt: &self.get_polling,
            busy_sleep_flag: None,
        }
    }

    pub(crate) fn putters(&self) -> WaitPoint<'_> {
        let h = self.seg.header();
        WaitPoint {
            seq: &h.put_seq,
            waiters: &h.put_waiters,
            mine: &self.entry().waiting_put,
            done: &self.entry().puts,
            adapt: &self.put_polling,
            busy_sleep_flag: Some(&self.other_producers),
        }
    }

    /// Looks for dead participants and recovers what they held; wakes
    /// everyone if anything changed. Returns how many slots changed.
    fn recover_now(&self) -> u64 {
        let now = self.born.elapsed().as_millis() as u64;
        self.last_recovery_ms.store(now, Relaxed);
        let changed =
            liveness::recover(&self.seg, self.me).total() + delivery::expire_overdue(&self.seg);
        self.resolve_moves(false);
        if changed > 0 {
            self.getters().notify_all();
            self.putters().notify_all();
        }
        changed
    }

    /// Looks for participants that died and recovers what they held now,
    /// instead of waiting for the next blocked call to do it (which happens
    /// at most every 100 ms). Returns how many slots were recovered: messages
    /// put back for another getter plus half-written messages discarded.
    pub fn recover(&self) -> usize {
        count(self.recover_now())
    }

    /// Whether a getter with nothing to take should scan the whole ring for
    /// re-queued messages (at most every 100 ms). It has its own clock: the
    /// recovery clock is usually reset by the sleeper's `idle` step just
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

    /// Whether [`RECOVERY_INTERVAL`] has passed since the time in `last`
    /// (milliseconds since `born`; `u64::MAX`: never); if so, stores now.
    fn interval_due(&self, last: &AtomicU64) -> bool {
        let now = self.born.elapsed().as_millis() as u64;
        let then = last.load(Relaxed);
        let due =
            then == u64::MAX || now.saturating_sub(then) >= RECOVERY_INTERVAL.as_millis() as u64;
        if due {
            last.store(now, Relaxed);
        }
        due
    }

    /// Runs [`recover_now`](Self::recover_now) if [`RECOVERY_INTERVAL`]
    /// has passed since it last ran; returns whether it ran.
    pub(crate) fn recover_if_due(&self) -> bool {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_recovery_ms.load(Relaxed);
        if now.saturating_sub(last) >= RECOVERY_INTERVAL.as_millis() as u64 {
            self.recover_now();
            true
        } else {
            false
        }
    }

    /// The shared blocking skeleton of put, get and lease: `attempt` until it
    /// gives an answer or `deadline` passes (then `would_block` for
    /// [`Deadline::Now`], else `timed_out`), recovering now and then while
    /// asleep.
    #[inline]
    fn block<T, E>(
        &self,
        deadline: Deadline,
        wp: WaitPoint<'_>,
        attempt: impl FnMut() -> Option<Result<T, E>>,
        would_block: E,
        timed_out: E,
    ) -> Result<T, E> {
        let idle = || {
            self.recover_if_due();
        };
        match wait::wait_until(wp, deadline, attempt, idle) {
            Some(answer) => answer,
            None if deadline == Deadline::Now => Err(would_block),
            None => Err(timed_out),
        }
    }

    /// A copy of the message the next getter would take, without taking it
    /// (`None` when no message is waiting). Another getter may take it a
    /// moment later: use this to look, not to decide who processes what.
    pub fn peek(&self) -> Option<Vec<u8>> {
        stats::peek(&self.seg)
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
        count(self.seg.queued())
    }

    /// Whether no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every slot of every level is taken now.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity().saturating_mul(self.priorities())
    }

    /// Number of priority levels (1: no priorities); see [`Builder::priorities`].
    pub fn priorities(&self) -> usize {
        count(self.seg.geometry.priorities)
    }

    /// Number of messages each priority level holds (the whole queue,
    /// without priorities).
    pub fn capacity(&self) -> usize {
        count(self.seg.geometry.capacity)
    }

    /// Largest message in bytes.
    pub fn max_msg_size(&self) -> usize {
        count(self.seg.geometry.max_msg_size)
    }

    /// How long a lease lasts without `ack` or `renew` (`None`: while its
    /// holder lives); see [`Builder::lease_timeout`].
    pub fn lease_timeout(&self) -> Option<Duration> {
        match self.seg.delivery.lease_timeout_ns {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// How many times a message may be delivered (`None`: unlimited); see
    /// [`Builder::max_deliveries`].
    pub fn max_deliveries(&self) -> Option<usize> {
        match self.seg.delivery.max_deliveries {
            0 => None,
            n => Some(count(n)),
        }
    }

    /// The queue a message moves to after `max_deliveries` deliveries
    /// (`None`: it is dropped); see [`Builder::dead_letter`].
    pub fn dead_letter(&self) -> Option<&str> {
        self.seg.dead_letter.as_deref()
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.seg.header().closed.load(SeqCst) != 0
    }

    /// Marks end of stream: later puts fail with [`PutError::Closed`](crate::PutError::Closed), gets
    /// drain what is left and then fail with [`GetError::Closed`](crate::GetError::Closed), and every
    /// sleeper wakes up. Closing is permanent.
    pub fn close(&self) -> Result<(), CloseError> {
        let h = self.seg.header();
        // SYNC: SeqCst pairs with the producer's re-check of `closed` after
        // its claim CAS in `Ring::try_claim_write` and with the consumer's
        // drain scan in `Ring::is_drained`.
        if h.closed.swap(1, SeqCst) != 0 {
            return Err(CloseError::AlreadyClosed);
        }
        self.getters().notify_all();
        self.putters().notify_all();
        Ok(())
    }

    /// Everything `mq inspect` shows.
    pub fn stats(&self) -> crate::Stats {
        stats::collect(&self.seg, Some(self.me))
    }

    /// The state of every slot, for drawing the ring.
    pub fn slots(&self) -> Vec<crate::SlotView> {
        stats::slots(&self.seg)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // A future leaked with `mem::forget` may have left a watch on our
        // words with the waiter thread: take it back before the unmap.
        #[cfg(feature = "async")]
        {
            let h = self.seg.header();
            crate::wait::waiter::forget_words(&[&h.get_seq, &h.put_seq]);
        }
        // No thread of ours is moving now (`&mut self`): a lock naming us is stale.
        self.resolve_moves(true);
        if liveness::detach(&self.seg, self.me).total() > 0 {
            self.getters().notify_all();
            self.putters().notify_all();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::error::{AckError, Corruption, GetError, PutError};
    use crate::ring::{READING, pack};

    /// A queue in its own temporary directory, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(what: &str) -> Self {
            Scratch(std::env::temp_dir().join(format!("mq-unit-{what}-{}", std::process::id())))
        }
    }

    impl Scratch {
        /// A new queue `name` of `capacity` slots in this directory.
        fn queue(&self, name: &str, capacity: usize) -> Queue {
            self.queue_of(name, capacity, crate::DEFAULT_MAX_MSG_SIZE)
        }

        /// A new queue `name` of `capacity` slots of messages of up to
        /// `max` bytes.
        fn queue_of(&self, name: &str, capacity: usize, max: usize) -> Queue {
            Queue::builder(name)
                .dir(&self.0)
                .capacity(capacity)
                .max_msg_size(max)
                .create()
                .unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Rewrites the state of `slot` as a foreign process would: the
    /// reader's claim is gone, so its hand-over must fail.
    fn take_over(q: &Queue, slot: u64) {
        let s = q.seg.slot(slot).state.load(SeqCst);
        q.seg
            .slot(slot)
            .state
            .store(pack(crate::ring::lap_of(s), READING, q.me + 1), SeqCst);
    }

    /// The segment's masked position arithmetic (a power-of-two slot
    /// count) agrees with the division it replaces, and so does the
    /// division kept for other counts; a queue goes round several laps.
    #[test]
    fn slot_positions_match_the_division() {
        use crate::ring::Slots;
        let dir = Scratch::new("locate");
        for cap in [1usize, 3, 4, 1024] {
            let q = Queue::builder(&format!("l{cap}"))
                .dir(&dir.0)
                .capacity(cap)
                .create()
                .unwrap();
            let slots = q.seg.capacity();
            let far = [1 << 40, u64::MAX - 3, u64::MAX];
            for pos in (0..5 * slots).chain(far) {
                let expected = (pos % slots, (pos / slots) as u32);
                assert_eq!(
                    q.seg.locate(pos),
                    expected,
                    "capacity {cap}, position {pos}"
                );
            }
            for i in 0..3 * cap {
                q.try_put(&i.to_le_bytes()).unwrap();
                assert_eq!(q.try_get().unwrap(), i.to_le_bytes(), "capacity {cap}");
            }
        }
    }

    /// The segment's count of alike state words (four a step) agrees with
    /// the slot-by-slot count of the `Slots` trait, for every start, length
    /// and pattern of a few words that differ.
    #[test]
    fn the_four_a_step_count_agrees_with_the_slot_by_slot_count() {
        use crate::ring::Slots;
        let dir = Scratch::new("alike");
        let q = dir.queue("q", 16);
        let slots = q.seg.capacity();
        let saved: Vec<u64> = (0..slots).map(|i| q.seg.state(i).load(SeqCst)).collect();
        let (word, other) = (
            pack(7, crate::ring::READY, 0),
            pack(8, crate::ring::READY, 0),
        );
        for pattern in 0u32..1 << 9 {
            for i in 0..slots {
                let odd = i < 9 && pattern & (1 << i) != 0;
                q.seg.state(i).store(if odd { other } else { word }, SeqCst);
            }
            for idx in 0..slots {
                for n in 0..=slots - idx {
                    let one_by_one = (idx..idx + n)
                        .take_while(|&i| q.seg.state(i).load(SeqCst) == word)
                        .count() as u64;
                    assert_eq!(q.seg.count_alike(idx, n, word), one_by_one);
                }
            }
        }
        for (i, s) in saved.into_iter().enumerate() {
            q.seg.state(i as u64).store(s, SeqCst);
        }
    }

    /// A lease whose slot was taken over is not counted as got when acked.
    #[test]
    fn a_failed_ack_is_not_counted_as_got() {
        let dir = Scratch::new("ack-count");
        let q = dir.queue("q", 2);
        q.put(b"a").unwrap();
        let lease = q.get_lease().unwrap();
        take_over(&q, 0);
        assert_eq!(lease.ack(), Err(AckError::Lost { slot: 0 }));
        assert_eq!(q.stats().total_got, 0);
    }

    /// A sink that has another participant take over slot `.2` while a
    /// batch copies it.
    struct Thief<'a>(&'a Queue, crate::Batch, u64);
    impl get::Sink for Thief<'_> {
        unsafe fn take(
            &mut self,
            seg: &Segment,
            idx: u64,
            n: u64,
            then: impl FnMut(&AtomicU64) -> bool,
        ) -> segment::Appended {
            if (idx..idx + n).contains(&self.2) {
                take_over(self.0, self.2);
            }
            // SAFETY: passed on.
            unsafe { self.1.take(seg, idx, n, then) }
        }
        fn keep(&mut self, n: usize) {
            self.1.keep(n)
        }
        fn remove(&mut self, i: usize) {
            get::Sink::remove(&mut self.1, i)
        }
    }

    /// A batch get whose hand-over fails counts only what was handed over.
    #[test]
    fn a_failed_hand_over_in_a_batch_is_not_counted_as_got() {
        let dir = Scratch::new("batch-count");
        let q = dir.queue("q", 4);
        q.put_many(&[b"a", b"b", b"c"]).unwrap();
        let mut thief = Thief(&q, crate::Batch::new(), 1); // the second one is lost
        let taken = q.take_many(3, Deadline::Now, &mut thief).unwrap();
        assert_eq!(taken, 1, "the batch stops at the lost message");
        assert_eq!(thief.1.iter().collect::<Vec<_>>(), [b"a"]);
        assert_eq!(q.stats().total_got, 1);
        // A single get that finds its slot taken over counts nothing either
        // (it takes the third message, which went back for another consumer).
        let claim = q.claim_read(Deadline::Now).unwrap();
        assert_eq!(claim.idx, 2);
        take_over(&q, claim.idx);
        let handed_over = q.ring().release_read(claim, q.me);
        q.after_release(handed_over);
        assert!(!handed_over);
        assert_eq!(q.stats().total_got, 1);
        assert_eq!(
            get::taken_over(claim),
            GetError::Corrupted(Corruption::TakenOver {
                slot: claim.idx as usize
            })
        );
    }

    /// The first slot of a run taken in one claim (its record) is handed
    /// over last: when it turns out taken over, its message leaves the
    /// batch, and the messages behind it, handed over already, stay.
    #[test]
    fn a_batch_whose_record_is_taken_over_keeps_the_messages_behind_it() {
        let dir = Scratch::new("record-taken");
        let q = dir.queue("q", 8);
        q.put_many(&[b"a", b"b", b"c", b"d"]).unwrap();
        let mut thief = Thief(&q, crate::Batch::new(), 0);
        let taken = q.take_many(4, Deadline::Now, &mut thief).unwrap();
        assert_eq!(taken, 3);
        assert_eq!(thief.1.iter().collect::<Vec<_>>(), [b"b", b"c", b"d"]);
        assert_eq!(q.stats().total_got, 3);
    }

    /// Batches too small for a recorded run (`put::FEW`, 3 in tests) go
    /// message by message through the fast claims of `put` and `get`, with
    /// the batch contract: a prefix put, counted once; whatever is ready
    /// taken, the first waited for; a message taken over leaves the batch,
    /// one with a bad length is dropped and reported after the ones before
    /// it (or alone).
    #[test]
    fn a_batch_smaller_than_a_run_goes_message_by_message() {
        let dir = Scratch::new("few");
        let q = dir.queue("q", 4);
        q.put(b"0").unwrap();
        q.put(b"1").unwrap();
        q.put(b"2").unwrap();
        assert_eq!(q.try_put_many(&[b"a", b"b"]), Err((1, PutError::Full)));
        assert_eq!(q.stats().total_put, 4);
        assert_eq!(q.try_get_many(2).unwrap(), [b"0", b"1"]);
        assert_eq!(q.try_get_many(2).unwrap(), [b"2", b"a"]);
        assert_eq!(q.try_get_many(2), Err(GetError::Empty));
        assert_eq!(
            q.get_many_timeout(2, Duration::from_millis(20)),
            Err(GetError::Timeout)
        );
        assert_eq!(q.stats().total_got, 4);

        q.put_many(&[b"c", b"d"]).unwrap();
        let mut thief = Thief(&q, crate::Batch::new(), 1); // slot 1 holds "d"
        assert_eq!(q.take_many(2, Deadline::Now, &mut thief), Ok(1));
        assert_eq!(thief.1.iter().collect::<Vec<_>>(), [b"c"]);
        assert_eq!(q.stats().total_got, 5, "the stolen one is not counted");

        let q = dir.queue("bad", 4);
        let too_long = q.max_msg_size() as u64 + 1;
        q.put_many(&[b"e", b"f"]).unwrap();
        q.seg.slot(1).len.store(too_long, SeqCst);
        assert_eq!(q.try_get_many(2).unwrap(), [b"e"], "the ones before stay");
        assert_eq!(q.try_get_many(2), Err(GetError::Empty), "dropped");
        q.put(b"g").unwrap();
        q.seg.slot(2).len.store(too_long, SeqCst);
        assert!(matches!(
            q.try_get_many(2),
            Err(GetError::Corrupted(Corruption::OversizedLength {
                slot: 2,
                ..
            }))
        ));
        assert_eq!(q.stats().total_got, 3, "a dropped message is handed over");
    }

    /// A recorded run whose first message (its record) has a bad length:
    /// that message is dropped by the record's hand-over and reported, and
    /// the messages behind it go back for the next get, whole.
    #[test]
    fn a_bad_length_in_a_runs_record_drops_that_message_alone() {
        let dir = Scratch::new("record-bad");
        let q = dir.queue("q", 8);
        q.put_many(&[b"a", b"b", b"c", b"d"]).unwrap();
        q.seg.slot(0).len.store(q.max_msg_size() as u64 + 1, SeqCst);
        let mut batch = crate::Batch::new();
        assert!(matches!(
            q.try_get_many_into(&mut batch, 4),
            Err(GetError::Corrupted(Corruption::OversizedLength {
                slot: 0,
                ..
            }))
        ));
        assert!(batch.is_empty());
        // Re-queued, they come back in no set order (a redelivery looks
        // first where the last re-queue was).
        let mut back = q.try_get_many(4).unwrap();
        back.sort();
        assert_eq!(back, [b"b", b"c", b"d"]);
        assert_eq!(q.try_get_many(4), Err(GetError::Empty));
        assert_eq!(q.stats().total_got, 4, "the dropped one was handed over");
        let run_words = (0..8).map(|i| q.seg.slot(i).state.load(SeqCst));
        assert!(
            run_words
                .clone()
                .all(|w| crate::ring::kind_of(w) == crate::ring::EMPTY)
        );
    }

    /// A message with a bad length behind a recorded run's record is
    /// dropped by its hand-over and reported after the ones before it; the
    /// ones after it go back for the next get.
    #[test]
    fn a_bad_length_behind_a_record_drops_that_message_alone() {
        let dir = Scratch::new("behind-bad");
        let q = dir.queue("q", 8);
        q.put_many(&[b"a", b"b", b"c", b"d"]).unwrap();
        q.seg.slot(2).len.store(q.max_msg_size() as u64 + 1, SeqCst);
        let mut batch = crate::Batch::new();
        assert_eq!(q.try_get_many_into(&mut batch, 4), Ok(2));
        assert_eq!(batch.iter().collect::<Vec<_>>(), [b"a", b"b"]);
        assert_eq!(q.try_get_many(4).unwrap(), [b"d"]);
        assert_eq!(q.stats().total_got, 4, "the dropped one was handed over");
    }

    /// The same on a queue of messages of up to 64 bytes, whose batch
    /// loops copy by AVX2 moves where the CPU has them (`segment/copy.rs`)
    /// and test each length once: a bad length at any place of a run of
    /// eight (the record, or a slot behind it), of any size past the
    /// largest, is dropped alone and reported, and the messages around it
    /// arrive whole.
    #[test]
    fn a_bad_length_anywhere_in_a_run_of_small_copies_drops_that_message_alone() {
        let dir = Scratch::new("small-bad");
        let q = dir.queue_of("q", 16, 64);
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 20 + 6 * i as usize]).collect();
        let mut batch = crate::Batch::with_capacity(8, 8 * 64);
        let mut put = 0u64;
        for bad in [65, 96, 1 << 40, u64::MAX] {
            for at in 0..8 {
                q.put_many(&msgs).unwrap();
                // The run starts where the last one ended.
                q.seg.slot((put + at) % 16).len.store(bad, SeqCst);
                put += 8;
                let got = q.try_get_many_into(&mut batch, 8);
                let mut rest = Vec::new();
                if at == 0 {
                    // The record: reported, the rest re-queued.
                    assert!(
                        matches!(
                            got,
                            Err(GetError::Corrupted(Corruption::OversizedLength { len, .. })) if len == bad
                        ),
                        "bad {bad}: {got:?}"
                    );
                } else {
                    assert_eq!(got, Ok(at as usize), "bad {bad} at {at}");
                    assert!(batch.iter().eq(msgs[..at as usize].iter().map(|m| &m[..])));
                }
                while let Ok(m) = q.try_get() {
                    rest.push(m);
                }
                rest.sort();
                let mut want: Vec<Vec<u8>> = msgs[at as usize + 1..].to_vec();
                want.sort();
                assert_eq!(rest, want, "bad {bad} at {at}");
            }
        }
        assert_eq!(
            q.stats().total_got as u64,
            put,
            "every dropped one was handed over"
        );
    }

    /// Recorded runs that start anywhere in the ring, the record at its
    /// last slot or the run crossing its end, carry every message in order.
    #[test]
    fn recorded_runs_carry_their_messages_across_the_ring_end() {
        let dir = Scratch::new("wrap");
        let q = dir.queue("q", 4);
        let mut batch = crate::Batch::new();
        for start in 0..8u8 {
            let msgs: Vec<[u8; 2]> = (0..4).map(|i| [start, i]).collect();
            q.put_many(&msgs).unwrap();
            assert_eq!(q.try_get_many_into(&mut batch, 4), Ok(4), "start {start}");
            assert!(
                batch.iter().eq(msgs.iter().map(|m| &m[..])),
                "start {start}"
            );
            // Move both cursors one slot on.
            q.put(b"x").unwrap();
            assert_eq!(q.try_get().unwrap(), b"x");
        }
        assert_eq!(q.stats().total_got, 8 * 5);
    }

    /// `slots` (what `mq inspect` shows) gives the slots a recorded run
    /// holds behind its record to the record's owner: a write run's being
    /// written, a read run's not handed over yet; what the run handed over
    /// is free again.
    #[test]
    fn slots_behind_a_record_show_as_its_owners() {
        use crate::SlotView::{Empty, Reading, Writing};
        let dir = Scratch::new("record-view");
        let q = dir.queue("q", 8);
        let me = usize::from(q.me);
        q.put_many(&[b"a", b"b", b"c", b"d"]).unwrap();
        let read = q.ring().try_claim_read_run(q.me, 4).unwrap();
        assert!(read.recorded);
        let write = q.ring().try_claim_write_run(q.me, 4).unwrap();
        assert!(write.recorded);
        assert_eq!(q.slots(), [[Reading(me); 4], [Writing(me); 4]].concat());
        // The read run hands its second slot over: free, the rest still ours.
        let behind = q.ring().read_spans(read).nth(1).unwrap();
        assert!(q.ring().hand_over(behind, q.me).slot(&q.seg.slot(1).state));
        assert_eq!(
            q.slots()[..4],
            [Reading(me), Empty, Reading(me), Reading(me)]
        );
    }

    #[test]
    fn try_put_many_puts_what_fits_and_put_many_timeout_times_out() {
        let dir = Scratch::new("put-many-forms");
        let q = dir.queue("q", 3);
        assert_eq!(q.try_put_many(&[b"1", b"2"]), Ok(()));
        assert_eq!(
            q.try_put_many(&[b"3", b"4", b"5"]),
            Err((1, PutError::Full))
        );
        assert_eq!(
            q.put_many_timeout(&[b"6"], Duration::from_millis(20)),
            Err((0, PutError::Timeout))
        );
        assert_eq!(q.stats().total_put, 3);
        assert_eq!(
            q.get_many(10).unwrap(),
            vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
        assert_eq!(
            q.put_many_timeout(&[b"7", b"8"], Duration::from_secs(5)),
            Ok(())
        );
        assert_eq!(q.len(), 2);
        let too_big = vec![0u8; q.max_msg_size() + 1];
        assert!(matches!(
            q.try_put_many(&[&too_big[..]]),
            Err((0, PutError::TooLarge { .. }))
        ));
    }

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
