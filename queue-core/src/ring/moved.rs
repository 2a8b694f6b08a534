//! Moving a message from its queue (the *source*) into its dead-letter
//! queue exactly once, whoever dies at whichever instruction. No system
//! calls here (liveness comes in through [`Sides::alive`]), so the loom
//! model (`ring/loom_moved.rs`) runs this very code.
//!
//! A plain "put to the dead-letter queue, then release the source slot"
//! duplicates the message if the mover dies between the two, and "release,
//! then put" loses it. Instead, moves into one dead-letter queue are
//! serialized by a lock word in its header,
//! `move_lock = { seq: u32, stage: u8, owner: u16 }`, whose stage is the
//! commit point:
//!
//! ```text
//!  FREE(s) --take--> TAKEN(s+1, M) --commit--> COMMITTED(s+1, M) --free--> FREE(s+1)
//!                        |  tags: source slot + lap, dead-letter slot + lap
//!                        |  claim WRITING(l, MOVER) in the dead-letter queue, copy
//!                        v  (after the commit: publish it READY, release the source)
//!            owner dead: discard the WRITING(MOVER) slot, FREE(s+1)
//! ```
//!
//! **Invariant:** the message is in the dead-letter queue iff the lock
//! reached COMMITTED for it, and the lock is FREE'd only after the source no
//! longer holds it. A TAKEN lock whose owner died is resolved by discarding
//! its (at most one) WRITING(MOVER) slot: the message is still in the source
//! (its READING slot is re-queued by the source's recovery) and is moved
//! again. A COMMITTED lock is resolved by anyone (owner dead or alive, all
//! steps are CASes from exact words): publish the copy if still WRITING,
//! then hand the source slot over (`EMPTY(lap + 1)`) if it is re-queued, read
//! by a dead participant or by the resolver itself; a live other reader of
//! that lap is itself on its way here and resolves it.
//!
//! `owner` is a participant index *of the source* (every mover is one), so
//! liveness is the source's. Dead-letter slots being written by a mover
//! carry the owner [`MOVER`], an index no participant can have (the table
//! holds at most 4096): the dead-letter queue's own recovery leaves them to
//! the move protocol, except while no move is in progress
//! ([`discard_orphaned_moves`]: then one is damage).

use super::{
    Claim, EMPTY, READING, READY, REQUEUED, Ring, Slots, WRITING, kind_of, lap_of, owner_of, pack,
};
use crate::sync::atomic::{AtomicU64, Ordering::*, fence};

/// The owner of a dead-letter slot being written by a mover.
pub(crate) const MOVER: u16 = 0xFFFF;

/// Lock stage: no move in progress.
pub(crate) const FREE: u8 = 0;
/// Lock stage: a move is copying; the source still holds the message.
pub(crate) const TAKEN: u8 = 1;
/// Lock stage: the copy is complete; the message is in the dead-letter queue.
pub(crate) const COMMITTED: u8 = 2;

/// Packs a lock word `{ seq, stage, owner }`.
pub(crate) const fn lock_word(seq: u32, stage: u8, owner: u16) -> u64 {
    ((seq as u64) << 32) | ((stage as u64) << 16) | owner as u64
}

/// The stage of a lock word.
pub(crate) const fn stage_of(word: u64) -> u8 {
    (word >> 16) as u8
}

const fn seq_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The move lock and its tags, in the dead-letter queue's header.
#[derive(Clone, Copy)]
pub(crate) struct MoveLock<'a> {
    /// `{ seq, stage, owner }`.
    pub word: &'a AtomicU64,
    /// The source slot being moved, and its lap.
    pub src_idx: &'a AtomicU64,
    pub src_lap: &'a AtomicU64,
    /// The dead-letter slot it is copied into, and its lap.
    pub dst_idx: &'a AtomicU64,
    pub dst_lap: &'a AtomicU64,
}

/// The two queues of a move, as the protocol sees them.
pub(crate) trait Sides {
    type Src: Slots;
    type Dst: Slots;
    /// The dead-letter queue's move lock.
    fn lock(&self) -> MoveLock<'_>;
    /// Every slot of the source.
    fn source_slots(&self) -> &Self::Src;
    /// The source ring (priority level) slot `idx` belongs to.
    fn source_ring(&self, idx: u64) -> Ring<'_, Self::Src>;
    /// Every slot of the dead-letter queue.
    fn dead_letter_slots(&self) -> &Self::Dst;
    /// The dead-letter ring of the same level as source slot `idx`.
    fn dead_letter_ring(&self, src_idx: u64) -> Ring<'_, Self::Dst>;
    /// Whether source participant `owner` lives (the caller itself does).
    fn alive(&self, owner: u16) -> bool;
    /// A source slot was handed over because its message is a dead letter.
    fn handed_over(&self);
    /// A dead letter was published (wake the dead-letter queue's getters).
    fn published(&self);
    /// `n` half-copied dead letters of a dead mover were discarded.
    fn discarded(&self, n: u64);
}

/// How a move ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// The message is in the dead-letter queue and no longer in the source.
    Done,
    /// Another move holds the lock: the caller still holds its claim.
    Busy,
    /// The dead-letter queue has no free slot (or was closed): the caller
    /// still holds its claim.
    Full,
}

/// What resolving a COMMITTED lock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The lock is FREE (or moved on): look again.
    Again,
    /// The committed message was the caller's own claim, now handed over.
    Mine,
    /// A live participant other than the caller holds the committed
    /// message: it is on its way to resolve it.
    Held,
}

/// Step 1: takes the lock for moving `claim` (held READING by `me`),
/// resolving a dead owner's lock or a committed one on the way. `Ok(seq)`:
/// the lock is `TAKEN(seq, me)`. At most `tries` looks at a busy lock.
pub(crate) fn take<D: Sides>(sides: &D, claim: Claim, me: u16, tries: u32) -> Result<u32, Moved> {
    let lock = sides.lock();
    let backoff = crossbeam_utils::Backoff::new();
    for _ in 0..tries {
        let seen = lock.word.load(SeqCst);
        match stage_of(seen) {
            FREE => {
                let seq = seq_of(seen).wrapping_add(1);
                let taken = lock_word(seq, TAKEN, me);
                if lock
                    .word
                    .compare_exchange(seen, taken, SeqCst, Relaxed)
                    .is_ok()
                {
                    return Ok(seq);
                }
            }
            TAKEN if !sides.alive(owner_of(seen)) => resolve_taken(sides, seen, me),
            COMMITTED => match resolve_committed(sides, seen, Some((claim, me))) {
                Resolved::Mine => return Err(Moved::Done),
                Resolved::Again | Resolved::Held => {}
            },
            _ => {}
        }
        crate::sync::contention_pause(&backoff);
    }
    Err(Moved::Busy)
}

/// Step 2: records the source slot in the tags and claims a dead-letter
/// slot as [`MOVER`] (the lock is `TAKEN(seq, me)`). On a full (or closed)
/// dead-letter queue the lock is given back.
pub(crate) fn claim_slot<D: Sides>(
    sides: &D,
    claim: Claim,
    seq: u32,
    me: u16,
) -> Result<Claim, Moved> {
    let lock = sides.lock();
    lock.src_idx.store(claim.idx, Relaxed);
    lock.src_lap.store(u64::from(claim.lap), Relaxed);
    match sides.dead_letter_ring(claim.idx).try_claim_write(MOVER) {
        Ok(dst) => Ok(dst),
        Err(_) => {
            let _ = lock.word.compare_exchange(
                lock_word(seq, TAKEN, me),
                lock_word(seq, FREE, 0),
                SeqCst,
                Relaxed,
            );
            Err(Moved::Full)
        }
    }
}

/// Step 3 (after the caller copied the message into `dst`): records `dst`
/// in the tags and commits. From here the message is a dead letter.
/// False only if a foreign write took the lock.
pub(crate) fn commit<D: Sides>(sides: &D, dst: Claim, seq: u32, me: u16) -> bool {
    let lock = sides.lock();
    lock.dst_idx.store(dst.idx, Relaxed);
    lock.dst_lap.store(u64::from(dst.lap), Relaxed);
    // SYNC: Release (within SeqCst) publishes the tags and the copy to
    // whoever resolves the COMMITTED word (SeqCst load, then Acquire fence).
    lock.word
        .compare_exchange(
            lock_word(seq, TAKEN, me),
            lock_word(seq, COMMITTED, me),
            SeqCst,
            Relaxed,
        )
        .is_ok()
}

/// Steps 4-6: publishes the copy, hands the source slot over and frees the
/// lock (each a CAS from an exact word: a resolver may have done any of
/// them already).
pub(crate) fn finish<D: Sides>(sides: &D, claim: Claim, dst: Claim, seq: u32, me: u16) {
    publish(sides, dst);
    hand_over(sides, claim, me);
    free(sides.lock(), lock_word(seq, COMMITTED, me));
}

/// Step 4: makes the committed copy visible in the dead-letter queue.
pub(crate) fn publish<D: Sides>(sides: &D, dst: Claim) {
    if publish_move(sides.dead_letter_slots(), dst.idx, dst.lap) {
        sides.published();
    }
}

/// Step 5: the source's hand-over of the moved message (`EMPTY(lap + 1)`).
pub(crate) fn hand_over<D: Sides>(sides: &D, claim: Claim, me: u16) {
    if sides.source_ring(claim.idx).release_read(claim, me) {
        sides.handed_over();
    }
}

/// The whole move of `claim` (held READING by `me`); `copy` writes the
/// message into the dead-letter slot it is given.
pub(crate) fn move_claimed<D: Sides>(
    sides: &D,
    claim: Claim,
    me: u16,
    tries: u32,
    copy: impl FnOnce(Claim),
) -> Moved {
    let seq = match take(sides, claim, me, tries) {
        Ok(seq) => seq,
        Err(done_or_busy) => return done_or_busy,
    };
    let dst = match claim_slot(sides, claim, seq, me) {
        Ok(dst) => dst,
        Err(full) => return full,
    };
    copy(dst);
    if !commit(sides, dst, seq, me) {
        return Moved::Busy;
    }
    finish(sides, claim, dst, seq, me);
    Moved::Done
}

/// Resolves a lock that a recovery pass (or an attaching handle) finds:
/// TAKEN by a dead owner (or by `me` when `me` is known not to be moving,
/// e.g. an index just taken over by `attach`), or COMMITTED by anyone.
/// Returns whether the lock was left FREE.
pub(crate) fn resolve<D: Sides>(sides: &D, me: u16, stale_mine: bool) -> bool {
    let seen = sides.lock().word.load(SeqCst);
    match stage_of(seen) {
        FREE => return true,
        TAKEN => {
            let owner = owner_of(seen);
            if (owner == me && stale_mine) || (owner != me && !sides.alive(owner)) {
                resolve_taken(sides, seen, me);
            }
        }
        COMMITTED => {
            let _ = resolve_committed(sides, seen, None);
        }
        _ => {}
    }
    stage_of(sides.lock().word.load(SeqCst)) == FREE
}

/// A TAKEN lock whose owner is dead: take it over (one resolver), discard
/// the half-copied dead letter, free it. The message is still in the source.
fn resolve_taken<D: Sides>(sides: &D, seen: u64, me: u16) {
    let lock = sides.lock();
    let mine = lock_word(seq_of(seen), TAKEN, me);
    if lock
        .word
        .compare_exchange(seen, mine, SeqCst, Relaxed)
        .is_err()
    {
        return;
    }
    let discarded = discard_moves(sides.dead_letter_slots());
    if discarded > 0 {
        sides.discarded(discarded);
    }
    let _ = lock
        .word
        .compare_exchange(mine, lock_word(seq_of(seen), FREE, 0), SeqCst, Relaxed);
}

/// A COMMITTED lock: publish the copy, make sure the source no longer
/// holds the message (handing over `mine` if it is that message), free it.
fn resolve_committed<D: Sides>(sides: &D, seen: u64, mine: Option<(Claim, u16)>) -> Resolved {
    let lock = sides.lock();
    let src_idx = lock.src_idx.load(Relaxed);
    let src_lap = lock.src_lap.load(Relaxed) as u32;
    let dst_idx = lock.dst_idx.load(Relaxed);
    let dst_lap = lock.dst_lap.load(Relaxed) as u32;
    // SYNC: the seqlock read: the tags are written only while the lock is
    // TAKEN by their writer, before its COMMITTED (Release); the fence keeps
    // the loads above before this re-load, so an unchanged word means they
    // are the committed move's.
    fence(Acquire);
    if lock.word.load(Relaxed) != seen {
        return Resolved::Again;
    }
    let (src, dst) = (sides.source_slots(), sides.dead_letter_slots());
    if dst_idx < dst.capacity() && publish_move(dst, dst_idx, dst_lap) {
        sides.published();
    }
    while src_idx < src.capacity() {
        let slot = src.state(src_idx);
        let s = slot.load(SeqCst);
        if lap_of(s) != src_lap || !matches!(kind_of(s), READING | REQUEUED) {
            break; // handed over already
        }
        let ring = sides.source_ring(src_idx);
        if kind_of(s) == READING {
            if let Some((claim, me)) = mine.filter(|&(c, me)| s == c.reading_word(me)) {
                if ring.release_read(claim, me) {
                    sides.handed_over();
                }
                free(lock, seen);
                return Resolved::Mine;
            }
            let owner = owner_of(s);
            if mine.is_some_and(|(_, me)| me == owner) || sides.alive(owner) {
                return Resolved::Held;
            }
        }
        // Re-queued, or read by a dead participant: hand it over for them.
        let gone = pack(src_lap.wrapping_add(1), EMPTY, 0); // { lap + 1, EMPTY }
        if slot.compare_exchange(s, gone, SeqCst, Relaxed).is_ok() {
            if kind_of(s) == REQUEUED {
                ring.decrement_requeued();
            }
            sides.handed_over();
            break;
        }
    }
    free(lock, seen);
    Resolved::Again
}

/// Step 6: frees the lock if it still holds the word `seen`.
pub(crate) fn free(lock: MoveLock<'_>, seen: u64) {
    let _ = lock
        .word
        .compare_exchange(seen, lock_word(seq_of(seen), FREE, 0), SeqCst, Relaxed);
}

/// Publishes dead-letter slot `idx` if it still holds the mover's copy of
/// lap `lap`: `WRITING(lap, MOVER) -> READY(lap)`.
fn publish_move<S: Slots>(slots: &S, idx: u64, lap: u32) -> bool {
    // SYNC: Release (within SeqCst) pairs with the getter's claim CAS, as
    // `Ring::publish`; the copy happened before the COMMITTED this resolver
    // (or the mover itself) synchronized with.
    slots
        .state(idx)
        .compare_exchange(
            pack(lap, WRITING, MOVER),
            pack(lap, READY, 0),
            SeqCst,
            Relaxed,
        )
        .is_ok()
}

/// Discards the dead-letter slots being written by a mover while no move
/// is in progress (`lock`, the dead-letter queue's move lock, is FREE):
/// damage, since a move publishes or discards its slot before its lock is
/// FREE again, and would keep the dead-letter queue's getters waiting for
/// good. Returns how many.
///
/// Each slot's word is read before the lock (both SeqCst): a move claims
/// its slot only after taking the lock, and its slot no longer holds that
/// word once the lock is FREE again, so a word seen before a FREE lock
/// belongs to no running move (nor can a later move's claim bring it
/// back: that claim is of a later lap). A scan that read the lock once
/// and then the words could meet a move that started in between.
pub(crate) fn discard_orphaned_moves<S: Slots>(slots: &S, lock: &AtomicU64) -> u64 {
    let mut n = 0;
    for idx in 0..slots.capacity() {
        let slot = slots.state(idx);
        let s = slot.load(SeqCst);
        if kind_of(s) != WRITING || owner_of(s) != MOVER {
            continue;
        }
        if stage_of(lock.load(SeqCst)) != FREE {
            // A move is in progress: this may be its slot.
            return n;
        }
        let skipped = pack(lap_of(s).wrapping_add(1), EMPTY, 0); // { lap + 1, EMPTY }
        if slot.compare_exchange(s, skipped, SeqCst, Relaxed).is_ok() {
            n += 1;
        }
    }
    n
}

/// Discards every dead-letter slot being written by a mover (at most one
/// while the lock is TAKEN by a dead owner: nobody else is moving).
fn discard_moves<S: Slots>(slots: &S) -> u64 {
    let mut n = 0;
    for idx in 0..slots.capacity() {
        let slot = slots.state(idx);
        let s = slot.load(Acquire);
        if kind_of(s) == WRITING && owner_of(s) == MOVER {
            let skipped = pack(lap_of(s).wrapping_add(1), EMPTY, 0); // { lap + 1, EMPTY }
            if slot.compare_exchange(s, skipped, SeqCst, Relaxed).is_ok() {
                n += 1;
            }
        }
    }
    n
}

#[cfg(not(loom))]
const _: () = assert!(MOVER as u64 >= crate::layout::MAX_PARTICIPANTS_LIMIT);
