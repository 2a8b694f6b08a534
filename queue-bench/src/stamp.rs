//! The stamp at the start of every benchmark message, and the [`Tally`] that
//! checks that each one arrived exactly once.
//!
//! Producer `id` stamps its `n`-th message (from 0) with the sequence number
//! [`stamp(id, n)`](stamp()) = `(id << 40) | n`, little-endian, in the first 8
//! bytes (messages shorter than 8 bytes carry no stamp). Each side keeps a
//! [`Tally`]: the number of messages and the wrapping sum of their stamps.
//! When every producer and consumer has stopped, the producers' tallies added
//! up equal the consumers' if and only if (barring a checksum collision) no
//! message was lost or duplicated.

/// Bytes of the stamp at the start of a message.
pub const STAMP_LEN: usize = 8;

/// The sequence number of producer `id`'s `n`-th message: `(id << 40) | n`.
///
/// ```
/// assert_eq!(queue_bench::stamp::stamp(2, 5), (2 << 40) | 5);
/// ```
pub fn stamp(id: u64, n: u64) -> u64 {
    (id << 40) | n
}

/// Writes `seq` into the first 8 bytes of `msg` (nothing if it is shorter).
pub fn write_stamp(msg: &mut [u8], seq: u64) {
    if let Some(head) = msg.get_mut(..STAMP_LEN) {
        head.copy_from_slice(&seq.to_le_bytes());
    }
}

/// The stamp in the first 8 bytes of `msg`; `None` if it is shorter.
///
/// ```
/// use queue_bench::stamp::{read_stamp, write_stamp};
/// let mut msg = [0u8; 16];
/// write_stamp(&mut msg, 42);
/// assert_eq!(read_stamp(&msg), Some(42));
/// assert_eq!(read_stamp(&msg[..7]), None);
/// ```
pub fn read_stamp(msg: &[u8]) -> Option<u64> {
    let head = msg.get(..STAMP_LEN)?;
    Some(u64::from_le_bytes(head.try_into().ok()?))
}

/// Messages counted on one side, with the checksum of their stamps.
///
/// ```
/// use queue_bench::Tally;
/// use queue_bench::stamp::{stamp, write_stamp};
/// let (mut sent, mut got) = (Tally::default(), Tally::default());
/// let mut msg = [0u8; 64];
/// for n in 0..3 {
///     write_stamp(&mut msg, stamp(1, n));
///     sent.add(&msg);
///     got.add(&msg);
/// }
/// assert_eq!(sent, Tally { count: 3, sum: 3 * (1 << 40) + 3 });
/// assert_eq!(sent, got);
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Messages.
    pub count: u64,
    /// Wrapping sum of their stamps (messages without one add nothing).
    pub sum: u64,
}

impl Tally {
    /// Counts `msg` and adds its stamp, if it has one.
    #[inline]
    pub fn add(&mut self, msg: &[u8]) {
        self.count += 1;
        if let Some(seq) = read_stamp(msg) {
            self.sum = self.sum.wrapping_add(seq);
        }
    }

    /// Adds another tally (of another producer or consumer) to this one.
    pub fn merge(&mut self, other: Tally) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}
