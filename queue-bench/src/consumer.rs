//! [`consume`]: the consumer loop.

use queue_core::{Batch, GetError, Queue};

use crate::Mode;
use crate::stamp::Tally;

/// Takes messages from `q` as fast as they come, with `get_into`, or with
/// `get_many_into` of at most `mode.batch` messages, until `mode.count`
/// messages or until the queue is closed and drained. Returns what it took,
/// with the checksum of the stamps (see [`stamp`](mod@crate::stamp)).
///
/// Closing the queue ends the loop normally; any other error is returned.
/// Nothing is allocated per message: one buffer (or one [`Batch`]) is reused,
/// sized up front for the queue's largest messages (as many as a call can
/// take: `mode.batch`, at most the queue's capacity).
pub fn consume(q: &Queue, mode: Mode) -> Result<Tally, GetError> {
    let mut got = Tally::default();
    if mode.batch <= 1 {
        let mut buf = Vec::with_capacity(q.max_msg_size());
        while mode.next_call(got.count) > 0 {
            match q.get_into(&mut buf) {
                Ok(_) => got.add(&buf),
                Err(GetError::Closed) => break,
                Err(e) => return Err(e),
            }
        }
    } else {
        // One call takes at most the queue's capacity, whatever the batch.
        let most = mode.batch.min(q.capacity());
        let mut batch = Batch::with_capacity(most, most.saturating_mul(q.max_msg_size()));
        loop {
            let max = mode.next_call(got.count);
            if max == 0 {
                break;
            }
            match q.get_many_into(&mut batch, max) {
                Ok(_) => batch.iter().for_each(|m| got.add(m)),
                Err(GetError::Closed) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(got)
}
