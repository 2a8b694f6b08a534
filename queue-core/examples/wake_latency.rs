//! Wake-up latency of a sleeping consumer: how long after a `put` a getter
//! that was asleep in the kernel has the message - a plain `get`, a
//! `Select` over 1, 16 and 64 queues (the message goes to the last one), and
//! a task awaiting `get_async` (cargo feature `async`, on
//! `futures::executor::block_on`).
//!
//! ```sh
//! cargo run --release -p queue-core --features async --example wake_latency -- 300
//! ```
//!
//! The producer is a thread of the same process (the futex is shared all
//! the same); it waits 2 ms before each put, so the consumer has gone past
//! its polling phase and sleeps. Prints the median and the 90th percentile
//! in microseconds for each kind of waiter.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use queue_core::{Queue, Select};

/// How the consumer waits.
#[derive(Clone, Copy)]
enum Waiter {
    Get,
    Select(usize),
    #[cfg(feature = "async")]
    Async,
}

fn queues(dir: &PathBuf, n: usize) -> Vec<Queue> {
    (0..n)
        .map(|i| {
            Queue::builder(&format!("w{i}"))
                .dir(dir)
                .capacity(16)
                .max_msg_size(16)
                .create()
                .expect("create queue")
        })
        .collect()
}

/// Runs `rounds` wake-ups; returns the latencies in microseconds, sorted.
fn measure(dir: &PathBuf, waiter: Waiter, rounds: usize) -> Vec<f64> {
    let n = match waiter {
        Waiter::Select(n) => n,
        _ => 1,
    };
    let qs = queues(dir, n);
    let base = Instant::now();
    let mut lat = Vec::with_capacity(rounds);
    std::thread::scope(|s| {
        let target = &qs[n - 1];
        s.spawn(move || {
            for _ in 0..rounds {
                std::thread::sleep(Duration::from_millis(2));
                let t = base.elapsed().as_nanos() as u64;
                target.put(&t.to_le_bytes()).expect("put");
            }
        });
        let mut sel = Select::new();
        for q in &qs {
            sel.add(q);
        }
        for _ in 0..rounds {
            let msg = match waiter {
                Waiter::Get => target.get().expect("get"),
                Waiter::Select(_) => loop {
                    let i = sel.ready();
                    if let Ok(m) = qs[i].try_get() {
                        break m;
                    }
                },
                #[cfg(feature = "async")]
                Waiter::Async => futures::executor::block_on(target.get_async()).expect("get"),
            };
            let now = base.elapsed().as_nanos() as u64;
            let sent = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
            lat.push(now.saturating_sub(sent) as f64 / 1000.0);
        }
    });
    for q in &qs {
        Queue::remove_in(dir, q.name()).expect("remove");
    }
    lat.sort_by(f64::total_cmp);
    lat
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(300, |a| a.parse().expect("rounds"));
    let dir = std::env::temp_dir().join(format!("mq-wake-latency-{}", std::process::id()));
    #[cfg_attr(not(feature = "async"), allow(unused_mut))]
    let mut kinds = vec![
        ("get", Waiter::Get),
        ("select 1", Waiter::Select(1)),
        ("select 16", Waiter::Select(16)),
        ("select 64", Waiter::Select(64)),
    ];
    #[cfg(feature = "async")]
    kinds.push(("get_async", Waiter::Async));
    println!("waiter      median us   p90 us   ({rounds} wake-ups each)");
    for (name, w) in kinds {
        let lat = measure(&dir, w, rounds);
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
        println!("{name:<10} {:>9.1} {:>8.1}", pct(0.5), pct(0.9));
    }
    let _ = std::fs::remove_dir(&dir);
}
