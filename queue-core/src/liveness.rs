//! Who is attached, who is alive, and cleaning up after the dead.
//!
//! Liveness comes from the kernel, not from pids (which are reused): entry `i`
//! of the participant table belongs to whoever holds an open-file-description
//! record lock on byte `1 + i` of the segment file. The kernel drops that lock
//! when the holder's descriptor goes away, whatever kills the process.
//!
//! A slot whose owner field names entry `i` is only ever recovered by a process
//! that holds entry `i`'s lock *and* found the entry still marked in use: the
//! lock makes "the owner is dead" and "nobody reuses the entry meanwhile" one
//! fact, so a recovery can never hit a slot of a live participant.

use std::sync::atomic::{AtomicU32, Ordering::*};

use crate::error::OpenError;
use crate::layout::{ENTRY_FREE, ENTRY_IN_USE};
use crate::ring::moved::MOVER;
use crate::ring::{READ_RUN, READING, Recovered, WRITE_RUN, WRITING};
use crate::segment::Segment;
use crate::sys;

/// The file byte whose lock stands for participant `i`.
fn lock_byte(i: u16) -> u64 {
    1 + u64::from(i)
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
            // Its previous holder died: recover before reusing the index.
            recover_entry(seg, i);
        } else {
            // Free: nobody following the protocol left a slot under this
            // index, but a damaged segment may have. Once the entry is ours
            // no one else would recover such a slot (it names a live owner),
            // so clear it now, while we hold the lock and own nothing yet.
            recover_slots(seg, i);
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
        limit: seg.geometry.max_participants as usize, // at most MAX_PARTICIPANTS_LIMIT
    })
}

/// Gives entry `me` back: anything it still holds is recovered first.
pub(crate) fn detach(seg: &Segment, me: u16) -> Recovered {
    let done = recover_entry(seg, me);
    let _ = sys::unlock_byte(&seg.file, lock_byte(me));
    done
}

/// Whether participant `i` is alive, as seen from `me` (`None`: a read-only
/// observer, which holds no entry). Asks the kernel with `F_OFD_GETLK`, which
/// needs no write access, so it works on an observer's `O_RDONLY` descriptor.
pub(crate) fn is_alive(seg: &Segment, me: Option<u16>, i: u16) -> bool {
    me == Some(i) || sys::byte_is_locked(&seg.file, lock_byte(i)).unwrap_or(true)
}

/// Finds participants that died and recovers what they held, then slots held
/// by owners that are not attached at all (see [`recover_orphans`]). Returns the
/// total recovered; callers wake sleepers when anything changed.
pub(crate) fn recover(seg: &Segment, me: u16) -> Recovered {
    let mut total = recover_dead(seg, me);
    total += recover_orphans(seg, me);
    total
}

/// Whether another attached participant has put messages: producers that
/// are not alone sleep at once on a contended core (see `wait.rs`).
pub(crate) fn other_producers(seg: &Segment, me: u16) -> bool {
    (0..seg.geometry.max_participants as u16).any(|i| {
        let p = seg.participant(i);
        i != me && p.state.load(Acquire) == ENTRY_IN_USE && p.puts.load(Relaxed) > 0
    })
}

fn recover_dead(seg: &Segment, me: u16) -> Recovered {
    let mut total = Recovered::default();
    for i in 0..seg.geometry.max_participants as u16 {
        if i == me || seg.participant(i).state.load(Acquire) != ENTRY_IN_USE {
            continue;
        }
        if is_alive(seg, Some(me), i) {
            continue;
        }
        // Taking the lock makes us the only cleaner and keeps the entry
        // from being reused until we are done.
        if let Ok(true) = sys::try_lock_byte(&seg.file, lock_byte(i)) {
            if seg.participant(i).state.load(Acquire) == ENTRY_IN_USE {
                total += recover_entry(seg, i);
            }
            let _ = sys::unlock_byte(&seg.file, lock_byte(i));
        }
    }
    total
}

/// One bit per possible owner index (the owner field of a slot is 16 bits):
/// a fixed 8 KiB, whatever the segment says.
struct OwnerSet([u64; 1 << 10]);

impl OwnerSet {
    fn new() -> Self {
        OwnerSet([0; 1 << 10])
    }
    fn insert(&mut self, i: u16) {
        self.0[usize::from(i >> 6)] |= 1 << (i & 63);
    }
    fn contains(&self, i: u16) -> bool {
        self.0[usize::from(i >> 6)] & (1 << (i & 63)) != 0
    }
    fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|&i| self.contains(i))
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
}

/// Recovers slots left WRITING, READING or a run by an owner index that no attached
/// participant has: an entry marked free (or holding garbage), or an index
/// outside the participant table. The protocol never leaves such slots - a
/// participant recovers its own before it frees its entry - but a damaged or
/// hostile segment can, and without this a writer-less WRITING slot at the
/// head would block getters forever, and reader-less READING slots would
/// keep the queue full for good.
///
/// An entry that is not in use may be being attached right now: `attach`
/// takes the entry's lock first and marks it in use after. So the recovery
/// takes each suspect entry's lock and re-reads the entry under it; holding
/// the lock keeps anyone from attaching there until the recovery is done, so no
/// live participant can own a slot under that index meanwhile. All suspects
/// are locked first and the ring is then recovered in one pass (so a segment
/// full of distinct bogus owners costs one scan, not one per owner).
fn recover_orphans(seg: &Segment, me: u16) -> Recovered {
    let table = seg.geometry.max_participants;
    let mut suspects = OwnerSet::new();
    let mut moves = false;
    for idx in 0..seg.geometry.slots {
        let s = crate::ring::Slots::state(seg, idx).load(Relaxed);
        if !matches!(
            crate::ring::kind_of(s),
            WRITING | READING | READ_RUN | WRITE_RUN
        ) {
            continue;
        }
        let owner = crate::ring::owner_of(s);
        // A dead letter being copied in by a mover of the source queue:
        // only the source's move protocol may touch it (`ring/moved.rs`),
        // unless no move is in progress (below). Movers only ever hold
        // WRITING words: any other word naming MOVER is damage, recovered
        // as any orphan's.
        let moving = owner == MOVER && crate::ring::kind_of(s) == WRITING;
        moves |= moving;
        if owner == me || moving || suspects.contains(owner) {
            continue;
        }
        let attached =
            u64::from(owner) < table && seg.participant(owner).state.load(Acquire) == ENTRY_IN_USE;
        if !attached {
            suspects.insert(owner);
        }
    }
    let mut total = if moves {
        recover_orphaned_moves(seg)
    } else {
        Recovered::default()
    };
    if suspects.is_empty() {
        return total;
    }
    let mut orphaned = OwnerSet::new();
    let mut locked = Vec::new();
    for owner in suspects.iter() {
        if u64::from(owner) >= table {
            // No participant can ever have this index, and there is no lock.
            orphaned.insert(owner);
            continue;
        }
        if let Ok(true) = sys::try_lock_byte(&seg.file, lock_byte(owner)) {
            locked.push(owner);
            if seg.participant(owner).state.load(Acquire) == ENTRY_IN_USE {
                // Attached and died since the scan: the ordinary recovery.
                total += recover_entry(seg, owner);
            }
            orphaned.insert(owner);
        }
        // Locked by someone else: attached and alive (or being recovered).
    }
    let done = seg.recover_owned_by(|owner| orphaned.contains(owner));
    let h = seg.header();
    h.discarded_partial.fetch_add(done.discarded, Relaxed);
    h.redelivered.fetch_add(done.requeued, Relaxed);
    for owner in locked {
        let _ = sys::unlock_byte(&seg.file, lock_byte(owner));
    }
    total += done;
    total
}

/// Discards the slots of this queue (as a dead-letter queue) that a mover
/// left WRITING while no move is in progress: damage, which would keep
/// its getters waiting for good (`moved::discard_orphaned_moves`).
fn recover_orphaned_moves(seg: &Segment) -> Recovered {
    let h = seg.header();
    let discarded = crate::ring::moved::discard_orphaned_moves(seg, &h.move_lock);
    h.discarded_partial.fetch_add(discarded, Relaxed);
    Recovered {
        discarded,
        ..Recovered::default()
    }
}

/// Recovers entry `i`'s slots, folds its counters into the header and frees
/// the entry. The caller holds entry `i`'s lock.
fn recover_entry(seg: &Segment, i: u16) -> Recovered {
    let h = seg.header();
    let entry = seg.participant(i);
    let done = recover_slots(seg, i);
    h.retired_puts
        .fetch_add(entry.puts.swap(0, Relaxed), Relaxed);
    h.retired_gets
        .fetch_add(entry.gets.swap(0, Relaxed), Relaxed);
    // A participant killed while asleep is still counted as a waiter.
    take_away(&h.get_waiters, entry.waiting_get.swap(0, Relaxed));
    take_away(&h.put_waiters, entry.waiting_put.swap(0, Relaxed));
    entry.state.store(ENTRY_FREE, Release);
    done
}

/// Recovers the slots that name `i` as their owner and counts what was done.
/// The caller holds entry `i`'s lock.
fn recover_slots(seg: &Segment, i: u16) -> Recovered {
    let h = seg.header();
    let done = seg.recover_owned_by(|owner| owner == i);
    h.discarded_partial.fetch_add(done.discarded, Relaxed);
    h.redelivered.fetch_add(done.requeued, Relaxed);
    done
}

fn take_away(counter: &AtomicU32, n: u32) {
    if n != 0 {
        let _ = counter.fetch_update(SeqCst, SeqCst, |c| Some(c.saturating_sub(n)));
    }
}
