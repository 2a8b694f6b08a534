//! The bandwidth ceiling for large messages: one thread copying each message
//! into the next slot of a ring as large as this queue's.

use std::time::{Duration, Instant};

use crate::capacity_for;

/// One thread copying `n` messages into successive slots of a ring as large
/// as this queue's.
pub fn tp_memcpy(size: usize, n: u64) -> Duration {
    let cap = capacity_for(size);
    let src = vec![0xabu8; size];
    let mut ring = vec![0u8; cap * size];
    ring.iter_mut().for_each(|b| *b = 1); // fault the pages in
    let start = Instant::now();
    for i in 0..n as usize {
        let slot = i % cap;
        ring[slot * size..(slot + 1) * size].copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&ring[slot * size]);
    }
    start.elapsed()
}
