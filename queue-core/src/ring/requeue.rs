//! Messages that go back into the queue: re-queued ones (a dropped lease, a
//! lease past its deadline, a dead reader's) and how a consumer finds them,
//! and the recovery of a dead owner's slots.

use super::*;

impl<S: Slots> Ring<'_, S> {
    /// Scans every slot for a re-queued message and claims the first found
    /// (from the one re-queued last, [`requeued_look`](Self::requeued_look)).
    /// Also corrects the `requeued` hint when it over-counts.
    pub(crate) fn take_requeued(&self, me: u16) -> Option<Claim> {
        let hint = self.cursors.requeued.load(Relaxed);
        for idx in self.requeued_look() {
            let slot = self.slots.state(idx);
            let s = slot.load(Acquire);
            if kind_of(s) != REQUEUED {
                continue;
            }
            let lap = lap_of(s);
            let generation = gen_of(s).wrapping_add(1); // one more delivery
            // SYNC: Acquire (within SeqCst) continues the release sequence of
            // the original `publish`, so the payload is visible.
            if slot
                .compare_exchange(s, pack_gen(lap, generation, READING, me), SeqCst, Relaxed) // { lap, generation + 1, READING, me }
                .is_ok()
            {
                self.decrement_requeued();
                return Some(Claim {
                    idx,
                    lap,
                    generation: u32::from(generation),
                });
            }
        }
        // Nothing found: a re-queuer that raced with a taker may have left the
        // hint too high (and a damaged segment may hold any value). Take back
        // what we saw - all of it, since no slot is re-queued - unless it
        // moved meanwhile.
        if hint != 0 {
            let _ = self
                .cursors
                .requeued
                .compare_exchange(hint, 0, Relaxed, Relaxed);
        }
        None
    }

    /// Counts a slot just made REQUEUED in the hints.
    pub(super) fn count_requeued(&self, idx: u64) {
        self.cursors.requeued.fetch_add(1, SeqCst);
        // Relaxed: only where the next look starts; any value is safe.
        self.cursors.requeued_at.store(idx - self.base, Relaxed);
    }

    /// Every slot of the ring once, starting at the one re-queued last:
    /// a redelivery finds its message at the first look, not after a walk
    /// over the whole ring (a damaged hint only changes where it starts).
    pub(super) fn requeued_look(
        &self,
    ) -> std::iter::Chain<std::ops::Range<u64>, std::ops::Range<u64>> {
        let range = self.range();
        let start = range.start + self.cursors.requeued_at.load(Relaxed) % self.cap();
        (start..range.end).chain(range.start..start)
    }

    pub(super) fn decrement_requeued(&self) {
        let _ = self
            .cursors
            .requeued
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// Puts a read message back for another consumer (dropped lease).
    /// Returns false if the slot was no longer ours.
    pub(crate) fn requeue(&self, claim: Claim, me: u16) -> bool {
        let ok = self
            .slots
            .state(claim.idx)
            .compare_exchange(
                claim.reading_word(me),
                pack_gen(claim.lap, claim.generation as u8, REQUEUED, 0), // { lap, generation, REQUEUED }
                SeqCst,
                Relaxed,
            )
            .is_ok();
        if ok {
            // Counted after the store: a crash in between leaves the hint
            // low, and the slow path's full scan still finds the message.
            self.count_requeued(claim.idx);
        }
        ok
    }

    /// Puts back the message of slot `idx` whose lease deadline passed,
    /// if the slot still holds the READING word `seen` (same delivery):
    /// `READING(l, g, o)` -> `REQUEUED(l, g)`. The holder may be alive; its
    /// `ack` then fails, since its word is gone. Returns whether it did.
    pub(crate) fn expire(&self, idx: u64, seen: u64) -> bool {
        if kind_of(seen) != READING {
            return false;
        }
        let back = pack_gen(lap_of(seen), gen_of(seen), REQUEUED, 0); // { lap, generation, REQUEUED }
        // SYNC: SeqCst like every other move of a READING word; pairs with
        // the holder's `release_read` / `requeue` CAS on the same word:
        // exactly one of them succeeds.
        let ok = self
            .slots
            .state(idx)
            .compare_exchange(seen, back, SeqCst, Relaxed)
            .is_ok();
        if ok {
            self.count_requeued(idx);
        }
        ok
    }

    /// Recovers every slot held by participant `dead`, which must be known dead
    /// (its kernel lock is gone and the caller holds that lock now): a
    /// half-written message is discarded, a message being read is re-queued.
    #[cfg(test)]
    pub(crate) fn recover_owner(&self, dead: u16) -> Recovered {
        self.recover_owned_by(|owner| owner == dead)
    }

    /// Recovers every slot held (WRITING, READING or a run) by an owner for which
    /// `dead` is true, in one pass over the ring. The caller guarantees that
    /// no live participant has any of those indices (it holds their locks,
    /// or they lie outside the participant table).
    pub(crate) fn recover_owned_by(&self, dead: impl Fn(u16) -> bool) -> Recovered {
        let mut done = Recovered::default();
        for idx in self.range() {
            let slot = self.slots.state(idx);
            let s = slot.load(Acquire);
            if !dead(owner_of(s)) {
                continue;
            }
            let lap = lap_of(s);
            let (recovered, discarded) = match kind_of(s) {
                WRITING => (pack(lap.wrapping_add(1), EMPTY, 0), true), // { lap + 1, EMPTY }: skipped
                READING => (pack_gen(lap, gen_of(s), REQUEUED, 0), false), // { lap, generation, REQUEUED }
                READ_RUN => {
                    done.requeued += self.requeue_run(idx, s);
                    continue;
                }
                WRITE_RUN => {
                    done.discarded += self.discard_run(idx, s);
                    continue;
                }
                _ => continue,
            };
            if slot
                .compare_exchange(s, recovered, SeqCst, Relaxed)
                .is_err()
            {
                continue;
            }
            if discarded {
                done.discarded += 1;
            } else {
                self.count_requeued(idx);
                done.requeued += 1;
            }
        }
        done
    }
}
