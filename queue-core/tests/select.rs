//! `Select` within one process: readiness, timeouts, wake-ups by put and
//! close from another thread, fairness, and more queues than one
//! `futex_waitv` takes. (Across processes: the `tests` package.)

use std::time::{Duration, Instant};

use queue_core::{GetError, Queue, Select};

mod waiting;
use waiting::{Dir, watchdog};

/// `n` queues `q0..` of 4 slots.
fn queues(d: &Dir, n: usize) -> Vec<Queue> {
    (0..n).map(|i| d.queue(&format!("q{i}"), 4)).collect()
}

#[test]
fn ready_names_the_queue_with_a_message_and_takes_nothing() {
    let d = Dir::new("select");
    let qs = queues(&d, 3);
    let mut sel = Select::new();
    let idx: Vec<usize> = qs.iter().map(|q| sel.add(q)).collect();
    assert_eq!(idx, vec![0, 1, 2]);
    assert_eq!(sel.try_ready(), None);
    qs[2].put(b"x").unwrap();
    assert_eq!(sel.try_ready(), Some(2));
    assert_eq!(sel.ready(), 2);
    assert_eq!(qs[2].len(), 1, "ready takes nothing");
    assert_eq!(qs[2].try_get().unwrap(), b"x");
    assert_eq!(sel.try_ready(), None);
    assert!(sel.remove(1));
    assert!(!sel.remove(1));
    assert_eq!(sel.len(), 2);
}

/// A message on a higher priority level is as ready as one on level 0, and
/// a closed queue with priorities is drained only when every level is.
#[test]
fn ready_sees_every_priority_level() {
    let d = Dir::new("select-levels");
    let q = Queue::builder("levels")
        .dir(d.path())
        .capacity(4)
        .max_msg_size(64)
        .priorities(3)
        .create()
        .unwrap();
    let mut sel = Select::new();
    sel.add(&q);
    assert_eq!(sel.try_ready(), None);
    q.put_priority(b"urgent", 2).unwrap();
    assert_eq!(sel.try_ready(), Some(0));
    q.close().unwrap();
    // Closed, but level 2 still holds a message: ready, and it is taken.
    assert_eq!(sel.try_ready(), Some(0));
    assert_eq!(q.try_get().unwrap(), b"urgent");
    // Now closed and drained on every level: ready says so (a get answers Closed).
    assert_eq!(sel.try_ready(), Some(0));
    assert_eq!(q.try_get(), Err(GetError::Closed));
}

#[test]
fn ready_timeout_waits_at_least_the_timeout() {
    let d = Dir::new("select");
    let qs = queues(&d, 2);
    let mut sel = Select::new();
    for q in &qs {
        sel.add(q);
    }
    let started = Instant::now();
    assert_eq!(sel.ready_timeout(Duration::from_millis(150)), None);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn a_put_or_a_close_from_another_thread_wakes_ready() {
    watchdog(60);
    let d = Dir::new("select");
    let qs = queues(&d, 5);
    std::thread::scope(|s| {
        let mut sel = Select::new();
        for q in &qs {
            sel.add(q);
        }
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            qs[3].put(b"late").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            qs[1].close().unwrap();
        });
        assert_eq!(sel.ready(), 3);
        assert_eq!(qs[3].try_get().unwrap(), b"late");
        assert_eq!(sel.ready(), 1);
        assert_eq!(qs[1].try_get(), Err(GetError::Closed));
    });
    // Every registration was counted out again.
    for q in &qs {
        assert_eq!(q.stats().consumers_waiting, 0);
    }
}

#[test]
fn a_busy_queue_does_not_starve_the_others() {
    let d = Dir::new("select");
    let qs = queues(&d, 3);
    let mut sel = Select::new();
    for q in &qs {
        sel.add(q);
    }
    qs[0].put(b"a").unwrap();
    qs[2].put(b"c").unwrap();
    let mut seen = [false; 3];
    for _ in 0..4 {
        seen[sel.ready()] = true;
    }
    assert!(seen[0] && seen[2] && !seen[1]);
}

#[test]
fn more_queues_than_one_futex_waitv_takes_still_wake_ready() {
    watchdog(60);
    let d = Dir::new("select");
    let qs = queues(&d, 150);
    std::thread::scope(|s| {
        let mut sel = Select::new();
        for q in &qs {
            sel.add(q);
        }
        for &i in &[149usize, 5, 130] {
            let q = &qs[i];
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                q.put(b"m").unwrap();
            });
            assert_eq!(sel.ready(), i);
            assert_eq!(qs[i].try_get().unwrap(), b"m");
        }
    });
}

#[test]
fn a_woken_selector_passes_the_wake_up_on_to_a_getter() {
    // One getter and one selector asleep on the same queue; each message
    // wakes one of them. If the selector is woken and its caller takes
    // nothing, the getter must still get the message promptly.
    watchdog(60);
    let d = Dir::new("select");
    let qs = queues(&d, 1);
    std::thread::scope(|s| {
        let getter = s.spawn(|| qs[0].get_timeout(Duration::from_secs(30)));
        let selector = s.spawn(|| {
            let mut sel = Select::new();
            sel.add(&qs[0]);
            sel.ready_timeout(Duration::from_secs(30))
        });
        std::thread::sleep(Duration::from_millis(300));
        qs[0].put(b"one").unwrap();
        assert_eq!(getter.join().unwrap().unwrap(), b"one");
        // The selector may have seen "one" or not; a second message wakes
        // it for sure.
        qs[0].put(b"two").unwrap();
        assert_eq!(selector.join().unwrap(), Some(0));
        assert_eq!(qs[0].try_get().unwrap(), b"two");
    });
}
