//! A process pool like Python's `multiprocessing.Pool`, built on [`queue_core::Queue`].
//!
//! Rust cannot send a closure to another process, so the pool does what
//! Python's *spawn* start method does: it starts the current program again
//! as N worker processes, and the workers run **named tasks** with
//! serde-serialisable inputs and outputs. Both sides learn the tasks from the
//! same [`Registry`]; a [`Task`] constant names one task and fixes its types,
//! so submitting the wrong input type does not compile.
//!
//! ```no_run
//! use queue_pool::{Pool, Registry, Task};
//!
//! // One constant per task: its name and its input and output types.
//! const SQUARE: Task<u64, u64> = Task::new("square");
//!
//! fn registry() -> Registry {
//!     Registry::new().register(SQUARE, |x: u64| -> Result<u64, String> {
//!         x.checked_mul(x).ok_or_else(|| format!("{x} squared overflows"))
//!     })
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // First thing in main: in a worker process this runs the worker loop
//!     // and exits; in the parent it returns at once.
//!     queue_pool::run_worker_if_spawned(&registry());
//!
//!     let pool = Pool::builder(&registry()).workers(3).spawn()?;
//!     // `map`: every result, in input order.
//!     let squares = pool.map(SQUARE, 1..=10)?;
//!     assert_eq!(squares[2], Ok(9));
//!     // `submit` (Python's `apply_async`) and results as they finish.
//!     for x in [5, u64::MAX] {
//!         pool.submit(SQUARE, &x)?;
//!     }
//!     while let Some(r) = pool.next_result() {
//!         println!("task {} ran in pid {} for {:?}: {:?}", r.id, r.pid, r.duration, r.output::<u64>());
//!     }
//!     pool.join()?; // waits for the workers, removes the queues
//!     Ok(())
//! }
//! ```
//!
//! # How it works
//! * The parent creates one **results queue** (workers to parent) and one
//!   small **inbox** queue per worker (parent to that worker), with private
//!   unique names (`mqpool-<pid>-<n>-results`, `mqpool-<pid>-<n>-w<k>`), and
//!   starts the workers from a supervisor thread. The supervisor hands a task
//!   to a worker only when the worker is free (or, with
//!   [`PoolBuilder::prefetch`], has room for a task in waiting), so a slow
//!   task never holds back others while another worker is idle.
//! * A worker takes a task from its inbox with [`Queue::get_lease`](queue_core::Queue::get_lease), runs it
//!   (a panic is caught), puts the result on the results queue, and only then
//!   acks the lease. Whatever kills the worker, its task stays in the inbox.
//! * The supervisor notices a dead worker (`waitpid`), reads what the worker
//!   left in its inbox (the in-flight task comes back because its lease was
//!   never acked), starts a replacement, and hands the tasks out again. The
//!   task that was running when the worker died counts one attempt; after
//!   [`PoolBuilder::max_retries`] retries it is reported as
//!   [`TaskError::WorkerDied`] instead of being tried again. Every task ends
//!   with exactly one [`TaskResult`]: the pool never hangs on a dead worker.
//! * An error returned by a task comes back as [`TaskError::Failed`] with
//!   its message, a panic as [`TaskError::Panicked`]; neither is retried
//!   (the task ran to its end) and neither harms the pool.
//! * Workers die with their parent: they ask the kernel for `SIGKILL` when
//!   the supervisor thread that started them ends, which it does last, or
//!   with the parent process (`PR_SET_PDEATHSIG`), and check `getppid()` at
//!   start and every second.
//! * The queues are removed by [`Pool::join`], on drop (which kills the
//!   workers, like Python's `terminate`), when spawning fails, and by
//!   [`cleanup`], which a Ctrl-C handler should call. Queues left behind by a
//!   pool whose process was killed outright are removed by the next pool
//!   created in the same directory.
//!
//! `docs/pool.md` has the full story: the protocol, the crash windows and
//! what each one costs.
//!
//! # Ctrl-C
//! The library installs no signal handler. Programs call [`cleanup`] from
//! their own, for example `ctrlc::set_handler(on_ctrl_c)` with the `ctrlc`
//! crate (as the demos do):
//!
//! ```no_run
//! fn on_ctrl_c() {
//!     queue_pool::cleanup(); // kill every pool's workers, remove its queues
//!     std::process::exit(130);
//! }
//! ```

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod builder;
mod error;
mod pool;
mod queues;
mod registry;
mod result;
mod state;
mod supervisor;
#[cfg(doctest)]
mod tutorial;
mod wire;
mod worker;

pub use builder::{DEFAULT_MAX_RESULT_SIZE, DEFAULT_MAX_TASK_SIZE, PoolBuilder};
pub use error::{JoinError, SpawnError, SubmitError, TaskError, WaitError};
pub use pool::{AsyncResult, Pool, Results, Unordered, cleanup};
pub use registry::{Registry, Task};
pub use result::{TaskId, TaskResult, WorkerDeath};
pub use worker::{WORKER_DIR_ENV, WORKER_ENV, run_worker_if_spawned};
