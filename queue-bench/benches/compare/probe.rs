//! The practical limit of the machine for a queue of small messages: a
//! minimal single-producer single-consumer ring between two threads (a
//! Lamport queue with cached indices), no crash safety, no blocking, no
//! names. Each slot is a whole number of 64-byte cache lines; a message is
//! copied in and out, as by this queue. The producer publishes its index
//! once per batch of `batch` messages, the consumer its index once per batch
//! it takes (up to `batch` messages): with batches of 1 that is one index
//! store per message, with 64 the cost of the index's cache line is spread
//! over 64 messages. Rows `probe1`, `probe16`, `probe64`.

use std::cell::UnsafeCell;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

use crossbeam_utils::{Backoff, CachePadded};

use crate::capacity_for;
use crate::pin::PinSelf;

/// The ring: `cap` slots of `stride` bytes, and the two indices on their own
/// cache lines (positions, not wrapped: slot `i % cap`).
struct Spsc {
    cap: usize,
    stride: usize,
    data: Box<[UnsafeCell<u8>]>,
    /// Next position to write; written by the producer only.
    tail: CachePadded<AtomicUsize>,
    /// Next position to read; written by the consumer only.
    head: CachePadded<AtomicUsize>,
}

// SAFETY: the producer writes only slots between `head` and `cap` ahead of
// it, which the consumer does not read until `tail` (Release/Acquire) says
// they are written; the consumer reads only slots before `tail`, which the
// producer does not overwrite until `head` (Release/Acquire) says they are
// read. So no byte is accessed by both threads at once.
unsafe impl Sync for Spsc {}

impl Spsc {
    fn new(cap: usize, size: usize) -> Spsc {
        let stride = size.max(1).next_multiple_of(64);
        Spsc {
            cap,
            stride,
            data: (0..cap * stride).map(|_| UnsafeCell::new(0)).collect(),
            tail: CachePadded::new(AtomicUsize::new(0)),
            head: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    fn slot(&self, pos: usize) -> *mut u8 {
        let offset = (pos % self.cap) * self.stride;
        assert!(offset + self.stride <= self.data.len());
        // SAFETY: in bounds (checked above); the pointer comes from the
        // whole slice, so it covers the slot's `stride` bytes.
        UnsafeCell::raw_get(unsafe { self.data.as_ptr().add(offset) })
    }

    /// Writes `n` copies of `msg`, publishing the tail once per `batch`.
    fn produce(&self, msg: &[u8], n: u64, batch: usize) {
        let (mut tail, mut head) = (0usize, 0usize);
        let mut left = n as usize;
        while left > 0 {
            let want = batch.min(left);
            let backoff = Backoff::new();
            while tail + want - head > self.cap {
                head = self.head.load(Acquire);
                if tail + want - head > self.cap {
                    backoff.snooze();
                }
            }
            for pos in tail..tail + want {
                // SAFETY: `pos` is free (`pos - head < cap`, see above) and
                // the slot holds `stride >= msg.len()` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        std::hint::black_box(msg).as_ptr(),
                        self.slot(pos),
                        msg.len(),
                    )
                };
            }
            tail += want;
            left -= want;
            self.tail.store(tail, Release);
        }
    }

    /// Reads `n` messages of `len` bytes into `buf`, publishing the head
    /// once per batch of up to `batch`.
    fn consume(&self, buf: &mut [u8], n: u64, batch: usize) {
        let (mut head, mut tail) = (0usize, 0usize);
        let n = n as usize;
        while head < n {
            let backoff = Backoff::new();
            while head == tail {
                tail = self.tail.load(Acquire);
                if head == tail {
                    backoff.snooze();
                }
            }
            let take = batch.min(tail - head);
            for pos in head..head + take {
                // SAFETY: `pos < tail`: written and published by the
                // producer, which leaves it alone until `head` passes it.
                unsafe {
                    std::ptr::copy_nonoverlapping(self.slot(pos), buf.as_mut_ptr(), buf.len())
                };
                std::hint::black_box(&mut *buf);
            }
            head += take;
            self.head.store(head, Release);
        }
    }
}

/// Time for a producer thread to move `n` messages of `size` bytes to a
/// consumer thread through the probe ring in batches of `batch`.
pub fn tp_probe(size: usize, batch: usize, n: u64) -> Duration {
    let ring = Spsc::new(capacity_for(size), size);
    let barrier = Barrier::new(3);
    let msg = vec![0xabu8; size];
    std::thread::scope(|sc| {
        let (ring, barrier, msg) = (&ring, &barrier, &msg);
        sc.spawn(move || {
            let _pin = PinSelf::new(false);
            barrier.wait();
            ring.produce(msg, n, batch);
        });
        let consumer = sc.spawn(move || {
            let _pin = PinSelf::new(true);
            let mut buf = vec![0u8; size];
            barrier.wait();
            ring.consume(&mut buf, n, batch);
            buf[0]
        });
        barrier.wait();
        let start = Instant::now();
        let last = consumer.join().unwrap();
        let elapsed = start.elapsed();
        assert!(size == 0 || last == 0xab, "probe consumer saw a wrong byte");
        elapsed
    })
}
