//! This queue as a peer: its child roles (producer, consumer, echo, idle
//! getter), the private queue directory, and the throughput, ping-pong and
//! idle-CPU runs. The producers and consumers run the loops of this crate's
//! library, the same code as `mq bench`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use queue_bench::{Mode, Report, Tally};
use queue_core::{GetError, Queue};

use crate::child::{Kid, args, ready_then_wait_for_go, report, spawn_all};
use crate::stats::{PingPlan, sample};
use crate::{capacity_for, split};

/// Puts `count` messages of `size` bytes stamped with producer number `id`
/// (the shared loop of `queue_bench`), then reports `sent COUNT SUM`.
pub fn mq_producer(dir: &str, name: &str, size: usize, count: usize, batch: usize, id: usize) {
    let q = Queue::open_in(dir, name).expect("producer: open");
    ready_then_wait_for_go();
    let mode = Mode::batched(batch).limit(count as u64);
    let sent = queue_bench::produce(&q, id as u64, size, mode).expect("produce");
    report(Report::sent(sent));
}

/// Takes messages until the queue is closed and drained (the shared loop of
/// `queue_bench`), then reports `got COUNT SUM`.
pub fn mq_consumer(dir: &str, name: &str, batch: usize) {
    let q = Queue::open_in(dir, name).expect("consumer: open");
    ready_then_wait_for_go();
    let got = queue_bench::consume(&q, Mode::batched(batch)).expect("consume");
    report(Report::got(got));
}

pub fn mq_echo(dir: &str, ping: &str, pong: &str) {
    let ping = Queue::open_in(dir, ping).expect("echo: open ping");
    let pong = Queue::open_in(dir, pong).expect("echo: open pong");
    let mut buf = Vec::with_capacity(ping.max_msg_size());
    ready_then_wait_for_go();
    loop {
        match ping.get_into(&mut buf) {
            Ok(_) => pong.put(&buf).expect("echo put"),
            Err(GetError::Closed) => break,
            Err(e) => panic!("echo get: {e}"),
        }
    }
}

pub fn mq_idle(dir: &str, name: &str) {
    let q = Queue::open_in(dir, name).expect("idle: open");
    ready_then_wait_for_go();
    match q.get() {
        Err(GetError::Closed) => {}
        other => panic!("idle getter: expected Closed, got {other:?}"),
    }
}

/// The private queue directory, removed when dropped.
pub struct Scratch {
    dir: PathBuf,
    next: AtomicU32,
}

impl Scratch {
    pub fn new() -> Scratch {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("mq-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bench directory");
        Scratch {
            dir,
            next: AtomicU32::new(0),
        }
    }

    pub fn name(&self, what: &str) -> String {
        format!("{what}{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn dir_str(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp path")
    }

    pub fn create(&self, name: &str, size: usize, capacity: usize) -> Queue {
        Queue::builder(name)
            .dir(&self.dir)
            .capacity(capacity)
            .max_msg_size(size)
            .create()
            .expect("create bench queue")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn tp_mq(s: &Scratch, size: usize, p: usize, n: u64, batch: usize) -> Duration {
    tp_mq_fan(s, size, p, p, n, batch)
}

/// `p` producers and `c` consumers of this queue.
pub fn tp_mq_fan(s: &Scratch, size: usize, p: usize, c: usize, n: u64, batch: usize) -> Duration {
    let name = s.name("tp");
    let q = s.create(&name, size, capacity_for(size));
    let each = split(n, p);
    let mut specs = Vec::new();
    for id in 0..p {
        let a = args(&[&"mq-prod", &s.dir_str(), &name, &size, &each, &batch, &id]);
        specs.push((a, vec![]));
    }
    for _ in 0..c {
        specs.push((args(&[&"mq-cons", &s.dir_str(), &name, &batch]), vec![]));
    }
    let mut kids = spawn_all(specs);
    // Every participant is attached: unlink now, nothing can leak.
    Queue::remove_in(&s.dir, &name).expect("remove bench queue");
    let start = Instant::now();
    kids.iter_mut().for_each(Kid::go);
    let mut sent = Tally::default();
    for k in &mut kids[..p] {
        sent.merge(k.report());
    }
    q.close().unwrap();
    let mut got = Tally::default();
    for k in &mut kids[p..] {
        got.merge(k.report());
    }
    let elapsed = start.elapsed();
    assert_eq!(sent.count, each * p as u64, "producers put too few");
    assert_eq!(got, sent, "messages lost or duplicated (count, checksum)");
    kids.into_iter().for_each(Kid::finish);
    elapsed
}

pub fn pp_mq(s: &Scratch, plan: &PingPlan, size: usize) -> Vec<u64> {
    let (a, b) = (s.name("ping"), s.name("pong"));
    let ping = s.create(&a, size, capacity_for(size));
    let pong = s.create(&b, size, capacity_for(size));
    let mut kids = spawn_all(vec![(args(&[&"mq-echo", &s.dir_str(), &a, &b]), vec![])]);
    Queue::remove_in(&s.dir, &a).unwrap();
    Queue::remove_in(&s.dir, &b).unwrap();
    kids[0].go();
    let msg = vec![0xabu8; size];
    let mut buf = Vec::with_capacity(size);
    let v = sample(plan, || {
        ping.put(&msg).unwrap();
        pong.get_into(&mut buf).unwrap();
    });
    ping.close().unwrap();
    kids.into_iter().for_each(Kid::finish);
    v
}

/// Clock ticks (utime + stime) a process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A getter blocked on an empty queue: CPU ticks used over a few seconds.
pub fn idle_check(s: &Scratch, secs: u64) -> String {
    let name = s.name("idle");
    let q = s.create(&name, 64, 16);
    let mut kids = spawn_all(vec![(args(&[&"mq-idle", &s.dir_str(), &name]), vec![])]);
    kids[0].go();
    std::thread::sleep(Duration::from_millis(500)); // past any spinning
    let pid = kids[0].child.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let used = cpu_ticks(pid) - before;
    q.close().unwrap();
    kids.into_iter().for_each(Kid::finish);
    Queue::remove_in(&s.dir, &name).unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    format!(
        "blocked get: {used} clock ticks (utime+stime, {hz:.0}/s) in {secs} s = {:.2}% of one core",
        used as f64 / hz / secs as f64 * 100.0
    )
}
