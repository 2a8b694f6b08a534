//! Dead-letter queues across real processes: a poison message whose
//! consumers are killed `max_deliveries` times lands in the dead-letter
//! queue exactly once while the others flow on; and a `kill -9` chaos run
//! where poison messages kill their consumers and the test kills consumers
//! (movers among them) at random moments: every poison message ends in the
//! dead-letter queue exactly once, nothing is lost, nothing is there twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog, kill9, lines, message};
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
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
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
