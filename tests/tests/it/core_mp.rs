//! queue-core across real processes: throughput with exactly-once checks,
//! racing creators, blocking and timeouts between processes, `kill -9` chaos,
//! kills aimed inside the copy window, and corrupted segments.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mq_tests::{ChildGuard, Ledger, TestDir, Watchdog, chaos_rng, kill9, lines, message};
use queue_core::{GetError, OpenError, PutError, Queue, SlotView};

const CHILD: &str = env!("CARGO_BIN_EXE_mq-test-child");

fn child(args: &[&str]) -> Command {
    let mut c = Command::new(CHILD);
    mq_tests::die_with_test(&mut c)
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Spawns a child whose stdout goes to `out` (survives a SIGKILL intact).
pub(crate) fn spawn_to(args: &[&str], out: &Path) -> ChildGuard {
    let file = File::create(out).expect("create child output file");
    ChildGuard::new(
        child(args)
            .stdout(Stdio::from(file))
            .spawn()
            .expect("spawn mq-test-child"),
    )
}

/// Spawns a child with piped stdout and waits until it prints "ready".
fn spawn_ready(args: &[&str]) -> (ChildGuard, BufReader<std::process::ChildStdout>) {
    let mut g = ChildGuard::new(
        child(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn mq-test-child"),
    );
    let mut out = BufReader::new(g.child().stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (g, out)
}

pub(crate) fn wait(g: ChildGuard) -> ExitStatus {
    g.take().wait().expect("wait for child")
}

pub(crate) fn dir_str(d: &TestDir) -> &str {
    d.path().to_str().unwrap()
}

pub(crate) fn assert_clean(d: &TestDir, name: &str) {
    Queue::remove_in(d.path(), name).expect("remove queue");
    let left: Vec<_> = d
        .leftovers()
        .into_iter()
        .filter(|f| f.starts_with("mq."))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn four_producers_four_consumers_100k_each_exactly_once() {
    let _w = Watchdog::new("4x4x100k", Duration::from_secs(300));
    let d = TestDir::new("4x4");
    let q = Queue::builder("bulk")
        .dir(d.path())
        .capacity(512)
        .max_msg_size(128)
        .create()
        .unwrap();
    const PER: u64 = 100_000;
    let outs: Vec<PathBuf> = (0..4).map(|i| d.path().join(format!("c{i}.out"))).collect();
    let consumers: Vec<_> = outs
        .iter()
        .map(|o| spawn_to(&["consume", dir_str(&d), "bulk", "get"], o))
        .collect();
    let producers: Vec<_> = (0..4)
        .map(|i| {
            let out = d.path().join(format!("p{i}.out"));
            spawn_to(
                &[
                    "produce",
                    dir_str(&d),
                    "bulk",
                    &i.to_string(),
                    &PER.to_string(),
                    "64",
                ],
                &out,
            )
        })
        .collect();
    for p in producers {
        assert!(wait(p).success());
    }
    q.close().unwrap();
    for c in consumers {
        assert!(wait(c).success(), "consumer failed (exit 3 = torn message)");
    }
    let mut seen = vec![vec![0u8; PER as usize]; 4];
    let mut total = 0;
    for o in &outs {
        for l in lines(o) {
            let (id, seq) = l.split_once(' ').unwrap();
            let (id, seq): (usize, usize) = (id.parse().unwrap(), seq.parse().unwrap());
            seen[id][seq] += 1;
            total += 1;
        }
    }
    assert_eq!(total, 4 * PER as usize);
    for (id, s) in seen.iter().enumerate() {
        if let Some(seq) = s.iter().position(|&n| n != 1) {
            panic!("message ({id}, {seq}) received {} times", s[seq]);
        }
    }
    let st = q.stats();
    assert_eq!(st.total_put, 4 * PER as usize);
    assert_eq!(st.total_got, 4 * PER as usize);
    assert_eq!(st.len, 0);
    drop(q);
    assert_clean(&d, "bulk");
}

#[test]
fn eight_processes_race_open_or_create() {
    let _w = Watchdog::new("open_or_create race", Duration::from_secs(60));
    let d = TestDir::new("race");
    let racers: Vec<_> = (0..8)
        .map(|i| {
            ChildGuard::new(
                child(&["race", dir_str(&d), "racy", &i.to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    File::create(d.path().join("go")).unwrap();
    for r in racers {
        assert!(wait(r).success(), "a racer failed to open or create");
    }
    let q = Queue::open_in(d.path(), "racy").unwrap();
    assert_eq!(q.capacity(), 16);
    let mut ids: Vec<u32> = std::iter::from_fn(|| q.try_get().ok())
        .map(|m| message::decode(&m).unwrap().0)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        (0..8).collect::<Vec<_>>(),
        "every racer's message, once"
    );
    drop(q);
    std::fs::remove_file(d.path().join("go")).unwrap();
    assert_clean(&d, "racy");
}

#[test]
fn blocked_get_is_released_by_a_put_from_another_process() {
    let _w = Watchdog::new("blocked get", Duration::from_secs(60));
    let d = TestDir::new("bget");
    let q = Queue::builder("q").dir(d.path()).create().unwrap();
    let (g, mut out) = spawn_ready(&["get-timeout", dir_str(&d), "q", "30000"]);
    std::thread::sleep(Duration::from_millis(200));
    q.put(b"wake up").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "7\n");
    assert!(wait(g).success());
    drop(q);
    assert_clean(&d, "q");
}

#[test]
fn get_timeout_expires_across_processes() {
    let _w = Watchdog::new("get timeout", Duration::from_secs(60));
    let d = TestDir::new("gto");
    let q = Queue::builder("q").dir(d.path()).create().unwrap();
    let started = Instant::now();
    let (g, _out) = spawn_ready(&["get-timeout", dir_str(&d), "q", "300"]);
    assert_eq!(wait(g).code(), Some(10), "timeout exit code");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(q.try_get(), Err(GetError::Empty));
    drop(q);
    assert_clean(&d, "q");
}

#[test]
fn blocked_put_is_released_by_a_get_from_another_process() {
    let _w = Watchdog::new("blocked put", Duration::from_secs(60));
    let d = TestDir::new("bput");
    let q = Queue::builder("q")
        .dir(d.path())
        .capacity(1)
        .create()
        .unwrap();
    q.put(b"first").unwrap();
    assert_eq!(q.try_put(b"x"), Err(PutError::Full));
    let (g, _out) = spawn_ready(&["put-timeout", dir_str(&d), "q", "30000"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(q.get().unwrap(), b"first");
    assert!(wait(g).success());
    assert_eq!(q.get().unwrap(), b"late");
    // And a put that cannot get a slot in time reports it.
    q.put(b"again").unwrap();
    let (g, _out) = spawn_ready(&["put-timeout", dir_str(&d), "q", "200"]);
    assert_eq!(wait(g).code(), Some(10));
    drop(q);
    assert_clean(&d, "q");
}

#[test]
fn close_wakes_sleepers_in_other_processes() {
    let _w = Watchdog::new("close wakes", Duration::from_secs(60));
    let d = TestDir::new("close");
    let q = Queue::builder("q").dir(d.path()).create().unwrap();
    let (g, _out) = spawn_ready(&["get-timeout", dir_str(&d), "q", "30000"]);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    q.close().unwrap();
    assert_eq!(wait(g).code(), Some(11), "getter saw Closed");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(q.put(b"x"), Err(PutError::Closed));
    assert_eq!(q.close(), Err(queue_core::CloseError::AlreadyClosed));
    drop(q);
    assert_clean(&d, "q");
}

#[test]
fn a_blocked_getter_burns_no_cpu() {
    let _w = Watchdog::new("idle cpu", Duration::from_secs(60));
    let d = TestDir::new("idle");
    let q = Queue::builder("q").dir(d.path()).create().unwrap();
    let (g, _out) = spawn_ready(&["get-timeout", dir_str(&d), "q", "30000"]);
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after_comm.split(' ').collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after comm.
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    std::thread::sleep(Duration::from_millis(500)); // past the spinning phase
    let before = ticks(g.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = ticks(g.id()) - before;
    // Clock ticks are 10 ms: a sleeper that wakes ten times a second to look
    // for dead peers uses well under one tick per second.
    assert!(used <= 5, "blocked getter used {used} ticks in 2 s");
    q.close().unwrap();
    assert_eq!(wait(g).code(), Some(11));
    drop(q);
    assert_clean(&d, "q");
}

/// Chaos: producers and consumers streaming sequence-numbered messages are
/// killed with SIGKILL at random and replaced; then everything is checked.
/// Delivery control for a chaos run: priority levels (producers spread
/// their messages over them) and a lease timeout.
#[derive(Clone, Copy, Default)]
pub(crate) struct Delivery {
    pub priorities: usize,
    pub lease_timeout: Option<Duration>,
    /// Producers put with `put_many` of this many messages (0 or 1: `put`).
    pub put_batch: u64,
    /// Messages of 40-120 KiB (else 20-500 bytes), so that batches reach
    /// the 256 KiB at which `put_many` and a get of many stop.
    pub large: bool,
}

fn chaos(mode: &str, kills_wanted: usize, tag: &str) {
    chaos_with(mode, kills_wanted, tag, Delivery::default());
}

pub(crate) fn chaos_with(mode: &str, kills_wanted: usize, tag: &str, delivery: Delivery) {
    let _w = Watchdog::new("kill -9 chaos", Duration::from_secs(240));
    let d = TestDir::new(tag);
    let dir = dir_str(&d).to_owned();
    let levels = delivery.priorities.max(1);
    let mut builder = Queue::builder("chaos")
        .dir(d.path())
        .capacity(32)
        .max_msg_size(if delivery.large { 120 << 10 } else { 512 })
        .priorities(levels);
    if let Some(t) = delivery.lease_timeout {
        builder = builder.lease_timeout(t);
    }
    let q = builder.create().unwrap();
    let levels = levels.to_string();
    let mut rng = chaos_rng(0x2545_f491_4f6c_dd1d);
    let mut next = move |n: usize| rng(n as u64) as usize;
    let mut producer_ids = 0u32;
    let mut consumer_ids = 0u32;
    let spawn_producer = |id: u32| {
        let out = d.path().join(format!("p{id}.out"));
        let size = if delivery.large {
            (40 << 10) + (id as usize * 3701) % (80 << 10)
        } else {
            20 + (id as usize * 37) % 480
        };
        if delivery.put_batch > 1 {
            let args = [
                "produce-many",
                &dir,
                "chaos",
                &id.to_string(),
                "1000000000",
                &size.to_string(),
                &delivery.put_batch.to_string(),
            ];
            return spawn_to(&args, &out);
        }
        spawn_to(
            &[
                "produce",
                &dir,
                "chaos",
                &id.to_string(),
                "1000000000",
                &size.to_string(),
                &levels,
            ],
            &out,
        )
    };
    let spawn_consumer = |id: u32| {
        let out = d.path().join(format!("c{id}.out"));
        spawn_to(&["consume", &dir, "chaos", mode], &out)
    };
    let mut producers: Vec<ChildGuard> = Vec::new();
    let mut consumers: Vec<ChildGuard> = Vec::new();
    for _ in 0..3 {
        producers.push(spawn_producer(producer_ids));
        producer_ids += 1;
        consumers.push(spawn_consumer(consumer_ids));
        consumer_ids += 1;
    }
    let mut consumer_kills = 0;
    let mut kills = 0;
    let mut finished = Vec::new();
    while kills < kills_wanted {
        std::thread::sleep(Duration::from_millis(5 + next(20) as u64));
        let victim_is_consumer = next(2) == 0;
        let pool = if victim_is_consumer {
            &mut consumers
        } else {
            &mut producers
        };
        let i = next(pool.len());
        let victim = pool.swap_remove(i);
        kill9(victim.id());
        finished.push(wait(victim));
        kills += 1;
        if victim_is_consumer {
            consumer_kills += 1;
            consumers.push(spawn_consumer(consumer_ids));
            consumer_ids += 1;
        } else {
            producers.push(spawn_producer(producer_ids));
            producer_ids += 1;
        }
    }
    for p in producers.drain(..) {
        kill9(p.id());
        finished.push(wait(p));
    }
    q.close().unwrap();
    for c in consumers.drain(..) {
        let status = wait(c);
        assert!(status.success(), "a surviving consumer failed: {status}");
    }
    for status in &finished {
        // Killed children show the signal; any exit code means a failure
        // (3: a torn message arrived; 2: an error).
        assert_eq!(status.code(), None, "a child exited on its own: {status}");
    }

    let ledger = Ledger::read(d.path(), producer_ids, consumer_ids);
    ledger.assert_nothing_invented(delivery.put_batch.max(1), "");
    let (committed, received) = (&ledger.committed, &ledger.received);
    let (duplicates, missing) = (ledger.duplicates(), ledger.missing());
    let st = q.stats();
    eprintln!(
        "chaos {mode} ({} levels): {kills} kills ({consumer_kills} consumers), {} committed, {} received, \
         {duplicates} duplicates, {missing} missing, redelivered {}, discarded_partial {}, expired {}",
        st.priorities,
        committed.len(),
        received.len(),
        st.redelivered,
        st.discarded_partial,
        st.expired
    );
    assert!(
        committed.len() > 100,
        "the chaos run moved too few messages"
    );
    match mode {
        // At-least-once: nothing committed is missing; a consumer killed
        // between printing and acking causes at most one duplicate, and so
        // does a lease whose deadline passed after printing.
        "lease" => {
            assert_eq!(missing, 0, "committed messages lost");
            // Nothing is lost, so what arrived of each producer is a
            // prefix of what it put: a killed `put_many` commits a prefix.
            ledger.assert_prefixes();
            assert!(duplicates <= consumer_kills as u64 + st.expired as u64);
        }
        // Batches (get_many_into): never a duplicate; a consumer killed
        // after handing off part of a batch, before printing it, loses at
        // most that batch (8 messages).
        "batch" => {
            assert_eq!(duplicates, 0, "a message was delivered twice");
            assert!(
                missing <= 8 * consumer_kills as u64,
                "{missing} lost for {consumer_kills} kills"
            );
        }
        // Plain get: never a duplicate; a consumer killed after the hand-off
        // but before printing loses at most its one message.
        _ => {
            assert_eq!(duplicates, 0, "a message was delivered twice");
            assert!(
                missing <= consumer_kills as u64,
                "{missing} lost for {consumer_kills} kills"
            );
        }
    }
    // No capacity leaked: every slot is free again and the cursors agree.
    assert!(
        q.slots().iter().all(|s| *s == SlotView::Empty),
        "{:?}",
        q.slots()
    );
    assert_eq!(st.head, st.tail);
    assert_eq!(st.len, 0);
    drop(q);
    assert_clean(&d, "chaos");
}

#[test]
fn kill9_chaos_with_leases_loses_nothing() {
    chaos("lease", 150, "chaos-lease");
}

#[test]
fn kill9_chaos_with_plain_get_duplicates_nothing() {
    chaos("get", 100, "chaos-get");
}

#[test]
fn kill9_chaos_with_batch_gets_duplicates_nothing() {
    chaos("batch", 100, "chaos-batch");
}

fn big_message() -> Vec<u8> {
    let mut buf = Vec::new();
    message::encode(7, 0, 32 << 20, &mut buf);
    buf
}

/// Polls the ring until a slot is held by another participant in the given
/// way, or the child exits.
fn wait_for_slot(q: &Queue, g: &mut ChildGuard, want: fn(&SlotView) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if q.slots().iter().any(want) {
            return true;
        }
        if let Ok(Some(_)) = g.child().try_wait() {
            return false;
        }
        std::hint::spin_loop();
    }
    false
}

#[test]
fn consumer_killed_while_copying_a_32mib_message_hands_it_to_the_next() {
    let _w = Watchdog::new("aimed consumer kill", Duration::from_secs(240));
    let d = TestDir::new("aim-c");
    let q = Queue::builder("big")
        .dir(d.path())
        .capacity(2)
        .max_msg_size(33 << 20)
        .create()
        .unwrap();
    let msg = big_message();
    let mut caught = false;
    for _ in 0..40 {
        q.put(&msg).unwrap();
        let mut g = ChildGuard::new(
            child(&["consume", dir_str(&d), "big", "get"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let inside = wait_for_slot(&q, &mut g, |s| matches!(s, SlotView::Reading(_)));
        kill9(g.id());
        let _ = wait(g);
        if !inside {
            // Missed the window: the child took the message. Try again.
            let _ = q.try_get();
            continue;
        }
        // Killed between claim and hand-off: recovery puts it back at once,
        // and the next getter gets it whole.
        assert_eq!(q.recover(), 1, "the dead reader's slot is re-queued");
        let again = q.get_timeout(Duration::from_secs(10)).expect("redelivered");
        if again.is_empty() {
            continue;
        }
        assert_eq!(message::decode(&again), Some((7, 0)), "whole and intact");
        assert!(q.stats().redelivered >= 1);
        caught = true;
        break;
    }
    assert!(caught, "never caught the consumer inside its copy window");
    assert_eq!(q.try_get(), Err(GetError::Empty));
    drop(q);
    assert_clean(&d, "big");
}

#[test]
fn producer_killed_while_writing_a_32mib_message_delivers_nothing_half_written() {
    let _w = Watchdog::new("aimed producer kill", Duration::from_secs(240));
    let d = TestDir::new("aim-p");
    let q = Queue::builder("big")
        .dir(d.path())
        .capacity(2)
        .max_msg_size(33 << 20)
        .create()
        .unwrap();
    let mut caught = false;
    for _ in 0..20 {
        let mut g = ChildGuard::new(
            child(&[
                "produce",
                dir_str(&d),
                "big",
                "9",
                "1",
                &(32 << 20).to_string(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        );
        let inside = wait_for_slot(&q, &mut g, |s| matches!(s, SlotView::Writing(_)));
        kill9(g.id());
        let _ = wait(g);
        match q.get_timeout(Duration::from_millis(500)) {
            // The put completed before the kill: a whole message.
            Ok(m) => assert_eq!(message::decode(&m), Some((9, 0))),
            Err(GetError::Timeout) => {
                assert!(inside);
                caught = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(caught, "never caught the producer inside its copy window");
    // The half-written slot was discarded and the capacity is whole again.
    assert_eq!(q.stats().discarded_partial, 1);
    q.try_put(b"one").unwrap();
    q.try_put(b"two").unwrap();
    assert_eq!(q.try_put(b"three"), Err(PutError::Full));
    drop(q);
    assert_clean(&d, "big");
}

#[test]
fn dead_participants_show_in_stats_and_are_cleaned_up() {
    let _w = Watchdog::new("dead participant", Duration::from_secs(60));
    let d = TestDir::new("dead");
    let q = Queue::builder("q").dir(d.path()).create().unwrap();
    let (g, _out) = spawn_ready(&["hold", dir_str(&d), "q"]);
    let pid = g.id();
    let st = q.stats();
    let p = st
        .participants
        .iter()
        .find(|p| p.pid == pid)
        .expect("listed");
    assert!(p.alive);
    kill9(pid);
    let _ = wait(g);
    let st = q.stats();
    let p = st
        .participants
        .iter()
        .find(|p| p.pid == pid)
        .expect("still listed");
    assert!(!p.alive, "a killed process is not alive");
    // The next look for dead peers frees its entry.
    let _ = q.get_timeout(Duration::from_millis(250));
    assert!(q.stats().participants.iter().all(|p| p.pid != pid));
    drop(q);
    assert_clean(&d, "q");
}

#[test]
fn remove_while_attached_then_same_name_is_a_new_queue() {
    let d = TestDir::new("rm");
    let old = Queue::builder("q").dir(d.path()).create().unwrap();
    old.put(b"old").unwrap();
    Queue::remove_in(d.path(), "q").unwrap();
    assert!(matches!(
        Queue::open_in(d.path(), "q"),
        Err(OpenError::NotFound { .. })
    ));
    // The attached handle keeps working on the unlinked segment.
    old.put(b"still").unwrap();
    let new = Queue::builder("q").dir(d.path()).create().unwrap();
    assert_eq!(new.try_get(), Err(GetError::Empty));
    assert_eq!(old.get().unwrap(), b"old");
    assert_eq!(old.get().unwrap(), b"still");
    drop((old, new));
    assert_clean(&d, "q");
}

// ------------------------------------------------------- damaged segments

fn damaged(d: &TestDir, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> OpenError {
    let q = Queue::builder(name)
        .dir(d.path())
        .capacity(4)
        .max_msg_size(64)
        .create()
        .unwrap();
    drop(q);
    let path = d.path().join(format!("mq.{name}"));
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    File::create(&path).unwrap().write_all(&bytes).unwrap();
    let err = Queue::open_in(d.path(), name).expect_err("a damaged segment opened");
    Queue::remove_in(d.path(), name).unwrap_or_else(|e| {
        // Not recognisable as a segment any more: remove it by hand.
        eprintln!("{e}");
        std::fs::remove_file(&path).unwrap();
    });
    err
}

#[test]
fn damaged_segments_give_errors_not_crashes() {
    let d = TestDir::new("damaged");
    let e = damaged(&d, "magic", |b| b[0] ^= 0xff);
    assert!(matches!(e, OpenError::NotAQueue { .. }), "{e}");
    let e = damaged(&d, "version", |b| b[8] = 99);
    assert!(
        matches!(e, OpenError::Incompatible { found: 99, .. }),
        "{e}"
    );
    let e = damaged(&d, "truncated", |b| b.truncate(b.len() - 64));
    assert!(e.to_string().contains("file length"), "{e}");
    let e = damaged(&d, "zero-cap", |b| b[16..24].fill(0));
    assert!(e.to_string().contains("zero capacity"), "{e}");
    let e = damaged(&d, "huge-cap", |b| b[16..24].fill(0xff));
    assert!(matches!(e, OpenError::Corrupted { .. }), "{e}");
    let e = damaged(&d, "stride", |b| b[32] ^= 0x40);
    assert!(e.to_string().contains("slot stride"), "{e}");
    let e = damaged(&d, "tiny", |b| b.truncate(100));
    assert!(matches!(e, OpenError::Corrupted { .. }), "{e}");
    // A foreign file with a queue's file name.
    std::fs::write(d.path().join("mq.foreign"), b"hello, I am a text file\n").unwrap();
    let e = Queue::open_in(d.path(), "foreign").unwrap_err();
    assert!(e.to_string().contains("not a queue segment"), "{e}");
    assert!(matches!(
        Queue::remove_in(d.path(), "foreign"),
        Err(queue_core::RemoveError::NotAQueue { .. })
    ));
    std::fs::remove_file(d.path().join("mq.foreign")).unwrap();
    // An empty file whose creator is gone.
    File::create(d.path().join("mq.unfinished")).unwrap();
    let e = Queue::open_in(d.path(), "unfinished").unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Unfinished {
                creator_alive: false,
                ..
            }
        ),
        "{e}"
    );
    Queue::remove_in(d.path(), "unfinished").unwrap();
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn garbage_in_slots_is_an_error_not_a_hang() {
    let _w = Watchdog::new("garbage slots", Duration::from_secs(60));
    let d = TestDir::new("garbage");
    let q = Queue::builder("g")
        .dir(d.path())
        .capacity(4)
        .max_msg_size(64)
        .create()
        .unwrap();
    q.put(b"ok").unwrap();
    let path = d.path().join("mq.g");
    let mut bytes = std::fs::read(&path).unwrap();
    let slots = u64::from_le_bytes(bytes[56..64].try_into().unwrap()) as usize;
    // Slot 0's length field claims more than the maximum.
    bytes[slots + 8..slots + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    assert!(matches!(q.try_get(), Err(GetError::Corrupted(_))));
    // A slot state from a lap that cannot be.
    bytes[slots..slots + 8].copy_from_slice(&((77u64 << 32) | (2 << 16)).to_le_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    assert!(matches!(q.try_get(), Err(GetError::Corrupted(_))));
    assert!(matches!(q.put(b"x"), Ok(()) | Err(PutError::Corrupted(_))));
    drop(q);
    assert_clean(&d, "g");
}

#[test]
fn bad_settings_and_names_are_refused_before_touching_files() {
    let d = TestDir::new("bad");
    for name in ["", "../x", "a/b", ".hidden", "nul\0byte", &"n".repeat(201)] {
        let e = Queue::builder(name).dir(d.path()).create().unwrap_err();
        assert!(matches!(e, OpenError::InvalidName { .. }), "{name:?}: {e}");
    }
    let e = Queue::builder("q")
        .dir(d.path())
        .capacity(0)
        .create()
        .unwrap_err();
    assert!(e.to_string().contains("capacity is 0"), "{e}");
    let e = Queue::builder("q")
        .dir(d.path())
        .capacity(usize::MAX)
        .max_msg_size(usize::MAX)
        .create()
        .unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    assert!(matches!(
        Queue::open_in(d.path(), "missing"),
        Err(OpenError::NotFound { .. })
    ));
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
    let q = Queue::builder("q").dir(d.path()).create().unwrap();
    assert!(matches!(
        Queue::builder("q").dir(d.path()).create(),
        Err(OpenError::AlreadyExists { .. })
    ));
    let e = q.put(&[0; 4097]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "message is 4097 bytes, the queue takes at most 4096 (create it with a larger max message size)"
    );
    drop(q);
    assert_clean(&d, "q");
}
