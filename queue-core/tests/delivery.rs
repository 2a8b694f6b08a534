//! Delivery control within one process: lease deadlines, renewals, late
//! acks, delivery counts and poison messages (the multi-process tests are in
//! the workspace's `tests` package, `core_mp.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use queue_core::{AckError, GetError, OpenError, PutError, Queue};

/// A private queue directory, removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        Dir(std::env::temp_dir().join(format!(
            "mq-delivery-{}-{}",
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

/// Sleeps until `d` has surely passed on the monotonic clock.
fn pause(d: Duration) {
    std::thread::sleep(d + Duration::from_millis(20));
}

#[test]
fn settings_live_in_the_segment() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .lease_timeout(Duration::from_millis(1500))
        .max_deliveries(3)
        .create()
        .unwrap();
    let other = Queue::open_in(&dir.0, "q").unwrap();
    assert_eq!(other.lease_timeout(), Some(Duration::from_millis(1500)));
    assert_eq!(other.max_deliveries(), Some(3));
    let s = other.stats();
    assert_eq!(s.lease_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(s.max_deliveries, Some(3));
    // open_or_create keeps the existing settings.
    let third = Queue::builder("q")
        .dir(&dir.0)
        .max_deliveries(9)
        .open_or_create()
        .unwrap();
    assert_eq!(third.max_deliveries(), Some(3));
    drop((q, other, third));
    let plain = Queue::builder("p").dir(&dir.0).create().unwrap();
    assert_eq!(plain.lease_timeout(), None);
    assert_eq!(plain.max_deliveries(), None);
}

#[test]
fn zero_settings_are_refused() {
    let dir = Dir::new();
    let e = Queue::builder("q")
        .dir(&dir.0)
        .max_deliveries(0)
        .create()
        .unwrap_err();
    assert!(matches!(e, OpenError::InvalidConfig { .. }), "{e}");
    assert!(e.to_string().contains("max deliveries is 0"), "{e}");
    let e = Queue::builder("q")
        .dir(&dir.0)
        .lease_timeout(Duration::ZERO)
        .create()
        .unwrap_err();
    assert!(e.to_string().contains("lease timeout"), "{e}");
}

#[test]
fn an_expired_lease_goes_to_another_getter_and_its_late_ack_fails() {
    let dir = Dir::new();
    let timeout = Duration::from_millis(50);
    let a = Queue::builder("q")
        .dir(&dir.0)
        .lease_timeout(timeout)
        .create()
        .unwrap();
    let b = Queue::open_in(&dir.0, "q").unwrap();
    a.put(b"job").unwrap();
    let first = a.get_lease().unwrap();
    assert_eq!(first.deliveries(), 1);
    assert_eq!(b.stats().leases[0].deliveries, 1);
    assert!(b.stats().leases[0].expires_in_ms.is_some());
    pause(timeout);
    // `b` waits: its recovery pass puts the overdue lease back.
    let second = b.get_lease_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(&*second, b"job");
    assert_eq!(second.deliveries(), 2);
    match first.ack() {
        Err(AckError::Expired { slot: 0, .. }) => {}
        other => panic!("late ack: {other:?}"),
    }
    second.ack().unwrap();
    let s = a.stats();
    assert_eq!((s.expired, s.redelivered, s.total_got), (1, 1, 1));
    assert!(a.is_empty());
}

/// The old holder takes its own expired message again at the same lap:
/// the two deliveries differ in the state word, so the first lease's ack
/// cannot ack the second delivery (no ABA).
#[test]
fn the_same_holder_taking_the_message_again_is_a_new_delivery() {
    let dir = Dir::new();
    let timeout = Duration::from_millis(30);
    let q = Queue::builder("q")
        .dir(&dir.0)
        .lease_timeout(timeout)
        .create()
        .unwrap();
    q.put(b"m").unwrap();
    let old = q.get_lease().unwrap();
    pause(timeout);
    assert_eq!(q.recover(), 1, "the overdue lease is put back");
    let new = q.try_get_lease().unwrap();
    assert_eq!(new.deliveries(), 2);
    assert!(matches!(old.renew(), Err(AckError::Expired { .. })));
    assert!(matches!(old.ack(), Err(AckError::Expired { .. })));
    new.ack().unwrap();
    assert_eq!(q.stats().total_got, 1);
}

#[test]
fn renewing_keeps_a_lease() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .lease_timeout(Duration::from_millis(300))
        .create()
        .unwrap();
    q.put(b"long task").unwrap();
    let lease = q.get_lease().unwrap();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        lease.renew().unwrap();
        q.recover();
    }
    assert_eq!(q.stats().expired, 0);
    lease.ack().unwrap();
}

#[test]
fn without_a_timeout_a_lease_never_expires() {
    let dir = Dir::new();
    let q = Queue::builder("q").dir(&dir.0).create().unwrap();
    q.put(b"m").unwrap();
    let lease = q.get_lease().unwrap();
    pause(Duration::from_millis(100));
    assert_eq!(q.recover(), 0);
    lease.renew().unwrap();
    assert_eq!(q.stats().leases[0].expires_in_ms, None);
    lease.ack().unwrap();
}

#[test]
fn deliveries_count_releases_and_poison_is_dropped_once() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .capacity(4)
        .max_deliveries(3)
        .create()
        .unwrap();
    q.put(b"poison").unwrap();
    q.put(b"fine").unwrap();
    for n in 1..=3 {
        let lease = q.try_get_lease().unwrap();
        assert_eq!((&*lease, lease.deliveries()), (&b"poison"[..], n));
        lease.release();
    }
    // The fourth delivery would exceed 3: the message is dropped, and the
    // next one flows on.
    assert_eq!(q.try_get().unwrap(), b"fine");
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    let s = q.stats();
    assert_eq!((s.dropped_poison, s.redelivered, s.total_got), (1, 3, 1));
    // The capacity is whole again.
    for i in 0..4u8 {
        q.try_put(&[i]).unwrap();
    }
}

/// Deliveries past 256 carry over the state word's 8-bit generation.
#[test]
fn deliveries_count_past_256() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .capacity(1)
        .create()
        .unwrap();
    q.put(b"m").unwrap();
    for n in 1..=600 {
        let lease = q.try_get_lease().unwrap();
        assert_eq!(lease.deliveries(), n);
        lease.release();
    }
    let lease = q.try_get_lease().unwrap();
    assert_eq!(lease.deliveries(), 601);
    lease.ack().unwrap();
}

#[test]
fn higher_priorities_first_fifo_within_a_level() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .capacity(4)
        .priorities(3)
        .create()
        .unwrap();
    assert_eq!(q.priorities(), 3);
    q.put(b"low-1").unwrap();
    q.put_priority(b"mid-1", 1).unwrap();
    q.put_priority(b"high-1", 2).unwrap();
    q.put(b"low-2").unwrap();
    q.try_put_priority(b"high-2", 2).unwrap();
    q.put_priority_timeout(b"mid-2", 1, Duration::from_secs(1))
        .unwrap();
    assert_eq!(q.len(), 6);
    assert_eq!(q.peek().unwrap(), b"high-1");
    let order: Vec<Vec<u8>> = (0..6).map(|_| q.try_get().unwrap()).collect();
    assert_eq!(
        order,
        [
            &b"high-1"[..],
            b"high-2",
            b"mid-1",
            b"mid-2",
            b"low-1",
            b"low-2"
        ]
    );
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
}

#[test]
fn each_level_holds_capacity_messages() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .capacity(2)
        .priorities(2)
        .create()
        .unwrap();
    q.put(b"a").unwrap();
    q.put(b"b").unwrap();
    assert!(matches!(q.try_put(b"c"), Err(PutError::Full)));
    assert!(!q.is_full());
    q.try_put_priority(b"x", 1).unwrap();
    q.try_put_priority(b"y", 1).unwrap();
    assert!(q.is_full());
    assert_eq!(q.stats().priorities, 2);
    assert_eq!(q.slots().len(), 4);
    let e = q.try_put_priority(b"z", 2).unwrap_err();
    assert!(
        matches!(
            e,
            PutError::InvalidPriority {
                priority: 2,
                priorities: 2
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("0 to 1"), "{e}");
    // get_many takes the higher level first.
    assert_eq!(q.get_many(3).unwrap(), [&b"x"[..], b"y", b"a"]);
}

#[test]
fn batch_puts_at_a_priority() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .capacity(2)
        .priorities(2)
        .create()
        .unwrap();
    q.put(b"low").unwrap();
    // Only what fits the level goes in, and says how many.
    assert_eq!(
        q.try_put_many_priority(&[b"a", b"b", b"c"], 1),
        Err((2, PutError::Full))
    );
    assert_eq!(
        q.put_many_priority_timeout(&[b"d"], 1, Duration::from_millis(10)),
        Err((0, PutError::Timeout))
    );
    assert!(matches!(
        q.try_put_many_priority(&[b"x"], 2),
        Err((0, PutError::InvalidPriority { priority: 2, .. }))
    ));
    assert_eq!(q.get_many(3).unwrap(), [&b"a"[..], b"b", b"low"]);
    q.put_many_priority_timeout(&[b"e"], 1, Duration::from_secs(1))
        .unwrap();
    assert_eq!(q.try_get().unwrap(), b"e");
}

#[test]
fn a_redelivered_message_keeps_its_priority() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .capacity(4)
        .priorities(2)
        .create()
        .unwrap();
    q.put_priority(b"urgent", 1).unwrap();
    q.put(b"normal").unwrap();
    let lease = q.get_lease().unwrap();
    assert_eq!(&*lease, b"urgent");
    q.put_priority(b"urgent-2", 1).unwrap();
    lease.release();
    // The re-queued message is older than "urgent-2", and above "normal".
    assert_eq!(q.try_get().unwrap(), b"urgent");
    assert_eq!(q.try_get().unwrap(), b"urgent-2");
    assert_eq!(q.try_get().unwrap(), b"normal");
}

#[test]
fn close_drains_every_level() {
    let dir = Dir::new();
    let q = Queue::builder("q")
        .dir(&dir.0)
        .priorities(4)
        .create()
        .unwrap();
    q.put_priority(b"3", 3).unwrap();
    q.put(b"0").unwrap();
    q.close().unwrap();
    assert_eq!(q.get().unwrap(), b"3");
    assert_eq!(q.get().unwrap(), b"0");
    assert!(matches!(q.get(), Err(GetError::Closed)));
    assert!(matches!(
        Queue::builder("r").dir(&dir.0).priorities(65).create(),
        Err(OpenError::InvalidConfig { .. })
    ));
}
