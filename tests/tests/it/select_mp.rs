//! Waiting on many queues across real processes (`Select`) and the async
//! verbs (`get_async`, `put_async`) fed or drained by another process; the
//! children are `mq-select-child` (see its doc comment for the modes).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mq_tests::{ChildGuard, TestDir, Watchdog};
use queue_core::{GetError, Queue};

const CHILD: &str = env!("CARGO_BIN_EXE_mq-select-child");

/// Spawns a child with piped stdout and waits until it prints "ready".
fn spawn_ready(args: &[&str]) -> (ChildGuard, BufReader<std::process::ChildStdout>) {
    let mut g = ChildGuard::new(
        mq_tests::die_with_test(&mut Command::new(CHILD))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn mq-select-child"),
    );
    let mut out = BufReader::new(g.child().stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (g, out)
}

fn run(args: &[&str]) -> ExitStatus {
    mq_tests::die_with_test(&mut Command::new(CHILD))
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("run mq-select-child")
}

fn wait(g: ChildGuard) -> ExitStatus {
    g.take().wait().expect("wait for child")
}

fn rest(mut out: BufReader<std::process::ChildStdout>) -> Vec<String> {
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    s.lines().map(str::to_owned).collect()
}

/// Reads a child's output in a thread, so a child printing more than a pipe
/// holds does not stall (and with it the producers waiting on it).
fn collect(out: BufReader<std::process::ChildStdout>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || rest(out))
}

/// Creates `prefix0..prefix{n-1}` in `d`.
fn queues(d: &TestDir, prefix: &str, n: usize, cap: usize) -> Vec<Queue> {
    (0..n)
        .map(|i| {
            Queue::builder(&format!("{prefix}{i}"))
                .dir(d.path())
                .capacity(cap)
                .max_msg_size(64)
                .create()
                .unwrap()
        })
        .collect()
}

/// Drops the handles, removes the queues and checks nothing is left.
fn remove_all(d: &TestDir, qs: Vec<Queue>) {
    let names: Vec<String> = qs.iter().map(|q| q.name().to_owned()).collect();
    drop(qs);
    for n in names {
        Queue::remove_in(d.path(), &n).unwrap();
    }
    let left: Vec<_> = d
        .leftovers()
        .into_iter()
        .filter(|f| f.starts_with("mq."))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

fn utime_stime_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after comm.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn a_selector_over_64_queues_gets_every_message_exactly_once() {
    let _w = Watchdog::new("select 64", Duration::from_secs(240));
    let d = TestDir::new("sel64");
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "s", 64, 8);
    let (sel, out) = spawn_ready(&["select", dir, "s", "64"]);
    let out = collect(out);
    const PRODUCERS: u64 = 3;
    const EACH: u64 = 3000;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let (id_s, each, seed) = (id.to_string(), EACH.to_string(), (id * 7 + 1).to_string());
            let args = ["put-random", dir, "s", "64", &id_s, &each, &seed];
            std::thread::spawn({
                let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                move || {
                    mq_tests::die_with_test(&mut Command::new(CHILD))
                        .args(&args)
                        .status()
                        .unwrap()
                }
            })
        })
        .collect();
    for p in producers {
        assert!(p.join().unwrap().success(), "producer failed");
    }
    for q in &qs {
        q.close().unwrap();
    }
    assert!(wait(sel).success(), "selector failed");
    let lines = out.join().unwrap();
    let mut seen = HashSet::new();
    for line in &lines {
        let (i, payload) = line.split_once(' ').expect("i payload");
        let q = payload.rsplit(':').next().unwrap();
        assert_eq!(i, q, "message {payload} reported on queue {i}");
        assert!(seen.insert(payload.to_owned()), "{payload} twice");
    }
    assert_eq!(seen.len() as u64, PRODUCERS * EACH, "messages missing");
    remove_all(&d, qs);
}

#[test]
fn a_close_on_any_selected_queue_wakes_ready() {
    let _w = Watchdog::new("select close", Duration::from_secs(60));
    let d = TestDir::new("selclose");
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "c", 8, 4);
    let (sel, out) = spawn_ready(&["select-once", dir, "c", "8", "30000"]);
    std::thread::sleep(Duration::from_millis(200));
    qs[5].close().unwrap();
    assert!(wait(sel).success());
    assert_eq!(rest(out), vec!["5"]);
    remove_all(&d, qs);
}

#[test]
fn a_blocked_selector_burns_no_cpu() {
    let _w = Watchdog::new("select idle cpu", Duration::from_secs(60));
    let d = TestDir::new("selidle");
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "i", 16, 4);
    let (sel, out) = spawn_ready(&["select-once", dir, "i", "16", "30000"]);
    std::thread::sleep(Duration::from_millis(500)); // past the polling phase
    let before = utime_stime_ticks(sel.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = utime_stime_ticks(sel.id()) - before;
    // Clock ticks are 10 ms; a selector that wakes ten times a second to
    // look for dead peers on 16 queues uses well under one tick a second.
    assert!(used <= 5, "blocked selector used {used} ticks in 2 s");
    qs[15].put(b"bye").unwrap();
    assert!(wait(sel).success());
    assert_eq!(rest(out), vec!["15"]);
    remove_all(&d, qs);
}

#[test]
fn a_selector_timeout_returns_after_the_timeout() {
    let _w = Watchdog::new("select timeout", Duration::from_secs(60));
    let d = TestDir::new("selto");
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "t", 4, 4);
    let started = Instant::now();
    assert_eq!(run(&["select-once", dir, "t", "4", "300"]).code(), Some(10));
    assert!(started.elapsed() >= Duration::from_millis(300));
    remove_all(&d, qs);
}

/// 1,000 tasks awaiting `get_async` on 100 queues in another process, fed
/// by this one, on the executor `exec`.
fn thousand_tasks_on_100_queues(exec: &str) {
    let _w = Watchdog::new("async 1000 tasks", Duration::from_secs(240));
    let d = TestDir::new(&format!("async-{exec}"));
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "a", 100, 8);
    let (child, out) = spawn_ready(&["async-get", dir, "a", "100", "1000", exec]);
    let out = collect(out);
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        for (i, q) in qs.iter().enumerate() {
            q.put(format!("{round}:{i}").as_bytes()).unwrap();
        }
    }
    for q in &qs {
        q.close().unwrap();
    }
    assert!(wait(child).success(), "async getter failed");
    let mut seen = HashSet::new();
    for line in out.join().unwrap() {
        let (i, payload) = line.split_once(' ').expect("i payload");
        assert_eq!(payload.rsplit(':').next().unwrap(), i);
        assert!(seen.insert(payload.to_owned()), "{payload} twice");
    }
    assert_eq!(seen.len(), ROUNDS * 100, "messages missing");
    remove_all(&d, qs);
}

#[test]
fn a_thousand_tokio_tasks_on_100_queues_receive_everything() {
    thousand_tasks_on_100_queues("tokio");
}

#[test]
fn a_thousand_futures_executor_tasks_on_100_queues_receive_everything() {
    thousand_tasks_on_100_queues("futures");
}

#[test]
fn put_async_on_a_full_queue_completes_when_another_process_takes_one() {
    let _w = Watchdog::new("put_async", Duration::from_secs(60));
    let d = TestDir::new("aput");
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "p", 1, 1);
    qs[0].put(b"first").unwrap();
    let (child, _out) = spawn_ready(&["async-put", dir, "p0"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(qs[0].len(), 1, "the full queue took nothing yet");
    assert_eq!(qs[0].get().unwrap(), b"first");
    assert!(wait(child).success());
    assert_eq!(qs[0].get().unwrap(), b"late");
    remove_all(&d, qs);
}

#[test]
fn dropped_get_async_futures_lose_no_message() {
    let _w = Watchdog::new("async drop", Duration::from_secs(120));
    let d = TestDir::new("adrop");
    let dir = d.path().to_str().unwrap();
    let qs = queues(&d, "d", 1, 16);
    let (child, out) = spawn_ready(&["async-drop", dir, "d0", "3000", "12345"]);
    let out = collect(out);
    const COUNT: usize = 600;
    let mut put = 0;
    while put < COUNT {
        match qs[0].try_put(format!("m{put}").as_bytes()) {
            Ok(()) => put += 1,
            Err(_) => std::thread::sleep(Duration::from_micros(200)),
        }
        if put % 7 == 0 {
            std::thread::sleep(Duration::from_micros(700));
        }
    }
    assert!(wait(child).success(), "async getter failed");
    let mut seen = HashSet::new();
    let got = out.join().unwrap();
    assert!(!got.is_empty(), "the child got nothing at all");
    for m in got {
        assert!(seen.insert(m.clone()), "{m} twice");
    }
    loop {
        match qs[0].try_get() {
            Ok(m) => assert!(seen.insert(String::from_utf8(m).unwrap()), "twice"),
            Err(GetError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen.len(), COUNT, "messages lost by dropped futures");
    remove_all(&d, qs);
}
