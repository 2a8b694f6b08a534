//! The pool's queues on disk: their names, creating and removing them, and
//! sweeping the queues of pools whose process was killed outright.

use std::path::Path;

use queue_core::{OpenError, Queue, RemoveError};

use crate::state::Config;

/// Prefix of every pool queue name.
pub(crate) const NAME_PREFIX: &str = "mqpool-";

/// Creates one of the pool's queues (private to this user), replacing a
/// file of the same name left by an earlier process with this pid.
pub(crate) fn create_queue(
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

/// Removes a queue; one already gone is fine.
pub(crate) fn remove_queue(dir: &Path, name: &str) -> Result<(), RemoveError> {
    match Queue::remove_in(dir, name) {
        Err(RemoveError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Removes queues of pools whose process is gone and that nobody uses.
pub(crate) fn sweep_stale(dir: &Path) {
    let Ok(names) = queue_core::list(Some(dir)) else {
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
