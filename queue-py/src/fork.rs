//! Fork detection: a handle inherited through `fork()` must not be used (or
//! dropped) by the child.
//!
//! A `queue_core::Queue` handle owns a participant entry, held through an
//! open-file-description lock that a forked child shares with its parent.
//! Used from the child it would mix the two processes' claims under one
//! entry (so a child killed holding a lease would go unnoticed while the
//! parent lives), and dropped in the child it would free the parent's entry.
//! So every handle records the fork generation it was opened in; a
//! `pthread_atfork` child handler bumps the generation, and a handle from an
//! older generation is leaked (never dropped) and replaced by a fresh one
//! opened by name. One relaxed atomic load per call.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How many `fork()`s lie between the first process that loaded the module
/// and this one (0 in that process).
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn in_child() {
    // Only an atomic: async-signal-safe, as a handler running right after
    // fork() in a possibly multi-threaded parent's child must be.
    GENERATION.fetch_add(1, Relaxed);
}

/// Registers the child handler (once per process image).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `in_child` is an `extern "C" fn()` that lives for the whole
        // program (the module is never unloaded by CPython) and only touches
        // an atomic.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        // ENOMEM is the only documented failure; without the handler, fork
        // detection is off and a forked child must re-open its queues (the
        // spawn start method does).
        debug_assert_eq!(rc, 0);
    });
}

/// The current fork generation.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Relaxed)
}
