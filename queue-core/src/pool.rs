//! A process pool like Python's `multiprocessing.Pool`, built on [`Queue`].
//!
//! Rust cannot send a closure to another process, so the pool does what
//! Python's *spawn* start method does: it starts the current program again
//! as N worker processes, and the workers run **named tasks** with
//! serde-serialisable inputs and outputs. Both sides learn the tasks from the
//! same [`Registry`]; a [`Task`] constant names one task and fixes its types,
//! so submitting the wrong input type does not compile.
//!
//! ```no_run
//! use queue_core::pool::{self, Pool, Registry, Task};
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
//!     pool::run_worker_if_spawned(&registry());
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
//! * A worker takes a task from its inbox with [`Queue::get_lease`], runs it
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
//!     queue_core::pool::cleanup(); // kill every pool's workers, remove its queues
//!     std::process::exit(130);
//! }
//! ```

use std::any::{TypeId, type_name};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::{GetError, OpenError, PutError, RemoveError};
use crate::queue::Queue;

// ------------------------------------------------------------------ constants

/// Environment variable that marks a process as a pool worker. Its value is
/// `1 <parent pid> <worker id> <inbox name> <results name>` (protocol
/// version first; queue names never contain spaces).
pub const WORKER_ENV: &str = "MQ_POOL_WORKER";

/// Environment variable holding the queue directory of the worker's pool.
pub const WORKER_DIR_ENV: &str = "MQ_POOL_DIR";

/// Prefix of every pool queue name.
const NAME_PREFIX: &str = "mqpool-";

/// Largest [`PoolBuilder::prefetch`].
const MAX_PREFETCH: usize = 64;

/// How often the supervisor looks at its children when no result arrives.
const POLL: Duration = Duration::from_millis(50);

/// How long a worker waits for a task before checking that its parent lives.
const WORKER_POLL: Duration = Duration::from_secs(1);

/// How long a task that a dead worker had finished (but whose result was not
/// read yet) may take to show up before it is treated as interrupted.
const LIMBO: Duration = Duration::from_secs(2);

/// Workers in a row that die before they are ready before the pool gives up.
const MAX_FAILED_STARTS: u32 = 3;

/// How long `join` waits for workers to exit after their inboxes are closed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Default largest encoded task (name + input) in bytes.
pub const DEFAULT_MAX_TASK_SIZE: usize = 64 * 1024;

/// Default largest encoded result in bytes.
pub const DEFAULT_MAX_RESULT_SIZE: usize = 64 * 1024;

/// Exit code of a worker whose parent is gone or whose environment is wrong.
const EXIT_ORPHAN: i32 = 3;

/// Exit code of a worker that cannot use its queues.
const EXIT_QUEUE: i32 = 4;

// ---------------------------------------------------------------- task names

/// A task's name together with its input and output types.
///
/// Declare one constant per task and use it both to [register](Registry::register)
/// the function and to [submit](Pool::submit) work, so the types always match:
///
/// ```
/// use queue_core::pool::Task;
/// const WORD_COUNT: Task<String, usize> = Task::new("word-count");
/// assert_eq!(WORD_COUNT.name(), "word-count");
/// ```
pub struct Task<I, O> {
    name: &'static str,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> Task<I, O> {
    /// Names a task taking `I` and returning `O`.
    pub const fn new(name: &'static str) -> Self {
        Task {
            name,
            _types: PhantomData,
        }
    }

    /// The task's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<I, O> Clone for Task<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Task<I, O> {}

impl<I, O> fmt::Debug for Task<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Task({:?}: {} -> {})",
            self.name,
            type_name::<I>(),
            type_name::<O>()
        )
    }
}

/// The types of a registered task, checked when a task is submitted.
#[derive(Debug, Clone, Copy)]
struct Signature {
    input: TypeId,
    output: TypeId,
    input_name: &'static str,
    output_name: &'static str,
}

/// A task function with its types erased: input bytes in, outcome out.
type Handler = dyn Fn(&[u8]) -> Outcome + Send + Sync;

/// The tasks a pool can run, by name. Build the same registry in the parent
/// (to submit) and in the workers (to run): the usual way is a function
/// called in both places.
///
/// ```
/// use queue_core::pool::{Registry, Task};
/// const SQUARE: Task<u64, u64> = Task::new("square");
/// const SHOUT: Task<String, String> = Task::new("shout");
///
/// fn registry() -> Registry {
///     Registry::new()
///         .register(SQUARE, |x: u64| Ok::<_, String>(x * x))
///         .register(SHOUT, |s: String| -> Result<String, std::io::Error> { Ok(s.to_uppercase()) })
/// }
/// assert_eq!(registry().names().collect::<Vec<_>>(), ["shout", "square"]);
/// ```
#[derive(Default)]
pub struct Registry {
    tasks: BTreeMap<&'static str, (Signature, Box<Handler>)>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.tasks
                    .iter()
                    .map(|(name, (sig, _))| (name, (sig.input_name, sig.output_name))),
            )
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `task`, run by `f`. The function's error (anything printable) is
    /// sent back as [`TaskError::Failed`] with its message. Registering a
    /// name again replaces the earlier function.
    pub fn register<I, O, E, F>(mut self, task: Task<I, O>, f: F) -> Registry
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        E: fmt::Display,
        F: Fn(I) -> Result<O, E> + Send + Sync + 'static,
    {
        let sig = Signature {
            input: TypeId::of::<I>(),
            output: TypeId::of::<O>(),
            input_name: type_name::<I>(),
            output_name: type_name::<O>(),
        };
        let handler = move |bytes: &[u8]| -> Outcome {
            let input: I = match postcard::from_bytes(bytes) {
                Ok(input) => input,
                Err(e) => return Outcome::BadInput(e.to_string()),
            };
            match f(input) {
                Ok(output) => match postcard::to_allocvec(&output) {
                    Ok(bytes) => Outcome::Ok(bytes),
                    Err(e) => Outcome::Failed(format!("cannot encode the result: {e}")),
                },
                Err(e) => Outcome::Failed(e.to_string()),
            }
        };
        self.tasks.insert(task.name, (sig, Box::new(handler)));
        self
    }

    /// The registered task names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    /// Runs task `name` on encoded input, catching panics.
    fn run(&self, name: &str, input: &[u8]) -> Outcome {
        let Some((_, handler)) = self.tasks.get(name) else {
            return Outcome::UnknownTask(name.to_owned());
        };
        IN_TASK.with(|t| t.set(true));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| handler(input)));
        IN_TASK.with(|t| t.set(false));
        outcome.unwrap_or_else(|payload| {
            let message = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| panic_text(payload.as_ref()));
            Outcome::Panicked(message)
        })
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

// ------------------------------------------------------------- wire format

/// A task as it travels in an inbox (postcard).
#[derive(Serialize, Deserialize)]
struct TaskMsg<'a> {
    /// Task id, unique in its pool.
    id: u64,
    /// 1 for the first run; bumped each time a worker died running it.
    attempt: u32,
    /// Registered task name.
    name: &'a str,
    /// The postcard-encoded input.
    #[serde(borrow)]
    input: &'a [u8],
}

/// What a worker says on the results queue (postcard).
#[derive(Serialize, Deserialize)]
enum Report {
    /// The worker loop is running.
    Hello { wid: u64, pid: u32 },
    /// A task ran to its end.
    Done {
        wid: u64,
        pid: u32,
        id: u64,
        attempt: u32,
        micros: u64,
        outcome: Outcome,
    },
}

/// How a task ended, as sent by the worker.
#[derive(Serialize, Deserialize)]
enum Outcome {
    Ok(Vec<u8>),
    Failed(String),
    Panicked(String),
    BadInput(String),
    UnknownTask(String),
    ResultTooLarge { len: u64, max: u64 },
}

// ------------------------------------------------------------ public results

/// A submitted task, numbered from 0 in submission order within its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u64);

impl TaskId {
    /// The number (0 for the first task submitted to the pool).
    pub fn index(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a task has no output.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task function returned an error; this is its message.
    #[error("{message}")]
    Failed {
        /// The error's text.
        message: String,
    },
    /// The task function panicked.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic message and where it happened.
        message: String,
    },
    /// Every worker that ran it died (killed, crashed, aborted); it was not retried again.
    #[error(
        "its worker died in all {attempts} attempt(s), last: {last}; not retried again (see max_retries)"
    )]
    WorkerDied {
        /// Runs started and interrupted.
        attempts: u32,
        /// How the last worker ended.
        last: String,
    },
    /// The worker could not decode the input.
    #[error(
        "the worker cannot decode the input: {reason} (do parent and workers run the same program?)"
    )]
    BadInput {
        /// What postcard said.
        reason: String,
    },
    /// The worker program has no task of that name.
    #[error(
        "the worker has no task {name:?} (does it call run_worker_if_spawned with the same registry?)"
    )]
    UnknownTask {
        /// The task name.
        name: String,
    },
    /// The encoded result did not fit the results queue.
    #[error("the result is {len} bytes, the pool takes at most {max} (raise max_result_size)")]
    ResultTooLarge {
        /// Encoded size of the result.
        len: u64,
        /// The pool's limit.
        max: u64,
    },
    /// The output was asked for as another type than the task returns.
    #[error("the task returns {actual}, not {requested}")]
    WrongType {
        /// The task's output type.
        actual: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// The output bytes did not decode.
    #[error("cannot decode the result: {reason}")]
    BadOutput {
        /// What postcard said.
        reason: String,
    },
    /// The pool stopped (terminated, or broken) before the task finished.
    #[error("the pool stopped before the task finished: {reason}")]
    PoolStopped {
        /// Why the pool stopped.
        reason: String,
    },
    /// Somebody else took this task's result already (for example
    /// [`Pool::next_result`] while an [`AsyncResult`] waited for it).
    #[error("the result of task {id} was already taken")]
    Taken {
        /// The task.
        id: u64,
    },
}

/// The end of one task: which worker ran it, for how long, and its output or error.
#[derive(Debug, Clone)]
pub struct TaskResult {
    /// The task.
    pub id: TaskId,
    /// The task's registered name.
    pub task: &'static str,
    /// Pid of the worker that ran the last attempt (0 if none finished it).
    pub pid: u32,
    /// Time the task function ran in the worker (zero if it never finished).
    pub duration: Duration,
    /// Attempts started: 1 unless workers died running it.
    pub attempts: u32,
    outcome: Result<Vec<u8>, TaskError>,
    output: (TypeId, &'static str),
}

impl TaskResult {
    /// Whether the task returned `Ok`.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The error, if the task did not succeed.
    pub fn error(&self) -> Option<&TaskError> {
        self.outcome.as_ref().err()
    }

    /// The output, decoded as `O` (which must be the task's output type).
    pub fn output<O: DeserializeOwned + 'static>(&self) -> Result<O, TaskError> {
        let bytes = self.outcome.as_ref().map_err(Clone::clone)?;
        if TypeId::of::<O>() != self.output.0 {
            return Err(TaskError::WrongType {
                actual: self.output.1,
                requested: type_name::<O>(),
            });
        }
        postcard::from_bytes(bytes).map_err(|e| TaskError::BadOutput {
            reason: e.to_string(),
        })
    }
}

/// A worker process that ended while the pool was running.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerDeath {
    /// Its pid.
    pub pid: u32,
    /// How it ended ("killed by signal 9 (SIGKILL)", "exit status 3", ...).
    pub status: String,
    /// The task it was running, which was retried or reported failed.
    pub task: Option<TaskId>,
    /// Whether it died before it was ready to take tasks.
    pub before_ready: bool,
}

impl fmt::Display for WorkerDeath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} {}", self.pid, self.status)?;
        if self.before_ready {
            write!(f, " before it was ready")?;
        }
        if let Some(task) = self.task {
            write!(f, " while running task {task}")?;
        }
        Ok(())
    }
}

// --------------------------------------------------------------------- errors

/// Errors of [`PoolBuilder::spawn`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// This process is a pool worker that did not run the worker loop.
    #[error(
        "this process was started as a pool worker, but main() did not call queue_core::pool::run_worker_if_spawned first"
    )]
    NotAWorkerEntry,
    /// A builder setting cannot work.
    #[error("invalid pool settings: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The path of the running program is unknown.
    #[error("cannot find the program to start as workers: {source}")]
    CurrentExe {
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A queue of the pool could not be created.
    #[error("cannot create the pool's queues: {source}")]
    Queue {
        /// What the queue said.
        #[source]
        source: OpenError,
    },
    /// The supervisor thread could not be started.
    #[error("cannot start the pool's supervisor thread: {source}")]
    Thread {
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// Workers could not be started, or died before they were ready.
    #[error("pool workers failed to start: {reason}")]
    WorkersFailed {
        /// What happened.
        reason: String,
    },
    /// Workers did not report ready in time.
    #[error("pool workers were not ready after {timeout:?} (is the machine overloaded?)")]
    StartTimeout {
        /// The limit.
        timeout: Duration,
    },
}

/// Errors of [`Pool::submit`] and the other ways to hand out tasks.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// [`Pool::close`] was called: no more tasks are accepted.
    #[error("the pool is closed: no more tasks are accepted")]
    Closed,
    /// The pool was terminated or broke down.
    #[error("the pool stopped: {reason}")]
    Stopped {
        /// Why.
        reason: String,
    },
    /// The registry has no task of that name.
    #[error("task {name:?} is not registered (registered: {known})")]
    UnknownTask {
        /// The name.
        name: String,
        /// The registered names.
        known: String,
    },
    /// The name is registered with other types.
    #[error("task {name:?} is registered as {registered}, but was submitted as {submitted}")]
    WrongType {
        /// The name.
        name: String,
        /// Registered `input -> output`.
        registered: String,
        /// Submitted `input -> output`.
        submitted: String,
    },
    /// The input could not be encoded.
    #[error("cannot encode the input of task {name:?}: {reason}")]
    Encode {
        /// The task.
        name: String,
        /// What postcard said.
        reason: String,
    },
    /// The encoded task is larger than the pool takes.
    #[error(
        "task {name:?} is {len} bytes encoded, the pool takes at most {max} (raise max_task_size, or send a path instead of the data)"
    )]
    TooLarge {
        /// The task.
        name: String,
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Errors of [`Pool::next_result_timeout`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// No task finished in time.
    #[error("timed out waiting for a task result")]
    Timeout,
    /// No task is outstanding: there is nothing to wait for.
    #[error("no task is outstanding")]
    Idle,
}

/// Errors of [`Pool::join`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JoinError {
    /// A queue of the pool could not be removed.
    #[error("cannot remove the pool's queue {name:?}: {source}")]
    Cleanup {
        /// The queue.
        name: String,
        /// What went wrong.
        #[source]
        source: RemoveError,
    },
}

// --------------------------------------------------------------- the worker

thread_local! {
    /// Set while a task function runs on this thread.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    /// The last panic message of a task, from the worker's panic hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Set once this process runs the worker loop.
static IN_WORKER: AtomicBool = AtomicBool::new(false);

struct WorkerSpec {
    parent: u32,
    wid: u64,
    inbox: String,
    results: String,
}

fn parse_spec(value: &OsString) -> Option<WorkerSpec> {
    let value = value.to_str()?;
    let mut parts = value.split(' ');
    if parts.next()? != "1" {
        return None;
    }
    let spec = WorkerSpec {
        parent: parts.next()?.parse().ok()?,
        wid: parts.next()?.parse().ok()?,
        inbox: parts.next()?.to_owned(),
        results: parts.next()?.to_owned(),
    };
    parts.next().is_none().then_some(spec)
}

fn parent_pid() -> u32 {
    rustix::process::getppid()
        .map(|p| p.as_raw_pid() as u32)
        .unwrap_or(0)
}

/// Runs the worker loop if this process was started by a [`Pool`] as a
/// worker, and then exits the process; otherwise returns at once.
///
/// Call it first thing in `main`, before parsing arguments or starting
/// threads, with the same tasks the parent registers. A worker exits with
/// status 0 when its pool is joined, and is killed with its parent.
pub fn run_worker_if_spawned(registry: &Registry) {
    let Some(value) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let code = match parse_spec(&value) {
        Some(spec) => worker_main(registry, &spec),
        None => {
            eprintln!(
                "mq pool worker: {WORKER_ENV}={value:?} is not a pool worker specification; exiting"
            );
            EXIT_ORPHAN
        }
    };
    std::process::exit(code)
}

fn worker_main(registry: &Registry, spec: &WorkerSpec) -> i32 {
    IN_WORKER.store(true, Ordering::Relaxed);
    // Die with the parent. The flag is cleared for the children of this
    // process, and only covers deaths from now on: the check below closes the
    // window in which the parent died before this call.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if parent_pid() != spec.parent {
        eprintln!(
            "mq pool worker {}: started for parent process {}, which is gone or is not my parent; exiting \
             (a task that starts this program again must remove {WORKER_ENV} from its environment)",
            std::process::id(),
            spec.parent
        );
        return EXIT_ORPHAN;
    }
    let Some(dir) = std::env::var_os(WORKER_DIR_ENV).map(PathBuf::from) else {
        eprintln!("mq pool worker: {WORKER_DIR_ENV} is not set; exiting");
        return EXIT_ORPHAN;
    };
    let open = |name: &str| {
        Queue::open_in(&dir, name).map_err(|e| {
            eprintln!("mq pool worker {}: {e}", std::process::id());
        })
    };
    let (Ok(inbox), Ok(results)) = (open(&spec.inbox), open(&spec.results)) else {
        return EXIT_QUEUE;
    };
    let pid = std::process::id();
    panic::set_hook(Box::new(move |info| {
        let mut message = panic_text(info.payload());
        if let Some(at) = info.location() {
            message = format!("{message} (at {}:{})", at.file(), at.line());
        }
        if IN_TASK.with(Cell::get) {
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(message));
        } else {
            eprintln!("mq pool worker {pid} panicked: {message}");
        }
    }));
    let send = |report: &Report| -> bool {
        let bytes = match postcard::to_allocvec(report) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("mq pool worker {pid}: cannot encode a report: {e}");
                return false;
            }
        };
        match results.put(&bytes) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("mq pool worker {pid}: cannot send a result: {e}");
                false
            }
        }
    };
    if !send(&Report::Hello { wid: spec.wid, pid }) {
        return EXIT_QUEUE;
    }
    let max_report = results.max_msg_size();
    loop {
        let lease = match inbox.get_lease_timeout(WORKER_POLL) {
            Ok(lease) => lease,
            Err(GetError::Timeout) => {
                if parent_pid() != spec.parent {
                    return EXIT_ORPHAN;
                }
                continue;
            }
            Err(GetError::Closed) => return 0,
            Err(e) => {
                eprintln!("mq pool worker {pid}: {e}");
                return EXIT_QUEUE;
            }
        };
        let Ok(task) = postcard::from_bytes::<TaskMsg<'_>>(&lease) else {
            // Not a task of this protocol. Exiting without acking puts it
            // back, and the supervisor treats it like a crash: bounded retries.
            eprintln!("mq pool worker {pid}: undecodable task message; exiting");
            return EXIT_QUEUE;
        };
        let started = Instant::now();
        let outcome = registry.run(task.name, task.input);
        let micros = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        let report = fit_report(
            Report::Done {
                wid: spec.wid,
                pid,
                id: task.id,
                attempt: task.attempt,
                micros,
                outcome,
            },
            max_report,
        );
        // The result is queued before the lease is acked: dying in between
        // runs the task again (at-least-once), never loses it.
        if !send(&report) {
            return EXIT_QUEUE;
        }
        if let Err(e) = lease.ack() {
            eprintln!("mq pool worker {pid}: {e}");
            return EXIT_QUEUE;
        }
    }
}

/// Shrinks a report that does not fit the results queue: a big output
/// becomes [`Outcome::ResultTooLarge`], a long message is cut.
fn fit_report(report: Report, max: usize) -> Report {
    let len = postcard::to_allocvec(&report).map_or(usize::MAX, |b| b.len());
    if len <= max {
        return report;
    }
    let Report::Done {
        wid,
        pid,
        id,
        attempt,
        micros,
        outcome,
    } = report
    else {
        return report;
    };
    let room = max.saturating_sub(128).max(16);
    let cut = |s: String| -> String {
        if s.len() <= room {
            return s;
        }
        let mut end = room.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    };
    let outcome = match outcome {
        Outcome::Ok(_) => Outcome::ResultTooLarge {
            len: len as u64,
            max: max as u64,
        },
        Outcome::Failed(s) => Outcome::Failed(cut(s)),
        Outcome::Panicked(s) => Outcome::Panicked(cut(s)),
        Outcome::BadInput(s) => Outcome::BadInput(cut(s)),
        Outcome::UnknownTask(s) => Outcome::UnknownTask(cut(s)),
        o @ Outcome::ResultTooLarge { .. } => o,
    };
    Report::Done {
        wid,
        pid,
        id,
        attempt,
        micros,
        outcome,
    }
}

// ---------------------------------------------------------------- the parent

/// Settings for a [`Pool`]; made by [`Pool::builder`].
pub struct PoolBuilder {
    signatures: BTreeMap<&'static str, Signature>,
    workers: usize,
    max_retries: u32,
    prefetch: usize,
    dir: Option<PathBuf>,
    program: Option<PathBuf>,
    args: Option<Vec<OsString>>,
    max_task_size: usize,
    max_result_size: usize,
    start_timeout: Duration,
    on_death: Option<Arc<DeathHook>>,
}

type DeathHook = dyn Fn(&WorkerDeath) + Send + Sync;

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("tasks", &self.signatures.keys().collect::<Vec<_>>())
            .field("workers", &self.workers)
            .field("max_retries", &self.max_retries)
            .field("dir", &self.dir)
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl PoolBuilder {
    /// Number of worker processes (default: the number of CPUs; 1 to 1024).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// How often a task is tried again after the worker running it died
    /// (default 2, so at most 3 runs). Task errors and panics are not retried.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Tasks a worker may have waiting in its inbox besides the one it runs
    /// (default 0, at most 64). More saves a round trip between tiny tasks;
    /// 0 balances best, since a task only goes to a worker that is free.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }

    /// Directory of the pool's queues (default: `$MQ_DIR`, else `/dev/shm`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The program started as workers (default: the running program). It
    /// must call [`run_worker_if_spawned`] with a registry holding the tasks
    /// submitted to the pool.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Arguments given to the workers (default: the arguments of this process,
    /// as Python's spawn does; workers ignore them).
    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Largest encoded task, name and input, in bytes (default 64 KiB).
    pub fn max_task_size(mut self, bytes: usize) -> Self {
        self.max_task_size = bytes;
        self
    }

    /// Largest encoded result in bytes (default 64 KiB).
    pub fn max_result_size(mut self, bytes: usize) -> Self {
        self.max_result_size = bytes;
        self
    }

    /// How long [`spawn`](Self::spawn) waits for the workers to be ready (default 30 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Called (on the pool's supervisor thread) each time a worker dies
    /// while the pool runs, after its replacement was started.
    pub fn on_worker_death(mut self, hook: impl Fn(&WorkerDeath) + Send + Sync + 'static) -> Self {
        self.on_death = Some(Arc::new(hook));
        self
    }

    /// Creates the queues, starts the workers and waits until they are ready.
    pub fn spawn(self) -> Result<Pool, SpawnError> {
        if std::env::var_os(WORKER_ENV).is_some() && !IN_WORKER.load(Ordering::Relaxed) {
            return Err(SpawnError::NotAWorkerEntry);
        }
        if !(1..=1024).contains(&self.workers) {
            return Err(SpawnError::InvalidConfig {
                reason: format!("{} workers (allowed: 1 to 1024)", self.workers),
            });
        }
        if self.prefetch > MAX_PREFETCH {
            return Err(SpawnError::InvalidConfig {
                reason: format!("prefetch {} (allowed: 0 to {MAX_PREFETCH})", self.prefetch),
            });
        }
        for (what, size) in [
            ("max_task_size", self.max_task_size),
            ("max_result_size", self.max_result_size),
        ] {
            if size < 1024 {
                return Err(SpawnError::InvalidConfig {
                    reason: format!("{what} is {size} bytes (at least 1024)"),
                });
            }
        }
        let program = match self.program {
            Some(p) => p,
            None => {
                let exe =
                    std::env::current_exe().map_err(|source| SpawnError::CurrentExe { source })?;
                // Rebuilt while running (the path now says "... (deleted)"):
                // the kernel still has the running file.
                if exe.exists() {
                    exe
                } else {
                    PathBuf::from("/proc/self/exe")
                }
            }
        };
        let args = self
            .args
            .unwrap_or_else(|| std::env::args_os().skip(1).collect());
        let dir = crate::segment::queue_dir(self.dir.as_deref());
        sweep_stale(&dir);

        static POOLS: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            POOLS.fetch_add(1, Ordering::Relaxed)
        );
        let config = Config {
            results_name: format!("{prefix}-results"),
            prefix,
            dir,
            workers: self.workers,
            max_retries: self.max_retries,
            depth: self.prefetch + 1,
            max_task_size: self.max_task_size,
            max_result_size: self.max_result_size,
            program,
            args,
            signatures: self.signatures,
            on_death: self.on_death,
        };
        let results = create_queue(
            &config,
            &config.results_name,
            (4 * config.workers).max(64),
            config.max_result_size,
        )
        .map_err(|source| SpawnError::Queue { source })?;
        let mut live_queues = BTreeSet::new();
        live_queues.insert(config.results_name.clone());
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State {
                phase: Phase::Starting,
                accepting: true,
                next_id: 0,
                next_wid: 0,
                pending: VecDeque::new(),
                tasks: HashMap::new(),
                finished: VecDeque::new(),
                workers: Vec::new(),
                deaths: Vec::new(),
                limbo: Vec::new(),
                failed_starts: 0,
                live_queues,
            }),
            changed: Condvar::new(),
        });
        register_live(&shared);
        let supervisor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("mq-pool-supervisor".into())
                .spawn(move || supervise(&shared, results))
        };
        let supervisor = match supervisor {
            Ok(handle) => handle,
            Err(source) => {
                terminate_shared(&shared, "the supervisor thread could not start");
                return Err(SpawnError::Thread { source });
            }
        };
        let pool = Pool {
            shared,
            supervisor: Some(supervisor),
        };
        // Wait for every worker's hello (or the first failure).
        let deadline = Instant::now().checked_add(self.start_timeout);
        let mut st = pool.shared.lock();
        loop {
            match &st.phase {
                Phase::Starting => {}
                Phase::Broken(reason) => {
                    let reason = reason.clone();
                    drop(st);
                    drop(pool);
                    return Err(SpawnError::WorkersFailed { reason });
                }
                _ => break,
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        drop(st);
                        drop(pool);
                        return Err(SpawnError::StartTimeout {
                            timeout: self.start_timeout,
                        });
                    }
                },
                None => None,
            };
            st = pool.shared.wait(st, left);
        }
        drop(st);
        Ok(pool)
    }
}

/// Everything fixed when the pool is made.
struct Config {
    dir: PathBuf,
    prefix: String,
    results_name: String,
    workers: usize,
    max_retries: u32,
    /// Tasks handed to one worker at a time (running + waiting).
    depth: usize,
    max_task_size: usize,
    max_result_size: usize,
    program: PathBuf,
    args: Vec<OsString>,
    signatures: BTreeMap<&'static str, Signature>,
    on_death: Option<Arc<DeathHook>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Workers are being started; `spawn` waits.
    Starting,
    /// Taking and running tasks.
    Running,
    /// `join` was called: finishing the tasks, then stopping the workers.
    Stopping,
    /// Joined: workers exited, queues removed.
    Stopped,
    /// Killed by drop, `terminate` or `cleanup`.
    Terminated,
    /// Workers cannot be started; every task failed.
    Broken(String),
}

/// A task not finished yet.
struct TaskInfo {
    name: &'static str,
    output: (TypeId, &'static str),
    /// The encoded input, kept until the task ends so it can be handed out again.
    input: Vec<u8>,
    /// The attempt handed out last (1-based).
    attempt: u32,
}

/// A worker process and its inbox.
struct Worker {
    /// Pool-wide worker number (never reused).
    wid: u64,
    pid: u32,
    child: Child,
    /// The parent's handle on the worker's inbox.
    inbox: Queue,
    inbox_name: String,
    /// Whether its hello arrived.
    ready: bool,
    /// Tasks put in its inbox whose result has not arrived: (id, attempt).
    outstanding: Vec<(u64, u32)>,
}

struct State {
    phase: Phase,
    /// False after `close`.
    accepting: bool,
    next_id: u64,
    next_wid: u64,
    /// Tasks waiting for room in an inbox: (id, attempt), oldest first.
    pending: VecDeque<(u64, u32)>,
    /// Every task without a result yet.
    tasks: HashMap<u64, TaskInfo>,
    /// Results nobody took yet, in the order they finished.
    finished: VecDeque<TaskResult>,
    workers: Vec<Worker>,
    deaths: Vec<WorkerDeath>,
    /// Tasks of dead workers neither found in the inbox nor finished: their
    /// result is probably still in the results queue. (id, attempt, deadline).
    limbo: Vec<(u64, u32, Instant)>,
    /// Workers in a row that died before they were ready.
    failed_starts: u32,
    /// Queue names that exist and must be removed at the end.
    live_queues: BTreeSet<String>,
}

struct Shared {
    config: Config,
    state: Mutex<State>,
    /// Signalled whenever a task finishes or the phase changes.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        match timeout {
            Some(t) => {
                self.changed
                    .wait_timeout(guard, t)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => self.changed.wait(guard).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// Pools alive in this process, for [`cleanup`].
static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

fn register_live(shared: &Arc<Shared>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(shared));
}

/// Kills the workers and removes the queues of every pool of this process.
///
/// Meant for a Ctrl-C handler (see the [module docs](self#ctrl-c)); the
/// pools stay usable only in the sense that their calls return: tasks end
/// with [`TaskError::PoolStopped`] and submits fail.
pub fn cleanup() {
    let pools: Vec<Arc<Shared>> = LIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for shared in pools {
        terminate_shared(&shared, "the pool was cleaned up (Ctrl-C?)");
    }
}

/// A pool of worker processes running registered tasks.
///
/// Made by [`Pool::builder`]. Methods take `&self`, so one pool can be used
/// from several threads. Dropping a pool without [`join`](Pool::join) kills
/// its workers and removes its queues, like Python's `terminate()`.
pub struct Pool {
    shared: Arc<Shared>,
    supervisor: Option<JoinHandle<()>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("queues", &self.shared.config.prefix)
            .field("workers", &self.worker_pids())
            .finish_non_exhaustive()
    }
}

/// Which finished results a waiter wants.
#[derive(Clone, Copy)]
enum Select {
    Any,
    One(u64),
    Range(u64, u64),
}

impl Select {
    fn matches(self, id: u64) -> bool {
        match self {
            Select::Any => true,
            Select::One(x) => id == x,
            Select::Range(lo, hi) => (lo..hi).contains(&id),
        }
    }

    /// Whether a wanted result can still arrive.
    fn coming(self, st: &State) -> bool {
        match self {
            Select::One(x) => st.tasks.contains_key(&x),
            // Cheap over-approximation: something is still running.
            Select::Any | Select::Range(..) => !st.tasks.is_empty(),
        }
    }
}

impl Pool {
    /// Starts building a pool that runs the tasks of `registry`.
    pub fn builder(registry: &Registry) -> PoolBuilder {
        PoolBuilder {
            signatures: registry
                .tasks
                .iter()
                .map(|(name, (sig, _))| (*name, *sig))
                .collect(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_retries: 2,
            prefetch: 0,
            dir: None,
            program: None,
            args: None,
            max_task_size: DEFAULT_MAX_TASK_SIZE,
            max_result_size: DEFAULT_MAX_RESULT_SIZE,
            start_timeout: Duration::from_secs(30),
            on_death: None,
        }
    }

    fn check<I: 'static, O: 'static>(&self, task: Task<I, O>) -> Result<Signature, SubmitError> {
        let Some(sig) = self.shared.config.signatures.get(task.name) else {
            return Err(SubmitError::UnknownTask {
                name: task.name.to_owned(),
                known: self
                    .shared
                    .config
                    .signatures
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if sig.input != TypeId::of::<I>() || sig.output != TypeId::of::<O>() {
            return Err(SubmitError::WrongType {
                name: task.name.to_owned(),
                registered: format!("{} -> {}", sig.input_name, sig.output_name),
                submitted: format!("{} -> {}", type_name::<I>(), type_name::<O>()),
            });
        }
        Ok(*sig)
    }

    fn encode_input<I: Serialize>(&self, name: &str, input: &I) -> Result<Vec<u8>, SubmitError> {
        let bytes = postcard::to_allocvec(input).map_err(|e| SubmitError::Encode {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        // Worst-case envelope: id, attempt and two lengths as varints.
        let len = bytes.len() + name.len() + 32;
        if len > self.shared.config.max_task_size {
            return Err(SubmitError::TooLarge {
                name: name.to_owned(),
                len,
                max: self.shared.config.max_task_size,
            });
        }
        Ok(bytes)
    }

    /// Submits encoded inputs under one lock, so their ids are consecutive.
    fn submit_encoded(
        &self,
        name: &'static str,
        sig: Signature,
        inputs: Vec<Vec<u8>>,
    ) -> Result<(u64, u64), SubmitError> {
        let mut st = self.shared.lock();
        match &st.phase {
            Phase::Broken(reason) => {
                return Err(SubmitError::Stopped {
                    reason: reason.clone(),
                });
            }
            Phase::Terminated => {
                return Err(SubmitError::Stopped {
                    reason: "the pool was terminated".into(),
                });
            }
            _ if !st.accepting => return Err(SubmitError::Closed),
            _ => {}
        }
        let first = st.next_id;
        for input in inputs {
            let id = st.next_id;
            st.next_id += 1;
            st.tasks.insert(
                id,
                TaskInfo {
                    name,
                    output: (sig.output, sig.output_name),
                    input,
                    attempt: 1,
                },
            );
            st.pending.push_back((id, 1));
        }
        let end = st.next_id;
        dispatch(&self.shared.config, &mut st);
        Ok((first, end))
    }

    /// Hands a task to the pool and returns at once (Python's
    /// `apply_async`); its result comes from [`next_result`](Self::next_result),
    /// [`wait`](Self::wait) or [`join`](Self::join).
    pub fn submit<I, O>(&self, task: Task<I, O>, input: &I) -> Result<TaskId, SubmitError>
    where
        I: Serialize + 'static,
        O: 'static,
    {
        let sig = self.check(task)?;
        let bytes = self.encode_input(task.name, input)?;
        let (first, _) = self.submit_encoded(task.name, sig, vec![bytes])?;
        Ok(TaskId(first))
    }

    /// Like [`submit`](Self::submit), returning a handle whose
    /// [`get`](AsyncResult::get) waits for the typed output.
    pub fn apply_async<I, O>(
        &self,
        task: Task<I, O>,
        input: &I,
    ) -> Result<AsyncResult<'_, O>, SubmitError>
    where
        I: Serialize + 'static,
        O: 'static,
    {
        Ok(AsyncResult {
            pool: self,
            id: self.submit(task, input)?,
            _output: PhantomData,
        })
    }

    fn submit_all<I, O>(
        &self,
        task: Task<I, O>,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<(u64, u64), SubmitError>
    where
        I: Serialize + 'static,
        O: 'static,
    {
        let sig = self.check(task)?;
        let encoded = inputs
            .into_iter()
            .map(|input| self.encode_input(task.name, &input))
            .collect::<Result<Vec<_>, _>>()?;
        self.submit_encoded(task.name, sig, encoded)
    }

    /// Runs `task` on every input and returns the outcomes in input order
    /// (Python's `map`). Blocks until all are done.
    pub fn map<I, O>(
        &self,
        task: Task<I, O>,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Vec<Result<O, TaskError>>, SubmitError>
    where
        I: Serialize + 'static,
        O: DeserializeOwned + 'static,
    {
        let (first, end) = self.submit_all(task, inputs)?;
        Ok((first..end)
            .map(|id| match self.take(Select::One(id), None) {
                Some(r) => r.output(),
                None => Err(TaskError::Taken { id }),
            })
            .collect())
    }

    /// Runs `task` on every input and yields `(input index, outcome)` as the
    /// tasks finish (Python's `imap_unordered`).
    pub fn imap_unordered<I, O>(
        &self,
        task: Task<I, O>,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Unordered<'_, O>, SubmitError>
    where
        I: Serialize + 'static,
        O: DeserializeOwned + 'static,
    {
        let (first, end) = self.submit_all(task, inputs)?;
        Ok(Unordered {
            pool: self,
            first,
            end,
            left: end - first,
            _output: PhantomData,
        })
    }

    fn take(&self, sel: Select, deadline: Option<Instant>) -> Option<TaskResult> {
        let mut st = self.shared.lock();
        loop {
            if let Some(pos) = st.finished.iter().position(|r| sel.matches(r.id.0)) {
                return st.finished.remove(pos);
            }
            if !sel.coming(&st) {
                return None;
            }
            let timeout = match deadline {
                Some(d) => Some(d.checked_duration_since(Instant::now())?),
                None => None,
            };
            st = self.shared.wait(st, timeout);
        }
    }

    /// The next result to finish, waiting for it; `None` when no task is
    /// outstanding and every result was taken.
    pub fn next_result(&self) -> Option<TaskResult> {
        self.take(Select::Any, None)
    }

    /// Like [`next_result`](Self::next_result), waiting at most `timeout`.
    pub fn next_result_timeout(&self, timeout: Duration) -> Result<TaskResult, WaitError> {
        let deadline = Instant::now().checked_add(timeout);
        match self.take(Select::Any, deadline) {
            Some(r) => Ok(r),
            None if self.outstanding() == 0 => Err(WaitError::Idle),
            None => Err(WaitError::Timeout),
        }
    }

    /// An iterator over [`next_result`](Self::next_result): every result as it finishes.
    pub fn results(&self) -> Results<'_> {
        Results { pool: self }
    }

    /// Waits for the result of task `id`; `None` if it is unknown or its
    /// result was taken already.
    pub fn wait(&self, id: TaskId) -> Option<TaskResult> {
        self.take(Select::One(id.0), None)
    }

    /// Tasks submitted and not finished yet.
    pub fn outstanding(&self) -> usize {
        self.shared.lock().tasks.len()
    }

    /// Pids of the current workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.lock().workers.iter().map(|w| w.pid).collect()
    }

    /// Workers that died so far (each was replaced).
    pub fn worker_deaths(&self) -> Vec<WorkerDeath> {
        self.shared.lock().deaths.clone()
    }

    /// Names of the pool's queues that exist now (results queue and inboxes).
    pub fn queue_names(&self) -> Vec<String> {
        self.shared.lock().live_queues.iter().cloned().collect()
    }

    /// The directory holding the pool's queues.
    pub fn dir(&self) -> &Path {
        &self.shared.config.dir
    }

    /// Accepts no more tasks (Python's `close`); submitted ones still run.
    pub fn close(&self) {
        self.shared.lock().accepting = false;
    }

    /// Waits for every submitted task, stops the workers and removes the
    /// queues. Returns the results nobody took yet, in finishing order.
    pub fn join(mut self) -> Result<Vec<TaskResult>, JoinError> {
        {
            let mut st = self.shared.lock();
            st.accepting = false;
            if matches!(st.phase, Phase::Starting | Phase::Running) {
                st.phase = Phase::Stopping;
            }
        }
        self.shared.changed.notify_all();
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
        let mut st = self.shared.lock();
        let mut first_error = None;
        let names: Vec<String> = std::mem::take(&mut st.live_queues).into_iter().collect();
        for name in names {
            if let Err(e) = remove_queue(&self.shared.config.dir, &name) {
                first_error.get_or_insert(JoinError::Cleanup { name, source: e });
            }
        }
        let left = std::mem::take(&mut st.finished).into();
        match first_error {
            Some(e) => Err(e),
            None => Ok(left),
        }
    }

    /// Kills the workers at once and removes the queues (Python's
    /// `terminate`); unfinished tasks end with [`TaskError::PoolStopped`].
    pub fn terminate(self) {
        drop(self);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        terminate_shared(&self.shared, "the pool was terminated");
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
    }
}

/// The handle of one task from [`Pool::apply_async`].
#[derive(Debug)]
pub struct AsyncResult<'p, O> {
    pool: &'p Pool,
    id: TaskId,
    _output: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned + 'static> AsyncResult<'_, O> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Whether the result is there (so `get` would not block).
    pub fn ready(&self) -> bool {
        let st = self.pool.shared.lock();
        !st.tasks.contains_key(&self.id.0)
    }

    /// Waits for the task and returns its output.
    pub fn get(self) -> Result<O, TaskError> {
        match self.pool.wait(self.id) {
            Some(r) => r.output(),
            None => Err(TaskError::Taken { id: self.id.0 }),
        }
    }
}

/// Iterator of [`Pool::results`].
#[derive(Debug)]
pub struct Results<'p> {
    pool: &'p Pool,
}

impl Iterator for Results<'_> {
    type Item = TaskResult;
    fn next(&mut self) -> Option<TaskResult> {
        self.pool.next_result()
    }
}

/// Iterator of [`Pool::imap_unordered`]: `(input index, outcome)`.
#[derive(Debug)]
pub struct Unordered<'p, O> {
    pool: &'p Pool,
    first: u64,
    end: u64,
    left: u64,
    _output: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned + 'static> Iterator for Unordered<'_, O> {
    type Item = (usize, Result<O, TaskError>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let r = self.pool.take(Select::Range(self.first, self.end), None)?;
        self.left -= 1;
        Some(((r.id.0 - self.first) as usize, r.output()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

// ---------------------------------------------------------- the supervisor

fn create_queue(
    config: &Config,
    name: &str,
    capacity: usize,
    max_msg: usize,
) -> Result<Queue, OpenError> {
    let build = || {
        Queue::builder(name)
            .dir(&config.dir)
            .capacity(capacity)
            .max_msg_size(max_msg)
            .max_participants((config.workers + 16).max(64))
            .mode(0o600)
            .create()
    };
    match build() {
        // Only this process makes names with its pid: a file of that name
        // was left by an earlier process that had the same pid.
        Err(OpenError::AlreadyExists { .. }) => {
            let _ = Queue::remove_in(&config.dir, name);
            build()
        }
        other => other,
    }
}

fn remove_queue(dir: &Path, name: &str) -> Result<(), RemoveError> {
    match Queue::remove_in(dir, name) {
        Err(RemoveError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Removes queues of pools whose process is gone and that nobody uses.
fn sweep_stale(dir: &Path) {
    let Ok(names) = crate::segment::list(Some(dir)) else {
        return;
    };
    for name in names {
        let Some(pid) = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if pid.as_raw_pid() as u32 == std::process::id() || !process_gone(pid) {
            continue;
        }
        // The creator is gone; remove only if no other process is attached
        // (a pid from another pid namespace looks dead from here).
        let Ok(q) = Queue::open_in(dir, &name) else {
            continue;
        };
        let in_use = q.stats().participants.iter().any(|p| p.alive && !p.is_self);
        drop(q);
        if !in_use {
            let _ = Queue::remove_in(dir, &name);
        }
    }
}

/// Whether `pid` names no running process: none at all, or a zombie (a
/// dead process nobody reaped yet, common in containers).
fn process_gone(pid: rustix::process::Pid) -> bool {
    if rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH) {
        return true;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_pid())) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| matches!(state, 'Z' | 'X'))
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(sig) = status.signal() {
        let name = match sig {
            1 => " (SIGHUP)",
            2 => " (SIGINT)",
            4 => " (SIGILL)",
            6 => " (SIGABRT)",
            7 => " (SIGBUS)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            13 => " (SIGPIPE)",
            15 => " (SIGTERM)",
            _ => "",
        };
        format!("was killed by signal {sig}{name}")
    } else {
        format!("ended ({status})")
    }
}

fn spawn_worker(config: &Config, st: &mut State) -> Result<(), String> {
    let wid = st.next_wid;
    st.next_wid += 1;
    let name = format!("{}-w{wid}", config.prefix);
    let inbox = create_queue(config, &name, config.depth, config.max_task_size)
        .map_err(|e| format!("cannot create a worker inbox: {e}"))?;
    st.live_queues.insert(name.clone());
    let spawned = Command::new(&config.program)
        .args(&config.args)
        .env(
            WORKER_ENV,
            format!(
                "1 {} {wid} {name} {}",
                std::process::id(),
                config.results_name
            ),
        )
        .env(WORKER_DIR_ENV, &config.dir)
        .stdin(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => {
            st.workers.push(Worker {
                wid,
                pid: child.id(),
                child,
                inbox,
                inbox_name: name,
                ready: false,
                outstanding: Vec::new(),
            });
            Ok(())
        }
        Err(e) => {
            drop(inbox);
            let _ = remove_queue(&config.dir, &name);
            st.live_queues.remove(&name);
            Err(format!(
                "cannot start {} as a worker: {e}",
                config.program.display()
            ))
        }
    }
}

/// Puts waiting tasks into inboxes with room, least busy worker first.
fn dispatch(config: &Config, st: &mut State) {
    let State {
        pending,
        tasks,
        workers,
        ..
    } = st;
    while let Some(&(id, attempt)) = pending.front() {
        let Some(info) = tasks.get(&id) else {
            pending.pop_front(); // finished meanwhile (a late result)
            continue;
        };
        let Some(w) = workers
            .iter_mut()
            .filter(|w| w.outstanding.len() < config.depth)
            .min_by_key(|w| w.outstanding.len())
        else {
            return;
        };
        let msg = TaskMsg {
            id,
            attempt,
            name: info.name,
            input: &info.input,
        };
        let Ok(bytes) = postcard::to_allocvec(&msg) else {
            pending.pop_front();
            continue;
        };
        match w.inbox.try_put(&bytes) {
            Ok(()) => {
                w.outstanding.push((id, attempt));
                pending.pop_front();
            }
            // A full inbox means our count is off; try again later.
            Err(PutError::Full) => return,
            Err(_) => return,
        }
    }
}

fn finish(
    st: &mut State,
    id: u64,
    pid: u32,
    duration: Duration,
    attempts: u32,
    outcome: Result<Vec<u8>, TaskError>,
) {
    if let Some(info) = st.tasks.remove(&id) {
        st.finished.push_back(TaskResult {
            id: TaskId(id),
            task: info.name,
            pid,
            duration,
            attempts,
            outcome,
            output: info.output,
        });
    }
}

fn handle_report(st: &mut State, bytes: &[u8]) {
    let Ok(report) = postcard::from_bytes::<Report>(bytes) else {
        return;
    };
    match report {
        Report::Hello { wid, .. } => {
            if let Some(w) = st.workers.iter_mut().find(|w| w.wid == wid) {
                w.ready = true;
                st.failed_starts = 0;
            }
        }
        Report::Done {
            wid,
            pid,
            id,
            attempt,
            micros,
            outcome,
        } => {
            if let Some(w) = st.workers.iter_mut().find(|w| w.wid == wid) {
                w.outstanding.retain(|&t| t != (id, attempt));
            }
            let outcome = match outcome {
                Outcome::Ok(bytes) => Ok(bytes),
                Outcome::Failed(message) => Err(TaskError::Failed { message }),
                Outcome::Panicked(message) => Err(TaskError::Panicked { message }),
                Outcome::BadInput(reason) => Err(TaskError::BadInput { reason }),
                Outcome::UnknownTask(name) => Err(TaskError::UnknownTask { name }),
                Outcome::ResultTooLarge { len, max } => Err(TaskError::ResultTooLarge { len, max }),
            };
            finish(st, id, pid, Duration::from_micros(micros), attempt, outcome);
        }
    }
}

/// Takes every report waiting now.
fn drain_results(results: &Queue, buf: &mut Vec<u8>, st: &mut State) {
    while results.try_get_into(buf).is_ok() {
        handle_report(st, buf);
    }
}

/// What the dead worker's inbox still held: the tasks, and whether the first
/// one is the task it was running (its unacked lease came back).
fn recover_inbox(config: &Config, name: &str) -> (Vec<(u64, u32)>, bool) {
    // A fresh handle repairs the dead worker's slots as it attaches.
    let Ok(q) = Queue::open_in(&config.dir, name) else {
        return (Vec::new(), false);
    };
    let running = q.stats().redelivered > 0;
    let mut tasks = Vec::new();
    let mut buf = Vec::new();
    while q.try_get_into(&mut buf).is_ok() {
        if let Ok(msg) = postcard::from_bytes::<TaskMsg<'_>>(&buf) {
            tasks.push((msg.id, msg.attempt));
        }
    }
    (tasks, running)
}

/// Charges a run that a worker death interrupted: try again, or give up.
fn interrupted(
    config: &Config,
    st: &mut State,
    id: u64,
    attempt: u32,
    pid: u32,
    how: &str,
) -> Option<(u64, u32)> {
    if !st.tasks.contains_key(&id) {
        return None;
    }
    if attempt > config.max_retries {
        let outcome = Err(TaskError::WorkerDied {
            attempts: attempt,
            last: format!("worker {pid} {how}"),
        });
        finish(st, id, pid, Duration::ZERO, attempt, outcome);
        None
    } else {
        if let Some(info) = st.tasks.get_mut(&id) {
            info.attempt = attempt + 1;
        }
        Some((id, attempt + 1))
    }
}

fn handle_death(config: &Config, st: &mut State, mut w: Worker, status: ExitStatus) -> WorkerDeath {
    let how = describe(status);
    let (recovered, running) = recover_inbox(config, &w.inbox_name);
    drop(w.inbox);
    let _ = remove_queue(&config.dir, &w.inbox_name);
    st.live_queues.remove(&w.inbox_name);

    let mut again = Vec::new();
    let mut charged = None;
    for (k, &(id, attempt)) in recovered.iter().enumerate() {
        w.outstanding.retain(|&t| t != (id, attempt));
        if !st.tasks.contains_key(&id) {
            continue; // its result arrived already
        }
        if k == 0 && running {
            charged = Some(TaskId(id));
            again.extend(interrupted(config, st, id, attempt, w.pid, &how));
        } else {
            again.push((id, attempt));
        }
    }
    // Handed to the worker, not in its inbox, no result yet: the result is
    // most likely still on its way; give it a moment (see `expire_limbo`).
    let deadline = Instant::now() + LIMBO;
    for &(id, attempt) in &w.outstanding {
        if st.tasks.contains_key(&id) {
            st.limbo.push((id, attempt, deadline));
        }
    }
    for t in again.into_iter().rev() {
        st.pending.push_front(t);
    }
    if !w.ready {
        st.failed_starts += 1;
    }
    WorkerDeath {
        pid: w.pid,
        status: how,
        task: charged,
        before_ready: !w.ready,
    }
}

fn expire_limbo(config: &Config, st: &mut State) {
    let now = Instant::now();
    let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.limbo)
        .into_iter()
        .partition(|&(_, _, deadline)| deadline <= now);
    st.limbo = keep;
    for (id, attempt, _) in due {
        if let Some(t) = interrupted(config, st, id, attempt, 0, "died and its result never came") {
            st.pending.push_front(t);
        }
    }
}

/// Stops everything because workers cannot be started.
fn break_pool(st: &mut State, reason: String) {
    for w in &mut st.workers {
        let _ = w.child.kill();
    }
    for mut w in st.workers.drain(..) {
        let _ = w.child.wait();
    }
    let ids: Vec<u64> = st.tasks.keys().copied().collect();
    for id in ids {
        let outcome = Err(TaskError::PoolStopped {
            reason: reason.clone(),
        });
        finish(st, id, 0, Duration::ZERO, 0, outcome);
    }
    st.pending.clear();
    st.limbo.clear();
    st.accepting = false;
    st.phase = Phase::Broken(reason);
}

fn supervise(shared: &Shared, results: Queue) {
    let config = &shared.config;
    {
        let mut st = shared.lock();
        for _ in 0..config.workers {
            if let Err(reason) = spawn_worker(config, &mut st) {
                break_pool(&mut st, reason);
                break;
            }
        }
    }
    shared.changed.notify_all();
    let mut buf = Vec::new();
    loop {
        let got = results.get_into_timeout(&mut buf, POLL);
        let mut deaths = Vec::new();
        let done = {
            let mut st = shared.lock();
            match got {
                Ok(_) => {
                    handle_report(&mut st, &buf);
                    drain_results(&results, &mut buf, &mut st);
                }
                Err(GetError::Timeout | GetError::Empty) => {}
                Err(e) => {
                    break_pool(&mut st, format!("the results queue failed: {e}"));
                }
            }
            if matches!(st.phase, Phase::Terminated | Phase::Broken(_)) {
                true
            } else {
                deaths = reap_workers(config, &mut st, &results, &mut buf);
                expire_limbo(config, &mut st);
                dispatch(config, &mut st);
                if st.phase == Phase::Starting
                    && st.workers.len() == config.workers
                    && st.workers.iter().all(|w| w.ready)
                {
                    st.phase = Phase::Running;
                }
                match st.phase {
                    Phase::Stopping => st.tasks.is_empty(),
                    Phase::Starting | Phase::Running => false,
                    _ => true,
                }
            }
        };
        if let Some(hook) = &config.on_death {
            for d in &deaths {
                hook(d);
            }
        }
        shared.changed.notify_all();
        if done {
            break;
        }
    }
    let mut st = shared.lock();
    if st.phase == Phase::Stopping {
        // Graceful end: closing an inbox makes its worker exit after the last task.
        let mut workers = std::mem::take(&mut st.workers);
        drop(st);
        for w in &workers {
            let _ = w.inbox.close();
        }
        let deadline = Instant::now() + EXIT_GRACE;
        for w in &mut workers {
            loop {
                match w.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = w.child.kill();
                        let _ = w.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        drop(workers);
        st = shared.lock();
        if st.phase == Phase::Stopping {
            st.phase = Phase::Stopped;
        }
    }
    drop(results);
    drop(st);
    shared.changed.notify_all();
}

/// Finds workers that ended, recovers their tasks and replaces them.
fn reap_workers(
    config: &Config,
    st: &mut State,
    results: &Queue,
    buf: &mut Vec<u8>,
) -> Vec<WorkerDeath> {
    let mut deaths = Vec::new();
    let mut i = 0;
    while i < st.workers.len() {
        let status = match st.workers[i].child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) | Err(_) => {
                i += 1;
                continue;
            }
        };
        let w = st.workers.remove(i);
        // Everything the dead worker sent is in the results queue now: read
        // it first, so that its finished tasks are not run again.
        drain_results(results, buf, st);
        let death = handle_death(config, st, w, status);
        st.deaths.push(death.clone());
        deaths.push(death);
        if st.phase == Phase::Starting {
            let last = deaths.last().map(ToString::to_string).unwrap_or_default();
            let hint = if status.success() {
                " (does main() call queue_core::pool::run_worker_if_spawned first?)"
            } else {
                ""
            };
            break_pool(st, format!("{last}{hint}"));
            return deaths;
        }
        if st.failed_starts >= MAX_FAILED_STARTS {
            let last = deaths.last().map(ToString::to_string).unwrap_or_default();
            break_pool(
                st,
                format!(
                    "{MAX_FAILED_STARTS} workers in a row died before they were ready; last: {last}"
                ),
            );
            return deaths;
        }
        if let Err(reason) = spawn_worker(config, st) {
            st.failed_starts += 1;
            if st.workers.is_empty() || st.failed_starts >= MAX_FAILED_STARTS {
                break_pool(st, reason);
                return deaths;
            }
        }
    }
    deaths
}

/// Kills the workers and removes the queues; unfinished tasks end with
/// [`TaskError::PoolStopped`].
fn terminate_shared(shared: &Shared, reason: &str) {
    let mut st = shared.lock();
    if matches!(st.phase, Phase::Stopped | Phase::Terminated) {
        return;
    }
    if !matches!(st.phase, Phase::Broken(_)) {
        break_pool(&mut st, reason.to_owned());
    }
    st.phase = Phase::Terminated;
    let names: Vec<String> = std::mem::take(&mut st.live_queues).into_iter().collect();
    for name in names {
        let _ = remove_queue(&shared.config.dir, &name);
    }
    drop(st);
    shared.changed.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: Task<u64, u64> = Task::new("square");
    const FAIL: Task<String, ()> = Task::new("fail");
    const BOOM: Task<(), ()> = Task::new("boom");

    fn registry() -> Registry {
        Registry::new()
            .register(SQUARE, |x: u64| Ok::<_, String>(x * x))
            .register(FAIL, |m: String| Err::<(), _>(m))
            .register(BOOM, |()| -> Result<(), String> { panic!("kaboom") })
    }

    fn run<I: Serialize, O>(task: Task<I, O>, input: &I) -> Outcome {
        registry().run(task.name(), &postcard::to_allocvec(input).unwrap())
    }

    #[test]
    fn registry_runs_tasks_and_catches_panics() {
        match run(SQUARE, &7) {
            Outcome::Ok(bytes) => assert_eq!(postcard::from_bytes::<u64>(&bytes).unwrap(), 49),
            _ => panic!("square failed"),
        }
        assert!(matches!(run(FAIL, &"nope".to_string()), Outcome::Failed(m) if m == "nope"));
        assert!(matches!(run(BOOM, &()), Outcome::Panicked(m) if m.contains("kaboom")));
        assert!(matches!(
            registry().run("missing", &[]),
            Outcome::UnknownTask(n) if n == "missing"
        ));
        assert!(matches!(
            registry().run("square", &[0xff; 11]),
            Outcome::BadInput(_)
        ));
    }

    #[test]
    fn worker_spec_round_trips_and_rejects_garbage() {
        let spec = parse_spec(&OsString::from("1 42 7 mqpool-1-0-w7 mqpool-1-0-results")).unwrap();
        assert_eq!((spec.parent, spec.wid), (42, 7));
        assert_eq!(spec.inbox, "mqpool-1-0-w7");
        assert_eq!(spec.results, "mqpool-1-0-results");
        for bad in ["", "2 42 7 a b", "1 x 7 a b", "1 42 7 a", "1 42 7 a b c"] {
            assert!(parse_spec(&OsString::from(bad)).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn oversized_reports_are_cut_to_fit() {
        let big = Report::Done {
            wid: 1,
            pid: 2,
            id: 3,
            attempt: 1,
            micros: 4,
            outcome: Outcome::Ok(vec![7; 5000]),
        };
        let fitted = fit_report(big, 1024);
        assert!(postcard::to_allocvec(&fitted).unwrap().len() <= 1024);
        assert!(matches!(
            fitted,
            Report::Done {
                outcome: Outcome::ResultTooLarge { max: 1024, .. },
                ..
            }
        ));
        let long = Report::Done {
            wid: 1,
            pid: 2,
            id: 3,
            attempt: 1,
            micros: 4,
            outcome: Outcome::Failed("é".repeat(3000)),
        };
        let fitted = fit_report(long, 1024);
        assert!(postcard::to_allocvec(&fitted).unwrap().len() <= 1024);
    }

    #[test]
    fn results_decode_only_as_their_own_type() {
        let r = TaskResult {
            id: TaskId(0),
            task: "square",
            pid: 1,
            duration: Duration::ZERO,
            attempts: 1,
            outcome: Ok(postcard::to_allocvec(&9u64).unwrap()),
            output: (TypeId::of::<u64>(), type_name::<u64>()),
        };
        assert_eq!(r.output::<u64>(), Ok(9));
        assert!(matches!(
            r.output::<String>(),
            Err(TaskError::WrongType { .. })
        ));
    }

    #[test]
    fn spawn_refuses_bad_settings() {
        let err = Pool::builder(&registry()).workers(0).spawn().unwrap_err();
        assert!(err.to_string().contains("0 workers"), "{err}");
        let err = Pool::builder(&registry())
            .max_task_size(10)
            .spawn()
            .unwrap_err();
        assert!(err.to_string().contains("max_task_size"), "{err}");
    }
}
