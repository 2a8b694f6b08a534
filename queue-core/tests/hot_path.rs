//! The hot path allocates nothing: once the caller's buffer (or `Batch`)
//! has grown, `put` + `get_into` and `put_many` + `get_many_into` with
//! nobody waiting make no allocation at all (docs/performance.md, "The hot
//! path"; the instruction counts there come from `examples/hot_path.rs`).

#[path = "support/tracking_alloc.rs"]
mod tracking_alloc;

use queue_core::{Batch, Queue};
use tracking_alloc::allocations;

#[test]
fn put_and_get_allocate_nothing_once_the_buffers_have_grown() {
    let dir = std::env::temp_dir().join(format!("mq-hot-path-{}", std::process::id()));
    let q = Queue::builder("hot")
        .dir(&dir)
        .capacity(64)
        .create()
        .unwrap();
    let msg = [7u8; 64];
    let msgs = [&msg[..]; 32];
    let mut buf = Vec::new();
    let mut batch = Batch::new();
    // Warm up: the buffers grow to their working size here.
    q.put(&msg).unwrap();
    q.get_into(&mut buf).unwrap();
    q.put_many(&msgs).unwrap();
    q.get_many_into(&mut batch, 32).unwrap();

    let (moved, allocated) = allocations(|| {
        let mut moved = 0;
        for _ in 0..10_000 {
            q.put(&msg).unwrap();
            moved += usize::from(q.get_into(&mut buf).unwrap() == msg.len());
        }
        for _ in 0..300 {
            q.put_many(&msgs).unwrap();
            moved += q.get_many_into(&mut batch, 32).unwrap();
        }
        moved
    });
    assert_eq!(moved, 10_000 + 300 * 32);
    assert_eq!(allocated, 0, "allocations on the hot path");

    drop(q);
    Queue::remove_in(&dir, "hot").unwrap();
    std::fs::remove_dir(&dir).unwrap();
}
