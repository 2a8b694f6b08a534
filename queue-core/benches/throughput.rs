//! Throughput of one producer process feeding one consumer process.
//!
//! ```sh
//! cargo bench -p queue-core --bench throughput
//! ```
//!
//! The bench binary re-runs itself as the consumer (`MQ_BENCH_CONSUMER` set):
//! it takes messages until one is marked last, then answers on a reply queue.
//! The time measured is from the first put to that answer, so it covers the
//! whole cross-process hand-off, not just the producer's side.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use queue_core::{GetError, Queue};

const CHILD_ENV: &str = "MQ_BENCH_CONSUMER";

fn consumer_main(spec: &str) {
    let (dir, name) = spec.split_once(':').expect("dir:name");
    let q = Queue::open_in(dir, name).expect("open data queue");
    let reply = Queue::open_in(dir, &format!("{name}-reply")).expect("open reply queue");
    let mut buf = Vec::with_capacity(q.max_msg_size());
    loop {
        match q.get_into(&mut buf) {
            Ok(_) if buf.first() == Some(&1) => reply.put(b"done").expect("reply"),
            Ok(_) => {}
            Err(GetError::Closed) => return,
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

struct Pair {
    dir: PathBuf,
    name: String,
    data: Queue,
    reply: Queue,
    child: Child,
}

impl Pair {
    fn new(size: usize) -> Pair {
        let dir = std::env::temp_dir().join(format!("mq-bench-{}", std::process::id()));
        let name = format!("tp{size}");
        let data = Queue::builder(&name)
            .dir(&dir)
            .capacity(1024)
            .max_msg_size(size)
            .create()
            .expect("create bench queue");
        let reply = Queue::builder(&format!("{name}-reply"))
            .dir(&dir)
            .capacity(4)
            .max_msg_size(8)
            .create()
            .expect("create reply queue");
        let child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{}:{name}", dir.display()))
            .spawn()
            .expect("spawn consumer");
        Pair {
            dir,
            name,
            data,
            reply,
            child,
        }
    }

    fn run(&self, msg: &mut [u8], iters: u64) -> Duration {
        let start = Instant::now();
        msg[0] = 0;
        for _ in 1..iters {
            self.data.put(msg).unwrap();
        }
        msg[0] = 1;
        self.data.put(msg).unwrap();
        self.reply.get().unwrap();
        start.elapsed()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.data.close();
        let _ = self.child.wait();
        let _ = Queue::remove_in(&self.dir, &self.name);
        let _ = Queue::remove_in(&self.dir, &format!("{}-reply", self.name));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn one_to_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("1 producer -> 1 consumer process");
    for size in [64usize, 4096] {
        let pair = Pair::new(size);
        let mut msg = vec![0xabu8; size];
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("put+get", size), &size, |b, _| {
            b.iter_custom(|iters| pair.run(&mut msg, iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = one_to_one
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        consumer_main(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
