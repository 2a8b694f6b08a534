//! The hot path alone: one process, one handle, `put` then `get_into` of a
//! 64-byte message, over and over, on a queue nobody else waits on. This is
//! the cost of a message when neither side has to sleep: no system call and
//! no allocation should happen inside the loop.
//!
//! ```sh
//! cargo run --release -p queue-core --example hot_path -- 1000000
//! # instructions per put+get pair: run under callgrind with two counts and
//! # divide the difference of the totals by the difference of the counts
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/hot_path 100000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/hot_path 200000
//! ```
//!
//! Arguments: `[pairs] [message size in bytes] [batch] [options]` (defaults
//! 1000000, 64, 1 and none). With a batch above 1 the loop is `put_many` of
//! `batch` messages then `get_many_into(batch)` (one reused [`Batch`]), and
//! `pairs` counts messages.
//!
//! `options` is a comma-separated list. `max-msg-size=N` makes the queue's
//! largest message `N` bytes instead of the message size (the batch loops
//! of a queue of messages of at most 64 bytes copy inline:
//! docs/performance.md, "Copies by AVX2 moves"). The rest measure delivery
//! control (docs/performance.md, "Delivery control"): `priorities=N` (messages are put at
//! level `put-level=K`, default 0: the getter looks at every level above
//! first), `max-deliveries=N`, `lease-timeout-ms=N`, and `lease` (take each
//! message with `get_lease` + `ack` instead of `get_into`).
//!
//! Two more measure what a poison message costs: `redeliver` takes each
//! message with `try_get_lease` + `release`, then again with `get_into` (a
//! redelivery), and `dead-letter` sets `max_deliveries(1)` and a dead-letter
//! queue, so the same second get moves the message there instead and the
//! loop takes it from the dead-letter queue. Their difference is the move.

use std::time::Instant;

use queue_core::{Batch, Queue};

fn main() {
    let mut args = std::env::args().skip(1);
    let pairs: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("pairs"));
    let size: usize = args.next().map_or(64, |a| a.parse().expect("size"));
    let batch: usize = args.next().map_or(1, |a| a.parse().expect("batch"));
    let options = args.next().unwrap_or_default();
    assert!((1..=1024).contains(&batch), "batch must be 1 to 1024");
    let dir = std::env::temp_dir().join(format!("mq-hot-path-{}", std::process::id()));
    let mut builder = Queue::builder("hot")
        .dir(&dir)
        .capacity(1024)
        .max_msg_size(size);
    let (mut level, mut lease, mut redeliver, mut dead_letter) = (0, false, false, false);
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = opt.split_once('=').unwrap_or((opt, "0"));
        let n: usize = value.parse().expect("option value");
        builder = match key {
            "max-msg-size" => builder.max_msg_size(n),
            "priorities" => builder.priorities(n),
            "max-deliveries" => builder.max_deliveries(n),
            "lease-timeout-ms" => builder.lease_timeout(std::time::Duration::from_millis(n as u64)),
            "put-level" => {
                level = n;
                builder
            }
            "lease" => {
                lease = true;
                builder
            }
            "redeliver" => {
                redeliver = true;
                builder
            }
            "dead-letter" => {
                dead_letter = true;
                builder.max_deliveries(1).dead_letter("hot.dead")
            }
            _ => panic!("unknown option {key:?}"),
        };
    }
    let q = builder.create().expect("create queue");
    let msg = vec![0xabu8; size];
    let mut buf = Vec::with_capacity(size);
    let many: Vec<&[u8]> = vec![&msg[..]; batch];
    let mut got = Batch::with_capacity(batch, batch * size);
    let dead = dead_letter.then(|| Queue::open_in(&dir, "hot.dead").expect("open dead letters"));
    let start = Instant::now();
    if let Some(dead) = &dead {
        for _ in 0..pairs {
            q.put(&msg).expect("put");
            q.try_get_lease().expect("lease").release();
            // The second delivery would exceed max_deliveries(1): it moves.
            assert!(q.try_get_into(&mut buf).is_err(), "the message moved");
            dead.try_get_into(&mut buf).expect("get the dead letter");
        }
    } else if redeliver {
        for _ in 0..pairs {
            q.put(&msg).expect("put");
            q.try_get_lease().expect("lease").release();
            q.try_get_into(&mut buf).expect("get the redelivery");
        }
    } else if batch == 1 && lease {
        for _ in 0..pairs {
            q.put_priority(&msg, level).expect("put");
            q.get_lease().expect("lease").ack().expect("ack");
        }
    } else if batch == 1 && level != 0 {
        for _ in 0..pairs {
            q.put_priority(&msg, level).expect("put");
            q.get_into(&mut buf).expect("get");
        }
    } else if batch == 1 {
        for _ in 0..pairs {
            q.put(&msg).expect("put");
            q.get_into(&mut buf).expect("get");
        }
    } else {
        for _ in 0..pairs / batch as u64 {
            q.put_many(&many).map_err(|(_, e)| e).expect("put_many");
            let n = q.get_many_into(&mut got, batch).expect("get_many_into");
            assert_eq!(n, batch);
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{pairs} put+get pairs of {size} B (batch {batch}) in {:.3} s: {:.1} ns per pair",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / pairs as f64
    );
    drop((q, dead));
    Queue::remove_in(&dir, "hot").expect("remove queue");
    if dead_letter {
        Queue::remove_in(&dir, "hot.dead").expect("remove dead-letter queue");
    }
    let _ = std::fs::remove_dir(&dir);
}
