//! [`Mode`]: how a producer or consumer loop calls the queue, and when it
//! stops.

/// How [`produce`](crate::produce) and [`consume`](crate::consume) run: one
/// message per call or batches, and until when.
///
/// ```
/// use queue_bench::Mode;
/// assert_eq!(Mode::single(), Mode { batch: 1, count: None });
/// assert_eq!(Mode::batched(64).limit(1000), Mode { batch: 64, count: Some(1000) });
/// assert_eq!(Mode::batched(0).batch, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Messages per call: 1 is `put` / `get_into`, N > 1 is `put_many` of N
    /// messages / `get_many_into` of at most N.
    pub batch: usize,
    /// Stop after this many messages; `None`: until the queue is closed (and,
    /// for a consumer, drained).
    pub count: Option<u64>,
}

impl Mode {
    /// One message per call (`put` / `get_into`), until the queue is closed.
    pub fn single() -> Mode {
        Mode::batched(1)
    }

    /// Batches of `batch` messages (`put_many` / `get_many_into`; 0 counts
    /// as 1, which is [`Mode::single`]), until the queue is closed.
    pub fn batched(batch: usize) -> Mode {
        Mode {
            batch: batch.max(1),
            count: None,
        }
    }

    /// The same, stopping after `count` messages (or when the queue is
    /// closed, if that comes first).
    pub fn limit(self, count: u64) -> Mode {
        Mode {
            count: Some(count),
            ..self
        }
    }

    /// How many messages the next call may move, given `done` so far: the
    /// batch size, less near the count; 0 when the count is reached.
    pub(crate) fn next_call(&self, done: u64) -> usize {
        match self.count {
            None => self.batch,
            Some(c) => (c.saturating_sub(done)).min(self.batch as u64) as usize,
        }
    }
}

impl Default for Mode {
    /// [`Mode::single`].
    fn default() -> Mode {
        Mode::single()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_call_stops_at_the_count() {
        let m = Mode::batched(64).limit(100);
        assert_eq!(m.next_call(0), 64);
        assert_eq!(m.next_call(64), 36);
        assert_eq!(m.next_call(100), 0);
        assert_eq!(Mode::single().next_call(u64::MAX), 1);
        assert_eq!(Mode::single().limit(0).next_call(0), 0);
    }
}
