//! Snapshots of a queue for `mq inspect`, `mq ls` and `mq watch`: one
//! [`collect`] and one [`slots`] for both a participating [`Queue`](crate::Queue)
//! and a read-only [`Observer`](crate::Observer). Loads only, never a store:
//! safe on a read-only mapping.
//!
//! Sizes and counts are `usize` here, as everywhere in the public API; the
//! segment stores fixed-width `u64`s, converted with [`count`].

use std::path::PathBuf;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::dead_letter::DeadLetter;
use crate::delivery;
use crate::layout::ENTRY_IN_USE;
use crate::liveness;
use crate::ring::{self, Slots};
use crate::segment::Segment;

/// Everything known about a queue at one moment (fields are read one by one,
/// so under load they are not an atomic snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Queue name.
    pub name: String,
    /// Segment file.
    pub path: PathBuf,
    /// Segment size in bytes.
    pub segment_size: usize,
    /// Number of slots of each priority level (the queue holds
    /// `capacity * priorities` messages in all).
    pub capacity: usize,
    /// Number of priority levels (1: no priorities).
    pub priorities: usize,
    /// Largest message in bytes.
    pub max_msg_size: usize,
    /// Messages waiting now.
    pub len: usize,
    /// Next position to read (messages ever taken or skipped from the front).
    pub head: usize,
    /// Next position to write (slots ever claimed by producers).
    pub tail: usize,
    /// Messages put, by live and departed participants.
    pub total_put: usize,
    /// Messages taken (plain gets and acked leases).
    pub total_got: usize,
    /// Producers blocked in put right now.
    pub producers_waiting: usize,
    /// Consumers blocked in get right now.
    pub consumers_waiting: usize,
    /// Messages put back for another consumer after a reader died or a lease was dropped.
    pub redelivered: usize,
    /// Half-written messages of dead producers that were discarded.
    pub discarded_partial: usize,
    /// Slots held by leases or readers right now.
    pub in_flight: usize,
    /// Leases put back because their deadline passed (also in `redelivered`).
    pub expired: usize,
    /// Messages dropped after `max_deliveries` deliveries (poison messages
    /// of a queue without a dead-letter queue).
    pub dropped_poison: usize,
    /// Messages moved to the dead-letter queue after `max_deliveries`.
    pub dead_lettered: usize,
    /// This queue's dead-letter queue, if it has one.
    pub dead_letter: Option<String>,
    /// If this is a dead-letter queue: the queue whose dead letters it holds.
    pub dead_letters_of: Option<String>,
    /// The queue's lease timeout (`None`: a lease lasts while its holder lives).
    pub lease_timeout: Option<Duration>,
    /// Deliveries a message may have (`None`: unlimited).
    pub max_deliveries: Option<usize>,
    /// Every slot held by a reader or a lease now, with its deadline.
    pub leases: Vec<LeaseView>,
    /// The cursors of every priority level, level 0 first (one entry
    /// without priorities; its head and tail are `head` and `tail`).
    pub levels: Vec<Level>,
    /// Whether the queue was closed.
    pub closed: bool,
    /// Creation time.
    pub created: SystemTime,
    /// Pid of the creator (it may have exited).
    pub creator_pid: u32,
    /// File permission bits.
    pub mode: u32,
    /// Owner of the segment file.
    pub owner_uid: u32,
    /// Size of the participant table.
    pub max_participants: usize,
    /// Attached participants (including the handle that asked, unless an
    /// observer asked).
    pub participants: Vec<Participant>,
}

/// One priority level's ring: slots `level * capacity .. (level + 1) * capacity`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Level {
    /// Messages waiting in this level now.
    pub len: usize,
    /// Next position to read in this level.
    pub head: usize,
    /// Next position to write in this level.
    pub tail: usize,
}

/// One attached handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Participant {
    /// Index in the participant table (what slot owners refer to).
    pub index: usize,
    /// Process id when it attached.
    pub pid: u32,
    /// Whether it still holds its kernel lock (false: crashed, awaiting cleanup).
    pub alive: bool,
    /// Whether this is the handle `stats()` was called on (always false
    /// for an [`Observer`](crate::Observer), which is no participant).
    pub is_self: bool,
    /// When it attached.
    pub attached: SystemTime,
    /// Messages it put.
    pub puts: usize,
    /// Messages it took.
    pub gets: usize,
    /// Its threads blocked in put.
    pub waiting_put: usize,
    /// Its threads blocked in get.
    pub waiting_get: usize,
}

/// The state of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotView {
    /// Free.
    Empty,
    /// A producer (participant index) is writing a message.
    Writing(usize),
    /// A message waits.
    Ready,
    /// A consumer (participant index) is reading, or holds a lease.
    Reading(usize),
    /// A message waits to be delivered again.
    Requeued,
    /// A state the protocol never writes (the raw state word).
    Invalid(u64),
}

/// A size or count stored as `u64` in the segment, as the public API's
/// `usize` (saturating: a hostile segment may hold anything).
pub(crate) fn count(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn time_of(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// The state of every slot.
pub(crate) fn slots(seg: &Segment) -> Vec<SlotView> {
    let words: Vec<u64> = (0..seg.capacity())
        .map(|i| seg.state(i).load(Acquire))
        .collect();
    let mut views: Vec<SlotView> = words
        .iter()
        .map(|&s| match ring::kind_of(s) {
            ring::EMPTY => SlotView::Empty,
            ring::WRITING | ring::WRITE_RUN => SlotView::Writing(usize::from(ring::owner_of(s))),
            ring::READY => SlotView::Ready,
            ring::READING | ring::READ_RUN => SlotView::Reading(usize::from(ring::owner_of(s))),
            ring::REQUEUED => SlotView::Requeued,
            _ => SlotView::Invalid(s),
        })
        .collect();
    // The slots a recorded run holds behind its record keep their EMPTY or
    // READY words: they are its owner's all the same.
    for (i, &s) in (0..).zip(&words) {
        if matches!(ring::kind_of(s), ring::WRITE_RUN | ring::READ_RUN) {
            let record = views[i as usize];
            for at in seg.ring_of(i).held_behind(i, s) {
                views[at as usize] = record;
            }
        }
    }
    views
}

/// Everything known about the queue, as seen by participant `me` (`None`:
/// an observer).
pub(crate) fn collect(seg: &Segment, me: Option<u16>) -> Stats {
    let h = seg.header();
    let mut total_put = count(h.retired_puts.load(Relaxed));
    let mut total_got = count(h.retired_gets.load(Relaxed));
    let mut participants = Vec::new();
    for i in 0..seg.geometry.max_participants as u16 {
        let e = seg.participant(i);
        if e.state.load(Acquire) != ENTRY_IN_USE {
            continue;
        }
        let p = Participant {
            index: usize::from(i),
            pid: e.pid.load(Relaxed) as u32,
            alive: liveness::is_alive(seg, me, i),
            is_self: me == Some(i),
            attached: time_of(e.attached_unix_ns.load(Relaxed)),
            puts: count(e.puts.load(Relaxed)),
            gets: count(e.gets.load(Relaxed)),
            waiting_put: e.waiting_put.load(Relaxed) as usize,
            waiting_get: e.waiting_get.load(Relaxed) as usize,
        };
        // Saturating: the counters are shared memory, any value is possible.
        total_put = total_put.saturating_add(p.puts);
        total_got = total_got.saturating_add(p.gets);
        participants.push(p);
    }
    let leases = leases(seg);
    let in_flight = leases.len();
    let owner = seg.file_owner();
    Stats {
        name: seg.name.clone(),
        path: seg.path.clone(),
        segment_size: count(seg.geometry.total_size),
        capacity: count(seg.geometry.capacity),
        priorities: count(seg.geometry.priorities),
        max_msg_size: count(seg.geometry.max_msg_size),
        len: count(seg.queued()),
        head: count(h.head.load(Relaxed)),
        tail: count(h.tail.load(Relaxed)),
        total_put,
        total_got,
        producers_waiting: h.put_waiters.load(Relaxed) as usize,
        consumers_waiting: h.get_waiters.load(Relaxed) as usize,
        redelivered: count(h.redelivered.load(Relaxed)),
        discarded_partial: count(h.discarded_partial.load(Relaxed)),
        in_flight,
        expired: count(h.expired.load(Relaxed)),
        dropped_poison: count(h.dropped_poison.load(Relaxed)),
        dead_lettered: count(h.dead_lettered.load(Relaxed)),
        dead_letter: seg.dead_letter.clone(),
        dead_letters_of: crate::dead_letter::dead_letters_of(seg),
        lease_timeout: match seg.delivery.lease_timeout_ns {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        },
        max_deliveries: match seg.delivery.max_deliveries {
            0 => None,
            n => Some(count(n)),
        },
        leases,
        levels: (0..seg.geometry.priorities)
            .map(|l| {
                let ring = seg.level_ring(l);
                let (head, tail) = ring.cursors();
                Level {
                    len: count(ring.len()),
                    head: count(head),
                    tail: count(tail),
                }
            })
            .collect(),
        closed: h.closed.load(Relaxed) != 0,
        created: time_of(h.created_unix_ns.load(Relaxed)),
        creator_pid: h.creator_pid.load(Relaxed) as u32,
        mode: owner.mode,
        owner_uid: owner.uid,
        max_participants: count(seg.geometry.max_participants),
        participants,
    }
}

/// A copy of the message a getter would take next, without taking it: loads
/// and a validated copy only (see `Ring::peek` and `Segment::peek_payload`).
pub(crate) fn peek(seg: &Segment) -> Option<Vec<u8>> {
    peek_with_origin(seg).map(|(msg, _)| msg)
}

/// [`peek`], with where the message came from if it is a dead letter (read
/// inside the same validated look).
pub(crate) fn peek_with_origin(seg: &Segment) -> Option<(Vec<u8>, Option<DeadLetter>)> {
    let mut buf = Vec::new();
    for _ in 0..100 {
        // The highest level with a message is the one a getter serves.
        let (ring, found) = (0..seg.geometry.priorities)
            .rev()
            .map(|l| seg.level_ring(l))
            .find_map(|r| r.peek().map(|f| (r, f)))?;
        let claim = ring::Claim {
            idx: found.idx,
            lap: ring::lap_of(found.seen),
            generation: 0,
        };
        let origin = crate::dead_letter::origin(seg, claim);
        if seg.peek_payload(found.idx, &mut buf) && ring.unchanged(found.idx, found.seen) {
            return Some((buf, origin));
        }
    }
    None
}

/// A lease seen in a snapshot, for `mq inspect` / `mq watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseView {
    /// Slot index.
    pub slot: usize,
    /// Participant index of the holder.
    pub owner: usize,
    /// Deliveries of the message so far (this one included).
    pub deliveries: usize,
    /// Milliseconds until the deadline (negative: overdue, about to be put
    /// back); `None` when the queue has no lease timeout, or for a plain get
    /// in progress.
    pub expires_in_ms: Option<i64>,
}

/// Every slot held by a reader or a lease right now (loads only).
pub(crate) fn leases(seg: &Segment) -> Vec<LeaseView> {
    let now = crate::sys::monotonic_ms();
    (0..seg.capacity())
        .filter_map(|idx| {
            let s = seg.state(idx).load(Acquire);
            if ring::kind_of(s) != ring::READING {
                return None;
            }
            let meta = seg.meta(idx);
            let expires_in_ms = (seg.delivery.lease_timeout_ns != 0
                && meta.lease_word.load(Acquire) == s)
                .then(|| {
                    let d = meta.lease_deadline_ms.load(Relaxed);
                    (d as i128 - now as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
                });
            let recorded = meta.deliveries.load(Acquire);
            Some(LeaseView {
                slot: idx as usize,
                owner: usize::from(ring::owner_of(s)),
                deliveries: count(delivery::rebuild(
                    recorded,
                    ring::lap_of(s),
                    ring::gen_of(s),
                )),
                expires_in_ms,
            })
        })
        .collect()
}
