//! The public API within one process (the multi-process and crash tests are
//! in the workspace's `tests` package).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use queue_core::{Batch, CloseError, GetError, OpenError, PutError, Queue, SlotView};
#[cfg(feature = "serde")]
use queue_core::{TypedGetError, TypedQueue};

/// A private queue directory, removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "mq-api-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        Dir(p)
    }
    fn queue(&self, cap: usize) -> Queue {
        Queue::builder("q")
            .dir(&self.0)
            .capacity(cap)
            .max_msg_size(64)
            .create()
            .unwrap()
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn queue_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Queue>();
    #[cfg(feature = "serde")]
    check::<TypedQueue<String>>();
}

#[test]
fn fifo_full_and_empty() {
    let d = Dir::new();
    let q = d.queue(3);
    assert!(q.is_empty());
    for m in [&b"a"[..], b"bb", b""] {
        q.try_put(m).unwrap();
    }
    assert!(q.is_full());
    assert_eq!(q.len(), 3);
    assert_eq!(q.try_put(b"x"), Err(PutError::Full));
    assert_eq!(q.try_get().unwrap(), b"a");
    assert_eq!(q.try_get().unwrap(), b"bb");
    let mut buf = Vec::with_capacity(64);
    assert_eq!(q.get_into(&mut buf).unwrap(), 0);
    assert_eq!(q.try_get(), Err(GetError::Empty));
    assert_eq!(q.try_get_into(&mut buf), Err(GetError::Empty));
}

#[test]
fn timeouts_return_in_time() {
    let d = Dir::new();
    let q = d.queue(1);
    let t = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(120)),
        Err(GetError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(120));
    q.put(b"x").unwrap();
    let t = Instant::now();
    assert_eq!(
        q.put_timeout(b"y", Duration::from_millis(120)),
        Err(PutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(120));
    assert_eq!(q.get_timeout(Duration::ZERO).unwrap(), b"x");
}

#[test]
fn message_size_limit_is_exact() {
    let d = Dir::new();
    let q = d.queue(2);
    q.put(&[7; 64]).unwrap();
    assert_eq!(
        q.put(&[7; 65]),
        Err(PutError::TooLarge { len: 65, max: 64 })
    );
    assert_eq!(q.get().unwrap(), vec![7; 64]);
}

#[test]
fn lease_ack_removes_and_drop_puts_back() {
    let d = Dir::new();
    let q = d.queue(2);
    q.put(b"one").unwrap();
    q.put(b"two").unwrap();
    {
        let lease = q.get_lease().unwrap();
        assert_eq!(&*lease, b"one");
        // Unacked: still holds its slot, so the queue is still full.
        assert_eq!(q.try_put(b"x"), Err(PutError::Full));
    } // dropped: put back
    assert_eq!(q.stats().redelivered, 1);
    // The re-delivered message is older than "two" and comes first.
    let lease = q.get_lease().unwrap();
    assert_eq!(&*lease, b"one");
    lease.ack().unwrap();
    let lease = q.try_get_lease().unwrap();
    assert_eq!(lease.to_vec(), b"two");
    lease.release();
    assert_eq!(q.get().unwrap(), b"two");
    assert_eq!(q.try_get_lease().unwrap_err(), GetError::Empty);
    q.put(b"a").unwrap();
    q.put(b"b").unwrap();
    assert_eq!(q.try_put(b"c"), Err(PutError::Full), "capacity whole");
}

/// A release wakes one sleeping getter (as a put does), which takes the
/// message; the others sleep on and take what is put next: each message
/// once, and nobody left asleep with a message in the queue.
#[test]
fn a_released_lease_wakes_a_sleeping_getter_and_the_others_sleep_on() {
    let d = Dir::new();
    let q = d.queue(4);
    q.put(b"m").unwrap();
    let lease = q.get_lease().unwrap();
    let mut got: Vec<Vec<u8>> = std::thread::scope(|s| {
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let own = Queue::open_in(&d.0, "q").unwrap();
                    own.get_timeout(Duration::from_secs(20)).unwrap()
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        lease.release();
        q.put(b"x").unwrap();
        q.put(b"y").unwrap();
        sleepers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    got.sort();
    assert_eq!(got, [b"m".to_vec(), b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(q.try_get(), Err(GetError::Empty));
}

#[test]
fn close_drains_then_reports_closed_and_wakes_sleepers() {
    let d = Dir::new();
    let q = d.queue(4);
    q.put(b"last words").unwrap();
    std::thread::scope(|s| {
        let sleeper = s.spawn(|| {
            let other = Queue::open_in(&d.0, "q").unwrap();
            // Takes the one message, then sleeps until close wakes it.
            let first = other.get().unwrap();
            (first, other.get())
        });
        std::thread::sleep(Duration::from_millis(150));
        q.close().unwrap();
        let (first, then) = sleeper.join().unwrap();
        assert_eq!(first, b"last words");
        assert_eq!(then, Err(GetError::Closed));
    });
    assert!(q.is_closed());
    assert_eq!(q.put(b"x"), Err(PutError::Closed));
    assert_eq!(q.try_get(), Err(GetError::Closed));
    assert_eq!(q.close(), Err(CloseError::AlreadyClosed));
}

#[test]
fn close_waits_for_an_outstanding_lease_of_another_handle() {
    let d = Dir::new();
    let q = d.queue(4);
    let other = Queue::open_in(&d.0, "q").unwrap();
    q.put(b"m").unwrap();
    let lease = other.get_lease().unwrap();
    q.close().unwrap();
    // Not drained while another handle might still put the message back.
    assert_eq!(
        q.get_timeout(Duration::from_millis(50)),
        Err(GetError::Timeout)
    );
    drop(lease);
    assert_eq!(q.get().unwrap(), b"m");
    assert_eq!(q.get(), Err(GetError::Closed));
}

#[test]
fn batches_round_trip_in_order() {
    let d = Dir::new();
    let q = d.queue(8);
    let msgs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; i as usize]).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            let p = Queue::open_in(&d.0, "q").unwrap();
            p.put_many(&msgs).unwrap();
            p.close().unwrap();
        });
        let mut got = Vec::new();
        loop {
            match q.get_many(5) {
                Ok(batch) => {
                    assert!(!batch.is_empty() && batch.len() <= 5);
                    got.extend(batch);
                }
                Err(GetError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, msgs);
    });
    assert_eq!(q.try_get_many(3), Err(GetError::Closed));
    let d = Dir::new();
    let q = d.queue(2);
    assert_eq!(
        q.put_many(&[vec![0u8; 10], vec![0u8; 100]]),
        Err((0, PutError::TooLarge { len: 100, max: 64 })),
        "nothing is put when any message is too large"
    );
    assert_eq!(q.try_get_many(3), Err(GetError::Empty));
}

#[test]
fn batches_into_one_reused_buffer() {
    let d = Dir::new();
    let q = d.queue(8);
    let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; i as usize % 9]).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            let p = Queue::open_in(&d.0, "q").unwrap();
            p.put_many(&msgs).unwrap();
            p.close().unwrap();
        });
        let mut batch = Batch::with_capacity(5, 64);
        let mut got = Vec::new();
        loop {
            match q.get_many_into(&mut batch, 5) {
                Ok(n) => {
                    assert_eq!(n, batch.len(), "the count is the batch's length");
                    assert!((1..=5).contains(&n));
                    got.extend(batch.iter().map(<[u8]>::to_vec));
                }
                Err(GetError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, msgs);
    });
    let mut batch = Batch::new();
    assert_eq!(q.try_get_many_into(&mut batch, 3), Err(GetError::Closed));
    assert!(batch.is_empty(), "a failed call leaves the batch cleared");
    let d = Dir::new();
    let q = d.queue(4);
    q.put(b"left over").unwrap();
    assert_eq!(q.get_many_into(&mut batch, 0), Ok(0));
    assert_eq!(q.len(), 1, "max 0 takes nothing");
    assert_eq!(
        q.get_many_into_timeout(&mut batch, 9, Duration::from_millis(10)),
        Ok(1)
    );
    assert_eq!(batch.get(0), Some(&b"left over"[..]));
    assert_eq!(
        q.get_many_into_timeout(&mut batch, 9, Duration::from_millis(10)),
        Err(GetError::Timeout)
    );
    assert_eq!(q.try_get_many_into(&mut batch, 3), Err(GetError::Empty));
}

/// A batch whose first message is a redelivery (a dropped lease put it
/// back: its delivery generation is 2) and whose others are first
/// deliveries hands every one of them over. (Before runs were taken span by
/// span, every slot of a run was handed over with the first one's
/// generation: the second message failed its hand-over and stayed claimed
/// by the live getter, taken by nobody.)
#[test]
fn a_batch_starting_with_a_redelivered_message_takes_all() {
    let d = Dir::new();
    let q = d.queue(8);
    q.put_many(&[&b"a"[..], b"b", b"c"]).unwrap();
    drop(q.try_get_lease().unwrap()); // "a" goes back
    let mut batch = Batch::new();
    assert_eq!(q.try_get_many_into(&mut batch, 8), Ok(3));
    assert_eq!(batch.iter().collect::<Vec<_>>(), [&b"a"[..], b"b", b"c"]);
    assert_eq!(q.len(), 0);
    assert_eq!(q.try_get(), Err(GetError::Empty));
    let stats = q.stats();
    assert_eq!(stats.total_got, 3, "each hand-over counted once");
}

/// A batch get stops once it holds 256 KiB of payload (passing it by one
/// message at most), on queues with and without priorities; small
/// messages on the same queue are not limited, and a message larger than
/// that comes alone.
/// Every length from 0 to 100 bytes survives a batch both ways, on a
/// queue whose messages are all copied inline (max 64 bytes) and on one
/// that copies the longer ones by `memcpy`; a reused batch (one pass) and
/// a fresh one (two passes) read the same; so do single gets.
#[test]
fn batches_carry_every_small_length_intact() {
    for max in [64usize, 100] {
        let d = Dir::new();
        let q = Queue::builder("lengths")
            .dir(&d.0)
            .capacity(128)
            .max_msg_size(max)
            .create()
            .unwrap();
        let msgs: Vec<Vec<u8>> = (0..=max)
            .map(|len| (0..len).map(|i| (len * 7 + i) as u8).collect())
            .collect();
        let mut reused = Batch::with_capacity(16, 16 * max);
        for chunk in msgs.chunks(16) {
            q.put_many(chunk).unwrap();
            assert_eq!(q.try_get_many_into(&mut reused, 16), Ok(chunk.len()));
            assert!(reused.iter().eq(chunk.iter().map(|m| &m[..])), "max {max}");
            q.put_many(chunk).unwrap();
            let mut fresh = Batch::new();
            assert_eq!(q.try_get_many_into(&mut fresh, 16), Ok(chunk.len()));
            assert!(fresh.iter().eq(chunk.iter().map(|m| &m[..])), "max {max}");
            q.put_many(chunk).unwrap();
            for m in chunk {
                assert_eq!(&q.try_get().unwrap(), m, "max {max}");
            }
        }
    }
}

#[test]
fn a_batch_get_stops_at_256_kib_of_payload() {
    const KIB: usize = 1024;
    for priorities in [1, 2] {
        let d = Dir::new();
        let q = Queue::builder("big")
            .dir(&d.0)
            .capacity(16)
            .max_msg_size(300 * KIB)
            .priorities(priorities)
            .create()
            .unwrap();
        let big: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 64 * KIB]).collect();
        q.put_many(&big).unwrap();
        let mut batch = Batch::new();
        let mut got = Vec::new();
        for want in [4, 4, 2] {
            assert_eq!(q.try_get_many_into(&mut batch, 64), Ok(want));
            got.extend(batch.iter().map(|m| m[0]));
        }
        assert_eq!(got, (0..10).collect::<Vec<u8>>(), "all, in order");
        // 60 KiB: four make 240 KiB, the fifth passes 256 KiB and is the last.
        let odd: Vec<Vec<u8>> = (0..6).map(|_| vec![0; 60 * KIB]).collect();
        q.put_many(&odd).unwrap();
        assert_eq!(q.try_get_many(64).unwrap().len(), 5);
        assert_eq!(q.try_get_many(64).unwrap().len(), 1);
        let small: Vec<&[u8]> = vec![b"tiny"; 16];
        q.put_many(&small).unwrap();
        assert_eq!(q.try_get_many_into(&mut batch, 64), Ok(16));
        q.put_many(&[vec![1; 300 * KIB], vec![2; 300 * KIB]])
            .unwrap();
        assert_eq!(q.try_get_many_into(&mut batch, 64), Ok(1));
        assert_eq!(batch.get(0).map(|m| (m.len(), m[0])), Some((300 * KIB, 1)));
        assert_eq!(q.try_get_many(64).unwrap().len(), 1);
        Queue::remove_in(&d.0, "big").unwrap();
    }
}

#[test]
fn peek_shows_without_taking() {
    let d = Dir::new();
    let q = d.queue(2);
    assert_eq!(q.peek(), None);
    q.put(b"first").unwrap();
    q.put(b"second").unwrap();
    assert_eq!(q.peek().unwrap(), b"first");
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().unwrap(), b"first");
    assert_eq!(q.peek().unwrap(), b"second");
}

#[test]
fn stats_and_slots_tell_the_story() {
    let d = Dir::new();
    let q = Queue::builder("q")
        .dir(&d.0)
        .capacity(4)
        .max_msg_size(100)
        .mode(0o640)
        .create()
        .unwrap();
    q.put(b"x").unwrap();
    q.put(b"y").unwrap();
    let _ = q.get().unwrap();
    let lease = q.get_lease().unwrap();
    let s = q.stats();
    assert_eq!((s.capacity, s.max_msg_size, s.len), (4, 100, 0));
    assert_eq!((s.total_put, s.total_got, s.in_flight), (2, 1, 1));
    assert_eq!((s.head, s.tail), (2, 2));
    assert_eq!(s.mode, 0o640);
    assert!(!s.closed);
    assert_eq!(s.participants.len(), 1);
    assert!(s.participants[0].is_self && s.participants[0].alive);
    assert_eq!(s.path, d.0.join("mq.q"));
    assert_eq!(
        std::fs::metadata(&s.path).unwrap().len() as usize,
        s.segment_size,
        "segment size is the file size"
    );
    let me = s.participants[0].index;
    assert_eq!(
        q.slots(),
        vec![
            SlotView::Empty,
            SlotView::Reading(me),
            SlotView::Empty,
            SlotView::Empty
        ]
    );
    lease.ack().unwrap();
    assert_eq!(q.stats().total_got, 2);
}

#[test]
fn open_or_create_keeps_the_existing_sizes() {
    let d = Dir::new();
    let q = d.queue(3);
    let again = Queue::builder("q")
        .dir(&d.0)
        .capacity(999)
        .open_or_create()
        .unwrap();
    assert_eq!(again.capacity(), 3);
    assert_eq!(again.max_msg_size(), q.max_msg_size());
    assert!(matches!(
        Queue::builder("q").dir(&d.0).create(),
        Err(OpenError::AlreadyExists { .. })
    ));
}

#[test]
fn a_full_participant_table_is_a_clear_error() {
    let d = Dir::new();
    let q = Queue::builder("q")
        .dir(&d.0)
        .max_participants(2)
        .create()
        .unwrap();
    let second = Queue::open_in(&d.0, "q").unwrap();
    let err = Queue::open_in(&d.0, "q").unwrap_err();
    assert!(matches!(
        err,
        OpenError::TooManyParticipants { limit: 2, .. }
    ));
    assert!(err.to_string().contains("all 2 are held"), "{err}");
    drop(second);
    Queue::open_in(&d.0, "q").expect("a freed entry is reused");
    drop(q);
}

#[test]
fn tens_of_mib_messages_work() {
    let d = Dir::new();
    let q = Queue::builder("big")
        .dir(&d.0)
        .capacity(2)
        .max_msg_size(40 << 20)
        .create()
        .unwrap();
    let msg: Vec<u8> = (0..(40usize << 20)).map(|i| (i % 251) as u8).collect();
    q.put(&msg).unwrap();
    assert!(q.get().unwrap() == msg);
}

#[cfg(feature = "serde")]
#[test]
fn typed_queue_sends_structs() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Job {
        id: u32,
        tags: Vec<String>,
    }
    let d = Dir::new();
    let q: TypedQueue<Job> = TypedQueue::new(d.queue(4));
    let job = Job {
        id: 7,
        tags: vec!["a".into(), "b".into()],
    };
    q.put(&job).unwrap();
    assert_eq!(q.get().unwrap(), job);
    q.put(&job).unwrap();
    let lease = q.get_lease().unwrap();
    assert_eq!(lease.id, 7);
    lease.ack().unwrap();
    // Bytes that are not a Job: a decode error, not a panic.
    q.queue().put(&[0xff; 3]).unwrap();
    assert!(matches!(
        q.try_get(),
        Err(TypedGetError::Decode { len: 3, .. })
    ));
    assert!(matches!(
        q.try_get(),
        Err(TypedGetError::Queue(GetError::Empty))
    ));
}

#[test]
fn mq_dir_selects_the_directory() {
    // Only this test touches MQ_DIR in this binary.
    let d = Dir::new();
    std::fs::create_dir_all(&d.0).unwrap();
    // SAFETY: no other thread of this test binary reads the environment
    // concurrently in a way that matters (the other tests pass `.dir()`).
    unsafe { std::env::set_var("MQ_DIR", &d.0) };
    let q = Queue::builder("env").create().unwrap();
    assert_eq!(q.path(), d.0.join("mq.env"));
    assert_eq!(queue_core::list(None).unwrap(), vec!["env".to_string()]);
    drop(q);
    Queue::remove("env").unwrap();
    unsafe { std::env::remove_var("MQ_DIR") };
}
