//! Priority levels: the slot protocol (`ring/`) bound to each level of a
//! segment. Level `k` is the ring over slots `k * capacity .. (k + 1) *
//! capacity` with its own cursors (level 0 the header's, the others an entry
//! of the level table, see `layout.rs`); a queue without priorities has one
//! level, the ring over all slots. Above `segment/` (which maps the level
//! table), below `liveness.rs` and the queue, which reach every ring through
//! here.

use crate::ring::{Cursors, Recovered, Ring};
use crate::segment::Segment;

impl Segment {
    /// The slot protocol bound to priority level 0 (the only level of a
    /// queue without priorities): the header's cursors, slots
    /// `0 .. capacity`.
    #[inline]
    pub(crate) fn ring(&self) -> Ring<'_, Segment> {
        let h = self.header();
        let cursors = Cursors {
            head: &h.head,
            tail: &h.tail,
            requeued: &h.requeued,
            requeued_at: &h.requeued_at,
            closed: &h.closed,
        };
        if self.geometry.priorities == 1 {
            Ring::whole(cursors, self)
        } else {
            Ring::level(cursors, self, 0, self.geometry.capacity)
        }
    }

    /// The slot protocol bound to priority level `level`
    /// (`level < priorities`): its cursors, slots
    /// `level * capacity .. (level + 1) * capacity`.
    #[inline]
    pub(crate) fn level_ring(&self, level: u64) -> Ring<'_, Segment> {
        if level == 0 {
            return self.ring();
        }
        self.upper_level_ring(level)
    }

    /// [`level_ring`](Self::level_ring) for `level >= 1`. (Inline, so that
    /// a caller's ring stays in registers whichever level it is.)
    #[inline]
    fn upper_level_ring(&self, level: u64) -> Ring<'_, Segment> {
        let c = self.level_cursors(level);
        let cap = self.geometry.capacity;
        Ring::level(
            Cursors {
                head: &c.head,
                tail: &c.tail,
                requeued: &c.requeued,
                requeued_at: &c.requeued_at,
                closed: &self.header().closed,
            },
            self,
            level * cap,
            cap,
        )
    }

    /// Messages waiting in all levels now (a snapshot).
    pub(crate) fn queued(&self) -> u64 {
        (0..self.geometry.priorities)
            .map(|l| self.level_ring(l).len())
            .fold(0, u64::saturating_add)
    }

    /// Recovers every slot held by an owner for which `dead` is true, level
    /// by level (each level's `requeued` hint counts its own slots).
    pub(crate) fn recover_owned_by(&self, dead: impl Fn(u16) -> bool) -> Recovered {
        let mut done = Recovered::default();
        for l in 0..self.geometry.priorities {
            done += self.level_ring(l).recover_owned_by(&dead);
        }
        done
    }

    /// The ring (priority level) slot `idx` belongs to.
    pub(crate) fn ring_of(&self, idx: u64) -> Ring<'_, Segment> {
        self.level_ring(idx / self.geometry.capacity)
    }
}
