//! `queue_net::bridge` between two queue directories through one server:
//! everything delivered, close propagated, and `kill -9` of either bridge
//! (and of the server) loses nothing.

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use queue_core::Queue;
use queue_net::{AnyQueue, BridgeOptions, CreateOptions, GetError, RemoteQueue, bridge};
use support::{NatsServer, TempDir, Watchdog, spawn_guarded, unique};

/// Env var that turns this test binary into a bridge process (for kill -9).
const CHILD_ENV: &str = "MQ_TEST_BRIDGE_CHILD";

/// `dir:/path:name` or a URL. A bridge started while the server restarts
/// retries, as its supervisor would restart it.
fn open_side(spec: &str) -> AnyQueue {
    match spec.strip_prefix("dir:") {
        Some(rest) => {
            let (dir, name) = rest.rsplit_once(':').unwrap();
            Queue::open_in(dir, name).unwrap().into()
        }
        None => {
            let start = Instant::now();
            loop {
                match RemoteQueue::open(spec) {
                    Ok(q) => return q.into(),
                    Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("{e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
    }
}

/// Not a test of its own: the body of a bridge process started by
/// `bridges_survive_kill_9`; does nothing when run normally.
#[test]
fn bridge_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (src, dst) = spec.split_once('|').unwrap();
    let (src, dst) = (open_side(src), open_side(dst));
    let report = bridge(&src, &dst, &BridgeOptions::default()).unwrap();
    eprintln!("bridge {spec}: moved {}", report.moved);
    std::process::exit(0);
}

fn spawn_bridge(src: &str, dst: &str) -> Child {
    let exe = std::env::current_exe().unwrap();
    spawn_guarded(
        Command::new(exe)
            .args(["--exact", "bridge_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{src}|{dst}"))
            .stdout(std::process::Stdio::null()),
    )
}

fn side(dir: &Path, name: &str) -> String {
    format!("dir:{}:{name}", dir.display())
}

fn numbered(i: u64) -> [u8; 16] {
    let mut m = [b'.'; 16];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

/// Counts what a consumer received: every number, how often.
struct Tally {
    seen: Vec<u32>,
    total: u64,
    out_of_order: u64,
    last: Option<u64>,
}

impl Tally {
    fn new(n: u64) -> Tally {
        Tally {
            seen: vec![0; n as usize],
            total: 0,
            out_of_order: 0,
            last: None,
        }
    }

    fn add(&mut self, msg: &[u8]) {
        let i = u64::from_le_bytes(msg[..8].try_into().unwrap());
        self.seen[i as usize] += 1;
        self.total += 1;
        if self.last.is_some_and(|l| i < l) {
            self.out_of_order += 1;
        }
        self.last = Some(i);
    }

    fn missing(&self) -> usize {
        self.seen.iter().filter(|&&c| c == 0).count()
    }

    fn duplicates(&self) -> u64 {
        self.total - self.seen.iter().filter(|&&c| c > 0).count() as u64
    }
}

/// Sets up A/src -> remote -> B/dst; returns the two local queues' dirs.
struct TwoMachines {
    server: NatsServer,
    a: TempDir,
    b: TempDir,
    remote: String,
}

impl TwoMachines {
    fn new(capacity: usize, ack_wait: Duration) -> TwoMachines {
        let server = NatsServer::start();
        let a = TempDir::new("mq-machine-a");
        let b = TempDir::new("mq-machine-b");
        Queue::builder("src")
            .dir(&a.0)
            .capacity(capacity)
            .max_msg_size(64)
            .create()
            .unwrap();
        Queue::builder("dst")
            .dir(&b.0)
            .capacity(capacity)
            .max_msg_size(64)
            .create()
            .unwrap();
        let remote = server.queue_url(&unique("mid"));
        RemoteQueue::create(
            &remote,
            &CreateOptions::default()
                .capacity(capacity)
                .max_msg_size(64)
                .ack_wait(ack_wait),
        )
        .unwrap();
        TwoMachines {
            server,
            a,
            b,
            remote,
        }
    }

    /// Puts `n` numbered messages into A/src, then closes it.
    fn produce(&self, n: u64) -> std::thread::JoinHandle<()> {
        let dir = self.a.0.clone();
        std::thread::spawn(move || {
            let q = Queue::open_in(&dir, "src").unwrap();
            for i in 0..n {
                q.put(&numbered(i)).unwrap();
            }
            q.close().unwrap();
        })
    }

    /// Gets from B/dst until it is closed and drained.
    fn consume(&self, n: u64) -> std::thread::JoinHandle<Tally> {
        let dir = self.b.0.clone();
        std::thread::spawn(move || {
            let q = Queue::open_in(&dir, "dst").unwrap();
            let mut tally = Tally::new(n);
            loop {
                match q.get() {
                    Ok(m) => tally.add(&m),
                    Err(queue_core::GetError::Closed) => return tally,
                    Err(e) => panic!("consumer: {e}"),
                }
            }
        })
    }
}

#[test]
fn two_bridges_move_every_message_and_propagate_close() {
    let _w = Watchdog::new("bridge", Duration::from_secs(120));
    let m = TwoMachines::new(1000, Duration::from_secs(5));
    let n = 5_000;
    let producer = m.produce(n);
    let consumer = m.consume(n);
    let (a, b, remote) = (m.a.0.clone(), m.b.0.clone(), m.remote.clone());
    let out = std::thread::spawn(move || {
        let src = AnyQueue::from(Queue::open_in(&a, "src").unwrap());
        let dst = AnyQueue::open(&remote).unwrap();
        bridge(&src, &dst, &BridgeOptions::default()).unwrap()
    });
    let src = AnyQueue::open(&m.remote).unwrap();
    let dst = AnyQueue::from(Queue::open_in(&b, "dst").unwrap());
    let back = bridge(&src, &dst, &BridgeOptions::default()).unwrap();
    producer.join().unwrap();
    let out = out.join().unwrap();
    let tally = consumer.join().unwrap();
    assert_eq!((out.moved, back.moved), (n, n));
    assert!(out.closed_destination && back.closed_destination);
    assert_eq!(tally.missing(), 0);
    assert_eq!(tally.duplicates(), 0);
    assert_eq!(tally.out_of_order, 0, "order per source is kept");
    assert_eq!(src.get(), Err(GetError::Closed));
}

#[test]
fn bridges_survive_kill_9_of_either_bridge_and_of_the_server() {
    let _w = Watchdog::new("bridge chaos", Duration::from_secs(300));
    let n: u64 = std::env::var("MQ_TEST_BRIDGE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let batch = BridgeOptions::default().batch as u64;
    let mut m = TwoMachines::new(2000, Duration::from_secs(2));
    let started = Instant::now();
    let producer = m.produce(n);
    let consumer = m.consume(n);
    let out_spec = (side(&m.a.0, "src"), m.remote.clone());
    let back_spec = (m.remote.clone(), side(&m.b.0, "dst"));
    let mut out = spawn_bridge(&out_spec.0, &out_spec.1);
    let mut back = spawn_bridge(&back_spec.0, &back_spec.1);
    let (mut bridge_kills, mut server_kills) = (0u64, 0u64);
    let dst = Queue::open_in(&m.b.0, "dst").unwrap();
    // Ten kills, alternating, spread over the stream (each once some
    // messages moved since the last), and the server once in the middle.
    let mut last_total = 0;
    let src = Queue::open_in(&m.a.0, "src").unwrap();
    let mid = RemoteQueue::open(&m.remote).unwrap();
    let mut progress = (0, Instant::now());
    // A bridge that stops with an error, or a stream that stops moving for
    // 60 s, fails the test with what each queue holds (not the watchdog).
    let mut check_alive = |out: &mut Child, back: &mut Child| {
        for (what, child) in [("out", out), ("back", back)] {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "bridge {what} failed: {status}");
            }
        }
        let moved = dst.stats().total_put;
        if moved != progress.0 {
            progress = (moved, Instant::now());
        }
        assert!(
            progress.1.elapsed() < Duration::from_secs(60),
            "stalled at {moved}: src {:?}\nremote {:?}\ndst {:?}",
            src.stats(),
            mid.stats(),
            dst.stats()
        );
    };
    while bridge_kills < 10 && !consumer.is_finished() {
        std::thread::sleep(Duration::from_millis(150 + 37 * bridge_kills));
        check_alive(&mut out, &mut back);
        let total = dst.stats().total_put;
        if total == last_total {
            continue;
        }
        last_total = total;
        let which = if bridge_kills % 2 == 0 {
            &mut out
        } else {
            &mut back
        };
        which.kill().unwrap(); // SIGKILL
        which.wait().unwrap();
        *which = if bridge_kills % 2 == 0 {
            spawn_bridge(&out_spec.0, &out_spec.1)
        } else {
            spawn_bridge(&back_spec.0, &back_spec.1)
        };
        bridge_kills += 1;
        if bridge_kills == 5 {
            m.server.kill();
            std::thread::sleep(Duration::from_millis(300));
            m.server.restart();
            server_kills += 1;
        }
    }
    while !consumer.is_finished() {
        check_alive(&mut out, &mut back);
        std::thread::sleep(Duration::from_millis(50));
    }
    producer.join().unwrap();
    let tally = consumer.join().unwrap();
    assert!(out.wait().unwrap().success());
    assert!(back.wait().unwrap().success());
    let bound = batch * (bridge_kills + 2 * server_kills);
    eprintln!(
        "chaos: {n} messages in {:?}, {bridge_kills} bridge kills, {server_kills} server kill: \
         {} missing, {} duplicates (bound {bound}), {} out of order",
        started.elapsed(),
        tally.missing(),
        tally.duplicates(),
        tally.out_of_order
    );
    assert_eq!(tally.missing(), 0, "lost messages");
    assert!(
        tally.duplicates() <= bound,
        "{} duplicates",
        tally.duplicates()
    );
    assert!(bridge_kills >= 5, "the stream ended before enough kills");
}
