//! [`RemoteQueue`]: the queue verbs over one NATS JetStream stream. The
//! mapping (stream, consumer, close marker, bound, ids) is described in
//! `docs/scale-out.md`; the control plane (create, open, remove, list,
//! stats, close) is in `admin.rs`, the windowed publishing behind
//! `put_many` and the bridge in `publish.rs`, pulls and acks in
//! `consumer.rs`, deadlines and back-off in `retry.rs`, the lease in
//! `lease.rs`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use bytes::Bytes;

use crate::consumer::{Pulled, confirm_ack, confirm_all, is_close_marker, pass_on_marker, pull};
use crate::error::{GetError, NetError, PutError};
use crate::lease::RemoteLease;
use crate::publish::{PublishFailure, publish_once};
use crate::retry::{Deadline, GoneCheck, away_backoff, full_backoff};
use crate::runtime;
use crate::target::RemoteUrl;

/// Longest single pull request: a blocking get re-asks this often, so it
/// notices a server restart within about this long.
const POLL: Duration = Duration::from_secs(2);

/// How long a close marker seen too early (messages before it still in
/// flight) stays away before it is delivered again.
const MARKER_AGAIN: Duration = Duration::from_millis(200);

/// A handle on a remote queue: a WorkQueue stream on a NATS server with one
/// shared durable pull consumer. Blocking, `Send + Sync`, like
/// `queue_core::Queue`; threads may share one handle.
///
/// ```no_run
/// use queue_net::{CreateOptions, RemoteQueue};
/// let q = RemoteQueue::create("nats://127.0.0.1:4222/jobs", &CreateOptions::default())?;
/// q.put(b"job 1")?;
/// let lease = q.get_lease()?;
/// assert_eq!(&*lease, b"job 1");
/// lease.ack()?;
/// q.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RemoteQueue {
    pub(crate) url: RemoteUrl,
    pub(crate) js: jetstream::Context,
    pub(crate) stream: String,
    pub(crate) subject: String,
    pub(crate) consumer: PullConsumer,
    pub(crate) capacity: usize,
    pub(crate) max_msg_size: usize,
    pub(crate) ack_wait: Duration,
    /// Unique per handle (a NUID): the prefix of this handle's message ids.
    pub(crate) handle_id: String,
    /// Next message id suffix; a put keeps its id across retries.
    pub(crate) next_id: AtomicU64,
}

impl std::fmt::Debug for RemoteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteQueue")
            .field("url", &self.url.to_string())
            .field("stream", &self.stream)
            .finish()
    }
}

impl RemoteQueue {
    /// The queue's URL.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// The queue name.
    pub fn name(&self) -> &str {
        self.url.name.as_deref().unwrap_or_default()
    }

    /// How many messages the queue holds (the stream's `max_msgs`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Largest message in bytes.
    pub fn max_msg_size(&self) -> usize {
        self.max_msg_size
    }

    /// How long a lease may stay unacked before the server redelivers it.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// Puts a message, waiting while the queue is full or the server away.
    pub fn put(&self, msg: &[u8]) -> Result<(), PutError> {
        runtime::block_on(self.put_until(msg, Deadline::Never))
    }

    /// Puts a message if there is room now; `Full` otherwise. A server that
    /// cannot be reached is a `Net` error.
    pub fn try_put(&self, msg: &[u8]) -> Result<(), PutError> {
        runtime::block_on(self.put_until(msg, Deadline::Now))
    }

    /// Puts a message, waiting at most `timeout` for room (or the server).
    pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), PutError> {
        runtime::block_on(self.put_until(msg, Deadline::after(timeout)))
    }

    /// A message id unique to this put: retries reuse it, so the stream's
    /// duplicate window stores the message once however often it is sent.
    pub(crate) fn fresh_msg_id(&self) -> String {
        format!("{}.{}", self.handle_id, self.next_id.fetch_add(1, Relaxed))
    }

    /// The one put path behind the three verbs.
    async fn put_until(&self, msg: &[u8], deadline: Deadline) -> Result<(), PutError> {
        if msg.len() > self.max_msg_size {
            return Err(PutError::TooLarge {
                len: msg.len(),
                max: self.max_msg_size,
            });
        }
        let id = self.fresh_msg_id();
        let payload = Bytes::copy_from_slice(msg);
        let mut full = full_backoff();
        let mut away = away_backoff();
        let mut gone = GoneCheck::new();
        loop {
            let failure = match publish_once(&self.js, &self.subject, &id, payload.clone()).await {
                Ok(()) => return Ok(()),
                Err(f) => f,
            };
            let slept = match failure {
                PublishFailure::Full => {
                    away = away_backoff();
                    if matches!(deadline, Deadline::Now) {
                        return Err(PutError::Full);
                    }
                    full.pause(deadline).await
                }
                PublishFailure::TooLarge => {
                    return Err(PutError::TooLarge {
                        len: msg.len(),
                        max: self.max_msg_size,
                    });
                }
                PublishFailure::NoStream => match self.is_closed_async().await {
                    Ok(true) => return Err(PutError::Closed),
                    // Removed, or the server is (re)starting.
                    Err(e @ NetError::NotFound { .. }) => match gone.judge(Some(e)) {
                        Some(e) => return Err(PutError::Net(e)),
                        None => away.pause(deadline).await,
                    },
                    _ => away.pause(deadline).await,
                },
                PublishFailure::Transient(detail) => {
                    if matches!(deadline, Deadline::Now) {
                        return Err(PutError::Net(self.server_error("put to", detail)));
                    }
                    away.pause(deadline).await
                }
            };
            if !slept {
                return Err(PutError::Timeout);
            }
        }
    }

    pub(crate) fn server_error(&self, action: &'static str, detail: impl ToString) -> NetError {
        NetError::Server {
            action,
            url: self.url.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Takes a message, waiting while the queue is empty or the server away;
    /// `Closed` once the queue is closed and drained.
    pub fn get(&self) -> Result<Vec<u8>, GetError> {
        runtime::block_on(self.get_until(Deadline::Never))
    }

    /// Takes a message if there is one now; `Empty` otherwise.
    pub fn try_get(&self) -> Result<Vec<u8>, GetError> {
        runtime::block_on(self.get_until(Deadline::Now))
    }

    /// Takes a message, waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        runtime::block_on(self.get_until(Deadline::after(timeout)))
    }

    /// A plain get is a lease acked with the acknowledged form (the server
    /// confirms it) before the bytes are handed over: exactly once, unless
    /// the ack cannot be confirmed (then it may come again, never lost).
    async fn get_until(&self, deadline: Deadline) -> Result<Vec<u8>, GetError> {
        let msg = self.lease_until(deadline).await?;
        confirm_ack(&msg).await;
        Ok(msg.message.payload.to_vec())
    }

    /// Takes up to `max` messages: waits for the first (like [`get`](Self::get)),
    /// then takes whatever else is there now, in one pull request. The
    /// messages are acked together: a plain ack for each, the acknowledged
    /// form for the last (the server handles one connection's acks in
    /// order, so its confirmation covers them all). Returns `Closed` only
    /// when nothing was taken. As with `get`, an ack that cannot be confirmed
    /// leaves the messages returned anyway, and they may come again.
    pub fn get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        runtime::block_on(self.get_many_until(max, Deadline::Never))
    }

    /// Like [`get_many`](Self::get_many), but `Empty` at once when nothing is there.
    pub fn try_get_many(&self, max: usize) -> Result<Vec<Vec<u8>>, GetError> {
        runtime::block_on(self.get_many_until(max, Deadline::Now))
    }

    /// Like [`get_many`](Self::get_many), waiting at most `timeout` for the first message.
    pub fn get_many_timeout(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Vec<u8>>, GetError> {
        runtime::block_on(self.get_many_until(max, Deadline::after(timeout)))
    }

    /// The one batch get: the batch lease, then the acks, confirmed by the last.
    async fn get_many_until(
        &self,
        max: usize,
        deadline: Deadline,
    ) -> Result<Vec<Vec<u8>>, GetError> {
        let msgs = self.leases_until(max, deadline).await?;
        confirm_all(&msgs).await;
        Ok(msgs.iter().map(|m| m.message.payload.to_vec()).collect())
    }

    /// Leases up to `max` messages: waits for the first (like
    /// [`get_lease`](Self::get_lease)), then takes whatever else is there
    /// now, in one pull request. Ack them together with
    /// [`RemoteLease::ack_many`] (one confirmed round trip for the batch);
    /// each one dropped unacked is put back. `Closed` only when nothing was taken.
    pub fn get_leases(&self, max: usize) -> Result<Vec<RemoteLease>, GetError> {
        self.leases_blocking(max, Deadline::Never)
    }

    /// Like [`get_leases`](Self::get_leases), but `Empty` at once when nothing is there.
    pub fn try_get_leases(&self, max: usize) -> Result<Vec<RemoteLease>, GetError> {
        self.leases_blocking(max, Deadline::Now)
    }

    /// Like [`get_leases`](Self::get_leases), waiting at most `timeout` for the first message.
    pub fn get_leases_timeout(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<RemoteLease>, GetError> {
        self.leases_blocking(max, Deadline::after(timeout))
    }

    fn leases_blocking(
        &self,
        max: usize,
        deadline: Deadline,
    ) -> Result<Vec<RemoteLease>, GetError> {
        let msgs = runtime::block_on(self.leases_until(max, deadline))?;
        Ok(msgs.into_iter().map(RemoteLease::new).collect())
    }

    /// A pull for what is there (up to `max`), else the one-message path.
    async fn leases_until(
        &self,
        max: usize,
        deadline: Deadline,
    ) -> Result<Vec<jetstream::Message>, GetError> {
        match max {
            0 => return Ok(Vec::new()),
            // Straight to the one-message path (one pull, no first look).
            1 => return Ok(vec![self.lease_until(deadline).await?]),
            _ => {}
        }
        let mut msgs = match pull(&self.consumer, max, None).await {
            Ok(Pulled::Messages(m)) => m,
            // Nothing now, or the server away: wait as `get` does.
            Ok(Pulled::Nothing) | Err(_) => vec![self.lease_until(deadline).await?],
        };
        // The pull stops at the close marker, so it can only be the last.
        if msgs.last().is_some_and(|m| is_close_marker(m)) {
            let marker = msgs.pop().expect("checked above");
            pass_on_marker(&marker).await;
            if msgs.is_empty() {
                // Closed, or messages still in flight elsewhere: as `get`.
                msgs.push(self.lease_until(deadline).await?);
            }
        }
        Ok(msgs)
    }

    /// Leases a message, waiting while the queue is empty or the server away.
    pub fn get_lease(&self) -> Result<RemoteLease, GetError> {
        runtime::block_on(self.lease_until(Deadline::Never)).map(RemoteLease::new)
    }

    /// Leases a message if there is one now; `Empty` otherwise.
    pub fn try_get_lease(&self) -> Result<RemoteLease, GetError> {
        runtime::block_on(self.lease_until(Deadline::Now)).map(RemoteLease::new)
    }

    /// Leases a message, waiting at most `timeout`.
    pub fn get_lease_timeout(&self, timeout: Duration) -> Result<RemoteLease, GetError> {
        runtime::block_on(self.lease_until(Deadline::after(timeout))).map(RemoteLease::new)
    }

    /// The one get path: a pull request for one message.
    async fn lease_until(&self, deadline: Deadline) -> Result<jetstream::Message, GetError> {
        let mut away = away_backoff();
        let mut gone = GoneCheck::new();
        loop {
            let wait = match deadline {
                Deadline::Now => None,
                d => match d.left(POLL) {
                    Some(w) => Some(w),
                    None => return Err(GetError::Timeout),
                },
            };
            match pull(&self.consumer, 1, wait).await {
                Ok(Pulled::Messages(mut msgs)) => {
                    let msg = msgs.remove(0);
                    if !is_close_marker(&msg) {
                        return Ok(msg);
                    }
                    if self.at_close_marker(&msg).await {
                        return Err(GetError::Closed);
                    }
                    if matches!(deadline, Deadline::Now) {
                        return Err(GetError::Empty);
                    }
                }
                Ok(Pulled::Nothing) => {
                    if matches!(deadline, Deadline::Now) {
                        return Err(GetError::Empty);
                    }
                    away = away_backoff();
                }
                Err(detail) => {
                    if matches!(deadline, Deadline::Now) {
                        return Err(GetError::Net(self.server_error("get from", detail)));
                    }
                    if let Some(e) = gone.judge(self.gone_async().await) {
                        return Err(GetError::Net(e));
                    }
                    if !away.pause(deadline).await {
                        return Err(GetError::Timeout);
                    }
                }
            }
        }
    }

    /// What a getter holding the close marker does: `true` if the queue is
    /// drained (the marker is then passed on at once: return `Closed`); `false`
    /// if messages put before the close are still in flight with some getter (a
    /// lease, or a dead getter's message awaiting redelivery after the ack
    /// wait), which may yet come back: the marker is put back with a short delay
    /// and the getter keeps waiting, as a local get waits for leased messages.
    /// Without this, a getter could close a bridged local queue while a killed
    /// bridge's batch was still due for redelivery: a loss.
    pub(crate) async fn at_close_marker(&self, marker: &jetstream::Message) -> bool {
        // The marker is in the stream too (never acked).
        let drained = matches!(crate::admin::stored(self).await, Ok(n) if n <= 1);
        if drained {
            pass_on_marker(marker).await;
        } else {
            let _ = marker
                .double_ack_with(AckKind::Nak(Some(MARKER_AGAIN)))
                .await;
        }
        drained
    }
}
