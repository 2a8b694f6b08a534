//! The getters' side of the wire, shared by [`RemoteQueue`](crate::RemoteQueue)
//! and the bridge: pull requests on the one durable consumer, confirmed acks,
//! and the close marker (what it is and how it is passed on). Knows nothing
//! of a queue handle.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::StreamExt;

use crate::retry::ROUND_TRIP;

/// Header that marks the close marker, the last message of a closed queue.
pub(crate) const CLOSE_HEADER: &str = "Mq-Close";
/// Name of the one durable pull consumer every getter shares.
pub(crate) const CONSUMER: &str = "getters";

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

/// Puts the close marker back at once for the next getter (it is never
/// acked); confirmed, so a getter that exits right after cannot strand it.
pub(crate) async fn pass_on_marker(marker: &jetstream::Message) {
    let _ = marker.double_ack_with(AckKind::Nak(None)).await;
}
