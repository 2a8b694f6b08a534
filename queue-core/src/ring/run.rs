//! Runs of consecutive slots, for the batch verbs. A batch claims its first
//! slot the usual way ([`Ring::try_claim_write`] / [`Ring::try_claim_read`],
//! with all their corner cases) and then extends the claim over the
//! positions right behind it.
//!
//! Every slot of a run is still claimed by its own CAS, making the same
//! transition a single claim makes (`EMPTY(l) -> WRITING(l, me)`,
//! `READY(l) -> READING(l, 1, me)`), so each slot says who holds it and
//! recovery needs nothing new: a dead producer's WRITING slots are
//! discarded one by one, a dead consumer's READING slots re-queued one by
//! one. What a run saves is the rest of the work per message: the cursor
//! moves once per run, the `closed` check after a write claim is made once
//! per run, and the publications are Release stores closed by one SeqCst
//! fence ([`Ring::publish_done`]) before the wake-up check.
//!
//! A position ahead of the tail (or head) may be claimed: a slot whose word
//! is `EMPTY(l)` (or `READY(l)`) is free for lap `l` whatever the cursor
//! says, exactly as for a claimant that found the cursor already advanced
//! by a helper; the cursor is then moved past the run, never past a
//! position not claimed yet.

use super::*;

/// Consecutive positions held by the caller: the slot of `first` and the
/// `len - 1` slots after it (wrapping at the end of the ring), all in the
/// state `first` holds its slot in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The claim of the run's first slot.
    pub first: Claim,
    /// Number of slots, at least 1.
    pub len: u64,
}

impl Run {
    /// A run of the one slot `claim` holds.
    pub(crate) fn single(claim: Claim) -> Self {
        Run {
            first: claim,
            len: 1,
        }
    }
}

/// The claims of the slots of a [`Run`], in queue order.
pub(crate) struct RunClaims {
    next: Claim,
    left: u64,
    /// First global slot index of the ring, and one past its last.
    base: u64,
    end: u64,
}

impl Iterator for RunClaims {
    type Item = Claim;

    #[inline]
    fn next(&mut self) -> Option<Claim> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let claim = self.next;
        (self.next.idx, self.next.lap) = step(claim.idx, claim.lap, self.base, self.end);
        Some(claim)
    }
}

/// The slot and lap of the position after slot `idx` of lap `lap`, in a
/// ring over the global slots `base .. end`.
#[inline]
fn step(idx: u64, lap: u32, base: u64, end: u64) -> (u64, u32) {
    if idx + 1 == end {
        (base, lap.wrapping_add(1))
    } else {
        (idx + 1, lap)
    }
}

/// Moves `cursor` forward to `end`, unless a helper moved it there (or
/// past) already.
fn advance_to(cursor: &AtomicU64, end: u64) {
    let mut now = cursor.load(SeqCst);
    // Wrapping: only a damaged segment gets near 2^64.
    while (end.wrapping_sub(now) as i64) > 0 {
        match cursor.compare_exchange(now, end, SeqCst, Relaxed) {
            Ok(_) => return,
            Err(moved) => now = moved,
        }
    }
}

impl<S: Slots> Ring<'_, S> {
    /// The claims of the slots of `run`, in queue order.
    #[inline]
    pub(crate) fn claims(&self, run: Run) -> RunClaims {
        RunClaims {
            next: run.first,
            left: run.len,
            base: self.base,
            end: self.base + self.cap(),
        }
    }

    /// The position of `claim`'s slot, given a cursor value `near` less
    /// than a lap away from it (the lap in a claim is truncated to 32 bits).
    pub(super) fn position_of(&self, claim: Claim, near: u64) -> u64 {
        let cap = self.cap();
        let near_lap = near / cap;
        let lap = near_lap.wrapping_add(claim.lap.wrapping_sub(near_lap as u32) as i32 as u64);
        lap.wrapping_mul(cap).wrapping_add(claim.idx - self.base)
    }

    /// Claims the positions right behind `first`, up to `most` slots in
    /// all, each by one CAS from the word `from(lap)` to `to(lap)`, and
    /// stops at the first slot holding another word. Returns the run's
    /// length (with `first`).
    #[inline]
    fn claim_behind(
        &self,
        first: Claim,
        most: u64,
        from: impl Fn(u32) -> u64,
        to: impl Fn(u32) -> u64,
    ) -> u64 {
        let (base, end) = (self.base, self.base + self.cap());
        let (mut idx, mut lap) = (first.idx, first.lap);
        let mut len = 1;
        while len < most {
            (idx, lap) = step(idx, lap, base, end);
            let slot = self.slots.state(idx);
            let expected = from(lap);
            // SYNC: the Acquire load and the CAS (SeqCst) pair with the
            // Release that made the word `expected`, as in the single
            // claims. The plain load first keeps a slot that is not ready
            // from costing a failed CAS (an exclusive cache line).
            if slot.load(Acquire) != expected
                || slot
                    .compare_exchange(expected, to(lap), SeqCst, Relaxed)
                    .is_err()
            {
                break;
            }
            len += 1;
        }
        len
    }

    /// Extends the write claim `first` (just made by
    /// [`Ring::try_claim_write`]) over the free positions right behind it,
    /// up to `most` slots in all, and moves the tail past them. Stops at the
    /// first position that is not free for its lap (the ring is full there,
    /// or another producer claimed it first).
    pub(crate) fn extend_write(&self, first: Claim, most: u64, me: u16) -> Run {
        let len = self.claim_behind(
            first,
            most,
            |lap| pack(lap, EMPTY, 0), // { lap, EMPTY }: free, pairs with `release_read`
            |lap| pack(lap, WRITING, me), // { lap, WRITING, me }
        );
        let run = Run { first, len };
        if len == 1 {
            return run;
        }
        seqcst_order_point();
        // SYNC: as in `try_claim_write`, one check after the last claim CAS
        // (all SeqCst) covers the whole extension: either the closer's
        // drain scan sees our WRITING slots, or we see `closed` and give
        // the extension back. (`first` passed its own check.)
        if self.cursors.closed.load(SeqCst) != 0 {
            for claim in self.claims(run).skip(1) {
                self.abandon_write(claim);
            }
            return Run::single(first);
        }
        let tail = self.cursors.tail;
        let start = self.position_of(first, tail.load(Relaxed));
        advance_to(tail, start.wrapping_add(len)); // { tail: start + len }
        run
    }

    /// Extends the read claim `first` (just made by [`Ring::try_claim_read`];
    /// any position before a claimed one was claimed too, so the head may
    /// pass the run) over the READY positions right behind it, up to `most`
    /// slots in all, and moves the head past them. Stops at the first
    /// position not READY for its lap (not written yet, or claimed by
    /// another consumer first).
    pub(crate) fn extend_read(&self, first: Claim, most: u64, me: u16) -> Run {
        let len = self.claim_behind(
            first,
            most,
            |lap| pack(lap, READY, 0), // { lap, READY }: pairs with `publish` / `publish_quiet`
            |lap| pack_gen(lap, 1, READING, me), // { lap, generation: 1, READING, me }
        );
        if len > 1 {
            let head = self.cursors.head;
            let start = self.position_of(first, head.load(Relaxed));
            advance_to(head, start.wrapping_add(len)); // { head: start + len }
        }
        Run { first, len }
    }

    /// Makes a written message of a run visible to consumers, without the
    /// SeqCst order [`Ring::publish`] gives: the caller calls
    /// [`Ring::publish_done`] after the run's last one, before it looks
    /// for sleeping consumers.
    #[inline]
    pub(crate) fn publish_quiet(&self, claim: Claim) {
        // SYNC: Release pairs with the consumer's claim CAS (Acquire within
        // SeqCst), so the payload is visible before the message is.
        self.slots
            .state(claim.idx)
            .store(pack(claim.lap, READY, 0), Release); // { lap, READY }
    }

    /// Ends a run of [`Ring::publish_quiet`] calls.
    #[inline]
    pub(crate) fn publish_done(&self) {
        // SYNC: orders the Release stores of the run before the producer's
        // SeqCst load of `get_seq` in `WaitPoint::notify_one`, as the SeqCst
        // store of `publish` does for one message: the Dekker partner of a
        // sleeping consumer's `fetch_or` in `WaitPoint::register`.
        crate::sync::atomic::fence(SeqCst);
    }
}
