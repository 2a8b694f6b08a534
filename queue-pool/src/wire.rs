//! The wire format between the parent and its workers: the task message in
//! an inbox, the report on the results queue (both postcard), and the worker
//! specification the parent passes in the environment.

use std::ffi::OsString;

use serde::{Deserialize, Serialize};

/// A task as it travels in an inbox (postcard).
#[derive(Serialize, Deserialize)]
pub(crate) struct TaskMsg<'a> {
    /// Task id, unique in its pool.
    pub(crate) id: u64,
    /// 1 for the first run; bumped each time a worker died running it.
    pub(crate) attempt: u32,
    /// Registered task name.
    pub(crate) name: &'a str,
    /// The postcard-encoded input.
    #[serde(borrow)]
    pub(crate) input: &'a [u8],
}

/// What a worker says on the results queue (postcard).
#[derive(Serialize, Deserialize)]
pub(crate) enum Report {
    /// The worker loop is running.
    Hello {
        /// The worker's number (from its [`WorkerSpec`]).
        wid: u64,
        /// Its process id.
        pid: u32,
    },
    /// A task ran to its end.
    Done {
        /// The worker's number.
        wid: u64,
        /// Its process id.
        pid: u32,
        /// The task (from its [`TaskMsg`]).
        id: u64,
        /// The attempt that ran (from its [`TaskMsg`]).
        attempt: u32,
        /// Time the task function ran, in microseconds.
        micros: u64,
        /// How it ended.
        outcome: Outcome,
    },
}

/// How a task ended, as sent by the worker.
#[derive(Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The task returned `Ok`: its postcard-encoded output.
    Ok(Vec<u8>),
    /// The task returned `Err`: its message.
    Failed(String),
    /// The task panicked: the message and where.
    Panicked(String),
    /// The input did not decode: what postcard said.
    BadInput(String),
    /// The worker's registry has no task of this name.
    UnknownTask(String),
    /// The encoded result did not fit the results queue.
    ResultTooLarge { len: u64, max: u64 },
}

/// What a worker is told in [`WORKER_ENV`](crate::WORKER_ENV):
/// `1 <parent pid> <worker id> <inbox name> <results name>` (protocol
/// version first; queue names never contain spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerSpec {
    /// Pid of the pool's process.
    pub(crate) parent: u32,
    /// Pool-wide worker number.
    pub(crate) wid: u64,
    /// Name of the worker's inbox queue.
    pub(crate) inbox: String,
    /// Name of the pool's results queue.
    pub(crate) results: String,
}

impl WorkerSpec {
    /// The environment value that [`parse_spec`] reads back.
    pub(crate) fn to_env(&self) -> String {
        format!(
            "1 {} {} {} {}",
            self.parent, self.wid, self.inbox, self.results
        )
    }
}

/// Reads a [`WorkerSpec::to_env`] value; `None` if it is not one.
pub(crate) fn parse_spec(value: &OsString) -> Option<WorkerSpec> {
    let value = value.to_str()?;
    let mut parts = value.split(' ');
    if parts.next()? != "1" {
        return None;
    }
    let spec = WorkerSpec {
        parent: parts.next()?.parse().ok()?,
        wid: parts.next()?.parse().ok()?,
        inbox: parts.next()?.to_owned(),
        results: parts.next()?.to_owned(),
    };
    parts.next().is_none().then_some(spec)
}

/// Shrinks a report that does not fit the results queue: a big output
/// becomes [`Outcome::ResultTooLarge`], a long message is cut.
pub(crate) fn fit_report(report: Report, max: usize) -> Report {
    let len = postcard::to_allocvec(&report).map_or(usize::MAX, |b| b.len());
    if len <= max {
        return report;
    }
    let Report::Done {
        wid,
        pid,
        id,
        attempt,
        micros,
        outcome,
    } = report
    else {
        return report;
    };
    let room = max.saturating_sub(128).max(16);
    let cut = |s: String| -> String {
        if s.len() <= room {
            return s;
        }
        let mut end = room.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    };
    let outcome = match outcome {
        Outcome::Ok(_) => Outcome::ResultTooLarge {
            len: len as u64,
            max: max as u64,
        },
        Outcome::Failed(s) => Outcome::Failed(cut(s)),
        Outcome::Panicked(s) => Outcome::Panicked(cut(s)),
        Outcome::BadInput(s) => Outcome::BadInput(cut(s)),
        Outcome::UnknownTask(s) => Outcome::UnknownTask(cut(s)),
        o @ Outcome::ResultTooLarge { .. } => o,
    };
    Report::Done {
        wid,
        pid,
        id,
        attempt,
        micros,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_spec_round_trips_and_rejects_garbage() {
        let spec = parse_spec(&OsString::from("1 42 7 mqpool-1-0-w7 mqpool-1-0-results")).unwrap();
        assert_eq!((spec.parent, spec.wid), (42, 7));
        assert_eq!(spec.inbox, "mqpool-1-0-w7");
        assert_eq!(spec.results, "mqpool-1-0-results");
        assert_eq!(parse_spec(&OsString::from(spec.to_env())), Some(spec));
        for bad in ["", "2 42 7 a b", "1 x 7 a b", "1 42 7 a", "1 42 7 a b c"] {
            assert!(parse_spec(&OsString::from(bad)).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn oversized_reports_are_cut_to_fit() {
        let big = Report::Done {
            wid: 1,
            pid: 2,
            id: 3,
            attempt: 1,
            micros: 4,
            outcome: Outcome::Ok(vec![7; 5000]),
        };
        let fitted = fit_report(big, 1024);
        assert!(postcard::to_allocvec(&fitted).unwrap().len() <= 1024);
        assert!(matches!(
            fitted,
            Report::Done {
                outcome: Outcome::ResultTooLarge { max: 1024, .. },
                ..
            }
        ));
        let long = Report::Done {
            wid: 1,
            pid: 2,
            id: 3,
            attempt: 1,
            micros: 4,
            outcome: Outcome::Failed("é".repeat(3000)),
        };
        let fitted = fit_report(long, 1024);
        assert!(postcard::to_allocvec(&fitted).unwrap().len() <= 1024);
    }
}
