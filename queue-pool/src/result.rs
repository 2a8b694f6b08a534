//! What the pool reports: [`TaskId`], [`TaskResult`] (the end of one task)
//! and [`WorkerDeath`] (a worker that ended while the pool ran).

use std::any::{TypeId, type_name};
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::TaskError;
use crate::registry::OutputType;

/// A submitted task, numbered from 0 in submission order within its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub(crate) u64);

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
    /// The encoded output, or why there is none.
    pub(crate) outcome: Result<Vec<u8>, TaskError>,
    /// The task's output type, checked by [`output`](Self::output).
    pub(crate) output: OutputType,
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
        if TypeId::of::<O>() != self.output.id {
            return Err(TaskError::WrongType {
                actual: self.output.name,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_decode_only_as_their_own_type() {
        let r = TaskResult {
            id: TaskId(0),
            task: "square",
            pid: 1,
            duration: Duration::ZERO,
            attempts: 1,
            outcome: Ok(postcard::to_allocvec(&9u64).unwrap()),
            output: OutputType::of::<u64>(),
        };
        assert_eq!(r.output::<u64>(), Ok(9));
        assert!(matches!(
            r.output::<String>(),
            Err(TaskError::WrongType { .. })
        ));
    }
}
