//! Errors of the remote queue and the local-or-remote handle. The verb
//! errors mirror queue-core's (same variants, same text) plus `Net` for what
//! only a network can do; local errors convert into them, so one `match`
//! serves both kinds of queue. Text is lowercase, names the URL and the
//! value, and gives a hint.

use thiserror::Error;

/// What went wrong talking to a NATS server, or in naming a remote queue.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetError {
    /// The text is not a `nats://HOST:PORT/NAME` URL.
    #[error("invalid queue url {input:?}: {reason} (expected nats://HOST:PORT/NAME)")]
    InvalidUrl {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The queue name in the URL is not a valid queue name.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No server answers at that address.
    #[error("cannot reach {server} (is nats-server -js running?)")]
    Unreachable {
        /// `nats://HOST:PORT`.
        server: String,
    },
    /// The server runs without JetStream.
    #[error("{server} has no JetStream (start the server with 'nats-server -js')")]
    NoJetStream {
        /// `nats://HOST:PORT`.
        server: String,
    },
    /// No queue of that name on the server.
    #[error("queue {url} not found (create it with 'mq create {url}')")]
    NotFound {
        /// The queue URL.
        url: String,
    },
    /// `create` found a queue of that name.
    #[error("queue {url} already exists (open it, or remove it first with 'mq rm {url}')")]
    AlreadyExists {
        /// The queue URL.
        url: String,
    },
    /// The stream of that name was not made by mq.
    #[error("stream {stream:?} on {server} is not an mq queue; it was left alone")]
    NotAQueue {
        /// `nats://HOST:PORT`.
        server: String,
        /// The JetStream stream name.
        stream: String,
    },
    /// Settings that cannot make a queue.
    #[error("invalid settings for queue {url}: {reason}")]
    InvalidConfig {
        /// The queue URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The server refused or failed a request.
    #[error("cannot {action} {url}: {detail}")]
    Server {
        /// What was being done.
        action: &'static str,
        /// The queue or server URL.
        url: String,
        /// The server's or client's words.
        detail: String,
    },
}

/// Errors of opening or creating a local or remote queue.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A local queue could not be opened or created.
    #[error(transparent)]
    Local(#[from] queue_core::OpenError),
    /// A remote queue could not be opened or created.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Errors of removing a local or remote queue.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// A local queue could not be removed.
    #[error(transparent)]
    Local(#[from] queue_core::RemoveError),
    /// A remote queue could not be removed.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Errors of the `put` family (queue-core's, plus `Net`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutError {
    /// The message is larger than the queue takes.
    #[error(
        "message is {len} bytes, the queue takes at most {max} (create it with a larger max message size)"
    )]
    TooLarge {
        /// Length of the message.
        len: usize,
        /// The queue's maximum message size.
        max: usize,
    },
    /// The priority is not one of the queue's levels (a remote queue has
    /// one, level 0).
    #[error(
        "priority {priority} is out of range: the queue has {priorities} level(s), 0 to {} (create it with more priorities)", priorities - 1
    )]
    InvalidPriority {
        /// The priority given.
        priority: usize,
        /// The queue's number of levels.
        priorities: usize,
    },
    /// The queue is full (`try_put` only).
    #[error("queue is full")]
    Full,
    /// No room before the deadline (or the server stayed away until then).
    #[error("timed out waiting for a free slot")]
    Timeout,
    /// The queue was closed: no more messages are accepted.
    #[error("queue is closed")]
    Closed,
    /// A local segment holds states the protocol never writes.
    #[error("queue segment is corrupted: {0}")]
    Corrupted(String),
    /// The server failed in a way waiting does not mend.
    #[error(transparent)]
    Net(NetError),
}

impl From<queue_core::PutError> for PutError {
    fn from(e: queue_core::PutError) -> Self {
        match e {
            queue_core::PutError::TooLarge { len, max } => PutError::TooLarge { len, max },
            queue_core::PutError::InvalidPriority {
                priority,
                priorities,
            } => PutError::InvalidPriority {
                priority,
                priorities,
            },
            queue_core::PutError::Full => PutError::Full,
            queue_core::PutError::Timeout => PutError::Timeout,
            queue_core::PutError::Closed => PutError::Closed,
            queue_core::PutError::Corrupted(c) => PutError::Corrupted(c.to_string()),
            other => PutError::Corrupted(other.to_string()),
        }
    }
}

/// Errors of the `get` family (queue-core's, plus `Net`).
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
    /// A local segment holds states the protocol never writes.
    #[error("queue segment is corrupted: {0}")]
    Corrupted(String),
    /// The server failed in a way waiting does not mend.
    #[error(transparent)]
    Net(NetError),
}

impl From<queue_core::GetError> for GetError {
    fn from(e: queue_core::GetError) -> Self {
        match e {
            queue_core::GetError::Empty => GetError::Empty,
            queue_core::GetError::Timeout => GetError::Timeout,
            queue_core::GetError::Closed => GetError::Closed,
            queue_core::GetError::Corrupted(c) => GetError::Corrupted(c.to_string()),
            other => GetError::Corrupted(other.to_string()),
        }
    }
}

/// Errors of acking a lease.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckError {
    /// The lease was lost: the message went back to the queue (a local slot
    /// was rewritten, or the remote ack wait ran out and the server refused).
    #[error("lease was lost: {0}")]
    Lost(String),
    /// The server did not confirm the ack (the message may come again).
    #[error(transparent)]
    Net(NetError),
}

impl From<queue_core::AckError> for AckError {
    fn from(e: queue_core::AckError) -> Self {
        AckError::Lost(e.to_string())
    }
}

/// Errors of `close`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// The queue was closed before (by any process, on any machine).
    #[error("queue is already closed")]
    AlreadyClosed,
    /// The server failed.
    #[error(transparent)]
    Net(NetError),
}

impl From<queue_core::CloseError> for CloseError {
    fn from(e: queue_core::CloseError) -> Self {
        match e {
            queue_core::CloseError::AlreadyClosed => CloseError::AlreadyClosed,
            other => CloseError::Net(NetError::Server {
                action: "close",
                url: String::new(),
                detail: other.to_string(),
            }),
        }
    }
}
