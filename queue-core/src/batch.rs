//! [`Batch`]: reusable storage for the messages of one
//! [`Queue::get_many_into`](crate::Queue::get_many_into) call.
//!
//! The messages are stored back to back in one byte buffer, with the end
//! offset of each in a second one, so a consumer that takes batches in a loop
//! allocates nothing once both buffers have grown to their working size (one
//! `Vec<u8>` per message, as [`Queue::get_many`](crate::Queue::get_many)
//! returns, costs an allocation and a free per message - for 64 KiB messages
//! more than the copy itself).

/// Messages taken by one [`Queue::get_many_into`](crate::Queue::get_many_into),
/// in queue order. Keep one and pass it to every call: it is cleared at the
/// start of each, and keeps its allocations.
///
/// ```
/// use queue_core::{Batch, Queue};
/// let dir = std::env::temp_dir().join(format!("mq-doc-batch-{}", std::process::id()));
/// let q = Queue::builder("batch").dir(&dir).capacity(8).create()?;
/// q.put_many(&[&b"a"[..], b"bb", b"ccc"]).map_err(|(_, e)| e)?;
/// let mut batch = Batch::new();
/// assert_eq!(q.get_many_into(&mut batch, 16)?, 3);
/// let got: Vec<&[u8]> = batch.iter().collect();
/// assert_eq!(got, [&b"a"[..], b"bb", b"ccc"]);
/// assert_eq!(batch.get(1), Some(&b"bb"[..]));
/// Queue::remove_in(&dir, "batch")?;
/// # std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The payloads, back to back.
    data: Vec<u8>,
    /// `ends[i]` is the offset in `data` just past message `i`.
    ends: Vec<usize>,
}

impl Batch {
    /// An empty batch; its buffers grow on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `messages` messages of `bytes` bytes in
    /// total before it allocates.
    pub fn with_capacity(messages: usize, bytes: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(messages),
        }
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Total payload bytes of all messages.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Message `i` (0 is the oldest), if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..end])
    }

    /// The messages, oldest first.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            batch: self,
            next: 0,
        }
    }

    /// Removes every message, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// The payload bytes and the end offsets, for a get to append to (it
    /// keeps them consistent: every end within the bytes, in order).
    pub(crate) fn parts_mut(&mut self) -> (&mut Vec<u8>, &mut Vec<usize>) {
        (&mut self.data, &mut self.ends)
    }

    /// Drops message `i` (which must exist), keeping the others in order.
    pub(crate) fn remove(&mut self, i: usize) {
        let end = self.ends.remove(i);
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.drain(start..end);
        for later in &mut self.ends[i..] {
            *later -= end - start;
        }
    }

    /// Keeps the first `n` messages and drops the rest.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.ends.truncate(n);
        self.data.truncate(self.ends.last().copied().unwrap_or(0));
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("messages", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// Iterator over the messages of a [`Batch`], oldest first.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    batch: &'a Batch,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let msg = self.batch.get(self.next)?;
        self.next += 1;
        Some(msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_messages_back_to_back() {
        let mut b = Batch::with_capacity(4, 16);
        for m in [&b""[..], b"xy", b"", b"abc", b"zz"] {
            let (data, ends) = b.parts_mut();
            data.extend_from_slice(m);
            ends.push(data.len());
        }
        b.truncate(4);
        assert_eq!(b.len(), 4);
        let mut dropped = b.clone();
        dropped.remove(1);
        let left: Vec<&[u8]> = dropped.iter().collect();
        assert_eq!(left, [&b""[..], b"", b"abc"]);
        dropped.remove(0);
        dropped.remove(1);
        assert_eq!(dropped.iter().collect::<Vec<_>>(), [&b""[..]]);
        assert_eq!(b.bytes(), 5);
        let all: Vec<&[u8]> = b.iter().collect();
        assert_eq!(all, [&b""[..], b"xy", b"", b"abc"]);
        assert_eq!(b.iter().len(), 4);
        assert_eq!(b.get(4), None);
        let cap = b.data.capacity();
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.data.capacity(), cap);
        assert_eq!(b.iter().next(), None);
    }
}
