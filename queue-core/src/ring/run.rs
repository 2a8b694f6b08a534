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
//! per run, the publications are Release stores closed by one SeqCst fence
//! ([`Ring::publish_run`]) before the wake-up check, and the loops go over
//! [`Span`]s: consecutive slots of one lap and one generation, whose state
//! words are stepped through and whose expected and new words are computed
//! once per span instead of once per slot. (A write run's slots are all
//! written and published alike, so its loops go over plain ranges of slots,
//! [`Ring::each_range`]; a recorded read run within one lap is its record
//! and one span behind it, [`Ring::span_behind_record`].)
//!
//! That is the slow way, taken when the first look at the cursor does not
//! find the common case, or when a batch must see each message's length
//! before claiming it; the common case claims the whole run with one CAS
//! on its first slot, a *recorded* run (`ring/recorded.rs`), whose slots
//! behind the first keep their EMPTY or READY words. [`Span`]s say how each
//! slot is held ([`Held`]).
//!
//! A position ahead of the tail (or head) may be claimed: a slot whose word
//! is `EMPTY(l)` (or `READY(l)`) is free for lap `l` whatever the cursor
//! says, exactly as for a claimant that found the cursor already advanced
//! by a helper; the cursor is then moved past the run, never past a
//! position not claimed yet.

use super::*;

/// Consecutive positions held by the caller: the slot of `first` and the
/// `len - 1` slots after it (wrapping at the end of the ring), all in the
/// state `first` holds its slot in - or, for a recorded run, the first in
/// its READ_RUN word and the rest still READY (`ring/recorded.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The claim of the run's first slot.
    pub first: Claim,
    /// Number of slots, at least 1.
    pub len: u64,
    /// Taken by one claim recorded in the first slot's word
    /// (`READ_RUN(l, len, me)`), the slots behind it left READY.
    pub recorded: bool,
}

impl Run {
    /// A run of the one slot `claim` holds.
    pub(crate) fn single(claim: Claim) -> Self {
        Run {
            first: claim,
            len: 1,
            recorded: false,
        }
    }
}

/// How the caller holds the slots of a [`Span`], which says how each is
/// handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// By words that name the caller (WRITING, or READING of the span's
    /// generation): each handed over by a CAS.
    Own,
    /// The first slot of a recorded run, by its READ_RUN word: handed over last,
    /// by [`Ring::release_record`].
    Record,
    /// The slots behind a record, still READY: each handed over by a store.
    Behind,
}

/// Part of a [`Run`]: consecutive slot indices, one lap, one delivery
/// generation (a read run's first slot may have any, the slots claimed
/// behind it have 1; a write run's all have 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// First slot index.
    pub idx: u64,
    /// Number of slots, at least 1.
    pub len: u64,
    /// Lap the slots were claimed in.
    pub lap: u32,
    /// Delivery generation of the claims (0 for writes).
    pub generation: u32,
    /// How the slots are held.
    pub held: Held,
}

impl Span {
    /// The claim of slot `k` of the span (`k < len`).
    #[inline]
    pub(crate) fn claim(self, k: u64) -> Claim {
        Claim {
            idx: self.idx + k,
            lap: self.lap,
            generation: self.generation,
        }
    }

    /// The claims of the span's slots from slot `k` on.
    pub(crate) fn claims_from(self, k: u64) -> impl Iterator<Item = Claim> {
        (k..self.len).map(move |k| self.claim(k))
    }
}

/// The spans of a run, in queue order ([`Ring::write_spans`],
/// [`Ring::read_spans`]): its first slot alone if its generation differs
/// from the rest's, then the slots split where the ring wraps. Worked out
/// one at a time from a few words, which stay in registers.
pub(crate) struct Spans {
    /// Where the next span starts.
    idx: u64,
    lap: u32,
    generation: u32,
    /// Generation of the slots behind the first.
    behind: u32,
    /// Slots not yet in a span.
    left: u64,
    /// Whether the next span is the first slot alone.
    alone: bool,
    /// Whether the run is a recorded one.
    recorded: bool,
    /// The ring's global slot indices `base .. end`.
    base: u64,
    end: u64,
}

impl Iterator for Spans {
    type Item = Span;

    #[inline]
    fn next(&mut self) -> Option<Span> {
        if self.left == 0 {
            return None;
        }
        let len = if self.alone {
            1
        } else {
            self.left.min(self.end - self.idx)
        };
        let held = match (self.recorded, self.alone) {
            (false, _) => Held::Own,
            (true, true) => Held::Record,
            (true, false) => Held::Behind,
        };
        let span = Span {
            idx: self.idx,
            len,
            lap: self.lap,
            generation: self.generation,
            held,
        };
        self.left -= len;
        self.idx += len;
        if self.idx == self.end {
            (self.idx, self.lap) = (self.base, self.lap.wrapping_add(1));
        }
        if self.alone {
            (self.alone, self.generation) = (false, self.behind);
        }
        Some(span)
    }
}

/// The slot and lap of the position after slot `idx` of lap `lap`, in a
/// ring over the global slots `base .. end`.
#[inline]
pub(super) fn step(idx: u64, lap: u32, base: u64, end: u64) -> (u64, u32) {
    if idx + 1 == end {
        (base, lap.wrapping_add(1))
    } else {
        (idx + 1, lap)
    }
}

/// Moves `cursor` from `start`, where the caller's run begins, to `end`:
/// one CAS in the common case, else as [`advance_to`].
#[inline]
pub(super) fn advance_from(cursor: &AtomicU64, start: u64, end: u64) {
    if cursor
        .compare_exchange(start, end, SeqCst, Relaxed)
        .is_err()
    {
        advance_to(cursor, end);
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
    /// The claims of the slots of `run`, a write run, in queue order.
    /// (A read run's claims differ in generation: see [`Ring::read_spans`].)
    pub(crate) fn write_claims(&self, run: Run) -> impl Iterator<Item = Claim> {
        self.write_spans(run).flat_map(|span| span.claims_from(0))
    }

    /// Calls `f` with the slots of the write run `run` (past its first,
    /// the record, if `past_record`), as ranges of consecutive slots `(idx,
    /// n, lap)` in queue order: once, or twice where the ring wraps. The
    /// write side's loops go over these: a write run's slots are written
    /// alike, and published or given back alike but for the record, which
    /// waits for the rest; so they need no [`Span`]s.
    #[inline(always)]
    pub(crate) fn each_range(&self, run: Run, past_record: bool, mut f: impl FnMut(u64, u64, u32)) {
        let (first, end) = (run.first, self.base + self.cap());
        let (idx, lap) = if past_record {
            step(first.idx, first.lap, self.base, end)
        } else {
            (first.idx, first.lap)
        };
        let len = run.len - u64::from(past_record);
        let n = len.min(end - idx);
        f(idx, n, lap);
        if n < len {
            f(self.base, len - n, lap.wrapping_add(1));
        }
    }

    /// The spans of `run`, a write run ([`Ring::extend_write`]), in queue
    /// order: its first slot, then the rest (split where the ring wraps).
    #[inline]
    pub(crate) fn write_spans(&self, run: Run) -> Spans {
        self.spans(run, 0)
    }

    /// The spans of `run`, a read run ([`Ring::extend_read`]), in queue
    /// order: its first slot (a claim of any generation), then the rest
    /// (generation 1, split where the ring wraps).
    #[inline]
    pub(crate) fn read_spans(&self, run: Run) -> Spans {
        self.spans(run, 1)
    }

    /// The spans of `run`, whose slots behind the first were claimed with
    /// generation `behind`. The first slot joins the span behind it when
    /// its claim has the same generation (always for a write run, and for
    /// a read run that did not start at a re-queued message).
    #[inline]
    fn spans(&self, run: Run, behind: u32) -> Spans {
        let first = run.first;
        Spans {
            idx: first.idx,
            lap: first.lap,
            generation: first.generation,
            behind,
            left: run.len,
            // A single slot may belong to another level than this ring's
            // (the queue's getter hands over through level 0's ring): its
            // span is the slot alone, whatever the ring's bounds. A record
            // is handed over on its own.
            alone: run.len == 1 || first.generation != behind || run.recorded,
            recorded: run.recorded,
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
    /// stops at the first slot holding another word or refused by `admit`
    /// (asked with the slot's index once its word was seen `from(lap)`,
    /// before the CAS). Returns the run's length (with `first`).
    #[inline]
    fn claim_behind(
        &self,
        first: Claim,
        most: u64,
        from: impl Fn(u32) -> u64,
        to: impl Fn(u32) -> u64,
        mut admit: impl FnMut(u64) -> bool,
    ) -> u64 {
        // Never more than a lap: the run would meet its own first slot.
        let behind = most.min(self.cap()).saturating_sub(1);
        let (base, end) = (self.base, self.base + self.cap());
        let (idx, lap) = step(first.idx, first.lap, base, end);
        let before_end = behind.min(end - idx);
        let mut len = 1;
        // The `n` slots from `idx` of lap `lap`; whether all were claimed.
        // (Called at most twice, for the slots before the ring's end and
        // after it: an array of spans to loop over would live in memory.)
        let mut claim_span = |idx: u64, lap: u32, n: u64| {
            let (expected, claimed) = (from(lap), to(lap));
            for (idx, slot) in (idx..).zip(self.slots.states(idx, n)) {
                // SYNC: the Acquire load and the CAS (SeqCst) pair with the
                // Release that made the word `expected`, as in the single
                // claims. The plain load first keeps a slot that is not
                // ready from costing a failed CAS (an exclusive cache line).
                if slot.load(Acquire) != expected
                    || !admit(idx)
                    || slot
                        .compare_exchange(expected, claimed, SeqCst, Relaxed)
                        .is_err()
                {
                    return false;
                }
                len += 1;
            }
            true
        };
        if claim_span(idx, lap, before_end) && behind > before_end {
            claim_span(base, lap.wrapping_add(1), behind - before_end);
        }
        len
    }

    /// Claims the free positions behind the write claim `first`, up to
    /// `most` slots in all; returns the run's length.
    #[inline]
    pub(super) fn claim_write_behind(&self, first: Claim, most: u64, me: u16) -> u64 {
        self.claim_behind(
            first,
            most,
            |lap| pack(lap, EMPTY, 0), // { lap, EMPTY }: free, pairs with `release_read`
            |lap| pack(lap, WRITING, me), // { lap, WRITING, me }
            |_| true,
        )
    }

    /// Claims the ready positions behind the read claim `first`, up to
    /// `most` slots in all and while `admit` agrees; returns the run's
    /// length.
    #[inline]
    pub(super) fn claim_read_behind(
        &self,
        first: Claim,
        most: u64,
        me: u16,
        admit: impl FnMut(u64) -> bool,
    ) -> u64 {
        self.claim_behind(
            first,
            most,
            |lap| pack(lap, READY, 0), // { lap, READY }: pairs with `publish` / `publish_run`
            |lap| pack_gen(lap, 1, READING, me), // { lap, generation: 1, READING, me }
            admit,
        )
    }

    /// Extends the write claim `first` (just made by
    /// [`Ring::try_claim_write`]) over the free positions right behind it,
    /// up to `most` slots in all, and moves the tail past them. Stops at the
    /// first position that is not free for its lap (the ring is full there,
    /// or another producer claimed it first).
    pub(crate) fn extend_write(&self, first: Claim, most: u64, me: u16) -> Run {
        let run = Run {
            first,
            len: self.claim_write_behind(first, most, me),
            recorded: false,
        };
        if run.len == 1 {
            return run;
        }
        seqcst_order_point();
        // SYNC: as in `try_claim_write`, one check after the last claim CAS
        // (all SeqCst) covers the whole extension: either the closer's
        // drain scan sees our WRITING slots, or we see `closed` and give
        // the extension back. (`first` passed its own check.)
        if self.cursors.closed.load(SeqCst) != 0 {
            for claim in self.write_claims(run).skip(1) {
                self.abandon_write(claim);
            }
            return Run::single(first);
        }
        let tail = self.cursors.tail;
        let start = self.position_of(first, tail.load(Relaxed));
        advance_to(tail, start.wrapping_add(run.len)); // { tail: start + len }
        run
    }

    /// Extends the read claim `first` (just made by [`Ring::try_claim_read`];
    /// any position before a claimed one was claimed too, so the head may
    /// pass the run) over the READY positions right behind it, up to `most`
    /// slots in all, and moves the head past them. Stops at the first
    /// position not READY for its lap (not written yet, or claimed by
    /// another consumer first) or refused by `admit`, which is asked with
    /// the slot's index once its word was seen READY: the message there may
    /// be looked at (it stays as published while the word is READY, and
    /// the claim CAS that follows proves the word did not change).
    pub(crate) fn extend_read(
        &self,
        first: Claim,
        most: u64,
        me: u16,
        admit: impl FnMut(u64) -> bool,
    ) -> Run {
        let len = self.claim_read_behind(first, most, me, admit);
        if len > 1 {
            let head = self.cursors.head;
            let start = self.position_of(first, head.load(Relaxed));
            advance_to(head, start.wrapping_add(len)); // { head: start + len }
        }
        Run {
            first,
            len,
            recorded: false,
        }
    }

    /// Makes the written messages of `run` visible to consumers, in
    /// queue order (a death in between leaves a published prefix), or for
    /// a recorded run all at once, when its record is published.
    #[inline]
    pub(crate) fn publish_run(&self, run: Run) {
        // A record's slot waits for the rest.
        self.each_range(run, run.recorded, |idx, n, lap| {
            let publication = Publication::of(lap);
            for slot in self.slots.states(idx, n) {
                publication.slot(slot);
            }
        });
        self.publish_record(run);
    }

    /// Publishes the record of `run` if it is a recorded run (the slots
    /// behind it published already: [`Publication`]), then orders the
    /// run's publications before the wake-up check.
    #[inline]
    pub(crate) fn publish_record(&self, run: Run) {
        // A record last: until then no consumer can reach the slots behind
        // it (`ring/recorded.rs`), and then they are all ready.
        if run.recorded {
            let first = run.first;
            Publication::of(first.lap).slot(self.slots.state(first.idx));
        }
        // SYNC: orders the Release stores of the run before the producer's
        // SeqCst load of `get_seq` in `WaitPoint::notify_one`, as the SeqCst
        // store of `publish` does for one message: the Dekker partner of a
        // sleeping consumer's `fetch_or` in `WaitPoint::register`.
        crate::sync::atomic::fence(SeqCst);
    }

    /// The slots behind the record of `run`, a recorded read run within
    /// one lap (the common case), as one span: the caller then needs no
    /// [`Spans`] to work out. `None` for any other run.
    #[inline]
    pub(crate) fn span_behind_record(&self, run: Run) -> Option<Span> {
        let first = run.first;
        (run.recorded && first.idx + run.len <= self.base + self.cap()).then_some(Span {
            idx: first.idx + 1,
            len: run.len - 1,
            lap: first.lap,
            generation: 1,
            held: Held::Behind,
        })
    }

    /// The hand-overs of the slots of the read span `span`, held by `me`,
    /// to make one at a time, in order ([`HandOver::slot`]). (Not for a
    /// record: see [`Ring::release_record`].)
    #[inline]
    pub(crate) fn hand_over(&self, span: Span, me: u16) -> HandOver {
        debug_assert!(span.held != Held::Record, "a record is released last");
        HandOver {
            // { lap, generation, READING, me } or, behind a record, { lap, READY }
            held: match span.held {
                Held::Behind => pack(span.lap, READY, 0),
                _ => span.claim(0).reading_word(me),
            },
            free: pack(span.lap.wrapping_add(1), EMPTY, 0), // { lap + 1, EMPTY }
            store: span.held == Held::Behind,
        }
    }
}

/// The publication of written slots of one lap, by a Release store each: a
/// run's slots in [`Ring::publish_run`], and the slots behind a recorded
/// run's record one by one right after each is written (`put_many`: nobody
/// can reach them before the record is published, [`Ring::publish_record`]).
#[derive(Clone, Copy)]
pub(crate) struct Publication {
    ready: u64,
}

impl Publication {
    /// The publication of slots in lap `lap`.
    #[inline]
    pub(crate) fn of(lap: u32) -> Self {
        Publication {
            ready: pack(lap, READY, 0), // { lap, READY }
        }
    }

    /// Publishes the written slot whose state word is `state`.
    #[inline(always)]
    pub(crate) fn slot(self, state: &AtomicU64) {
        // SYNC: Release pairs with the consumer's claim CAS (Acquire within
        // SeqCst) or, behind a record, its Acquire load (`count_alike`),
        // so the payload is visible before the message is.
        state.store(self.ready, Release);
    }
}

/// The hand-overs of a read span's slots ([`Ring::hand_over`]): the words
/// computed once. The caller passes each slot's state word (its copy loop
/// steps through the slots anyway).
#[derive(Clone, Copy)]
pub(crate) struct HandOver {
    held: u64,
    free: u64,
    /// Whether the slots are handed over by a look and a store (behind a
    /// record: nobody else may change their READY words) rather than a CAS.
    store: bool,
}

impl HandOver {
    /// Hands over the span's slot whose state word is `state`, as
    /// [`Ring::release_read`] does; false if it is no longer held by us
    /// (taken over by recovery).
    #[inline]
    pub(crate) fn slot(&self, state: &AtomicU64) -> bool {
        if self.store {
            self.slot_by::<true>(state)
        } else {
            self.slot_by::<false>(state)
        }
    }

    /// Whether the span's slots are handed over by stores (behind a
    /// record): the caller's loop can then call `slot_by::<STORE>` with
    /// the answer, and test it once rather than once a slot.
    #[inline]
    pub(crate) fn by_store(&self) -> bool {
        self.store
    }

    /// [`slot`](Self::slot) where `STORE` is [`by_store`](Self::by_store).
    #[inline(always)]
    pub(crate) fn slot_by<const STORE: bool>(&self, state: &AtomicU64) -> bool {
        debug_assert_eq!(STORE, self.store);
        // SYNC: as in `release_read`: Release pairs with the next
        // producer's Acquire load; SeqCst orders it before the consumer's
        // SeqCst load of `put_seq` in `WaitPoint::notify_one`.
        if STORE {
            // Behind a record nobody else may change the READY word, so a
            // look replaces the CAS: it still catches a foreign write made
            // before it (damage). Release, as the CAS; the SeqCst fence of
            // `release_record`, after the run's last store, orders them all.
            if state.load(Relaxed) != self.held {
                return false;
            }
            state.store(self.free, Release);
            return true;
        }
        state
            .compare_exchange(self.held, self.free, SeqCst, Relaxed)
            .is_ok()
    }
}
