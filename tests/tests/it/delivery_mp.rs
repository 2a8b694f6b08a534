//! Delivery control across real processes: priority order under four
//! producers and four consumers, a living consumer that never acks losing
//! its message to another after the lease deadline (its late ack fails), a
//! poison message whose consumers are killed `max_deliveries` times being
//! dropped exactly once while the others flow on, and the `kill -9` chaos
//! run with priorities and lease deadlines on.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog, kill9, message};
use queue_core::{GetError, Queue, SlotView};

use crate::core_mp::{Delivery, chaos_with};

const CHILD: &str = env!("CARGO_BIN_EXE_mq-test-child");

pub(crate) fn spawn(args: &[&str], stdout: Stdio) -> ChildGuard {
    ChildGuard::new(
        Command::new(CHILD)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .spawn()
            .expect("spawn mq-test-child"),
    )
}

fn to_file(path: &Path) -> Stdio {
    Stdio::from(File::create(path).expect("create child output"))
}

fn piped(g: &mut ChildGuard) -> BufReader<std::process::ChildStdout> {
    BufReader::new(g.child().stdout.take().expect("piped stdout"))
}

fn next_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).expect("read child output");
    line.trim_end().to_owned()
}

/// All messages are put (by 4 producers, spread over 4 levels) before 4
/// consumers start: then each consumer must see priorities that never go
/// up, and the messages of one producer and level in the order they were
/// put; together they get every message exactly once.
#[test]
fn priority_order_under_four_producers_and_four_consumers() {
    let _w = Watchdog::new("priority order", Duration::from_secs(240));
    let d = TestDir::new("prio-4x4");
    let dir = d.path().to_str().unwrap();
    const LEVELS: u64 = 4;
    const PER: u64 = 400;
    let q = Queue::builder("prio")
        .dir(d.path())
        .capacity(PER as usize) // each level holds all a level gets
        .max_msg_size(64)
        .priorities(LEVELS as usize)
        .create()
        .unwrap();
    let producers: Vec<_> = (0..4u32)
        .map(|id| {
            let out = d.path().join(format!("p{id}.out"));
            let args = [
                "produce",
                dir,
                "prio",
                &id.to_string(),
                &PER.to_string(),
                "32",
                "4",
            ];
            spawn(&args, to_file(&out))
        })
        .collect();
    for p in producers {
        assert!(p.take().wait().unwrap().success());
    }
    assert_eq!(q.len(), 4 * PER as usize);
    q.close().unwrap();
    let outs: Vec<_> = (0..4).map(|i| d.path().join(format!("c{i}.out"))).collect();
    let consumers: Vec<_> = outs
        .iter()
        .map(|o| spawn(&["consume", dir, "prio", "get"], to_file(o)))
        .collect();
    for c in consumers {
        assert!(c.take().wait().unwrap().success());
    }
    let mut seen = HashSet::new();
    for o in &outs {
        let text = std::fs::read_to_string(o).unwrap();
        let mut last_level = LEVELS;
        let mut last_seq: BTreeMap<(u32, u64), u64> = BTreeMap::new();
        for line in text.lines() {
            let (id, seq) = line.split_once(' ').unwrap();
            let (id, seq): (u32, u64) = (id.parse().unwrap(), seq.parse().unwrap());
            let level = seq % LEVELS;
            assert!(
                level <= last_level,
                "{}: priority {level} after {last_level}",
                o.display()
            );
            last_level = level;
            if let Some(prev) = last_seq.insert((id, level), seq) {
                assert!(
                    prev < seq,
                    "FIFO broken within producer {id}, level {level}"
                );
            }
            assert!(seen.insert((id, seq)), "{id} {seq} delivered twice");
        }
    }
    assert_eq!(seen.len(), 4 * PER as usize, "messages missing");
    drop(q);
    Queue::remove_in(d.path(), "prio").unwrap();
}

/// A consumer that holds its lease past the deadline while alive loses the
/// message to another consumer, and its late ack fails.
#[test]
fn a_living_consumer_that_never_acks_loses_its_message_after_the_deadline() {
    let _w = Watchdog::new("lease deadline", Duration::from_secs(120));
    let d = TestDir::new("lease-deadline");
    let dir = d.path().to_str().unwrap();
    let q = Queue::builder("jobs")
        .dir(d.path())
        .lease_timeout(Duration::from_millis(300))
        .create()
        .unwrap();
    let mut msg = Vec::new();
    message::encode(7, 1, 40, &mut msg);
    q.put(&msg).unwrap();
    let mut holder = spawn(&["lease-hold", dir, "jobs", "3000"], Stdio::piped());
    let mut from_holder = piped(&mut holder);
    assert_eq!(next_line(&mut from_holder), "leased 1");
    // Another consumer waits; its recovery pass puts the overdue lease back.
    let out = d.path().join("other.out");
    let other = spawn(&["consume", dir, "jobs", "lease"], to_file(&out));
    let mut waited = 0;
    while std::fs::read_to_string(&out).unwrap_or_default().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
        waited += 1;
        assert!(waited < 3000, "the other consumer never got the message");
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "7 1\n");
    let late = next_line(&mut from_holder);
    assert!(
        late.starts_with("ack-failed") && late.contains("expired"),
        "{late}"
    );
    assert!(holder.take().wait().unwrap().success());
    q.close().unwrap();
    assert!(other.take().wait().unwrap().success());
    let s = q.stats();
    assert_eq!((s.expired, s.redelivered, s.total_got), (1, 1, 1));
    drop(q);
    Queue::remove_in(d.path(), "jobs").unwrap();
}

/// A poison message kills (here: the test kills) every consumer that takes
/// it. After `max_deliveries` deliveries it is dropped, exactly once, and
/// the messages behind it reach the next consumer.
#[test]
fn a_poison_message_is_dropped_after_max_deliveries_and_the_others_flow_on() {
    let _w = Watchdog::new("poison", Duration::from_secs(120));
    let d = TestDir::new("poison");
    const MAX: usize = 3;
    let q = Queue::builder("jobs")
        .dir(d.path())
        .max_deliveries(MAX)
        .create()
        .unwrap();
    poison_killed_max_times_then_the_others_flow(&d, &q, MAX);
    assert_eq!(q.stats().dropped_poison, 1);
    drop(q);
    Queue::remove_in(d.path(), "jobs").unwrap();
}

/// Puts a poison message and 20 others into `q` ("jobs" in `d`), lets a
/// consumer lease the poison message and kills it, `max` times, then checks
/// that the next consumer gets the 20 others, once each, and that nothing
/// is left: the poison message left on its `max + 1`-th delivery.
pub(crate) fn poison_killed_max_times_then_the_others_flow(d: &TestDir, q: &Queue, max: usize) {
    let dir = d.path().to_str().unwrap();
    q.put(b"poison").unwrap();
    for i in 0..20 {
        q.put(format!("job {i}").as_bytes()).unwrap();
    }
    for delivery in 1..=max {
        let mut c = spawn(&["lease-print", dir, "jobs"], Stdio::piped());
        let mut from = piped(&mut c);
        assert_eq!(next_line(&mut from), format!("msg {delivery} poison"));
        kill9(c.id());
        let _ = c.take().wait();
    }
    // The next consumer never sees it: the next delivery takes it away.
    let mut c = spawn(&["lease-print", dir, "jobs"], Stdio::piped());
    let mut from = piped(&mut c);
    for i in 0..20 {
        assert_eq!(next_line(&mut from), format!("msg 1 job {i}"));
    }
    q.close().unwrap();
    assert_eq!(next_line(&mut from), "");
    assert!(c.take().wait().unwrap().success());
    let s = q.stats();
    assert_eq!(s.redelivered, max);
    assert_eq!(s.total_got, 20);
    assert!(matches!(q.try_get(), Err(GetError::Closed)));
    assert!(q.slots().iter().all(|s| *s == SlotView::Empty));
}

#[test]
fn kill9_chaos_with_priorities_and_deadlines_loses_nothing() {
    chaos_with(
        "lease",
        100,
        "chaos-prio-lease",
        Delivery {
            priorities: 3,
            lease_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    );
}

#[test]
fn kill9_chaos_with_priorities_and_plain_get_duplicates_nothing() {
    chaos_with(
        "get",
        60,
        "chaos-prio-get",
        Delivery {
            priorities: 3,
            lease_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    );
}
