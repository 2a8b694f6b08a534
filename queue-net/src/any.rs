//! [`AnyQueue`]: one handle for a local queue (a name) or a remote one (a
//! `nats://` URL), with the verbs both share. The CLI opens every queue
//! through it.

use std::ops::Deref;
use std::time::Duration;

use queue_core::Queue;

use crate::admin::CreateOptions;
use crate::error::{AckError, CloseError, GetError, NetError, OpenError, PutError, RemoveError};
use crate::lease::RemoteLease;
use crate::remote::RemoteQueue;
use crate::target::Target;

/// A local or a remote queue.
// A handle is made once per program and lives as long, so its size does not
// matter; boxing the local variant would only add a pointer to every call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyQueue {
    /// A queue in shared memory on this machine.
    Local(Queue),
    /// A queue on a NATS JetStream server (boxed: it is much larger).
    Remote(Box<RemoteQueue>),
}

impl From<Queue> for AnyQueue {
    fn from(q: Queue) -> Self {
        AnyQueue::Local(q)
    }
}

impl From<RemoteQueue> for AnyQueue {
    fn from(q: RemoteQueue) -> Self {
        AnyQueue::Remote(Box::new(q))
    }
}

/// Calls the same verb on either kind of queue, converting the error.
macro_rules! either {
    ($self:expr, $q:ident => $call:expr) => {
        match $self {
            AnyQueue::Local($q) => $call.map_err(Into::into),
            AnyQueue::Remote($q) => $call,
        }
    };
}

impl AnyQueue {
    /// Opens `jobs` (in the queue directory) or `nats://HOST:PORT/jobs`.
    pub fn open(name_or_url: &str) -> Result<AnyQueue, OpenError> {
        Ok(match Target::parse(name_or_url)? {
            Target::Local(name) => AnyQueue::Local(Queue::open(&name)?),
            Target::Remote(_) => RemoteQueue::open(name_or_url)?.into(),
        })
    }

    /// Creates `jobs` or `nats://HOST:PORT/jobs`; fails if it exists.
    pub fn create(name_or_url: &str, opts: &CreateOptions) -> Result<AnyQueue, OpenError> {
        Ok(match Target::parse(name_or_url)? {
            Target::Local(name) => AnyQueue::Local(
                Queue::builder(&name)
                    .capacity(opts.capacity)
                    .max_msg_size(opts.max_msg_size)
                    .mode(opts.mode)
                    .create()?,
            ),
            Target::Remote(_) => RemoteQueue::create(name_or_url, opts)?.into(),
        })
    }

    /// Removes `jobs` or `nats://HOST:PORT/jobs`.
    pub fn remove(name_or_url: &str) -> Result<(), RemoveError> {
        match Target::parse(name_or_url)? {
            Target::Local(name) => Ok(Queue::remove(&name)?),
            Target::Remote(_) => Ok(RemoteQueue::remove(name_or_url)?),
        }
    }

    /// The queue's name or URL, as a user would type it.
    pub fn display(&self) -> String {
        match self {
            AnyQueue::Local(q) => q.name().to_owned(),
            AnyQueue::Remote(q) => q.url().to_string(),
        }
    }

    /// The remote queue, if this is one.
    pub fn as_remote(&self) -> Option<&RemoteQueue> {
        match self {
            AnyQueue::Remote(q) => Some(&**q),
            AnyQueue::Local(_) => None,
        }
    }

    /// The local queue, if this is one.
    pub fn as_local(&self) -> Option<&Queue> {
        match self {
            AnyQueue::Local(q) => Some(q),
            AnyQueue::Remote(_) => None,
        }
    }

    /// See `Queue::put` / [`RemoteQueue::put`].
    pub fn put(&self, msg: &[u8]) -> Result<(), PutError> {
        either!(self, q => q.put(msg))
    }

    /// See `Queue::try_put` / [`RemoteQueue::try_put`].
    pub fn try_put(&self, msg: &[u8]) -> Result<(), PutError> {
        either!(self, q => q.try_put(msg))
    }

    /// See `Queue::put_timeout` / [`RemoteQueue::put_timeout`].
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), PutError> {
        either!(self, q => q.put_timeout(msg, timeout))
    }

    /// Priority levels (`Queue::priorities`); a remote queue has one.
    pub fn priorities(&self) -> usize {
        match self {
            AnyQueue::Local(q) => q.priorities(),
            AnyQueue::Remote(_) => 1,
        }
    }

    /// The lease deadline (`Queue::lease_timeout`); a remote lease lasts the
    /// server's ack wait instead, so `None` for a remote queue.
    pub fn lease_timeout(&self) -> Option<Duration> {
        match self {
            AnyQueue::Local(q) => q.lease_timeout(),
            AnyQueue::Remote(_) => None,
        }
    }

    /// See `Queue::put_priority`; a remote queue has level 0 only.
    pub fn put_priority(&self, msg: &[u8], priority: usize) -> Result<(), PutError> {
        match self {
            AnyQueue::Local(q) => Ok(q.put_priority(msg, priority)?),
            AnyQueue::Remote(q) => only_level_0(priority).and_then(|()| q.put(msg)),
        }
    }

    /// See `Queue::try_put_priority`; a remote queue has level 0 only.
    pub fn try_put_priority(&self, msg: &[u8], priority: usize) -> Result<(), PutError> {
        match self {
            AnyQueue::Local(q) => Ok(q.try_put_priority(msg, priority)?),
            AnyQueue::Remote(q) => only_level_0(priority).and_then(|()| q.try_put(msg)),
        }
    }

    /// See `Queue::put_priority_timeout`; a remote queue has level 0 only.
    pub fn put_priority_timeout(
        &self,
        msg: &[u8],
        priority: usize,
        timeout: Duration,
    ) -> Result<(), PutError> {
        match self {
            AnyQueue::Local(q) => Ok(q.put_priority_timeout(msg, priority, timeout)?),
            AnyQueue::Remote(q) => {
                only_level_0(priority).and_then(|()| q.put_timeout(msg, timeout))
            }
        }
    }

    /// See `Queue::put_many` / [`RemoteQueue::put_many`]: on error, how many
    /// (the first ones) were put.
    pub fn put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), (usize, PutError)> {
        match self {
            AnyQueue::Local(q) => q.put_many(msgs).map_err(|(n, e)| (n, e.into())),
            AnyQueue::Remote(q) => q.put_many(msgs),
        }
    }

    /// See `Queue::get_many` / [`RemoteQueue::get_many`].
    pub fn get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        either!(self, q => q.get_many(max))
    }

    /// See `Queue::get` / [`RemoteQueue::get`].
    pub fn get(&self) -> Result<Vec<u8>, GetError> {
        either!(self, q => q.get())
    }

    /// See `Queue::try_get` / [`RemoteQueue::try_get`].
    pub fn try_get(&self) -> Result<Vec<u8>, GetError> {
        either!(self, q => q.try_get())
    }

    /// See `Queue::get_timeout` / [`RemoteQueue::get_timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        either!(self, q => q.get_timeout(timeout))
    }

    /// See `Queue::get_lease` / [`RemoteQueue::get_lease`].
    pub fn get_lease(&self) -> Result<AnyLease<'_>, GetError> {
        match self {
            AnyQueue::Local(q) => Ok(AnyLease::Local(q.get_lease()?)),
            AnyQueue::Remote(q) => Ok(AnyLease::Remote(Box::new(q.get_lease()?))),
        }
    }

    /// See `Queue::try_get_lease` / [`RemoteQueue::try_get_lease`].
    pub fn try_get_lease(&self) -> Result<AnyLease<'_>, GetError> {
        match self {
            AnyQueue::Local(q) => Ok(AnyLease::Local(q.try_get_lease()?)),
            AnyQueue::Remote(q) => Ok(AnyLease::Remote(Box::new(q.try_get_lease()?))),
        }
    }

    /// See `Queue::get_lease_timeout` / [`RemoteQueue::get_lease_timeout`].
    pub fn get_lease_timeout(&self, timeout: Duration) -> Result<AnyLease<'_>, GetError> {
        match self {
            AnyQueue::Local(q) => Ok(AnyLease::Local(q.get_lease_timeout(timeout)?)),
            AnyQueue::Remote(q) => Ok(AnyLease::Remote(Box::new(q.get_lease_timeout(timeout)?))),
        }
    }

    /// Leases up to `max` messages if there are any now: a remote queue
    /// takes them in one pull ([`RemoteQueue::try_get_leases`]); a local one
    /// leases one (a local get costs no round trip to save). Ack them
    /// together with [`AnyLease::ack_many`].
    pub fn try_get_leases(&self, max: usize) -> Result<Vec<AnyLease<'_>>, GetError> {
        match self {
            AnyQueue::Local(q) => Ok(vec![AnyLease::Local(q.try_get_lease()?)]),
            AnyQueue::Remote(q) => Ok(boxed(q.try_get_leases(max)?)),
        }
    }

    /// Like [`try_get_leases`](Self::try_get_leases), waiting at most
    /// `timeout` for the first message.
    pub fn get_leases_timeout(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<AnyLease<'_>>, GetError> {
        match self {
            AnyQueue::Local(q) => Ok(vec![AnyLease::Local(q.get_lease_timeout(timeout)?)]),
            AnyQueue::Remote(q) => Ok(boxed(q.get_leases_timeout(max, timeout)?)),
        }
    }

    /// Closes the queue (see `Queue::close` / [`RemoteQueue::close`]).
    pub fn close(&self) -> Result<(), CloseError> {
        either!(self, q => q.close())
    }

    /// The oldest message without taking it.
    pub fn peek(&self) -> Result<Option<Vec<u8>>, NetError> {
        match self {
            AnyQueue::Local(q) => Ok(q.peek()),
            AnyQueue::Remote(q) => q.peek(),
        }
    }

    /// Messages in the queue (a request to the server for a remote queue).
    pub fn len(&self) -> Result<usize, NetError> {
        match self {
            AnyQueue::Local(q) => Ok(q.len()),
            AnyQueue::Remote(q) => q.len(),
        }
    }

    /// Whether the queue holds no message.
    pub fn is_empty(&self) -> Result<bool, NetError> {
        Ok(self.len()? == 0)
    }

    /// How many messages the queue holds.
    pub fn capacity(&self) -> usize {
        match self {
            AnyQueue::Local(q) => q.capacity(),
            AnyQueue::Remote(q) => q.capacity(),
        }
    }

    /// Largest message in bytes.
    pub fn max_msg_size(&self) -> usize {
        match self {
            AnyQueue::Local(q) => q.max_msg_size(),
            AnyQueue::Remote(q) => q.max_msg_size(),
        }
    }
}

/// A lease on a message of an [`AnyQueue`].
#[must_use = "an unacked lease puts its message back when dropped"]
#[derive(Debug)]
pub enum AnyLease<'q> {
    /// A lease on a local slot.
    Local(queue_core::Lease<'q>),
    /// An unacked remote message (boxed: it is much larger).
    Remote(Box<RemoteLease>),
}

impl AnyLease<'_> {
    /// Confirms the message was handled.
    pub fn ack(self) -> Result<(), AckError> {
        match self {
            AnyLease::Local(l) => Ok(l.ack()?),
            AnyLease::Remote(l) => (*l).ack(),
        }
    }

    /// Acks every lease: the remote ones together, in one confirmed round
    /// trip ([`RemoteLease::ack_many`]), the local ones one by one.
    pub fn ack_many(leases: Vec<AnyLease<'_>>) -> Result<(), AckError> {
        let mut remote = Vec::new();
        for lease in leases {
            match lease {
                AnyLease::Local(l) => l.ack()?,
                AnyLease::Remote(l) => remote.push(*l),
            }
        }
        RemoteLease::ack_many(remote)
    }

    /// Restarts a local lease's deadline (`Lease::renew`); a remote lease
    /// has none to restart here (the server's ack wait governs it).
    pub fn renew(&self) -> Result<(), AckError> {
        match self {
            AnyLease::Local(l) => Ok(l.renew()?),
            AnyLease::Remote(_) => Ok(()),
        }
    }

    /// Puts the message back now.
    pub fn release(self) {
        match self {
            AnyLease::Local(l) => l.release(),
            AnyLease::Remote(l) => (*l).release(),
        }
    }
}

impl Deref for AnyLease<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            AnyLease::Local(l) => l,
            AnyLease::Remote(l) => l,
        }
    }
}

fn boxed<'q>(leases: Vec<RemoteLease>) -> Vec<AnyLease<'q>> {
    leases
        .into_iter()
        .map(|l| AnyLease::Remote(Box::new(l)))
        .collect()
}

/// A remote queue has one priority level: any other is refused, as a local
/// queue refuses a level it does not have.
fn only_level_0(priority: usize) -> Result<(), PutError> {
    if priority == 0 {
        Ok(())
    } else {
        Err(queue_core::PutError::InvalidPriority {
            priority,
            priorities: 1,
        }
        .into())
    }
}
