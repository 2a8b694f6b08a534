//! [`Builder`]: the settings of a new queue, checked before anything touches
//! the file system, and the defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::Queue;
use crate::error::OpenError;
use crate::layout::{Delivery, Geometry, GeometryError, MAX_PARTICIPANTS_LIMIT, MAX_PRIORITIES};
use crate::segment::{self, Segment};

/// Default number of messages a queue holds.
pub const DEFAULT_CAPACITY: usize = 1024;
/// Default largest message, in bytes.
pub const DEFAULT_MAX_MSG_SIZE: usize = 4096;
/// Default file mode of a new segment: owner read/write only.
pub const DEFAULT_MODE: u32 = 0o600;
/// Default number of handles that may be attached at once.
pub const DEFAULT_MAX_PARTICIPANTS: usize = 256;

/// Settings for a new queue; made by [`Queue::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(super) name: String,
    pub(super) capacity: usize,
    pub(super) max_msg_size: usize,
    pub(super) mode: u32,
    pub(super) max_participants: usize,
    pub(super) dir: Option<PathBuf>,
    pub(super) lease_timeout: Option<Duration>,
    pub(super) max_deliveries: Option<usize>,
    pub(super) priorities: usize,
}

impl Builder {
    /// Number of messages the queue holds (default 1024; 0 is an error).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Largest message in bytes (default 4096). Every slot reserves this
    /// much, so the segment takes about `capacity * max_msg_size` bytes.
    pub fn max_msg_size(mut self, bytes: usize) -> Self {
        self.max_msg_size = bytes;
        self
    }

    /// File mode of the segment (default `0o600`). Applied exactly, whatever
    /// the umask: `0o660` lets the group use the queue.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How many handles may be attached at once (default 256, at most 4096).
    pub fn max_participants(mut self, n: usize) -> Self {
        self.max_participants = n;
        self
    }

    /// The queue directory (default: `$MQ_DIR`, else `/dev/shm`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Number of priority levels, `0 .. n` (default 1: no priorities).
    /// A get takes the oldest message of the highest level that has one;
    /// messages of one level come out in order (FIFO), and a message that
    /// is delivered again keeps its level. Put with
    /// [`Queue::put_priority`]; [`Queue::put`] puts at level 0.
    ///
    /// Each level is a ring of its own with [`capacity`](Self::capacity)
    /// slots, so the queue holds `capacity * n` messages in all and a full
    /// level does not block a put at another (the memory grows `n` times).
    /// At most 64.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("mq-doc-priorities-{}", std::process::id()));
    /// use queue_core::Queue;
    /// let q = Queue::builder("jobs").dir(&dir).priorities(4).create()?;
    /// q.put(b"normal")?;
    /// q.put_priority(b"urgent", 3)?;
    /// assert_eq!(q.get()?, b"urgent");
    /// assert_eq!(q.get()?, b"normal");
    /// # drop(q);
    /// # Queue::remove_in(&dir, "jobs")?;
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn priorities(mut self, n: usize) -> Self {
        self.priorities = n;
        self
    }

    /// How long a lease lasts without [`Lease::ack`](crate::Lease::ack) or
    /// [`Lease::renew`](crate::Lease::renew) (default: no deadline, a lease
    /// lasts while its holder lives). A lease past its deadline is put back
    /// for another getter by whichever participant notices first (within
    /// about 100 ms of the deadline, while anyone waits on the queue), even
    /// though its holder lives; the holder's late `ack` then fails with
    /// [`AckError::Expired`](crate::AckError::Expired). Stored in the
    /// segment: every process sees the same rule. Millisecond resolution.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("mq-doc-lease-timeout-{}", std::process::id()));
    /// use std::time::Duration;
    /// use queue_core::Queue;
    /// let q = Queue::builder("jobs").dir(&dir)
    ///     .lease_timeout(Duration::from_secs(30))
    ///     .max_deliveries(5)
    ///     .create()?;
    /// q.put(b"work")?;
    /// let lease = q.get_lease()?;
    /// assert_eq!(lease.deliveries(), 1);
    /// lease.renew()?; // a long task: another 30 s
    /// lease.ack()?;
    /// # drop(q);
    /// # Queue::remove_in(&dir, "jobs")?;
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_timeout(mut self, timeout: Duration) -> Self {
        self.lease_timeout = Some(timeout);
        self
    }

    /// How many times a message may be delivered (default: unlimited). A
    /// delivery is a get or a lease; a message comes back after its reader
    /// died, its lease was released or dropped, or its deadline passed. When
    /// a message would be delivered for the `n + 1`-th time it is dropped
    /// instead and counted in [`Stats::dropped_poison`](crate::Stats::dropped_poison)
    /// (a "poison" message that kills every consumer). 0 is an error.
    pub fn max_deliveries(mut self, n: usize) -> Self {
        self.max_deliveries = Some(n);
        self
    }

    fn delivery(&self) -> Result<Delivery, OpenError> {
        let invalid = |reason: String| OpenError::InvalidConfig {
            name: self.name.clone(),
            reason,
        };
        let lease_timeout_ns = match self.lease_timeout {
            None => 0,
            Some(t) if t < Duration::from_millis(1) => {
                return Err(invalid(format!(
                    "lease timeout is {t:?} (at least 1 ms; leave it unset for no deadline)"
                )));
            }
            Some(t) => u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
        };
        let max_deliveries = match self.max_deliveries {
            None => 0,
            Some(0) => {
                return Err(invalid(
                    "max deliveries is 0 (at least 1; leave it unset for unlimited)".into(),
                ));
            }
            Some(n) => n as u64,
        };
        Ok(Delivery {
            lease_timeout_ns,
            max_deliveries,
        })
    }

    fn geometry(&self) -> Result<Geometry, OpenError> {
        let invalid = |reason: String| OpenError::InvalidConfig {
            name: self.name.clone(),
            reason,
        };
        if self.mode & !0o777 != 0 {
            return Err(invalid(format!(
                "mode {:o} has bits outside 0o777",
                self.mode
            )));
        }
        Geometry::with_priorities(
            self.capacity as u64,
            self.max_msg_size as u64,
            self.max_participants as u64,
            self.priorities as u64,
        )
        .map_err(|e| {
            invalid(match e {
                GeometryError::ZeroCapacity => {
                    "capacity is 0 (a queue must hold at least one message)".into()
                }
                GeometryError::BadParticipants => format!(
                    "max participants is {} (allowed: 1 to {})",
                    self.max_participants, MAX_PARTICIPANTS_LIMIT
                ),
                GeometryError::BadPriorities => format!(
                    "priorities is {} (allowed: 1 to {MAX_PRIORITIES})",
                    self.priorities
                ),
                GeometryError::Overflow => format!(
                    "capacity {} x max message size {} does not fit in memory",
                    self.capacity, self.max_msg_size
                ),
            })
        })
    }

    /// Creates the queue; fails with [`OpenError::AlreadyExists`] if it exists.
    pub fn create(self) -> Result<Queue, OpenError> {
        check_name(&self.name)?;
        let geometry = self.geometry()?;
        let delivery = self.delivery()?;
        let dir = segment::queue_dir(self.dir.as_deref());
        let seg = Segment::create(&self.name, &dir, geometry, delivery, self.mode)?;
        Queue::attach(seg)
    }

    /// Opens the queue if it exists (its own sizes and delivery settings
    /// win), else creates it.
    /// Safe when many processes race to do this at once: exactly one creates.
    pub fn open_or_create(self) -> Result<Queue, OpenError> {
        check_name(&self.name)?;
        let geometry = self.geometry()?;
        let delivery = self.delivery()?;
        let dir = segment::queue_dir(self.dir.as_deref());
        // A queue removed between our failed create and our open is simply
        // created again; give up only if that keeps happening.
        let mut last = None;
        for _ in 0..100 {
            match Segment::create(&self.name, &dir, geometry, delivery, self.mode) {
                Ok(seg) => return Queue::attach(seg),
                Err(OpenError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            match Segment::open(&self.name, &dir) {
                Ok(seg) => return Queue::attach(seg),
                Err(e @ OpenError::NotFound { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("loop ran"))
    }
}

/// Checks a queue name before anything touches the file system.
pub(crate) fn check_name(name: &str) -> Result<(), OpenError> {
    segment::validate_name(name).map_err(|reason| OpenError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}
