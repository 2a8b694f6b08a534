//! Delivery control: how many times a message was delivered, lease
//! deadlines, and putting back leases whose deadline passed. Sits above the
//! ring and the segment (it reads the slot records, [`SlotMeta`], and moves
//! state words only through `Ring`) and below the queue, which calls it.
//!
//! * **Deliveries** are rebuilt, never just read: the state word's `generation`
//!   holds the count modulo 256 and is exact by construction (every claim
//!   is one CAS that sets it); the slot record's `deliveries` word adds the
//!   multiples of 256. Only consumers that take a re-queued message write
//!   the record, so a first delivery (the hot path) writes nothing, and a
//!   consumer killed before writing it loses nothing: the next one rebuilds
//!   the count from the older record and the newer `generation`.
//! * **Lease deadlines** live in the slot record, tagged with the READING
//!   word they belong to. Any participant's recovery pass (the one that
//!   looks for dead participants, at most every 100 ms while it waits)
//!   calls [`expire_overdue`], which moves `READING(l, g, o)` to
//!   `REQUEUED(l, g)` by CAS when the tag matches and the deadline passed,
//!   whether `o` is alive or not. The holder's `ack` is a CAS on the same
//!   word, so exactly one of the two wins; a later delivery to the same
//!   holder has another `generation`, so the old lease cannot ack it.
//!
//! [`SlotMeta`]: crate::layout::SlotMeta

use std::sync::atomic::Ordering::*;

use crate::ring::{Claim, READING, Slots, kind_of};
use crate::segment::Segment;
use crate::sys;

/// The delivery count of the message `claim` holds: `generation` (deliveries
/// modulo 256, exact) completed by the slot record's count for this lap.
pub(crate) fn deliveries(seg: &Segment, claim: Claim) -> u64 {
    let recorded = seg.meta(claim.idx).deliveries.load(Acquire);
    rebuild(recorded, claim.lap, claim.generation as u8)
}

/// The smallest count whose low byte is `generation` and that is not below
/// the count `recorded` (`{ lap, count }`) holds for lap `lap` (0 for another
/// lap: the record belongs to an older message). The record is at most 255
/// behind: every claim of a re-queued message records its count, except one
/// whose generation wrapped to 1 on a queue without `max_deliveries`.
pub(crate) fn rebuild(recorded: u64, lap: u32, generation: u8) -> u64 {
    let base = if (recorded >> 32) as u32 == lap {
        recorded & u64::from(u32::MAX)
    } else {
        0
    };
    base + u64::from(generation.wrapping_sub(base as u8))
}

/// Records `count` deliveries for the message `claim` holds (the caller
/// holds the READING word, so it is the only writer).
pub(crate) fn record(seg: &Segment, claim: Claim, count: u64) {
    let word = (u64::from(claim.lap) << 32) | (count & u64::from(u32::MAX)); // { lap, count }
    seg.meta(claim.idx).deliveries.store(word, Release);
}

/// Starts (or restarts) the deadline of the lease `claim` holds for `me`,
/// if the queue has a lease timeout. Returns the deadline (monotonic ms).
pub(crate) fn start_lease(seg: &Segment, claim: Claim, me: u16) -> Option<u64> {
    let timeout_ns = seg.delivery.lease_timeout_ns;
    if timeout_ns == 0 {
        return None;
    }
    let deadline = sys::monotonic_ms().saturating_add(timeout_ns.div_ceil(1_000_000));
    let meta = seg.meta(claim.idx);
    meta.lease_deadline_ms.store(deadline, Relaxed);
    // SYNC: Release pairs with the Acquire load of `lease_word` in
    // `expire_overdue`: whoever sees this tag sees the deadline above.
    meta.lease_word.store(claim.reading_word(me), Release);
    Some(deadline)
}

/// Puts back every lease whose deadline passed. Returns how many; counts
/// them in the header (`expired` and `redelivered`). Does nothing on a
/// queue without a lease timeout.
pub(crate) fn expire_overdue(seg: &Segment) -> u64 {
    if seg.delivery.lease_timeout_ns == 0 {
        return 0;
    }
    let now = sys::monotonic_ms();
    let mut expired = 0;
    for idx in 0..seg.capacity() {
        let s = seg.state(idx).load(Acquire);
        if kind_of(s) != READING {
            continue;
        }
        let meta = seg.meta(idx);
        // SYNC: Acquire pairs with the Release store of the tag in
        // `start_lease`, so the deadline read next is the one written for
        // the delivery `s` (or a renewal of it).
        if meta.lease_word.load(Acquire) != s {
            continue; // a plain get, or a lease whose deadline is not set yet
        }
        if meta.lease_deadline_ms.load(Relaxed) >= now {
            continue;
        }
        if seg.ring_of(idx).expire(idx, s) {
            expired += 1;
        }
    }
    if expired > 0 {
        let h = seg.header();
        h.expired.fetch_add(expired, Relaxed);
        h.redelivered.fetch_add(expired, Relaxed);
    }
    expired
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::rebuild;

    fn rec(lap: u32, count: u64) -> u64 {
        (u64::from(lap) << 32) | count
    }

    #[test]
    fn first_delivery_ignores_an_older_lap() {
        assert_eq!(rebuild(rec(6, 9), 7, 1), 1);
        assert_eq!(rebuild(0, 0, 1), 1);
    }

    #[test]
    fn unrecorded_deliveries_are_rebuilt_from_gen() {
        // Two takers died before recording anything: generation says 3.
        assert_eq!(rebuild(rec(6, 9), 7, 3), 3);
        assert_eq!(rebuild(rec(7, 3), 7, 4), 4);
        // Recorded by the holder itself: the same count again.
        assert_eq!(rebuild(rec(7, 3), 7, 3), 3);
    }

    #[test]
    fn counts_past_256_carry() {
        assert_eq!(rebuild(rec(7, 255), 7, 0), 256);
        assert_eq!(rebuild(rec(7, 256), 7, 1), 257);
        // Recorded 255, the record of 256 was skipped: still 257.
        assert_eq!(rebuild(rec(7, 255), 7, 1), 257);
    }
}
