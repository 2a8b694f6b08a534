//! [`RemoteQueue`]: the queue verbs over one NATS JetStream stream, and its
//! [`RemoteLease`]. The mapping (stream, consumer, close marker, bound, ids)
//! is described in `docs/scale-out.md`; the control plane (create, open,
//! remove, list, stats, close) is in `admin.rs`, the windowed publishing
//! behind `put_many` and the bridge in `publish.rs`.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::{AckError, GetError, NetError, PutError};
use crate::publish::{PublishFailure, publish_once};
use crate::runtime;
use crate::target::RemoteUrl;

/// Header that marks the close marker, the last message of a closed queue.
pub(crate) const CLOSE_HEADER: &str = "Mq-Close";
/// Name of the one durable pull consumer every getter shares.
pub(crate) const CONSUMER: &str = "getters";
/// Longest single pull request: a blocking get re-asks this often, so it
/// notices a server restart within about this long.
const POLL: Duration = Duration::from_secs(2);
/// Longest wait for one server round trip before it counts as a failure
/// (the attempt is then retried, with the same message id for a put).
pub(crate) const ROUND_TRIP: Duration = Duration::from_secs(5);

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

/// When a blocking call gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// Do not wait (`try_` verbs).
    Now,
    /// Wait until then (`_timeout` verbs).
    At(Instant),
    /// Wait as long as it takes.
    Never,
}

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Instant::now()
            .checked_add(timeout)
            .map_or(Deadline::Never, Deadline::At)
    }

    /// Time left, capped at `cap`; `None` once passed.
    pub(crate) fn left(self, cap: Duration) -> Option<Duration> {
        match self {
            Deadline::Now => None,
            Deadline::At(t) => t
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .map(|d| d.min(cap)),
            Deadline::Never => Some(cap),
        }
    }
}

/// Exponential back-off between retries, from `min` doubling up to `max`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { next: min, max }
    }

    /// Sleeps for the next pause, cut short by `deadline`; false if the
    /// deadline has passed (nothing slept).
    pub(crate) async fn pause(&mut self, deadline: Deadline) -> bool {
        let Some(d) = deadline.left(self.next) else {
            return false;
        };
        tokio::time::sleep(d).await;
        self.next = (self.next * 2).min(self.max);
        true
    }
}

/// Back-off while a full queue makes room: short, a get frees room at once.
pub(crate) fn full_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(1), Duration::from_millis(50))
}

/// Back-off while the server is away: it reconnects on its own.
pub(crate) fn away_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(50), Duration::from_secs(1))
}

/// How long "stream not found" must persist before a queue counts as removed.
const GONE_GRACE: Duration = Duration::from_secs(3);

/// Tells a removed queue from a server that is still loading its streams
/// after a restart (it answers "not found" for a moment then too): the queue
/// counts as removed only once "not found" has persisted for `GONE_GRACE`.
pub(crate) struct GoneCheck {
    since: Option<Instant>,
}

impl GoneCheck {
    pub(crate) fn new() -> GoneCheck {
        GoneCheck { since: None }
    }

    /// `Some(not_found)` if the queue is gone for good; `None`: retry.
    pub(crate) fn judge(&mut self, not_found: Option<NetError>) -> Option<NetError> {
        let Some(e) = not_found else {
            self.since = None;
            return None;
        };
        let since = *self.since.get_or_insert_with(Instant::now);
        (since.elapsed() >= GONE_GRACE).then_some(e)
    }
}

/// Whether `msg` is the close marker.
pub(crate) fn is_close_marker(msg: &async_nats::Message) -> bool {
    msg.headers
        .as_ref()
        .is_some_and(|h| h.get(CLOSE_HEADER).is_some())
}

/// What one pull request brought.
pub(crate) enum Pulled {
    /// Messages, in delivery order (possibly ending with the close marker).
    Messages(Vec<jetstream::Message>),
    /// Nothing before the request expired.
    Nothing,
}

/// One pull request for up to `max` messages, waiting at most `wait`
/// (`None`: answer at once with what is there).
pub(crate) async fn pull(
    consumer: &PullConsumer,
    max: usize,
    wait: Option<Duration>,
) -> Result<Pulled, String> {
    // The client has no timer of its own on a no-wait fetch: a request lost
    // in a reconnect would hang it. Stop at the deadline, keeping what came.
    let deadline = tokio::time::Instant::now() + wait.unwrap_or_default() + ROUND_TRIP;
    let batch = async {
        match wait {
            None => consumer.fetch().max_messages(max).messages().await,
            Some(w) => {
                consumer
                    .batch()
                    .max_messages(max)
                    .expires(w.max(Duration::from_millis(10)))
                    .messages()
                    .await
            }
        }
    };
    let mut batch = tokio::time::timeout_at(deadline, batch)
        .await
        .map_err(|_| "no answer to the pull request".to_owned())?
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    loop {
        let next = match tokio::time::timeout_at(deadline, batch.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) if got.is_empty() => {
                return Err("no answer to the pull request".to_owned());
            }
            Err(_) => break,
        };
        match next {
            Ok(m) => {
                let marker = is_close_marker(&m);
                got.push(m);
                if marker {
                    // Nothing comes after the marker; stop listening.
                    break;
                }
            }
            Err(e) if got.is_empty() => return Err(e.to_string()),
            Err(_) => break,
        }
    }
    Ok(if got.is_empty() {
        Pulled::Nothing
    } else {
        Pulled::Messages(got)
    })
}

/// Acks `msg` with the confirmed form: a few tries of at most 2 s each. A
/// server restarted since the delivery may never answer an ack for it (it
/// redelivers the message instead), so this gives up rather than wait:
/// `false` means the message may come again.
pub(crate) async fn confirm_ack(msg: &jetstream::Message) -> bool {
    for _ in 0..3 {
        let ack = tokio::time::timeout(Duration::from_secs(2), msg.double_ack());
        if let Ok(Ok(())) = ack.await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Acks every message of `msgs`: a plain ack for each but the last, the
/// confirmed form for the last (the server handles one connection's acks in
/// order, so its confirmation covers the batch). `false`: not confirmed,
/// the batch may come again.
pub(crate) async fn confirm_all(msgs: &[jetstream::Message]) -> bool {
    let Some((last, rest)) = msgs.split_last() else {
        return true;
    };
    for m in rest {
        let _ = m.ack().await;
    }
    confirm_ack(last).await
}

/// How long a close marker seen too early (messages before it still in
/// flight) stays away before it is delivered again.
const MARKER_AGAIN: Duration = Duration::from_millis(200);

/// What a getter holding the close marker does: `true` if the queue is
/// drained (the marker is then passed on at once: return `Closed`); `false`
/// if messages put before the close are still in flight with some getter (a
/// lease, or a dead getter's message awaiting redelivery after the ack
/// wait), which may yet come back: the marker is put back with a short delay
/// and the getter keeps waiting, as a local get waits for leased messages.
/// Without this, a getter could close a bridged local queue while a killed
/// bridge's batch was still due for redelivery: a loss.
pub(crate) async fn at_close_marker(q: &RemoteQueue, marker: &jetstream::Message) -> bool {
    // The marker is in the stream too (never acked).
    let drained = matches!(crate::admin::stored(q).await, Ok(n) if n <= 1);
    if drained {
        pass_on_marker(marker).await;
    } else {
        let _ = marker
            .double_ack_with(AckKind::Nak(Some(MARKER_AGAIN)))
            .await;
    }
    drained
}

/// Puts the close marker back at once for the next getter (it is never
/// acked); confirmed, so a getter that exits right after cannot strand it.
pub(crate) async fn pass_on_marker(marker: &jetstream::Message) {
    let _ = marker.double_ack_with(AckKind::Nak(None)).await;
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
                    if at_close_marker(self, &msg).await {
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
}

/// A message taken with [`RemoteQueue::get_lease`]: an unacked JetStream
/// message. It derefs to the bytes and leaves the queue only when
/// [`ack`](RemoteLease::ack)ed; dropping it puts it back at once (a nak); if
/// the process dies, the server redelivers it after the ack wait.
#[must_use = "an unacked lease puts its message back when dropped"]
pub struct RemoteLease {
    msg: Option<jetstream::Message>,
    data: Bytes,
}

impl RemoteLease {
    fn new(msg: jetstream::Message) -> RemoteLease {
        let data = msg.message.payload.clone();
        RemoteLease {
            msg: Some(msg),
            data,
        }
    }

    /// How many times the server has delivered this message (1 the first time).
    pub fn deliveries(&self) -> u64 {
        self.msg
            .as_ref()
            .and_then(|m| m.info().ok())
            .map_or(1, |i| u64::try_from(i.delivered).unwrap_or(1))
    }

    /// Confirms the message was handled; the server confirms the ack
    /// (double ack), so an `Ok` means it will not come again.
    pub fn ack(mut self) -> Result<(), AckError> {
        let Some(msg) = self.msg.take() else {
            return Ok(());
        };
        runtime::block_on(async move {
            msg.double_ack().await.map_err(|e| {
                AckError::Net(NetError::Server {
                    action: "ack a message of",
                    url: msg.message.subject.to_string(),
                    detail: format!("{e} (the message may be delivered again)"),
                })
            })
        })
    }

    /// Acks every lease of `leases` in one confirmed round trip: a plain ack
    /// for each, the acknowledged form for the last (the server handles one
    /// connection's acks in order, so its confirmation covers them all). An
    /// `Ok` means none of them will come again; on an error, any may.
    pub fn ack_many(leases: Vec<RemoteLease>) -> Result<(), AckError> {
        let msgs: Vec<jetstream::Message> = leases
            .into_iter()
            .filter_map(|mut l| l.msg.take())
            .collect();
        if runtime::block_on(confirm_all(&msgs)) {
            return Ok(());
        }
        Err(AckError::Net(NetError::Server {
            action: "ack messages of",
            url: msgs[msgs.len() - 1].message.subject.to_string(),
            detail: "the server did not confirm the acks (the messages may be delivered again)"
                .to_owned(),
        }))
    }

    /// Puts the message back for another getter now (same as dropping it).
    pub fn release(mut self) {
        if let Some(msg) = self.msg.take() {
            runtime::nak_now_or_soon(msg);
        }
    }

    /// The message bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data.to_vec()
    }
}

impl Deref for RemoteLease {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl AsRef<[u8]> for RemoteLease {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl std::fmt::Debug for RemoteLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLease")
            .field("len", &self.data.len())
            .finish()
    }
}

impl Drop for RemoteLease {
    fn drop(&mut self) {
        if let Some(msg) = self.msg.take() {
            runtime::nak_now_or_soon(msg);
        }
    }
}
