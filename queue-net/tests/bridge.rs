//! `queue_net::bridge` between two queue directories through one server:
//! everything delivered, in order, and close propagated. (`kill -9` of real
//! `mq bridge` processes is queue-cli's `tests/it/bridge_chaos.rs`.)

mod support;

use std::time::Duration;

use queue_core::Queue;
use queue_net::{AnyQueue, BridgeOptions, CreateOptions, GetError, RemoteQueue, bridge};
use support::{NatsServer, Tally, TempDir, Watchdog, numbered, unique};

/// Sets up A/src -> remote -> B/dst; returns the two local queues' dirs.
struct TwoMachines {
    /// Kept running for the test.
    _server: NatsServer,
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
            _server: server,
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
            support::tally_until_closed(&q, n)
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
