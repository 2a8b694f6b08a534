//! Blocking without holding the GIL and without deafness to Ctrl-C.
//!
//! A blocking call first tries the queue's non-blocking verb with the GIL
//! held (the common case costs no GIL round trip). If it would block, it
//! waits with the queue's `*_timeout` verb in slices of at most
//! [`SLICE`] with the GIL released, and between slices runs the pending
//! signal handlers, so Ctrl-C raises `KeyboardInterrupt` within about 0.1 s.
//! A blocked call sleeps in the kernel (futex): it costs no CPU.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The longest time the GIL is released for at once.
pub(crate) const SLICE: Duration = Duration::from_millis(100);

/// How long a call may block, from Python's `block` and `timeout`
/// (as `queue.Queue`: `timeout` only counts when `block` is true).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// `block=False`: only try.
    No,
    /// Until this instant.
    Until(Instant),
    /// `timeout=None`.
    Forever,
}

impl Wait {
    /// Checks `timeout` as `queue.Queue` does: a non-negative number or None.
    pub(crate) fn new(block: bool, timeout: Option<f64>) -> PyResult<Wait> {
        if !block {
            return Ok(Wait::No);
        }
        let Some(secs) = timeout else {
            return Ok(Wait::Forever);
        };
        if secs.is_nan() || secs < 0.0 {
            return Err(PyValueError::new_err(format!(
                "timeout is {secs}, it must be a non-negative number of seconds (or None to wait forever)"
            )));
        }
        Ok(Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))
            .map_or(Wait::Forever, Wait::Until))
    }

    /// The next slice to wait for, or `None` when the time is up.
    fn slice(self) -> Option<Duration> {
        match self {
            Wait::No => None,
            Wait::Forever => Some(SLICE),
            Wait::Until(t) => {
                let left = t.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| left.min(SLICE))
            }
        }
    }
}

/// Runs `attempt(None)` (try now, GIL held), then, while its result is a
/// "would block" error (`would_block`) and `wait` allows, `attempt(Some(slice))`
/// with the GIL released, running signal handlers between slices. Returns
/// the last result; a Python exception from a signal handler (KeyboardInterrupt)
/// is the outer error.
pub(crate) fn blocking<T, E, F>(
    py: Python<'_>,
    wait: Wait,
    would_block: impl Fn(&E) -> bool,
    mut attempt: F,
) -> PyResult<Result<T, E>>
where
    F: FnMut(Option<Duration>) -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    let mut result = attempt(None);
    loop {
        match &result {
            Err(e) if would_block(e) => {}
            _ => return Ok(result),
        }
        let Some(slice) = wait.slice() else {
            return Ok(result);
        };
        result = py.detach(|| attempt(Some(slice)));
        if matches!(&result, Err(e) if would_block(e)) {
            py.check_signals()?;
        }
    }
}
