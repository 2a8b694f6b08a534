//! Model checks of the wake-up path of waiting on many queues (`Select`,
//! `wait/many.rs`): the real slot protocol (`Ring`) on loom atomics, with
//! the futex words and the selector's steps written out beside it (the
//! futex itself is the kernel's: here a sleep is "the word still holds the
//! ticket", which is exactly what makes `futex_waitv` sleep).
//!
//! The property: a selector that registered on every queue, re-checked and
//! found nothing, and then would sleep, always has a word that no longer
//! holds its ticket (so `futex_waitv` returns at once or is woken by the
//! bump) - unless its re-check saw the message. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p queue-core --release --lib loom`.

use crate::ring::{Cursors, PutBlocked, Ring, Slots};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering::*, fence};
use crate::sync::seqcst_order_point;
use ::loom::sync::Arc;
use ::loom::thread;

/// The sleepers bit of a futex word (`wait::SLEEPERS`).
const SLEEPERS: u32 = 1;

struct ModelSlots(Vec<AtomicU64>);
impl Slots for ModelSlots {
    fn capacity(&self) -> u64 {
        self.0.len() as u64
    }
    fn state(&self, idx: u64) -> &AtomicU64 {
        &self.0[idx as usize]
    }
}

/// One queue: its ring words and its getters' futex word.
struct ModelQueue {
    head: AtomicU64,
    tail: AtomicU64,
    requeued: AtomicU64,
    requeued_at: AtomicU64,
    closed: AtomicU32,
    slots: ModelSlots,
    get_seq: AtomicU32,
}

impl ModelQueue {
    fn new() -> Self {
        ModelQueue {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            requeued_at: AtomicU64::new(0),
            closed: AtomicU32::new(0),
            slots: ModelSlots((0..2).map(|_| AtomicU64::new(0)).collect()),
            get_seq: AtomicU32::new(0),
        }
    }
    fn ring(&self) -> Ring<'_, ModelSlots> {
        Ring::new(
            Cursors {
                head: &self.head,
                tail: &self.tail,
                requeued: &self.requeued,
                requeued_at: &self.requeued_at,
                closed: &self.closed,
            },
            &self.slots,
        )
    }
    /// `Queue::put` without the payload: claim, publish, then
    /// `WaitPoint::notify_one`'s load and bump of the word.
    fn put_and_notify(&self) {
        let r = self.ring();
        let c = loop {
            match r.try_claim_write(1) {
                Ok(c) => break c,
                Err(PutBlocked::Full) => thread::yield_now(),
                Err(e) => panic!("put failed: {e:?}"),
            }
        };
        r.publish(c);
        seqcst_order_point();
        let seq = self.get_seq.load(SeqCst);
        if seq & SLEEPERS != 0 {
            let _ = self
                .get_seq
                .compare_exchange(seq, seq.wrapping_add(1), SeqCst, Relaxed);
        }
    }
    /// `Queue::close` then `notify_all`'s bump.
    fn close_and_notify(&self) {
        self.closed.swap(1, SeqCst);
        seqcst_order_point();
        let _ = self.get_seq.fetch_update(SeqCst, SeqCst, |seq| {
            (seq & SLEEPERS != 0).then(|| seq.wrapping_add(1))
        });
    }
    /// `Queue::get_ready` (quick look): a message to take, or closed
    /// (the model's rings drain at once, nothing is being read).
    fn ready(&self) -> bool {
        self.ring().peek().is_some() || self.closed.load(SeqCst) != 0
    }
}

/// The selector's steps of `wait_any` before its sleep: register on every
/// word, fence, re-check. Returns whether the re-check found a queue ready,
/// and the tickets.
fn register_and_recheck(queues: &[&ModelQueue]) -> (bool, Vec<u32>) {
    let tickets: Vec<u32> = queues
        .iter()
        .map(|q| q.get_seq.fetch_or(SLEEPERS, SeqCst) | SLEEPERS)
        .collect();
    fence(SeqCst);
    (queues.iter().any(|q| q.ready()), tickets)
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = ::loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// A put into either of two selected queues is seen by the re-check or
/// leaves a changed word: the selector cannot sleep through it.
#[test]
fn loom_selector_cannot_miss_a_put_on_any_queue() {
    model(|| {
        let a = Arc::new(ModelQueue::new());
        let b = Arc::new(ModelQueue::new());
        let (pa, pb) = (a.clone(), b.clone());
        let producer_a = thread::spawn(move || pa.put_and_notify());
        let producer_b = thread::spawn(move || pb.put_and_notify());
        let (saw, tickets) = register_and_recheck(&[&a, &b]);
        producer_a.join().unwrap();
        producer_b.join().unwrap();
        let changed = a.get_seq.load(SeqCst) != tickets[0] || b.get_seq.load(SeqCst) != tickets[1];
        assert!(
            saw || changed,
            "the selector would sleep with messages waiting"
        );
    });
}

/// A close of a selected queue is seen or leaves a changed word.
#[test]
fn loom_selector_cannot_miss_a_close() {
    model(|| {
        let a = Arc::new(ModelQueue::new());
        let b = Arc::new(ModelQueue::new());
        let pb = b.clone();
        let closer = thread::spawn(move || pb.close_and_notify());
        let (saw, tickets) = register_and_recheck(&[&a, &b]);
        closer.join().unwrap();
        let changed = a.get_seq.load(SeqCst) != tickets[0] || b.get_seq.load(SeqCst) != tickets[1];
        assert!(saw || changed, "the selector would sleep through a close");
    });
}

/// The hand-on after a wake-up: a getter sleeps on `b` (its ticket taken
/// before the selector's), the first put's bump is taken to wake the
/// selector, and another getter takes that message. A second put races
/// with the selector's hand-on (mark the word, then look). Either the
/// selector passes the wake-up on (it saw a message), or the second put
/// finds the word marked and bumps it again - the getter is never left
/// asleep with a message waiting and the word unmarked.
#[test]
fn loom_a_woken_selector_hands_the_wake_up_on() {
    model(|| {
        let b = Arc::new(ModelQueue::new());
        // The getter registered and sleeps on its ticket.
        let getter_ticket = b.get_seq.fetch_or(SLEEPERS, SeqCst) | SLEEPERS;
        let (saw, tickets) = register_and_recheck(&[&b]);
        assert!(!saw);
        // The first put bumps the word; the kernel wakes the selector.
        b.put_and_notify();
        let woke_selector = b.get_seq.load(SeqCst) != tickets[0];
        assert!(woke_selector);
        // Another getter takes that message before the selector looks.
        let r = b.ring();
        let c = r.try_claim_read(2).expect("the first message");
        assert!(r.release_read(c, 2));
        let pb = b.clone();
        let second = thread::spawn(move || pb.put_and_notify());
        // The selector, woken, with the getter still counted in: mark,
        // fence, look; pass on if it sees work.
        let marked = b.get_seq.fetch_or(SLEEPERS, SeqCst) | SLEEPERS;
        fence(SeqCst);
        let passed_on = b.ready();
        second.join().unwrap();
        // The getter sleeps on `getter_ticket` in the kernel: it is woken
        // only by a futex_wake - a pass-on, or a later bump by a put that
        // saw the mark.
        let bumped_again = b.get_seq.load(SeqCst) != marked;
        assert!(
            passed_on || bumped_again,
            "the getter sleeps (ticket {getter_ticket}) with a message waiting"
        );
    });
}
