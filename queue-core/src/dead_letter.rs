//! Dead-letter queues on segments: which queue holds whose dead letters
//! (the names in the headers), opening or creating a dead-letter queue, and
//! the two segments bound to the move protocol of `ring/moved.rs`
//! ([`Move`], its [`Sides`]). Above the segment, liveness and waiting;
//! below the queue, which calls it from `queue/dead_letter.rs`.
//!
//! A dead-letter queue serves one source: its header records the source's
//! name, claimed once by a CAS of the name's hash, so two sources naming
//! the same dead-letter queue cannot both use it (the second gets an error
//! naming both).

use std::path::Path;
use std::sync::atomic::Ordering::*;

use crate::error::OpenError;
use crate::layout::{Delivery, Geometry};
use crate::liveness;
use crate::ring::moved::{MoveLock, Sides};
use crate::ring::{Claim, Ring};
use crate::segment::{self, Segment};
use crate::wait;

/// Where a dead letter came from: read from the dead-letter queue by
/// [`Lease::dead_letter`](crate::Lease::dead_letter).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The queue the message was moved from.
    pub queue: String,
    /// The deliveries it had there: its `max_deliveries`, plus one for
    /// each earlier try to move it that did not finish (a mover killed
    /// midway, or a full dead-letter queue).
    pub deliveries: usize,
}

/// The queue whose dead letters `seg` holds, if one registered.
pub(crate) fn dead_letters_of(seg: &Segment) -> Option<String> {
    let h = seg.header();
    // SYNC: Acquire pairs with the Release store of the length in
    // `segment::write_name`: the name bytes are complete.
    let len = h.dead_letters_of_len.load(Acquire);
    if len == 0 {
        return None;
    }
    segment::read_name(&h.dead_letters_of, len)
}

/// What a dead letter in slot `claim` of dead-letter queue `seg` records,
/// if the message of that lap was moved there.
pub(crate) fn origin(seg: &Segment, claim: Claim) -> Option<DeadLetter> {
    let word = seg.meta(claim.idx).dead_letter.load(Acquire);
    let recorded = word & u64::from(u32::MAX); // deliveries + 1; 0: none
    if (word >> 32) as u32 != claim.lap || recorded == 0 {
        return None;
    }
    Some(DeadLetter {
        queue: dead_letters_of(seg)?,
        deliveries: (recorded - 1) as usize,
    })
}

/// A 64-bit FNV-1a hash of a queue name, never 0 (0 means "unclaimed").
fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

/// Makes `dlq` the dead-letter queue of `source`, or says whose it is.
pub(crate) fn register(dlq: &Segment, source: &str) -> Result<(), OpenError> {
    let h = dlq.header();
    let mine = name_hash(source);
    match h
        .dead_letters_of_hash
        .compare_exchange(0, mine, SeqCst, SeqCst)
    {
        Ok(_) => {}
        Err(found) if found == mine => {
            // Ours already (or a hash collision, caught by the name below).
            if dead_letters_of(dlq).is_some_and(|n| n != source) {
                return Err(taken(dlq, source));
            }
        }
        Err(_) => return Err(taken(dlq, source)),
    }
    // Idempotent: every registrant of this hash writes the same bytes.
    segment::write_name(&h.dead_letters_of, &h.dead_letters_of_len, source);
    Ok(())
}

fn taken(dlq: &Segment, source: &str) -> OpenError {
    let other = dead_letters_of(dlq).unwrap_or_else(|| "another queue".into());
    OpenError::InvalidConfig {
        name: source.to_owned(),
        reason: format!(
            "dead-letter queue {:?} already holds the dead letters of {other:?}; a dead-letter \
             queue serves one queue (hint: give {source:?} a dead-letter queue of its own, \
             e.g. {:?})",
            dlq.name,
            format!("{source}.dead"),
        ),
    }
}

/// Opens dead-letter queue `name` in `dir` for `source` (creating it with
/// `geometry` and file mode `mode` if `create` and it is missing) and
/// registers `source` with it. Refuses one whose messages are smaller than
/// the source's.
pub(crate) fn open(
    dir: &Path,
    name: &str,
    source: &str,
    geometry: Geometry,
    mode: u32,
    create: bool,
) -> Result<Segment, OpenError> {
    let dlq = match Segment::open(name, dir) {
        Err(OpenError::NotFound { .. }) if create => {
            // No delivery rules of its own: a dead letter is kept until read.
            match Segment::create(name, dir, geometry, Delivery::default(), None, mode) {
                Err(OpenError::AlreadyExists { .. }) => Segment::open(name, dir)?,
                other => other?,
            }
        }
        other => other?,
    };
    if dlq.geometry.max_msg_size < geometry.max_msg_size {
        return Err(OpenError::InvalidConfig {
            name: source.to_owned(),
            reason: format!(
                "dead-letter queue {name:?} takes messages of at most {} bytes, {source:?} of {} \
                 (hint: remove it, or use another name, and it is created with {source:?}'s sizes)",
                dlq.geometry.max_msg_size, geometry.max_msg_size
            ),
        });
    }
    register(&dlq, source)?;
    Ok(dlq)
}

/// Copies the message `claim` holds in the source into dead-letter slot
/// `dst` (held WRITING by the mover) with its delivery count.
pub(crate) fn copy(dlq: &Segment, payload: &[u8], dst: Claim, deliveries: u64) {
    // SAFETY: `dst` is WRITING(MOVER) under the move lock we hold TAKEN:
    // nobody else reads or writes its payload (the dead-letter queue's
    // recovery leaves MOVER slots alone while the lock is not FREE), and
    // the caller checked the length
    // against the dead-letter queue's `max_msg_size`.
    unsafe { dlq.write_payload(dst.idx, payload) };
    // { lap, deliveries + 1 }: a zeroed record (lap 0) means "not moved here".
    let word = (u64::from(dst.lap) << 32) | (deliveries.min(u64::from(u32::MAX - 1)) + 1);
    dlq.meta(dst.idx).dead_letter.store(word, Release);
}

/// A source segment and its dead-letter queue, bound to the move protocol
/// for participant `me` of the source.
pub(crate) struct Move<'a> {
    pub src: &'a Segment,
    pub dlq: &'a Segment,
    pub me: u16,
}

impl Sides for Move<'_> {
    type Src = Segment;
    type Dst = Segment;

    fn lock(&self) -> MoveLock<'_> {
        let h = self.dlq.header();
        MoveLock {
            word: &h.move_lock,
            src_idx: &h.move_src_idx,
            src_lap: &h.move_src_lap,
            dst_idx: &h.move_dst_idx,
            dst_lap: &h.move_dst_lap,
        }
    }

    fn source_slots(&self) -> &Segment {
        self.src
    }

    fn source_ring(&self, idx: u64) -> Ring<'_, Segment> {
        self.src.ring_of(idx)
    }

    fn dead_letter_slots(&self) -> &Segment {
        self.dlq
    }

    fn dead_letter_ring(&self, src_idx: u64) -> Ring<'_, Segment> {
        // The same priority level (the top one of a dead-letter queue made
        // by hand with fewer levels).
        let level = src_idx / self.src.geometry.capacity;
        self.dlq
            .level_ring(level.min(self.dlq.geometry.priorities - 1))
    }

    fn alive(&self, owner: u16) -> bool {
        u64::from(owner) < self.src.geometry.max_participants
            && liveness::is_alive(self.src, Some(self.me), owner)
    }

    fn handed_over(&self) {
        self.src.header().dead_lettered.fetch_add(1, Relaxed);
    }

    fn published(&self) {
        wait::notify_one(&self.dlq.header().get_seq);
    }

    fn discarded(&self, n: u64) {
        self.dlq.header().discarded_partial.fetch_add(n, Relaxed);
    }
}
