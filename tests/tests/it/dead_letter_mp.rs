//! Dead-letter queues across real processes: a poison message whose
//! consumers are killed `max_deliveries` times lands in the dead-letter
//! queue exactly once while the others flow on; and a `kill -9` chaos run
//! where poison messages kill their consumers and the test kills consumers
//! (movers among them) at random moments: every poison message ends in the
//! dead-letter queue exactly once, nothing is lost, nothing is there twice.
//! And movers stopped and killed while they hold the move lock, their lock
//! freed by another process's recovery.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog, chaos_rng, kill9, lines, message};
use queue_core::{GetError, Queue, SlotView};

use crate::delivery_mp::poison_killed_max_times_then_the_others_flow;

const CHILD: &str = env!("CARGO_BIN_EXE_mq-test-child");

#[test]
fn a_poison_message_lands_in_the_dead_letter_queue_exactly_once() {
    let _w = Watchdog::new("dead letter", Duration::from_secs(120));
    let d = TestDir::new("dead-letter");
    const MAX: usize = 3;
    let q = Queue::builder("jobs")
        .dir(d.path())
        .max_deliveries(MAX)
        .dead_letter("jobs.dead")
        .create()
        .unwrap();
    poison_killed_max_times_then_the_others_flow(&d, &q, MAX);
    let s = q.stats();
    assert_eq!((s.dead_lettered, s.dropped_poison), (1, 0));

    let dead = Queue::open_in(d.path(), "jobs.dead").unwrap();
    let lease = dead.try_get_lease().unwrap();
    assert_eq!(&*lease, b"poison");
    let origin = lease.dead_letter().unwrap();
    assert_eq!((origin.queue.as_str(), origin.deliveries), ("jobs", MAX));
    lease.ack().unwrap();
    assert!(matches!(dead.try_get(), Err(GetError::Empty)));
    drop((q, dead));
    Queue::remove_in(d.path(), "jobs").unwrap();
    Queue::remove_in(d.path(), "jobs.dead").unwrap();
}

/// Poison messages (id 1) kill their consumer; normal ones (id 0) are
/// printed, then acked. The test also kills consumers at random moments, so
/// movers die inside moves. At the end: every poison message is in the
/// dead-letter queue exactly once; a normal message is there at most once
/// (it is one if its consumers were killed `max_deliveries` times), and
/// every normal message not there was printed; nothing else is there.
#[test]
fn kill9_chaos_during_moves_moves_every_poison_message_exactly_once() {
    let _w = Watchdog::new("dead-letter chaos", Duration::from_secs(300));
    let d = TestDir::new("dead-letter-chaos");
    let dir = d.path().to_str().unwrap().to_owned();
    const NORMAL: u64 = 300;
    const POISON: u64 = 200;
    // Poison messages are large, so that moves (two copies) take long
    // enough for random kills to land inside some of them.
    const POISON_SIZE: usize = 48 << 10;
    let q = Queue::builder("src")
        .dir(d.path())
        .capacity(400)
        .max_msg_size(POISON_SIZE)
        .priorities(2)
        .max_deliveries(1)
        .dead_letter("src.dead")
        .create()
        .unwrap();
    let mut next = chaos_rng(0x9e37_79b9_7f4a_7c15);
    // Poison spread among the normal messages, on both levels.
    let mut buf = Vec::new();
    let (mut normal, mut poison) = (0, 0);
    while normal < NORMAL || poison < POISON {
        let is_poison = poison < POISON && (normal == NORMAL || next(5) == 0);
        let (id, seq) = if is_poison {
            (1, &mut poison)
        } else {
            (0, &mut normal)
        };
        let size = if is_poison {
            POISON_SIZE
        } else {
            20 + (*seq as usize % 100)
        };
        message::encode(id, *seq, size, &mut buf);
        q.put_priority(&buf, (*seq % 2) as usize).unwrap();
        *seq += 1;
    }
    let spawn_consumer = |n: u32| {
        let file = |ext: &str| std::fs::File::create(d.path().join(format!("c{n}.{ext}"))).unwrap();
        ChildGuard::new(
            Command::new(CHILD)
                .args(["dlq-consume", &dir, "src"])
                .stdin(Stdio::null())
                .stdout(file("out"))
                .stderr(file("err"))
                .spawn()
                .expect("spawn mq-test-child"),
        )
    };
    let mut consumers: Vec<ChildGuard> = (0..4).map(spawn_consumer).collect();
    let mut spawned = 4u32;
    let mut kills = 0;
    // Until the source is drained: replace consumers that died on poison,
    // and kill one at random every few milliseconds. (Drained: one scan
    // finds every slot empty. A message never changes slots and never
    // comes back once handed over, so the scan cannot miss one.)
    while !q.slots().iter().all(|s| *s == SlotView::Empty) {
        std::thread::sleep(Duration::from_millis(2 + next(15)));
        let mut i = 0;
        while i < consumers.len() {
            if consumers[i].child().try_wait().unwrap().is_some() {
                consumers.swap_remove(i);
                consumers.push(spawn_consumer(spawned));
                spawned += 1;
            }
            i += 1;
        }
        let victim = consumers.swap_remove(next(consumers.len() as u64) as usize);
        kill9(victim.id());
        let _ = victim.take().wait();
        kills += 1;
        consumers.push(spawn_consumer(spawned));
        spawned += 1;
    }
    q.close().unwrap();
    for c in consumers {
        let status = c.take().wait().unwrap();
        let errors: String = (0..spawned)
            .flat_map(|n| lines(&d.path().join(format!("c{n}.err"))))
            .collect::<Vec<_>>()
            .join("\n");
        // Killed by a signal: it took a poison message after its last look.
        let poisoned = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        assert!(
            status.success() || poisoned,
            "a consumer failed: {status:?}: {errors}"
        );
    }
    q.recover();
    let s = q.stats();

    // What was printed (delivered) per normal message.
    let mut printed: BTreeMap<u64, u64> = BTreeMap::new();
    for n in 0..spawned {
        for line in lines(&d.path().join(format!("c{n}.out"))) {
            let mut parts = line.split(' ');
            let (id, seq) = (parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(id, "0", "a poison message was delivered: {line}");
            *printed.entry(seq.parse().unwrap()).or_default() += 1;
        }
    }
    // What the dead-letter queue holds.
    let dead = Queue::open_in(d.path(), "src.dead").unwrap();
    let mut moved: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    loop {
        match dead.try_get_lease() {
            Ok(lease) => {
                let m = message::decode(&lease).expect("a whole dead letter");
                let origin = lease.dead_letter().expect("recorded as a dead letter");
                assert_eq!(origin.queue, "src");
                assert!(origin.deliveries >= 1, "{origin:?}");
                *moved.entry(m).or_default() += 1;
                lease.ack().unwrap();
            }
            Err(GetError::Empty) => break,
            Err(e) => panic!("draining the dead-letter queue: {e}"),
        }
    }
    let twice: Vec<_> = moved.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "moved more than once: {twice:?}");
    let lost_poison: Vec<_> = (0..POISON)
        .filter(|p| !moved.contains_key(&(1, *p)))
        .collect();
    assert!(
        lost_poison.is_empty(),
        "poison not in the dead-letter queue: {lost_poison:?}"
    );
    let lost: Vec<_> = (0..NORMAL)
        .filter(|n| !printed.contains_key(n) && !moved.contains_key(&(0, *n)))
        .collect();
    assert!(lost.is_empty(), "normal messages lost: {lost:?}");
    // The count misses a move only if its mover died between the hand-over
    // and the count.
    assert!(
        s.dead_lettered <= moved.len() && moved.len() - s.dead_lettered <= kills,
        "dead_lettered {} for {} moved",
        s.dead_lettered,
        moved.len()
    );
    let ds = dead.stats();
    eprintln!(
        "dead-letter chaos: {kills} kills, {spawned} consumers, {} moved ({} normal), \
         {} half-moved copies discarded, {} redelivered",
        moved.len(),
        moved.keys().filter(|(id, _)| *id == 0).count(),
        ds.discarded_partial,
        s.redelivered,
    );
    assert!(q.slots().iter().all(|s| *s == SlotView::Empty));
    assert!(dead.slots().iter().all(|s| *s == SlotView::Empty));
    drop((q, dead));
    Queue::remove_in(d.path(), "src").unwrap();
    Queue::remove_in(d.path(), "src.dead").unwrap();
    assert!(
        Path::new(d.path())
            .read_dir()
            .unwrap()
            .all(|e| { !e.unwrap().file_name().to_string_lossy().starts_with("mq.") })
    );
}

/// The dead-letter queue's move lock, `{ seq: u32, stage: u8, owner: u16 }`
/// at byte 960 of its header (docs/design.md; layout.rs asserts that
/// offset at compile time): its stage.
fn move_stage(dead_letter_file: &Path) -> u8 {
    use std::os::unix::fs::FileExt;
    let mut word = [0u8; 8];
    std::fs::File::open(dead_letter_file)
        .and_then(|f| f.read_exact_at(&mut word, 960))
        .expect("read the move lock");
    (u64::from_le_bytes(word) >> 16) as u8
}

/// A mover caught inside a move, across processes: each consumer moves the
/// poison message its predecessor died on (2 MiB, so the copy under the
/// lock takes milliseconds), and the test stops it with SIGSTOP at a random
/// moment. If the dead-letter queue's move lock is then TAKEN (or
/// COMMITTED) the consumer is killed right there, stopped; the test's own
/// recovery must free the lock, and at the end every poison message is in
/// the dead-letter queue exactly once. (The random kills of the chaos test
/// above rarely land inside a move; this one keeps going until some do.)
#[test]
fn a_mover_killed_inside_a_move_is_resolved_by_another_process() {
    const TAKEN: u8 = 1;
    const COMMITTED: u8 = 2;
    const SIZE: usize = 2 << 20;
    let _w = Watchdog::new("mover killed mid-move", Duration::from_secs(240));
    let d = TestDir::new("dead-letter-mid-move");
    let dir = d.path().to_str().unwrap().to_owned();
    let q = Queue::builder("src")
        .dir(d.path())
        .capacity(4)
        .max_msg_size(SIZE)
        .max_deliveries(1)
        .dead_letter("src.dead")
        .create()
        .unwrap();
    let dead = Queue::open_in(d.path(), "src.dead").unwrap();
    let lock_file = d.path().join("mq.src.dead");
    let mut next = chaos_rng(0x2545_f491_4f6c_dd1d);
    let mut moved: BTreeMap<u64, u32> = BTreeMap::new();
    let drain_dead_letters = |moved: &mut BTreeMap<u64, u32>| {
        while let Ok(lease) = dead.try_get_lease() {
            let (id, seq) = message::decode(&lease).expect("a whole dead letter");
            assert_eq!(id, 1);
            *moved.entry(seq).or_default() += 1;
            lease.ack().unwrap();
        }
    };
    let (mut put, mut buf) = (0u64, Vec::new());
    let (mut caught, mut caught_committed, mut consumers) = (0, 0, 0);
    // Until 3 movers were killed inside a move (or 150 consumers ran), then
    // until the source is drained.
    loop {
        let draining = caught >= 3 || consumers >= 150;
        if draining && q.slots().iter().all(|s| *s == SlotView::Empty) {
            break;
        }
        // Keep two poison messages waiting: one for the next consumer to
        // move, one for it to die on.
        while !draining && q.len() < 2 {
            message::encode(1, put, SIZE, &mut buf);
            q.put(&buf).unwrap();
            put += 1;
        }
        let mut c = ChildGuard::new(
            Command::new(CHILD)
                .args(["dlq-consume", &dir, "src"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn mq-test-child"),
        );
        consumers += 1;
        let pid = c.id() as libc::pid_t;
        if !draining {
            std::thread::sleep(Duration::from_micros(300 + next(6_000)));
            // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our
            // child, not yet waited for.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            let mut status = 0;
            // SAFETY: as above; WUNTRACED waits until it stopped (or died).
            unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
            if !libc::WIFSTOPPED(status) {
                // It ended before the stop, and waitpid reaped it: only its
                // end is left to check (taken out, so the guard does not
                // kill or wait again; a `Child` dropped does neither).
                drop(c.take());
                assert!(
                    libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
                    "a consumer ended otherwise: status {status:#x}"
                );
                q.recover();
                drain_dead_letters(&mut moved);
                continue;
            }
            let stage = move_stage(&lock_file);
            if stage == TAKEN || stage == COMMITTED {
                caught += 1;
                caught_committed += usize::from(stage == COMMITTED);
                kill9(c.id());
                let _ = c.take().wait();
                q.recover();
                assert_eq!(move_stage(&lock_file), 0, "the dead mover's lock was freed");
                drain_dead_letters(&mut moved);
                continue;
            }
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        // It dies on the next poison message; while draining, the last one
        // moves the last message and then waits for more: killed then.
        let status = loop {
            if let Some(status) = c.child().try_wait().unwrap() {
                break status;
            }
            if draining && q.slots().iter().all(|s| *s == SlotView::Empty) {
                kill9(c.id());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        drop(c.take());
        assert!(
            std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
            "a consumer ended otherwise: {status:?}"
        );
        q.recover();
        drain_dead_letters(&mut moved);
    }
    q.close().unwrap();
    drain_dead_letters(&mut moved);
    eprintln!(
        "mid-move: {consumers} consumers, {caught} killed inside a move \
         ({caught_committed} after its commit), {put} poison messages, {} half-moved copies discarded",
        dead.stats().discarded_partial
    );
    assert!(
        caught >= 1,
        "no stop landed inside a move in {consumers} tries"
    );
    let wrong: Vec<_> = (0..put).filter(|s| moved.get(s) != Some(&1)).collect();
    assert!(
        wrong.is_empty(),
        "not moved exactly once: {wrong:?} of {moved:?}"
    );
    assert_eq!(moved.len() as u64, put);
    drop((q, dead));
    Queue::remove_in(d.path(), "src").unwrap();
    Queue::remove_in(d.path(), "src.dead").unwrap();
}
