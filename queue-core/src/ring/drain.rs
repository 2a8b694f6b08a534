//! The closed queue's end: whether a consumer can still get anything
//! (`is_drained`), and the damage that would keep it waiting forever
//! (`stranded`).

use super::*;

impl<S: Slots> Ring<'_, S> {
    /// True when the queue can never again yield a message to `me`: no slot
    /// is being written, waits to be read, or is held by another reader who
    /// might put it back. Used only after `closed` was seen set.
    pub(crate) fn is_drained(&self, me: u16) -> bool {
        seqcst_order_point();
        self.range().all(|idx| {
            let s = self.slots.state(idx).load(SeqCst);
            match kind_of(s) {
                EMPTY => true,
                READING | READ_RUN => owner_of(s) == me,
                // Ours as well behind our own record.
                READY => self.run_over(idx, s) == Some(me),
                _ => false,
            }
        })
    }

    /// For a closed queue that [`Ring::is_drained`] found not drained: the
    /// slot that keeps it so although nothing can ever deliver it, if any.
    ///
    /// If the slot under the head is EMPTY for the head's lap, no message can
    /// reach the head any more: a producer that claims it after the caller
    /// saw `closed` sees the flag too and withdraws, and no later position
    /// can have been claimed before this one. So in a closed queue in that
    /// state no slot is READY (they all lie between head and tail), and a
    /// READY slot, or one of no known kind, is damage: without this, getters
    /// would wait for it forever. Slots being written or read, and re-queued
    /// ones, are left to the caller (they finish, or recovery deals with
    /// them). Call only after seeing `closed` set.
    pub(crate) fn stranded(&self) -> Option<Damage> {
        let head = self.cursors.head;
        let h = head.load(SeqCst);
        let (idx, lap) = self.locate(h);
        let s = self.slots.state(idx).load(SeqCst);
        if kind_of(s) != EMPTY || lap_distance(s, lap) != 0 || head.load(SeqCst) != h {
            return None;
        }
        self.range().find_map(|i| {
            let s = self.slots.state(i).load(SeqCst);
            let stray =
                (kind_of(s) == READY && self.run_over(i, s).is_none()) || kind_of(s) > WRITE_RUN;
            stray.then_some(Damage {
                idx: i,
                found: s,
                expected_lap: lap,
            })
        })
    }
}
