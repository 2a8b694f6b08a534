//! The slot protocol: who may write or read which slot, and how a dead
//! participant's slot is recovered. No system calls and no waiting here - this
//! module only moves state words, so `loom` can check it exhaustively.
//!
//! Every slot has one state word `{ lap: u32, gen: u8, kind: u8, owner: u16 }`:
//!
//! ```text
//!  63            32 31    24 23     16 15            0
//! +----------------+--------+---------+---------------+
//! |      lap       |  gen   |  kind   |     owner     |
//! +----------------+--------+---------+---------------+
//! ```
//!
//! `gen` (the delivery generation) counts the deliveries of the message in the slot, modulo 256: a
//! READY slot has 0, the consumer CAS from READY makes it 1, every claim of
//! a REQUEUED slot adds one, and a re-queue keeps it. So two deliveries of
//! one message to the same participant (a lease that expired and was taken
//! again by its old holder) are different words, and the late `ack` of the
//! first one fails its CAS (no ABA). EMPTY and WRITING words have generation 0.
//!
//! Position `p` lives in slot `p % capacity` during lap `p / capacity`
//! (truncated to 32 bits; laps are compared with wrapping arithmetic and only
//! ever differ by -1, 0 or +1, so the truncation is harmless).
//!
//! ```text
//!   EMPTY(l) --producer CAS--> WRITING(l, me) --publish--> READY(l)
//!      ^                           |                          |
//!      |                      dead writer:                consumer CAS
//!      |                       discard                        v
//!      +------------------- EMPTY(l + 1) <--release/ack-- READING(l, me)
//!                                                         ^   |
//!                                      consumer CAS       |   | dead reader or
//!                                      (out of order)     |   v dropped lease
//!                                                     REQUEUED(l)
//! ```
//!
//! A producer or a consumer may also take a *run* of `n` slots with one
//! claim (`ring/recorded.rs`): its CAS turns the word under the tail (or
//! head) into `WRITE_RUN(l, n, me)` (or `READ_RUN(l, n, me)`; the generation
//! field holds `n - 1`), the cursor jumps past the run, and the `n - 1`
//! positions behind the first keep their words - EMPTY, or READY - which
//! nobody else can claim, until the owner stores their next ones; the first
//! slot, the record of the run, changes last. Recovery discards a dead
//! producer's run and re-queues a dead consumer's from that record.
//!
//! Claiming is a single CAS that also records the owner, so a participant can
//! never hold a slot without the slot saying so. `head` and `tail` are hints
//! advanced by CAS by whoever sees them lag (helping), so a claimant that dies
//! right after its claim never wedges a cursor.

use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use crate::sync::{contention_pause, seqcst_order_point};
use crossbeam_utils::Backoff;

mod drain;
mod recorded;
mod requeue;
mod run;
mod word;
// The batch verbs' types (the loom build has no queue layer).
#[cfg(not(loom))]
pub(crate) use recorded::RECORD_FROM;
#[cfg(not(loom))]
pub(crate) use run::{HandOver, Held, Publication, Run, Span};

pub(crate) use word::*;

/// Access to the slot state words, wherever they live (a mapped segment, or
/// a plain array in the loom model).
pub(crate) trait Slots {
    /// Number of slots.
    fn capacity(&self) -> u64;
    /// The state word of slot `idx` (`idx < capacity`).
    fn state(&self, idx: u64) -> &AtomicU64;
    /// The state words of the `n` slots from `idx` on, in order
    /// (`idx + n <= capacity`): the loops over a run of slots step through
    /// them (a segment checks the bounds once, not once per slot).
    #[inline]
    fn states(&self, idx: u64, n: u64) -> impl Iterator<Item = &AtomicU64> {
        (idx..idx + n).map(move |i| self.state(i))
    }
    /// How many of the `n` slots from `idx` on (`idx + n <= capacity`)
    /// hold `word`, in a row from the first, each loaded with Acquire (an
    /// implementation may load a few past the first that differs).
    #[inline]
    fn count_alike(&self, idx: u64, n: u64, word: u64) -> u64 {
        self.states(idx, n)
            .take_while(|slot| slot.load(Acquire) == word)
            .count() as u64
    }
    /// The slot and the lap of position `pos` in a ring over all slots
    /// (an implementation may replace the division by a mask).
    #[inline]
    fn locate(&self, pos: u64) -> (u64, u32) {
        let cap = self.capacity();
        (pos % cap, (pos / cap) as u32)
    }
}

/// The shared words the protocol needs besides the slots.
#[derive(Clone, Copy)]
pub(crate) struct Cursors<'a> {
    /// Next position to read.
    pub head: &'a AtomicU64,
    /// Next position to write.
    pub tail: &'a AtomicU64,
    /// Hint: number of REQUEUED slots.
    pub requeued: &'a AtomicU64,
    /// Hint: the slot (index within the ring) re-queued last, where the
    /// look for re-queued messages starts.
    pub requeued_at: &'a AtomicU64,
    /// Non-zero once the queue was closed.
    pub closed: &'a AtomicU32,
}

/// A slot held by the caller (WRITING or READING with the caller as owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    /// Slot index.
    pub idx: u64,
    /// Lap the slot was claimed in.
    pub lap: u32,
    /// Delivery generation of a read claim (0 for a write claim): part of
    /// the state word the claim holds, see the module docs. (Only the low
    /// 8 bits are used; a `u32` keeps the claim two plain words.)
    pub generation: u32,
}

impl Claim {
    /// The state word this claim holds the slot in, as participant `me`.
    #[inline]
    pub(crate) fn reading_word(self, me: u16) -> u64 {
        pack_gen(self.lap, self.generation as u8, READING, me) // { lap, generation, READING, me }
    }
}

/// What the segment held where the protocol allows no such state (the
/// queue layer turns it into the public `Damage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Slot index.
    pub idx: u64,
    /// The state word found.
    pub found: u64,
    /// The lap the cursor pointed at.
    pub expected_lap: u32,
}

/// Why a producer cannot claim a slot now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutBlocked {
    /// Every slot holds a message or a reader.
    Full,
    /// The queue was closed.
    Closed,
    /// The slot under the tail is in an impossible state.
    Corrupt(Damage),
}

/// Why a consumer cannot claim a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GetBlocked {
    /// No message and no writer in progress at the head.
    Empty,
    /// The next message is still being written by `owner`.
    Pending {
        /// Participant index of the writer.
        owner: u16,
    },
    /// The slot under the head is in an impossible state.
    Corrupt(Damage),
}

/// What recovering the slots of dead participants changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Half-written messages discarded.
    pub discarded: u64,
    /// Messages put back for another consumer.
    pub requeued: u64,
}

impl std::ops::AddAssign for Recovered {
    fn add_assign(&mut self, other: Recovered) {
        self.discarded += other.discarded;
        self.requeued += other.requeued;
    }
}

impl Recovered {
    /// Slots changed in all.
    pub(crate) fn total(self) -> u64 {
        self.discarded + self.requeued
    }
}

/// A message found by [`Ring::peek`], not claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peeked {
    /// Slot index.
    pub idx: u64,
    /// The state word seen; [`Ring::unchanged`] compares against it.
    pub seen: u64,
}

/// What a fast claim attempt ([`Ring::claim_write_fast`],
/// [`Ring::claim_read_fast`]) saw when the common case did not hold: the
/// slow loop goes on from there without loading the same words again, so
/// a claim makes the same accesses, in the same order, as the loop alone
/// would (and the loom models explore no extra interleavings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The cursor was at `pos`, and its slot held `state`, not the word of
    /// the common case.
    Slot {
        /// The cursor's position.
        pos: u64,
        /// The state word loaded.
        state: u64,
    },
    /// The claim CAS lost a race: pause, then look again.
    Lost,
    /// A writer saw `closed` (and withdrew its claim, if it had made one).
    Closed,
    /// A reader saw re-queued messages waiting: they are served first.
    Requeued,
}

/// What [`Ring::look`] loaded: a cursor, where it points, and the state
/// word there.
#[derive(Clone, Copy)]
struct Look<'a> {
    pos: u64,
    idx: u64,
    lap: u32,
    slot: &'a AtomicU64,
    state: u64,
}

/// The slot protocol over a set of slots and cursors: one ring per
/// priority level, each over its own run of `cap` slots starting at `base`
/// (slot indices in claims and reports are always the global ones).
pub(crate) struct Ring<'a, S: Slots> {
    cursors: Cursors<'a>,
    slots: &'a S,
    /// Index of this ring's first slot.
    base: u64,
    /// Number of slots of this ring; 0: all of `slots` (then `base` is 0).
    /// The whole set is the common case (a queue without priorities), and
    /// there [`Slots::locate`] finds the slot (a segment masks instead of
    /// dividing when it can).
    cap: u64,
}

// By hand: the derives would ask `S: Copy`, and a ring only borrows `S`.
// A copy is what the slow paths take, so that the fast paths keep the
// ring's words in registers instead of building it in memory.
impl<S: Slots> Clone for Ring<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Slots> Copy for Ring<'_, S> {}

impl<'a, S: Slots> Ring<'a, S> {
    /// Binds the protocol to its shared words: one ring over all slots
    /// (the unit tests and the loom model; segments use [`Ring::whole`]
    /// and [`Ring::level`]).
    #[cfg(test)]
    pub(crate) fn new(cursors: Cursors<'a>, slots: &'a S) -> Self {
        Ring {
            cursors,
            slots,
            base: 0,
            cap: 0,
        }
    }

    /// A ring over all of `slots` (a queue with one priority level).
    #[inline]
    pub(crate) fn whole(cursors: Cursors<'a>, slots: &'a S) -> Self {
        Ring {
            cursors,
            slots,
            base: 0,
            cap: 0,
        }
    }

    /// A ring over slots `base .. base + cap` of `slots` (one priority
    /// level); `cap > 0` and `base + cap <= slots.capacity()`.
    /// (Checked in debug builds only: the segment's geometry, validated on
    /// open, guarantees it, and every slot access is bounds-checked anyway;
    /// a check here would keep the hot path's ring from folding away.)
    #[inline]
    pub(crate) fn level(cursors: Cursors<'a>, slots: &'a S, base: u64, cap: u64) -> Self {
        debug_assert!(
            cap > 0 && base + cap <= slots.capacity(),
            "level out of range"
        );
        Ring {
            cursors,
            slots,
            base,
            cap,
        }
    }

    /// Number of slots of this ring.
    #[inline]
    fn cap(&self) -> u64 {
        if self.cap == 0 {
            self.slots.capacity()
        } else {
            self.cap
        }
    }

    /// The global indices of this ring's slots.
    fn range(&self) -> std::ops::Range<u64> {
        self.base..self.base + self.cap()
    }

    #[inline]
    fn locate(&self, pos: u64) -> (u64, u32) {
        if self.cap == 0 {
            return self.slots.locate(pos);
        }
        // One division for both (the compiler would otherwise divide twice
        // around the bounds check of the slot index).
        let lap = pos / self.cap;
        (self.base + (pos - lap * self.cap), lap as u32)
    }

    /// Claims the slot under the tail for writing, as participant `me`.
    #[inline]
    pub(crate) fn try_claim_write(&self, me: u16) -> Result<Claim, PutBlocked> {
        match self.claim_write_fast(me) {
            Ok(claim) => Ok(claim),
            Err(seen) => self.try_claim_write_slow(me, seen),
        }
    }

    /// The common case of [`try_claim_write`](Self::try_claim_write),
    /// inline: the slot under the tail is free for the tail's lap and nobody
    /// races us for it. Otherwise, what it saw: the slow loop goes on from
    /// there, with the same moves and the same orderings; this is its first
    /// turn, minus the branches for other states. (Apart from the loop, so
    /// that a caller's fast path keeps the claim in registers.)
    #[inline(always)]
    pub(crate) fn claim_write_fast(&self, me: u16) -> Result<Claim, Seen> {
        let Look {
            pos: t,
            idx,
            lap,
            slot,
            state: s,
        } = self.free_under_tail()?;
        let claimed = pack(lap, WRITING, me); // { lap, WRITING, me }
        if slot.compare_exchange(s, claimed, SeqCst, Relaxed).is_err() {
            return Err(Seen::Lost);
        }
        self.claimed_write(t, idx, lap).map_err(|_| Seen::Closed)
    }

    /// The first look of [`claim_write_fast`](Self::claim_write_fast) (and
    /// of a recorded run's): the slot under the tail is free for the tail's
    /// lap, and the queue was not closed. Otherwise, what it saw.
    #[inline(always)]
    fn free_under_tail(&self) -> Result<Look<'a>, Seen> {
        let Cursors { tail, closed, .. } = self.cursors;
        // SYNC: Acquire, as in the slow loop (pairs with `release_read`).
        let look = self.look(tail, Acquire);
        // A free slot's word is exactly `{ lap, EMPTY }`: every store of an
        // EMPTY word (release, abandon, recovery, the zeroed segment) has
        // generation 0 and owner 0. Any other word is the slow loop's.
        if look.state != pack(look.lap, EMPTY, 0) {
            return Err(Seen::Slot {
                pos: look.pos,
                state: look.state,
            });
        }
        if closed.load(SeqCst) != 0 {
            return Err(Seen::Closed);
        }
        Ok(look)
    }

    /// The cursor `cursor` (SeqCst), its slot and lap, and the slot's
    /// state word (`order`): what every claim attempt looks at first.
    #[inline(always)]
    fn look(&self, cursor: &AtomicU64, order: crate::sync::atomic::Ordering) -> Look<'a> {
        let pos = cursor.load(SeqCst);
        let (idx, lap) = self.locate(pos);
        let slot = self.slots.state(idx);
        Look {
            pos,
            idx,
            lap,
            slot,
            state: slot.load(order),
        }
    }

    /// The rest of a write claim after the claim CAS on position `t`
    /// succeeded: moves the tail on and re-checks `closed`.
    #[inline(always)]
    fn claimed_write(&self, t: u64, idx: u64, lap: u32) -> Result<Claim, PutBlocked> {
        let Cursors { tail, closed, .. } = self.cursors;
        // { tail: t + 1 }; failure means someone helped already.
        // (Wrapping: only a damaged segment gets near 2^64.)
        let _ = tail.compare_exchange(t, t.wrapping_add(1), SeqCst, Relaxed);
        let claim = Claim {
            idx,
            lap,
            generation: 0,
        };
        seqcst_order_point();
        // SYNC: the claim CAS and this load are SeqCst, as are
        // `close` and the drain scan in `is_drained`: either the
        // closer's consumers see our WRITING and wait for it, or
        // we see `closed` here and withdraw.
        if closed.load(SeqCst) != 0 {
            self.abandon_write(claim);
            return Err(PutBlocked::Closed);
        }
        Ok(claim)
    }

    /// [`try_claim_write`](Self::try_claim_write) in full, from what the
    /// fast attempt saw: every state the slot under the tail can be in,
    /// retried until it gives an answer.
    #[inline(never)]
    fn try_claim_write_slow(self, me: u16, seen: Seen) -> Result<Claim, PutBlocked> {
        let Cursors { tail, closed, .. } = self.cursors;
        let backoff = Backoff::new();
        let mut first = match seen {
            Seen::Slot { pos, state } => Some((pos, state)),
            Seen::Closed => return Err(PutBlocked::Closed),
            Seen::Lost | Seen::Requeued => {
                contention_pause(&backoff);
                None
            }
        };
        loop {
            let (t, s) = match first.take() {
                Some(seen) => seen,
                None => {
                    let l = self.look(tail, Acquire);
                    (l.pos, l.state)
                }
            };
            let (idx, lap) = self.locate(t);
            let slot = self.slots.state(idx);
            match lap_distance(s, lap) {
                0 if kind_of(s) == EMPTY => {
                    if closed.load(SeqCst) != 0 {
                        return Err(PutBlocked::Closed);
                    }
                    // SYNC: the Acquire load of `s` above pairs with the
                    // Release of the previous reader's `release_read` (or the
                    // creator's publication of the zeroed segment), so our
                    // payload writes come after its payload reads.
                    let claimed = pack(lap, WRITING, me); // { lap, WRITING, me }
                    if slot.compare_exchange(s, claimed, SeqCst, Relaxed).is_err() {
                        contention_pause(&backoff);
                        continue;
                    }
                    return self.claimed_write(t, idx, lap);
                }
                // A producer's run: the positions behind its first slot are
                // its own, the tail jumps past them all.
                0 if kind_of(s) == WRITE_RUN => {
                    let _ = tail.compare_exchange(t, t.wrapping_add(run_len(s)), SeqCst, Relaxed); // { tail: t + n }
                }
                // The position is taken (or already consumed): the tail lags.
                0 | 1 => {
                    let _ = tail.compare_exchange(t, t.wrapping_add(1), SeqCst, Relaxed); // { tail: t + 1 }
                }
                // The slot still holds the previous lap: no free slot. Only
                // a message (or its writer or reader) can hold it there: the
                // tail passed position `t - capacity` only after that slot
                // was claimed for lap `l - 1`, so `EMPTY(l - 1)` (or a kind
                // that does not exist) means the tail or the slot was
                // overwritten - reported, or producers would wait forever
                // for a slot that no consumer will ever free.
                -1 => {
                    if tail.load(SeqCst) == t {
                        if !matches!(
                            kind_of(s),
                            WRITING | READY | READING | REQUEUED | READ_RUN | WRITE_RUN
                        ) {
                            return Err(PutBlocked::Corrupt(Damage {
                                idx,
                                found: s,
                                expected_lap: lap,
                            }));
                        }
                        if closed.load(SeqCst) != 0 {
                            return Err(PutBlocked::Closed);
                        }
                        return Err(PutBlocked::Full);
                    }
                }
                _ => {
                    if tail.load(SeqCst) == t {
                        return Err(PutBlocked::Corrupt(Damage {
                            idx,
                            found: s,
                            expected_lap: lap,
                        }));
                    }
                }
            }
            contention_pause(&backoff);
        }
    }

    /// Makes a written message visible to consumers.
    #[inline(always)]
    pub(crate) fn publish(&self, claim: Claim) {
        // SYNC: Release (within SeqCst) pairs with the consumer's claim CAS,
        // so the payload is visible before the message is. SeqCst also orders
        // it before the producer's SeqCst load of `get_seq` in
        // `WaitPoint::notify_one` (wait.rs), the Dekker partner of the
        // sleeper's `fetch_or` in `WaitPoint::register`.
        self.slots
            .state(claim.idx)
            .store(pack(claim.lap, READY, 0), SeqCst); // { lap, READY }
    }

    /// Gives up a write claim without publishing: the position is skipped.
    pub(crate) fn abandon_write(&self, claim: Claim) {
        self.slots
            .state(claim.idx)
            .store(pack(claim.lap.wrapping_add(1), EMPTY, 0), SeqCst); // { lap + 1, EMPTY }
    }

    /// Claims the next message for reading, as participant `me`. Messages
    /// re-queued after a failed delivery are served first: they are older.
    #[inline]
    pub(crate) fn try_claim_read(&self, me: u16) -> Result<Claim, GetBlocked> {
        match self.claim_read_fast(me) {
            Ok(claim) => Ok(claim),
            Err(seen) => self.try_claim_read_slow(me, seen),
        }
    }

    /// The common case of [`try_claim_read`](Self::try_claim_read), inline,
    /// as [`claim_write_fast`](Self::claim_write_fast): nothing re-queued,
    /// a message ready under the head, no race. Otherwise, what it saw, for
    /// the slow loop to go on from.
    #[inline(always)]
    pub(crate) fn claim_read_fast(&self, me: u16) -> Result<Claim, Seen> {
        let Look {
            pos: h,
            idx,
            lap,
            slot,
            state: s,
        } = self.ready_under_head()?;
        // SYNC: Acquire (within SeqCst) pairs with `publish`.
        let claimed = pack_gen(lap, 1, READING, me); // { lap, generation: 1, READING, me }
        if slot.compare_exchange(s, claimed, SeqCst, Relaxed).is_err() {
            return Err(Seen::Lost);
        }
        let head = self.cursors.head;
        let _ = head.compare_exchange(h, h.wrapping_add(1), SeqCst, Relaxed); // { head: h + 1 }
        Ok(Claim {
            idx,
            lap,
            generation: 1,
        })
    }

    /// The first look of [`claim_read_fast`](Self::claim_read_fast) (and
    /// of a recorded run's): nothing re-queued, and the slot under the head
    /// holds a ready message. Otherwise, what it saw.
    #[inline(always)]
    fn ready_under_head(&self) -> Result<Look<'a>, Seen> {
        let Cursors { head, requeued, .. } = self.cursors;
        if requeued.load(Relaxed) != 0 {
            return Err(Seen::Requeued);
        }
        let look = self.look(head, SeqCst);
        // A ready message's word is exactly `{ lap, READY }` (`publish`
        // stores generation 0 and owner 0); any other word is the slow
        // loop's.
        if look.state != pack(look.lap, READY, 0) {
            return Err(Seen::Slot {
                pos: look.pos,
                state: look.state,
            });
        }
        Ok(look)
    }

    /// [`try_claim_read`](Self::try_claim_read) in full, from what the
    /// fast attempt saw: re-queued messages first, then every state the
    /// slot under the head can be in, retried until it gives an answer.
    #[inline(never)]
    fn try_claim_read_slow(self, me: u16, seen: Seen) -> Result<Claim, GetBlocked> {
        let Cursors { head, tail, .. } = self.cursors;
        let backoff = Backoff::new();
        let mut first = match seen {
            Seen::Slot { pos, state } => Some((pos, state)),
            Seen::Requeued => {
                if let Some(claim) = self.take_requeued(me) {
                    return Ok(claim);
                }
                None
            }
            Seen::Lost | Seen::Closed => {
                contention_pause(&backoff);
                None
            }
        };
        loop {
            let (h, s) = match first.take() {
                Some(seen) => seen,
                None => {
                    let l = self.look(head, SeqCst);
                    (l.pos, l.state)
                }
            };
            let (idx, lap) = self.locate(h);
            let slot = self.slots.state(idx);
            match lap_distance(s, lap) {
                0 => match kind_of(s) {
                    READY => {
                        // SYNC: Acquire (within SeqCst) pairs with `publish`.
                        let claimed = pack_gen(lap, 1, READING, me); // { lap, generation: 1, READING, me }
                        if slot.compare_exchange(s, claimed, SeqCst, Relaxed).is_ok() {
                            let _ = head.compare_exchange(h, h.wrapping_add(1), SeqCst, Relaxed); // { head: h + 1 }
                            return Ok(Claim {
                                idx,
                                lap,
                                generation: 1,
                            });
                        }
                    }
                    EMPTY => {
                        if head.load(SeqCst) == h {
                            // Nothing written here yet. The tail passes a
                            // position only after its slot was claimed, so
                            // with the tail past the head this slot cannot
                            // still be EMPTY for this lap - unless our load
                            // predates the claim, which a second look (made
                            // after the tail load that saw the advance)
                            // settles. Still EMPTY: the cursors were
                            // overwritten, and reporting "empty" would hide
                            // the messages behind the head for good.
                            let t = tail.load(SeqCst);
                            if (t.wrapping_sub(h) as i64) > 0
                                && slot.load(SeqCst) == s
                                && head.load(SeqCst) == h
                            {
                                return Err(GetBlocked::Corrupt(Damage {
                                    idx,
                                    found: s,
                                    expected_lap: lap,
                                }));
                            }
                            return Err(GetBlocked::Empty);
                        }
                    }
                    WRITING | WRITE_RUN => {
                        if head.load(SeqCst) == h {
                            return Err(GetBlocked::Pending { owner: owner_of(s) });
                        }
                    }
                    READING | REQUEUED => {
                        let _ = head.compare_exchange(h, h.wrapping_add(1), SeqCst, Relaxed); // { head: h + 1 }
                    }
                    // The positions behind a run's first slot are its
                    // owner's: the head jumps past them all (a step of one
                    // would claim the next as a plain READY message).
                    READ_RUN => {
                        let _ =
                            head.compare_exchange(h, h.wrapping_add(run_len(s)), SeqCst, Relaxed); // { head: h + n }
                    }
                    _ => {
                        if head.load(SeqCst) == h {
                            return Err(GetBlocked::Corrupt(Damage {
                                idx,
                                found: s,
                                expected_lap: lap,
                            }));
                        }
                    }
                },
                // Position consumed or skipped already: the head lags.
                1 => {
                    let _ = head.compare_exchange(h, h.wrapping_add(1), SeqCst, Relaxed); // { head: h + 1 }
                }
                // The slot is still held by a reader of the previous lap, so
                // nothing can have been written here yet. The head passed
                // position `h - capacity` only after its message was claimed
                // (READING, maybe re-queued since), so any other kind there
                // means the head or the slot was overwritten: reported, or
                // getters would report "empty" forever while messages sit
                // in the ring.
                -1 => {
                    if head.load(SeqCst) == h {
                        if matches!(kind_of(s), READING | REQUEUED | READ_RUN) {
                            return Err(GetBlocked::Empty);
                        }
                        return Err(GetBlocked::Corrupt(Damage {
                            idx,
                            found: s,
                            expected_lap: lap,
                        }));
                    }
                }
                _ => {
                    if head.load(SeqCst) == h {
                        return Err(GetBlocked::Corrupt(Damage {
                            idx,
                            found: s,
                            expected_lap: lap,
                        }));
                    }
                }
            }
            contention_pause(&backoff);
        }
    }

    /// Finds the message a getter would take next without claiming it.
    /// Returns its slot and the state word seen; the caller copies the
    /// payload and then checks with [`Ring::unchanged`] that the slot was not
    /// taken meanwhile (the lap in the word makes any reuse visible).
    /// Loads only: safe on a read-only mapping.
    pub(crate) fn peek(&self) -> Option<Peeked> {
        // A re-queued message is older than anything at the head.
        if self.cursors.requeued.load(Relaxed) != 0 {
            for idx in self.requeued_look() {
                let s = self.slots.state(idx).load(Acquire);
                if kind_of(s) == REQUEUED {
                    return Some(Peeked { idx, seen: s });
                }
            }
        }
        let h = self.cursors.head.load(SeqCst);
        let (idx, lap) = self.locate(h);
        let s = self.slots.state(idx).load(Acquire);
        (s == pack(lap, READY, 0)).then_some(Peeked { idx, seen: s })
    }

    /// Whether slot `idx` still holds the state word `seen`.
    pub(crate) fn unchanged(&self, idx: u64, seen: u64) -> bool {
        // SYNC: the Acquire fence orders the caller's payload reads before
        // this re-load (the seqlock read pattern); its partner is the SeqCst
        // claim CAS in `try_claim_write` (or `try_claim_read` / `take_requeued`),
        // which changes the word before anyone may touch the payload, so a
        // copy that overlapped a new owner sees a changed word here.
        crate::sync::atomic::fence(Acquire);
        self.slots.state(idx).load(Relaxed) == seen
    }

    /// Hands a read message over: the slot is free for the next lap.
    /// This single store is the moment the message leaves the queue. Returns
    /// false if the slot was no longer ours (only a foreign write does that).
    #[inline(always)]
    pub(crate) fn release_read(&self, claim: Claim, me: u16) -> bool {
        // SYNC: Release pairs with the next producer's Acquire load in
        // `try_claim_write`; SeqCst orders it before the consumer's SeqCst
        // load of `put_seq` in `WaitPoint::notify_one` (wait.rs), the Dekker
        // partner of a sleeping producer's `fetch_or` in `WaitPoint::register`.
        self.slots
            .state(claim.idx)
            .compare_exchange(
                claim.reading_word(me),
                pack(claim.lap.wrapping_add(1), EMPTY, 0), // { lap + 1, EMPTY }
                SeqCst,
                Relaxed,
            )
            .is_ok()
    }

    /// Whether `claim` still holds its slot for `me` (the word is unchanged).
    pub(crate) fn holds(&self, claim: Claim, me: u16) -> bool {
        self.slots.state(claim.idx).load(SeqCst) == claim.reading_word(me)
    }

    /// Whether nothing was ever claimed past the head and nothing waits
    /// for redelivery: a getter may skip this ring (a priority level) at
    /// the cost of three loads. A claim racing this look is a message that
    /// arrived just after it, as with any other getter's look.
    #[inline]
    pub(crate) fn looks_empty(&self) -> bool {
        self.cursors.requeued.load(Relaxed) == 0
            && self.cursors.tail.load(SeqCst) == self.cursors.head.load(SeqCst)
    }

    /// The head and the tail now (loads only).
    pub(crate) fn cursors(&self) -> (u64, u64) {
        (
            self.cursors.head.load(Relaxed),
            self.cursors.tail.load(Relaxed),
        )
    }

    /// Messages between head and tail, plus re-queued ones (a snapshot).
    pub(crate) fn len(&self) -> u64 {
        let head = self.cursors.head.load(SeqCst);
        let tail = self.cursors.tail.load(SeqCst);
        let queued = tail.saturating_sub(head);
        // Saturating: the hint may hold anything in a damaged segment.
        queued
            .saturating_add(self.cursors.requeued.load(Relaxed))
            .min(self.cap())
    }
}

pub(crate) mod moved;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom;

#[cfg(all(test, loom))]
mod loom_moved;
