//! Unit tests of the slot protocol over a plain array of state words.

use super::*;

struct VecSlots(Vec<AtomicU64>);
impl Slots for VecSlots {
    fn capacity(&self) -> u64 {
        self.0.len() as u64
    }
    fn state(&self, idx: u64) -> &AtomicU64 {
        &self.0[idx as usize]
    }
}

struct Fixture {
    head: AtomicU64,
    tail: AtomicU64,
    requeued: AtomicU64,
    requeued_at: AtomicU64,
    closed: AtomicU32,
    slots: VecSlots,
}

impl Fixture {
    fn new(cap: usize) -> Self {
        Fixture {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            requeued_at: AtomicU64::new(0),
            closed: AtomicU32::new(0),
            slots: VecSlots((0..cap).map(|_| AtomicU64::new(0)).collect()),
        }
    }
    fn ring(&self) -> Ring<'_, VecSlots> {
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
}

#[test]
fn pack_round_trips() {
    let s = pack(0xdead_beef, READING, 0x1234);
    assert_eq!(lap_of(s), 0xdead_beef);
    assert_eq!(kind_of(s), READING);
    assert_eq!(owner_of(s), 0x1234);
    assert_eq!(pack(0, EMPTY, 0), 0, "zeroed memory is a valid empty ring");
}

#[test]
fn fills_and_drains_over_many_laps() {
    let f = Fixture::new(3);
    let r = f.ring();
    for round in 0..10u64 {
        for _ in 0..3 {
            let c = r.try_claim_write(1).unwrap();
            r.publish(c);
        }
        assert_eq!(r.try_claim_write(1), Err(PutBlocked::Full));
        assert_eq!(r.len(), 3);
        for i in 0..3 {
            let c = r.try_claim_read(2).unwrap();
            assert_eq!(c.idx, i);
            assert_eq!(c.lap as u64, round);
            assert!(r.release_read(c, 2));
        }
        assert_eq!(r.try_claim_read(2), Err(GetBlocked::Empty));
    }
}

#[test]
fn pending_writer_blocks_the_head() {
    let f = Fixture::new(2);
    let r = f.ring();
    let w = r.try_claim_write(7).unwrap();
    assert_eq!(r.try_claim_read(2), Err(GetBlocked::Pending { owner: 7 }));
    r.publish(w);
    assert!(r.try_claim_read(2).is_ok());
}

#[test]
fn dead_writer_is_discarded_and_capacity_returns() {
    let f = Fixture::new(2);
    let r = f.ring();
    let _dead = r.try_claim_write(5).unwrap();
    let live = r.try_claim_write(1).unwrap();
    r.publish(live);
    assert_eq!(
        r.recover_owner(5),
        Recovered {
            discarded: 1,
            requeued: 0
        }
    );
    let c = r.try_claim_read(2).unwrap();
    assert_eq!(c.idx, 1, "the skipped slot is passed over");
    assert!(r.release_read(c, 2));
    for _ in 0..2 {
        let c = r.try_claim_write(1).unwrap();
        r.publish(c);
    }
    assert_eq!(r.try_claim_write(1), Err(PutBlocked::Full));
}

#[test]
fn dead_reader_message_is_redelivered_once() {
    let f = Fixture::new(2);
    let r = f.ring();
    for _ in 0..2 {
        let c = r.try_claim_write(1).unwrap();
        r.publish(c);
    }
    let lost = r.try_claim_read(9).unwrap();
    assert_eq!(
        r.recover_owner(9),
        Recovered {
            discarded: 0,
            requeued: 1
        }
    );
    let again = r.try_claim_read(2).unwrap();
    assert_eq!(
        (again.idx, again.lap),
        (lost.idx, lost.lap),
        "the re-queued (older) message comes first"
    );
    assert_eq!(again.generation, 2, "its second delivery");
    assert!(r.release_read(again, 2));
    let next = r.try_claim_read(2).unwrap();
    assert_eq!(next.idx, 1);
    assert!(r.release_read(next, 2));
    assert_eq!(r.try_claim_read(2), Err(GetBlocked::Empty));
    assert_eq!(f.requeued.load(SeqCst), 0);
}

#[test]
fn dropped_lease_goes_back() {
    let f = Fixture::new(1);
    let r = f.ring();
    let c = r.try_claim_write(1).unwrap();
    r.publish(c);
    let lease = r.try_claim_read(2).unwrap();
    assert_eq!(r.try_claim_write(1), Err(PutBlocked::Full));
    assert!(r.requeue(lease, 2));
    assert_eq!(r.len(), 1);
    let again = r.try_claim_read(3).unwrap();
    assert!(!r.release_read(again, 2), "not ours");
    assert!(r.release_read(again, 3));
    assert!(r.try_claim_write(1).is_ok());
}

#[test]
fn a_redelivery_starts_looking_at_the_slot_requeued_last() {
    let f = Fixture::new(4);
    let r = f.ring();
    for _ in 0..4 {
        let c = r.try_claim_write(1).unwrap();
        r.publish(c);
    }
    let leases: Vec<Claim> = (0..4).map(|_| r.try_claim_read(2).unwrap()).collect();
    assert!(r.requeue(leases[2], 2));
    assert_eq!(f.requeued_at.load(SeqCst), 2);
    assert!(r.requeue(leases[1], 2));
    assert_eq!(f.requeued_at.load(SeqCst), 1);
    // Slot 1 first, then on round the ring to slot 2.
    assert_eq!(r.try_claim_read(3).unwrap().idx, 1);
    assert_eq!(r.try_claim_read(3).unwrap().idx, 2);
    // A damaged hint only moves where the look starts.
    assert!(r.requeue(leases[3], 2));
    f.requeued_at.store(u64::MAX, SeqCst);
    assert_eq!(r.try_claim_read(3).unwrap().idx, 3);
    assert_eq!(r.try_claim_read(3), Err(GetBlocked::Empty));
}

#[test]
fn overcounted_hint_heals() {
    let f = Fixture::new(2);
    f.requeued.store(1, SeqCst);
    let r = f.ring();
    assert_eq!(r.try_claim_read(2), Err(GetBlocked::Empty));
    assert_eq!(f.requeued.load(SeqCst), 0);
}

#[test]
fn close_stops_writers_and_drain_is_detected() {
    let f = Fixture::new(2);
    let r = f.ring();
    let c = r.try_claim_write(1).unwrap();
    r.publish(c);
    f.closed.store(1, SeqCst);
    assert_eq!(r.try_claim_write(1), Err(PutBlocked::Closed));
    assert!(!r.is_drained(2));
    let c = r.try_claim_read(2).unwrap();
    assert!(r.is_drained(2), "own claim does not count");
    assert!(!r.is_drained(3), "another reader might put it back");
    assert!(r.release_read(c, 2));
    assert!(r.is_drained(3));
}

#[test]
fn garbage_state_is_reported_not_looped_on() {
    let f = Fixture::new(2);
    f.slots.0[0].store(pack(77, READY, 0), SeqCst);
    let r = f.ring();
    assert!(matches!(r.try_claim_read(1), Err(GetBlocked::Corrupt(_))));
    assert!(matches!(r.try_claim_write(1), Err(PutBlocked::Corrupt(_))));
    f.slots.0[0].store(pack(0, 200, 0), SeqCst);
    assert!(matches!(r.try_claim_read(1), Err(GetBlocked::Corrupt(_))));
}

/// Writes a run of up to `most` slots (claim, extend, publish) as `me`.
fn put_run(r: &Ring<'_, VecSlots>, most: u64, me: u16) -> Result<u64, PutBlocked> {
    let run = r.extend_write(r.try_claim_write(me)?, most, me);
    r.publish_run(run);
    Ok(run.len)
}

/// Reads a run of up to `most` slots (claim, extend, release) as `me`.
fn get_run(r: &Ring<'_, VecSlots>, most: u64, me: u16) -> Result<u64, GetBlocked> {
    let run = r.extend_read(r.try_claim_read(me)?, most, me, |_| true);
    hand_over_all(r, run, me);
    Ok(run.len)
}

/// [`put_run`], claiming the run in one step ([`Ring::try_claim_write_run`]).
fn put_claimed_run(r: &Ring<'_, VecSlots>, most: u64, me: u16) -> Result<u64, PutBlocked> {
    let run = r.try_claim_write_run(me, most)?;
    r.publish_run(run);
    Ok(run.len)
}

/// [`get_run`], claiming the run in one step ([`Ring::try_claim_read_run`]).
fn get_claimed_run(r: &Ring<'_, VecSlots>, most: u64, me: u16) -> Result<u64, GetBlocked> {
    let run = r.try_claim_read_run(me, most)?;
    hand_over_all(r, run, me);
    Ok(run.len)
}

/// Hands over every slot of the read run `run`, held by `me`.
fn hand_over_all(r: &Ring<'_, VecSlots>, run: Run, me: u16) {
    for span in r.read_spans(run) {
        if span.held == Held::Record {
            continue; // last
        }
        let hand_over = r.hand_over(span, me);
        for state in r.slots.states(span.idx, span.len) {
            assert!(hand_over.slot(state));
        }
    }
    if run.recorded {
        assert!(r.release_record(run, me));
    }
}

#[test]
fn runs_wrap_around_and_move_the_cursors_past_themselves() {
    type Put = fn(&Ring<'_, VecSlots>, u64, u16) -> Result<u64, PutBlocked>;
    type Get = fn(&Ring<'_, VecSlots>, u64, u16) -> Result<u64, GetBlocked>;
    let ways: [(&str, Put, Get); 2] = [
        ("claimed, then extended", put_run, get_run),
        ("claimed in one step", put_claimed_run, get_claimed_run),
    ];
    for (way, put_run, get_run) in ways {
        let f = Fixture::new(4);
        let r = f.ring();
        for lap in 0..5u64 {
            // Three in, then two of them out: the next run wraps.
            assert_eq!(put_run(&r, 3, 1), Ok(3), "{way}");
            assert_eq!(get_run(&r, 2, 2), Ok(2), "{way}");
            assert_eq!(f.head.load(SeqCst), 6 * lap + 2, "{way}: head past the run");
            assert_eq!(
                put_run(&r, 8, 1),
                Ok(3),
                "{way}, lap {lap}: a run fills what is free"
            );
            assert_eq!(f.tail.load(SeqCst), 6 * lap + 6, "{way}: tail past the run");
            assert_eq!(put_run(&r, 8, 1), Err(PutBlocked::Full), "{way}");
            assert_eq!(get_run(&r, 8, 2), Ok(4), "{way}");
            assert_eq!(get_run(&r, 8, 2), Err(GetBlocked::Empty), "{way}");
            assert_eq!(f.head.load(SeqCst), f.tail.load(SeqCst), "{way}");
            assert_eq!(f.tail.load(SeqCst), 6 * (lap + 1), "{way}");
        }
    }
}

#[test]
fn a_run_claimed_in_one_step_starts_where_a_single_claim_would() {
    let f = Fixture::new(4);
    let r = f.ring();
    // Closed: nothing claimed, nothing left WRITING.
    f.closed.store(1, SeqCst);
    assert_eq!(r.try_claim_write_run(1, 4), Err(PutBlocked::Closed));
    assert!(r.is_drained(2));
    f.closed.store(0, SeqCst);
    // The tail lags behind a position already taken: the run starts after
    // it, as a single claim would, and takes the free slots behind.
    f.slots.0[0].store(pack(0, WRITING, 7), SeqCst);
    let run = r.try_claim_write_run(1, 4).unwrap();
    assert_eq!((run.first.idx, run.len), (1, 3));
    assert_eq!(f.tail.load(SeqCst), 4);
    r.publish_run(run);
    // Its writer dies: the head waits on its slot, then moves on.
    assert_eq!(
        r.try_claim_read_run(2, 8),
        Err(GetBlocked::Pending { owner: 7 })
    );
    assert_eq!(r.recover_owner(7).discarded, 1);
    // A message put back after a dropped lease comes first, then the
    // ready ones behind it join its run.
    let lease = r.try_claim_read(2).unwrap();
    assert_eq!(lease.idx, 1);
    assert!(r.requeue(lease, 2));
    let run = r.try_claim_read_run(3, 8).unwrap();
    assert_eq!((run.first.idx, run.first.generation, run.len), (1, 2, 3));
    hand_over_all(&r, run, 3);
    assert_eq!(f.head.load(SeqCst), 4);
    assert!(r.is_drained(3));
}

#[test]
fn a_recorded_run_keeps_the_slots_behind_its_record_and_the_cursors_jump_past_it() {
    let f = Fixture::new(4);
    let r = f.ring();
    // Three free slots: one claim, a record, the tail past all three.
    let w = r.try_claim_write_run(1, 3).unwrap();
    assert!(w.recorded);
    assert_eq!(f.slots.0[0].load(SeqCst), pack_run(0, 3, WRITE_RUN, 1));
    assert_eq!(f.slots.0[1].load(SeqCst), pack(0, EMPTY, 0), "untouched");
    assert_eq!(f.tail.load(SeqCst), 3);
    // A producer that still sees the tail on the record jumps it past the
    // run (a step of one would take slot 1).
    f.tail.store(0, SeqCst);
    let c = r.try_claim_write(2).unwrap();
    assert_eq!(c.idx, 3);
    r.publish(c);
    // Consumers wait on the record until it is published, last.
    assert_eq!(r.try_claim_read(3), Err(GetBlocked::Pending { owner: 1 }));
    r.publish_run(w);
    // One claim takes the four ready messages; a getter that still sees
    // the head on the record jumps it past the run too.
    let run = r.try_claim_read_run(3, 8).unwrap();
    assert_eq!((run.first.idx, run.len, run.recorded), (0, 4, true));
    assert_eq!(f.slots.0[0].load(SeqCst), pack_run(0, 4, READ_RUN, 3));
    assert_eq!(f.slots.0[2].load(SeqCst), pack(0, READY, 0));
    f.head.store(0, SeqCst);
    assert_eq!(r.try_claim_read(4), Err(GetBlocked::Empty));
    assert_eq!(f.head.load(SeqCst), 4);
    // The drain check counts the slots behind our own record as ours, and
    // a closed queue does not report them as lost.
    f.closed.store(1, SeqCst);
    assert!(r.is_drained(3));
    assert!(!r.is_drained(4));
    assert_eq!(r.stranded(), None);
    hand_over_all(&r, run, 3);
    assert!(r.is_drained(4));
}

#[test]
fn recovery_requeues_a_dead_readers_run_and_discards_a_dead_writers() {
    let f = Fixture::new(4);
    let r = f.ring();
    assert_eq!(put_claimed_run(&r, 3, 1), Ok(3));
    // Reader 5 takes the three, hands the second over and dies.
    let run = r.try_claim_read_run(5, 3).unwrap();
    let behind: Vec<Span> = r.read_spans(run).skip(1).collect();
    assert_eq!(behind.len(), 1);
    assert!(r.hand_over(behind[0], 5).slot(r.slots.state(behind[0].idx)));
    let back = r.recover_owner(5);
    assert_eq!((back.requeued, back.discarded), (2, 0));
    assert_eq!(f.requeued.load(SeqCst), 2);
    let firsts: Vec<u64> = std::iter::from_fn(|| r.take_requeued(2))
        .map(|c| {
            assert!(r.release_read(c, 2));
            c.idx
        })
        .collect();
    assert_eq!(firsts.len(), 2);
    assert!(firsts.contains(&0) && firsts.contains(&2));
    // Writer 6 claims the four free slots, publishes what is behind its
    // record and dies: the whole run is skipped, nothing delivered.
    let w = r.try_claim_write_run(6, 4).unwrap();
    assert_eq!((w.len, w.recorded), (4, true));
    for span in r.write_spans(w).skip(1) {
        for c in span.claims_from(0) {
            f.slots.0[c.idx as usize].store(pack(c.lap, READY, 0), SeqCst);
        }
    }
    assert_eq!(r.recover_owner(6).discarded, 4);
    assert_eq!(r.try_claim_read_run(2, 8), Err(GetBlocked::Empty));
    assert_eq!(f.head.load(SeqCst), 7);
    // Every slot is free again, for the next lap.
    assert_eq!(put_claimed_run(&r, 4, 1), Ok(4));
}

#[test]
fn a_recorded_write_run_given_back_skips_all_its_positions() {
    let f = Fixture::new(4);
    let r = f.ring();
    // What a producer does that sees `closed` right after its record's
    // claim (the race itself: loom_a_run_racing_close_is_drained_or_withdrawn).
    let run = r.try_claim_write_run(1, 3).unwrap();
    assert!(run.recorded);
    r.abandon_run(run);
    assert_eq!(get_claimed_run(&r, 8, 2), Err(GetBlocked::Empty));
    assert_eq!(f.head.load(SeqCst), 3, "the head passed the skipped run");
    assert!(r.is_drained(2));
    // The slots are free for the next lap.
    assert_eq!(put_claimed_run(&r, 4, 1), Ok(4));
    assert_eq!(get_claimed_run(&r, 8, 2), Ok(4));
}

#[test]
fn a_run_stops_at_a_slot_someone_else_holds() {
    let f = Fixture::new(4);
    let r = f.ring();
    // Another producer claimed position 1 ahead of the tail's helpers.
    let other = pack(0, WRITING, 7);
    f.slots.0[1].store(other, SeqCst);
    assert_eq!(put_run(&r, 4, 1), Ok(1));
    assert_eq!(f.slots.0[1].load(SeqCst), other);
    // The reader's run stops at the unpublished slot as well.
    assert_eq!(get_run(&r, 4, 2), Ok(1));
}

#[test]
fn a_run_claimed_after_close_is_given_back_but_its_first_slot_kept() {
    let f = Fixture::new(4);
    let r = f.ring();
    let first = r.try_claim_write(1).unwrap();
    f.closed.store(1, SeqCst);
    let run = r.extend_write(first, 4, 1);
    assert_eq!(run, Run::single(first), "the extension withdraws");
    r.publish(first);
    assert_eq!(get_run(&r, 4, 2), Ok(1));
    // Withdrawn positions are skipped, not stranded.
    assert_eq!(r.try_claim_read(2), Err(GetBlocked::Empty));
    assert!(r.is_drained(2));
}

#[test]
fn position_of_recovers_the_full_position_from_a_truncated_lap() {
    let f = Fixture::new(3);
    let r = f.ring();
    let pos = (1u64 << 32) * 3 + 5; // lap 2^32 + 1, slot 2: lap truncates to 1
    let claim = Claim {
        idx: 2,
        lap: (pos / 3) as u32,
        generation: 0,
    };
    assert_eq!(r.position_of(claim, pos - 2), pos);
    assert_eq!(r.position_of(claim, pos + 2), pos);
}

#[test]
fn a_read_run_stops_where_admit_refuses_and_leaves_that_message_ready() {
    let f = Fixture::new(4);
    let r = f.ring();
    // Positions 0..2 in and out, then 2..6 in: a run from 2 wraps (slots 2, 3, 0, 1).
    assert_eq!(put_run(&r, 2, 1), Ok(2));
    assert_eq!(get_run(&r, 2, 2), Ok(2));
    assert_eq!(put_run(&r, 4, 1), Ok(4));
    let first = r.try_claim_read(3).unwrap();
    assert_eq!(first.idx, 2);
    let mut asked = Vec::new();
    let run = r.extend_read(first, 8, 3, |idx| {
        asked.push(idx);
        idx != 0
    });
    assert_eq!(asked, [3, 0], "asked in queue order, across the wrap");
    assert_eq!(run.len, 2, "the first and slot 3; slot 0 refused");
    assert_eq!(f.head.load(SeqCst), 4, "the head passes the run only");
    assert_eq!(
        f.slots.0[0].load(SeqCst),
        pack(1, READY, 0),
        "refused: still ready"
    );
    hand_over_all(&r, run, 3);
    assert_eq!(
        get_run(&r, 8, 3),
        Ok(2),
        "the refused message is the next one"
    );
    assert!(r.is_drained(3));
}

#[test]
fn a_read_run_may_start_at_a_requeued_message_and_hands_over_each_generation() {
    let f = Fixture::new(4);
    let r = f.ring();
    assert_eq!(put_run(&r, 3, 1), Ok(3));
    // A lease on the first message, dropped: it waits again, delivered once.
    let lease = r.try_claim_read(2).unwrap();
    assert!(r.requeue(lease, 2));
    let first = r.try_claim_read(3).unwrap();
    assert_eq!((first.idx, first.generation), (0, 2), "re-queued first");
    let run = r.extend_read(first, 8, 3, |_| true);
    assert_eq!(run.len, 3, "the ready messages behind it join the run");
    assert_eq!(
        r.read_spans(run)
            .map(|s| (s.idx, s.len, s.generation))
            .collect::<Vec<_>>(),
        [(0, 1, 2), (1, 2, 1)]
    );
    for span in r.read_spans(run) {
        let hand_over = r.hand_over(span, 3);
        assert!(
            r.slots
                .states(span.idx, span.len)
                .all(|s| hand_over.slot(s))
        );
    }
    assert_eq!(f.head.load(SeqCst), 3);
    assert!(r.is_drained(3));
}

#[test]
fn a_run_wrapping_the_ring_is_two_spans_a_lap_apart() {
    let f = Fixture::new(4);
    let r = f.ring();
    assert_eq!(put_run(&r, 3, 1), Ok(3));
    assert_eq!(get_run(&r, 3, 2), Ok(3));
    // Positions 3, 4, 5: slot 3 of lap 0, then slots 0 and 1 of lap 1.
    let run = r.extend_write(r.try_claim_write(1).unwrap(), 3, 1);
    assert_eq!(write_spans(&r, run), [(3, 1, 0), (0, 2, 1)]);
    r.publish_run(run);
    assert_eq!(get_run(&r, 8, 2), Ok(3));
    // Positions 6 to 8 (slots 2 and 3 of lap 1, slot 0 of lap 2), claimed
    // as one recorded run: its first slot (the record) alone, the slot
    // behind it, and the one after the wrap.
    let run = r.try_claim_write_run(1, 3).unwrap();
    assert!(run.recorded);
    assert_eq!(write_spans(&r, run), [(2, 1, 1), (3, 1, 1), (0, 1, 2)]);
    let held: Vec<Held> = r.write_spans(run).map(|s| s.held).collect();
    assert_eq!(held, [Held::Record, Held::Behind, Held::Behind]);
    r.publish_run(run);
    assert_eq!(get_run(&r, 8, 2), Ok(3));
    // Claimed slot by slot, the first slot joins the span behind it.
    assert_eq!(put_run(&r, 2, 1), Ok(2));
    let run = r.extend_write(r.try_claim_write(1).unwrap(), 2, 1);
    assert_eq!(write_spans(&r, run), [(3, 1, 2), (0, 1, 3)]);
}

/// The spans of the write run `run`, as (first slot, length, lap).
fn write_spans(r: &Ring<'_, VecSlots>, run: Run) -> Vec<(u64, u64, u32)> {
    r.write_spans(run).map(|s| (s.idx, s.len, s.lap)).collect()
}
