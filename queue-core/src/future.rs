//! Async verbs (cargo feature `async`): [`Queue::get_async`],
//! [`Queue::put_async`] and [`Queue::get_lease_async`], futures that work on
//! any executor (tokio, smol, async-std, `futures::executor`) and need no
//! runtime: the waiting is done by one waiter thread per process (see
//! `waiter.rs`), started by the first future that has to wait.
//!
//! Each poll makes one non-blocking attempt (`try_get`, `try_put`,
//! `try_get_lease`); if it finds nothing, it registers on the queue's word
//! exactly as a blocking getter (or putter) does before it sleeps - mark the
//! word, count in, re-check - and only then leaves its `Waker` with the
//! waiter thread and returns `Pending`. So a future never holds a claim
//! across a `Pending`: dropping it at any await point takes nothing from the
//! queue and puts nothing into it (cancel-safe). A future that was woken and
//! then takes something passes the wake-up on, as a woken getter does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{GetError, PutError};
use crate::queue::{Lease, Queue};
use crate::wait::{WaitPoint, waiter};

/// Which side of the queue a future waits on.
#[derive(Clone, Copy)]
enum Side {
    Get,
    Put,
}

/// One future's registration: counted in on the side's word, with a watch
/// left at the waiter thread. Undone on every poll and on drop.
struct Registration<'q> {
    queue: &'q Queue,
    side: Side,
    /// Counted in as a sleeper on the side's word.
    counted: bool,
    /// The watch left with the waiter thread.
    watch: Option<u64>,
}

impl<'q> Registration<'q> {
    fn new(queue: &'q Queue, side: Side) -> Self {
        Registration {
            queue,
            side,
            counted: false,
            watch: None,
        }
    }

    fn point(&self) -> WaitPoint<'q> {
        match self.side {
            Side::Get => self.queue.getters(),
            Side::Put => self.queue.putters(),
        }
    }

    /// Counts out and removes the watch; returns whether we were counted in
    /// (that is, asleep: a wake-up may have been meant for us).
    fn cancel(&mut self) -> bool {
        if let Some(key) = self.watch.take() {
            waiter::remove(key);
        }
        let was = std::mem::replace(&mut self.counted, false);
        if was {
            self.point().unregister();
        }
        was
    }

    /// One poll: `attempt` (`None`: nothing now), registering and
    /// re-checking before it returns `Pending`.
    fn poll<T>(&mut self, cx: &mut Context<'_>, mut attempt: impl FnMut() -> Option<T>) -> Poll<T> {
        let woken = self.cancel();
        if let Some(v) = attempt() {
            if woken {
                // As a woken getter: others asleep may have work too.
                self.point().pass_on();
            }
            return Poll::Ready(v);
        }
        let wp = self.point();
        // SYNC: the SeqCst `fetch_or` in `register` before the re-check's
        // SeqCst loads in the attempt; pairs with the SeqCst publish (or
        // release) and then load of the word in `WaitPoint::notify_one`
        // (Dekker), as in `wait::wait_until`.
        let ticket = wp.register();
        self.counted = true;
        if let Some(v) = attempt() {
            self.cancel();
            return Poll::Ready(v);
        }
        self.watch = waiter::watch(wp.seq, ticket, cx.waker());
        Poll::Pending
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A future that polls `attempt` through a [`Registration`].
struct Waiting<'q, F> {
    reg: Registration<'q>,
    attempt: F,
}

impl<T, F: FnMut() -> Option<T> + Unpin> Future for Waiting<'_, F> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        this.reg.poll(cx, &mut this.attempt)
    }
}

impl Queue {
    /// Takes the next message, waiting without blocking the thread while
    /// the queue is empty (cargo feature `async`): the same results and
    /// errors as [`get`](Queue::get). Works on any executor.
    ///
    /// **Cancel-safe:** dropping the future before it completes takes no
    /// message; a message is taken only in the poll that returns it.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("mq-doc-get-async-{}", std::process::id()));
    /// use queue_core::Queue;
    /// let q = Queue::builder("jobs").dir(&dir).create()?;
    /// q.put(b"hello")?;
    /// let msg = futures_executor_block_on(q.get_async())?;
    /// assert_eq!(msg, b"hello");
    /// # fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // A minimal executor: any executor does.
    /// #     struct W(std::thread::Thread);
    /// #     impl std::task::Wake for W { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = std::sync::Arc::new(W(std::thread::current())).into();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # drop(q);
    /// # Queue::remove_in(&dir, "jobs")?;
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_async(&self) -> impl Future<Output = Result<Vec<u8>, GetError>> + Send + '_ {
        Waiting {
            reg: Registration::new(self, Side::Get),
            attempt: move || match self.try_get() {
                Err(GetError::Empty) => None,
                answer => Some(answer),
            },
        }
    }

    /// Puts a message, waiting without blocking the thread while the queue
    /// is full (cargo feature `async`): the same results and errors as
    /// [`put`](Queue::put).
    ///
    /// **Cancel-safe:** dropping the future before it completes puts
    /// nothing; the message goes in only in the poll that returns `Ok`.
    pub fn put_async<'a>(
        &'a self,
        msg: &'a [u8],
    ) -> impl Future<Output = Result<(), PutError>> + Send + 'a {
        Waiting {
            reg: Registration::new(self, Side::Put),
            attempt: move || match self.try_put(msg) {
                Err(PutError::Full) => None,
                answer => Some(answer),
            },
        }
    }

    /// Takes the next message under a lease, waiting without blocking the
    /// thread while the queue is empty (cargo feature `async`): the same
    /// results and errors as [`get_lease`](Queue::get_lease); then
    /// [`Lease::ack`].
    ///
    /// **Cancel-safe:** dropping the future before it completes leases
    /// nothing. (Dropping the [`Lease`] it returned, unacked, puts the
    /// message back, as always.)
    pub fn get_lease_async(&self) -> impl Future<Output = Result<Lease<'_>, GetError>> + Send + '_ {
        Waiting {
            reg: Registration::new(self, Side::Get),
            attempt: move || match self.try_get_lease() {
                Err(GetError::Empty) => None,
                answer => Some(answer),
            },
        }
    }
}
