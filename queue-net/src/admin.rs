//! The control plane of a remote queue: connect, create, open, remove,
//! list, stats and close. Each is a few JetStream API requests; none is on
//! the put/get path.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_nats::jetstream::{
    self, ErrorCode, consumer,
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};
use futures_util::StreamExt;

use crate::consumer::{CLOSE_HEADER, CONSUMER};
use crate::error::{CloseError, NetError};
use crate::remote::RemoteQueue;
use crate::retry::away_backoff;
use crate::runtime;
use crate::target::{self, RemoteUrl};

/// Stream metadata key: the queue name (marks the stream as an mq queue).
const META_NAME: &str = "mq.name";
/// Stream metadata key: the capacity (`max_msgs` grows by one at close).
const META_CAPACITY: &str = "mq.capacity";
/// Stream metadata key: the largest message payload (the stream's own
/// `max_msg_size` also counts headers, so it is larger by `HEADER_ROOM`).
const META_MAX_MSG_SIZE: &str = "mq.max_msg_size";
/// Room for the headers this crate sends (a message id) on top of the payload.
const HEADER_ROOM: usize = 256;
/// Stream metadata key: present once the queue is closed.
const META_CLOSED: &str = "mq.closed";
/// Message id of the close marker: a second close publishes it again, and
/// the duplicate window keeps one.
const CLOSE_MSG_ID: &str = "mq-close-marker";
/// Default ack wait of a new remote queue (JetStream's own default).
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// How long the stream remembers message ids to drop re-publishes.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Settings for a new queue, local or remote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Messages the queue holds (local default 1024).
    pub capacity: usize,
    /// Largest message in bytes (local default 4096).
    pub max_msg_size: usize,
    /// Remote only: how long a lease may stay unacked before redelivery.
    pub ack_wait: Duration,
    /// Local only: file mode of the segment.
    pub mode: u32,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            capacity: queue_core::DEFAULT_CAPACITY,
            max_msg_size: queue_core::DEFAULT_MAX_MSG_SIZE,
            ack_wait: DEFAULT_ACK_WAIT,
            mode: queue_core::DEFAULT_MODE,
        }
    }
}

impl CreateOptions {
    /// Sets the capacity.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }
    /// Sets the largest message size.
    pub fn max_msg_size(mut self, bytes: usize) -> Self {
        self.max_msg_size = bytes;
        self
    }
    /// Sets the ack wait (remote queues).
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }
    /// Sets the file mode (local queues).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// A snapshot of a remote queue (two API requests, not atomic).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteStats {
    /// The queue URL.
    pub url: String,
    /// The JetStream stream holding it.
    pub stream: String,
    /// Messages the queue holds.
    pub capacity: usize,
    /// Largest message in bytes.
    pub max_msg_size: usize,
    /// Messages in the queue: waiting plus being worked on (the close marker not counted).
    pub len: usize,
    /// Messages delivered to a getter and not yet acked (leases).
    pub in_flight: usize,
    /// Leases in flight whose message was delivered more than once (dropped
    /// leases, dead getters); JetStream counts these, not a running total.
    pub redelivered: usize,
    /// Getters waiting in a pull request right now.
    pub getters_waiting: usize,
    /// Messages ever stored (the stream's last sequence).
    pub total_put: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Ack wait of the shared consumer.
    pub ack_wait: Duration,
    /// Whether the queue was closed.
    pub closed: bool,
}

/// Connects to `url`'s server; reconnects are automatic and unlimited.
pub(crate) async fn connect(url: &RemoteUrl) -> Result<async_nats::Client, NetError> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(50u64.saturating_mul(attempts as u64).min(1000))
        })
        .connect(url.host_port.as_str())
        .await
        .map_err(|_| NetError::Unreachable {
            server: url.server(),
        })
}

fn context(client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client)
}

fn queue_name(url: &RemoteUrl) -> Result<&str, NetError> {
    url.name.as_deref().ok_or_else(|| NetError::InvalidUrl {
        input: url.to_string(),
        reason: "it names no queue".into(),
    })
}

/// Maps a failed stream lookup to `NotFound`, `NoJetStream` or `Server`.
fn lookup_error(url: &RemoteUrl, e: impl std::fmt::Display, code: Option<ErrorCode>) -> NetError {
    match code {
        Some(ErrorCode::STREAM_NOT_FOUND) => NetError::NotFound {
            url: url.to_string(),
        },
        Some(ErrorCode::JETSTREAM_NOT_ENABLED | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT) => {
            NetError::NoJetStream {
                server: url.server(),
            }
        }
        _ => {
            let text = e.to_string();
            if text.contains("not exist") || text.contains("no responders") {
                // No JetStream answers the API subject.
                NetError::NoJetStream {
                    server: url.server(),
                }
            } else {
                NetError::Server {
                    action: "look up",
                    url: url.to_string(),
                    detail: text,
                }
            }
        }
    }
}

async fn stream_info(js: &jetstream::Context, url: &RemoteUrl) -> Result<stream::Info, NetError> {
    let name = queue_name(url)?;
    match js.get_stream(target::stream_name(name)).await {
        Ok(mut s) => s.info().await.cloned().map_err(|e| NetError::Server {
            action: "read the state of",
            url: url.to_string(),
            detail: e.to_string(),
        }),
        Err(e) => {
            let code = match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j) => Some(j.error_code()),
                _ => None,
            };
            Err(lookup_error(url, e, code))
        }
    }
}

fn check_ours(url: &RemoteUrl, info: &stream::Info) -> Result<(), NetError> {
    if info.config.metadata.contains_key(META_NAME) {
        Ok(())
    } else {
        Err(NetError::NotAQueue {
            server: url.server(),
            stream: info.config.name.clone(),
        })
    }
}

fn max_msg_size_of(info: &stream::Info) -> usize {
    info.config
        .metadata
        .get(META_MAX_MSG_SIZE)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| {
            usize::try_from(info.config.max_message_size)
                .unwrap_or(0)
                .saturating_sub(HEADER_ROOM)
        })
}

fn capacity_of(info: &stream::Info) -> usize {
    info.config
        .metadata
        .get(META_CAPACITY)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| usize::try_from(info.config.max_messages).unwrap_or(0))
}

impl RemoteQueue {
    /// Creates the queue `nats://HOST:PORT/NAME`; `AlreadyExists` if it exists.
    pub fn create(url: &str, opts: &CreateOptions) -> Result<RemoteQueue, NetError> {
        let url = RemoteUrl::parse(url)?;
        runtime::block_on(Self::create_async(url, opts))
    }

    /// Opens the existing queue `nats://HOST:PORT/NAME`.
    pub fn open(url: &str) -> Result<RemoteQueue, NetError> {
        let url = RemoteUrl::parse(url)?;
        runtime::block_on(Self::open_async(url))
    }

    /// Removes the queue and every message in it.
    pub fn remove(url: &str) -> Result<(), NetError> {
        let url = RemoteUrl::parse(url)?;
        runtime::block_on(async {
            let js = context(connect(&url).await?);
            let info = stream_info(&js, &url).await?;
            check_ours(&url, &info)?;
            js.delete_stream(&info.config.name)
                .await
                .map(drop)
                .map_err(|e| NetError::Server {
                    action: "remove",
                    url: url.to_string(),
                    detail: e.to_string(),
                })
        })
    }

    /// The queues on the server `nats://HOST:PORT`, by name.
    pub fn list(server: &str) -> Result<Vec<RemoteStats>, NetError> {
        let url = RemoteUrl::parse(server)?;
        runtime::block_on(async {
            let js = context(connect(&url).await?);
            let mut names = Vec::new();
            let mut streams = js.streams();
            while let Some(info) = streams.next().await {
                let info = info.map_err(|e| lookup_error(&url, e, None))?;
                if let Some(name) = info.config.metadata.get(META_NAME) {
                    names.push(name.clone());
                }
            }
            names.sort();
            let mut all = Vec::with_capacity(names.len());
            for name in names {
                match stats_async(&js, &url.with_name(&name)).await {
                    Ok(s) => all.push(s),
                    // Removed while listing.
                    Err(NetError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(all)
        })
    }

    async fn create_async(url: RemoteUrl, opts: &CreateOptions) -> Result<RemoteQueue, NetError> {
        let name = queue_name(&url)?.to_owned();
        let invalid = |reason: String| NetError::InvalidConfig {
            url: url.to_string(),
            reason,
        };
        if opts.capacity == 0 {
            return Err(invalid(
                "capacity is 0 (a queue must hold at least one message)".into(),
            ));
        }
        let capacity = i64::try_from(opts.capacity)
            .ok()
            .filter(|c| *c < i64::MAX)
            .ok_or_else(|| invalid(format!("capacity {} is too large", opts.capacity)))?;
        let max_size = i32::try_from(opts.max_msg_size.saturating_add(HEADER_ROOM))
            .ok()
            .filter(|_| opts.max_msg_size > 0)
            .ok_or_else(|| {
                invalid(format!(
                    "max message size {} is not 1 to {} bytes",
                    opts.max_msg_size,
                    i32::MAX as usize - HEADER_ROOM
                ))
            })?;
        if opts.ack_wait < Duration::from_millis(1) {
            return Err(invalid(format!(
                "ack wait {:?} is shorter than 1ms",
                opts.ack_wait
            )));
        }
        let client = connect(&url).await?;
        let max_payload = client.server_info().max_payload;
        if opts.max_msg_size.saturating_add(HEADER_ROOM) > max_payload {
            return Err(invalid(format!(
                "max message size {} is more than the server takes ({} bytes with {HEADER_ROOM} for headers; raise max_payload in the server's config)",
                opts.max_msg_size, max_payload
            )));
        }
        let js = context(client);
        match stream_info(&js, &url).await {
            Ok(_) => {
                return Err(NetError::AlreadyExists {
                    url: url.to_string(),
                });
            }
            Err(NetError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let config = stream::Config {
            name: target::stream_name(&name),
            description: Some(format!("mq queue {name}")),
            subjects: vec![target::open_subject(&name)],
            retention: RetentionPolicy::WorkQueue,
            max_messages: capacity,
            discard: DiscardPolicy::New,
            max_message_size: max_size,
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            metadata: HashMap::from([
                (META_NAME.to_owned(), name.clone()),
                (META_CAPACITY.to_owned(), opts.capacity.to_string()),
                (META_MAX_MSG_SIZE.to_owned(), opts.max_msg_size.to_string()),
            ]),
            ..Default::default()
        };
        let stream = js.create_stream(config).await.map_err(|e| {
            let exists = matches!(e.kind(),
                jetstream::context::CreateStreamErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_NAME_EXIST);
            if exists {
                NetError::AlreadyExists {
                    url: url.to_string(),
                }
            } else {
                NetError::Server {
                    action: "create",
                    url: url.to_string(),
                    detail: e.to_string(),
                }
            }
        })?;
        stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: opts.ack_wait,
                max_deliver: -1,
                max_ack_pending: capacity.saturating_add(1),
                ..Default::default()
            })
            .await
            .map_err(|e| NetError::Server {
                action: "create the consumer of",
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        Self::attach(js, url).await
    }

    async fn open_async(url: RemoteUrl) -> Result<RemoteQueue, NetError> {
        queue_name(&url)?;
        let js = context(connect(&url).await?);
        Self::attach(js, url).await
    }

    async fn attach(js: jetstream::Context, url: RemoteUrl) -> Result<RemoteQueue, NetError> {
        let name = queue_name(&url)?.to_owned();
        let info = stream_info(&js, &url).await?;
        check_ours(&url, &info)?;
        let stream = js
            .get_stream_no_info(&info.config.name)
            .await
            .map_err(|e| lookup_error(&url, e, None))?;
        let consumer: consumer::PullConsumer =
            stream
                .get_consumer(CONSUMER)
                .await
                .map_err(|e| NetError::Server {
                    action: "open the consumer of",
                    url: url.to_string(),
                    detail: e.to_string(),
                })?;
        let ack_wait = consumer.cached_info().config.ack_wait;
        let handle_id = js
            .client()
            .new_inbox()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(RemoteQueue {
            capacity: capacity_of(&info),
            max_msg_size: max_msg_size_of(&info),
            stream: info.config.name.clone(),
            subject: target::open_subject(&name),
            url,
            js,
            consumer,
            ack_wait,
            handle_id,
            next_id: AtomicU64::new(0),
        })
    }

    /// Whether the queue was closed (one API request).
    pub fn is_closed(&self) -> Result<bool, NetError> {
        runtime::block_on(self.is_closed_async())
    }

    /// `Err(NotFound)` if the queue was removed; other failures (the server
    /// away) count as "still there", for callers that then retry.
    pub(crate) async fn gone_async(&self) -> Option<NetError> {
        match stream_info(&self.js, &self.url).await {
            Err(e @ NetError::NotFound { .. }) => Some(e),
            _ => None,
        }
    }

    pub(crate) async fn is_closed_async(&self) -> Result<bool, NetError> {
        let info = stream_info(&self.js, &self.url).await?;
        Ok(info.config.metadata.contains_key(META_CLOSED))
    }

    /// Messages in the queue (waiting plus leased).
    pub fn len(&self) -> Result<usize, NetError> {
        Ok(self.stats()?.len)
    }

    /// Whether no message is in the queue.
    pub fn is_empty(&self) -> Result<bool, NetError> {
        Ok(self.len()? == 0)
    }

    /// A snapshot of the queue.
    pub fn stats(&self) -> Result<RemoteStats, NetError> {
        runtime::block_on(stats_async(&self.js, &self.url))
    }

    /// The oldest message in the queue without taking it (it may be leased
    /// by a getter right now); `None` if the queue is empty.
    pub fn peek(&self) -> Result<Option<Vec<u8>>, NetError> {
        runtime::block_on(async {
            let info = stream_info(&self.js, &self.url).await?;
            if info.state.messages == 0 {
                return Ok(None);
            }
            let stream = self
                .js
                .get_stream_no_info(&self.stream)
                .await
                .map_err(|e| self.server_error("peek at", e))?;
            let mut seq = info.state.first_sequence;
            while seq <= info.state.last_sequence {
                match stream.get_raw_message(seq).await {
                    Ok(m) => {
                        let marker = m.headers.get(CLOSE_HEADER).is_some();
                        return Ok((!marker).then(|| m.payload.to_vec()));
                    }
                    // Taken between the two requests: try the next one.
                    Err(_) => seq += 1,
                }
            }
            Ok(None)
        })
    }

    /// Closes the queue: puts fail from now on, and every getter on every
    /// machine gets `Closed` once the messages put before are taken.
    ///
    /// The stream's subject moves from `mq.q.NAME` to `mq.closed.NAME` (so
    /// later puts find no stream), its metadata gets `mq.closed`, and the
    /// close marker is published last; getters pass the marker on, never
    /// ack it.
    pub fn close(&self) -> Result<(), CloseError> {
        runtime::block_on(self.close_async())
    }

    pub(crate) async fn close_async(&self) -> Result<(), CloseError> {
        let name = self.name().to_owned();
        let info = stream_info(&self.js, &self.url)
            .await
            .map_err(CloseError::Net)?;
        let already = info.config.metadata.contains_key(META_CLOSED);
        if !already {
            let mut config = info.config.clone();
            config.subjects = vec![target::closed_subject(&name)];
            // Room for the marker even in a full queue.
            config.max_messages = config.max_messages.saturating_add(1);
            config
                .metadata
                .insert(META_CLOSED.to_owned(), "true".to_owned());
            self.js
                .update_stream(config)
                .await
                .map_err(|e| CloseError::Net(self.server_error("close", e)))?;
        }
        // Published again by a second close, in case the first died between
        // the update and the marker; the duplicate window keeps one.
        let mut away = away_backoff();
        let mut tries = 0;
        loop {
            let marker = self
                .js
                .send_publish(
                    target::closed_subject(&name),
                    jetstream::message::PublishMessage::build()
                        .header(CLOSE_HEADER, "1")
                        .message_id(CLOSE_MSG_ID),
                )
                .await;
            let acked = match marker {
                Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match acked {
                Ok(()) => break,
                Err(detail) if tries >= 5 => {
                    return Err(CloseError::Net(self.server_error("close", detail)));
                }
                Err(_) => {
                    tries += 1;
                    away.pause(crate::retry::Deadline::Never).await;
                }
            }
        }
        if already {
            Err(CloseError::AlreadyClosed)
        } else {
            Ok(())
        }
    }
}

async fn stats_async(js: &jetstream::Context, url: &RemoteUrl) -> Result<RemoteStats, NetError> {
    let info = stream_info(js, url).await?;
    check_ours(url, &info)?;
    let stream = js
        .get_stream_no_info(&info.config.name)
        .await
        .map_err(|e| lookup_error(url, e, None))?;
    let c = stream
        .consumer_info(CONSUMER)
        .await
        .map_err(|e| NetError::Server {
            action: "read the consumer of",
            url: url.to_string(),
            detail: e.to_string(),
        })?;
    let closed = info.config.metadata.contains_key(META_CLOSED);
    let marker = usize::from(closed);
    let messages = usize::try_from(info.state.messages).unwrap_or(usize::MAX);
    Ok(RemoteStats {
        url: url.to_string(),
        stream: info.config.name.clone(),
        capacity: capacity_of(&info),
        max_msg_size: max_msg_size_of(&info),
        len: messages.saturating_sub(marker),
        in_flight: c.num_ack_pending,
        redelivered: c.num_redelivered,
        getters_waiting: c.num_waiting,
        total_put: info.state.last_sequence.saturating_sub(marker as u64),
        bytes: info.state.bytes,
        ack_wait: c.config.ack_wait,
        closed,
    })
}

/// Messages the stream holds right now: waiting, in flight, and the close
/// marker if the queue was closed (WorkQueue retention drops acked ones).
pub(crate) async fn stored(q: &RemoteQueue) -> Result<u64, NetError> {
    Ok(stream_info(&q.js, &q.url).await?.state.messages)
}

/// Free room in the queue now (capacity minus messages stored); `None` if
/// the queue is closed (a closed queue takes nothing, however much room it
/// has: a put waiting for room must learn of the close, as locally).
pub(crate) async fn room(q: &RemoteQueue) -> Result<Option<usize>, NetError> {
    let info = stream_info(&q.js, &q.url).await?;
    if info.config.metadata.contains_key(META_CLOSED) {
        return Ok(None);
    }
    let stored = usize::try_from(info.state.messages).unwrap_or(usize::MAX);
    Ok(Some(q.capacity.saturating_sub(stored)))
}
