//! [`Report`]: the last line a benchmark worker process prints, and its
//! parsing by the parent.

use std::fmt;
use std::str::FromStr;

use crate::stamp::Tally;

/// What a worker sent or took, with the checksum of the stamps; printed as
/// one line (`sent COUNT SUM` or `got COUNT SUM`) by [`Display`](fmt::Display)
/// and read back by [`FromStr`].
///
/// ```
/// use queue_bench::{Report, Tally};
/// let r = Report::got(Tally { count: 3, sum: 12 });
/// assert_eq!(r.to_string(), "got 3 12");
/// assert_eq!("got 3 12".parse::<Report>()?, r);
/// assert_eq!(r.tally(), Tally { count: 3, sum: 12 });
/// assert!("got 3".parse::<Report>().is_err());
/// # Ok::<(), queue_bench::ParseReportError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `sent COUNT SUM`, from a producer.
    Sent {
        /// Messages put.
        count: u64,
        /// Wrapping sum of their stamps.
        sum: u64,
    },
    /// `got COUNT SUM`, from a consumer.
    Got {
        /// Messages taken.
        count: u64,
        /// Wrapping sum of their stamps.
        sum: u64,
    },
}

impl Report {
    /// A producer's report of what it put.
    pub fn sent(t: Tally) -> Report {
        Report::Sent {
            count: t.count,
            sum: t.sum,
        }
    }

    /// A consumer's report of what it took.
    pub fn got(t: Tally) -> Report {
        Report::Got {
            count: t.count,
            sum: t.sum,
        }
    }

    /// The count and checksum, whichever side reported them.
    pub fn tally(&self) -> Tally {
        match *self {
            Report::Sent { count, sum } | Report::Got { count, sum } => Tally { count, sum },
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Sent { count, sum } => write!(f, "sent {count} {sum}"),
            Report::Got { count, sum } => write!(f, "got {count} {sum}"),
        }
    }
}

impl FromStr for Report {
    type Err = ParseReportError;

    /// Parses a line as [`Display`](fmt::Display) writes it (surrounding
    /// whitespace, such as the newline, is ignored).
    fn from_str(line: &str) -> Result<Report, ParseReportError> {
        let bad = || ParseReportError {
            line: line.to_owned(),
        };
        let mut words = line.split_whitespace();
        let kind = words.next();
        let mut number = || {
            words
                .next()
                .and_then(|w| w.parse::<u64>().ok())
                .ok_or_else(bad)
        };
        let (count, sum) = (number()?, number()?);
        if words.next().is_some() {
            return Err(bad());
        }
        match kind {
            Some("sent") => Ok(Report::Sent { count, sum }),
            Some("got") => Ok(Report::Got { count, sum }),
            _ => Err(bad()),
        }
    }
}

/// A line that is not a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseReportError {
    /// The line.
    pub line: String,
}

impl fmt::Display for ParseReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unexpected worker report {:?} (expected 'sent COUNT SUM' or 'got COUNT SUM')",
            self.line
        )
    }
}

impl std::error::Error for ParseReportError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_lines() {
        for r in [
            Report::Sent { count: 0, sum: 0 },
            Report::Got {
                count: u64::MAX,
                sum: u64::MAX,
            },
        ] {
            assert_eq!(r.to_string().parse::<Report>(), Ok(r));
            assert_eq!(format!("{r}\n").parse::<Report>(), Ok(r));
        }
        for bad in [
            "",
            "ready",
            "done 5",
            "sent",
            "sent 1",
            "sent 1 x",
            "got 1 2 3",
            "put 1 2",
            "sent -1 2",
        ] {
            let e = bad.parse::<Report>().unwrap_err();
            assert_eq!(e.line, bad);
            assert!(e.to_string().contains("unexpected worker report"), "{e}");
        }
    }
}
