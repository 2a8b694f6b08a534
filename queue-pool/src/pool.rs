//! [`Pool`], the parent's handle: submit tasks, take results, close, join
//! or terminate; with its result handles and iterators, and [`cleanup`] for
//! a Ctrl-C handler.

use std::any::{TypeId, type_name};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::PoolBuilder;
use crate::error::{JoinError, SubmitError, TaskError, WaitError};
use crate::queues::remove_queue;
use crate::registry::{Registry, Signature, Task};
use crate::result::{TaskId, TaskResult, WorkerDeath};
use crate::state::{Phase, Run, Shared, State, TaskInfo};
use crate::supervisor::{dispatch, terminate_shared};

/// Pools alive in this process, for [`cleanup`].
static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Adds a pool to the ones [`cleanup`] stops.
pub(crate) fn register_live(shared: &Arc<Shared>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(shared));
}

/// Kills the workers and removes the queues of every pool of this process.
///
/// Meant for a Ctrl-C handler (see the [crate docs](crate#ctrl-c)); the
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
    /// Any task.
    Any,
    /// The task with this id.
    One(u64),
    /// Ids from `first` up to (not including) `end`.
    Range { first: u64, end: u64 },
}

impl Select {
    fn matches(self, id: u64) -> bool {
        match self {
            Select::Any => true,
            Select::One(x) => id == x,
            Select::Range { first, end } => (first..end).contains(&id),
        }
    }

    /// Whether a wanted result can still arrive.
    fn coming(self, st: &State) -> bool {
        match self {
            Select::One(x) => st.tasks.contains_key(&x),
            // Cheap over-approximation: something is still running.
            Select::Any | Select::Range { .. } => !st.tasks.is_empty(),
        }
    }
}

impl Pool {
    /// Starts building a pool that runs the tasks of `registry`.
    pub fn builder(registry: &Registry) -> PoolBuilder {
        PoolBuilder::new(registry)
    }

    /// The handle of a pool whose supervisor thread runs.
    pub(crate) fn new(shared: Arc<Shared>, supervisor: JoinHandle<()>) -> Pool {
        Pool {
            shared,
            supervisor: Some(supervisor),
        }
    }

    /// The state shared with the supervisor thread.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Checks that `task` is registered with these types.
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
        if sig.input != TypeId::of::<I>() || sig.output.id != TypeId::of::<O>() {
            return Err(SubmitError::WrongType {
                name: task.name.to_owned(),
                registered: format!("{} -> {}", sig.input_name, sig.output.name),
                submitted: format!("{} -> {}", type_name::<I>(), type_name::<O>()),
            });
        }
        Ok(*sig)
    }

    /// Encodes an input, refusing one larger than the pool takes.
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

    /// Submits encoded inputs under one lock, so their ids are consecutive;
    /// returns the range of their ids.
    fn submit_encoded(
        &self,
        name: &'static str,
        sig: Signature,
        inputs: Vec<Vec<u8>>,
    ) -> Result<Range<u64>, SubmitError> {
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
                    output: sig.output,
                    input,
                    attempt: 1,
                    timeout: None,
                },
            );
            st.pending.push_back(Run { id, attempt: 1 });
        }
        let end = st.next_id;
        dispatch(&self.shared.config, &mut st);
        Ok(first..end)
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
        let ids = self.submit_encoded(task.name, sig, vec![bytes])?;
        Ok(TaskId(ids.start))
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

    /// Encodes and submits every input.
    fn submit_all<I, O>(
        &self,
        task: Task<I, O>,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Range<u64>, SubmitError>
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
        let ids = self.submit_all(task, inputs)?;
        Ok(ids
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
        let ids = self.submit_all(task, inputs)?;
        Ok(Unordered {
            pool: self,
            left: ids.end - ids.start,
            first: ids.start,
            end: ids.end,
            _output: PhantomData,
        })
    }

    /// The first finished result `sel` wants, waiting for it until
    /// `deadline` (forever if `None`); `None` if it cannot come or time is up.
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

    /// Gives this task its own time limit, in place of the pool's
    /// [`task_timeout`](crate::PoolBuilder::task_timeout) (or where the pool
    /// has none): a run of it that lasts longer ends with
    /// [`TaskError::TimedOut`] (not retried), and its worker is killed and
    /// replaced. Measured from the start of each run, so it may be set while
    /// the task already runs; without effect once the task has finished.
    pub fn timeout(self, timeout: Duration) -> Self {
        if let Some(info) = self.pool.shared.lock().tasks.get_mut(&self.id.0) {
            info.timeout = Some(timeout);
        }
        self
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
        let wanted = Select::Range {
            first: self.first,
            end: self.end,
        };
        let r = self.pool.take(wanted, None)?;
        self.left -= 1;
        Some(((r.id.0 - self.first) as usize, r.output()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}
