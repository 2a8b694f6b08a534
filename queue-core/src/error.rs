//! One error type per operation. Every message names the thing and the value
//! and, where there is one, gives a hint; text is lowercase without a final
//! period so that callers can wrap it (`mq: <error>`).

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Errors of [`Builder::create`](crate::Builder::create),
/// [`Builder::open_or_create`](crate::Builder::open_or_create) and
/// [`Queue::open`](crate::Queue::open).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not 1-200 characters of `[A-Za-z0-9._-]` not starting with '.'.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Capacity, message size or participant count cannot make a queue.
    #[error("invalid settings for queue {name:?}: {reason}")]
    InvalidConfig {
        /// The queue name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// No queue of that name in the queue directory.
    #[error("queue {name:?} not found in {dir} (create it with 'mq create {name}')")]
    NotFound {
        /// The queue name.
        name: String,
        /// The queue directory searched.
        dir: PathBuf,
    },
    /// `create` found a queue (or another file) of that name.
    #[error(
        "queue {name:?} already exists in {dir} (open it, or remove it first with 'mq rm {name}')"
    )]
    AlreadyExists {
        /// The queue name.
        name: String,
        /// The queue directory.
        dir: PathBuf,
    },
    /// The file exists but this user may not read and write it.
    #[error("permission denied on queue {name:?} ({path}, owner uid {owner_uid}, mode {mode:o}){}",
        if *owner_uid == crate::sys::current_uid() { "" } else { " (ask its owner, or create it with a group or world mode such as 0o660)" })]
    PermissionDenied {
        /// The queue name.
        name: String,
        /// The segment file (or the directory, when creating).
        path: PathBuf,
        /// Owner of the file.
        owner_uid: u32,
        /// Permission bits of the file.
        mode: u32,
    },
    /// The segment was made by an incompatible version of this library.
    #[error(
        "queue {name:?} ({path}) has layout version {found}, this build understands version {expected} (drain it with the build that made it, or remove it with 'mq rm {name}' and create it again)"
    )]
    Incompatible {
        /// The queue name.
        name: String,
        /// The segment file.
        path: PathBuf,
        /// Layout version found in the segment.
        found: u64,
        /// Layout version this build writes.
        expected: u64,
    },
    /// A file of the queue's name exists but is not a queue segment (its
    /// first bytes are not the magic). It is left alone.
    #[error(
        "{path} is not a queue segment ({what}); it was left alone: move it away, or choose another queue name"
    )]
    NotAQueue {
        /// The queue name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What was found instead.
        what: String,
    },
    /// The segment's header contradicts itself or the file.
    #[error("queue {name:?} is corrupted: {what} ({path}; remove it with 'mq rm --force {name}')")]
    Corrupted {
        /// The queue name.
        name: String,
        /// The segment file.
        path: PathBuf,
        /// What was found.
        what: String,
    },
    /// The creator never finished initialising the segment.
    #[error(
        "queue {name:?} was never finished by its creator ({path}; {}", if *creator_alive { "it is still being created, try again)" } else { "the creator died: remove it with 'mq rm --force {name}')" }
    )]
    Unfinished {
        /// The queue name.
        name: String,
        /// The segment file.
        path: PathBuf,
        /// Whether the creator still holds its initialisation lock.
        creator_alive: bool,
    },
    /// The file system holding the queue directory has no room for the segment.
    #[error(
        "no space for queue {name:?} in {dir}: it needs {needed} bytes (free space there, or choose a smaller capacity or max message size)"
    )]
    OutOfSpace {
        /// The queue name.
        name: String,
        /// The queue directory.
        dir: PathBuf,
        /// Size of the segment that did not fit.
        needed: usize,
    },
    /// Every participant entry is held by a live process.
    #[error(
        "queue {name:?} has no free participant entry: all {limit} are held by live handles (close some handles, or create the queue with a larger max_participants)"
    )]
    TooManyParticipants {
        /// The queue name.
        name: String,
        /// Size of the participant table.
        limit: usize,
    },
    /// Any other system error, with what was being done.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done ("create", "map", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
}

/// Errors of the `put` family.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutError {
    /// The priority is not one of the queue's levels.
    #[error(
        "priority {priority} is out of range: the queue has {priorities} level(s), 0 to {} (create it with more priorities)", priorities - 1
    )]
    InvalidPriority {
        /// The priority given.
        priority: usize,
        /// The queue's number of levels.
        priorities: usize,
    },
    /// The message does not fit a slot.
    #[error(
        "message is {len} bytes, the queue takes at most {max} (create it with a larger max message size)"
    )]
    TooLarge {
        /// Length of the message.
        len: usize,
        /// The queue's maximum message size.
        max: usize,
    },
    /// No free slot (`try_put` only).
    #[error("queue is full")]
    Full,
    /// No free slot before the deadline.
    #[error("timed out waiting for a free slot")]
    Timeout,
    /// The queue was closed: no more messages are accepted.
    #[error("queue is closed")]
    Closed,
    /// The segment holds states the protocol never writes.
    #[error("queue segment is corrupted: {0}")]
    Corrupted(Corruption),
}

/// Errors of the `get` family.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetError {
    /// No message (`try_get` only).
    #[error("queue is empty")]
    Empty,
    /// No message before the deadline.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The queue was closed and every message has been taken.
    #[error("queue is closed and drained")]
    Closed,
    /// The segment holds states or lengths the protocol never writes.
    #[error("queue segment is corrupted: {0}")]
    Corrupted(Corruption),
}

/// What a put or get found in the segment that the protocol never writes:
/// the damage a foreign (buggy or hostile) writer left. Carried by
/// [`PutError::Corrupted`] and [`GetError::Corrupted`]; its `Display` names
/// the slot and the values found.
///
/// ```
/// use queue_core::Corruption;
/// let c = Corruption::TakenOver { slot: 3 };
/// assert_eq!(c.to_string(), "slot 3 was taken over by another process while being read");
/// ```
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A slot under a cursor holds a state word no lap or kind allows there.
    #[error("slot {slot} holds state {state:#018x} where lap {expected_lap} was expected")]
    BadSlotState {
        /// Slot index.
        slot: usize,
        /// The raw state word found.
        state: u64,
        /// The lap the cursor pointed at.
        expected_lap: u32,
    },
    /// A claimed slot says its message is longer than a slot holds (the
    /// message is dropped).
    #[error(
        "slot {slot} claims a {len}-byte message, more than the {max}-byte maximum (message dropped)"
    )]
    OversizedLength {
        /// Slot index.
        slot: usize,
        /// The length found (raw: it may exceed `usize` on a 32-bit target).
        len: u64,
        /// The queue's maximum message size.
        max: usize,
    },
    /// The queue is closed and a slot holds a message (or an unknown state)
    /// that no getter can ever reach.
    #[error(
        "the queue is closed and slot {slot} holds state {state:#018x}, which no getter can ever reach (the head waits at lap {head_lap})"
    )]
    Stranded {
        /// Slot index.
        slot: usize,
        /// The raw state word found.
        state: u64,
        /// The lap the head waits at.
        head_lap: u32,
    },
    /// The slot being read was rewritten by another process before the
    /// hand-over.
    #[error("slot {slot} was taken over by another process while being read")]
    TakenOver {
        /// Slot index.
        slot: usize,
    },
}

impl From<crate::ring::Damage> for Corruption {
    fn from(d: crate::ring::Damage) -> Self {
        Corruption::BadSlotState {
            slot: d.idx as usize,
            state: d.found,
            expected_lap: d.expected_lap,
        }
    }
}

/// Errors of [`Lease::ack`](crate::Lease::ack).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckError {
    /// The slot no longer belongs to this lease: another process rewrote it.
    #[error("lease on slot {slot} was lost: the slot was changed by another process")]
    Lost {
        /// The slot index.
        slot: usize,
    },
    /// The lease's deadline passed and the message was put back for another
    /// getter (who may be handling it now); renew long tasks in time.
    #[error(
        "lease on slot {slot} expired {late_ms} ms ago and its message was put back (call Lease::renew more often than the queue's lease timeout of {timeout_ms} ms)"
    )]
    Expired {
        /// The slot index.
        slot: usize,
        /// Milliseconds since the deadline passed.
        late_ms: u64,
        /// The queue's lease timeout in milliseconds.
        timeout_ms: u64,
    },
}

/// Errors of [`Queue::close`](crate::Queue::close).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// `close` was called before (by any process).
    #[error("queue is already closed")]
    AlreadyClosed,
}

/// Errors of [`Queue::remove`](crate::Queue::remove).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name is not a valid queue name.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No such queue.
    #[error("queue {name:?} not found in {dir} (list queues with 'mq ls')")]
    NotFound {
        /// The queue name.
        name: String,
        /// The queue directory.
        dir: PathBuf,
    },
    /// The file of that name is not a queue segment; it was left alone.
    #[error("{path} is not a queue segment, refusing to remove it")]
    NotAQueue {
        /// The file.
        path: PathBuf,
    },
    /// This user may not remove it.
    #[error(
        "permission denied removing queue {name:?} ({path}, owner uid {owner_uid}: the queue directory must be writable by you, and sticky directories such as /dev/shm only let the owner remove)"
    )]
    PermissionDenied {
        /// The queue name.
        name: String,
        /// The segment file.
        path: PathBuf,
        /// Owner of the file (`u32::MAX` if it could not be found out).
        owner_uid: u32,
    },
    /// Any other system error.
    #[error("cannot remove {path}")]
    Io {
        /// The segment file.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
}
