//! [`Select`]: waiting on many queues at once, for a worker that serves
//! several queues (jobs, control, shutdown) from one thread.
//!
//! `ready()` is a hint, as in crossbeam-channel: it says which queue had a
//! message (or was closed) a moment ago and takes nothing; the caller then
//! takes with `try_get` (or `try_get_lease`, `try_get_many`...), which may
//! find the message gone to another getter - then it asks again. The sleep
//! is `wait::wait_any`: the getter's protocol on every queue's word at once,
//! in one `futex_waitv` (see `wait/many.rs` and docs/design.md).

use std::time::{Duration, Instant};

use crate::queue::Queue;
use crate::wait::{self, Deadline, Look};

/// Waits until one of several queues has a message or is closed.
///
/// Queues are added with [`add`](Select::add), which returns their index
/// (0, 1, ... in the order added). [`ready`](Select::ready) blocks until
/// one of them has a message to take or is closed (and drained), and
/// returns its index; it takes nothing. Then take with a `try_` verb, which
/// may still find the queue empty if another getter was quicker: ask again.
/// A blocked `ready` costs no CPU: it sleeps in the kernel on every queue at
/// once (Linux `futex_waitv`; see docs/design.md for more than 128 queues or
/// an older kernel).
///
/// A closed and drained queue is always ready (its `try_get` answers
/// [`GetError::Closed`](crate::GetError::Closed)): [`remove`](Select::remove)
/// it once you are done with it. When several queues are ready, the search
/// starts one queue further each call, so a busy queue cannot starve the
/// others.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mq-doc-select-{}", std::process::id()));
/// use queue_core::{GetError, Queue, Select};
/// let jobs = Queue::builder("jobs").dir(&dir).create()?;
/// let control = Queue::builder("control").dir(&dir).create()?;
/// control.put(b"stop")?;
///
/// let mut sel = Select::new();
/// let j = sel.add(&jobs);
/// let c = sel.add(&control);
/// let i = sel.ready();
/// assert_eq!(i, c);
/// match control.try_get() {
///     Ok(msg) => assert_eq!(msg, b"stop"),
///     Err(GetError::Empty) => {} // another getter was quicker: ask again
///     Err(e) => return Err(e.into()),
/// }
/// assert_eq!(sel.try_ready(), None);
/// # let _ = j;
/// # drop((jobs, control));
/// # Queue::remove_in(&dir, "jobs")?;
/// # Queue::remove_in(&dir, "control")?;
/// # std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Select<'q> {
    /// The queues by index; `None` where one was removed (indices stay).
    queues: Vec<Option<&'q Queue>>,
    /// Where the next search starts (it moves on by one each call).
    start: usize,
}

impl<'q> Select<'q> {
    /// An empty selection.
    pub fn new() -> Self {
        Select::default()
    }

    /// Adds a queue; returns its index (0, 1, ... in the order added).
    /// The same queue may be added twice; both indices then report it.
    pub fn add(&mut self, queue: &'q Queue) -> usize {
        self.queues.push(Some(queue));
        self.queues.len() - 1
    }

    /// Stops selecting the queue at `index` (the other indices stay as
    /// they are). Returns whether it was there.
    pub fn remove(&mut self, index: usize) -> bool {
        self.queues
            .get_mut(index)
            .is_some_and(|q| q.take().is_some())
    }

    /// How many queues are selected.
    pub fn len(&self) -> usize {
        self.queues.iter().flatten().count()
    }

    /// Whether no queue is selected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks until a selected queue has a message or is closed and
    /// drained; returns its index. A hint: take with a `try_` verb, which
    /// may find the message gone to another getter. With no queue selected
    /// it blocks forever.
    pub fn ready(&mut self) -> usize {
        self.ready_until(Deadline::Forever)
            .expect("a wait without deadline returns only when a queue is ready")
    }

    /// Like [`ready`](Self::ready), waiting at most `timeout`: `None` when
    /// it passed with no queue ready.
    pub fn ready_timeout(&mut self, timeout: Duration) -> Option<usize> {
        self.ready_until(Deadline::after(timeout))
    }

    /// Like [`ready`](Self::ready), waiting until `deadline` at most.
    pub fn ready_deadline(&mut self, deadline: Instant) -> Option<usize> {
        self.ready_until(Deadline::Until(deadline))
    }

    /// The index of a queue that is ready now, if any; never waits.
    pub fn try_ready(&mut self) -> Option<usize> {
        self.ready_until(Deadline::Now)
    }

    /// The one readiness wait behind the four verbs.
    fn ready_until(&mut self, deadline: Deadline) -> Option<usize> {
        // The selected queues, starting one further than last time.
        let mut order: Vec<(usize, &Queue)> = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.map(|q| (i, q)))
            .collect();
        if !order.is_empty() {
            self.start = self.start.wrapping_add(1);
            let at = self.start % order.len();
            order.rotate_left(at);
        }
        let points: Vec<_> = order.iter().map(|(_, q)| q.getters()).collect();
        let found = wait::wait_any(
            &points,
            deadline,
            |i, look| order[i].1.get_ready(look == Look::Patient),
            || {
                for (_, q) in &order {
                    q.recover_if_due();
                }
            },
        );
        found.map(|i| order[i].0)
    }
}
