//! [`Observer`]: the read-only, non-participating view of a queue.

use std::path::PathBuf;

use queue_core::{OpenError, Queue, SlotView};

/// A private queue directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("mq-observe-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_observer_sees_what_a_participant_sees() {
    let d = Dir::new("sees");
    let q = Queue::builder("q")
        .dir(&d.0)
        .capacity(4)
        .max_msg_size(64)
        .create()
        .unwrap();
    q.put(b"first").unwrap();
    q.put(b"second").unwrap();
    let lease = q.get_lease().unwrap();
    let o = Queue::observe_in(&d.0, "q").unwrap();
    assert_eq!((o.name(), o.path()), (q.name(), q.path()));
    assert_eq!((o.len(), o.capacity(), o.max_msg_size()), (1, 4, 64));
    assert!(!o.is_empty() && !o.is_full() && !o.is_closed());
    assert_eq!(o.peek().as_deref(), Some(&b"second"[..]));
    assert_eq!(o.slots(), q.slots());
    let (mine, theirs) = (q.stats(), o.stats());
    assert_eq!(
        theirs.participants.len(),
        1,
        "the observer is no participant"
    );
    assert!(
        !theirs.participants[0].is_self,
        "nor is anyone `self` to it"
    );
    assert!(theirs.participants[0].alive);
    assert_eq!(theirs.participants[0].index, mine.participants[0].index);
    assert_eq!(
        (
            theirs.len,
            theirs.total_put,
            theirs.total_got,
            theirs.in_flight
        ),
        (mine.len, mine.total_put, mine.total_got, mine.in_flight)
    );
    assert_eq!(o.slots()[0], SlotView::Reading(mine.participants[0].index));
    lease.ack().unwrap();
    q.close().unwrap();
    assert!(o.is_closed());
    drop(q);
    assert!(o.stats().participants.is_empty());
}

#[test]
fn an_observer_needs_no_participant_entry() {
    let d = Dir::new("full");
    let q = Queue::builder("q")
        .dir(&d.0)
        .max_participants(1)
        .create()
        .unwrap();
    assert!(matches!(
        Queue::open_in(&d.0, "q"),
        Err(OpenError::TooManyParticipants { limit: 1, .. })
    ));
    let observers: Vec<_> = (0..3)
        .map(|_| Queue::observe_in(&d.0, "q").unwrap())
        .collect();
    q.put(b"x").unwrap();
    assert!(observers.iter().all(|o| o.len() == 1));
}

#[test]
fn an_observer_writes_no_byte() {
    let d = Dir::new("bytes");
    let q = Queue::builder("q").dir(&d.0).capacity(8).create().unwrap();
    q.put_many(&[b"a", b"b", b"c"]).unwrap();
    let _lease = q.get_lease().unwrap();
    let before = std::fs::read(q.path()).unwrap();
    let o = Queue::observe_in(&d.0, "q").unwrap();
    for _ in 0..10 {
        let _ = (o.stats(), o.slots(), o.peek(), o.len(), o.is_closed());
    }
    drop(o);
    assert_eq!(
        std::fs::read(q.path()).unwrap(),
        before,
        "the segment changed"
    );
}

#[test]
fn a_read_only_file_can_be_observed() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new("mode");
    let q = Queue::builder("q").dir(&d.0).mode(0o444).create().unwrap();
    q.put(b"x").unwrap();
    let path = q.path().to_owned();
    drop(q);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    let o = Queue::observe_in(&d.0, "q").unwrap();
    assert_eq!(o.peek().as_deref(), Some(&b"x"[..]));
}

#[test]
fn observing_a_missing_or_badly_named_queue_is_a_clear_error() {
    let d = Dir::new("missing");
    std::fs::create_dir_all(&d.0).unwrap();
    let e = Queue::observe_in(&d.0, "nope").unwrap_err();
    assert!(matches!(e, OpenError::NotFound { .. }), "{e}");
    let e = Queue::observe_in(&d.0, "../etc").unwrap_err();
    assert!(matches!(e, OpenError::InvalidName { .. }), "{e}");
    std::fs::write(d.0.join("mq.junk"), b"not a queue at all").unwrap();
    let e = Queue::observe_in(&d.0, "junk").unwrap_err();
    assert!(matches!(e, OpenError::NotAQueue { .. }), "{e}");
}
