//! Leases: at-least-once delivery. [`Queue::get_lease`] and its two
//! shorthands over one [`Queue::lease_until`], and the [`Lease`] that holds
//! the claim until [`Lease::ack`] (or puts the message back when dropped).

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

use super::Queue;
use crate::dead_letter::{self, DeadLetter};
use crate::delivery;
use crate::error::{AckError, GetError};
use crate::ring::Claim;
use crate::stats::count;
use crate::sys;
use crate::wait::Deadline;

impl Queue {
    /// Takes the next message under a lease, blocking while empty: the message
    /// stays in the queue (invisible to others) until [`Lease::ack`]. If the
    /// lease is dropped without `ack`, or this process dies first, the message
    /// is delivered again to another getter (at-least-once delivery).
    pub fn get_lease(&self) -> Result<Lease<'_>, GetError> {
        self.lease_until(Deadline::Forever)
    }

    /// Like [`get_lease`](Self::get_lease), but returns [`GetError::Empty`] at once when empty.
    pub fn try_get_lease(&self) -> Result<Lease<'_>, GetError> {
        self.lease_until(Deadline::Now)
    }

    /// Like [`get_lease`](Self::get_lease), waiting at most `timeout`.
    pub fn get_lease_timeout(&self, timeout: Duration) -> Result<Lease<'_>, GetError> {
        self.lease_until(Deadline::after(timeout))
    }

    /// The one lease: claims the next message (waiting until `deadline`)
    /// and copies it out, keeping the claim until ack or drop.
    fn lease_until(&self, deadline: Deadline) -> Result<Lease<'_>, GetError> {
        let claim = self.claim_read(deadline)?;
        // The deadline runs from the claim: a long copy counts against it.
        let deadline_ms = delivery::start_lease(&self.seg, claim, self.me).unwrap_or(0);
        let deliveries = delivery::deliveries(&self.seg, claim);
        if claim.generation != 1 {
            delivery::record(&self.seg, claim, deliveries);
        }
        let mut data = Vec::new();
        if let Err(e) = self.copy_out(claim, &mut data) {
            let handed_over = self.ring().release_read(claim, self.me);
            self.after_release(handed_over);
            return Err(e);
        }
        Ok(Lease {
            queue: self,
            claim,
            data,
            settled: false,
            deliveries,
            deadline_ms: AtomicU64::new(deadline_ms),
        })
    }
}

/// A message taken with [`Queue::get_lease`]: it derefs to the bytes, and
/// leaves the queue only when [`ack`](Lease::ack)ed. Dropping it unacked (or
/// dying) puts it back for another getter, counted as `redelivered`.
#[must_use = "an unacked lease puts its message back when dropped"]
pub struct Lease<'q> {
    queue: &'q Queue,
    claim: Claim,
    data: Vec<u8>,
    settled: bool,
    /// Deliveries of the message, this one included.
    deliveries: u64,
    /// The lease's deadline, monotonic milliseconds (0: none).
    deadline_ms: AtomicU64,
}

impl Lease<'_> {
    /// Confirms the message was handled: it leaves the queue for good.
    ///
    /// Fails with [`AckError::Expired`] if the queue has a
    /// [lease timeout](crate::Builder::lease_timeout), the deadline passed
    /// and the message was put back (another getter may be handling it now).
    pub fn ack(mut self) -> Result<(), AckError> {
        self.settled = true;
        let handed_over = self.queue.ring().release_read(self.claim, self.queue.me);
        self.queue.after_release(handed_over);
        if handed_over {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    /// How many times this message was delivered, this delivery included:
    /// 1 the first time, 2 after one redelivery (its reader died, a lease
    /// was released or dropped, or a lease deadline passed), and so on.
    pub fn deliveries(&self) -> usize {
        count(self.deliveries)
    }

    /// Where this message came from, if it is a dead letter: the queue it
    /// was moved from and the deliveries it had there (see
    /// [`Builder::dead_letter`](crate::Builder::dead_letter)). `None` for a
    /// message put into this queue directly. A plain
    /// [`get`](crate::Queue::get) returns only the bytes: take dead letters
    /// with a lease to see this.
    pub fn dead_letter(&self) -> Option<DeadLetter> {
        dead_letter::origin(&self.queue.seg, self.claim)
    }

    /// Restarts this lease's deadline: the message stays ours for another
    /// [lease timeout](crate::Builder::lease_timeout) from now. Call it more
    /// often than the timeout during a long task. On a queue without a
    /// lease timeout it only checks that the lease is still held.
    ///
    /// Fails with [`AckError::Expired`] if the deadline had already passed
    /// and the message was put back. (A renewal made after the deadline but
    /// before anyone noticed may still succeed, or may lose the race and
    /// show up as a failed `ack`.)
    pub fn renew(&self) -> Result<(), AckError> {
        let q = self.queue;
        if !q.ring().holds(self.claim, q.me) {
            return Err(self.lost());
        }
        if let Some(deadline) = delivery::start_lease(&q.seg, self.claim, q.me) {
            self.deadline_ms.store(deadline, Relaxed);
            // Expired between the check and the new deadline: report it.
            if !q.ring().holds(self.claim, q.me) {
                return Err(self.lost());
            }
        }
        Ok(())
    }

    /// The error for a lease whose slot is no longer ours: expired if its
    /// deadline passed, else taken over by a foreign write.
    fn lost(&self) -> AckError {
        let slot = self.claim.idx as usize;
        let deadline = self.deadline_ms.load(Relaxed);
        let now = sys::monotonic_ms();
        if deadline != 0 && now > deadline {
            AckError::Expired {
                slot,
                late_ms: now - deadline,
                timeout_ms: self.queue.seg.delivery.lease_timeout_ns / 1_000_000,
            }
        } else {
            AckError::Lost { slot }
        }
    }

    /// Puts the message back for another getter now (same as dropping it).
    pub fn release(mut self) {
        self.put_back();
    }

    /// The message bytes, taken out of the lease.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data.clone()
    }

    fn put_back(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let q = self.queue;
        if q.seg.ring_of(self.claim.idx).requeue(self.claim, q.me) {
            q.seg.header().redelivered.fetch_add(1, Relaxed);
        }
        // One message came back: one getter is enough, as after a put (a
        // woken getter that finds work passes the wake-up on). With nobody
        // asleep this is one load, not a system call.
        q.getters().notify_one();
    }
}

impl Deref for Lease<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl AsRef<[u8]> for Lease<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl std::fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("slot", &self.claim.idx)
            .field("len", &self.data.len())
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.put_back();
    }
}
