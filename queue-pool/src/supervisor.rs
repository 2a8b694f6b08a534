//! The supervisor thread: starts the workers, hands each task to a free
//! worker's inbox, takes in the reports from the results queue, notices dead
//! workers (`waitpid`), recovers the tasks they held and starts replacements,
//! and stops everything on join, terminate or breakdown.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use queue_core::{GetError, PutError, Queue};

use crate::error::TaskError;
use crate::queues::{create_queue, remove_queue};
use crate::result::{TaskId, TaskResult, WorkerDeath};
use crate::state::{Config, Limbo, Phase, Run, Shared, State, Worker};
use crate::wire::{Outcome, Report, TaskMsg, WorkerSpec};
use crate::worker::{WORKER_DIR_ENV, WORKER_ENV};

/// How often the supervisor looks at its children when no result arrives.
const POLL: Duration = Duration::from_millis(50);

/// How long a task that a dead worker had finished (but whose result was not
/// read yet) may take to show up before it is treated as interrupted.
const LIMBO: Duration = Duration::from_secs(2);

/// Workers in a row that die before they are ready before the pool gives up.
const MAX_FAILED_STARTS: u32 = 3;

/// How long `join` waits for workers to exit after their inboxes are closed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// How a worker process ended, in words.
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

/// Creates an inbox and starts one worker process on it.
fn spawn_worker(config: &Config, st: &mut State) -> Result<(), String> {
    let wid = st.next_wid;
    st.next_wid += 1;
    let name = format!("{}-w{wid}", config.prefix);
    let inbox = create_queue(config, &name, config.depth, config.max_task_size)
        .map_err(|e| format!("cannot create a worker inbox: {e}"))?;
    st.live_queues.insert(name.clone());
    let spec = WorkerSpec {
        parent: std::process::id(),
        wid,
        inbox: name.clone(),
        results: config.results_name.clone(),
    };
    let spawned = Command::new(&config.program)
        .args(&config.args)
        .env(WORKER_ENV, spec.to_env())
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
                running_since: None,
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
pub(crate) fn dispatch(config: &Config, st: &mut State) {
    let State {
        pending,
        tasks,
        workers,
        ..
    } = st;
    while let Some(&run) = pending.front() {
        let Some(info) = tasks.get(&run.id) else {
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
            id: run.id,
            attempt: run.attempt,
            name: info.name,
            input: &info.input,
        };
        let Ok(bytes) = postcard::to_allocvec(&msg) else {
            pending.pop_front();
            continue;
        };
        match w.inbox.try_put(&bytes) {
            Ok(()) => {
                if w.outstanding.is_empty() {
                    w.running_since = Some(Instant::now());
                }
                w.outstanding.push(run);
                pending.pop_front();
            }
            // A full inbox means our count is off; try again later.
            Err(PutError::Full) => return,
            Err(_) => return,
        }
    }
}

/// Records the end of task `id` (once: a later end of the same task is dropped).
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

/// Takes in one report from the results queue.
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
                w.outstanding.retain(|&t| t != Run { id, attempt });
                // The next one (if any) starts now.
                w.running_since = (!w.outstanding.is_empty()).then(Instant::now);
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

/// What a dead worker's inbox still held.
#[derive(Default)]
struct LeftInInbox {
    /// The runs, in inbox order.
    runs: Vec<Run>,
    /// Whether the first run is the one the worker was running (its unacked
    /// lease came back).
    first_was_running: bool,
}

/// Empties a dead worker's inbox.
fn recover_inbox(config: &Config, name: &str) -> LeftInInbox {
    // A fresh handle repairs the dead worker's slots as it attaches.
    let Ok(q) = Queue::open_in(&config.dir, name) else {
        return LeftInInbox::default();
    };
    let first_was_running = q.stats().redelivered > 0;
    let mut runs = Vec::new();
    let mut buf = Vec::new();
    while q.try_get_into(&mut buf).is_ok() {
        if let Ok(msg) = postcard::from_bytes::<TaskMsg<'_>>(&buf) {
            runs.push(Run {
                id: msg.id,
                attempt: msg.attempt,
            });
        }
    }
    LeftInInbox {
        runs,
        first_was_running,
    }
}

/// Charges a run that a worker death interrupted: try again, or give up.
fn interrupted(config: &Config, st: &mut State, run: Run, pid: u32, how: &str) -> Option<Run> {
    let Run { id, attempt } = run;
    if !st.tasks.contains_key(&id) {
        return None;
    }
    if attempt > config.max_retries {
        let outcome = Err(TaskError::WorkerDied {
            task: st.tasks[&id].name.to_owned(),
            attempts: attempt,
            last: format!("worker {pid} {how}"),
        });
        finish(st, id, pid, Duration::ZERO, attempt, outcome);
        None
    } else {
        if let Some(info) = st.tasks.get_mut(&id) {
            info.attempt = attempt + 1;
        }
        Some(Run {
            id,
            attempt: attempt + 1,
        })
    }
}

/// Recovers a dead worker's tasks and removes its inbox.
fn handle_death(config: &Config, st: &mut State, mut w: Worker, status: ExitStatus) -> WorkerDeath {
    let how = describe(status);
    let left = recover_inbox(config, &w.inbox_name);
    drop(w.inbox);
    let _ = remove_queue(&config.dir, &w.inbox_name);
    st.live_queues.remove(&w.inbox_name);

    let mut again = Vec::new();
    let mut charged = None;
    for (k, &run) in left.runs.iter().enumerate() {
        w.outstanding.retain(|&t| t != run);
        if !st.tasks.contains_key(&run.id) {
            continue; // its result arrived already
        }
        if k == 0 && left.first_was_running {
            charged = Some(TaskId(run.id));
            again.extend(interrupted(config, st, run, w.pid, &how));
        } else {
            again.push(run);
        }
    }
    // Handed to the worker, not in its inbox, no result yet: the result is
    // most likely still on its way; give it a moment (see `expire_limbo`).
    let deadline = Instant::now() + LIMBO;
    for &run in &w.outstanding {
        if st.tasks.contains_key(&run.id) {
            st.limbo.push(Limbo { run, deadline });
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

/// Charges the runs in limbo whose result did not come in time.
fn expire_limbo(config: &Config, st: &mut State) {
    let now = Instant::now();
    let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.limbo)
        .into_iter()
        .partition(|l| l.deadline <= now);
    st.limbo = keep;
    for Limbo { run, .. } in due {
        if let Some(t) = interrupted(config, st, run, 0, "died and its result never came") {
            st.pending.push_front(t);
        }
    }
}

/// Ends the runs that have run longer than their time limit (the task's
/// own, else the pool's `task_timeout`) with [`TaskError::TimedOut`] and
/// kills their workers (`reap_workers` then replaces them and hands their
/// waiting tasks out again; the timed-out run, already finished, is not
/// retried).
fn enforce_task_timeout(config: &Config, st: &mut State) {
    let now = Instant::now();
    let mut overdue = Vec::new();
    let State { workers, tasks, .. } = st;
    for w in workers.iter_mut() {
        let (Some(since), Some(run)) = (w.running_since, w.outstanding.first()) else {
            continue;
        };
        let Some(info) = tasks.get(&run.id) else {
            continue;
        };
        let Some((timeout, own)) = info
            .timeout
            .map(|t| (t, true))
            .or(config.task_timeout.map(|t| (t, false)))
        else {
            continue;
        };
        if now.duration_since(since) < timeout {
            continue;
        }
        w.running_since = None;
        let _ = w.child.kill();
        let outcome = Err(TaskError::TimedOut {
            task: info.name.to_owned(),
            timeout,
            own,
        });
        overdue.push((*run, w.pid, now.duration_since(since), outcome));
    }
    for (run, pid, ran, outcome) in overdue {
        finish(st, run.id, pid, ran, run.attempt, outcome);
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

/// The supervisor thread: starts the workers, takes in results, replaces
/// dead workers and hands out tasks until the pool stops.
pub(crate) fn supervise(shared: &Shared, results: Queue) {
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
                enforce_task_timeout(config, &mut st);
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
                " (does main() call queue_pool::run_worker_if_spawned first?)"
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
pub(crate) fn terminate_shared(shared: &Shared, reason: &str) {
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
