//! [`TypedQueue`]: send serde values instead of bytes (encoded with postcard),
//! like Python's `multiprocessing.Queue` pickling objects.

use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::error::{AckError, GetError, OpenError, PutError};
use crate::queue::{Builder, Lease, Queue};

/// Errors of [`TypedQueue`]'s put family.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TypedPutError {
    /// The queue refused the encoded message.
    #[error(transparent)]
    Queue(#[from] PutError),
    /// The value could not be encoded.
    #[error("cannot encode the value: {0}")]
    Encode(postcard::Error),
}

/// Errors of [`TypedQueue`]'s get family.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TypedGetError {
    /// The queue gave no message.
    #[error(transparent)]
    Queue(#[from] GetError),
    /// A message was taken but is not a valid encoding of `T` (it is gone:
    /// whoever put it used another type).
    #[error("cannot decode a message of {len} bytes: {source}")]
    Decode {
        /// Length of the bad message.
        len: usize,
        /// What postcard said.
        source: postcard::Error,
    },
}

/// A queue of `T` values. Every participant must use the same `T`.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mq-doc-typed-{}", std::process::id()));
/// use queue_core::{Queue, TypedQueue};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Job { id: u32, url: String }
///
/// let q: TypedQueue<Job> = TypedQueue::new(Queue::builder("jobs").dir(&dir).create()?);
/// q.put(&Job { id: 1, url: "https://example.org".into() })?;
/// assert_eq!(q.get()?.id, 1);
/// # Queue::remove_in(&dir, "jobs")?;
/// # std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedQueue<T> {
    queue: Queue,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for TypedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedQueue").field(&self.queue).finish()
    }
}

impl<T: Serialize + DeserializeOwned> TypedQueue<T> {
    /// Wraps a byte queue.
    pub fn new(queue: Queue) -> Self {
        TypedQueue {
            queue,
            _type: PhantomData,
        }
    }

    /// Opens an existing queue by name.
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Queue::open(name).map(Self::new)
    }

    /// Creates (or opens) a queue from a builder.
    pub fn open_or_create(builder: Builder) -> Result<Self, OpenError> {
        builder.open_or_create().map(Self::new)
    }

    /// The underlying byte queue (for `len`, `close`, `stats`, ...).
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Unwraps the byte queue.
    pub fn into_inner(self) -> Queue {
        self.queue
    }

    fn encode(value: &T) -> Result<Vec<u8>, TypedPutError> {
        postcard::to_allocvec(value).map_err(TypedPutError::Encode)
    }

    fn decode(bytes: &[u8]) -> Result<T, TypedGetError> {
        postcard::from_bytes(bytes).map_err(|source| TypedGetError::Decode {
            len: bytes.len(),
            source,
        })
    }

    /// Puts a value, blocking while full.
    pub fn put(&self, value: &T) -> Result<(), TypedPutError> {
        Ok(self.queue.put(&Self::encode(value)?)?)
    }

    /// Puts a value if there is room now.
    pub fn try_put(&self, value: &T) -> Result<(), TypedPutError> {
        Ok(self.queue.try_put(&Self::encode(value)?)?)
    }

    /// Puts a value, waiting at most `timeout`.
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), TypedPutError> {
        Ok(self.queue.put_timeout(&Self::encode(value)?, timeout)?)
    }

    /// Takes a value, blocking while empty.
    pub fn get(&self) -> Result<T, TypedGetError> {
        Self::decode(&self.queue.get()?)
    }

    /// Takes a value if there is one now.
    pub fn try_get(&self) -> Result<T, TypedGetError> {
        Self::decode(&self.queue.try_get()?)
    }

    /// Takes a value, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, TypedGetError> {
        Self::decode(&self.queue.get_timeout(timeout)?)
    }

    /// Takes a value under a lease (see [`Queue::get_lease`]). A message that
    /// does not decode is acked (dropped) and reported, so it cannot loop.
    pub fn get_lease(&self) -> Result<TypedLease<'_, T>, TypedGetError> {
        self.lease(self.queue.get_lease()?)
    }

    /// Like [`get_lease`](Self::get_lease), waiting at most `timeout`.
    pub fn get_lease_timeout(&self, timeout: Duration) -> Result<TypedLease<'_, T>, TypedGetError> {
        self.lease(self.queue.get_lease_timeout(timeout)?)
    }

    fn lease<'q>(&'q self, lease: Lease<'q>) -> Result<TypedLease<'q, T>, TypedGetError> {
        match Self::decode(&lease) {
            Ok(value) => Ok(TypedLease { lease, value }),
            Err(e) => {
                let _ = lease.ack();
                Err(e)
            }
        }
    }

    /// Messages waiting now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no message waits now.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Ends the stream (see [`Queue::close`]).
    pub fn close(&self) -> Result<(), crate::CloseError> {
        self.queue.close()
    }
}

/// A decoded value under a lease; derefs to `T`.
#[derive(Debug)]
pub struct TypedLease<'q, T> {
    lease: Lease<'q>,
    value: T,
}

impl<T> TypedLease<'_, T> {
    /// Confirms the value was handled (see [`Lease::ack`]).
    pub fn ack(self) -> Result<(), AckError> {
        self.lease.ack()
    }

    /// Puts the message back for another getter.
    pub fn release(self) {
        self.lease.release()
    }
}

impl<T> Deref for TypedLease<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
