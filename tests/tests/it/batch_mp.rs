//! `kill -9` chaos with batches on both sides: producers that `put_many`
//! (16 messages a call, small or large) killed at random moments, consumers that
//! `get_many_into` (up to 8) or lease one by one. Every committed message
//! arrives exactly once (batch gets: at most the batch a killed consumer
//! had handed over is lost; leases: nothing is lost, and what arrived of
//! each producer is a gap-free prefix), and nothing torn ever arrives.

use std::time::Duration;

use mq_tests::{Ledger, TestDir, Watchdog};
use queue_core::{Queue, SlotView};

use crate::core_mp::{Delivery, assert_clean, chaos_with, dir_str, spawn_to, wait};

const PUT_BATCH: u64 = 16;

#[test]
fn kill9_chaos_with_put_many_and_get_many_into() {
    let delivery = Delivery {
        put_batch: PUT_BATCH,
        ..Default::default()
    };
    chaos_with("batch", 100, "chaos-put-many", delivery);
}

#[test]
fn kill9_chaos_with_put_many_and_leases_commits_prefixes() {
    let delivery = Delivery {
        put_batch: PUT_BATCH,
        ..Default::default()
    };
    chaos_with("lease", 100, "chaos-put-many-lease", delivery);
}

/// Both of the above with messages of 40-120 KiB: `put_many` publishes
/// runs of at most 256 KiB and a get of many stops there (`BATCH_BYTES`),
/// so runs end early on both sides while processes are killed.
#[test]
fn kill9_chaos_with_large_batches() {
    let delivery = Delivery {
        put_batch: PUT_BATCH,
        large: true,
        ..Default::default()
    };
    chaos_with("batch", 100, "chaos-large", delivery);
    chaos_with("lease", 100, "chaos-large-lease", delivery);
}

/// Leases dropped in one process put messages back while batch getters in
/// two others take them: a batch then often starts with a redelivered
/// message (its own delivery generation) followed by first deliveries.
/// Nobody is killed, so every message arrives exactly once and nothing
/// stays claimed. (The run loop before spans handed a whole run over with
/// its first slot's generation and left the second message claimed by a
/// live getter.)
#[test]
fn dropped_leases_and_batch_gets_deliver_everything_once() {
    let _w = Watchdog::new("dropped leases and batches", Duration::from_secs(120));
    let d = TestDir::new("lease-drop-batch");
    let dir = dir_str(&d).to_owned();
    let q = Queue::builder("mix")
        .dir(d.path())
        .capacity(64)
        .max_msg_size(64)
        .create()
        .unwrap();
    let per_producer = 20_000u64;
    let producers: Vec<_> = (0..2u32)
        .map(|id| {
            let args = [
                "produce-many",
                &dir,
                "mix",
                &id.to_string(),
                &per_producer.to_string(),
                "40",
                &PUT_BATCH.to_string(),
            ];
            spawn_to(&args, &d.path().join(format!("p{id}.out")))
        })
        .collect();
    let consumers: Vec<_> = ["lease-drop", "batch", "batch"]
        .iter()
        .enumerate()
        .map(|(id, mode)| {
            let out = d.path().join(format!("c{id}.out"));
            spawn_to(&["consume", &dir, "mix", mode], &out)
        })
        .collect();
    for p in producers {
        let status = wait(p);
        assert!(status.success(), "a producer failed: {status}");
    }
    q.close().unwrap();
    for c in consumers {
        let status = wait(c);
        assert!(status.success(), "a consumer failed: {status}");
    }
    let ledger = Ledger::read(d.path(), 2, 3);
    ledger.assert_nothing_invented(PUT_BATCH, "");
    assert_eq!(ledger.committed.len() as u64, 2 * per_producer);
    assert_eq!(ledger.missing(), 0, "messages lost or left claimed");
    assert_eq!(ledger.duplicates(), 0, "a message was delivered twice");
    let st = q.stats();
    assert!(st.redelivered > 0, "no lease was dropped: {st:?}");
    assert!(q.slots().iter().all(|s| *s == SlotView::Empty));
    assert_eq!((st.len, st.head), (0, st.tail));
    drop(q);
    assert_clean(&d, "mix");
}
