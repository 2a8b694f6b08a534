//! The waiter thread: one per process, started by the first future that has
//! to wait, sleeping in the kernel on every word an async call waits on.
//!
//! A future that finds nothing registers on the queue's word (the getter's
//! `fetch_or(SLEEPERS)`, so producers wake the word), re-checks, and leaves a
//! [`Watch`] here: the word, the value it registered, and its `Waker`. The
//! thread sleeps in one `futex_waitv` on every watched word (and on its own
//! `changed` word, which a new watch bumps when the thread sleeps on an
//! older set) and wakes the `Waker`s of a word when that word was woken or no
//! longer holds their value. The woken futures poll again: take, or register
//! and watch again. No executor is needed: any `Waker` does.
//!
//! Every slice ([`SLEEP_SLICE`], 100 ms) the thread also wakes one future per
//! watched word, so that a queue whose futures all wait still runs recovery
//! (its poll looks for dead participants, as a blocked `get` does after
//! every sleep slice).
//!
//! More than 127 queue words, or no `futex_waitv`: the thread sleeps on the
//! first ones (or on `changed` alone) for at most [`FALLBACK_SLICE`] and
//! compares every word after each sleep, as `Select` does.
//!
//! Soundness: a watch holds a raw pointer into a queue's mapping. The thread
//! reads watched words only while it holds the table's lock, and a watch
//! leaves the table (under that lock) before its mapping can go away: when
//! its future is dropped or polled again, and - for a future leaked with
//! `mem::forget` - when its queue handle is dropped ([`forget_words`]).

use std::sync::atomic::{AtomicU32, Ordering::*};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::{FALLBACK_SLICE, SLEEP_SLICE, waitv_unsupported};
use crate::sys::{self, WAITV_MAX, Waitv};

/// One future's wait: the word, the value it registered, its waker.
struct Watch {
    /// Identifies the watch for [`remove`].
    key: u64,
    /// A futex word in a queue's mapping (`get_seq` or `put_seq`).
    word: *const AtomicU32,
    /// The value the future registered (its ticket).
    ticket: u32,
    waker: Waker,
}

// SAFETY: the pointer is only dereferenced by the waiter thread under the
// table lock, while the mapping is alive (see the module docs).
unsafe impl Send for Watch {}

/// What the lock protects.
#[derive(Default)]
struct Table {
    watches: Vec<Watch>,
    next_key: u64,
    /// The (word, value) pairs the thread sleeps on now (empty while it is
    /// awake): a new watch on one of them need not wake the thread.
    asleep_on: Vec<(usize, u32)>,
}

/// The state shared by the futures and the thread.
struct Waiter {
    table: Mutex<Table>,
    /// Bumped (and woken) when the thread must rebuild the set it sleeps on.
    changed: AtomicU32,
}

static WAITER: OnceLock<Option<&'static Waiter>> = OnceLock::new();

/// The waiter, started on first use; `None` if no thread could be started
/// (then futures wake themselves and poll; see [`watch`]).
fn waiter() -> Option<&'static Waiter> {
    *WAITER.get_or_init(|| {
        let w: &'static Waiter = Box::leak(Box::new(Waiter {
            table: Mutex::new(Table::default()),
            changed: AtomicU32::new(0),
        }));
        std::thread::Builder::new()
            .name("mq-waiter".into())
            .spawn(move || run(w))
            .ok()
            .map(|_| w)
    })
}

fn lock(w: &Waiter) -> MutexGuard<'_, Table> {
    // A panic while holding the lock leaves the table consistent (every
    // change is one push or one retain), so a poisoned lock is used as is.
    w.table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Leaves a watch: `waker` is woken once `word` is woken or no longer holds
/// `ticket`. Returns its key for [`remove`]. `word` must stay mapped until
/// the watch is removed or [`forget_words`] is called for it.
pub(crate) fn watch(word: &AtomicU32, ticket: u32, waker: &Waker) -> Option<u64> {
    let Some(w) = waiter() else {
        // No waiter thread: poll again soon (the future stays correct, if
        // not idle).
        std::thread::yield_now();
        waker.wake_by_ref();
        return None;
    };
    let addr = word as *const AtomicU32;
    let mut t = lock(w);
    let key = t.next_key;
    t.next_key += 1;
    t.watches.push(Watch {
        key,
        word: addr,
        ticket,
        waker: waker.clone(),
    });
    let known = t.asleep_on.contains(&(addr as usize, ticket));
    drop(t);
    if !known {
        w.changed.fetch_add(1, SeqCst);
        sys::futex_wake(&w.changed, 1);
    }
    Some(key)
}

/// Removes a watch (a future polled again or dropped).
pub(crate) fn remove(key: u64) {
    if let Some(Some(w)) = WAITER.get() {
        lock(w).watches.retain(|x| x.key != key);
    }
}

/// Removes every watch on these words: their queue handle is going away.
pub(crate) fn forget_words(words: &[&AtomicU32]) {
    if let Some(Some(w)) = WAITER.get() {
        let gone: Vec<usize> = words.iter().map(|&a| a as *const _ as usize).collect();
        lock(w)
            .watches
            .retain(|x| !gone.contains(&(x.word as usize)));
    }
}

/// The thread's loop (see the module docs).
fn run(w: &'static Waiter) {
    let mut next_ping = Instant::now() + SLEEP_SLICE;
    let mut woken_word: Option<usize> = None;
    loop {
        let mut wake = Vec::new();
        let mut words: Vec<(usize, u32)> = Vec::new();
        let generation = w.changed.load(SeqCst);
        {
            let mut t = lock(w);
            let ping = Instant::now() >= next_ping;
            if ping {
                next_ping = Instant::now() + SLEEP_SLICE;
            }
            let mut pinged: Vec<usize> = Vec::new();
            t.watches.retain(|x| {
                // SAFETY: a watched word stays mapped while it is in the
                // table, and we hold the table lock (see the module docs).
                let now = unsafe { &*x.word }.load(SeqCst);
                let addr = x.word as usize;
                let first_of_word = ping && !pinged.contains(&addr);
                if now != x.ticket || woken_word == Some(addr) || first_of_word {
                    if first_of_word {
                        pinged.push(addr);
                    }
                    wake.push(x.waker.clone());
                    return false;
                }
                if !words.iter().any(|&(a, _)| a == addr) {
                    words.push((addr, now));
                }
                true
            });
            t.asleep_on = words.clone();
        }
        woken_word = None;
        for waker in wake {
            waker.wake();
        }
        let slice = if words.is_empty() {
            Duration::from_secs(3600)
        } else {
            next_ping.saturating_duration_since(Instant::now())
        };
        // Sleep on `changed` and every word, as far as one call takes them.
        let fits = words.len() < WAITV_MAX;
        let result = if waitv_unsupported() {
            Waitv::Unsupported
        } else {
            let n = words.len().min(WAITV_MAX - 1);
            // Only the addresses go to the kernel, which checks them itself
            // (a mapping gone meanwhile gives a `Recheck`); user space reads
            // a word only under the lock.
            let mut set = vec![(&w.changed as *const AtomicU32, generation)];
            set.extend(
                words[..n]
                    .iter()
                    .map(|&(addr, value)| (addr as *const AtomicU32, value)),
            );
            let slice = if fits {
                slice
            } else {
                slice.min(FALLBACK_SLICE)
            };
            sys::futex_waitv(&set, slice)
        };
        match result {
            Waitv::Woken(0) | Waitv::Recheck => {}
            Waitv::Woken(i) => woken_word = Some(words[i - 1].0),
            Waitv::Unsupported => {
                let slice = if words.is_empty() {
                    slice
                } else {
                    slice.min(FALLBACK_SLICE)
                };
                sys::futex_wait(&w.changed, generation, slice);
            }
        }
        lock(w).asleep_on.clear();
    }
}
