//! The parent's bookkeeping, shared by the [`Pool`](crate::Pool) handle and
//! its supervisor thread: the fixed [`Config`], and the [`State`] behind one
//! mutex (tasks, workers, results nobody took yet) with the condition
//! variable that announces every change.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use queue_core::Queue;

use crate::registry::{OutputType, Signature};
use crate::result::{TaskResult, WorkerDeath};

/// The hook of [`PoolBuilder::on_worker_death`](crate::PoolBuilder::on_worker_death).
pub(crate) type DeathHook = dyn Fn(&WorkerDeath) + Send + Sync;

/// Everything fixed when the pool is made.
pub(crate) struct Config {
    /// Directory of the pool's queues.
    pub(crate) dir: PathBuf,
    /// `mqpool-<pid>-<n>`: the start of every queue name of this pool.
    pub(crate) prefix: String,
    /// Name of the results queue (workers to parent).
    pub(crate) results_name: String,
    /// Worker processes kept running.
    pub(crate) workers: usize,
    /// Runs of a task interrupted by a worker death that are tried again.
    pub(crate) max_retries: u32,
    /// The longest a task may run before its worker is killed.
    pub(crate) task_timeout: Option<Duration>,
    /// Tasks handed to one worker at a time (running + waiting).
    pub(crate) depth: usize,
    /// Largest encoded task (inbox message size).
    pub(crate) max_task_size: usize,
    /// Largest encoded result (results queue message size).
    pub(crate) max_result_size: usize,
    /// The program started as workers.
    pub(crate) program: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
    /// The registered tasks' types, to check submissions.
    pub(crate) signatures: BTreeMap<&'static str, Signature>,
    /// Called for each worker death.
    pub(crate) on_death: Option<Arc<DeathHook>>,
}

/// Where the pool is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
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

/// One run of a task: the task and which attempt this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// The task's id.
    pub(crate) id: u64,
    /// 1 for the first run; one more after each worker death that interrupted it.
    pub(crate) attempt: u32,
}

/// A run handed to a worker that died, found neither in its inbox nor
/// finished: its result is probably still on its way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limbo {
    /// The run.
    pub(crate) run: Run,
    /// When it counts as interrupted if no result came.
    pub(crate) deadline: Instant,
}

/// A task not finished yet.
pub(crate) struct TaskInfo {
    /// Its registered name.
    pub(crate) name: &'static str,
    /// Its output type, for the [`TaskResult`].
    pub(crate) output: OutputType,
    /// The encoded input, kept until the task ends so it can be handed out again.
    pub(crate) input: Vec<u8>,
    /// The attempt handed out last (1-based).
    pub(crate) attempt: u32,
    /// Its own run time limit ([`AsyncResult::timeout`](crate::AsyncResult::timeout)),
    /// instead of the pool's `task_timeout`.
    pub(crate) timeout: Option<Duration>,
}

/// A worker process and its inbox.
pub(crate) struct Worker {
    /// Pool-wide worker number (never reused).
    pub(crate) wid: u64,
    /// Its process id.
    pub(crate) pid: u32,
    /// The process, to `waitpid` and kill.
    pub(crate) child: Child,
    /// The parent's handle on the worker's inbox.
    pub(crate) inbox: Queue,
    /// The inbox's queue name.
    pub(crate) inbox_name: String,
    /// Whether its hello arrived.
    pub(crate) ready: bool,
    /// Runs put in its inbox whose result has not arrived.
    pub(crate) outstanding: Vec<Run>,
    /// When the first of `outstanding` (the one it runs) was handed out,
    /// or the result of the one before it arrived: what `task_timeout` is
    /// measured from.
    pub(crate) running_since: Option<Instant>,
}

/// Everything that changes while the pool runs.
pub(crate) struct State {
    /// Where the pool is in its life.
    pub(crate) phase: Phase,
    /// False after `close`.
    pub(crate) accepting: bool,
    /// The id of the next task submitted.
    pub(crate) next_id: u64,
    /// The number of the next worker started.
    pub(crate) next_wid: u64,
    /// Runs waiting for room in an inbox, oldest first.
    pub(crate) pending: VecDeque<Run>,
    /// Every task without a result yet.
    pub(crate) tasks: HashMap<u64, TaskInfo>,
    /// Results nobody took yet, in the order they finished.
    pub(crate) finished: VecDeque<TaskResult>,
    /// The worker processes now.
    pub(crate) workers: Vec<Worker>,
    /// Every worker death so far.
    pub(crate) deaths: Vec<WorkerDeath>,
    /// Runs of dead workers neither found in the inbox nor finished.
    pub(crate) limbo: Vec<Limbo>,
    /// Workers in a row that died before they were ready.
    pub(crate) failed_starts: u32,
    /// Queue names that exist and must be removed at the end.
    pub(crate) live_queues: BTreeSet<String>,
}

impl State {
    /// The state of a pool being started whose only queue is `results_name`.
    pub(crate) fn new(results_name: &str) -> State {
        State {
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
            live_queues: BTreeSet::from([results_name.to_owned()]),
        }
    }
}

/// What the [`Pool`](crate::Pool) handle and the supervisor thread share.
pub(crate) struct Shared {
    /// Fixed settings.
    pub(crate) config: Config,
    /// The changing state.
    pub(crate) state: Mutex<State>,
    /// Signalled whenever a task finishes or the phase changes.
    pub(crate) changed: Condvar,
}

impl Shared {
    /// Locks the state (a panic while it was held does not poison it for us).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a change, at most `timeout` (forever if `None`).
    pub(crate) fn wait<'a>(
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
