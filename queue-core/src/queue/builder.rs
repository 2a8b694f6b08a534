//! [`Builder`]: the settings of a new queue, checked before anything touches
//! the file system, and the defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::Queue;
use crate::dead_letter;
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
    pub(super) dead_letter: Option<String>,
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
    /// (a "poison" message that kills every consumer), or moved to the
    /// [dead-letter queue](Self::dead_letter) if there is one. 0 is an error.
    pub fn max_deliveries(mut self, n: usize) -> Self {
        self.max_deliveries = Some(n);
        self
    }

    /// Where a message goes instead of being dropped when it would be
    /// delivered for the [`max_deliveries`](Self::max_deliveries)` + 1`-th
    /// time: the queue `name`, in the same directory, created with this
    /// queue's capacity, message size and priorities if it is missing (and
    /// no delivery rules of its own). The message keeps its priority level;
    /// a [`Lease`](crate::Lease) of it in the dead-letter queue tells where
    /// it came from and how often it was delivered
    /// ([`Lease::dead_letter`](crate::Lease::dead_letter)). Counted in
    /// [`Stats::dead_lettered`](crate::Stats::dead_lettered).
    ///
    /// The move is exactly once under `kill -9` at any instruction
    /// (`docs/design.md`, "Dead-letter queues"). A dead-letter queue serves
    /// one queue: a second queue naming it is an error. Needs
    /// `max_deliveries`. While the dead-letter queue is full (or closed) the
    /// message stays where it is and getters of its level wait. A
    /// dead-letter queue removed while this queue is in use is made again
    /// at the next move.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("mq-doc-dead-letter-{}", std::process::id()));
    /// use queue_core::Queue;
    /// let q = Queue::builder("jobs").dir(&dir)
    ///     .max_deliveries(1)
    ///     .dead_letter("jobs.dead")
    ///     .create()?;
    /// q.put(b"poison")?;
    /// drop(q.get_lease()?); // delivered once, put back unacked
    /// assert!(q.try_get().is_err()); // the second delivery moves it instead
    /// let dead = Queue::open_in(&dir, "jobs.dead")?;
    /// let lease = dead.get_lease()?;
    /// assert_eq!(&*lease, b"poison");
    /// let origin = lease.dead_letter().expect("a dead letter");
    /// assert_eq!((origin.queue.as_str(), origin.deliveries), ("jobs", 1));
    /// lease.ack()?;
    /// # drop(q); drop(dead);
    /// # Queue::remove_in(&dir, "jobs")?;
    /// # Queue::remove_in(&dir, "jobs.dead")?;
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letter(mut self, name: &str) -> Self {
        self.dead_letter = Some(name.to_owned());
        self
    }

    /// Checks the dead-letter settings (name, `max_deliveries`).
    fn check_dead_letter(&self) -> Result<(), OpenError> {
        let Some(dlq) = &self.dead_letter else {
            return Ok(());
        };
        let invalid = |reason: String| OpenError::InvalidConfig {
            name: self.name.clone(),
            reason,
        };
        if let Err(why) = segment::validate_name(dlq) {
            return Err(invalid(format!(
                "dead-letter queue name {dlq:?} is not a queue name: {why}"
            )));
        }
        if *dlq == self.name {
            return Err(invalid(format!(
                "the dead-letter queue of {dlq:?} is {dlq:?} itself (hint: name another queue, e.g. {:?})",
                format!("{dlq}.dead")
            )));
        }
        if self.max_deliveries.is_none() {
            return Err(invalid(format!(
                "dead_letter({dlq:?}) without max_deliveries: no message would ever be a dead \
                 letter (hint: add .max_deliveries(n), e.g. 5)"
            )));
        }
        Ok(())
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
        self.check_dead_letter()?;
        let dir = segment::queue_dir(self.dir.as_deref());
        self.prepare_dead_letter(&dir, geometry)?;
        let seg = Segment::create(
            &self.name,
            &dir,
            geometry,
            delivery,
            self.dead_letter.as_deref(),
            self.mode,
        )?;
        Queue::attach(seg)
    }

    /// Opens or creates the dead-letter queue and registers this queue
    /// with it, before this queue exists (so a refusal leaves nothing).
    fn prepare_dead_letter(
        &self,
        dir: &std::path::Path,
        geometry: Geometry,
    ) -> Result<(), OpenError> {
        if let Some(dlq) = &self.dead_letter {
            dead_letter::open(dir, dlq, &self.name, geometry, self.mode, true)?;
        }
        Ok(())
    }

    /// Opens the queue if it exists (its own sizes and delivery settings
    /// win), else creates it.
    /// Safe when many processes race to do this at once: exactly one creates.
    pub fn open_or_create(self) -> Result<Queue, OpenError> {
        check_name(&self.name)?;
        let geometry = self.geometry()?;
        let delivery = self.delivery()?;
        self.check_dead_letter()?;
        let dir = segment::queue_dir(self.dir.as_deref());
        // A queue removed between our failed create and our open is simply
        // created again; give up only if that keeps happening.
        let mut last = None;
        for _ in 0..100 {
            if !segment::segment_path(&dir, &self.name).exists() {
                self.prepare_dead_letter(&dir, geometry)?;
            }
            let dlq = self.dead_letter.as_deref();
            match Segment::create(&self.name, &dir, geometry, delivery, dlq, self.mode) {
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
