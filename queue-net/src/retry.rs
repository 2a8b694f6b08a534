//! Waiting and retrying for remote calls: the deadline every blocking verb
//! takes, back-off schedules, and the grace before an unreachable server
//! counts as gone.

use std::time::{Duration, Instant};

use crate::error::NetError;

/// Longest wait for one server round trip before it counts as a failure
/// (the attempt is then retried, with the same message id for a put).
pub(crate) const ROUND_TRIP: Duration = Duration::from_secs(5);

/// When a blocking call gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// Do not wait (`try_` verbs).
    Now,
    /// Wait until then (`_timeout` verbs).
    At(Instant),
    /// Wait as long as it takes.
    Never,
}

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Instant::now()
            .checked_add(timeout)
            .map_or(Deadline::Never, Deadline::At)
    }

    /// Time left, capped at `cap`; `None` once passed.
    pub(crate) fn left(self, cap: Duration) -> Option<Duration> {
        match self {
            Deadline::Now => None,
            Deadline::At(t) => t
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .map(|d| d.min(cap)),
            Deadline::Never => Some(cap),
        }
    }
}

/// Exponential back-off between retries, from `min` doubling up to `max`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { next: min, max }
    }

    /// Sleeps for the next pause, cut short by `deadline`; false if the
    /// deadline has passed (nothing slept).
    pub(crate) async fn pause(&mut self, deadline: Deadline) -> bool {
        let Some(d) = deadline.left(self.next) else {
            return false;
        };
        tokio::time::sleep(d).await;
        self.next = (self.next * 2).min(self.max);
        true
    }
}

/// Back-off while a full queue makes room: short, a get frees room at once.
pub(crate) fn full_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(1), Duration::from_millis(50))
}

/// Back-off while the server is away: it reconnects on its own.
pub(crate) fn away_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(50), Duration::from_secs(1))
}

/// How long "stream not found" must persist before a queue counts as removed.
const GONE_GRACE: Duration = Duration::from_secs(3);

/// Tells a removed queue from a server that is still loading its streams
/// after a restart (it answers "not found" for a moment then too): the queue
/// counts as removed only once "not found" has persisted for `GONE_GRACE`.
pub(crate) struct GoneCheck {
    since: Option<Instant>,
}

impl GoneCheck {
    pub(crate) fn new() -> GoneCheck {
        GoneCheck { since: None }
    }

    /// `Some(not_found)` if the queue is gone for good; `None`: retry.
    pub(crate) fn judge(&mut self, not_found: Option<NetError>) -> Option<NetError> {
        let Some(e) = not_found else {
            self.since = None;
            return None;
        };
        let since = *self.since.get_or_insert_with(Instant::now);
        (since.elapsed() >= GONE_GRACE).then_some(e)
    }
}
