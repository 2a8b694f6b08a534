//! The source side of dead-letter queues: a getter that claimed a message
//! past `max_deliveries` moves it ([`Queue::move_dead_letter`], the protocol
//! of `ring/moved.rs` over the two segments of `dead_letter.rs`), and every
//! recovery pass resolves a move lock left by a dead mover
//! ([`Queue::resolve_moves`]).

use std::path::Path;

use super::Queue;
use crate::dead_letter::{self, Move};
use crate::ring::Claim;
use crate::ring::moved::{self, Moved};
use crate::segment::Segment;

/// Looks at a busy move lock before the getter puts the message back and
/// waits (moves are short: one message copy).
const LOCK_TRIES: u32 = 64;

/// What a getter does with a message it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Deliver it.
    Deliver,
    /// It left the queue (dropped or moved): take the next one.
    Next,
    /// It could not be moved now and was put back: wait, then try again.
    Wait,
}

/// The dead-letter queue's segment for one use: the one a handle keeps, or
/// one opened again because the kept one was removed (rare: boxed, so the
/// common case stays small).
enum DeadLetters<'q> {
    Kept(&'q Segment),
    Reopened(Box<Segment>),
}

impl std::ops::Deref for DeadLetters<'_> {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        match self {
            DeadLetters::Kept(seg) => seg,
            DeadLetters::Reopened(seg) => seg,
        }
    }
}

/// Whether `seg`'s file is still the one under its name (not removed, or
/// removed and made again).
fn is_linked(seg: &Segment) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(&seg.path), seg.file.metadata()) {
        (Ok(now), Ok(ours)) => now.ino() == ours.ino() && now.dev() == ours.dev(),
        _ => false,
    }
}

impl Queue {
    /// The dead-letter queue's segment: opened once (and created with this
    /// queue's geometry if `create` and it is missing) and kept while its
    /// file is the one under its name. `None`: no dead-letter queue, or it
    /// cannot be opened now (tried again later).
    fn dead_letter_queue(&self, create: bool) -> Option<DeadLetters<'_>> {
        let name = self.seg.dead_letter.as_deref()?;
        let open = || {
            let dir = self.seg.path.parent().unwrap_or(Path::new("."));
            let mode = self.seg.file_owner().mode;
            dead_letter::open(dir, name, &self.seg.name, self.seg.geometry, mode, create).ok()
        };
        if let Some(kept) = self.dead_letters.get() {
            if is_linked(kept) {
                return Some(DeadLetters::Kept(kept));
            }
            // Removed (maybe made again) since: use the one there now.
            return open().map(|seg| DeadLetters::Reopened(Box::new(seg)));
        }
        // Two threads racing here: one segment is kept, the other unmapped.
        let _ = self.dead_letters.set(Box::new(open()?));
        self.dead_letters.get().map(|kept| DeadLetters::Kept(kept))
    }

    /// Resolves a move lock of the dead-letter queue left by a dead mover
    /// (or, with `stale_mine`, by our own index when no thread of ours can
    /// be moving: on attach and on drop), so the dead-letter queue's head is
    /// never held long by a half-done move.
    pub(super) fn resolve_moves(&self, stale_mine: bool) {
        if self.seg.dead_letter.is_none() {
            return;
        }
        if let Some(dlq) = self.dead_letter_queue(false) {
            let sides = Move {
                src: &self.seg,
                dlq: &dlq,
                me: self.me,
            };
            moved::resolve(&sides, self.me, stale_mine);
        }
    }

    /// Moves the message `claim` holds (its `n`-th delivery, past
    /// `max_deliveries`) to the dead-letter queue. If it cannot now (another
    /// move holds the lock, the dead-letter queue is full, closed or cannot
    /// be opened), the message is put back with its count recorded, and the
    /// getter waits and tries again (at most 100 ms later).
    #[cold]
    #[inline(never)]
    pub(super) fn move_dead_letter(&self, claim: Claim, n: u64) -> Admit {
        let mut payload = Vec::new();
        if self.copy_out(claim, &mut payload).is_err() {
            return Admit::Deliver; // damaged: the getter's own copy reports it
        }
        let moved = match self.dead_letter_queue(true) {
            Some(dlq) if payload.len() as u64 <= dlq.geometry.max_msg_size => {
                let sides = Move {
                    src: &self.seg,
                    dlq: &dlq,
                    me: self.me,
                };
                moved::move_claimed(&sides, claim, self.me, LOCK_TRIES, |dst| {
                    dead_letter::copy(&dlq, &payload, dst, n - 1)
                })
            }
            _ => Moved::Full,
        };
        if moved == Moved::Done {
            self.putters().notify_one();
            return Admit::Next;
        }
        // The generation wraps at 256: record the count at every try.
        crate::delivery::record(&self.seg, claim, n);
        self.seg.ring_of(claim.idx).requeue(claim, self.me);
        Admit::Wait
    }
}

/// The resolution of a dead mover's lock on real segments (the loom model
/// `ring/loom_moved.rs` covers every interleaving on model slots). A mover
/// index outside the participant table stands for a dead one.
#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::Ordering::SeqCst;

    use super::Queue;
    use crate::dead_letter;
    use crate::ring::moved::{COMMITTED, FREE, MOVER, TAKEN, lock_word, stage_of};
    use crate::ring::{EMPTY, READY, Slots, pack};

    const DEAD: u16 = 4000;

    fn queue(tag: &str) -> (std::path::PathBuf, Queue) {
        let dir = std::env::temp_dir().join(format!("mq-dlq-unit-{tag}-{}", std::process::id()));
        let q = Queue::builder("src")
            .dir(&dir)
            .capacity(2)
            .max_deliveries(1)
            .dead_letter("src.dead")
            .create()
            .unwrap();
        (dir, q)
    }

    #[test]
    fn recovery_undoes_a_dead_movers_uncommitted_copy() {
        let (dir, q) = queue("taken");
        q.put(b"m").unwrap();
        let dlq = q.dead_letter_queue(false).unwrap();
        let dst = dlq.ring().try_claim_write(MOVER).unwrap();
        dlq.header()
            .move_lock
            .store(lock_word(7, TAKEN, DEAD), SeqCst);
        q.recover();
        assert_eq!(stage_of(dlq.header().move_lock.load(SeqCst)), FREE);
        let skipped = pack(dst.lap + 1, EMPTY, 0);
        assert_eq!(dlq.state(dst.idx).load(SeqCst), skipped);
        assert_eq!(dlq.header().discarded_partial.load(SeqCst), 1);
        assert_eq!(q.try_get().unwrap(), b"m", "still in the source");
        drop(q);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn recovery_finishes_a_dead_movers_committed_move() {
        let (dir, q) = queue("committed");
        q.put(b"m").unwrap();
        let src = q.seg.ring().try_claim_read(DEAD).unwrap();
        let dlq = q.dead_letter_queue(false).unwrap();
        let dst = dlq.ring().try_claim_write(MOVER).unwrap();
        dead_letter::copy(&dlq, b"m", dst, 1);
        let h = dlq.header();
        h.move_src_idx.store(src.idx, SeqCst);
        h.move_src_lap.store(u64::from(src.lap), SeqCst);
        h.move_dst_idx.store(dst.idx, SeqCst);
        h.move_dst_lap.store(u64::from(dst.lap), SeqCst);
        h.move_lock.store(lock_word(7, COMMITTED, DEAD), SeqCst);
        q.recover();
        assert_eq!(stage_of(h.move_lock.load(SeqCst)), FREE);
        assert_eq!(dlq.state(dst.idx).load(SeqCst), pack(dst.lap, READY, 0));
        let gone = pack(src.lap + 1, EMPTY, 0);
        assert_eq!(q.seg.state(src.idx).load(SeqCst), gone);
        assert_eq!(q.seg.header().requeued.load(SeqCst), 0);
        assert_eq!(q.stats().dead_lettered, 1);
        let dead = Queue::open_in(&dir, "src.dead").unwrap();
        let lease = dead.try_get_lease().unwrap();
        let origin = lease.dead_letter().unwrap();
        assert_eq!((&*lease, origin.deliveries), (&b"m"[..], 1));
        lease.ack().unwrap();
        drop((q, dead));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A slot a mover left WRITING while no move is in progress (damage)
    /// does not keep the dead-letter queue's getters waiting: their
    /// recovery discards it. While a move holds the lock it is left alone
    /// (it may be that move's slot).
    #[test]
    fn an_orphaned_move_slot_is_discarded_once_no_move_runs() {
        use crate::error::GetError;
        use crate::ring::WRITING;
        use std::time::Duration;
        let (dir, q) = queue("orphan");
        let dlq = q.dead_letter_queue(false).unwrap();
        let getter = Queue::open_in(&dir, "src.dead").unwrap();
        let orphan = dlq.ring().try_claim_write(MOVER).unwrap();
        getter.put(b"behind").unwrap();
        // A move in progress, by a live mover (this process's source handle).
        let lock = &dlq.header().move_lock;
        lock.store(lock_word(7, TAKEN, q.me), SeqCst);
        let short = Duration::from_millis(300);
        assert_eq!(getter.get_timeout(short), Err(GetError::Timeout));
        let writing = pack(orphan.lap, WRITING, MOVER);
        assert_eq!(dlq.state(orphan.idx).load(SeqCst), writing, "left alone");
        // No move: the getter's next recovery discards the orphan.
        lock.store(lock_word(7, FREE, 0), SeqCst);
        let long = Duration::from_secs(10);
        assert_eq!(getter.get_timeout(long).unwrap(), b"behind");
        let skipped = pack(orphan.lap + 1, EMPTY, 0);
        assert_eq!(dlq.state(orphan.idx).load(SeqCst), skipped);
        assert_eq!(getter.stats().discarded_partial, 1);
        drop(dlq);
        drop((getter, q));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A dead mover's index taken by a new handle looks alive to everyone
    /// else: the new handle resolves the lock itself as it attaches.
    #[test]
    fn attaching_at_a_dead_movers_index_resolves_its_lock() {
        let (dir, q) = queue("reuse");
        let dlq = q.dead_letter_queue(false).unwrap();
        // Index 1 is the next free one: the mover that had it died.
        dlq.header().move_lock.store(lock_word(7, TAKEN, 1), SeqCst);
        let next = Queue::open_in(&dir, "src").unwrap();
        assert_eq!(next.me, 1);
        assert_eq!(stage_of(dlq.header().move_lock.load(SeqCst)), FREE);
        drop((q, next));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
