//! [`produce`]: the producer loop.

use queue_core::{PutError, Queue};

use crate::Mode;
use crate::stamp::{STAMP_LEN, Tally, stamp, write_stamp};

/// Puts `size`-byte messages stamped by producer `id` (see
/// [`stamp`](mod@crate::stamp)) as fast as `q` takes them, with `put`, or
/// with `put_many` of `mode.batch` messages, until `mode.count` messages or
/// until the queue is closed. Returns what it put.
///
/// Closing the queue ends the loop normally; any other error is returned.
/// Nothing is allocated per message: a single `put` reuses one buffer, and
/// the messages of a batch are overlapping windows of one buffer (message `i`
/// starts `8 * i` bytes in, so each begins with its own stamp), which keeps
/// the data read as small as for single puts; only the list of the batch's
/// slices is allocated, once per `put_many`.
pub fn produce(q: &Queue, id: u64, size: usize, mode: Mode) -> Result<Tally, PutError> {
    if mode.batch <= 1 {
        put_one_by_one(q, id, size, mode)
    } else {
        put_batches(q, id, size, mode)
    }
}

fn put_one_by_one(q: &Queue, id: u64, size: usize, mode: Mode) -> Result<Tally, PutError> {
    let mut msg = vec![0u8; size];
    let mut sent = Tally::default();
    while mode.next_call(sent.count) > 0 {
        write_stamp(&mut msg, stamp(id, sent.count));
        match q.put(&msg) {
            Ok(()) => sent.add(&msg),
            Err(PutError::Closed) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

fn put_batches(q: &Queue, id: u64, size: usize, mode: Mode) -> Result<Tally, PutError> {
    // Message i of a batch is window[i * 8 .. i * 8 + size]: its first 8
    // bytes are its stamp (they are also bytes 8.. of message i - 1, whose
    // content past its own stamp does not matter).
    let mut window = vec![0u8; size + STAMP_LEN * (mode.batch - 1)];
    let at = |i: usize| i * STAMP_LEN..i * STAMP_LEN + size;
    let mut sent = Tally::default();
    loop {
        let k = mode.next_call(sent.count);
        if k == 0 {
            break;
        }
        for i in 0..k {
            write_stamp(&mut window[at(i)], stamp(id, sent.count + i as u64));
        }
        let msgs: Vec<&[u8]> = (0..k).map(|i| &window[at(i)]).collect();
        let (put, closed) = match q.put_many(&msgs) {
            Ok(()) => (k, false),
            Err((put, PutError::Closed)) => (put, true),
            Err((_, e)) => return Err(e),
        };
        msgs[..put].iter().for_each(|m| sent.add(m));
        if closed {
            break;
        }
    }
    Ok(sent)
}
