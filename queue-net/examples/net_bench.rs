//! The figures of `docs/scale-out.md`, in one run against a `nats-server -js`
//! it starts itself on a free loopback port (binary from `$MQ_NATS_SERVER`,
//! else `nats-server` on PATH):
//!
//! * remote put and get msg/s, 64 B and 4 KiB, 1 and 4 clients;
//! * two bridges joining two local queue directories through the server:
//!   end-to-end msg/s, and the latency of one message at a time;
//! * beside them, plain NATS publish/subscribe of the same messages, and
//!   plain JetStream publish -> pull + ack.
//!
//! * what JetStream itself reaches on this machine without any mq code
//!   (windows, several streams, ack_none, memory vs file storage), each
//!   row with the CPU the server and the bench used meanwhile.
//!
//! `cargo run --release -p queue-net --example net_bench [-- --quick] [--bridge]`
//! (`--bridge`: skip the put/get rows; `MQ_BENCH_BATCH=N`: the 4 KiB bridge's `--batch`)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self, consumer::AckPolicy, consumer::PullConsumer, stream::StorageType,
};
use futures_util::StreamExt;
use queue_core::Queue;
use queue_net::{AnyQueue, BridgeOptions, CreateOptions, RemoteQueue, bridge};
use support::{NatsServer, TempDir, unique};

fn rate(n: u64, d: Duration) -> String {
    let r = n as f64 / d.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2}M msg/s", r / 1e6)
    } else {
        format!("{:.1}k msg/s", r / 1e3)
    }
}

fn remote(server: &NatsServer, size: usize) -> String {
    let url = server.queue_url(&unique("bench"));
    RemoteQueue::create(
        &url,
        &CreateOptions::default()
            .capacity(1_000_000)
            .max_msg_size(size),
    )
    .expect("create");
    url
}

/// How the clients of [`put_get`] call the queue.
#[derive(Clone, Copy)]
enum Calls {
    /// `put` / `get`: one message per call, one round trip (or two) each.
    One,
    /// `put_many` / `get_many` of up to `BATCH` messages per call.
    Many,
}

/// Messages per `put_many` / `get_many` call in the bench.
const BATCH: usize = 256;

/// `clients` threads, each with its own connection, `n` messages in all:
/// the time to put them, then the time to get them.
fn put_get(
    server: &NatsServer,
    size: usize,
    clients: usize,
    n: u64,
    calls: Calls,
) -> (Duration, Duration) {
    let url = remote(server, size);
    let per = n / clients as u64;
    let msg = vec![b'x'; size];
    let run = |put: bool| {
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..clients {
                let (url, msg) = (&url, &msg);
                s.spawn(move || {
                    let q = RemoteQueue::open(url).unwrap();
                    let mut left = per;
                    while left > 0 {
                        let k = match calls {
                            Calls::One => 1,
                            Calls::Many => left.min(BATCH as u64),
                        };
                        match (put, calls) {
                            (true, Calls::One) => q.put(msg).unwrap(),
                            (true, Calls::Many) => {
                                q.put_many(&vec![msg; k as usize]).unwrap();
                            }
                            (false, Calls::One) => drop(q.get().unwrap()),
                            (false, Calls::Many) => {
                                let got = q.get_many(k as usize).unwrap();
                                left -= got.len() as u64;
                                continue;
                            }
                        }
                        left -= k;
                    }
                });
            }
        });
        start.elapsed()
    };
    let put = run(true);
    let get = run(false);
    RemoteQueue::remove(&url).unwrap();
    (put, get)
}

/// A/src -> remote -> B/dst, two bridges in threads; returns the time from
/// the first put to the last get of `n` messages.
fn bridged(server: &NatsServer, n: u64, size: usize, opts: &BridgeOptions) -> Duration {
    let (a, b) = (TempDir::new("bench-a"), TempDir::new("bench-b"));
    let url = remote(server, size);
    for (d, name) in [(&a, "src"), (&b, "dst")] {
        Queue::builder(name)
            .dir(&d.0)
            .capacity(4096)
            .max_msg_size(size)
            .create()
            .unwrap();
    }
    std::thread::scope(|s| {
        let (src, dst) = (
            AnyQueue::from(Queue::open_in(&a.0, "src").unwrap()),
            AnyQueue::open(&url).unwrap(),
        );
        let o = opts;
        s.spawn(move || bridge(&src, &dst, o).unwrap());
        let (src2, dst2) = (
            AnyQueue::open(&url).unwrap(),
            AnyQueue::from(Queue::open_in(&b.0, "dst").unwrap()),
        );
        s.spawn(move || bridge(&src2, &dst2, o).unwrap());
        let start = Instant::now();
        let producer = Queue::open_in(&a.0, "src").unwrap();
        let consumer = Queue::open_in(&b.0, "dst").unwrap();
        let msg = vec![b'x'; size];
        s.spawn(move || {
            for _ in 0..n {
                producer.put(&msg).unwrap();
            }
            producer.close().unwrap();
        });
        let mut got = 0;
        while consumer.get().is_ok() {
            got += 1;
        }
        assert_eq!(got, n);
        start.elapsed()
    })
}

/// The bridges' settings: the default, or `--batch N` from `MQ_BENCH_BATCH`.
fn bench_bridge_options() -> BridgeOptions {
    match std::env::var("MQ_BENCH_BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
    {
        Some(b) => BridgeOptions::default().batch(b),
        None => BridgeOptions::default(),
    }
}

/// One message at a time through the two bridges: put in A, get in B.
fn bridge_latency(server: &NatsServer, rounds: usize) -> Vec<Duration> {
    let (a, b) = (TempDir::new("lat-a"), TempDir::new("lat-b"));
    let url = remote(server, 64);
    for (d, name) in [(&a, "src"), (&b, "dst")] {
        Queue::builder(name).dir(&d.0).create().unwrap();
    }
    let opts = BridgeOptions::default();
    std::thread::scope(|s| {
        let o = &opts;
        let (src, dst) = (
            AnyQueue::from(Queue::open_in(&a.0, "src").unwrap()),
            AnyQueue::open(&url).unwrap(),
        );
        s.spawn(move || bridge(&src, &dst, o).unwrap());
        let (src2, dst2) = (
            AnyQueue::open(&url).unwrap(),
            AnyQueue::from(Queue::open_in(&b.0, "dst").unwrap()),
        );
        s.spawn(move || bridge(&src2, &dst2, o).unwrap());
        let producer = Queue::open_in(&a.0, "src").unwrap();
        let consumer = Queue::open_in(&b.0, "dst").unwrap();
        let mut lat = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            producer.put(&[b'x'; 64]).unwrap();
            consumer.get().unwrap();
            lat.push(t.elapsed());
        }
        producer.close().unwrap();
        while consumer.get().is_ok() {}
        lat.sort();
        lat
    })
}

/// Plain NATS: one publisher, one subscriber, `n` messages of `size`.
fn plain_nats(server: &NatsServer, n: u64, size: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("127.0.0.1:{}", server.port);
    rt.block_on(async {
        // A buffer for every message: core NATS drops them for a slow
        // subscriber otherwise (then fewer arrive and the rate is reported
        // over those).
        let sub_client = async_nats::ConnectOptions::new()
            .subscription_capacity(n as usize + 1024)
            .connect(&addr)
            .await
            .unwrap();
        let pub_client = async_nats::connect(&addr).await.unwrap();
        let subject = unique("plain");
        let mut sub = sub_client.subscribe(subject.clone()).await.unwrap();
        sub_client.flush().await.unwrap();
        let payload = bytes::Bytes::from(vec![b'x'; size]);
        let start = Instant::now();
        let receiver = tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
                    Ok(Some(_)) => got += 1,
                    _ => break,
                }
            }
            got
        });
        for _ in 0..n {
            pub_client
                .publish(subject.clone(), payload.clone())
                .await
                .unwrap();
        }
        pub_client.flush().await.unwrap();
        let got = receiver.await.unwrap();
        let took = start.elapsed();
        if got < n {
            println!("(plain NATS: the subscriber got {got} of {n}, slow consumer)");
        }
        took
    })
}

/// What a plain JetStream run (no mq code at all) does.
#[derive(Clone, Copy)]
struct Plain {
    /// Publishes in flight at once (async publish, acks awaited in order).
    window: usize,
    /// `File` (what surviving a restart needs) or `Memory`.
    storage: StorageType,
    /// How the one pull consumer per stream takes the messages (`None`:
    /// no consumer, the store rate alone).
    acks: Option<AckPolicy>,
    /// Streams side by side, each with its own connection, publisher and
    /// consumer; the messages are split between them.
    streams: usize,
}

impl Plain {
    const QUEUE_LIKE: Plain = Plain {
        window: 256,
        storage: StorageType::File,
        acks: Some(AckPolicy::Explicit),
        streams: 1,
    };

    fn describe(self) -> String {
        let storage = match self.storage {
            StorageType::File => "file",
            StorageType::Memory => "memory",
        };
        let consume = match self.acks {
            None => "nothing consumed".to_owned(),
            Some(AckPolicy::None) => {
                "batch pull (256), ack_none, Limits retention (no acks: no redelivery, not a queue)"
                    .to_owned()
            }
            Some(_) => "batch pull (256) + ack each".to_owned(),
        };
        let streams = match self.streams {
            1 => String::new(),
            k => format!(", {k} streams side by side"),
        };
        format!(
            "plain JetStream, {storage}: async publish (window {}) -> {consume}{streams}",
            self.window
        )
    }
}

/// Plain JetStream, no mq code: WorkQueue streams as mq's, published with
/// a window of publishes in flight and, if `p.acks`, consumed at the same
/// time by one pull consumer per stream fetching batches of 256.
fn plain_jetstream(server: &NatsServer, n: u64, size: usize, p: Plain) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("127.0.0.1:{}", server.port);
    rt.block_on(async {
        let per = n / p.streams as u64;
        let mut streams = Vec::new();
        for _ in 0..p.streams {
            streams.push(plain_stream(&addr, size, p).await);
        }
        let start = Instant::now();
        let runs: Vec<_> = streams
            .into_iter()
            .map(|(js, name, consumer)| {
                tokio::spawn(async move {
                    let getter = tokio::spawn(consume_all(consumer, per));
                    publish_windowed(&js, &format!("{name}.x"), per, size, p.window).await;
                    getter.await.unwrap();
                    (js, name)
                })
            })
            .collect();
        let mut done = Vec::new();
        for r in runs {
            done.push(r.await.unwrap());
        }
        let took = start.elapsed();
        for (js, name) in done {
            js.delete_stream(&name).await.unwrap();
        }
        took
    })
}

/// A stream (and its consumer, if any) on a connection of its own.
async fn plain_stream(
    addr: &str,
    size: usize,
    p: Plain,
) -> (jetstream::Context, String, Option<PullConsumer>) {
    let js = jetstream::new(async_nats::connect(addr).await.unwrap());
    let name = unique("plainjs").replace('-', "_");
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.x")],
            storage: p.storage,
            // WorkQueue as mq's streams, but JetStream allows it only with
            // explicit acks.
            retention: if p.acks == Some(AckPolicy::Explicit) {
                jetstream::stream::RetentionPolicy::WorkQueue
            } else {
                jetstream::stream::RetentionPolicy::Limits
            },
            max_message_size: i32::try_from(size + 256).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
    let consumer = match p.acks {
        None => None,
        Some(ack_policy) => Some(
            stream
                .create_consumer(jetstream::consumer::pull::Config {
                    durable_name: Some("c".into()),
                    ack_policy,
                    ..Default::default()
                })
                .await
                .unwrap(),
        ),
    };
    (js, name, consumer)
}

/// Takes `n` messages in batches of up to 256, acking each if the
/// consumer wants acks.
async fn consume_all(consumer: Option<PullConsumer>, n: u64) {
    let Some(consumer) = consumer else {
        return;
    };
    let explicit = consumer.cached_info().config.ack_policy != AckPolicy::None;
    let mut got = 0;
    while got < n {
        let mut b = consumer
            .batch()
            .max_messages(256)
            .expires(Duration::from_millis(100))
            .messages()
            .await
            .unwrap();
        while let Some(Ok(m)) = b.next().await {
            if explicit {
                m.ack().await.unwrap();
            }
            got += 1;
        }
    }
}

/// Publishes `n` messages of `size` with up to `window` acks outstanding.
async fn publish_windowed(
    js: &jetstream::Context,
    subject: &str,
    n: u64,
    size: usize,
    window: usize,
) {
    let payload = bytes::Bytes::from(vec![b'x'; size]);
    let mut pending = std::collections::VecDeque::with_capacity(window);
    for _ in 0..n {
        if pending.len() == window {
            let oldest: jetstream::context::PublishAckFuture = pending.pop_front().unwrap();
            oldest.await.unwrap();
        }
        pending.push_back(
            js.publish(subject.to_owned(), payload.clone())
                .await
                .unwrap(),
        );
    }
    for a in pending {
        a.await.unwrap();
    }
}

/// CPU time (user + system) a process has used so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces: utime is
    // the 14th field of the line, stime the 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// Runs `f`, returning its duration and the CPU time the server and this
/// process used meanwhile, as a share of the wall time (100 % = one core).
fn with_cpu(server: &NatsServer, f: impl FnOnce() -> Duration) -> (Duration, String) {
    let server_pid = server.pid().expect("the server runs");
    let (s0, c0) = (cpu_time(server_pid), cpu_time(std::process::id()));
    let took = f();
    let (s1, c1) = (cpu_time(server_pid), cpu_time(std::process::id()));
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / took.as_secs_f64();
    (
        took,
        format!(
            "server {:.0} %, client {:.0} %",
            pct(s1.saturating_sub(s0)),
            pct(c1.saturating_sub(c0))
        ),
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--bridge`: only the bridge and the plain NATS / JetStream rows.
    let bridge_only = std::env::args().any(|a| a == "--bridge");
    let scale = if quick { 10 } else { 1 };
    let server = NatsServer::start();
    println!(
        "nats-server {} on 127.0.0.1:{}, {} cores",
        support::server_binary().display(),
        server.port,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "\nremote queue (put: one ack wait per call, put_many: a window of 256; get: a pull + confirmed ack per call, get_many: one pull of up to {BATCH} + one confirmed ack):"
    );
    println!("| size | clients | put | get | put_many | get_many |\n|---|---|---|---|---|---|");
    let sizes: &[usize] = if bridge_only { &[] } else { &[64, 4096] };
    for &size in sizes {
        for clients in [1, 4] {
            let n = 20_000 / scale;
            let (p, g) = put_get(&server, size, clients, n, Calls::One);
            let nm = 200_000 / scale;
            let (pm, gm) = put_get(&server, size, clients, nm, Calls::Many);
            println!(
                "| {size} B | {clients} | {} | {} | {} | {} |",
                rate(n, p),
                rate(n, g),
                rate(nm, pm),
                rate(nm, gm)
            );
        }
    }
    let n = 200_000 / scale;
    println!(
        "\nbetween two queue directories through the server ({n} messages, 64 B), load average {}:",
        loadavg()
    );
    println!("| path | msg/s | CPU (100 % = one core) |\n|---|---|---|");
    let row = |what: &str, f: &dyn Fn() -> Duration| {
        let (took, cpu) = with_cpu(&server, f);
        println!("| {what} | {} | {cpu} |", rate(n, took));
    };
    for batch in [256, 1024] {
        row(
            &format!("local -> bridge -> JetStream -> bridge -> local, --batch {batch}"),
            &|| bridged(&server, n, 64, &BridgeOptions::default().batch(batch)),
        );
    }
    row(
        "plain core NATS publish -> subscribe (no JetStream)",
        &|| plain_nats(&server, n, 64),
    );
    let q = Plain::QUEUE_LIKE;
    let variants = [
        q,
        Plain { window: 1024, ..q },
        Plain { streams: 2, ..q },
        Plain {
            acks: Some(AckPolicy::None),
            ..q
        },
        Plain {
            storage: StorageType::Memory,
            ..q
        },
        Plain { acks: None, ..q },
        Plain {
            acks: None,
            window: 4096,
            ..q
        },
        Plain {
            acks: None,
            storage: StorageType::Memory,
            ..q
        },
    ];
    for p in variants {
        row(&p.describe(), &|| plain_jetstream(&server, n, 64, p));
    }
    println!("load average after: {}", loadavg());
    let n4 = 50_000 / scale;
    println!("\n4 KiB ({n4} messages):");
    let (b4, cpu) = with_cpu(&server, || {
        bridged(&server, n4, 4096, &bench_bridge_options())
    });
    println!("| bridge, --batch 256 | {} | {cpu} |", rate(n4, b4));
    let (plain4, cpu) = with_cpu(&server, || plain_nats(&server, n4, 4096));
    println!("| plain core NATS | {} | {cpu} |", rate(n4, plain4));
    let (js4, cpu) = with_cpu(&server, || {
        plain_jetstream(&server, n4, 4096, Plain::QUEUE_LIKE)
    });
    println!(
        "| {} | {} | {cpu} |",
        Plain::QUEUE_LIKE.describe(),
        rate(n4, js4)
    );
    let lat = bridge_latency(&server, 500 / scale as usize);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "\nbridge latency, one 64 B message at a time (put in A -> get in B): p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}
