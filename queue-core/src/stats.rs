//! Snapshots of a queue for `mq inspect`, `mq ls` and `mq watch`.

use std::path::PathBuf;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    pub segment_size: u64,
    /// Number of slots.
    pub capacity: u64,
    /// Largest message in bytes.
    pub max_msg_size: u64,
    /// Messages waiting now.
    pub len: u64,
    /// Next position to read (messages ever taken or skipped from the front).
    pub head: u64,
    /// Next position to write (slots ever claimed by producers).
    pub tail: u64,
    /// Messages put, by live and departed participants.
    pub total_put: u64,
    /// Messages taken (plain gets and acked leases).
    pub total_got: u64,
    /// Producers blocked in put right now.
    pub producers_waiting: u32,
    /// Consumers blocked in get right now.
    pub consumers_waiting: u32,
    /// Messages put back for another consumer after a reader died or a lease was dropped.
    pub redelivered: u64,
    /// Half-written messages of dead producers that were discarded.
    pub discarded_partial: u64,
    /// Slots held by leases or readers right now.
    pub in_flight: u64,
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
    pub max_participants: u64,
    /// Attached participants (including the handle that asked).
    pub participants: Vec<Participant>,
}

/// One attached handle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Participant {
    /// Index in the participant table (what slot owners refer to).
    pub index: u16,
    /// Process id when it attached.
    pub pid: u32,
    /// Whether it still holds its kernel lock (false: crashed, awaiting cleanup).
    pub alive: bool,
    /// Whether this is the handle `stats()` was called on.
    pub is_self: bool,
    /// When it attached.
    pub attached: SystemTime,
    /// Messages it put.
    pub puts: u64,
    /// Messages it took.
    pub gets: u64,
    /// Its threads blocked in put.
    pub waiting_put: u32,
    /// Its threads blocked in get.
    pub waiting_get: u32,
}

/// The state of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotView {
    /// Free.
    Empty,
    /// A producer (participant index) is writing a message.
    Writing(u16),
    /// A message waits.
    Ready,
    /// A consumer (participant index) is reading, or holds a lease.
    Reading(u16),
    /// A message waits to be delivered again.
    Requeued,
    /// A state the protocol never writes.
    Invalid(u64),
}

fn time_of(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

pub(crate) fn slots(seg: &Segment) -> Vec<SlotView> {
    (0..seg.capacity())
        .map(|i| {
            let s = seg.state(i).load(Acquire);
            match ring::kind_of(s) {
                ring::EMPTY => SlotView::Empty,
                ring::WRITING => SlotView::Writing(ring::owner_of(s)),
                ring::READY => SlotView::Ready,
                ring::READING => SlotView::Reading(ring::owner_of(s)),
                ring::REQUEUED => SlotView::Requeued,
                _ => SlotView::Invalid(s),
            }
        })
        .collect()
}

pub(crate) fn collect(seg: &Segment, me: u16) -> Stats {
    let h = seg.header();
    let mut total_put = h.retired_puts.load(Relaxed);
    let mut total_got = h.retired_gets.load(Relaxed);
    let mut participants = Vec::new();
    for i in 0..seg.geometry.max_participants as u16 {
        let e = seg.participant(i);
        if e.state.load(Acquire) != ENTRY_IN_USE {
            continue;
        }
        let p = Participant {
            index: i,
            pid: e.pid.load(Relaxed) as u32,
            alive: liveness::is_alive(seg, me, i),
            is_self: i == me,
            attached: time_of(e.attached_unix_ns.load(Relaxed)),
            puts: e.puts.load(Relaxed),
            gets: e.gets.load(Relaxed),
            waiting_put: e.waiting_put.load(Relaxed),
            waiting_get: e.waiting_get.load(Relaxed),
        };
        // Saturating: the counters are shared memory, any value is possible.
        total_put = total_put.saturating_add(p.puts);
        total_got = total_got.saturating_add(p.gets);
        participants.push(p);
    }
    let in_flight = slots(seg)
        .iter()
        .filter(|s| matches!(s, SlotView::Reading(_)))
        .count() as u64;
    let (mode, owner_uid) = seg.mode_and_owner();
    Stats {
        name: seg.name.clone(),
        path: seg.path.clone(),
        segment_size: seg.geometry.total_size,
        capacity: seg.geometry.capacity,
        max_msg_size: seg.geometry.max_msg_size,
        len: crate::queue::ring(seg).len(),
        head: h.head.load(Relaxed),
        tail: h.tail.load(Relaxed),
        total_put,
        total_got,
        producers_waiting: h.put_waiters.load(Relaxed),
        consumers_waiting: h.get_waiters.load(Relaxed),
        redelivered: h.redelivered.load(Relaxed),
        discarded_partial: h.discarded_partial.load(Relaxed),
        in_flight,
        closed: h.closed.load(Relaxed) != 0,
        created: time_of(h.created_unix_ns),
        creator_pid: h.creator_pid as u32,
        mode,
        owner_uid,
        max_participants: seg.geometry.max_participants,
        participants,
    }
}
