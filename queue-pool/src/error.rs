//! The pool's errors: one enum per operation ([`SpawnError`], [`SubmitError`],
//! [`WaitError`], [`JoinError`]) and [`TaskError`], why one task has no output.

use std::io;
use std::time::Duration;

use queue_core::{OpenError, RemoveError};
use thiserror::Error;

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
        "task {task:?} killed its worker: it died in all {attempts} attempt(s), last: {last}; not retried again (see max_retries)"
    )]
    WorkerDied {
        /// The task's name.
        task: String,
        /// Runs started and interrupted.
        attempts: u32,
        /// How the last worker ended.
        last: String,
    },
    /// The task ran longer than the pool's
    /// [`task_timeout`](crate::PoolBuilder::task_timeout) or its own
    /// ([`AsyncResult::timeout`](crate::AsyncResult::timeout)); its worker
    /// was killed and replaced.
    #[error(
        "task {task:?} ran longer than {} of {timeout:?}; its worker was killed (raise {}, or make the task shorter)",
        whose_timeout(.own),
        timeout_setter(.own)
    )]
    TimedOut {
        /// The task's name.
        task: String,
        /// The time limit it ran into.
        timeout: Duration,
        /// Whether the limit was the task's own, not the pool's.
        own: bool,
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
    /// [`Pool::next_result`](crate::Pool::next_result) while an [`AsyncResult`](crate::AsyncResult) waited for it).
    #[error("the result of task {id} was already taken")]
    Taken {
        /// The task.
        id: u64,
    },
}

/// Errors of [`PoolBuilder::spawn`](crate::PoolBuilder::spawn).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// This process is a pool worker that did not run the worker loop.
    #[error(
        "this process was started as a pool worker, but main() did not call queue_pool::run_worker_if_spawned first"
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

/// Errors of [`Pool::submit`](crate::Pool::submit) and the other ways to hand out tasks.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// [`Pool::close`](crate::Pool::close) was called: no more tasks are accepted.
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

/// Errors of [`Pool::next_result_timeout`](crate::Pool::next_result_timeout).
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

/// Errors of [`Pool::join`](crate::Pool::join).
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

/// Whose time limit a [`TaskError::TimedOut`] task ran into.
fn whose_timeout(own: &bool) -> &'static str {
    if *own {
        "its own timeout"
    } else {
        "the pool's task timeout"
    }
}

/// Where that limit is set.
fn timeout_setter(own: &bool) -> &'static str {
    if *own {
        "AsyncResult::timeout"
    } else {
        "PoolBuilder::task_timeout"
    }
}
