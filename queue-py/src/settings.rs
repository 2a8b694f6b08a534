//! What `mq.Queue(...)` creates a missing queue with: its Python arguments
//! checked and turned into queue-core's `Builder`, and `Queue.stats()`, the
//! core's `Stats` as a dict.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use queue_core::{Builder, DEFAULT_CAPACITY, Queue, Stats};

/// The settings of a queue to create (the segment's own win on open).
pub(crate) struct Create {
    pub(crate) maxsize: i64,
    pub(crate) max_msg_size: usize,
    pub(crate) mode: u32,
    pub(crate) priorities: usize,
    pub(crate) lease_timeout: Option<Duration>,
    pub(crate) max_deliveries: Option<usize>,
    pub(crate) dead_letter: Option<String>,
}

impl Create {
    /// The builder for queue `name` in `dir`. Zero and too-large values are
    /// left to the builder, whose errors say what is allowed.
    pub(crate) fn builder(&self, name: &str, dir: &Path) -> Builder {
        let capacity = if self.maxsize <= 0 {
            DEFAULT_CAPACITY
        } else {
            usize::try_from(self.maxsize).unwrap_or(usize::MAX)
        };
        let mut b = Queue::builder(name)
            .capacity(capacity)
            .max_msg_size(self.max_msg_size)
            .mode(self.mode)
            .priorities(self.priorities)
            .dir(dir);
        if let Some(t) = self.lease_timeout {
            b = b.lease_timeout(t);
        }
        if let Some(n) = self.max_deliveries {
            b = b.max_deliveries(n);
        }
        if let Some(dlq) = &self.dead_letter {
            b = b.dead_letter(dlq);
        }
        b
    }
}

/// `dead_letter=` needs `max_deliveries=` (said here in Python's words;
/// the builder's own error would give a Rust hint).
pub(crate) fn dead_letter_arg(
    dead_letter: Option<String>,
    max_deliveries: Option<i64>,
) -> PyResult<Option<String>> {
    match (&dead_letter, max_deliveries) {
        (Some(dlq), None) => Err(PyValueError::new_err(format!(
            "dead_letter='{dlq}' without max_deliveries: no message would ever be a dead letter \
             (hint: add max_deliveries=N, e.g. max_deliveries=5)"
        ))),
        _ => Ok(dead_letter),
    }
}

/// A count argument (`priorities`, `max_deliveries`): a negative one is a
/// ValueError naming it (PyO3 would raise a bare OverflowError).
pub(crate) fn count_arg(arg: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| PyValueError::new_err(format!("{arg}={value}: it must be a positive number")))
}

/// `lease_timeout` in seconds as a Duration: NaN, negative and infinite
/// are ValueErrors; a too short one is left to the builder.
pub(crate) fn lease_timeout_arg(secs: Option<f64>) -> PyResult<Option<Duration>> {
    secs.map(|s| {
        Duration::try_from_secs_f64(s).map_err(|_| {
            PyValueError::new_err(format!(
                "lease_timeout={s}: it must be a positive number of seconds (or None: a lease lasts while its holder lives)"
            ))
        })
    })
    .transpose()
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A dict of the fields `$f` of `$s`, under their own names.
macro_rules! fields {
    ($py:expr, $s:expr, [$($f:ident),* $(,)?]) => {{
        let d = PyDict::new($py);
        $(d.set_item(stringify!($f), &$s.$f)?;)*
        d
    }};
}

/// `Queue.stats()`: everything `mq inspect` shows, as a dict (durations in
/// seconds, times as Unix timestamps).
pub(crate) fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = fields!(
        py,
        s,
        [
            name,
            path,
            segment_size,
            capacity,
            priorities,
            max_msg_size,
            len,
            head,
            tail,
            total_put,
            total_got,
            producers_waiting,
            consumers_waiting,
            redelivered,
            discarded_partial,
            in_flight,
            expired,
            dropped_poison,
            dead_lettered,
            dead_letter,
            dead_letters_of,
            max_deliveries,
            closed,
            creator_pid,
            mode,
            owner_uid,
            max_participants,
        ]
    );
    d.set_item("lease_timeout", s.lease_timeout.map(|t| t.as_secs_f64()))?;
    d.set_item("created", unix_secs(s.created))?;
    let levels = PyList::empty(py);
    for l in &s.levels {
        levels.append(fields!(py, l, [len, head, tail]))?;
    }
    d.set_item("levels", levels)?;
    let leases = PyList::empty(py);
    for l in &s.leases {
        let e = fields!(py, l, [slot, owner, deliveries]);
        e.set_item("expires_in", l.expires_in_ms.map(|ms| ms as f64 / 1000.0))?;
        leases.append(e)?;
    }
    d.set_item("leases", leases)?;
    let participants = PyList::empty(py);
    for p in &s.participants {
        let e = fields!(py, p, [index, pid, alive, is_self, puts, gets]);
        e.set_item("attached", unix_secs(p.attached))?;
        participants.append(e)?;
    }
    d.set_item("participants", participants)?;
    Ok(d)
}
