//! [`RemoteLease`]: a message taken from a remote queue and not yet acked.

use std::ops::Deref;

use async_nats::jetstream;
use bytes::Bytes;

use crate::consumer::confirm_all;
use crate::error::{AckError, NetError};
use crate::runtime;

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
    pub(crate) fn new(msg: jetstream::Message) -> RemoteLease {
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
