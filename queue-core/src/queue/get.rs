//! The get family: six single-message verbs over one
//! [`Queue::get_into_until`], six batch verbs over one [`Queue::take_many`],
//! and the claim every get and lease starts with. Each public verb only picks
//! a [`Deadline`].

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

use super::dead_letter::Admit;
use super::{ByteBudget, FEW, Queue};
use crate::batch::Batch;
use crate::delivery;
use crate::error::{Corruption, GetError};
use crate::ring::moved::MOVER;
use crate::ring::{Claim, GetBlocked, HandOver, Held, Ring, Run, Span};
use crate::segment::{Appended, Segment};
use crate::wait::{self, Deadline};

impl Queue {
    /// Takes the next message, blocking while the queue is empty.
    /// Returns [`GetError::Closed`] once the queue is closed and drained.
    pub fn get(&self) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_into_until(&mut buf, Deadline::Forever)?;
        Ok(buf)
    }

    /// Takes the next message if there is one now.
    pub fn try_get(&self) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_into_until(&mut buf, Deadline::Now)?;
        Ok(buf)
    }

    /// Takes the next message, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_into_until(&mut buf, Deadline::after(timeout))?;
        Ok(buf)
    }

    /// Takes the next message into `buf` (replacing its contents), blocking
    /// while empty, and returns its length. Reuses `buf`'s allocation.
    pub fn get_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        self.get_into_until(buf, Deadline::Forever)
    }

    /// Like [`get_into`](Self::get_into), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        self.get_into_until(buf, Deadline::Now)
    }

    /// Like [`get_into`](Self::get_into), waiting at most `timeout`.
    pub fn get_into_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, GetError> {
        self.get_into_until(buf, Deadline::after(timeout))
    }

    /// The one single-message get: claims the next message (waiting until
    /// `deadline`), copies it into `buf` and hands the slot over.
    fn get_into_until(&self, buf: &mut Vec<u8>, deadline: Deadline) -> Result<usize, GetError> {
        // The common case inline, as in `put_until`: a queue with plain
        // gets and a message ready. Anything else (nothing to take, a lost
        // race, delivery rules, damage) is the blocking path's, which
        // tries again and reports what it finds.
        if self.plain_gets {
            if let Ok(claim) = self.ring().claim_read_fast(self.me) {
                return self.finish_get(claim, buf);
            }
        }
        self.get_into_blocking(buf, deadline)
    }

    /// [`get_into_until`](Self::get_into_until) after its first attempt
    /// (if any) found nothing to take.
    #[inline(never)]
    fn get_into_blocking(&self, buf: &mut Vec<u8>, deadline: Deadline) -> Result<usize, GetError> {
        let claim = self.claim_read_blocking(deadline)?;
        self.finish_get(claim, buf)
    }

    /// The rest of a get once `claim` holds a message: copies it into
    /// `buf` (replacing its contents) and hands the slot over.
    #[inline(always)]
    fn finish_get(&self, claim: Claim, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        buf.clear();
        let len = self.copy_out(claim, buf);
        // The hand-over: until this store, our death re-queues the message.
        let handed_over = self.ring().release_read(claim, self.me);
        self.after_release(handed_over);
        match (len, handed_over) {
            (Ok(len), true) => Ok(len),
            (Err(e), _) => Err(e),
            (Ok(_), false) => Err(taken_over(claim)),
        }
    }

    /// Takes up to `max` messages: blocks until at least one is there, then
    /// takes whatever else is ready without waiting, until it holds 256 KiB
    /// of payload (passing that by one message at most: large messages come
    /// a few per call, which is faster than holding dozens). Sleeping
    /// producers are woken at the first free slot, as by `get`. Returns
    /// [`GetError::Closed`] only when nothing was taken.
    ///
    /// Allocates one `Vec` per message; a loop that takes many batches is
    /// faster with [`get_many_into`](Self::get_many_into), which reuses one
    /// [`Batch`].
    ///
    /// On a queue with one priority level and no `max_deliveries`, the
    /// messages are claimed in runs of consecutive ready slots, with the
    /// head moved and producers woken once per run (a `max` below 4 takes
    /// them one by one, as `get` does, while one is ready at once).
    ///
    /// Crash contract: each message leaves the queue when it is handed
    /// over, right after its copy (the first of a run taken in one step
    /// last, after the rest of the run). A consumer killed inside the
    /// call loses the messages this call had handed over (at most `max`;
    /// they never reached the caller), and nothing else: the ones it had
    /// claimed but not handed over are re-queued by recovery and delivered
    /// again, whole. A consumer that must lose nothing takes leases
    /// ([`get_lease`](Self::get_lease)) instead.
    pub fn get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        self.get_many_until(max, Deadline::Forever)
    }

    /// Like [`get_many`](Self::get_many), waiting at most `timeout` for the first message.
    pub fn get_many_timeout(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, GetError> {
        self.get_many_until(max, Deadline::after(timeout))
    }

    /// Like [`get_many`](Self::get_many), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        self.get_many_until(max, Deadline::Now)
    }

    fn get_many_until(&self, max: usize, deadline: Deadline) -> Result<Vec<Vec<u8>>, GetError> {
        let mut out = Vec::new();
        self.take_many(max, deadline, &mut out)?;
        Ok(out)
    }

    /// Takes up to `max` messages into `batch` (cleared first), blocking until
    /// at least one is there, and returns how many it took; see
    /// [`get_many`](Self::get_many). Reuses `batch`'s buffers, so a loop over
    /// one `Batch` allocates nothing once it has grown. Returns
    /// [`GetError::Closed`] only when nothing was taken.
    pub fn get_many_into(&self, batch: &mut Batch, max: usize) -> Result<usize, GetError> {
        self.get_many_into_until(batch, max, Deadline::Forever)
    }

    /// Like [`get_many_into`](Self::get_many_into), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_many_into(&self, batch: &mut Batch, max: usize) -> Result<usize, GetError> {
        self.get_many_into_until(batch, max, Deadline::Now)
    }

    /// Like [`get_many_into`](Self::get_many_into), waiting at most `timeout` for the first message.
    pub fn get_many_into_timeout(
        &self,
        batch: &mut Batch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, GetError> {
        self.get_many_into_until(batch, max, Deadline::after(timeout))
    }

    fn get_many_into_until(
        &self,
        batch: &mut Batch,
        max: usize,
        deadline: Deadline,
    ) -> Result<usize, GetError> {
        batch.clear();
        self.take_many(max, deadline, batch)
    }

    /// The loop of the `get_many` family: claims up to `max` messages (the
    /// first waiting until `deadline`, the rest only if ready now), appends
    /// them to `sink` and releases them, and counts the messages handed
    /// over once per batch. On a queue with one level and no
    /// `max_deliveries` the claims come in runs of consecutive READY slots
    /// ([`Ring::try_claim_read_run`], [`Ring::extend_read`]), and sleeping
    /// producers are woken once per
    /// run (as `get` does once per message). Returns how many messages
    /// `sink` received; an error only if none.
    ///
    /// Crash contract: a run is taken span by span ([`Ring::read_spans`]),
    /// each message handed over right after its copy (by a CAS, or behind a
    /// record by a store; the record itself last), so a
    /// consumer killed in the middle loses exactly the messages this call
    /// handed over before it died (they left the queue and never reached
    /// the caller); the ones it had claimed but not handed over are
    /// re-queued by recovery and delivered again. Leases lose nothing.
    pub(super) fn take_many(
        &self,
        max: usize,
        deadline: Deadline,
        sink: &mut impl Sink,
    ) -> Result<usize, GetError> {
        if max == 0 {
            return Ok(0);
        }
        let (ring, putters) = (self.ring(), self.putters());
        // Payload bytes the call may still take (`BATCH_BYTES`, passed by
        // one message at most: a run's first is taken whatever its size),
        // each length read before its claim; `None` where the largest
        // messages cannot pass it in `max`.
        let mut budget = ByteBudget::needed(self.seg.geometry.max_msg_size, max as u64);
        if max < FEW && self.plain_gets && budget.is_none() {
            match self.take_few(max, sink) {
                // Nothing at once: the batch's path waits for the first.
                (0, None) => {}
                (0, Some(e)) => return Err(e),
                (taken, _) => return Ok(taken as usize),
            }
        }
        let mut next = Some(self.first_run(&ring, max as u64, deadline, budget.as_mut())?);
        // `ring` only hands over (and extends runs, which happen on a
        // queue with one level only): a hand-over touches the slot's state
        // word alone, whatever level the slot belongs to.
        // `taken`: messages handed over and received intact by the caller;
        // `failed_handed`: the one with a bad length, dropped by its
        // hand-over, if any. `gets` counts both (a slot taken over
        // meanwhile was not handed over by us).
        let (mut taken, mut failed_handed) = (0u64, 0u64);
        let mut failure = None;
        while let Some(run) = next.take() {
            // A recorded run's first message is copied first and its slot
            // (the record) handed over last: `Some(at)`, its place in the
            // sink, while its copy is kept there.
            let mut record = None;
            if let Some(behind) = ring.span_behind_record(run) {
                // Within one lap (the common case): the record's message,
                // then the ones behind it, each handed over by a store
                // right after its copy (as the spans below, without
                // working them out).
                // SAFETY: the run holds the record's slot by its READ_RUN
                // word, and the slots behind it.
                match unsafe { sink.take(&self.seg, run.first.idx, 1, |_| true) } {
                    Appended::BadLength { len, .. } => {
                        failure = Some(self.oversized(run.first, len));
                        self.give_back(&ring, behind, 0);
                    }
                    _ => {
                        record = Some(taken);
                        failure =
                            self.take_span(&ring, sink, behind, &mut taken, &mut failed_handed);
                    }
                }
            } else {
                let mut spans = ring.read_spans(run);
                for span in spans.by_ref() {
                    if span.held == Held::Record {
                        // SAFETY: the run holds the slot, by its READ_RUN word.
                        match unsafe { sink.take(&self.seg, span.idx, 1, |_| true) } {
                            Appended::BadLength { len, .. } => {
                                failure = Some(self.oversized(span.claim(0), len));
                                break;
                            }
                            _ => record = Some(taken),
                        }
                        continue;
                    }
                    failure = self.take_span(&ring, sink, span, &mut taken, &mut failed_handed);
                    if failure.is_some() {
                        break;
                    }
                }
                for rest in spans {
                    self.give_back(&ring, rest, 0);
                }
            }
            if run.recorded {
                // Last: the run is over. A first message with a bad length
                // is dropped by this hand-over, as above.
                let released = ring.release_record(run, self.me);
                match record {
                    Some(_) if released => taken += 1,
                    Some(at) => {
                        sink.remove(at as usize);
                        failure = Some(taken_over(run.first));
                    }
                    None => failed_handed += u64::from(released),
                }
            }
            // As in `get`: with nobody asleep this is one load; producers
            // that sleep are woken at the first free run and refill while
            // we take the rest of the batch.
            putters.notify_one();
            if failure.is_some()
                || taken >= max as u64
                || budget.as_ref().is_some_and(ByteBudget::is_spent)
            {
                break;
            }
            next = self.next_run(&ring, max as u64 - taken, budget.as_mut());
        }
        if failure.is_some() {
            sink.keep(taken as usize);
        }
        self.seg
            .participant(self.me)
            .gets
            .fetch_add(taken + failed_handed, Relaxed);
        match failure {
            Some(e) if taken == 0 => Err(e),
            _ => Ok(taken as usize),
        }
    }

    /// [`take_many`](Self::take_many) of fewer than [`FEW`] messages on a
    /// queue with plain gets: message by message, as `get` takes one, while
    /// its fast claim finds one at once (a run costs more than so few
    /// messages alone). Returns how many `sink` received and the failure
    /// that stopped it, if any (a message taken over, or one with a bad
    /// length, which its hand-over drops, as `get` does).
    fn take_few(&self, max: usize, sink: &mut impl Sink) -> (u64, Option<GetError>) {
        let ring = self.ring();
        let mut taken = 0;
        while taken < max as u64 {
            let Ok(claim) = ring.claim_read_fast(self.me) else {
                break;
            };
            let mut handed_over = false;
            // SAFETY: `claim` holds the slot in READING for us.
            let appended = unsafe {
                sink.take(&self.seg, claim.idx, 1, |_| {
                    handed_over = ring.release_read(claim, self.me);
                    handed_over
                })
            };
            let failure = match appended {
                Appended::All => None,
                Appended::Stopped(_) => Some(taken_over(claim)),
                Appended::BadLength { len, .. } => {
                    handed_over = ring.release_read(claim, self.me);
                    Some(self.oversized(claim, len))
                }
            };
            self.after_release(handed_over);
            if failure.is_some() {
                sink.keep(taken as usize);
                return (taken, failure);
            }
            taken += 1;
        }
        (taken, None)
    }

    /// The first run of a batch, of up to `most` messages, waiting until
    /// `deadline` for one. On a queue with plain gets whose batches need
    /// no byte budget (the common case) the claim of the first message and
    /// of the ones behind it are one step ([`Ring::try_claim_read_run`]).
    #[inline]
    fn first_run(
        &self,
        ring: &Ring<'_, Segment>,
        most: u64,
        deadline: Deadline,
        budget: Option<&mut ByteBudget>,
    ) -> Result<Run, GetError> {
        if self.plain_gets && budget.is_none() {
            if let Ok(run) = ring.try_claim_read_run(self.me, most) {
                return Ok(run);
            }
            let first = self.claim_read_blocking(deadline)?;
            return Ok(self.run_from(ring, first, most, None));
        }
        let first = self.claim_read(deadline)?;
        Ok(self.run_from(ring, first, most, budget))
    }

    /// The next run of a batch, if a message is ready now (as
    /// [`first_run`](Self::first_run), without waiting).
    #[inline]
    fn next_run(
        &self,
        ring: &Ring<'_, Segment>,
        most: u64,
        budget: Option<&mut ByteBudget>,
    ) -> Option<Run> {
        if self.plain_gets && budget.is_none() {
            return ring.try_claim_read_run(self.me, most).ok();
        }
        let first = self.try_claim().ok()?;
        Some(self.run_from(ring, first, most, budget))
    }

    /// Copies the messages of the read span `span` (not a record) to
    /// `sink`, each handed over right after its copy (so producers get its
    /// slot back at once: until the hand-over, a CAS or behind a record a
    /// store, our death re-queues the message), and settles how that ended
    /// ([`settle`](Self::settle)).
    #[inline(always)]
    fn take_span(
        &self,
        ring: &Ring<'_, Segment>,
        sink: &mut impl Sink,
        span: Span,
        taken: &mut u64,
        failed_handed: &mut u64,
    ) -> Option<GetError> {
        let hand_over = ring.hand_over(span, self.me);
        // SAFETY: the run holds every slot of the span, by READING words
        // naming us or behind its record. (Two copies of the copy loop, so
        // it does not test the kind of hand-over once a slot.)
        let appended = unsafe {
            if hand_over.by_store() {
                sink.take(&self.seg, span.idx, span.len, |s| {
                    hand_over.slot_by::<true>(s)
                })
            } else {
                sink.take(&self.seg, span.idx, span.len, |s| {
                    hand_over.slot_by::<false>(s)
                })
            }
        };
        if appended == Appended::All {
            *taken += span.len;
            return None;
        }
        self.settle(ring, span, hand_over, appended, taken, failed_handed)
    }

    /// Settles the copy of the read span `span` that ended as `appended`
    /// (`take_span` calls it for a failure only), its slots handed over by
    /// `hand_over`: counts in `taken` the messages
    /// handed over and kept (and in `failed_handed` the one with a bad
    /// length its hand-over dropped), gives the slots after a failure back
    /// for another consumer, and returns the failure.
    #[cold]
    fn settle(
        &self,
        ring: &Ring<'_, Segment>,
        span: Span,
        hand_over: HandOver,
        appended: Appended,
        taken: &mut u64,
        failed_handed: &mut u64,
    ) -> Option<GetError> {
        let (back_from, failure) = match appended {
            Appended::All => {
                *taken += span.len;
                return None;
            }
            // Taken over by recovery: not ours, not counted.
            Appended::Stopped(k) => {
                *taken += k;
                (k + 1, taken_over(span.claim(k)))
            }
            // Dropped by its hand-over (it would fail every consumer), and
            // reported. The `at` copies before it made `at` hand-overs, so
            // the next one is its slot.
            Appended::BadLength { at, len } => {
                *taken += at;
                let state = &self.seg.slot(span.idx + at).state;
                *failed_handed += u64::from(hand_over.slot(state));
                (at + 1, self.oversized(span.claim(at), len))
            }
        };
        // The batch stops at a failure: the rest of the span goes back for
        // another consumer.
        self.give_back(ring, span, back_from);
        Some(failure)
    }

    /// Gives the slots of the read span `span` from slot `from` on back for
    /// another consumer (a batch that stopped early).
    fn give_back(&self, ring: &Ring<'_, Segment>, span: Span, from: u64) {
        if span.held == Held::Behind {
            ring.requeue_behind(span, from);
            return;
        }
        for rest in span.claims_from(from) {
            ring.requeue(rest, self.me);
        }
    }

    /// The run a batch takes from the claim `first`: up to `most` slots on
    /// a queue with plain gets ([`Ring::extend_read`]), else `first` alone;
    /// with a `budget`, `first`'s bytes are spent and the run takes only
    /// what fits in the rest. Not inlined: once per run, and inlined it
    /// cost the copy loop of `take_many` two spills (125 instructions a
    /// batched 64-byte message instead of 123).
    #[inline(never)]
    fn run_from(
        &self,
        ring: &Ring<'_, Segment>,
        first: Claim,
        most: u64,
        budget: Option<&mut ByteBudget>,
    ) -> Run {
        let Some(budget) = budget else {
            return if self.plain_gets {
                ring.extend_read(first, most, self.me, |_| true)
            } else {
                Run::single(first)
            };
        };
        budget.spend(self.stored_len(first.idx));
        if !self.plain_gets {
            return Run::single(first);
        }
        // As stored: a bad length is reported by its copy.
        ring.extend_read(first, most, self.me, |idx| {
            budget.admit(self.stored_len(idx))
        })
    }

    /// The length stored in slot `idx`, claimed by us or seen READY (then
    /// it stays the published one while the word does: a claim CAS that
    /// follows proves it); any value, for counting only.
    fn stored_len(&self, idx: u64) -> u64 {
        self.seg.slot(idx).len.load(Relaxed)
    }

    /// Appends the payload of a claimed slot to `buf`.
    #[inline]
    pub(super) fn copy_out(&self, claim: Claim, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        // SAFETY: `claim` holds the slot in READING for us.
        unsafe { self.seg.append_payload(claim.idx, buf) }.map_err(|len| self.oversized(claim, len))
    }

    /// The error for a claimed message whose stored length `len` is over
    /// the queue's largest.
    #[cold]
    fn oversized(&self, claim: Claim, len: u64) -> GetError {
        GetError::Corrupted(Corruption::OversizedLength {
            slot: claim.idx as usize,
            len,
            max: self.max_msg_size(),
        })
    }

    /// After releasing one read claim: counts the message as got if the
    /// hand-over succeeded (a slot taken over meanwhile was not handed over
    /// by us), and wakes a sleeping producer.
    #[inline]
    pub(super) fn after_release(&self, handed_over: bool) {
        if handed_over {
            self.entry().gets.fetch_add(1, Relaxed);
        }
        // Only the futex word, as in `put`.
        wait::notify_one(&self.seg.header().put_seq);
    }

    /// Whether a get would find an answer now without waiting: a message to
    /// take, or the queue closed and drained (a get answers `Closed`). Loads
    /// only, takes nothing: `Select`'s readiness check. With `patient` it
    /// also says yes for messages between head and tail that a quick look
    /// does not reach (a head left behind by a getter that died right after
    /// its claim, which only a getter's claim moves on), at the price of a
    /// false yes while a message is still being written.
    /// Every priority level is looked at (a queue without priorities has
    /// one).
    pub(crate) fn get_ready(&self, patient: bool) -> bool {
        let levels = self.seg.geometry.priorities;
        let rings = || (0..levels).map(|l| self.seg.level_ring(l));
        rings().any(|r| r.peek().is_some())
            || (self.seg.header().closed.load(SeqCst) != 0
                && rings().all(|r| r.is_drained(self.me)))
            || (patient && rings().any(|r| r.len() > 0))
    }

    /// Claims the next message, waiting until `deadline` while empty.
    #[inline(always)]
    pub(super) fn claim_read(&self, deadline: Deadline) -> Result<Claim, GetError> {
        // The common case first, inline, as in `claim_write_run`: a queue with
        // plain gets and a message ready. Anything else (no message, a lost
        // race, delivery rules, damage) takes the blocking path, which
        // tries again and reports what it finds.
        if self.plain_gets {
            if let Ok(claim) = self.ring().try_claim_read(self.me) {
                return Ok(claim);
            }
        }
        self.claim_read_blocking(deadline)
    }

    /// [`claim_read`](Self::claim_read) after its first attempt (if any)
    /// found nothing: the whole blocking path.
    #[inline(never)]
    fn claim_read_blocking(&self, deadline: Deadline) -> Result<Claim, GetError> {
        let ring = self.ring();
        let attempt = || match self.try_claim_with(&ring) {
            Ok(c) => Some(Ok(c)),
            Err(GetBlocked::Corrupt(d)) => Some(Err(GetError::Corrupted(d.into()))),
            Err(GetBlocked::Empty | GetBlocked::Pending { .. }) => self.nothing_to_claim(),
        };
        self.block(
            deadline,
            self.getters(),
            attempt,
            GetError::Empty,
            GetError::Timeout,
        )
    }
}

impl Queue {
    /// Claims the next message if one is ready now: the oldest of the
    /// highest priority level that has one (a queue without priorities
    /// goes straight to its one ring).
    #[inline]
    pub(super) fn try_claim(&self) -> Result<Claim, GetBlocked> {
        self.try_claim_with(&self.ring())
    }

    /// [`try_claim`](Self::try_claim) with level 0's ring made already.
    /// A queue with one level and no `max_deliveries` (`plain_gets`) goes
    /// straight to the ring: its hot path is the one of a queue without
    /// delivery control.
    #[inline]
    fn try_claim_with(&self, level0: &Ring<'_, Segment>) -> Result<Claim, GetBlocked> {
        if self.plain_gets {
            return level0.try_claim_read(self.me);
        }
        self.try_claim_levels(true)
    }

    /// [`try_claim`](Self::try_claim) under the delivery rules, over the
    /// levels, highest first. With `skip`, a level whose cursors say it is
    /// empty is not looked at (three loads instead of a claim attempt);
    /// a closed queue looks at every level, so that damage under a cursor
    /// is reported instead of waited on.
    #[inline(never)]
    fn try_claim_levels(&self, skip: bool) -> Result<Claim, GetBlocked> {
        let mut blocked = GetBlocked::Empty;
        for level in (0..self.seg.geometry.priorities).rev() {
            let ring = self.seg.level_ring(level);
            if skip && ring.looks_empty() {
                continue;
            }
            match self.try_claim_level(&ring) {
                Ok(claim) => return Ok(claim),
                Err(GetBlocked::Empty) => {}
                Err(pending @ GetBlocked::Pending { .. }) => blocked = pending,
                Err(corrupt @ GetBlocked::Corrupt(_)) => return Err(corrupt),
            }
        }
        Err(blocked)
    }

    /// `Ring::try_claim_read` of one level under the delivery rules: a
    /// message past `max_deliveries` is dropped or moved to the dead-letter
    /// queue (see [`admit`](Self::admit)) and the next one tried.
    #[inline]
    fn try_claim_level(&self, ring: &Ring<'_, Segment>) -> Result<Claim, GetBlocked> {
        let claim = ring.try_claim_read(self.me)?;
        match self.admit(claim) {
            Admit::Deliver => Ok(claim),
            other => self.try_claim_level_again(ring, other),
        }
    }

    /// The rest of [`try_claim_level`](Self::try_claim_level) after a
    /// message was dropped or moved (or could not be moved now: then the
    /// level waits, since the message would come straight back).
    #[cold]
    #[inline(never)]
    fn try_claim_level_again(
        &self,
        ring: &Ring<'_, Segment>,
        mut last: Admit,
    ) -> Result<Claim, GetBlocked> {
        loop {
            if last == Admit::Wait {
                return Err(GetBlocked::Pending { owner: MOVER });
            }
            let claim = ring.try_claim_read(self.me)?;
            last = self.admit(claim);
            if last == Admit::Deliver {
                return Ok(claim);
            }
        }
    }

    /// `Ring::take_requeued` under the delivery rules, highest level first.
    fn take_requeued(&self) -> Option<Claim> {
        for level in (0..self.seg.geometry.priorities).rev() {
            let ring = self.seg.level_ring(level);
            while let Some(claim) = ring.take_requeued(self.me) {
                match self.admit(claim) {
                    Admit::Deliver => return Some(claim),
                    Admit::Next => {}
                    Admit::Wait => break,
                }
            }
        }
        None
    }

    /// Whether the message `claim` holds may be delivered. A first delivery
    /// on a queue without `max_deliveries` is let through at once. (A queue
    /// with one level and no `max_deliveries` does not come here at all:
    /// its plain gets record nothing, and leases record their count in
    /// `lease_until`.) Otherwise the delivery count is rebuilt; a
    /// message past `max_deliveries` is moved to the dead-letter queue
    /// (`queue/dead_letter.rs`) or, without one, dropped - handed over
    /// like a get, counted in `dropped_poison` - and a redelivery is
    /// recorded in the slot record. A death anywhere here leaves the slot
    /// READING, so it is re-queued and the next getter decides again: a
    /// poison message is dropped exactly once (only the count can miss it,
    /// if the dropper dies between the hand-over and the count).
    #[inline]
    fn admit(&self, claim: Claim) -> Admit {
        let max = self.seg.delivery.max_deliveries;
        if max == 0 && claim.generation == 1 {
            return Admit::Deliver;
        }
        self.admit_slow(claim, max)
    }

    #[cold]
    #[inline(never)]
    fn admit_slow(&self, claim: Claim, max: u64) -> Admit {
        let n = delivery::deliveries(&self.seg, claim);
        if max != 0 && n > max {
            if self.seg.dead_letter.is_some() {
                return self.move_dead_letter(claim, n);
            }
            // The hand-over drops it: until this store, our death puts it back.
            if self.ring().release_read(claim, self.me) {
                self.seg.header().dropped_poison.fetch_add(1, Relaxed);
            }
            self.putters().notify_one();
            return Admit::Next;
        }
        if claim.generation != 1 {
            delivery::record(&self.seg, claim, n);
        }
        Admit::Deliver
    }
}

impl Queue {
    /// What a getter does when it found nothing to claim: now and then,
    /// look for dead participants (and overdue leases) and for re-queued
    /// messages the hint may have missed (a crash between the re-queue and
    /// its count, or a damaged segment); in a closed queue, decide whether
    /// it is drained. `None`: wait.
    #[inline(never)]
    fn nothing_to_claim(&self) -> Option<Result<Claim, GetError>> {
        let recovered = self.recover_if_due();
        if recovered || self.requeue_scan_due() {
            if let Some(c) = self.take_requeued() {
                return Some(Ok(c));
            }
        }
        if self.seg.header().closed.load(SeqCst) != 0 {
            let levels = self.seg.geometry.priorities;
            if !self.plain_gets {
                match self.try_claim_levels(false) {
                    Ok(c) => return Some(Ok(c)),
                    Err(GetBlocked::Corrupt(d)) => return Some(Err(GetError::Corrupted(d.into()))),
                    Err(_) => {}
                }
            }
            if (0..levels).all(|l| self.seg.level_ring(l).is_drained(self.me)) {
                return Some(Err(GetError::Closed));
            }
            // A damaged ring can hold a message the head never
            // reaches: report it rather than wait for it forever.
            if let Some(d) = (0..levels).find_map(|l| self.seg.level_ring(l).stranded()) {
                return Some(Err(GetError::Corrupted(Corruption::Stranded {
                    slot: d.idx as usize,
                    state: d.found,
                    head_lap: d.expected_lap,
                })));
            }
        }
        None
    }
}

/// The error for a read claim that another process took over before the
/// hand-over (only a foreign write to the slot's state does that).
pub(super) fn taken_over(claim: Claim) -> GetError {
    GetError::Corrupted(Corruption::TakenOver {
        slot: claim.idx as usize,
    })
}

/// Where the batch gets put the messages they take: a [`Batch`], or one
/// `Vec` per message (`get_many`).
pub(super) trait Sink {
    /// Appends the payloads of the `n` slots from `idx` on, in order,
    /// calling `then` after each (see [`Segment::append_payloads`]).
    ///
    /// # Safety
    /// The caller holds every one of the slots in the READING state.
    unsafe fn take(
        &mut self,
        seg: &Segment,
        idx: u64,
        n: u64,
        then: impl FnMut(&AtomicU64) -> bool,
    ) -> Appended;
    /// Keeps the first `n` messages and drops the rest (a batch that
    /// stopped at a failure).
    fn keep(&mut self, n: usize);
    /// Drops message `i` (one that turned out not to be ours).
    fn remove(&mut self, i: usize);
}

impl Sink for Batch {
    #[inline]
    unsafe fn take(
        &mut self,
        seg: &Segment,
        idx: u64,
        n: u64,
        then: impl FnMut(&AtomicU64) -> bool,
    ) -> Appended {
        let (data, ends) = self.parts_mut();
        // SAFETY: passed on from the caller.
        unsafe { seg.append_payloads(idx, n, data, ends, then) }
    }
    fn keep(&mut self, n: usize) {
        self.truncate(n);
    }
    fn remove(&mut self, i: usize) {
        Batch::remove(self, i);
    }
}

impl Sink for Vec<Vec<u8>> {
    unsafe fn take(
        &mut self,
        seg: &Segment,
        idx: u64,
        n: u64,
        mut then: impl FnMut(&AtomicU64) -> bool,
    ) -> Appended {
        for k in 0..n {
            let mut msg = Vec::new();
            // SAFETY: passed on from the caller.
            if let Err(len) = unsafe { seg.append_payload(idx + k, &mut msg) } {
                return Appended::BadLength { at: k, len };
            }
            self.push(msg);
            if !then(&seg.slot(idx + k).state) {
                return Appended::Stopped(k);
            }
        }
        Appended::All
    }
    fn keep(&mut self, n: usize) {
        self.truncate(n);
    }
    fn remove(&mut self, i: usize) {
        Vec::remove(self, i);
    }
}
