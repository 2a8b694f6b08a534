//! The async verbs within one process (cargo feature `async`): wake-ups from
//! other threads, cancel-safety, a forgotten future, tokio and
//! `futures::executor`. (Across processes: the `tests` package.)
#![cfg(feature = "async")]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::executor::block_on;
use futures::task::noop_waker;
use queue_core::{GetError, PutError, Queue};

mod waiting;
use waiting::{Dir, watchdog};

/// Polls once with a waker that does nothing.
fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let waker = noop_waker();
    f.poll(&mut Context::from_waker(&waker))
}

#[test]
fn get_async_is_woken_by_a_put_from_another_thread() {
    watchdog(60);
    let d = Dir::new("async");
    let q = d.queue("q", 4);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            q.put(b"late").unwrap();
        });
        assert_eq!(block_on(q.get_async()).unwrap(), b"late");
    });
    q.close().unwrap();
    assert_eq!(block_on(q.get_async()), Err(GetError::Closed));
    assert_eq!(q.stats().consumers_waiting, 0);
}

#[test]
fn put_async_on_a_full_queue_completes_when_a_slot_frees() {
    watchdog(60);
    let d = Dir::new("async");
    let q = d.queue("q", 1);
    q.put(b"first").unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(q.get().unwrap(), b"first");
        });
        block_on(q.put_async(b"second")).unwrap();
    });
    assert_eq!(q.try_get().unwrap(), b"second");
    let too_big = [0u8; 65];
    assert!(matches!(
        block_on(q.put_async(&too_big)),
        Err(PutError::TooLarge { .. })
    ));
    assert_eq!(q.stats().producers_waiting, 0);
}

#[test]
fn dropped_futures_take_and_put_nothing() {
    let d = Dir::new("async");
    let q = d.queue("q", 1);
    {
        let mut get = pin!(q.get_async());
        assert!(poll_once(get.as_mut()).is_pending());
        let mut lease = pin!(q.get_lease_async());
        assert!(poll_once(lease.as_mut()).is_pending());
        // A message arrives while both wait; then both are dropped.
        q.put(b"kept").unwrap();
    }
    assert_eq!(q.stats().consumers_waiting, 0);
    assert_eq!(q.try_get().unwrap(), b"kept");
    q.put(b"full").unwrap();
    {
        let mut put = pin!(q.put_async(b"never"));
        assert!(poll_once(put.as_mut()).is_pending());
        assert_eq!(q.try_get().unwrap(), b"full");
    }
    assert_eq!(
        q.try_get(),
        Err(GetError::Empty),
        "the dropped put put nothing"
    );
    assert_eq!(q.stats().producers_waiting, 0);
}

#[test]
fn a_forgotten_future_outlives_its_queue_harmlessly() {
    watchdog(60);
    let d = Dir::new("async");
    let q = d.queue("gone", 2);
    let mut f = Box::pin(q.get_async());
    assert!(poll_once(f.as_mut()).is_pending());
    std::mem::forget(f);
    drop(q); // the waiter thread must let go of the queue's words
    let q2 = d.queue("next", 2);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(150));
            q2.put(b"x").unwrap();
        });
        assert_eq!(block_on(q2.get_async()).unwrap(), b"x");
    });
}

#[test]
fn tokio_current_thread_serves_many_tasks_on_many_queues() {
    watchdog(120);
    let d = Dir::new("async");
    let queues: Vec<Queue> = (0..10).map(|i| d.queue(&format!("q{i}"), 4)).collect();
    let queues: &'static [Queue] = Box::leak(queues.into_boxed_slice());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = std::thread::scope(|s| {
        s.spawn(|| {
            for round in 0..10u32 {
                for (i, q) in queues.iter().enumerate() {
                    q.put(format!("{i}:{round}").as_bytes()).unwrap();
                }
            }
        });
        rt.block_on(async {
            let mut tasks = Vec::new();
            for t in 0..100 {
                let q = &queues[t % 10];
                tasks.push(tokio::spawn(async move { q.get_async().await }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.push(String::from_utf8(t.await.unwrap().unwrap()).unwrap());
            }
            all
        })
    });
    let mut got = got;
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 100, "every message exactly once");
}
