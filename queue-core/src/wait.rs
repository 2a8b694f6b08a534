//! Blocking: spin briefly, then sleep on a shared futex.
//!
//! Each side of the queue has a wait point in the header: a sequence word to
//! sleep on and a count of sleepers. This is the textbook bounded buffer with
//! its two semaphores (free slots, ready items), except that the counts live
//! in the ring itself and the semaphores only ever hold *sleepers*:
//!
//! * a consumer that finds nothing registers in `get_waiters`, re-checks the
//!   ring, and sleeps on `get_seq`;
//! * a producer that publishes a message bumps `get_seq` and wakes one
//!   sleeper - but only if `get_waiters` is non-zero, so the uncontended path
//!   makes no system call at all. (Producers mirror this on `put_*`.)
//!
//! The registration, the re-check and the producer's publish-then-load are
//! all SeqCst, so either the sleeper sees the message or the producer sees
//! the sleeper (a Dekker pair). Sleeps are cut into slices so that a sleeper
//! also runs recovery now and then, in case the process that should have woken
//! it was killed.

use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::sys;

/// Longest single futex sleep; a sleeper re-checks (and may run recovery)
/// at least this often, which bounds recovery from a dead waker.
pub(crate) const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// One side's wait point: the futex word, the global sleeper count, and this
/// participant's own sleeper count (so that a cleaner can undo the count of a
/// participant killed in its sleep).
#[derive(Clone, Copy)]
pub(crate) struct WaitPoint<'a> {
    pub seq: &'a AtomicU32,
    pub waiters: &'a AtomicU32,
    pub mine: &'a AtomicU32,
}

impl WaitPoint<'_> {
    /// Wakes one sleeper if there is any. Call after making progress visible.
    #[inline]
    pub(crate) fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes up to `n` sleepers if there are any (after a batch of `n`).
    #[inline]
    pub(crate) fn notify(&self, n: u32) {
        // SYNC: SeqCst load after the SeqCst publish/release store; pairs with
        // the SeqCst `fetch_add` in `wait_until` (Dekker).
        if n != 0 && self.waiters.load(SeqCst) != 0 {
            self.seq.fetch_add(1, SeqCst);
            sys::futex_wake(self.seq, n);
        }
    }

    /// Wakes every sleeper (close, recovery).
    pub(crate) fn notify_all(&self) {
        self.seq.fetch_add(1, SeqCst);
        sys::futex_wake(self.seq, i32::MAX as u32);
    }

    fn register(&self) -> u32 {
        // The ticket is read before registering: a wake-up between the two
        // changes `seq`, and the futex wait then returns at once.
        let ticket = self.seq.load(SeqCst);
        self.mine.fetch_add(1, Relaxed);
        self.waiters.fetch_add(1, SeqCst);
        ticket
    }

    fn unregister(&self) {
        self.waiters.fetch_sub(1, SeqCst);
        self.mine.fetch_sub(1, Relaxed);
    }
}

/// Calls `attempt` until it returns `Some`, spinning first and then sleeping
/// on `wp` between attempts; `idle` runs after every sleep (recovery).
/// Returns `None` when `deadline` passes first.
pub(crate) fn wait_until<T>(
    wp: WaitPoint<'_>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Option<T>,
    mut idle: impl FnMut(),
) -> Option<T> {
    let backoff = Backoff::new();
    loop {
        if let Some(v) = attempt() {
            return Some(v);
        }
        if !backoff.is_completed() {
            backoff.snooze();
            continue;
        }
        let ticket = wp.register();
        // Re-check after registering: a producer that published before our
        // registration did not see us, so we must see its message.
        if let Some(v) = attempt() {
            wp.unregister();
            return Some(v);
        }
        let slice = match deadline {
            None => SLEEP_SLICE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    wp.unregister();
                    // A wake-up meant for us may have arrived; pass it on.
                    if wp.seq.load(SeqCst) != ticket {
                        wp.notify_one();
                    }
                    return None;
                }
                left.min(SLEEP_SLICE)
            }
        };
        sys::futex_wait(wp.seq, ticket, slice);
        wp.unregister();
        idle();
    }
}
