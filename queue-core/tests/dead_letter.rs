//! Dead-letter queues within one process: the move, what the dead letter
//! records, the builder's checks, a full dead-letter queue (the kill -9
//! tests are in the workspace's `tests` package, `dead_letter_mp.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use queue_core::{GetError, OpenError, Queue};

/// A private queue directory, removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        Dir(std::env::temp_dir().join(format!(
            "mq-dead-letter-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Delivers the next message `n` times, releasing it each time.
fn deliver_and_release(q: &Queue, n: usize) {
    for _ in 0..n {
        q.try_get_lease().unwrap().release();
    }
}

#[test]
fn a_poison_message_moves_with_its_origin_and_level() {
    let dir = Dir::new();
    let q = Queue::builder("jobs")
        .dir(&dir.0)
        .capacity(4)
        .max_msg_size(64)
        .priorities(3)
        .max_deliveries(2)
        .dead_letter("jobs.dead")
        .create()
        .unwrap();
    // Created with the same geometry, holding the dead letters of "jobs".
    let dead = Queue::open_in(&dir.0, "jobs.dead").unwrap();
    let ds = dead.stats();
    assert_eq!((ds.capacity, ds.max_msg_size, ds.priorities), (4, 64, 3));
    assert_eq!(
        (ds.max_deliveries, ds.dead_letters_of.as_deref()),
        (None, Some("jobs"))
    );
    assert_eq!(q.stats().dead_letter.as_deref(), Some("jobs.dead"));
    assert_eq!(q.dead_letter(), Some("jobs.dead"));

    q.put_priority(b"poison", 2).unwrap();
    q.put(b"fine").unwrap();
    deliver_and_release(&q, 2);
    // The third delivery moves it; the next message flows on.
    assert_eq!(q.try_get().unwrap(), b"fine");
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    let s = q.stats();
    assert_eq!((s.dead_lettered, s.dropped_poison, s.len), (1, 0, 0));

    dead.put(b"direct").unwrap(); // level 0: served after the dead letter
    let lease = dead.try_get_lease().unwrap();
    assert_eq!(&*lease, b"poison");
    let origin = lease.dead_letter().expect("recorded");
    assert_eq!((origin.queue.as_str(), origin.deliveries), ("jobs", 2));
    assert_eq!(lease.deliveries(), 1);
    lease.ack().unwrap();
    let lease = dead.try_get_lease().unwrap();
    assert_eq!((&*lease, lease.dead_letter()), (&b"direct"[..], None));
    lease.ack().unwrap();
    // Both capacities are whole again.
    for i in 0..4u8 {
        q.try_put_priority(&[i], 2).unwrap();
        dead.try_put_priority(&[i], 2).unwrap();
    }
}

#[test]
fn a_full_dead_letter_queue_holds_the_message_back() {
    let dir = Dir::new();
    let q = Queue::builder("src")
        .dir(&dir.0)
        .capacity(2)
        .max_deliveries(1)
        .dead_letter("src.dead")
        .create()
        .unwrap();
    let dead = Queue::open_in(&dir.0, "src.dead").unwrap();
    dead.put(b"a").unwrap();
    dead.put(b"b").unwrap();
    q.put(b"poison").unwrap();
    deliver_and_release(&q, 1);
    // No room: it stays in the source, and the getter is told to wait.
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    assert_eq!((q.len(), q.stats().dead_lettered), (1, 0));
    assert_eq!(dead.get().unwrap(), b"a");
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    assert_eq!((q.len(), q.stats().dead_lettered), (0, 1));
    assert_eq!(dead.get().unwrap(), b"b");
    let lease = dead.try_get_lease().unwrap();
    assert_eq!(&*lease, b"poison");
    // Tries that had to wait count as deliveries too (recorded, never lost).
    assert!(lease.dead_letter().unwrap().deliveries >= 2);
    lease.ack().unwrap();
}

/// A dead-letter queue removed while its source is in use is made again at
/// the next move (a handle does not go on moving into the removed file).
#[test]
fn a_removed_dead_letter_queue_is_made_again() {
    let dir = Dir::new();
    let q = Queue::builder("src")
        .dir(&dir.0)
        .max_deliveries(1)
        .dead_letter("src.dead")
        .create()
        .unwrap();
    q.put(b"first").unwrap();
    deliver_and_release(&q, 1);
    assert!(q.try_get().is_err()); // moved; the handle keeps "src.dead" open
    Queue::remove_in(&dir.0, "src.dead").unwrap();
    q.put(b"second").unwrap();
    deliver_and_release(&q, 1);
    assert!(q.try_get().is_err());
    let dead = Queue::open_in(&dir.0, "src.dead").unwrap();
    assert_eq!(dead.stats().dead_letters_of.as_deref(), Some("src"));
    assert_eq!(dead.try_get().unwrap(), b"second");
    assert!(matches!(dead.try_get(), Err(GetError::Empty)));
}

fn invalid_reason(e: OpenError) -> String {
    match e {
        OpenError::InvalidConfig { reason, .. } => reason,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn bad_dead_letter_settings_are_refused() {
    let dir = Dir::new();
    let b = || Queue::builder("jobs").dir(&dir.0);
    let e = invalid_reason(b().dead_letter("jobs.dead").create().unwrap_err());
    assert!(
        e.contains("without max_deliveries") && e.contains("hint"),
        "{e}"
    );
    let e = invalid_reason(
        b().max_deliveries(2)
            .dead_letter("jobs")
            .create()
            .unwrap_err(),
    );
    assert!(e.contains("itself"), "{e}");
    let e = invalid_reason(
        b().max_deliveries(2)
            .dead_letter("../x")
            .create()
            .unwrap_err(),
    );
    assert!(e.contains("\"../x\" is not a queue name"), "{e}");
    // Nothing was created by the refusals.
    assert!(
        queue_core::list(Some(&dir.0))
            .unwrap_or_default()
            .is_empty()
    );

    let _jobs = b()
        .max_deliveries(2)
        .dead_letter("shared.dead")
        .create()
        .unwrap();
    let e = Queue::builder("other")
        .dir(&dir.0)
        .max_deliveries(2)
        .dead_letter("shared.dead")
        .create()
        .unwrap_err();
    let e = invalid_reason(e);
    assert!(
        e.contains("\"shared.dead\"") && e.contains("\"jobs\""),
        "{e}"
    );
    assert!(
        Queue::open_in(&dir.0, "other").is_err(),
        "refused before creating"
    );

    // A dead-letter queue made by hand with smaller messages is refused.
    drop(
        Queue::builder("small")
            .dir(&dir.0)
            .max_msg_size(8)
            .create()
            .unwrap(),
    );
    let e = Queue::builder("big")
        .dir(&dir.0)
        .max_msg_size(64)
        .max_deliveries(1)
        .dead_letter("small")
        .create()
        .unwrap_err();
    assert!(invalid_reason(e).contains("at most 8 bytes"));
}
