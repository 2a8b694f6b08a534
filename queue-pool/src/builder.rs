//! [`PoolBuilder`]: the pool's settings, checked by [`PoolBuilder::spawn`],
//! which creates the queues, starts the supervisor thread and waits until
//! every worker is ready.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::SpawnError;
use crate::pool::{Pool, register_live};
use crate::queues::{NAME_PREFIX, create_queue, sweep_stale};
use crate::registry::{Registry, Signature};
use crate::result::WorkerDeath;
use crate::state::{Config, DeathHook, Phase, Shared, State};
use crate::supervisor::{supervise, terminate_shared};
use crate::worker::{IN_WORKER, WORKER_ENV};

/// Largest [`PoolBuilder::prefetch`].
const MAX_PREFETCH: usize = 64;

/// Default largest encoded task (name + input) in bytes.
pub const DEFAULT_MAX_TASK_SIZE: usize = 64 * 1024;

/// Default largest encoded result in bytes.
pub const DEFAULT_MAX_RESULT_SIZE: usize = 64 * 1024;

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
    task_timeout: Option<Duration>,
    on_death: Option<Arc<DeathHook>>,
}

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
    /// The default settings for the tasks of `registry`.
    pub(crate) fn new(registry: &Registry) -> PoolBuilder {
        PoolBuilder {
            signatures: registry.signatures(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_retries: 2,
            prefetch: 0,
            dir: None,
            program: None,
            args: None,
            max_task_size: DEFAULT_MAX_TASK_SIZE,
            max_result_size: DEFAULT_MAX_RESULT_SIZE,
            start_timeout: Duration::from_secs(30),
            task_timeout: None,
            on_death: None,
        }
    }

    /// Number of worker processes (default: the number of CPUs; 1 to 1024).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// How often a task is tried again after the worker running it died
    /// (default 2, so at most 3 runs: the task's deliveries are limited,
    /// as a queue's `max_deliveries` limits a message's). A task that kills
    /// its worker every time then ends with
    /// [`TaskError::WorkerDied`](crate::TaskError::WorkerDied), which names
    /// it. Task errors and panics are not retried.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The longest a task may run (default: no limit). A task still running
    /// after `timeout` ends with
    /// [`TaskError::TimedOut`](crate::TaskError::TimedOut) (not retried),
    /// and its worker - which may be stuck for good - is killed and
    /// replaced; the tasks waiting in that worker's inbox are handed out
    /// again. Checked every 50 ms by the supervisor.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
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
    /// must call [`run_worker_if_spawned`](crate::run_worker_if_spawned) with a registry holding the tasks
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
        let dir = queue_core::queue_dir(self.dir.as_deref());
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
            task_timeout: self.task_timeout,
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
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&config.results_name)),
            config,
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
        let pool = Pool::new(shared, supervisor);
        // Wait for every worker's hello (or the first failure).
        let deadline = Instant::now().checked_add(self.start_timeout);
        let mut st = pool.shared().lock();
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
            st = pool.shared().wait(st, left);
        }
        drop(st);
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Task;

    const SQUARE: Task<u64, u64> = Task::new("square");

    fn registry() -> Registry {
        Registry::new().register(SQUARE, |x: u64| Ok::<_, String>(x * x))
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
