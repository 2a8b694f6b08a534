//! Waiting on many wait points at once: the sleep behind `Select`.
//!
//! A selector is a getter of every queue it selects, except that it takes
//! nothing: it only learns which queue has something. So it uses the getter's
//! protocol on every word (see the parent module), all at once:
//!
//! 1. **register** on every word: `fetch_or(SLEEPERS)` (SeqCst) and count in,
//!    exactly as a getter does before it sleeps - so every producer that
//!    publishes after this sees the bit and bumps the word;
//! 2. **re-check** every queue (after a SeqCst fence): a producer that
//!    published before our mark did not see us, so we must see its message
//!    (the Dekker pair of each word, one per queue);
//! 3. **sleep** in one `futex_waitv` on all the words, each with the value
//!    it registered: a bump between the re-check and the sleep changes a
//!    value, and the kernel returns at once (`EAGAIN`).
//!
//! Since a bump wakes **one** sleeper, the selector may be the one woken
//! although a getter of another process sleeps on the same word and the
//! selector's caller then takes nothing from that queue. So after a sleep
//! the selector does what a woken getter does, for every word that changed
//! or woke it, if others still sleep there: it marks the word again (so the
//! next publish wakes one of them) and, where the queue has work, passes the
//! wake-up on to one of them (`futex_wake(1)`). Marking comes before the
//! look at the queue, so a message published in between is either seen (and
//! passed on) or finds the word marked.
//!
//! More than [`WAITV_MAX`] words, or a kernel without `futex_waitv` (before
//! Linux 5.16, or a seccomp filter that refuses it): the selector still
//! registers on every word (producers keep waking *someone*), sleeps in
//! `futex_waitv` on the first [`WAITV_MAX`] words (or in a plain
//! `futex_wait` on the first word), and cuts its sleeps to
//! [`FALLBACK_SLICE`], re-checking every queue after each. The rest are then
//! noticed within 10 ms; a blocked selector then wakes 100 times a second
//! (a few microseconds of CPU each) instead of 10. A per-process helper
//! thread per 128 words would wake at once, but costs a thread per 128
//! queues and a hand-off on every wake-up; polling is simpler, cannot lose
//! a wake-up, and only pays where it is needed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*, fence};
use std::time::{Duration, Instant};

use super::{Deadline, POLL_FOR, SLEEP_SLICE, SLEEPERS, WaitPoint};
use crate::sys::{self, WAITV_MAX, Waitv};

/// The longest sleep of a selector that cannot sleep on all of its words in
/// one `futex_waitv` (see the module docs).
pub(crate) const FALLBACK_SLICE: Duration = Duration::from_millis(10);

/// Set once the kernel refused `futex_waitv`: later waits skip the attempt.
pub(super) static WAITV_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Whether the sleeps of this process fall back to polling for any number
/// of words (the kernel refused `futex_waitv`).
pub(crate) fn waitv_unsupported() -> bool {
    WAITV_UNSUPPORTED.load(Relaxed)
}

/// What the readiness check is asked after a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// An ordinary look.
    Quick,
    /// A look after a sleep that ended without a wake-up (its slice
    /// passed, a signal, or a word had changed before it began): the
    /// caller may also report what a quick look leaves to the getters
    /// (see `Queue::get_ready`'s head-lag check).
    Patient,
}

/// Returns the index of a point for which `ready` says yes, waiting until
/// `deadline` (`None` when it passes; [`Deadline::Now`]: one look). Polls
/// for [`POLL_FOR`] first (yielding), then sleeps on every point's word at
/// once; `idle` runs after every sleep (recovery).
pub(crate) fn wait_any(
    points: &[WaitPoint<'_>],
    deadline: Deadline,
    ready: impl Fn(usize, Look) -> bool,
    mut idle: impl FnMut(),
) -> Option<usize> {
    let first_ready = |look| (0..points.len()).find(|&i| ready(i, look));
    if let Some(i) = first_ready(Look::Quick) {
        return Some(i);
    }
    let deadline = match deadline {
        Deadline::Now => return None,
        Deadline::Until(t) => Some(t),
        Deadline::Forever => None,
    };
    if points.is_empty() {
        // Nothing can ever become ready: wait out the deadline.
        match deadline {
            Some(d) => std::thread::sleep(d.saturating_duration_since(Instant::now())),
            None => loop {
                std::thread::park();
            },
        }
        return None;
    }
    // Poll briefly: a message that is microseconds away is cheaper to wait
    // for than a futex round trip (as `wait_until` does, without its
    // adaptive spin: a selector is not on a hot path of its own).
    let poll_until = Instant::now() + POLL_FOR;
    while Instant::now() < poll_until && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::yield_now();
        if let Some(i) = first_ready(Look::Quick) {
            return Some(i);
        }
    }
    let mut tickets = vec![0u32; points.len()];
    loop {
        for (t, wp) in tickets.iter_mut().zip(points) {
            *t = wp.register();
        }
        // SYNC: orders every `fetch_or` of `register` before the re-check's
        // loads (some of which, like `Ring::peek`'s slot load, are only
        // Acquire); pairs with the producer's SeqCst publish followed by its
        // SeqCst load of the word in `WaitPoint::notify_one` (Dekker, one
        // pair per word).
        fence(SeqCst);
        if let Some(i) = first_ready(Look::Quick) {
            unregister_all(points);
            return Some(i);
        }
        let slice = match deadline {
            None => SLEEP_SLICE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    unregister_all(points);
                    return None;
                }
                left.min(SLEEP_SLICE)
            }
        };
        let woken = sleep_on(points, &tickets, slice);
        unregister_all(points);
        idle();
        // Hand on what the sleep may have taken from others: mark the words
        // that changed or woke us where others still sleep (before looking,
        // see the module docs).
        let touched = |i: usize| woken == Some(i) || points[i].seq.load(SeqCst) != tickets[i];
        let mut handed = vec![false; points.len()];
        for (i, wp) in points.iter().enumerate() {
            if touched(i) && wp.waiters.load(SeqCst) > 0 {
                // SYNC: SeqCst RMW before the look below, as in `register`.
                wp.seq.fetch_or(SLEEPERS, SeqCst);
                handed[i] = true;
            }
        }
        fence(SeqCst);
        let look = if woken.is_none() {
            Look::Patient
        } else {
            Look::Quick
        };
        let mut found = None;
        for (i, wp) in points.iter().enumerate() {
            if ready(i, look) {
                found.get_or_insert(i);
                if handed[i] {
                    wp.pass_on();
                }
            }
        }
        if found.is_some() {
            return found;
        }
    }
}

fn unregister_all(points: &[WaitPoint<'_>]) {
    for wp in points {
        wp.unregister();
    }
}

/// One sleep of at most `slice` on every point's word, each expected to
/// hold its ticket. Returns the index of the word that woke us, if one did.
fn sleep_on(points: &[WaitPoint<'_>], tickets: &[u32], slice: Duration) -> Option<usize> {
    let all_fit = points.len() <= WAITV_MAX;
    if !waitv_unsupported() {
        let n = points.len().min(WAITV_MAX);
        let words: Vec<_> = points[..n]
            .iter()
            .zip(tickets)
            .map(|(wp, &t)| (wp.seq as *const AtomicU32, t))
            .collect();
        let slice = if all_fit {
            slice
        } else {
            slice.min(FALLBACK_SLICE)
        };
        match sys::futex_waitv(&words, slice) {
            Waitv::Woken(i) => return Some(i),
            Waitv::Recheck => return None,
            Waitv::Unsupported => WAITV_UNSUPPORTED.store(true, Relaxed),
        }
    }
    sys::futex_wait(points[0].seq, tickets[0], slice.min(FALLBACK_SLICE));
    None
}
