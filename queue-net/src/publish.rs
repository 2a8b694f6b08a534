//! The put path of a remote queue: publishing to the stream with many
//! publishes in flight at once (a window), in order, each with its message
//! id, and [`RemoteQueue::put_many`] and the bridge built on it. A single
//! `put` is the window of one in `remote.rs`.

use std::collections::VecDeque;
use std::future::IntoFuture;

use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

use crate::error::{NetError, PutError};
use crate::remote::RemoteQueue;
use crate::retry::{Deadline, GoneCheck, ROUND_TRIP, away_backoff, full_backoff};
use crate::runtime;

/// Publishes in flight at once (sent, ack not yet received) on one
/// connection: enough to keep the server busy between two acks, few enough
/// that a failure re-sends little.
pub(crate) const WINDOW: usize = 256;

/// How one publish attempt ended, when it did not store the message.
pub(crate) enum PublishFailure {
    /// `max_msgs` reached (`discard: new`).
    Full,
    /// No stream listens on the subject: the queue was closed or removed.
    NoStream,
    /// The message exceeds the stream's `max_msg_size` or the server's max payload.
    TooLarge,
    /// Timeout, disconnect, server restart: try again, same message id.
    Transient(String),
}

/// Publishes `payload` with message id `id` to `subject` and waits for the
/// stream's ack (at most `ROUND_TRIP`).
pub(crate) async fn publish_once(
    js: &jetstream::Context,
    subject: &str,
    id: &str,
    payload: Bytes,
) -> Result<(), PublishFailure> {
    let mut results = publish_pipelined(js, subject, &[(id.to_owned(), payload)]).await;
    results
        .pop()
        .unwrap_or(Err(PublishFailure::Transient("nothing was sent".into())))
}

/// Sends the messages in order on the one connection, at most [`WINDOW`]
/// unacknowledged at a time, and waits for their acks in order. It stops at
/// the first failure, so the results are a prefix ending at the first `Err`
/// (if any): everything before it is stored, in order. Publishes still in
/// flight after a failure may be stored too; a re-send with the same ids is
/// dropped by the stream's duplicate window.
pub(crate) async fn publish_pipelined(
    js: &jetstream::Context,
    subject: &str,
    msgs: &[(String, Bytes)],
) -> Vec<Result<(), PublishFailure>> {
    let mut results = Vec::with_capacity(msgs.len());
    let mut pending = VecDeque::with_capacity(WINDOW.min(msgs.len()));
    let mut send_failure = None;
    for (id, payload) in msgs {
        if pending.len() == WINDOW {
            let oldest = pending.pop_front().expect("the window is full");
            if let Err(f) = wait_ack(oldest).await {
                results.push(Err(f));
                return results;
            }
            results.push(Ok(()));
        }
        let send = js.send_publish(
            subject.to_owned(),
            jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .message_id(id),
        );
        match tokio::time::timeout(ROUND_TRIP, send).await {
            Ok(Ok(ack)) => pending.push_back(ack),
            Ok(Err(e)) => {
                send_failure = Some(classify_publish(&e));
                break;
            }
            Err(_) => {
                send_failure = Some(PublishFailure::Transient(
                    "the client could not send".into(),
                ));
                break;
            }
        }
    }
    for ack in pending {
        if let Err(f) = wait_ack(ack).await {
            results.push(Err(f));
            return results;
        }
        results.push(Ok(()));
    }
    if let Some(f) = send_failure {
        results.push(Err(f));
    }
    results
}

/// Waits (at most `ROUND_TRIP`) for the stream's ack of one publish.
async fn wait_ack(ack: jetstream::context::PublishAckFuture) -> Result<(), PublishFailure> {
    match tokio::time::timeout(ROUND_TRIP, ack.into_future()).await {
        Err(_) => Err(PublishFailure::Transient("no ack from the server".into())),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(classify_publish(&e)),
    }
}

fn classify_publish(e: &jetstream::context::PublishError) -> PublishFailure {
    let text = e.to_string();
    match e.kind() {
        PublishErrorKind::StreamNotFound => PublishFailure::NoStream,
        _ if text.contains("maximum messages exceeded") => PublishFailure::Full,
        _ if text.contains("maximum payload") || text.contains("message size exceeds") => {
            PublishFailure::TooLarge
        }
        _ => PublishFailure::Transient(text),
    }
}

/// Publishes `msgs` (id, payload) in order, windowed, and returns once every
/// one is stored, or with how many were stored and why the rest were not.
/// Only as many as there is room for are sent at once, so a full queue does
/// not reorder them; failed ones are re-sent with the same id (and those
/// after them), waiting for room or the server until `deadline`.
///
/// `room` is a lower bound on the free room, carried from call to call by
/// the bridge: getters only add room, so the server is asked again only when
/// it does not cover what is left to send (or a publish found the queue full).
pub(crate) async fn publish_all(
    dst: &RemoteQueue,
    msgs: &[(String, Bytes)],
    room: &mut usize,
    deadline: Deadline,
) -> Result<(), (usize, PutError)> {
    let now = matches!(deadline, Deadline::Now);
    let mut done = 0;
    let mut full = full_backoff();
    let mut away = away_backoff();
    let mut gone = GoneCheck::new();
    while done < msgs.len() {
        let slept = 'attempt: {
            if *room < msgs.len() - done {
                match crate::admin::room(dst).await {
                    Ok(None) => return Err((done, PutError::Closed)),
                    Ok(Some(0)) if now => return Err((done, PutError::Full)),
                    Ok(Some(0)) => break 'attempt full.pause(deadline).await,
                    Ok(Some(r)) => *room = r,
                    Err(e) if now => return Err((done, PutError::Net(e))),
                    Err(_) => break 'attempt away.pause(deadline).await,
                }
            }
            let end = msgs.len().min(done + *room);
            let results = publish_pipelined(&dst.js, &dst.subject, &msgs[done..end]).await;
            // Everything up to the first failure is stored, in order.
            let ok = results.iter().take_while(|r| r.is_ok()).count();
            done += ok;
            *room -= ok;
            if ok > 0 {
                full = full_backoff();
                away = away_backoff();
            }
            match results.into_iter().nth(ok) {
                None | Some(Ok(())) => true,
                Some(Err(PublishFailure::TooLarge)) => {
                    let err = PutError::TooLarge {
                        len: msgs[done].1.len(),
                        max: dst.max_msg_size,
                    };
                    return Err((done, err));
                }
                Some(Err(PublishFailure::NoStream)) => match dst.is_closed_async().await {
                    Ok(true) => return Err((done, PutError::Closed)),
                    // Removed, or the server is (re)starting.
                    Err(e @ NetError::NotFound { .. }) => match gone.judge(Some(e)) {
                        Some(e) => return Err((done, PutError::Net(e))),
                        None => away.pause(deadline).await,
                    },
                    _ => away.pause(deadline).await,
                },
                Some(Err(PublishFailure::Full)) => {
                    *room = 0;
                    if now {
                        return Err((done, PutError::Full));
                    }
                    full.pause(deadline).await
                }
                Some(Err(PublishFailure::Transient(detail))) => {
                    if now {
                        return Err((done, PutError::Net(dst.server_error("put to", detail))));
                    }
                    away.pause(deadline).await
                }
            }
        };
        if !slept {
            return Err((done, PutError::Timeout));
        }
    }
    Ok(())
}

impl RemoteQueue {
    /// Puts every message in `msgs`, in order, waiting while the queue is
    /// full or the server away. Up to 256 publishes are in flight at once,
    /// so this is many times faster than a loop of [`put`](Self::put), which
    /// waits for each ack. It returns once every message is stored; on error,
    /// with how many (the first ones) were. Each message has its own id, kept
    /// across retries, so each is stored once.
    pub fn put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), (usize, PutError)> {
        self.put_many_until(msgs, Deadline::Never)
    }

    /// Like [`put_many`](Self::put_many), but puts only what fits now: on a
    /// full queue it returns `Full` with how many were put.
    pub fn try_put_many<M: AsRef<[u8]>>(&self, msgs: &[M]) -> Result<(), (usize, PutError)> {
        self.put_many_until(msgs, Deadline::Now)
    }

    /// Like [`put_many`](Self::put_many), waiting at most `timeout` in all.
    pub fn put_many_timeout<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        timeout: std::time::Duration,
    ) -> Result<(), (usize, PutError)> {
        self.put_many_until(msgs, Deadline::after(timeout))
    }

    /// The one batch put behind the three verbs.
    fn put_many_until<M: AsRef<[u8]>>(
        &self,
        msgs: &[M],
        deadline: Deadline,
    ) -> Result<(), (usize, PutError)> {
        if let Some(m) = msgs.iter().find(|m| m.as_ref().len() > self.max_msg_size) {
            let err = PutError::TooLarge {
                len: m.as_ref().len(),
                max: self.max_msg_size,
            };
            return Err((0, err));
        }
        let msgs: Vec<(String, Bytes)> = msgs
            .iter()
            .map(|m| (self.fresh_msg_id(), Bytes::copy_from_slice(m.as_ref())))
            .collect();
        let mut room = 0;
        runtime::block_on(publish_all(self, &msgs, &mut room, deadline))
    }
}
