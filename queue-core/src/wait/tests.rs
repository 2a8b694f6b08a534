//! Unit tests of waiting and waking (no queue: a bare wait point).

use super::*;
use std::sync::atomic::AtomicBool;

#[derive(Default)]
struct Point {
    seq: AtomicU32,
    waiters: AtomicU32,
    mine: AtomicU32,
    done: AtomicU64,
    adapt: Adapt,
}

impl Point {
    fn wp(&self) -> WaitPoint<'_> {
        WaitPoint {
            seq: &self.seq,
            waiters: &self.waiters,
            mine: &self.mine,
            done: &self.done,
            adapt: &self.adapt,
            busy_sleep_flag: None,
        }
    }
}

#[test]
fn first_poll_waits_longer_only_while_the_other_side_streams() {
    // Streaming: found at the first poll after runs of calls that did
    // not wait - double, up to the ceiling.
    assert_eq!(next_first_pauses(1, 1, 5), 2);
    assert_eq!(next_first_pauses(32, 2, 2), 64);
    assert_eq!(next_first_pauses(64, 1, 100), MAX_FIRST_PAUSES);
    // Ping-pong: every call waits (no run) - stay where we are.
    assert_eq!(next_first_pauses(1, 1, 0), 1);
    assert_eq!(next_first_pauses(8, 2, 1), 8);
    // Found late, or not during the spin at all: back to polling at once.
    assert_eq!(next_first_pauses(64, 3, 100), 1);
    assert_eq!(next_first_pauses(64, u32::MAX, 100), 1);
    // A value out of range (it lives in process memory, but still).
    assert_eq!(next_first_pauses(0, 2, 0), 1);
}

#[test]
fn the_adaptation_counts_the_operations_between_waits() {
    let p = Point::default();
    let wait_once = |p: &Point| {
        let mut tries = 0;
        wait_until(
            p.wp(),
            Deadline::Forever,
            || {
                tries += 1;
                (tries > 2).then_some(())
            },
            || {},
        );
        p.done.fetch_add(1, Relaxed); // the operation that waited
    };
    // A ping-pong: every operation waits; the first poll stays early.
    for _ in 0..10 {
        wait_once(&p);
        assert_eq!(p.adapt.first_pauses.load(Relaxed), 1);
    }
    // The wait counted itself in: its own operation is not a run.
    assert_eq!(p.adapt.done_after_wait.load(Relaxed), 10);
    // (How a stream then doubles the pauses is timing-dependent - a
    // preempted spin resets them - and is tested on the rule itself
    // above and measured in docs/performance.md.)
}

/// With a spin budget of zero (our core is contended), a side that
/// sleeps when busy registers as a sleeper right after its first failed
/// attempt; the other side polls (yields) first and finds the work
/// without registering. Every eighth such wait yields anyway (a probe).
#[test]
fn a_producer_on_a_contended_core_sleeps_without_yielding() {
    // A fresh thread: its own spin budget and probe counter.
    std::thread::spawn(|| {
        SPIN_BUDGET_NS.with(|b| b.set(0));
        let registered_at_second_attempt = |sleeps_when_busy: bool| {
            let p = Point::default();
            let flag = AtomicBool::new(sleeps_when_busy);
            let wp = WaitPoint {
                busy_sleep_flag: Some(&flag),
                ..p.wp()
            };
            let mut calls = 0;
            let r = wait_until(
                wp,
                Deadline::Forever,
                || {
                    calls += 1;
                    (calls == 2).then_some(())
                },
                || {},
            );
            assert_eq!((r, calls), (Some(()), 2));
            // Registering marks the word; nobody bumped it since.
            p.seq.load(SeqCst) & SLEEPERS != 0
        };
        assert!(!registered_at_second_attempt(false));
        SPIN_BUDGET_NS.with(|b| b.set(0));
        for wait in 1..=BUSY_PROBE_EVERY * 2 {
            let probe = wait % BUSY_PROBE_EVERY == 0;
            assert_eq!(registered_at_second_attempt(true), !probe, "wait {wait}");
            // A probe's fast yield raises the budget: back to contended.
            SPIN_BUDGET_NS.with(|b| b.set(0));
        }
    })
    .join()
    .unwrap();
}

#[test]
fn the_fast_path_needs_no_waiting_and_no_wake() {
    let p = Point::default();
    assert_eq!(
        wait_until(p.wp(), Deadline::Forever, || Some(7), || {}),
        Some(7)
    );
    // Nobody registered, so a notify finds nothing to do.
    p.wp().notify_one();
    assert_eq!(p.seq.load(SeqCst), 0);
}

#[test]
fn a_deadline_in_the_past_returns_none_and_leaves_no_registration() {
    let p = Point::default();
    let r: Option<()> = wait_until(p.wp(), Deadline::Until(Instant::now()), || None, || {});
    assert_eq!(r, None);
    assert_eq!(p.waiters.load(SeqCst), 0);
    assert_eq!(p.mine.load(SeqCst), 0);
}

#[test]
fn a_timed_wait_expires() {
    let p = Point::default();
    let t = Instant::now();
    let r: Option<()> = wait_until(
        p.wp(),
        Deadline::Until(t + Duration::from_millis(30)),
        || None,
        || {},
    );
    assert_eq!(r, None);
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(p.waiters.load(SeqCst), 0);
}

/// Takes one of `items`, if there is one.
fn take_one(items: &AtomicU32) -> bool {
    items
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Sleepers are woken by the notify that follows a publish, not by the
/// end of their sleep slice: with a lost wake-up every round would take
/// a whole slice (100 ms). The publisher waits well past the polling
/// phase, so the waiters are asleep on the futex when it publishes.
#[test]
fn sleepers_are_woken_by_notify_not_by_their_slice() {
    const WAITERS: usize = 3;
    const ROUNDS: usize = 20;
    let p = Point::default();
    let items = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let latencies = std::sync::Mutex::new(Vec::new());
    let published = std::sync::Mutex::new(Instant::now());
    std::thread::scope(|s| {
        for _ in 0..WAITERS {
            s.spawn(|| {
                loop {
                    let take = || {
                        if stop.load(SeqCst) {
                            return Some(false);
                        }
                        take_one(&items).then_some(true)
                    };
                    match wait_until(p.wp(), Deadline::Forever, take, || {}) {
                        Some(true) => {
                            let at = *published.lock().unwrap();
                            latencies.lock().unwrap().push(at.elapsed());
                        }
                        _ => return,
                    }
                }
            });
        }
        for _ in 0..ROUNDS {
            std::thread::sleep(POLL_FOR * 20); // everybody is asleep now
            *published.lock().unwrap() = Instant::now();
            items.fetch_add(1, SeqCst); // publish (SeqCst), then notify
            p.wp().notify_one();
            while items.load(SeqCst) != 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        stop.store(true, SeqCst);
        p.wp().notify_all();
    });
    let mut l = latencies.into_inner().unwrap();
    assert_eq!(l.len(), ROUNDS);
    l.sort();
    // A lost wake-up shows as a latency of about a whole slice.
    assert!(
        l[ROUNDS / 2] < SLEEP_SLICE / 4,
        "median wake-up latency {:?} (all: {l:?})",
        l[ROUNDS / 2]
    );
    assert_eq!(p.waiters.load(SeqCst), 0);
    assert_eq!(p.mine.load(SeqCst), 0);
}

/// One notify wakes one sleeper; each sleeper that finds work passes the
/// wake-up on. So a burst published with a single notify reaches every
/// sleeper promptly: a broken chain would leave all but the first asleep
/// until the end of their slice (100 ms). Each waiter takes one item per
/// round, so the burst needs all of them.
#[test]
fn one_notify_reaches_every_sleeper_through_the_chain() {
    const WAITERS: usize = 6;
    const ROUNDS: u32 = 5;
    let p = Point::default();
    let items = AtomicU32::new(0);
    let round = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let published = std::sync::Mutex::new(Instant::now());
    let slowest = std::sync::Mutex::new(vec![Duration::ZERO; ROUNDS as usize]);
    let watchdog = Instant::now() + Duration::from_secs(20);
    std::thread::scope(|s| {
        for _ in 0..WAITERS {
            s.spawn(|| {
                loop {
                    // Some(round taken in), or None once stopped.
                    let take = || {
                        if stop.load(SeqCst) {
                            return Some(None);
                        }
                        let r = round.load(SeqCst);
                        take_one(&items).then_some(Some(r))
                    };
                    let Some(Some(r)) = wait_until(p.wp(), Deadline::Forever, take, || {}) else {
                        return;
                    };
                    let took = published.lock().unwrap().elapsed();
                    {
                        let mut w = slowest.lock().unwrap();
                        w[r as usize] = w[r as usize].max(took);
                    }
                    // Not asleep, not registered: out of the chain until
                    // the next round.
                    while round.load(SeqCst) == r && !stop.load(SeqCst) {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            });
        }
        for r in 0..ROUNDS {
            round.store(r, SeqCst);
            std::thread::sleep(POLL_FOR * 20); // everybody is asleep now
            *published.lock().unwrap() = Instant::now();
            items.fetch_add(WAITERS as u32, SeqCst); // a burst, one notify
            p.wp().notify_one();
            while items.load(SeqCst) != 0 && Instant::now() < watchdog {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        round.store(ROUNDS, SeqCst);
        stop.store(true, SeqCst);
        p.wp().notify_all();
    });
    assert_eq!(items.load(SeqCst), 0, "watchdog: items left after 20 s");
    let mut w = slowest.into_inner().unwrap();
    w.sort();
    // The median round's last taker: about a slice if the chain broke.
    assert!(
        w[ROUNDS as usize / 2] < SLEEP_SLICE / 2,
        "slowest taker per round: {w:?}"
    );
    assert_eq!(p.waiters.load(SeqCst), 0);
}

#[test]
fn a_notify_after_a_wake_costs_no_second_wake_until_someone_sleeps_again() {
    let p = Point::default();
    let wp = p.wp();
    let ticket = wp.register();
    assert_eq!(ticket & SLEEPERS, SLEEPERS);
    wp.notify_one(); // bumps: the bit clears
    let after = p.seq.load(SeqCst);
    assert_eq!(after & SLEEPERS, 0);
    assert_ne!(after, ticket);
    wp.notify_one(); // nobody marked the word again: no bump
    assert_eq!(p.seq.load(SeqCst), after);
    wp.unregister();
    assert_eq!(p.waiters.load(SeqCst), 0);
}

/// A notify_all with nobody asleep leaves the word unmarked, so the next
/// notify_one stays on its syscall-free fast path; with a sleeper
/// registered it bumps the word, so a sleeper on its way to the futex
/// returns at once.
#[test]
fn notify_all_without_sleepers_leaves_the_bit_clear() {
    let p = Point::default();
    let wp = p.wp();
    wp.notify_all();
    assert_eq!(
        p.seq.load(SeqCst),
        0,
        "nobody sleeps: the word is unchanged"
    );
    wp.notify_one();
    assert_eq!(p.seq.load(SeqCst), 0, "and notify_one has nothing to do");
    let ticket = wp.register();
    wp.notify_all();
    let after = p.seq.load(SeqCst);
    assert_ne!(after, ticket, "a registered sleeper's ticket is stale");
    assert_eq!(after & SLEEPERS, 0, "the bump clears the bit");
    wp.unregister();
    wp.notify_all();
    assert_eq!(p.seq.load(SeqCst), after);
}

#[test]
fn deadline_now_makes_one_attempt() {
    let p = Point::default();
    let mut tries = 0;
    let r: Option<()> = wait_until(
        p.wp(),
        Deadline::Now,
        || {
            tries += 1;
            None
        },
        || {},
    );
    assert_eq!((r, tries), (None, 1));
    assert_eq!(p.seq.load(SeqCst), 0, "no registration");
}

/// `wait_any` (the sleep behind `Select`) wakes on a notify of any of its
/// words, with `futex_waitv` and with the polling fallback; counts itself
/// out again; and returns `None` no earlier than its deadline.
#[test]
fn wait_any_wakes_on_any_word_with_and_without_futex_waitv() {
    for unsupported in [false, true] {
        many::WAITV_UNSUPPORTED.store(unsupported, Relaxed);
        let points: Vec<Point> = (0..3).map(|_| Point::default()).collect();
        let ready: Vec<AtomicBool> = (0..3).map(|_| AtomicBool::new(false)).collect();
        let wps: Vec<WaitPoint<'_>> = points.iter().map(Point::wp).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                ready[2].store(true, SeqCst);
                points[2].wp().notify_one();
            });
            let deadline = Deadline::after(Duration::from_secs(30));
            let got = wait_any(&wps, deadline, |i, _| ready[i].load(SeqCst), || {});
            assert_eq!(got, Some(2), "unsupported: {unsupported}");
        });
        for p in &points {
            assert_eq!(p.waiters.load(Relaxed), 0);
            assert_eq!(p.mine.load(Relaxed), 0);
        }
        let started = Instant::now();
        let timeout = Duration::from_millis(30);
        let none = wait_any(&wps, Deadline::after(timeout), |_, _| false, || {});
        assert_eq!(none, None);
        assert!(started.elapsed() >= timeout);
        assert_eq!(wait_any(&wps, Deadline::Now, |_, _| false, || {}), None);
    }
    many::WAITV_UNSUPPORTED.store(false, Relaxed);
}
