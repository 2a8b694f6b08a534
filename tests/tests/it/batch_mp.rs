//! `kill -9` chaos with batches on both sides: producers that `put_many`
//! (16 messages a call) killed at random moments, consumers that
//! `get_many_into` (up to 8) or lease one by one. Every committed message
//! arrives exactly once (batch gets: at most the batch a killed consumer
//! had handed over is lost; leases: nothing is lost, and what arrived of
//! each producer is a gap-free prefix), and nothing torn ever arrives.

use crate::core_mp::{Delivery, chaos_with};

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
