//! The get family: six single-message verbs over one
//! [`Queue::get_into_until`], six batch verbs over one [`Queue::take_many`],
//! and the claim every get and lease starts with. Each public verb only picks
//! a [`Deadline`].

use std::sync::atomic::Ordering::*;
use std::time::Duration;

use super::Queue;
use crate::batch::Batch;
use crate::error::{Corruption, GetError};
use crate::ring::{Claim, GetBlocked};
use crate::wait::Deadline;

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
        let claim = self.claim_read(deadline)?;
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
    /// takes whatever else is ready without waiting. Sleeping producers are
    /// woken at the first free slot, as by `get`. Returns
    /// [`GetError::Closed`] only when nothing was taken.
    ///
    /// Allocates one `Vec` per message; a loop that takes many batches is
    /// faster with [`get_many_into`](Self::get_many_into), which reuses one
    /// [`Batch`].
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
        self.take_many(max, deadline, |claim| {
            let mut buf = Vec::new();
            let len = self.copy_out(claim, &mut buf)?;
            out.push(buf);
            Ok(len)
        })?;
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
        self.take_many(max, deadline, |claim| {
            let copied = self.copy_out(claim, batch.data_mut());
            match copied {
                Ok(_) => batch.commit(),
                Err(_) => batch.discard_uncommitted(),
            }
            copied
        })
    }

    /// The loop of the `get_many` family: claims up to `max` messages (the
    /// first waiting until `deadline`, the rest only if ready now), hands
    /// each claimed slot to `copy` and then releases it (waking sleeping
    /// producers, as `get` does), and counts the messages handed over once
    /// per batch.
    /// Returns how many messages `copy` took; an error only if none.
    pub(super) fn take_many(
        &self,
        max: usize,
        deadline: Deadline,
        mut copy: impl FnMut(Claim) -> Result<usize, GetError>,
    ) -> Result<usize, GetError> {
        if max == 0 {
            return Ok(0);
        }
        let (ring, putters) = (self.ring(), self.putters());
        let mut next = Some(self.claim_read(deadline)?);
        // `handed`: messages whose release succeeded (what `gets` counts:
        // a slot taken over meanwhile was not handed over by us); `taken`:
        // those the caller also received intact.
        let (mut taken, mut handed) = (0usize, 0u64);
        let mut failure = None;
        while let Some(claim) = next.take() {
            let copied = copy(claim);
            // The hand-over: until this store, our death re-queues the message.
            let handed_over = ring.release_read(claim, self.me);
            handed += u64::from(handed_over);
            // As in `get`: with nobody asleep this is one load; producers
            // that sleep are woken at the first free slot and refill while
            // we take the rest of the batch.
            putters.notify_one();
            match (copied, handed_over) {
                (Ok(_), true) => taken += 1,
                (Err(e), _) => failure = Some(e),
                (Ok(_), false) => failure = Some(taken_over(claim)),
            }
            if failure.is_some() || taken >= max {
                break;
            }
            next = ring.try_claim_read(self.me).ok();
        }
        self.seg
            .participant(self.me)
            .gets
            .fetch_add(handed, Relaxed);
        match failure {
            Some(e) if taken == 0 => Err(e),
            _ => Ok(taken),
        }
    }

    /// Appends the payload of a claimed slot to `buf`.
    pub(super) fn copy_out(&self, claim: Claim, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        // SAFETY: `claim` holds the slot in READING for us.
        unsafe { self.seg.append_payload(claim.idx, buf) }.map_err(|len| {
            GetError::Corrupted(Corruption::OversizedLength {
                slot: claim.idx as usize,
                len,
                max: self.max_msg_size(),
            })
        })
    }

    /// After releasing one read claim: counts the message as got if the
    /// hand-over succeeded (a slot taken over meanwhile was not handed over
    /// by us), and wakes a sleeping producer.
    pub(super) fn after_release(&self, handed_over: bool) {
        if handed_over {
            self.seg.participant(self.me).gets.fetch_add(1, Relaxed);
        }
        self.putters().notify_one();
    }

    /// Whether a get would find an answer now without waiting: a message to
    /// take, or the queue closed and drained (a get answers `Closed`). Loads
    /// only, takes nothing: `Select`'s readiness check. With `patient` it
    /// also says yes for messages between head and tail that a quick look
    /// does not reach (a head left behind by a getter that died right after
    /// its claim, which only a getter's claim moves on), at the price of a
    /// false yes while a message is still being written.
    pub(crate) fn get_ready(&self, patient: bool) -> bool {
        let ring = self.ring();
        ring.peek().is_some()
            || (self.seg.header().closed.load(SeqCst) != 0 && ring.is_drained(self.me))
            || (patient && ring.len() > 0)
    }

    /// Claims the next message, waiting until `deadline` while empty.
    pub(super) fn claim_read(&self, deadline: Deadline) -> Result<Claim, GetError> {
        let ring = self.ring();
        let closed = &self.seg.header().closed;
        let attempt = || match ring.try_claim_read(self.me) {
            Ok(c) => Some(Ok(c)),
            Err(GetBlocked::Corrupt(d)) => Some(Err(GetError::Corrupted(d.into()))),
            Err(GetBlocked::Empty | GetBlocked::Pending { .. }) => {
                // Now and then, look for dead participants and for re-queued
                // messages the hint may have missed (a crash between the
                // re-queue and its count, or a damaged segment).
                let recovered = self.recover_if_due();
                if recovered || self.requeue_scan_due() {
                    if let Some(c) = ring.take_requeued(self.me) {
                        return Some(Ok(c));
                    }
                }
                if closed.load(SeqCst) != 0 {
                    if ring.is_drained(self.me) {
                        return Some(Err(GetError::Closed));
                    }
                    // A damaged ring can hold a message the head never
                    // reaches: report it rather than wait for it forever.
                    if let Some(d) = ring.stranded() {
                        return Some(Err(GetError::Corrupted(Corruption::Stranded {
                            slot: d.idx as usize,
                            state: d.found,
                            head_lap: d.expected_lap,
                        })));
                    }
                }
                None
            }
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

/// The error for a read claim that another process took over before the
/// hand-over (only a foreign write to the slot's state does that).
pub(super) fn taken_over(claim: Claim) -> GetError {
    GetError::Corrupted(Corruption::TakenOver {
        slot: claim.idx as usize,
    })
}
