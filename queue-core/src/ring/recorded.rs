//! Recorded runs: a producer takes the free slots at the tail, and a
//! consumer the ready messages at the head, with one claim instead of one
//! CAS each (the batch verbs' common case).
//!
//! The claimant looks at the slots from the cursor on (loads only) and
//! counts `n` in a row that hold the word it needs (`EMPTY(l)` to write,
//! `READY(l)` to read), then claims the first by one CAS - to
//! `WRITE_RUN(l, n, me)` or `READ_RUN(l, n, me)`, the run's *record* - and
//! moves the cursor past all `n`. The `n - 1` slots behind the record keep
//! their words and are the claimant's alone, because every other way to
//! claim a slot starts at the slot under the cursor or walks forward from
//! a slot it claimed:
//!
//! * the cursor held no value between the record's position `p` and
//!   `p + n` before the CAS (it passes `p` only once that slot is claimed),
//!   and after it every claimant that finds the cursor on a record moves it
//!   straight to `p + n` (`try_claim_write_slow`, `try_claim_read_slow`);
//! * a run extended slot by slot ([`Ring::extend_write`],
//!   [`Ring::extend_read`]) stops at the first slot that does not hold the
//!   word it needs, so it can reach the slots behind `p` only through `p`,
//!   where it finds the record (or claims `p` first, and then the record's
//!   CAS fails and nothing is claimed);
//! * consumers never claim an EMPTY word nor producers a READY one, and
//!   re-queued scans, lease expiry and recovery never touch either.
//!
//! So no other word needs a locked instruction. A producer writes the `n`
//! payloads, publishing each slot behind the record with a Release store
//! right after its payload, and the record last (until then a consumer
//! finds the record, a writer at work, and waits; it cannot reach the
//! slots behind). A consumer copies
//! the record's message first and hands the slots behind it over as it
//! copies them, each with a look and a Release store (`EMPTY(l + 1)`), and
//! the record last, by a CAS from its word, so the record lives as long as
//! any slot of the run is held.
//!
//! A participant that dies in the middle leaves its record, from which
//! recovery deals with the run: a dead producer's is discarded whole (the
//! slots behind it still EMPTY or READY for their lap, then the record,
//! skip to the next lap: nobody could reach them, so nothing of the run was
//! delivered - `put_many` commits a prefix of its runs), a dead consumer's
//! first message and every slot behind it still READY go back for another
//! consumer ([`Ring::requeue_run`]; the slots behind first and the record
//! last, so a recovery that dies in turn leaves the record for the next
//! one). What that saves the batch verbs is a locked instruction per
//! message on each side: two per run instead. (Runs of fewer than
//! `RECORD_FROM` slots are claimed slot by slot, as [`Ring::extend_write`]
//! and [`Ring::extend_read`] do.)

use super::run::{Run, Span, advance_from, step};
use super::*;

/// Most messages a recorded run holds: its length minus one is kept in the
/// run word's generation field.
pub(crate) const RUN_MAX: u64 = 256;

/// Fewest slots a run is recorded for: shorter ones are claimed slot by
/// slot, whose few locked instructions cost less than a record's own span
/// and its release (callgrind, `hot_path N 64 2`: 512 instructions a
/// message slot by slot, 620 recorded). The unit tests and the loom models
/// record runs of three, so that their small rings see both ways.
pub(crate) const RECORD_FROM: u64 = if cfg!(any(test, loom)) { 3 } else { 4 };

impl<S: Slots> Ring<'_, S> {
    /// Claims a run of up to `most` free positions at the tail, as
    /// participant `me`: in the common case (the slot under the tail free,
    /// no race) a recorded run if at least `RECORD_FROM` are free, else the
    /// first claimed and the rest slot by slot; otherwise what
    /// [`Ring::try_claim_write`] and then [`Ring::extend_write`] do.
    #[inline]
    pub(crate) fn try_claim_write_run(&self, me: u16, most: u64) -> Result<Run, PutBlocked> {
        match self.claim_write_run_fast(me, most) {
            Ok(run) => Ok(run),
            Err(seen) => {
                let first = self.try_claim_write_slow(me, seen)?;
                Ok(self.extend_write(first, most, me))
            }
        }
    }

    /// The common case of [`try_claim_write_run`](Self::try_claim_write_run).
    #[inline(always)]
    fn claim_write_run_fast(&self, me: u16, most: u64) -> Result<Run, Seen> {
        let Cursors { tail, closed, .. } = self.cursors;
        let Look {
            pos: t,
            idx,
            lap,
            slot,
            ..
        } = self.free_under_tail()?;
        let n = self.run_size(idx, lap, most, |lap| pack(lap, EMPTY, 0));
        let recorded = n >= RECORD_FROM;
        let claimed = if recorded {
            pack_run(lap, n, WRITE_RUN, me) // { lap, WRITE_RUN of n, me }
        } else {
            pack(lap, WRITING, me) // { lap, WRITING, me }
        };
        // SYNC: as in `claim_write_fast` (SeqCst, and the Acquire of the
        // free words behind pairs with the consumers' hand-overs).
        if slot
            .compare_exchange(pack(lap, EMPTY, 0), claimed, SeqCst, Relaxed)
            .is_err()
        {
            return Err(Seen::Lost);
        }
        let first = Claim {
            idx,
            lap,
            generation: 0,
        };
        let run = Run {
            first,
            // A short run: the slots behind claimed one by one (a race may
            // end it early).
            len: if recorded {
                n
            } else {
                self.claim_write_behind(first, n, me)
            },
            recorded,
        };
        seqcst_order_point();
        // SYNC: as in `claimed_write`, after the claim CAS (SeqCst): either
        // the closer's drain scan sees our word, or we see `closed` and
        // give the run back.
        if closed.load(SeqCst) != 0 {
            self.abandon_run(run);
            return Err(Seen::Closed);
        }
        // Until this CAS a producer that finds the tail on our first slot
        // moves it past the run (`try_claim_write_slow`).
        advance_from(tail, t, t.wrapping_add(run.len)); // { tail: t + len }
        Ok(run)
    }

    /// Gives back the write run `run`, just claimed and not written: its
    /// positions are skipped (the slots behind a record first).
    pub(super) fn abandon_run(&self, run: Run) {
        if !run.recorded {
            for claim in self.write_claims(run) {
                self.abandon_write(claim);
            }
            return;
        }
        self.each_range(run, true, |idx, n, lap| {
            let skipped = pack(lap.wrapping_add(1), EMPTY, 0); // { lap + 1, EMPTY }
            for slot in self.slots.states(idx, n) {
                slot.store(skipped, SeqCst);
            }
        });
        self.abandon_write(run.first);
    }

    /// Claims a run of up to `most` ready messages at the head, as
    /// participant `me`: in the common case (nothing re-queued, a message
    /// ready under the head, no race) a recorded run if at least
    /// `RECORD_FROM` are ready, else the first claimed and the rest slot by
    /// slot; otherwise what [`Ring::try_claim_read`] and then
    /// [`Ring::extend_read`] (admitting every message) do.
    #[inline]
    pub(crate) fn try_claim_read_run(&self, me: u16, most: u64) -> Result<Run, GetBlocked> {
        match self.claim_read_run_fast(me, most) {
            Ok(run) => Ok(run),
            Err(seen) => {
                let first = self.try_claim_read_slow(me, seen)?;
                Ok(self.extend_read(first, most, me, |_| true))
            }
        }
    }

    /// The common case of [`try_claim_read_run`](Self::try_claim_read_run).
    #[inline(always)]
    fn claim_read_run_fast(&self, me: u16, most: u64) -> Result<Run, Seen> {
        let Look {
            pos: h,
            idx,
            lap,
            slot,
            ..
        } = self.ready_under_head()?;
        let n = self.run_size(idx, lap, most, |lap| pack(lap, READY, 0));
        let recorded = n >= RECORD_FROM;
        let claimed = if recorded {
            pack_run(lap, n, READ_RUN, me) // { lap, READ_RUN of n, me }
        } else {
            pack_gen(lap, 1, READING, me) // { lap, generation: 1, READING, me }
        };
        // SYNC: Acquire (within SeqCst) pairs with `publish` / `publish_run`
        // for the first message; `alike_from`'s Acquire loads did for the
        // rest. SeqCst: the word other claimants and recovery read.
        if slot
            .compare_exchange(pack(lap, READY, 0), claimed, SeqCst, Relaxed)
            .is_err()
        {
            return Err(Seen::Lost);
        }
        let first = Claim {
            idx,
            lap,
            generation: 1,
        };
        // A short run: the slots behind claimed one by one (a race may end
        // it early).
        let len = if recorded {
            n
        } else {
            self.claim_read_behind(first, n, me, |_| true)
        };
        // Until this CAS, a claimant that finds the head on our first slot
        // moves it past the run (as here) or past the single claim.
        advance_from(self.cursors.head, h, h.wrapping_add(len)); // { head: h + len }
        Ok(Run {
            first,
            len,
            recorded,
        })
    }

    /// The size of the run to claim from slot `idx` of lap `lap` (seen
    /// holding `word(lap)`) for a caller that wants up to `most`: the slots
    /// in a row that hold their lap's word, when that may reach
    /// [`RECORD_FROM`]; otherwise just `most`, an upper bound for a run
    /// claimed slot by slot (which stops where the words do), so a small
    /// batch does not look at its slots twice.
    #[inline(always)]
    fn run_size(&self, idx: u64, lap: u32, most: u64, word: impl Fn(u32) -> u64) -> u64 {
        if most < RECORD_FROM {
            return most;
        }
        self.alike_from(idx, lap, most.min(RUN_MAX), word)
    }

    /// How many positions from slot `idx` of lap `lap` on (the first
    /// included, already seen) hold the word `word(lap)` for their lap, in
    /// a row, up to `most` (at least 1) and never a whole lap.
    #[inline]
    fn alike_from(&self, idx: u64, lap: u32, most: u64, word: impl Fn(u32) -> u64) -> u64 {
        let most = most.min(self.cap());
        let (base, end) = (self.base, self.base + self.cap());
        let before_end = most.min(end - idx);
        // SYNC: Acquire (in `count_alike`) pairs with the Release that
        // stored the word (a publication, or a consumer's hand-over), so
        // what we do to the slot after our claim comes after what was done
        // before (the word cannot change meanwhile: see the module docs).
        // The first slot is looked at again, so that a run of a multiple
        // of four slots is counted four at a step to its end; if it
        // changed meanwhile, the claim's CAS fails.
        let n = self.slots.count_alike(idx, before_end, word(lap));
        if n < before_end || most == before_end {
            return n.max(1);
        }
        n + self
            .slots
            .count_alike(base, most - before_end, word(lap.wrapping_add(1)))
    }

    /// Hands over the first slot of the recorded run `run`, held by `me`,
    /// once every slot behind it was handed over (or given back): the run
    /// is over. False if the slot was no longer ours (a foreign write).
    pub(crate) fn release_record(&self, run: Run, me: u16) -> bool {
        let first = run.first;
        let ok = self
            .slots
            .state(first.idx)
            .compare_exchange(
                pack_run(first.lap, run.len, READ_RUN, me),
                pack(first.lap.wrapping_add(1), EMPTY, 0), // { lap + 1, EMPTY }
                SeqCst,
                Relaxed,
            )
            .is_ok();
        // SYNC: orders the Release stores of the slots behind the record
        // before the consumer's SeqCst load of `put_seq` in
        // `WaitPoint::notify_one` (the Dekker partner of a sleeping
        // producer's `fetch_or`), as `publish_run`'s fence does for a
        // producer.
        crate::sync::atomic::fence(SeqCst);
        ok
    }

    /// Gives back the slots of the span `span` behind a record from slot
    /// `k` on (a batch that stopped early): each still READY becomes
    /// REQUEUED for another consumer.
    pub(crate) fn requeue_behind(&self, span: Span, k: u64) {
        for idx in span.idx + k..span.idx + span.len {
            self.requeue_ready(idx, span.lap);
        }
    }

    /// Re-queues the run whose first slot `idx` held the READ_RUN word `seen`
    /// when its owner died: every slot behind it still READY for its lap,
    /// then the first. Returns how many messages went back.
    pub(super) fn requeue_run(&self, idx: u64, seen: u64) -> u64 {
        let mut back = 0;
        for (at, lap) in self.behind_record(idx, seen) {
            back += u64::from(self.requeue_ready(at, lap));
        }
        let first = self.slots.state(idx);
        let requeued = pack_gen(lap_of(seen), 1, REQUEUED, 0); // { lap, generation: 1, REQUEUED }
        if first
            .compare_exchange(seen, requeued, SeqCst, Relaxed)
            .is_ok()
        {
            self.count_requeued(idx);
            back += 1;
        }
        back
    }

    /// Discards the run whose first slot `idx` held the WRITE_RUN word
    /// `seen` when its owner died: every slot behind it still EMPTY or
    /// READY for its lap (written or not, nobody could reach it), then the
    /// first, skip to the next lap. Returns how many positions it skipped.
    pub(super) fn discard_run(&self, idx: u64, seen: u64) -> u64 {
        let mut skipped = 0;
        for (at, lap) in self.behind_record(idx, seen) {
            let slot = self.slots.state(at);
            let next = pack(lap.wrapping_add(1), EMPTY, 0); // { lap + 1, EMPTY }
            for held in [pack(lap, EMPTY, 0), pack(lap, READY, 0)] {
                if slot.compare_exchange(held, next, SeqCst, Relaxed).is_ok() {
                    skipped += 1;
                    break;
                }
            }
        }
        let next = pack(lap_of(seen).wrapping_add(1), EMPTY, 0); // { lap + 1, EMPTY }
        let first = self.slots.state(idx);
        if first.compare_exchange(seen, next, SeqCst, Relaxed).is_ok() {
            skipped += 1;
        }
        skipped
    }

    /// The slots behind the record in slot `idx`, whose word was `seen`,
    /// each with the lap its position is in (recovery only: no hot path).
    fn behind_record(&self, idx: u64, seen: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
        let (base, end) = (self.base, self.base + self.cap());
        std::iter::successors(Some((idx, lap_of(seen))), move |&(at, lap)| {
            Some(step(at, lap, base, end))
        })
        .skip(1)
        .take((run_len(seen).min(self.cap()) - 1) as usize)
    }

    /// The slots behind the record in slot `idx` (word `seen`) that the run
    /// still holds: for a write run those still EMPTY or READY for their
    /// lap (being written, or written and waiting for the record), for a
    /// read run those still READY (not handed over yet). For `inspect`,
    /// which shows them as the record's owner's.
    pub(crate) fn held_behind(&self, idx: u64, seen: u64) -> impl Iterator<Item = u64> + '_ {
        let kind = kind_of(seen);
        self.behind_record(idx, seen)
            .filter(move |&(at, lap)| {
                let word = self.slots.state(at).load(Acquire);
                word == pack(lap, READY, 0) || (kind == WRITE_RUN && word == pack(lap, EMPTY, 0))
            })
            .map(|(at, _)| at)
    }

    /// Re-queues slot `idx` if it still holds a READY message of lap `lap`
    /// (behind a record, so nobody else claims it): its first delivery
    /// failed.
    fn requeue_ready(&self, idx: u64, lap: u32) -> bool {
        let requeued = pack_gen(lap, 1, REQUEUED, 0); // { lap, generation: 1, REQUEUED }
        let ok = self
            .slots
            .state(idx)
            .compare_exchange(pack(lap, READY, 0), requeued, SeqCst, Relaxed)
            .is_ok();
        if ok {
            self.count_requeued(idx);
        }
        ok
    }

    /// The owner of the run whose record slot `idx`, holding the READY word
    /// `s`, lies behind, if any: a READ_RUN word at most `RUN_MAX - 1` positions
    /// before it whose length covers it, for the lap the slot is in.
    pub(super) fn run_over(&self, idx: u64, s: u64) -> Option<u16> {
        let (base, cap) = (self.base, self.cap());
        (1..RUN_MAX.min(cap)).find_map(|back| {
            // The slot `back` positions before, and the lap it would have.
            let (at, lap) = if idx - base >= back {
                (idx - back, lap_of(s))
            } else {
                (idx + cap - back, lap_of(s).wrapping_sub(1))
            };
            let w = self.slots.state(at).load(SeqCst);
            (kind_of(w) == READ_RUN && lap_of(w) == lap && run_len(w) > back).then_some(owner_of(w))
        })
    }
}
