//! Ctrl-C: exit 130, after cleaning up what the running command registered.
//!
//! The handler runs on its own thread (the `ctrlc` crate) while the main
//! thread may be asleep in a blocking `get`. Leaving the process then is safe
//! for the queue: a message held under a lease comes back when the kernel
//! drops our record locks and the next participant notices (queue-core's
//! crash-safety contract). Two things still need care:
//!
//! * between writing a message out and acking it, an exit would deliver the
//!   message twice (printed here, and re-queued), so `get` marks that window
//!   as *critical*: a Ctrl-C there is deferred until the ack is done (a second
//!   Ctrl-C exits at once, for a stdout that never drains);
//! * `demo`, `bench` and `watch` register cleanups: children to kill,
//!   temporary queues to remove, a terminal cursor to show again.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::exit::Exit;

/// What to undo before exiting on Ctrl-C.
#[derive(Default)]
struct State {
    /// Inside a write-then-ack window.
    critical: bool,
    /// A Ctrl-C arrived during the window.
    pending: bool,
    /// Child processes to kill.
    children: Vec<u32>,
    /// Temporary queues to remove: (directory, name).
    queues: Vec<(PathBuf, String)>,
    /// Escape sequence restoring the terminal (written to stdout).
    terminal_reset: Option<&'static str>,
}

static STATE: Mutex<State> = Mutex::new(State {
    critical: false,
    pending: false,
    children: Vec::new(),
    queues: Vec::new(),
    terminal_reset: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the Ctrl-C handler (once, at start).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        let mut st = state();
        if st.critical && !st.pending {
            st.pending = true;
            return;
        }
        exit_now(&mut st);
    });
}

fn exit_now(st: &mut State) -> ! {
    for &pid in &st.children {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    for (dir, name) in &st.queues {
        let _ = queue_core::Queue::remove_in(dir, name);
    }
    if let Some(reset) = st.terminal_reset {
        // Straight to fd 1: the main thread may hold the stdout lock.
        // SAFETY: writes `reset.len()` bytes from a valid &str to fd 1.
        unsafe {
            libc::write(1, reset.as_ptr().cast(), reset.len());
        }
    }
    Exit::Interrupted.exit_now()
}

/// Runs `f` with Ctrl-C deferred until it returns; exits 130 afterwards if
/// one came meanwhile. Also when `f` panics: the window closes as the panic
/// unwinds through it (a drop guard), so a caught panic leaves no deferred
/// Ctrl-C behind.
pub fn critical<T>(f: impl FnOnce() -> T) -> T {
    let _window = Critical::enter();
    f()
}

/// An open write-then-ack window; dropping it (on return or unwind) closes
/// the window and honours a Ctrl-C that came meanwhile.
struct Critical(());

impl Critical {
    fn enter() -> Critical {
        state().critical = true;
        Critical(())
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        let mut st = state();
        st.critical = false;
        if st.pending {
            exit_now(&mut st);
        }
    }
}

/// Kill this child on Ctrl-C.
pub fn add_child(pid: u32) {
    state().children.push(pid);
}

/// Forget a child (it was reaped).
pub fn remove_child(pid: u32) {
    state().children.retain(|&p| p != pid);
}

/// Remove this queue on Ctrl-C.
pub fn add_queue(dir: PathBuf, name: String) {
    state().queues.push((dir, name));
}

/// Forget a queue (it was removed).
pub fn remove_queue(name: &str) {
    state().queues.retain(|(_, n)| n != name);
}

/// Write this to stdout on Ctrl-C (None: nothing).
pub fn set_terminal_reset(reset: Option<&'static str>) {
    state().terminal_reset = reset;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_critical() -> bool {
        state().critical
    }

    #[test]
    fn a_panic_in_a_critical_section_closes_it() {
        let caught = std::panic::catch_unwind(|| {
            critical(|| {
                assert!(is_critical());
                panic!("inside the window");
            })
        });
        assert!(caught.is_err());
        assert!(!is_critical(), "the window stayed open after a panic");
        // The next section opens and closes normally.
        assert!(critical(is_critical));
        assert!(!is_critical());
    }
}
