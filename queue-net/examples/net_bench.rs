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
//! `cargo run --release -p queue-net --example net_bench [-- --quick] [--bridge]`
//! (`--bridge`: skip the put/get rows; `MQ_BENCH_BATCH=N`: the bridges' `--batch`)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

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
fn bridged(server: &NatsServer, n: u64, size: usize) -> Duration {
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
    let opts = bench_bridge_options();
    std::thread::scope(|s| {
        let (src, dst) = (
            AnyQueue::from(Queue::open_in(&a.0, "src").unwrap()),
            AnyQueue::open(&url).unwrap(),
        );
        let o = &opts;
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

/// Plain JetStream, no queue semantics: a file stream, publishes async
/// with a window of 256 in flight (as `put_many` and the bridge), and, if
/// `consume`, one pull consumer fetching batches of 256 at the same time,
/// acking each (plain acks). Without a consumer it is JetStream's store rate.
fn plain_jetstream(server: &NatsServer, n: u64, size: usize, consume: bool) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = format!("127.0.0.1:{}", server.port);
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&addr).await.unwrap());
        let name = unique("plainjs").replace('-', "_");
        let stream = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.x")],
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("c".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let payload = bytes::Bytes::from(vec![b'x'; size]);
        let start = Instant::now();
        let getter = tokio::spawn(async move {
            let mut got = 0;
            if !consume {
                return;
            }
            while got < n {
                let mut b = consumer
                    .batch()
                    .max_messages(256)
                    .expires(Duration::from_millis(100))
                    .messages()
                    .await
                    .unwrap();
                while let Some(Ok(m)) = b.next().await {
                    m.ack().await.unwrap();
                    got += 1;
                }
            }
        });
        let subject = format!("{name}.x");
        let mut window = std::collections::VecDeque::with_capacity(256);
        for _ in 0..n {
            if window.len() == 256 {
                let oldest: async_nats::jetstream::context::PublishAckFuture =
                    window.pop_front().unwrap();
                oldest.await.unwrap();
            }
            window.push_back(js.publish(subject.clone(), payload.clone()).await.unwrap());
        }
        for a in window {
            a.await.unwrap();
        }
        getter.await.unwrap();
        let took = start.elapsed();
        js.delete_stream(&name).await.unwrap();
        took
    })
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
    println!("\nbetween two queue directories through the server ({n} messages, 64 B):");
    let plain = plain_nats(&server, n, 64);
    println!("| path | msg/s |\n|---|---|");
    let b = bridged(&server, n, 64);
    println!(
        "| local -> bridge -> NATS -> bridge -> local | {} |",
        rate(n, b)
    );
    println!(
        "| plain NATS publish -> subscribe (core, no JetStream) | {} |",
        rate(n, plain)
    );
    let pjs = plain_jetstream(&server, n, 64, true);
    println!(
        "| plain JetStream async publish (window 256) -> batch pull + ack (no queue, no bridge) | {} |",
        rate(n, pjs)
    );
    let store = plain_jetstream(&server, n, 64, false);
    println!(
        "| plain JetStream async publish only (window 256, nothing consumed) | {} |",
        rate(n, store)
    );
    let n4 = 50_000 / scale;
    let b4 = bridged(&server, n4, 4096);
    let plain4 = plain_nats(&server, n4, 4096);
    println!("| same, 4 KiB ({n4} messages) | {} |", rate(n4, b4));
    println!("| plain NATS, 4 KiB | {} |", rate(n4, plain4));
    let lat = bridge_latency(&server, 500 / scale as usize);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "\nbridge latency, one 64 B message at a time (put in A -> get in B): p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}
