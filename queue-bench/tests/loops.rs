//! The producer and consumer loops against a real queue (in a temporary
//! directory, removed at the end): single and batched, with several
//! producers and consumers, stopping at a count or at close, for messages
//! with and without room for a stamp.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use queue_bench::stamp::{read_stamp, stamp};
use queue_bench::{Mode, Report, Tally, consume, produce};
use queue_core::Queue;

/// A private queue directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mq-bench-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn queue(&self, size: usize, capacity: usize) -> Queue {
        Queue::builder("q")
            .dir(&self.0)
            .capacity(capacity)
            .max_msg_size(size.max(1))
            .create()
            .unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `producers` producers putting `each` messages, `consumers` consumers
/// taking until close; returns the producers' and the consumers' tallies.
fn run(size: usize, producers: u64, consumers: usize, each: u64, batch: usize) -> (Tally, Tally) {
    let d = Dir::new();
    let q = d.queue(size, 16);
    std::thread::scope(|s| {
        let put: Vec<_> = (0..producers)
            .map(|id| {
                let dir = &d.0;
                s.spawn(move || {
                    let p = Queue::open_in(dir, "q").unwrap();
                    produce(&p, id, size, Mode::batched(batch).limit(each)).unwrap()
                })
            })
            .collect();
        let got: Vec<_> = (0..consumers)
            .map(|_| {
                let dir = &d.0;
                s.spawn(move || {
                    let c = Queue::open_in(dir, "q").unwrap();
                    consume(&c, Mode::batched(batch)).unwrap()
                })
            })
            .collect();
        let mut sent = Tally::default();
        put.into_iter().for_each(|h| sent.merge(h.join().unwrap()));
        q.close().unwrap();
        let mut taken = Tally::default();
        got.into_iter().for_each(|h| taken.merge(h.join().unwrap()));
        (sent, taken)
    })
}

fn expected_sum(producers: u64, each: u64) -> u64 {
    (0..producers)
        .flat_map(|id| (0..each).map(move |n| stamp(id, n)))
        .fold(0u64, |a, b| a.wrapping_add(b))
}

#[test]
fn single_and_batched_deliver_every_message_once() {
    for batch in [1, 2, 7, 64] {
        for size in [8, 9, 64, 1000] {
            let (sent, got) = run(size, 3, 2, 500, batch);
            assert_eq!(sent.count, 1500, "batch {batch}, size {size}");
            assert_eq!(sent.sum, expected_sum(3, 500), "batch {batch}, size {size}");
            assert_eq!(got, sent, "batch {batch}, size {size}");
        }
    }
}

#[test]
fn short_messages_are_counted_without_a_checksum() {
    for batch in [1, 16] {
        let (sent, got) = run(3, 2, 1, 200, batch);
        assert_eq!(sent, Tally { count: 400, sum: 0 });
        assert_eq!(got, sent);
        let (sent, got) = run(0, 1, 1, 50, batch);
        assert_eq!(sent, Tally { count: 50, sum: 0 });
        assert_eq!(got, sent);
    }
}

#[test]
fn batched_messages_carry_their_own_stamps_in_order() {
    let d = Dir::new();
    let q = d.queue(32, 64);
    let sent = produce(&q, 5, 32, Mode::batched(8).limit(20)).unwrap();
    assert_eq!(sent.count, 20);
    for n in 0..20 {
        let msg = q.try_get().unwrap();
        assert_eq!(msg.len(), 32);
        assert_eq!(read_stamp(&msg), Some(stamp(5, n)));
    }
}

#[test]
fn loops_stop_at_their_count_or_at_close() {
    let d = Dir::new();
    let q = d.queue(64, 64);
    for batch in [1, 10] {
        let sent = produce(&q, 0, 64, Mode::batched(batch).limit(25)).unwrap();
        assert_eq!(sent.count, 25);
        let got = consume(&q, Mode::batched(batch).limit(20)).unwrap();
        assert_eq!(got.count, 20);
        let rest = consume(&q, Mode::batched(batch).limit(5)).unwrap();
        let mut all = got;
        all.merge(rest);
        assert_eq!(all, sent);
        assert_eq!(q.stats().len, 0);
    }
    q.close().unwrap();
    // A closed queue stops both loops at once, without an error.
    for batch in [1, 10] {
        assert_eq!(
            produce(&q, 1, 64, Mode::batched(batch)).unwrap(),
            Tally::default()
        );
        assert_eq!(consume(&q, Mode::batched(batch)).unwrap(), Tally::default());
    }
}

#[test]
fn a_producer_cut_off_by_close_reports_what_it_put() {
    // Capacity 16: a producer without a count fills the queue and blocks;
    // closing the queue ends it with exactly the 16 messages it put.
    for batch in [1, 5] {
        let d = Dir::new();
        let q = d.queue(64, 16);
        let sent = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let p = Queue::open_in(&d.0, "q").unwrap();
                produce(&p, 2, 64, Mode::batched(batch)).unwrap()
            });
            // Watchdog: close anyway after a minute, so a failure cannot hang.
            let deadline = Instant::now() + Duration::from_secs(60);
            while q.stats().len < 16 && Instant::now() < deadline {
                std::thread::yield_now();
            }
            q.close().unwrap();
            h.join().unwrap()
        });
        assert_eq!(sent.count, 16, "batch {batch}");
        let got = consume(&q, Mode::batched(batch)).unwrap();
        assert_eq!(got, sent, "batch {batch}");
        assert_eq!(
            Report::sent(sent).to_string().parse(),
            Ok(Report::sent(got))
        );
    }
}
