//! Who is attached, who is alive, and cleaning up after the dead.
//!
//! Liveness comes from the kernel, not from pids (which are reused): entry `i`
//! of the participant table belongs to whoever holds an open-file-description
//! record lock on byte `1 + i` of the segment file. The kernel drops that lock
//! when the holder's descriptor goes away, whatever kills the process.
//!
//! A slot whose owner field names entry `i` is only ever repaired by a process
//! that holds entry `i`'s lock *and* found the entry still marked in use: the
//! lock makes "the owner is dead" and "nobody reuses the entry meanwhile" one
//! fact, so a repair can never hit a slot of a live participant.

use std::sync::atomic::{AtomicU32, Ordering::*};

use crate::error::OpenError;
use crate::layout::{ENTRY_FREE, ENTRY_IN_USE};
use crate::ring::{Repair, Ring};
use crate::segment::Segment;
use crate::sys;

/// The file byte whose lock stands for participant `i`.
fn lock_byte(i: u16) -> u64 {
    1 + u64::from(i)
}

fn ring_of(seg: &Segment) -> Ring<'_, Segment> {
    crate::queue::ring(seg)
}

/// Takes a free (or dead) participant entry for this handle and returns its index.
pub(crate) fn attach(seg: &Segment) -> Result<u16, OpenError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    for i in 0..seg.geometry.max_participants as u16 {
        let locked =
            sys::try_lock_byte(&seg.file, lock_byte(i)).map_err(|source| OpenError::Io {
                action: "lock a participant entry of",
                path: seg.path.clone(),
                source,
            })?;
        if !locked {
            continue;
        }
        let entry = seg.participant(i);
        if entry.state.load(Acquire) == ENTRY_IN_USE {
            // Its previous holder died: repair before reusing the index.
            retire(seg, i);
        }
        entry.pid.store(u64::from(sys::current_pid()), Relaxed);
        entry.attached_unix_ns.store(now, Relaxed);
        entry.puts.store(0, Relaxed);
        entry.gets.store(0, Relaxed);
        entry.waiting_put.store(0, Relaxed);
        entry.waiting_get.store(0, Relaxed);
        entry.state.store(ENTRY_IN_USE, Release);
        return Ok(i);
    }
    Err(OpenError::TooManyParticipants {
        name: seg.name.clone(),
        limit: seg.geometry.max_participants,
    })
}

/// Gives entry `me` back: anything it still holds is repaired first.
pub(crate) fn detach(seg: &Segment, me: u16) -> Repair {
    let repair = retire(seg, me);
    let _ = sys::unlock_byte(&seg.file, lock_byte(me));
    repair
}

/// Whether participant `i` is alive, as seen from `me`.
pub(crate) fn is_alive(seg: &Segment, me: u16, i: u16) -> bool {
    i == me || sys::byte_is_locked(&seg.file, lock_byte(i)).unwrap_or(true)
}

/// Finds participants that died and repairs what they held. Returns the total
/// repaired; callers wake sleepers when anything changed.
pub(crate) fn reap(seg: &Segment, me: u16) -> Repair {
    let mut total = Repair::default();
    for i in 0..seg.geometry.max_participants as u16 {
        if i == me || seg.participant(i).state.load(Acquire) != ENTRY_IN_USE {
            continue;
        }
        if is_alive(seg, me, i) {
            continue;
        }
        // Taking the lock makes us the only cleaner and keeps the entry
        // from being reused until we are done.
        if let Ok(true) = sys::try_lock_byte(&seg.file, lock_byte(i)) {
            if seg.participant(i).state.load(Acquire) == ENTRY_IN_USE {
                let r = retire(seg, i);
                total.discarded += r.discarded;
                total.requeued += r.requeued;
            }
            let _ = sys::unlock_byte(&seg.file, lock_byte(i));
        }
    }
    total
}

/// Repairs entry `i`'s slots, folds its counters into the header and frees
/// the entry. The caller holds entry `i`'s lock.
fn retire(seg: &Segment, i: u16) -> Repair {
    let h = seg.header();
    let entry = seg.participant(i);
    let repair = ring_of(seg).repair(i);
    h.discarded_partial.fetch_add(repair.discarded, Relaxed);
    h.redelivered.fetch_add(repair.requeued, Relaxed);
    h.retired_puts
        .fetch_add(entry.puts.swap(0, Relaxed), Relaxed);
    h.retired_gets
        .fetch_add(entry.gets.swap(0, Relaxed), Relaxed);
    // A participant killed while asleep is still counted as a waiter.
    take_away(&h.get_waiters, entry.waiting_get.swap(0, Relaxed));
    take_away(&h.put_waiters, entry.waiting_put.swap(0, Relaxed));
    entry.state.store(ENTRY_FREE, Release);
    repair
}

fn take_away(counter: &AtomicU32, n: u32) {
    if n != 0 {
        let _ = counter.fetch_update(SeqCst, SeqCst, |c| Some(c.saturating_sub(n)));
    }
}
