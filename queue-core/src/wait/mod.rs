//! Blocking: spin briefly, then sleep on a shared futex.
//!
//! Each side of the queue has a wait point in the header: a sequence word to
//! sleep on and a count of sleepers. This is the textbook bounded buffer with
//! its two semaphores (free slots, ready items), except that the counts live
//! in the ring itself and the semaphores only ever hold *sleepers*:
//!
//! * a consumer that finds nothing marks `get_seq` as slept on (its lowest
//!   bit, [`SLEEPERS`]), registers in `get_waiters`, re-checks the ring, and
//!   sleeps on `get_seq`;
//! * a producer that publishes a message looks at `get_seq`: only if the bit
//!   is set does it bump the word (which clears the bit) and wake **one**
//!   sleeper. So the uncontended path makes no system call at all, and while
//!   the woken sleeper is still on its way back to a core, further messages
//!   cost no system call either: the bit stays clear until somebody goes to
//!   sleep again. (Producers mirror this on `put_*`.)
//! * a woken sleeper that finds work **passes the wake-up on**: if others
//!   are still registered, it wakes one more, which does the same. One that
//!   finds nothing marks the word again and sleeps, so the next publish
//!   wakes someone. Either way, as long as there is work and sleepers, one
//!   of them is on its way.
//!
//! The marking, the re-check and the producer's publish-then-load are all
//! SeqCst, so either the sleeper sees the message or the producer sees the
//! bit (a Dekker pair). Every sleeper sleeps on the value it marked; a bump
//! changes the value, so a sleeper that had not yet reached the futex
//! returns at once. `get_waiters` and the per-participant counts say who
//! sleeps, for `mq inspect`, for recovery and for passing wake-ups on.
//!
//! Why one and a chain rather than waking everybody: with ten producers
//! asleep on a full queue, a wake-all made the consumer pay ten wake-ups
//! (each an inter-processor interrupt, expensive under a hypervisor) every
//! time it freed a slot after a pause, and nine of the ten usually found the
//! queue full again. Measured (`docs/performance.md`): 10 -> 1 with a
//! batching consumer went from 2.2-2.3 M to 8.7-10.6 M messages/s. The chain
//! moves the cost of the later wake-ups onto the sleepers that were woken.
//! If a woken sleeper is killed before it passes the wake-up on, the others
//! notice at the end of their sleep slice.
//!
//! Sleeps are cut into slices so that a sleeper also runs recovery now and
//! then, in case the process that should have woken it was killed.
//!
//! # Before sleeping: spin, then yield (adaptively)
//!
//! A futex sleep and wake-up costs tens of microseconds on the virtual
//! machines we measured (a virtual CPU that goes idle has to be woken by the
//! hypervisor: 25 us for a round trip across two cores, see
//! `docs/performance.md`), while the other side is usually a fraction of a
//! microsecond from acting. So a waiter first polls, in three phases, before
//! it registers and sleeps:
//!
//! 1. **spin** with `spin_loop` pauses for up to this thread's *spin budget*
//!    (at most [`SPIN_MAX`]): the answer comes from a process running on
//!    another core;
//! 2. **yield** (`sched_yield`) and poll until [`POLL_FOR`] has passed since the
//!    wait began: if the process we wait for shares our core (the scheduler
//!    often puts two processes that wake each other on one core), or there
//!    are more runnable processes than cores, this hands the core over
//!    instead of burning our time slice;
//! 3. **sleep** on the futex, in slices of at most [`SLEEP_SLICE`].
//!
//! The spin budget adapts per thread: a `sched_yield` that took long
//! ([`BUSY_YIELD`]) means another process was waiting for our core, so
//! spinning only delays it - the budget drops to zero and later waits yield at
//! once. A yield that returns at once means our core is ours alone: spinning
//! costs nobody anything, and the budget doubles back towards [`SPIN_MAX`].
//! A process blocked for long spins and yields for [`POLL_FOR`] once, then
//! sleeps; it never spins again while it waits.
//!
//! **A producer among producers on a contended core sleeps at once.** With
//! the budget at zero (more runnable processes than cores), a producer that
//! finds the queue full - and knows other participants put messages too -
//! skips the yield phase and goes to sleep: a yielding process stays
//! runnable, and among several producers its yield mostly hands the core to
//! another producer that cannot go on either, taking turns from the
//! consumers they all wait for; a sleeper is out of the way until a freed
//! slot wakes it. One such wait in [`BUSY_PROBE_EVERY`] still yields, to
//! notice when the core is free again. A lone producer keeps yielding: on a
//! core it shares with its consumer, the yield hands the core straight to
//! the consumer, which then empties the queue, where a sleep would cost a
//! wake-up for every slot it frees. Consumers keep yielding too. Measured
//! in `docs/performance.md` (four producers and four consumers on two
//! cores; one producer and one consumer on one core).
//!
//! # When to poll first: early for a ping-pong, late for a stream
//!
//! Every poll of a slot pulls its cache line to the poller's core, and the
//! other side must pull it back to go on. A getter that polls right away
//! when it finds the queue empty therefore slows down the producer it waits
//! for: in a stream, the producer is usually writing the very next slot.
//! Waiting longer before the first poll lets the producer get several
//! messages ahead, which the getter then takes in one run without touching
//! lines the producer is working on - but in a ping-pong, where every get
//! waits for one reply, it only adds latency. So each handle adapts, per
//! side, the pauses before its first poll (`next_first_pauses`): doubled,
//! up to [`MAX_FIRST_PAUSES`], when a wait ended within two polls after
//! operations that did not wait at all (a stream); back to one when a wait
//! took more polls (the other side takes its time). A ping-pong never has
//! operations that do not wait, so it keeps polling at once. Measured in
//! `docs/performance.md`: 64-byte 1 -> 1 across two cores about doubled,
//! ping-pong round trips grew by about 0.2 us.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::sys;

mod many;
#[cfg(feature = "async")]
pub(crate) mod waiter;
#[cfg(feature = "async")]
pub(crate) use many::{FALLBACK_SLICE, waitv_unsupported};
pub(crate) use many::{Look, wait_any};

/// Longest single futex sleep; a sleeper re-checks (and may run recovery)
/// at least this often, which bounds recovery from a dead waker.
pub(crate) const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// Longest pure spin before the first `sched_yield` (the budget's ceiling).
/// A partner running on another core answers well within this (a round trip
/// through the queue takes about 0.5 us there).
pub(crate) const SPIN_MAX: Duration = Duration::from_micros(5);

/// How long a waiter polls (spinning, then yielding) before it sleeps: about
/// what a futex sleep and wake-up cost on the machines we measured (12 us
/// for a wake-up across cores, 25 us for a round trip), the classic
/// spin-then-block choice that is never worse than twice the better of the
/// two. Longer windows measured no faster (`docs/performance.md`), but made
/// a consumer fed every 200 us use three to four times the CPU.
pub(crate) const POLL_FOR: Duration = Duration::from_micros(25);

/// A `sched_yield` longer than this ran another process on our core: an
/// uncontended one returns in well under a microsecond.
pub(crate) const BUSY_YIELD: Duration = Duration::from_micros(2);

/// The lowest bit of a futex word: set by a sleeper before it re-checks and
/// sleeps, cleared by the bump that wakes it.
pub(crate) const SLEEPERS: u32 = 1;

/// Smallest budget a fast yield grows a zero budget back to.
const SPIN_STEP_NS: u32 = 500;

/// Most `spin_loop` pauses between two polls (about 25 ns each).
const MAX_PAUSES: u32 = 16;

/// Most pauses before the first poll of a wait (see `next_first_pauses`):
/// about 1.6 us, well below the [`POLL_FOR`] after which a waiter sleeps.
const MAX_FIRST_PAUSES: u32 = 64;

/// A side that sleeps at once on a contended core (`WaitPoint::busy_sleep_flag`)
/// still yields on every this-many-th such wait, to notice when the core is
/// free again (a fast yield lets the spin budget grow back).
const BUSY_PROBE_EVERY: u32 = 8;

thread_local! {
    /// This thread's spin budget in nanoseconds (see the module docs).
    static SPIN_BUDGET_NS: Cell<u32> = const { Cell::new(SPIN_MAX.as_nanos() as u32) };
    /// Waits of this thread that skipped the yield phase since the last probe.
    static BUSY_SKIPS: Cell<u32> = const { Cell::new(0) };
}

/// Wakes one sleeper on the futex word `seq` if any registered (the body
/// of [`WaitPoint::notify_one`]; also used to wake the getters of a
/// dead-letter queue, which the mover is no participant of).
// Always inlined: as a call of its own it cost the plain get 4 more
// instructions per message (callgrind, `examples/hot_path`).
#[inline(always)]
pub(crate) fn wake_one(seq: &AtomicU32) {
    // SYNC: SeqCst load after the SeqCst publish/release store; pairs with
    // the SeqCst `fetch_or` in `register` (Dekker).
    let now = seq.load(SeqCst);
    if now & SLEEPERS != 0 {
        // { seq + 1 }: a new value (the bit clears); of several wakers
        // racing here one wins. It wakes one sleeper, which passes the
        // wake-up on if it finds work (`pass_on`).
        if seq
            .compare_exchange(now, now.wrapping_add(1), SeqCst, Relaxed)
            .is_ok()
        {
            sys::futex_wake(seq, 1);
        }
    }
}

/// One side's wait point: the futex word, the global sleeper count, and this
/// participant's own sleeper count (so that a cleaner can undo the count of a
/// participant killed in its sleep).
#[derive(Clone, Copy)]
pub(crate) struct WaitPoint<'a> {
    pub seq: &'a AtomicU32,
    pub waiters: &'a AtomicU32,
    pub mine: &'a AtomicU32,
    /// Operations this participant completed on this side (its `puts` or
    /// `gets` counter): how the polling adapts tells streaming from
    /// ping-pong.
    pub done: &'a AtomicU64,
    /// This handle's polling state for this side.
    pub adapt: &'a Adapt,
    /// For producers: the handle's flag "other participants put messages
    /// too". While it is set and our core is contended (spin budget 0), skip
    /// the yield phase and sleep at once (see the module docs). Read only
    /// then, so the fast path does not load it. `None` for consumers.
    pub busy_sleep_flag: Option<&'a AtomicBool>,
}

/// How one side of one queue handle polls (process memory, not shared):
/// the pauses before the first poll of a wait, adapted after every wait
/// (see `next_first_pauses`), and the side's operation count when the last
/// wait ended.
#[derive(Debug)]
pub(crate) struct Adapt {
    first_pauses: AtomicU32,
    done_after_wait: AtomicU64,
}

impl Default for Adapt {
    fn default() -> Self {
        Adapt {
            first_pauses: AtomicU32::new(1),
            done_after_wait: AtomicU64::new(0),
        }
    }
}

impl WaitPoint<'_> {
    /// Whether this side skips the yield phase on a contended core now
    /// (see `busy_sleep_flag`).
    pub(crate) fn sleeps_when_busy(&self) -> bool {
        self.busy_sleep_flag.is_some_and(|f| f.load(Relaxed))
    }

    /// Wakes a sleeper, if any. Call after making progress visible.
    #[inline]
    pub(crate) fn notify_one(&self) {
        wake_one(self.seq);
    }

    /// Called by a sleeper that was woken and then found work: if others
    /// still sleep, wakes one of them, since there may be work for it too.
    /// (Whoever finds nothing instead marks the word again and sleeps, so
    /// the next notify wakes someone.)
    pub(crate) fn pass_on(&self) {
        if self.waiters.load(SeqCst) > 0 {
            sys::futex_wake(self.seq, 1);
        }
    }

    /// Wakes every sleeper (close, recovery).
    pub(crate) fn notify_all(&self) {
        // SYNC: a SeqCst load (the failed update) or RMW after the caller's
        // SeqCst change (the `closed` swap, a recovery CAS); pairs with the
        // SeqCst `fetch_or` in `register` (Dekker), as in `notify_one`.
        // Only a marked word is bumped ({ seq + 1 }: the bit clears): a
        // sleeper between `register` and its futex wait holds the marked
        // value as its ticket, so the bump makes that wait return at once.
        // An unmarked word differs from every such ticket already, and
        // stays as it is - bumping it would set the bit with nobody asleep
        // and cost the next `notify_one` a needless wake-up.
        let _ = self.seq.fetch_update(SeqCst, SeqCst, |seq| {
            (seq & SLEEPERS != 0).then(|| seq.wrapping_add(1))
        });
        // Sleepers already in the kernel sleep whatever the word now says.
        sys::futex_wake(self.seq, i32::MAX as u32);
    }

    /// Marks the word as slept on and counts us in; returns the value to
    /// sleep on. A bump after this changes the word, and the futex wait then
    /// returns at once.
    pub(crate) fn register(&self) -> u32 {
        // SYNC: SeqCst RMW before the caller's re-check of the ring; pairs
        // with the waker's SeqCst load of `seq` in `notify_one` (after its
        // publish or release) and in `notify_all` (after a close or a
        // recovery) (Dekker).
        let ticket = self.seq.fetch_or(SLEEPERS, SeqCst) | SLEEPERS;
        self.mine.fetch_add(1, Relaxed);
        self.waiters.fetch_add(1, Relaxed);
        ticket
    }

    /// Counts us out again after [`register`](Self::register).
    pub(crate) fn unregister(&self) {
        self.waiters.fetch_sub(1, Relaxed);
        self.mine.fetch_sub(1, Relaxed);
    }
}

/// How long a blocking call may wait: the one deadline behind every public
/// wait mode. Each public verb is a shorthand that picks one: `try_*` is
/// [`Now`](Deadline::Now), `*_timeout` is [`Until`](Deadline::Until), the
/// plain verb is [`Forever`](Deadline::Forever) (as crossbeam-channel's
/// `try_recv`/`recv_timeout`/`recv` over one `recv(deadline)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// One attempt, no waiting.
    Now,
    /// Wait until this instant at most.
    Until(Instant),
    /// Wait as long as it takes.
    Forever,
}

impl Deadline {
    /// `timeout` from now (a timeout too long to represent waits forever).
    pub(crate) fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(t) => Deadline::Until(t),
            None => Deadline::Forever,
        }
    }
}

/// Calls `attempt` until it returns `Some`, polling first (spin, then yield;
/// see the module docs) and then sleeping on `wp` between attempts; `idle`
/// runs after every sleep (recovery). Returns `None` when `deadline` passes
/// first ([`Deadline::Now`]: after the first attempt).
#[inline(always)]
pub(crate) fn wait_until<T>(
    wp: WaitPoint<'_>,
    deadline: Deadline,
    mut attempt: impl FnMut() -> Option<T>,
    idle: impl FnMut(),
) -> Option<T> {
    // The fast path: no clock read, no thread-local access, no call.
    if let Some(v) = attempt() {
        return Some(v);
    }
    wait_slow(wp, deadline, attempt, idle)
}

/// [`wait_until`] after its first attempt failed: poll, then sleep. Kept out
/// of line so that the fast path stays small enough to inline into put/get.
#[cold]
#[inline(never)]
fn wait_slow<T>(
    wp: WaitPoint<'_>,
    deadline: Deadline,
    mut attempt: impl FnMut() -> Option<T>,
    mut idle: impl FnMut(),
) -> Option<T> {
    let deadline = match deadline {
        Deadline::Now => return None,
        Deadline::Until(t) => Some(t),
        Deadline::Forever => None,
    };
    if let Some(v) = poll(wp, deadline, &mut attempt) {
        return Some(v);
    }
    loop {
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
                    // Nothing to pass on: if a wake-up reached us, the
                    // attempt above found its work gone, and our register
                    // left the word marked for the next notify.
                    wp.unregister();
                    return None;
                }
                left.min(SLEEP_SLICE)
            }
        };
        sys::futex_wait(wp.seq, ticket, slice);
        wp.unregister();
        idle();
        if let Some(v) = attempt() {
            wp.pass_on();
            return Some(v);
        }
    }
}

/// Phases 1 and 2 of a wait: spin for this thread's budget, then yield,
/// until [`POLL_FOR`] has passed (or `deadline`, if sooner). Adapts the
/// budget to what the yields showed.
fn poll<T>(
    wp: WaitPoint<'_>,
    deadline: Option<Instant>,
    attempt: &mut impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    let budget = SPIN_BUDGET_NS.with(Cell::get);
    let spin_until = start + Duration::from_nanos(u64::from(budget));
    let mut poll_until = start + POLL_FOR;
    if let Some(d) = deadline {
        poll_until = poll_until.min(d);
    }
    // Phase 1: spin, polling after `first` pauses, then twice as many each
    // time, up to MAX_PAUSES (or `first`, if that is more).
    let first = wp.adapt.first_pauses.load(Relaxed);
    // Operations this side did without waiting since the last wait (which
    // counted itself in when it began); 0 in a ping-pong.
    let done = wp.done.load(Relaxed);
    let run = done.saturating_sub(wp.adapt.done_after_wait.load(Relaxed));
    wp.adapt
        .done_after_wait
        .store(done.wrapping_add(1), Relaxed);
    let mut pauses = first;
    let mut polls = 0u32;
    let mut now = start;
    while now < spin_until && now < poll_until {
        for _ in 0..pauses {
            std::hint::spin_loop();
        }
        pauses = (pauses * 2).min(MAX_PAUSES.max(first));
        polls += 1;
        if let Some(v) = attempt() {
            wp.adapt
                .first_pauses
                .store(next_first_pauses(first, polls, run), Relaxed);
            return Some(v);
        }
        now = Instant::now();
    }
    wp.adapt
        .first_pauses
        .store(next_first_pauses(first, u32::MAX, run), Relaxed);
    if budget == 0 && wp.sleeps_when_busy() && !probe_due() {
        // Our core is contended and we wait for a consumer: sleep now rather
        // than stay runnable and take turns from the consumers.
        return None;
    }
    // Phase 2: give the core to whoever wants it, polling in between.
    let mut busy = false;
    let mut found = None;
    while now < poll_until {
        std::thread::yield_now();
        let after = Instant::now();
        busy |= after.duration_since(now) > BUSY_YIELD;
        now = after;
        found = attempt();
        if found.is_some() {
            break;
        }
    }
    if now > spin_until {
        // We yielded at least once (or the deadline cut the spin short).
        let next = if busy {
            0
        } else {
            budget
                .saturating_mul(2)
                .clamp(SPIN_STEP_NS, SPIN_MAX.as_nanos() as u32)
        };
        SPIN_BUDGET_NS.with(|b| b.set(next));
    }
    found
}

/// Whether a wait that could skip the yield phase (see
/// `WaitPoint::busy_sleep_flag`) should yield anyway, to probe the core:
/// one in [`BUSY_PROBE_EVERY`].
fn probe_due() -> bool {
    BUSY_SKIPS.with(|n| {
        let skips = n.get() + 1;
        let due = skips >= BUSY_PROBE_EVERY;
        n.set(if due { 0 } else { skips });
        due
    })
}

/// The next wait's first-poll pauses, after a wait that found what it
/// waited for at poll number `polls` of phase 1 (`u32::MAX`: not in phase 1)
/// and came `run` operations after the previous wait.
fn next_first_pauses(first: u32, polls: u32, run: u64) -> u32 {
    let first = first.clamp(1, MAX_FIRST_PAUSES);
    if polls > 2 {
        // Found late, or not at all: the other side takes its time, so an
        // early poll costs it nothing, and a late one only adds latency.
        1
    } else if run >= 2 {
        // Found early, after a run of calls that found several messages (or
        // free slots) at once: the other side is streaming. Waiting longer
        // before the first poll lets it finish more before we touch its
        // cache lines. (A ping-pong never has such runs: every get waits.)
        (first * 2).min(MAX_FIRST_PAUSES)
    } else {
        first
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
