//! Model checks of the protocol: every interleaving of the threads below (up
//! to loom's preemption bound) must deliver each message exactly once, never
//! expose a half-written payload (loom flags the data race), and leave the
//! full capacity usable afterwards.

use super::run::{Held, Publication, Run};
use super::*;
use ::loom::cell::UnsafeCell;
use ::loom::sync::Arc;
use ::loom::thread::{self, JoinHandle};

pub(super) struct ModelSlots {
    pub(super) states: Vec<AtomicU64>,
    pub(super) payload: Vec<UnsafeCell<u64>>,
}
impl Slots for ModelSlots {
    fn capacity(&self) -> u64 {
        self.states.len() as u64
    }
    fn state(&self, idx: u64) -> &AtomicU64 {
        &self.states[idx as usize]
    }
}

pub(super) struct Model {
    head: AtomicU64,
    tail: AtomicU64,
    requeued: AtomicU64,
    requeued_at: AtomicU64,
    closed: AtomicU32,
    pub(super) slots: ModelSlots,
}

impl Model {
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self::plain(cap))
    }
    /// A model not yet shared (to be part of a larger one).
    pub(super) fn plain(cap: usize) -> Self {
        Model {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            requeued_at: AtomicU64::new(0),
            closed: AtomicU32::new(0),
            slots: ModelSlots {
                states: (0..cap).map(|_| AtomicU64::new(0)).collect(),
                payload: (0..cap).map(|_| UnsafeCell::new(0)).collect(),
            },
        }
    }
    pub(super) fn ring(&self) -> Ring<'_, ModelSlots> {
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
    /// Blocking put by spinning (the waiting layer is not modelled).
    fn put(&self, me: u16, value: u64) {
        let r = self.ring();
        let c = loop {
            match r.try_claim_write(me) {
                Ok(c) => break c,
                Err(PutBlocked::Full) => thread::yield_now(),
                Err(e) => panic!("put failed: {e:?}"),
            }
        };
        self.slots.payload[c.idx as usize].with_mut(|p| unsafe { *p = value });
        r.publish(c);
    }
    /// Blocking claim by spinning; `scan` adds the slow path's scan for
    /// re-queued messages (only needed where a reader dies).
    fn claim(&self, me: u16, scan: bool) -> Claim {
        let r = self.ring();
        loop {
            match r.try_claim_read(me) {
                Ok(c) => return c,
                Err(GetBlocked::Empty | GetBlocked::Pending { .. }) => {
                    if scan {
                        if let Some(c) = r.take_requeued(me) {
                            return c;
                        }
                    }
                    thread::yield_now()
                }
                Err(e) => panic!("get failed: {e:?}"),
            }
        }
    }
    fn read(&self, c: Claim) -> u64 {
        self.slots.payload[c.idx as usize].with(|p| unsafe { *p })
    }
    fn get(&self, me: u16, scan: bool) -> u64 {
        let c = self.claim(me, scan);
        let v = self.read(c);
        assert!(self.ring().release_read(c, me));
        v
    }
    /// The capacity is whole: `cap` puts succeed, then it is full.
    fn assert_whole(&self, cap: u64) {
        let r = self.ring();
        for _ in 0..cap {
            let c = r.try_claim_write(1).expect("capacity leaked");
            r.publish(c);
        }
        assert_eq!(r.try_claim_write(1), Err(PutBlocked::Full));
    }
}

pub(super) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = ::loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    // Spinning consumers and producers take many steps per execution.
    b.max_branches = 100_000;
    b.check(f);
}

#[test]
fn loom_two_producers_two_consumers() {
    model(|| {
        let m = Model::new(2);
        let producers: Vec<_> = [10u64, 20]
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let m = m.clone();
                thread::spawn(move || m.put(1 + i as u16, v))
            })
            .collect();
        // Consumers race the producers and each other; they make a
        // bounded number of attempts (spinning would only multiply the
        // interleavings loom has to explore, not the behaviours).
        let consumers: Vec<_> = (0..2u16)
            .map(|i| {
                let m = m.clone();
                thread::spawn(move || {
                    let r = m.ring();
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        if let Ok(c) = r.try_claim_read(3 + i) {
                            got.push(m.read(c));
                            assert!(r.release_read(c, 3 + i));
                        }
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut got: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        // Whatever the consumers did not take is still there, in order.
        let r = m.ring();
        while let Ok(c) = r.try_claim_read(5) {
            got.push(m.read(c));
            assert!(r.release_read(c, 5));
        }
        got.sort();
        assert_eq!(got, vec![10, 20]);
        m.assert_whole(2);
    });
}

#[test]
fn loom_dead_writer_is_recovered_while_others_run() {
    model(|| {
        let m = Model::new(2);
        // Participant 5 claims a slot and dies before publishing.
        let dead = {
            let m = m.clone();
            thread::spawn(move || {
                let _ = m.ring().try_claim_write(5).unwrap();
            })
        };
        dead.join().unwrap();
        let recoverer = {
            let m = m.clone();
            thread::spawn(move || m.ring().recover_owner(5))
        };
        let producer = {
            let m = m.clone();
            thread::spawn(move || m.put(1, 42))
        };
        let consumer = {
            let m = m.clone();
            thread::spawn(move || m.get(2, false))
        };
        assert_eq!(recoverer.join().unwrap().discarded, 1);
        producer.join().unwrap();
        assert_eq!(consumer.join().unwrap(), 42);
        assert_eq!(m.ring().try_claim_read(2), Err(GetBlocked::Empty));
        m.assert_whole(2);
    });
}

#[test]
fn loom_dead_reader_message_is_delivered_exactly_once() {
    model(|| {
        let m = Model::new(2);
        m.put(1, 7);
        m.put(1, 8);
        // Participant 9 takes message 7 and dies before handing it over.
        let dead = {
            let m = m.clone();
            thread::spawn(move || {
                let _ = m.claim(9, false);
            })
        };
        dead.join().unwrap();
        let recoverer = {
            let m = m.clone();
            thread::spawn(move || m.ring().recover_owner(9))
        };
        let consumers: Vec<_> = (0..2u16)
            .map(|i| {
                let m = m.clone();
                thread::spawn(move || m.get(2 + i, true))
            })
            .collect();
        assert_eq!(recoverer.join().unwrap().requeued, 1);
        let mut got: Vec<u64> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![7, 8]);
        assert_eq!(m.ring().try_claim_read(2), Err(GetBlocked::Empty));
        m.assert_whole(2);
    });
}

#[test]
fn loom_close_never_strands_a_message() {
    model(|| {
        let m = Model::new(2);
        let producer = {
            let m = m.clone();
            thread::spawn(move || {
                let r = m.ring();
                match r.try_claim_write(1) {
                    Ok(c) => {
                        m.slots.payload[c.idx as usize].with_mut(|p| unsafe { *p = 5 });
                        r.publish(c);
                        true
                    }
                    Err(PutBlocked::Closed) => false,
                    Err(e) => panic!("{e:?}"),
                }
            })
        };
        let closer = {
            let m = m.clone();
            thread::spawn(move || m.closed.store(1, SeqCst))
        };
        // A consumer that saw `closed` and a drained ring must not miss
        // a message whose put succeeded.
        let consumer = {
            let m = m.clone();
            thread::spawn(move || {
                let r = m.ring();
                loop {
                    match r.try_claim_read(2) {
                        Ok(c) => {
                            let v = m.read(c);
                            assert!(r.release_read(c, 2));
                            return Some(v);
                        }
                        Err(GetBlocked::Empty | GetBlocked::Pending { .. }) => {
                            if m.closed.load(SeqCst) != 0 {
                                if r.is_drained(2) {
                                    return None;
                                }
                                // Never a false alarm on a sound ring.
                                assert_eq!(r.stranded(), None);
                            }
                            thread::yield_now();
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        };
        closer.join().unwrap();
        let put_ok = producer.join().unwrap();
        let got = consumer.join().unwrap();
        assert_eq!(got.is_some(), put_ok);
    });
}

/// A lease deadline passing (any participant's `expire`) races the living
/// holder's `ack`: exactly one wins, and an expired message is delivered
/// again, once, as its second delivery.
#[test]
fn loom_expiry_races_the_ack() {
    model(|| {
        let m = Model::new(2);
        m.put(1, 7);
        let lease = m.claim(3, false);
        assert_eq!(lease.generation, 1);
        let holder = {
            let m = m.clone();
            thread::spawn(move || m.ring().release_read(lease, 3))
        };
        let expirer = {
            let m = m.clone();
            thread::spawn(move || m.ring().expire(lease.idx, lease.reading_word(3)))
        };
        let acked = holder.join().unwrap();
        let expired = expirer.join().unwrap();
        assert!(acked ^ expired, "acked {acked}, expired {expired}");
        let r = m.ring();
        if expired {
            let again = r.take_requeued(4).expect("the expired message is back");
            assert_eq!((m.read(again), again.generation), (7, 2));
            assert!(r.release_read(again, 4));
        }
        assert_eq!(r.try_claim_read(4), Err(GetBlocked::Empty));
        assert_eq!(r.take_requeued(4), None);
        m.assert_whole(2);
    });
}

/// Two holders put their leases back (each writing the `requeued_at` hint)
/// while a getter takes re-queued messages from wherever the hint it reads
/// points: it finds both, each once, in whatever order the hint gives.
#[test]
fn loom_the_requeued_hint_only_orders_the_scan() {
    model(|| {
        let m = Model::new(3);
        for v in [10, 11, 12] {
            m.put(1, v);
        }
        let leases: Vec<Claim> = (0..3).map(|_| m.claim(2, false)).collect();
        let holders: Vec<_> = [leases[0], leases[2]]
            .into_iter()
            .map(|lease| {
                let m = m.clone();
                thread::spawn(move || assert!(m.ring().requeue(lease, 2)))
            })
            .collect();
        let getter = {
            let m = m.clone();
            thread::spawn(move || {
                let r = m.ring();
                let mut got = Vec::new();
                while got.len() < 2 {
                    match r.take_requeued(3) {
                        Some(c) => {
                            assert_eq!(c.generation, 2, "a second delivery");
                            got.push(m.read(c));
                            assert!(r.release_read(c, 3));
                        }
                        None => thread::yield_now(),
                    }
                }
                got
            })
        };
        for holder in holders {
            holder.join().unwrap();
        }
        let mut got = getter.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, [10, 12]);
        assert!(m.ring().release_read(leases[1], 2));
        assert_eq!(m.ring().take_requeued(3), None);
        m.assert_whole(3);
    });
}

/// The holder of an expired lease takes the same message again (same slot,
/// same lap, same owner) while the expiry runs: the old lease can never
/// hand over the new delivery (no ABA), and the message leaves once.
#[test]
fn loom_an_old_lease_cannot_ack_a_new_delivery() {
    model(|| {
        let m = Model::new(1);
        m.put(1, 9);
        let old = m.claim(3, false);
        let expirer = {
            let m = m.clone();
            thread::spawn(move || m.ring().expire(old.idx, old.reading_word(3)))
        };
        let holder = {
            let m = m.clone();
            thread::spawn(move || {
                let r = m.ring();
                for _ in 0..2 {
                    if let Some(new) = r.take_requeued(3) {
                        assert!(
                            !r.release_read(old, 3),
                            "the old lease acked a new delivery"
                        );
                        assert_eq!(m.read(new), 9);
                        assert!(r.release_read(new, 3));
                        return true;
                    }
                    thread::yield_now();
                }
                false
            })
        };
        assert!(expirer.join().unwrap());
        if !holder.join().unwrap() {
            // The holder looked before the expiry: take it now.
            let again = m.ring().take_requeued(3).expect("re-queued");
            assert!(!m.ring().release_read(old, 3));
            assert!(m.ring().release_read(again, 3));
        }
        m.assert_whole(1);
    });
}

// Runs (ring/run.rs): the claims of a run are single claims made ahead of
// the cursor, the cursor jumps past the run (once, after the last claim,
// in `try_claim_*_run`'s common case), and the run is published with
// Release stores closed by one SeqCst fence. The models claim runs both
// ways: `try_claim_*_run` (whose slow path is a single claim and then
// `extend_*`) and a single claim extended by `extend_*` (`get_run_split`,
// as a batch with a byte budget does).

impl Model {
    /// `put_many`'s loop: a run per claim, spinning while full.
    fn put_run(&self, me: u16, values: &[u64]) {
        let r = self.ring();
        let mut done = 0;
        while done < values.len() {
            let run = match r.try_claim_write_run(me, (values.len() - done) as u64) {
                Ok(run) => run,
                Err(PutBlocked::Full) => {
                    thread::yield_now();
                    continue;
                }
                Err(e) => panic!("put failed: {e:?}"),
            };
            self.write_run(run, &values[done..]);
            done += run.len as usize;
        }
    }
    /// `put_many`'s `write_run`: a run claimed slot by slot gets every
    /// payload, then every publication; a recorded run its record's
    /// payload, then each slot behind it written and published at once,
    /// and the record last.
    fn write_run(&self, run: Run, values: &[u64]) {
        let r = self.ring();
        let write = |idx: u64, v: u64| {
            self.slots.payload[idx as usize].with_mut(|p| unsafe { *p = v });
        };
        if !run.recorded {
            for (c, v) in r.write_claims(run).zip(values) {
                write(c.idx, *v);
            }
            r.publish_run(run);
            return;
        }
        write(run.first.idx, values[0]);
        let mut k = 1;
        r.each_range(run, true, |idx, n, lap| {
            let publication = Publication::of(lap);
            for idx in idx..idx + n {
                write(idx, values[k]);
                publication.slot(self.slots.state(idx));
                k += 1;
            }
        });
        r.publish_record(run);
    }
    /// `take_many`'s run: one claim attempt of up to `most` slots; span
    /// by span, each slot read and then handed over.
    /// (Damage is never expected in these models: it fails the model.)
    fn get_run(&self, me: u16, most: u64) -> Vec<u64> {
        match self.ring().try_claim_read_run(me, most) {
            Ok(run) => self.take_run(me, run),
            Err(GetBlocked::Corrupt(d)) => panic!("damage seen: {d:?}"),
            Err(_) => Vec::new(),
        }
    }
    /// One attempt of a single get, without the re-queued scan: the
    /// message it took, if any (damage fails the model, as in `get_run`).
    fn get_once(&self, me: u16) -> Vec<u64> {
        let r = self.ring();
        match r.try_claim_read(me) {
            Ok(c) => {
                let v = self.read(c);
                assert!(r.release_read(c, me));
                vec![v]
            }
            Err(GetBlocked::Corrupt(d)) => panic!("damage seen: {d:?}"),
            Err(_) => Vec::new(),
        }
    }
    /// [`get_run`](Self::get_run) claiming the first slot alone and then
    /// extending the claim.
    fn get_run_split(&self, me: u16, most: u64) -> Vec<u64> {
        let r = self.ring();
        let Ok(first) = r.try_claim_read(me) else {
            return Vec::new();
        };
        let run = r.extend_read(first, most, me, |_| true);
        self.take_run(me, run)
    }
    /// Reads and hands over every slot of `run`, in order (a record's
    /// slot last, as `take_many` does).
    fn take_run(&self, me: u16, run: Run) -> Vec<u64> {
        self.take_run_until(me, run, u64::MAX)
    }
    /// [`take_run`](Self::take_run) of a consumer that dies once it handed
    /// over `handed` slots (the record never).
    fn take_run_until(&self, me: u16, run: Run, handed: u64) -> Vec<u64> {
        let r = self.ring();
        let mut got = Vec::new();
        let mut done = 0;
        for span in r.read_spans(run) {
            if span.held == Held::Record {
                got.push(self.read(span.claim(0)));
                continue;
            }
            let hand_over = r.hand_over(span, me);
            for c in span.claims_from(0) {
                if done == handed {
                    return got;
                }
                got.push(self.read(c));
                assert!(hand_over.slot(r.slots.state(c.idx)));
                done += 1;
            }
        }
        if run.recorded {
            assert!(r.release_record(run, me));
        }
        got
    }
}

#[test]
fn loom_runs_deliver_each_message_once_in_order() {
    model(|| {
        let m = Model::new(3);
        let batcher = {
            let m = m.clone();
            thread::spawn(move || m.put_run(1, &[10, 20]))
        };
        let single = {
            let m = m.clone();
            thread::spawn(move || m.put(2, 30))
        };
        let consumer = {
            let m = m.clone();
            thread::spawn(move || m.get_run(3, 3))
        };
        batcher.join().unwrap();
        single.join().unwrap();
        let mut got = consumer.join().unwrap();
        loop {
            let more = m.get_run(4, 3);
            if more.is_empty() {
                break;
            }
            got.extend(more);
        }
        // One producer's run keeps its order; the other message may sit
        // anywhere around it.
        let pos = |v| got.iter().position(|&x| x == v).unwrap();
        assert!(
            pos(10) < pos(20),
            "a run was delivered out of order: {got:?}"
        );
        got.sort();
        assert_eq!(got, vec![10, 20, 30]);
        m.assert_whole(3);
    });
}

#[test]
fn loom_a_dead_run_writer_leaves_a_prefix() {
    model(|| {
        let m = Model::new(3);
        // Participant 5 claims a run of three slot by slot, publishes the
        // first message and dies while writing the second.
        let dead = {
            let m = m.clone();
            thread::spawn(move || {
                let r = m.ring();
                let run = r.extend_write(r.try_claim_write(5).unwrap(), 3, 5);
                let c = r.write_claims(run).next().unwrap();
                m.slots.payload[c.idx as usize].with_mut(|p| unsafe { *p = 1 });
                r.publish_run(Run::single(c));
                run.len
            })
        };
        assert_eq!(dead.join().unwrap(), 3);
        let recoverer = {
            let m = m.clone();
            thread::spawn(move || m.ring().recover_owner(5))
        };
        let consumer = {
            let m = m.clone();
            thread::spawn(move || m.get_run_split(2, 3))
        };
        let producer = {
            let m = m.clone();
            thread::spawn(move || m.put_run(1, &[7]))
        };
        assert_eq!(recoverer.join().unwrap().discarded, 2);
        producer.join().unwrap();
        let mut got = consumer.join().unwrap();
        got.extend(m.get_run(2, 3));
        got.extend(m.get_run(2, 3));
        got.sort();
        assert_eq!(got, vec![1, 7], "the dead writer's prefix and the live put");
        m.assert_whole(3);
    });
}

#[test]
fn loom_a_run_racing_close_is_drained_or_withdrawn() {
    model(|| {
        let m = Model::new(2);
        let batcher = {
            let m = m.clone();
            thread::spawn(move || {
                let r = m.ring();
                let Ok(run) = r.try_claim_write_run(1, 2) else {
                    return 0;
                };
                for c in r.write_claims(run) {
                    m.slots.payload[c.idx as usize].with_mut(|p| unsafe { *p = 5 });
                }
                r.publish_run(run);
                run.len
            })
        };
        m.closed.store(1, SeqCst);
        seqcst_order_point();
        // A consumer of the closed queue takes what is there until the
        // ring is drained; every message put must reach it.
        let mut got = 0u64;
        loop {
            got += m.get_run(2, 2).len() as u64;
            if m.ring().is_drained(2) {
                break;
            }
            thread::yield_now();
        }
        got += m.get_run(2, 2).len() as u64;
        assert_eq!(got, batcher.join().unwrap());
    });
}

// Recorded runs (ring/recorded.rs): one claim on the first slot, the
// slots behind it left as they are until their owner stores their next word.

/// A batch of up to three (participant 2) and a single get (participant
/// 3), each one attempt, started on threads of their own.
fn batch_and_single_get(m: &Arc<Model>) -> (JoinHandle<Vec<u64>>, JoinHandle<Vec<u64>>) {
    let batch = {
        let m = m.clone();
        thread::spawn(move || m.get_run(2, 3))
    };
    let single = {
        let m = m.clone();
        thread::spawn(move || m.get_once(3))
    };
    (batch, single)
}

#[test]
fn loom_a_recorded_run_and_single_gets_take_each_message_once() {
    model(|| {
        let m = Model::new(3);
        m.put_run(1, &[10, 20, 30]);
        // A batch and a single get race for the message under the head;
        // whoever loses moves on (a single get that finds the record
        // jumps the head past the run).
        let (batch, single) = batch_and_single_get(&m);
        let mut got = batch.join().unwrap();
        got.extend(single.join().unwrap());
        got.extend(m.get_run(4, 3));
        got.extend(m.get_run(4, 3));
        got.sort();
        assert_eq!(got, vec![10, 20, 30]);
        m.assert_whole(3);
    });
}

/// A recorded run being written, its slots behind the record published as
/// each is written (`put_many`), races a batch and a single consumer: no
/// consumer reaches a slot of the run before its record is published (loom
/// flags a read of a payload still being written), and each message comes
/// once, the run's in order.
#[test]
fn loom_a_recorded_run_published_as_written_races_its_consumers() {
    model(|| {
        let m = Model::new(3);
        let writer = {
            let m = m.clone();
            thread::spawn(move || m.put_run(1, &[10, 20, 30]))
        };
        // Both consumers fail on anything but a message or nothing yet
        // (a slot of the run reached early would look damaged).
        let (batch, single) = batch_and_single_get(&m);
        writer.join().unwrap();
        let mut got = batch.join().unwrap();
        let single = single.join().unwrap();
        assert!(got.is_sorted(), "a run out of order: {got:?}");
        got.extend(single);
        got.extend(m.drain(4));
        got.sort();
        assert_eq!(got, vec![10, 20, 30]);
        m.assert_whole(3);
    });
}

impl Model {
    /// One attempt to take a message, without waiting (re-queued ones
    /// included): what a getter does between its sleeps.
    fn try_get(&self, me: u16) -> Option<u64> {
        let r = self.ring();
        let c = r.try_claim_read(me).ok().or_else(|| r.take_requeued(me))?;
        let v = self.read(c);
        assert!(r.release_read(c, me));
        Some(v)
    }
    /// One attempt to put `value`, without waiting; whether it went in.
    fn try_put(&self, me: u16, value: u64) -> bool {
        let r = self.ring();
        let Ok(c) = r.try_claim_write(me) else {
            return false;
        };
        self.slots.payload[c.idx as usize].with_mut(|p| unsafe { *p = value });
        r.publish(c);
        true
    }
    /// Everything left, taken one message at a time (no thread runs).
    fn drain(&self, me: u16) -> Vec<u64> {
        std::iter::from_fn(|| self.try_get(me)).collect()
    }
}

/// The recovery of dead participant `dead` while a getter tries once to
/// take a message and a producer once to put `value`; then everything
/// left is taken. Returns what the recovery did, every message taken,
/// and whether `value` went in.
fn recover_among_others(m: &Arc<Model>, dead: u16, value: u64) -> (Recovered, Vec<u64>, bool) {
    let recoverer = {
        let m = m.clone();
        thread::spawn(move || m.ring().recover_owner(dead))
    };
    let getter = {
        let m = m.clone();
        thread::spawn(move || m.try_get(2))
    };
    let putter = {
        let m = m.clone();
        thread::spawn(move || m.try_put(1, value))
    };
    let recovered = recoverer.join().unwrap();
    let mut got: Vec<u64> = getter.join().unwrap().into_iter().collect();
    let put = putter.join().unwrap();
    got.extend(m.drain(2));
    got.sort();
    (recovered, got, put)
}

#[test]
fn loom_a_dead_recorded_reader_is_requeued_from_its_record() {
    model(|| {
        let m = Model::new(3);
        m.put_run(1, &[10, 20, 30]);
        // Participant 5 takes all three with one claim, hands the second
        // over and dies: the first and the third go back, once each,
        // whatever a getter and a producer do meanwhile.
        let run = m.ring().try_claim_read_run(5, 3).unwrap();
        assert!(run.recorded);
        assert_eq!(m.take_run_until(5, run, 1), vec![10, 20]);
        let (recovered, got, put) = recover_among_others(&m, 5, 40);
        assert_eq!(recovered.requeued, 2);
        let mut expected = vec![10, 30];
        if put {
            expected.push(40);
        }
        assert_eq!(got, expected, "the dead reader's 20 left the queue");
        m.assert_whole(3);
    });
}

#[test]
fn loom_a_dead_recorded_writer_is_discarded_whole() {
    model(|| {
        let m = Model::new(3);
        // Participant 5 claims three free slots with one claim, writes and
        // publishes the two behind its record (as `publish_run` does before
        // the record) and dies: nothing of the run may be delivered,
        // whatever a getter and a producer do meanwhile.
        let r = m.ring();
        let run = r.try_claim_write_run(5, 3).unwrap();
        assert!(run.recorded);
        for span in r.write_spans(run).skip(1) {
            for c in span.claims_from(0) {
                m.slots.payload[c.idx as usize].with_mut(|p| unsafe { *p = 1 });
                m.slots.state(c.idx).store(pack(c.lap, READY, 0), Release);
            }
        }
        let (recovered, got, put) = recover_among_others(&m, 5, 7);
        assert_eq!(recovered.discarded, 3);
        assert_eq!(got, if put { vec![7] } else { vec![] });
        m.assert_whole(3);
    });
}
