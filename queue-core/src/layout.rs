//! The on-segment layout: header, participant table and slots.
//!
//! Everything here is `#[repr(C)]` with fixed-width fields, so that two builds
//! of this crate (or a debugger) agree byte for byte. The offsets are asserted
//! at compile time and mirrored by the table in `docs/design.md`; change both
//! together and bump [`LAYOUT_VERSION`].
//!
//! A segment is laid out as:
//!
//! ```text
//! 0          1024            1024 + 64 P = levels_offset    meta_offset              slots_offset
//! | Header   | P participants | L - 1 level cursors (128 B) | S slot records (32 B) | S slots of `slot_stride` bytes |
//! ```
//!
//! `L` is the number of priority levels and `S = L * capacity`: level `k`
//! owns slots `k * capacity .. (k + 1) * capacity`, with its own cursors
//! (level 0 uses the header's, so a queue with one level is laid out, and
//! runs, exactly as one without levels).
//!
//! The slot records ([`SlotMeta`]) hold what delivery control needs per
//! message (delivery count, lease deadline); they sit apart from the slots
//! so that the slots, and so the put/get hot path, are laid out exactly as
//! before.

use crate::sync::atomic::{AtomicU32, AtomicU64};

/// First eight bytes of every segment, published last (with Release) by the
/// creator. `b"MQSHMQ\0\x01"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"MQSHMQ\0\x01");

/// Bumped whenever anything in this file changes meaning or position.
/// Version 2: slots are 16-byte aligned (were 64). Version 3: delivery
/// control (lease timeout and max deliveries in the header, a delivery
/// generation in the state word, the slot records before the slots, the
/// `expired` and `dropped_poison` counters). Version 4: dead-letter queues
/// (the header grows to 1024 bytes: the dead-letter names, the move lock,
/// the `dead_lettered` counter; the slot record's fourth word). Version 5:
/// two slot kinds, READ_RUN and WRITE_RUN (`ring/recorded.rs`), whose
/// claims an older build would walk into.
pub const LAYOUT_VERSION: u64 = 5;

/// Cache line size used for padding (x86_64 and most aarch64 parts).
pub const CACHE_LINE: u64 = 64;

/// Size of `Header` in bytes.
pub const HEADER_SIZE: u64 = 1024;

/// Words of a name field in the header: the longest queue name (200 bytes,
/// `segment::MAX_NAME_LEN`), little-endian, 8 bytes a word.
pub const NAME_WORDS: usize = 25;

/// Size of one `ParticipantEntry` in bytes.
pub const PARTICIPANT_SIZE: u64 = 64;

/// Bytes at the start of every slot before the payload: the state word and the length.
pub const SLOT_HEADER_SIZE: u64 = 16;

/// Size of one slot record (`SlotMeta`, the delivery count and lease deadline of a slot) in bytes.
pub const SLOT_META_SIZE: u64 = 32;

/// Size of one [`LevelCursors`] entry in bytes.
pub const LEVEL_SIZE: u64 = 128;

/// The most priority levels a queue may have (a getter looks at every
/// level from the highest down, so they are not free).
pub const MAX_PRIORITIES: u64 = 64;

/// Slot strides are multiples of this. Not of [`CACHE_LINE`]: a 64-byte
/// message then takes 80 bytes instead of 128 - five cache lines for four
/// messages instead of eight - and a producer streaming into slots that a
/// consumer emptied moves that much less between the cores. Measured
/// (`docs/performance.md`, 64-byte messages, 1 -> 1 across two cores, same
/// run): 11 M messages/s with 64-byte alignment, 18 M with 16. The state
/// words stay 8-byte aligned.
pub const SLOT_ALIGN: u64 = 16;

/// The largest participant table a segment may have: owner indices must fit
/// the 16-bit owner field of a slot state word, with room to spare.
pub const MAX_PARTICIPANTS_LIMIT: u64 = 4096;

/// The segment header. Lines 0-1 are written once by the creator and only read
/// afterwards; every mutable field sits on its own cache line so that
/// producers and consumers do not invalidate each other's lines needlessly.
///
/// Every field that is ever read is an atomic, even the ones that never
/// change after publication: a hostile process that maps the segment may
/// write any of them at any time, and a plain read through `&Header` would
/// then be a data race. (Atomics have the size and alignment of the plain
/// integers, so the layout is the same.)
#[repr(C)]
pub struct Header {
    // ---- line 0: identity and geometry (immutable after publication) ----
    /// [`MAGIC`] once the segment is fully initialised; 0 while it is being built.
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`] of the creator.
    pub layout_version: AtomicU64,
    /// Number of slots (messages the queue holds).
    pub capacity: AtomicU64,
    /// Largest payload a slot holds, in bytes.
    pub max_msg_size: AtomicU64,
    /// Distance between two slots: `SLOT_HEADER_SIZE + max_msg_size` rounded up to [`SLOT_ALIGN`].
    pub slot_stride: AtomicU64,
    /// Number of entries in the participant table.
    pub max_participants: AtomicU64,
    /// Byte offset of the participant table (always [`HEADER_SIZE`]).
    pub participants_offset: AtomicU64,
    /// Byte offset of slot 0.
    pub slots_offset: AtomicU64,

    // ---- line 1: more immutable facts ----
    /// Total size of the segment file in bytes.
    pub total_size: AtomicU64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: AtomicU64,
    /// Pid of the creating process (informational only: pids are reused).
    pub creator_pid: AtomicU64,
    /// How long a lease lasts without `ack` or `renew`, in nanoseconds
    /// (0: no deadline, a lease lasts while its holder lives).
    pub lease_timeout_ns: AtomicU64,
    /// Deliveries a message may have; the next one drops it instead
    /// (0: unlimited).
    pub max_deliveries: AtomicU64,
    /// Byte offset of the slot records ([`SlotMeta`]).
    pub meta_offset: AtomicU64,
    /// Number of priority levels (1 to [`MAX_PRIORITIES`]).
    pub priorities: AtomicU64,
    /// Byte offset of the cursors of levels 1 and up ([`LevelCursors`]).
    pub levels_offset: AtomicU64,

    // ---- line 2: producer cursor ----
    /// Next position to write. Positions only grow; slot = pos % capacity,
    /// lap = pos / capacity. Advanced by CAS by the claimant or any helper.
    pub tail: AtomicU64,
    _pad2: [u64; 7],

    // ---- line 3: consumer cursor ----
    /// Next position to read (same encoding as `tail`; `head <= tail + 1`).
    pub head: AtomicU64,
    _pad3: [u64; 7],

    // ---- line 4: consumers' wait point (written by producers to wake them) ----
    /// Futex word consumers sleep on; producers bump it when they publish and someone waits.
    pub get_seq: AtomicU32,
    /// Number of consumers registered as (about to be) sleeping.
    pub get_waiters: AtomicU32,
    _pad4: [u64; 7],

    // ---- line 5: producers' wait point ----
    /// Futex word producers sleep on; consumers bump it when they free a slot.
    pub put_seq: AtomicU32,
    /// Number of producers registered as (about to be) sleeping.
    pub put_waiters: AtomicU32,
    _pad5: [u64; 7],

    // ---- line 6: rarely written flags ----
    /// 1 once `close()` was called: end of stream.
    pub closed: AtomicU32,
    _pad6a: u32,
    /// Hint: how many slots are in the REQUEUED state (re-delivery pending).
    pub requeued: AtomicU64,
    /// Hint: the slot (index within the level) re-queued last, where a
    /// getter starts looking for re-queued messages. Any value is safe: the
    /// look goes round every slot of the level from there.
    pub requeued_at: AtomicU64,
    _pad6: [u64; 5],

    // ---- line 7: recovery statistics ----
    /// Messages put back for another consumer (dead reader or dropped lease).
    pub redelivered: AtomicU64,
    /// Half-written messages of dead producers that were thrown away.
    pub discarded_partial: AtomicU64,
    /// Puts counted by participants that have since left or died.
    pub retired_puts: AtomicU64,
    /// Gets counted by participants that have since left or died.
    pub retired_gets: AtomicU64,
    /// Leases put back because their deadline passed (also in `redelivered`).
    pub expired: AtomicU64,
    /// Messages dropped after `max_deliveries` deliveries (poison messages).
    pub dropped_poison: AtomicU64,
    /// Messages moved to the dead-letter queue after `max_deliveries`.
    pub dead_lettered: AtomicU64,
    _pad7: [u64; 1],

    // ---- lines 8-14: dead-letter names (written once, before use) ----
    /// Length of `dead_letter`: this queue's dead-letter queue (0: none).
    /// Written by the creator before publication.
    pub dead_letter_len: AtomicU64,
    /// The dead-letter queue's name, little-endian bytes.
    pub dead_letter: [AtomicU64; NAME_WORDS],
    /// In a dead-letter queue: a hash of the one queue whose dead letters
    /// it holds (0: none yet). Set once by CAS, so two sources cannot both
    /// claim it.
    pub dead_letters_of_hash: AtomicU64,
    /// Length of `dead_letters_of` (0: not written yet); stored with
    /// Release after the name.
    pub dead_letters_of_len: AtomicU64,
    /// The name of the queue whose dead letters this queue holds.
    pub dead_letters_of: [AtomicU64; NAME_WORDS],
    _pad14: [u64; 3],

    // ---- line 15: the move lock of a dead-letter queue (`ring/moved.rs`) ----
    /// `{ seq: u32, stage: u8, owner: u16 }`: FREE, TAKEN or COMMITTED by
    /// `owner`, a participant index of the source queue.
    pub move_lock: AtomicU64,
    /// The source slot being moved (written while TAKEN).
    pub move_src_idx: AtomicU64,
    /// The lap of that source slot.
    pub move_src_lap: AtomicU64,
    /// The dead-letter slot the message is copied into.
    pub move_dst_idx: AtomicU64,
    /// The lap of that dead-letter slot.
    pub move_dst_lap: AtomicU64,
    _pad15: [u64; 3],
}

/// One entry of the participant table. Entry `i` is owned by whoever holds the
/// kernel record lock on byte `1 + i` of the segment file (see `liveness.rs`);
/// the fields below are only ever written by that holder, except the counters,
/// which a cleaner retires after the holder died.
#[repr(C)]
pub struct ParticipantEntry {
    /// [`ENTRY_FREE`] or [`ENTRY_IN_USE`].
    pub state: AtomicU64,
    /// Pid of the process that attached (informational; liveness is the lock).
    pub pid: AtomicU64,
    /// Attach time, nanoseconds since the Unix epoch.
    pub attached_unix_ns: AtomicU64,
    /// Messages this participant put.
    pub puts: AtomicU64,
    /// Messages this participant took (acked or plain get).
    pub gets: AtomicU64,
    /// Threads of this participant blocked in put right now.
    pub waiting_put: AtomicU32,
    /// Threads of this participant blocked in get right now.
    pub waiting_get: AtomicU32,
    _reserved: [u64; 2],
}

/// Participant entry is unused.
pub const ENTRY_FREE: u64 = 0;
/// Participant entry belongs to a process (alive if its lock is held).
pub const ENTRY_IN_USE: u64 = 1;

/// The fixed part of a slot; `max_msg_size` payload bytes follow it.
#[repr(C)]
pub struct SlotHeader {
    /// The slot state word, see `ring/word.rs`: `{ lap: u32, gen: u8, kind: u8, owner: u16 }`.
    pub state: AtomicU64,
    /// Payload length in bytes; valid while the state is READY/READING/REQUEUED.
    pub len: AtomicU64,
}

/// The cursors of one priority level above 0 (level 0 uses the header's
/// `tail`, `head` and `requeued`): the same encoding, each cursor on a cache
/// line of its own.
#[repr(C)]
pub struct LevelCursors {
    /// Next position to write in this level.
    pub tail: AtomicU64,
    _pad0: [u64; 7],
    /// Next position to read in this level.
    pub head: AtomicU64,
    /// Hint: REQUEUED slots in this level.
    pub requeued: AtomicU64,
    /// Hint: the slot of this level re-queued last (as in [`Header`]).
    pub requeued_at: AtomicU64,
    _pad1: [u64; 5],
}

/// What delivery control keeps per slot, beside the slot. Written only by
/// the participant whose READING word holds the slot; read by anyone.
#[repr(C)]
pub struct SlotMeta {
    /// Deliveries recorded for the message of one lap:
    /// `{ lap: u32 (bits 32-63), count: u32 (bits 0-31) }`. Written by a
    /// consumer that takes a re-queued message; a word of an older lap
    /// counts as 0. The exact count is rebuilt from it and the state word's
    /// `gen` (deliveries modulo 256), so a taker that died before writing
    /// it, or a first delivery that never writes it, loses nothing.
    pub deliveries: AtomicU64,
    /// The READING state word of the delivery whose deadline
    /// `lease_deadline_ms` is (written after the deadline, with Release).
    pub lease_word: AtomicU64,
    /// When that lease expires, milliseconds of `CLOCK_MONOTONIC` (which is
    /// system-wide, so every process compares against the same clock).
    pub lease_deadline_ms: AtomicU64,
    /// In a dead-letter queue: `{ lap: u32, count + 1: u32 }`, the delivery
    /// count a moved message had in its source queue, for the message of
    /// that lap (0 in the low half, or another lap: not moved here).
    pub dead_letter: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Header>() as u64 == HEADER_SIZE);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, layout_version) == 8);
    assert!(offset_of!(Header, capacity) == 16);
    assert!(offset_of!(Header, max_msg_size) == 24);
    assert!(offset_of!(Header, slot_stride) == 32);
    assert!(offset_of!(Header, max_participants) == 40);
    assert!(offset_of!(Header, participants_offset) == 48);
    assert!(offset_of!(Header, slots_offset) == 56);
    assert!(offset_of!(Header, total_size) == 64);
    assert!(offset_of!(Header, created_unix_ns) == 72);
    assert!(offset_of!(Header, creator_pid) == 80);
    assert!(offset_of!(Header, lease_timeout_ns) == 88);
    assert!(offset_of!(Header, max_deliveries) == 96);
    assert!(offset_of!(Header, meta_offset) == 104);
    assert!(offset_of!(Header, priorities) == 112);
    assert!(offset_of!(Header, levels_offset) == 120);
    assert!(size_of::<LevelCursors>() as u64 == LEVEL_SIZE);
    assert!(offset_of!(LevelCursors, tail) == 0);
    assert!(offset_of!(LevelCursors, head) == 64);
    assert!(offset_of!(LevelCursors, requeued) == 72);
    assert!(offset_of!(Header, tail) == 128);
    assert!(offset_of!(Header, head) == 192);
    assert!(offset_of!(Header, get_seq) == 256);
    assert!(offset_of!(Header, get_waiters) == 260);
    assert!(offset_of!(Header, put_seq) == 320);
    assert!(offset_of!(Header, put_waiters) == 324);
    assert!(offset_of!(Header, closed) == 384);
    assert!(offset_of!(Header, requeued) == 392);
    assert!(offset_of!(Header, redelivered) == 448);
    assert!(offset_of!(Header, discarded_partial) == 456);
    assert!(offset_of!(Header, retired_puts) == 464);
    assert!(offset_of!(Header, retired_gets) == 472);
    assert!(offset_of!(Header, expired) == 480);
    assert!(offset_of!(Header, dropped_poison) == 488);
    assert!(offset_of!(Header, dead_lettered) == 496);
    assert!(offset_of!(Header, dead_letter_len) == 512);
    assert!(offset_of!(Header, dead_letter) == 520);
    assert!(offset_of!(Header, dead_letters_of_hash) == 720);
    assert!(offset_of!(Header, dead_letters_of_len) == 728);
    assert!(offset_of!(Header, dead_letters_of) == 736);
    assert!(offset_of!(Header, move_lock) == 960);
    assert!(offset_of!(Header, move_src_idx) == 968);
    assert!(offset_of!(Header, move_src_lap) == 976);
    assert!(offset_of!(Header, move_dst_idx) == 984);
    assert!(offset_of!(Header, move_dst_lap) == 992);
    assert!(offset_of!(SlotMeta, dead_letter) == 24);
    assert!(size_of::<SlotMeta>() as u64 == SLOT_META_SIZE);
    assert!(offset_of!(SlotMeta, deliveries) == 0);
    assert!(offset_of!(SlotMeta, lease_word) == 8);
    assert!(offset_of!(SlotMeta, lease_deadline_ms) == 16);
    assert!(size_of::<ParticipantEntry>() as u64 == PARTICIPANT_SIZE);
    assert!(offset_of!(ParticipantEntry, state) == 0);
    assert!(offset_of!(ParticipantEntry, pid) == 8);
    assert!(offset_of!(ParticipantEntry, attached_unix_ns) == 16);
    assert!(offset_of!(ParticipantEntry, puts) == 24);
    assert!(offset_of!(ParticipantEntry, gets) == 32);
    assert!(offset_of!(ParticipantEntry, waiting_put) == 40);
    assert!(offset_of!(ParticipantEntry, waiting_get) == 44);
    assert!(size_of::<SlotHeader>() as u64 == SLOT_HEADER_SIZE);
    assert!(core::mem::align_of::<Header>() <= CACHE_LINE as usize);
};

/// The geometry of a segment, derived from the three user-chosen sizes with
/// checked arithmetic. Openers recompute it from the header's sizes and compare
/// it with every stored offset, so a damaged header is caught before any access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Number of slots of each priority level.
    pub capacity: u64,
    /// Number of priority levels.
    pub priorities: u64,
    /// Number of slots in all: `capacity * priorities`.
    pub slots: u64,
    /// Largest payload per slot.
    pub max_msg_size: u64,
    /// Entries in the participant table.
    pub max_participants: u64,
    /// Bytes from one slot to the next.
    pub slot_stride: u64,
    /// Offset of the participant table.
    pub participants_offset: u64,
    /// Offset of the cursors of levels 1 and up (right after the participant table).
    pub levels_offset: u64,
    /// Offset of the slot records (right after the level cursors).
    pub meta_offset: u64,
    /// Offset of slot 0 (after the slot records, on a cache line).
    pub slots_offset: u64,
    /// Size of the whole segment.
    pub total_size: u64,
}

/// The delivery-control settings of a queue, stored in the header by its
/// creator and read once by every opener (like the geometry, a handle uses
/// only its own copy afterwards).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Lease timeout in nanoseconds; 0: none.
    pub lease_timeout_ns: u64,
    /// Deliveries a message may have; 0: unlimited.
    pub max_deliveries: u64,
}

/// Why a geometry cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryError {
    /// Capacity was zero.
    ZeroCapacity,
    /// Participant table size out of range.
    BadParticipants,
    /// Number of priority levels out of range.
    BadPriorities,
    /// The sizes multiply past what this machine can address.
    Overflow,
}

impl Geometry {
    /// Computes the layout for the given sizes and one priority level.
    #[cfg(test)]
    pub fn new(
        capacity: u64,
        max_msg_size: u64,
        max_participants: u64,
    ) -> Result<Self, GeometryError> {
        Self::with_priorities(capacity, max_msg_size, max_participants, 1)
    }

    /// Computes the layout for the given sizes, or says why it cannot exist.
    pub fn with_priorities(
        capacity: u64,
        max_msg_size: u64,
        max_participants: u64,
        priorities: u64,
    ) -> Result<Self, GeometryError> {
        if capacity == 0 {
            return Err(GeometryError::ZeroCapacity);
        }
        if priorities == 0 || priorities > MAX_PRIORITIES {
            return Err(GeometryError::BadPriorities);
        }
        let slots = capacity
            .checked_mul(priorities)
            .ok_or(GeometryError::Overflow)?;
        if max_participants == 0 || max_participants > MAX_PARTICIPANTS_LIMIT {
            return Err(GeometryError::BadParticipants);
        }
        let slot_stride = SLOT_HEADER_SIZE
            .checked_add(max_msg_size)
            .and_then(|n| n.checked_next_multiple_of(SLOT_ALIGN))
            .ok_or(GeometryError::Overflow)?;
        let participants_offset = HEADER_SIZE;
        let levels_offset = participants_offset + PARTICIPANT_SIZE * max_participants;
        let meta_offset = levels_offset + LEVEL_SIZE * (priorities - 1);
        let slots_offset = SLOT_META_SIZE
            .checked_mul(slots)
            .and_then(|n| n.checked_next_multiple_of(CACHE_LINE))
            .and_then(|n| n.checked_add(meta_offset))
            .ok_or(GeometryError::Overflow)?;
        let total_size = slot_stride
            .checked_mul(slots)
            .and_then(|n| n.checked_add(slots_offset))
            .ok_or(GeometryError::Overflow)?;
        // The whole segment is mapped, so it must fit in this address space,
        // and positions divided by capacity must leave room for laps.
        if usize::try_from(total_size).is_err() || total_size > (isize::MAX as u64) {
            return Err(GeometryError::Overflow);
        }
        Ok(Geometry {
            capacity,
            priorities,
            slots,
            max_msg_size,
            max_participants,
            slot_stride,
            participants_offset,
            levels_offset,
            meta_offset,
            slots_offset,
            total_size,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn small_geometry() {
        let g = Geometry::new(4, 64, 8).unwrap();
        assert_eq!(g.slot_stride, 80);
        assert_eq!(g.participants_offset, 1024);
        assert_eq!(g.meta_offset, 1024 + 8 * 64);
        assert_eq!(g.slots_offset, 1024 + 8 * 64 + 4 * 32);
        assert_eq!(g.total_size, 1024 + 8 * 64 + 4 * 32 + 4 * 80);
        // The records are padded to a cache line: 3 slots take 96 -> 128.
        let g = Geometry::new(3, 64, 8).unwrap();
        assert_eq!(g.slots_offset, 1024 + 8 * 64 + 128);
        // Three levels: two level entries, three times the slots.
        let g = Geometry::with_priorities(4, 64, 8, 3).unwrap();
        assert_eq!((g.slots, g.levels_offset), (12, 1024 + 8 * 64));
        assert_eq!(g.meta_offset, 1024 + 8 * 64 + 2 * 128);
        assert_eq!(g.slots_offset, g.meta_offset + 12 * 32);
        assert_eq!(g.total_size, g.slots_offset + 12 * 80);
        assert_eq!(
            Geometry::with_priorities(4, 64, 8, 0),
            Err(GeometryError::BadPriorities)
        );
        assert_eq!(
            Geometry::with_priorities(4, 64, 8, MAX_PRIORITIES + 1),
            Err(GeometryError::BadPriorities)
        );
    }

    #[test]
    fn stride_is_aligned_and_tight() {
        for size in [0, 1, 47, 48, 49, 64, 4096, 10_000] {
            let g = Geometry::new(1, size, 1).unwrap();
            assert_eq!(g.slot_stride % SLOT_ALIGN, 0);
            assert!(g.slot_stride >= SLOT_HEADER_SIZE + size);
            assert!(g.slot_stride < SLOT_HEADER_SIZE + size + SLOT_ALIGN);
            assert_eq!(g.slots_offset % CACHE_LINE, 0, "slot 0 starts a cache line");
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(Geometry::new(0, 1, 1), Err(GeometryError::ZeroCapacity));
        assert_eq!(Geometry::new(1, 1, 0), Err(GeometryError::BadParticipants));
        assert_eq!(
            Geometry::new(1, 1, MAX_PARTICIPANTS_LIMIT + 1),
            Err(GeometryError::BadParticipants)
        );
        assert_eq!(
            Geometry::new(u64::MAX, 4096, 1),
            Err(GeometryError::Overflow)
        );
        assert_eq!(Geometry::new(1, u64::MAX, 1), Err(GeometryError::Overflow));
        assert_eq!(
            Geometry::new(1 << 40, 1 << 30, 1),
            Err(GeometryError::Overflow)
        );
    }

    #[test]
    fn magic_spells_its_name() {
        assert_eq!(&MAGIC.to_le_bytes()[..6], b"MQSHMQ");
    }
}
