//! Model checks of the dead-letter move (`moved.rs`): a mover that dies
//! after any of its steps, a second participant that meanwhile recovers
//! the dead one, resolves the lock and moves the message itself, and a
//! final clean-up. Whatever the interleaving, the message ends exactly once
//! in the dead-letter queue and no longer in the source, the lock is FREE
//! and both capacities are whole.

use super::loom::{Model as Side, ModelSlots as Slots1, model};
use super::moved::{self, MOVER, MoveLock, Moved, Sides, stage_of};
use super::*;
use ::loom::sync::Arc;
use ::loom::sync::atomic::AtomicBool;
use ::loom::thread;

struct World {
    src: Side,
    dlq: Side,
    lock: [AtomicU64; 5],
    /// Liveness of source participants 0..3 (what the kernel locks say).
    alive: [AtomicBool; 3],
    handed_over: AtomicU64,
}

/// The world as seen by one participant.
struct View<'a>(&'a World);

impl Sides for View<'_> {
    type Src = Slots1;
    type Dst = Slots1;
    fn lock(&self) -> MoveLock<'_> {
        let l = &self.0.lock;
        MoveLock {
            word: &l[0],
            src_idx: &l[1],
            src_lap: &l[2],
            dst_idx: &l[3],
            dst_lap: &l[4],
        }
    }
    fn source_slots(&self) -> &Slots1 {
        &self.0.src.slots
    }
    fn source_ring(&self, _idx: u64) -> Ring<'_, Slots1> {
        self.0.src.ring()
    }
    fn dead_letter_slots(&self) -> &Slots1 {
        &self.0.dlq.slots
    }
    fn dead_letter_ring(&self, _src_idx: u64) -> Ring<'_, Slots1> {
        self.0.dlq.ring()
    }
    fn alive(&self, owner: u16) -> bool {
        self.0.alive[usize::from(owner)].load(SeqCst)
    }
    fn handed_over(&self) {
        self.0.handed_over.fetch_add(1, SeqCst);
    }
    fn published(&self) {}
    fn discarded(&self, _n: u64) {}
}

const MESSAGE: u64 = 42;

impl World {
    fn new() -> Arc<World> {
        Self::with_dead_letter_slots(1)
    }

    /// The world with a dead-letter queue of `n` slots.
    fn with_dead_letter_slots(n: usize) -> Arc<World> {
        let w = World {
            src: Side::plain(1),
            dlq: Side::plain(n),
            lock: [0, 0, 0, 0, 0].map(AtomicU64::new),
            alive: [true, true, true].map(AtomicBool::new),
            handed_over: AtomicU64::new(0),
        };
        // The poison message, put before the model starts.
        let c = w.src.ring().try_claim_write(0).unwrap();
        w.src.slots.payload[0].with_mut(|p| unsafe { *p = MESSAGE });
        w.src.ring().publish(c);
        Arc::new(w)
    }

    /// Copies the source payload of `claim` into dead-letter slot `dst`.
    fn copy(&self, claim: Claim, dst: Claim) {
        let v = self.src.slots.payload[claim.idx as usize].with(|p| unsafe { *p });
        self.dlq.slots.payload[dst.idx as usize].with_mut(|p| unsafe { *p = v });
    }

    /// A getter `me` that claims the message (a re-queued one too) and,
    /// finding it past max deliveries, moves it. False: nothing to claim
    /// now, or the move must wait.
    fn get_and_move(&self, me: u16, tries: u32) -> bool {
        let r = self.src.ring();
        let claim = match r.try_claim_read(me) {
            Ok(c) => c,
            Err(_) => match r.take_requeued(me) {
                Some(c) => c,
                None => return false,
            },
        };
        let moved = moved::move_claimed(&View(self), claim, me, tries, |dst| self.copy(claim, dst));
        if moved != Moved::Done {
            assert!(r.requeue(claim, me));
        }
        moved == Moved::Done
    }

    /// Recovers the source slots of dead participant `dead` (its READING
    /// word goes back to REQUEUED), as the source's recovery does.
    fn recover_source(&self, dead: u16) {
        self.src.ring().recover_owner(dead);
    }
}

/// Mover 1, holding the message (`claim`), runs `steps` of its move, then dies.
fn mover_dies_after(w: &World, claim: Claim, steps: u32) {
    let me = 1;
    let view = View(w);
    'steps: {
        if steps == 0 {
            break 'steps;
        }
        let Ok(seq) = moved::take(&view, claim, me, 2) else {
            break 'steps;
        };
        if steps == 1 {
            break 'steps;
        }
        let Ok(dst) = moved::claim_slot(&view, claim, seq, me) else {
            break 'steps;
        };
        w.copy(claim, dst);
        if steps == 2 {
            break 'steps;
        }
        assert!(moved::commit(&view, dst, seq, me));
        if steps == 3 {
            break 'steps;
        }
        moved::publish(&view, dst);
        if steps == 4 {
            break 'steps;
        }
        moved::hand_over(&view, claim, me);
        if steps == 5 {
            break 'steps;
        }
        moved::free(view.lock(), moved::lock_word(seq, moved::COMMITTED, me));
    }
    // Dead: the kernel drops its lock.
    w.alive[usize::from(me)].store(false, SeqCst);
}

/// After everything: participant 2 cleans up as every recovery pass and
/// getter would, then the message must be in the dead-letter queue once.
fn settle_and_check(w: &World) {
    w.recover_source(1);
    let view = View(w);
    assert!(
        moved::resolve(&view, 2, false),
        "lock not FREE after resolving"
    );
    while w.get_and_move(2, 4) {}
    assert_eq!(stage_of(w.lock[0].load(SeqCst)), moved::FREE);
    // The source is empty for good, its slot free for the next lap.
    assert_eq!(w.src.slots.states[0].load(SeqCst), pack(1, EMPTY, 0));
    assert_eq!(w.handed_over.load(SeqCst), 1, "handed over exactly once");
    // The dead-letter queue holds it exactly once, whole.
    let d = w.dlq.ring();
    let c = d.try_claim_read(2).expect("the dead letter is there");
    assert_eq!(
        w.dlq.slots.payload[c.idx as usize].with(|p| unsafe { *p }),
        MESSAGE
    );
    assert!(d.release_read(c, 2));
    assert_eq!(d.try_claim_read(2), Err(GetBlocked::Empty));
    assert!(!w.dlq.slots.states.iter().any(|s| {
        let s = s.load(SeqCst);
        kind_of(s) == WRITING && owner_of(s) == MOVER
    }));
}

/// The mover dies after each of its steps in turn while participant 2
/// recovers it, resolves the lock and moves the message itself (and the
/// dead-letter queue's recovery looks for mover slots of no running move:
/// it must never take this move's copy).
#[test]
fn loom_dead_letter_moved_once_whoever_dies() {
    for steps in 0..=6 {
        model(move || {
            let w = World::new();
            // Mover 1 claimed it: its second delivery, past max deliveries.
            let claim = w.src.ring().try_claim_read(1).unwrap();
            let mover = {
                let w = w.clone();
                thread::spawn(move || mover_dies_after(&w, claim, steps))
            };
            let helper = {
                let w = w.clone();
                thread::spawn(move || {
                    // A recovery pass of the dead-letter queue (its mover
                    // slots while no move runs), then one of the source: if
                    // the mover is dead, put its claim back, then resolve
                    // the lock; then a getter's try.
                    moved::discard_orphaned_moves(&w.dlq.slots, &w.lock[0]);
                    if !w.alive[1].load(SeqCst) {
                        w.recover_source(1);
                    }
                    moved::resolve(&View(&w), 2, false);
                    w.get_and_move(2, 2);
                })
            };
            mover.join().unwrap();
            helper.join().unwrap();
            settle_and_check(&w);
        });
    }
}

/// A live mover that completes races a resolver of its COMMITTED lock
/// (anyone may resolve a committed move): still exactly once.
#[test]
fn loom_dead_letter_commit_resolved_while_the_mover_lives() {
    model(|| {
        let w = World::new();
        let mover = {
            let w = w.clone();
            thread::spawn(move || {
                assert!(w.get_and_move(1, 2));
            })
        };
        let resolver = {
            let w = w.clone();
            thread::spawn(move || {
                moved::resolve(&View(&w), 2, false);
            })
        };
        mover.join().unwrap();
        resolver.join().unwrap();
        settle_and_check(&w);
    });
}

/// A recovery pass of the dead-letter queue that discards the slots a
/// mover left WRITING while no move runs (`discard_orphaned_moves`) races
/// a live mover, beside one such orphan (damage, in slot 0): the orphan
/// goes, the running move's copy stays, the message is moved exactly once.
#[test]
fn loom_orphaned_move_slots_go_and_a_running_move_stays() {
    model(|| {
        let w = World::with_dead_letter_slots(2);
        let orphan = w.dlq.ring().try_claim_write(MOVER).unwrap();
        assert_eq!(orphan.idx, 0);
        let mover = {
            let w = w.clone();
            thread::spawn(move || assert!(w.get_and_move(1, 2)))
        };
        let recovery = {
            let w = w.clone();
            thread::spawn(move || moved::discard_orphaned_moves(&w.dlq.slots, &w.lock[0]))
        };
        mover.join().unwrap();
        let discarded = recovery.join().unwrap();
        // The next pass finds no move running.
        let later = moved::discard_orphaned_moves(&w.dlq.slots, &w.lock[0]);
        assert_eq!(discarded + later, 1, "the orphan alone, once");
        assert_eq!(stage_of(w.lock[0].load(SeqCst)), moved::FREE);
        let dlq = &w.dlq.slots;
        assert_eq!(dlq.states[0].load(SeqCst), pack(1, EMPTY, 0), "skipped");
        assert_eq!(dlq.states[1].load(SeqCst), pack(0, READY, 0), "moved");
        assert_eq!(dlq.payload[1].with(|p| unsafe { *p }), MESSAGE);
        assert_eq!(w.src.slots.states[0].load(SeqCst), pack(1, EMPTY, 0));
        assert_eq!(w.handed_over.load(SeqCst), 1);
    });
}
