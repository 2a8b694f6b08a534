//! The slot state word `{ lap: u32, gen: u8, kind: u8, owner: u16 }`
//! (see the module docs of `ring`): its kinds, and packing and unpacking it.

/// Slot kind: free for the writer of this lap.
pub(crate) const EMPTY: u8 = 0;
/// Slot kind: a producer (the owner) is copying a message in.
pub(crate) const WRITING: u8 = 1;
/// Slot kind: a complete message waits for a consumer.
pub(crate) const READY: u8 = 2;
/// Slot kind: a consumer (the owner) is copying the message out or holds a lease.
pub(crate) const READING: u8 = 3;
/// Slot kind: a complete message whose reader died or dropped its lease; it
/// sits behind `head` and is found through the `requeued` hint.
pub(crate) const REQUEUED: u8 = 4;
/// Slot kind: the first message of a run a consumer (the owner) took with
/// this one claim; the `n - 1` positions behind it are the consumer's too
/// (the generation field holds `n - 1`, see [`run_len`]).
pub(crate) const READ_RUN: u8 = 5;
/// Slot kind: the first slot of a run a producer (the owner) took with this
/// one claim and is writing; the `n - 1` positions behind it are its too.
pub(crate) const WRITE_RUN: u8 = 6;

/// Packs a state word (delivery generation 0).
#[inline]
pub(crate) const fn pack(lap: u32, kind: u8, owner: u16) -> u64 {
    pack_gen(lap, 0, kind, owner)
}

/// Packs a state word with a delivery generation (READING and REQUEUED).
#[inline]
pub(crate) const fn pack_gen(lap: u32, generation: u8, kind: u8, owner: u16) -> u64 {
    ((lap as u64) << 32) | ((generation as u64) << 24) | ((kind as u64) << 16) | owner as u64
}

/// Packs the word of a run's first slot: a run of `n` slots (`2 ..=
/// RUN_MAX`) of kind `kind` (READ_RUN or WRITE_RUN) taken by `owner`.
#[inline]
pub(crate) const fn pack_run(lap: u32, n: u64, kind: u8, owner: u16) -> u64 {
    pack_gen(lap, (n - 1) as u8, kind, owner)
}

/// The number of slots of the run whose first slot holds the run word
/// `state`.
#[inline]
pub(crate) const fn run_len(state: u64) -> u64 {
    gen_of(state) as u64 + 1
}

/// The delivery generation of a state word (deliveries modulo 256).
#[inline]
pub(crate) const fn gen_of(state: u64) -> u8 {
    (state >> 24) as u8
}

/// The lap of a state word.
#[inline]
pub(crate) const fn lap_of(state: u64) -> u32 {
    (state >> 32) as u32
}

/// The kind of a state word.
#[inline]
pub(crate) const fn kind_of(state: u64) -> u8 {
    (state >> 16) as u8
}

/// The owner of a state word (meaningful for WRITING and READING).
#[inline]
pub(crate) const fn owner_of(state: u64) -> u16 {
    state as u16
}

/// How far the slot's lap is from the lap the caller expects.
#[inline]
pub(super) fn lap_distance(state: u64, lap: u32) -> i32 {
    lap_of(state).wrapping_sub(lap) as i32
}
