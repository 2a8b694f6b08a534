//! The worker side: [`run_worker_if_spawned`] turns a process started by a
//! [`Pool`](crate::Pool) into a worker that takes tasks from its inbox with a
//! lease, runs them and sends the results, acking a task only after its
//! result is queued.

use std::cell::Cell;
use std::panic;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use queue_core::{GetError, Queue};

use crate::registry::{IN_TASK, LAST_PANIC, Registry, panic_text};
use crate::wire::{Report, TaskMsg, WorkerSpec, fit_report, parse_spec};

/// Environment variable that marks a process as a pool worker. Its value is
/// `1 <parent pid> <worker id> <inbox name> <results name>` (protocol
/// version first; queue names never contain spaces).
pub const WORKER_ENV: &str = "MQ_POOL_WORKER";

/// Environment variable holding the queue directory of the worker's pool.
pub const WORKER_DIR_ENV: &str = "MQ_POOL_DIR";

/// How long a worker waits for a task before checking that its parent lives.
const WORKER_POLL: Duration = Duration::from_secs(1);

/// Exit code of a worker whose parent is gone or whose environment is wrong.
const EXIT_ORPHAN: i32 = 3;

/// Exit code of a worker that cannot use its queues.
const EXIT_QUEUE: i32 = 4;

/// Set once this process runs the worker loop.
pub(crate) static IN_WORKER: AtomicBool = AtomicBool::new(false);

/// The parent process's pid (0 if unknown).
fn parent_pid() -> u32 {
    rustix::process::getppid()
        .map(|p| p.as_raw_pid() as u32)
        .unwrap_or(0)
}

/// Runs the worker loop if this process was started by a [`Pool`](crate::Pool) as a
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

/// The worker loop: take a task, run it, send the result, ack; returns the
/// exit code.
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
