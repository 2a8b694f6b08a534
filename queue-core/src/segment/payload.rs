//! The payloads: copying messages into slots and out of them, one or a
//! run at a time. The copies call `memcpy` (`copy_nonoverlapping`), but
//! the batch loops of a queue of messages of 32 to 64 bytes at most, on a
//! CPU with AVX2, are compiled a second time with the copies inline by
//! 32-byte moves (`copy.rs`): 84 -> 59 instructions a batched 64-byte
//! message with the steps of docs/performance.md, "Copies by AVX2 moves",
//! and 14% more of them between two processes. (Inline copies by 16-byte
//! moves had saved about one instruction and moved 4-8% fewer messages.)

use std::sync::atomic::{AtomicU64, Ordering::*};

use super::{Segment, copy};
use crate::layout::SlotHeader;

/// The most bytes `append_payloads` reserves ahead for a batch's largest
/// messages (so a reused batch is filled in one pass); above it a batch
/// grows by what it received.
const ONE_PASS_ROOM: u64 = 256 << 10;

/// Fewest messages the get loop compiled for AVX2 copies (`copy.rs`):
/// fewer go through the inline loop, by `memcpy`. (The put loop takes any
/// number: its call costs less, and a limit there cost batches of 4 about
/// 10 instructions a message.)
const SMALL_LOOP_FROM: u64 = 4;

impl Segment {
    /// Copies `msg` into slot `idx`.
    ///
    /// # Safety
    /// The caller must hold slot `idx` in the WRITING state, so no other
    /// participant reads or writes its payload, and `msg.len()` must be at
    /// most `max_msg_size`.
    #[inline]
    pub(crate) unsafe fn write_payload(&self, idx: u64, msg: &[u8]) {
        debug_assert!(msg.len() as u64 <= self.geometry.max_msg_size);
        let slot = self.slot_ptr(idx);
        // SAFETY: the payload area starts SLOT_HEADER_SIZE bytes into the slot
        // and holds max_msg_size bytes; the caller owns it (WRITING).
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                slot.add(crate::layout::SLOT_HEADER_SIZE as usize),
                msg.len(),
            );
        }
        self.slot(idx).len.store(msg.len() as u64, Relaxed);
    }

    /// Copies `msgs` into the slots from `idx` on, one message per slot,
    /// calling `then` with each slot's state word once its message and
    /// length are in (`put_many` publishes a recorded run's slots behind
    /// its record there).
    ///
    /// # Safety
    /// The caller must hold those slots in the WRITING state, and every
    /// message must be at most `max_msg_size` bytes long.
    #[inline]
    pub(crate) unsafe fn write_payloads<M: AsRef<[u8]>>(
        &self,
        idx: u64,
        msgs: &[M],
        then: impl FnMut(&AtomicU64),
    ) {
        // Both out of line, so that this stays small enough to be inlined
        // into its caller's loops.
        #[cfg(target_arch = "x86_64")]
        if self.grid.small_copies {
            // SAFETY: passed on from the caller; `small_copies` says the
            // CPU has AVX2 and the queue's messages fit the small copies.
            return unsafe { self.write_payloads_small(idx, msgs, then) };
        }
        // SAFETY: passed on from the caller.
        unsafe { self.write_payloads_by_call(idx, msgs, then) }
    }

    /// [`write_payloads`](Self::write_payloads) by `memcpy`.
    #[inline(never)]
    unsafe fn write_payloads_by_call<M: AsRef<[u8]>>(
        &self,
        idx: u64,
        msgs: &[M],
        then: impl FnMut(&AtomicU64),
    ) {
        // SAFETY: passed on from the caller.
        unsafe { self.write_payloads_with::<false, M>(idx, msgs, then) }
    }

    /// [`write_payloads`](Self::write_payloads) by AVX2 moves.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn write_payloads_small<M: AsRef<[u8]>>(
        &self,
        idx: u64,
        msgs: &[M],
        then: impl FnMut(&AtomicU64),
    ) {
        // SAFETY: passed on from the caller.
        unsafe { self.write_payloads_with::<true, M>(idx, msgs, then) }
    }

    /// The loop of [`write_payloads`](Self::write_payloads), its copies
    /// inline by AVX2 moves if `SMALL` (`copy.rs`; then only in a function
    /// compiled for AVX2, for a queue of small messages), else by `memcpy`.
    ///
    /// # Safety
    /// As [`write_payloads`](Self::write_payloads), and the conditions of
    /// `SMALL`.
    #[inline(always)]
    unsafe fn write_payloads_with<const SMALL: bool, M: AsRef<[u8]>>(
        &self,
        idx: u64,
        msgs: &[M],
        mut then: impl FnMut(&AtomicU64),
    ) {
        // A plain loop over the checked range, as in `append_payloads`.
        let (mut slot, stride) = (
            self.slot_ptrs(idx, msgs.len() as u64).next,
            self.grid.stride,
        );
        for msg in msgs {
            let msg = msg.as_ref();
            debug_assert!(msg.len() as u64 <= self.geometry.max_msg_size);
            // SAFETY: as in `write_payload`, for the slots `slot_ptrs`
            // checked (`slot` steps through them).
            unsafe {
                copy::bytes::<SMALL>(
                    msg.as_ptr(),
                    slot.as_ptr().add(crate::layout::SLOT_HEADER_SIZE as usize),
                    msg.len(),
                );
                let header = slot.cast::<SlotHeader>().as_ref();
                header.len.store(msg.len() as u64, Relaxed);
                then(&header.state);
                slot = slot.add(stride as usize);
            }
        }
    }

    /// Appends the payload of slot `idx` to `out` and returns its length, or
    /// the bad length found (then `out` is unchanged).
    ///
    /// # Safety
    /// The caller must hold slot `idx` in the READING state, so no
    /// participant following the protocol writes its payload meanwhile.
    #[inline]
    pub(crate) unsafe fn append_payload(&self, idx: u64, out: &mut Vec<u8>) -> Result<usize, u64> {
        // SAFETY: a slot pointer of the grid, held by the caller.
        unsafe { self.append_from(self.slot_ptr(idx), out) }
    }

    /// Appends the payloads of the `n` slots from `idx` on to `data`, back
    /// to back, and the offset just past each to `ends`, in order, calling
    /// `then` after each copy (the caller's hand-over of that slot); stops
    /// where `then` says false, or before a bad length.
    ///
    /// One pass where both buffers have room for `n` of the largest
    /// messages already (a reused batch: the first call reserves that room
    /// where it is at most `ONE_PASS_ROOM`): each length read, checked and
    /// its payload copied in turn. Otherwise two: the lengths are read and
    /// checked first (each read once: the copies trust only what was
    /// checked), then both buffers grow once and the payloads are copied
    /// without a test per message. (Reserving first on every call, to make
    /// one pass always, cost 9 instructions a message at 2 a call.)
    ///
    /// # Safety
    /// As [`append_payload`](Self::append_payload), for every one of the
    /// slots.
    #[inline]
    pub(crate) unsafe fn append_payloads(
        &self,
        idx: u64,
        n: u64,
        data: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        mut then: impl FnMut(&AtomicU64) -> bool,
    ) -> Appended {
        let max = self.geometry.max_msg_size;
        let (start, first_end) = (data.len(), ends.len());
        let room = n.saturating_mul(max);
        if ends.capacity() - first_end >= n as usize && (data.capacity() - start) as u64 >= room {
            // (A span of fewer is copied by the inline loop: the call of the
            // AVX2 one, and its hand-over closure kept in memory, cost
            // about 90 instructions more than it saves a message.)
            #[cfg(target_arch = "x86_64")]
            if self.grid.small_copies && n >= SMALL_LOOP_FROM {
                // SAFETY: passed on from the caller; `small_copies` says the
                // CPU has AVX2 and the queue's messages fit the small copies.
                return unsafe { self.append_payloads_small(idx, n, data, ends, then) };
            }
            // SAFETY: passed on from the caller.
            return unsafe { self.append_payloads_in_room::<false>(idx, n, data, ends, then) };
        }
        ends.reserve(n as usize);
        let mut end = start;
        let mut found = None;
        let mut counted = 0;
        for (slot, out) in self.slot_ptrs(idx, n).zip(ends.spare_capacity_mut()) {
            // SAFETY: a slot of the grid, held by the caller; any bit
            // pattern is a valid `SlotHeader`.
            let len = unsafe { slot.cast::<SlotHeader>().as_ref() }
                .len
                .load(Relaxed);
            if len > max {
                found = Some(len);
                break;
            }
            end += len as usize;
            out.write(end);
            counted += 1;
        }
        // SAFETY: the first `counted` spare entries were written above.
        unsafe { ends.set_len(first_end + counted) };
        // Room for `n` of the largest messages where that is small, so the
        // next call of a reused batch takes the one-pass path.
        data.reserve(if room <= ONE_PASS_ROOM {
            room as usize
        } else {
            end - start
        });
        let (dst, mut at) = (data.as_mut_ptr(), start);
        // A plain loop over the checked range: the copies' calls would
        // otherwise make the compiler keep two iterators in memory.
        let (mut slot, stride) = (self.slot_ptrs(idx, counted as u64).next, self.grid.stride);
        for (k, &end) in ends[first_end..].iter().enumerate() {
            // SAFETY: each length is at most max_msg_size (checked above),
            // so the source is in its slot, held by the caller (`slot` steps
            // through the `counted` slots `slot_ptrs` checked); `data` has
            // room for all of them, initialised here before `set_len`.
            let header = unsafe {
                std::ptr::copy_nonoverlapping(
                    slot.as_ptr().add(crate::layout::SLOT_HEADER_SIZE as usize),
                    dst.add(at),
                    end - at,
                );
                let header = slot.cast::<SlotHeader>().as_ref();
                slot = slot.add(stride as usize);
                header
            };
            at = end;
            if !then(&header.state) {
                ends.truncate(first_end + k + 1);
                // SAFETY: bytes `start .. at` were initialised by the copies.
                unsafe { data.set_len(at) };
                return Appended::Stopped(k as u64);
            }
        }
        // SAFETY: as above, for every copy.
        unsafe { data.set_len(at) };
        match found {
            None => Appended::All,
            Some(len) => Appended::BadLength {
                at: counted as u64,
                len,
            },
        }
    }

    /// [`append_payloads`](Self::append_payloads) when `data` has room for
    /// `n` messages of `max_msg_size` and `ends` for `n` entries, on a queue
    /// of small messages (`copy::small_copies`): one pass, each length
    /// read, checked and its payload copied in turn by AVX2 moves.
    ///
    /// # Safety
    /// As [`append_payloads`](Self::append_payloads).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn append_payloads_small(
        &self,
        idx: u64,
        n: u64,
        data: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        then: impl FnMut(&AtomicU64) -> bool,
    ) -> Appended {
        // SAFETY: passed on from the caller.
        unsafe { self.append_payloads_in_room::<true>(idx, n, data, ends, then) }
    }

    /// [`append_payloads`](Self::append_payloads) when `data` has room for
    /// `n` messages of `max_msg_size` and `ends` for `n` entries: one pass,
    /// each length read, checked and its payload copied in turn; the
    /// copies inline by AVX2 moves if
    /// `SMALL` (`copy.rs`; only in a function compiled for AVX2, for a
    /// queue of small messages), else by `memcpy`.
    ///
    /// # Safety
    /// As [`append_payloads`](Self::append_payloads), and the conditions
    /// of `SMALL`.
    #[inline(always)]
    unsafe fn append_payloads_in_room<const SMALL: bool>(
        &self,
        idx: u64,
        n: u64,
        data: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        mut then: impl FnMut(&AtomicU64) -> bool,
    ) -> Appended {
        let max = self.geometry.max_msg_size;
        let (start, first_end) = (data.len(), ends.len());
        let (dst, out) = (data.as_mut_ptr(), ends.as_mut_ptr());
        let (mut slot, stride) = (self.slot_ptrs(idx, n).next, self.grid.stride as usize);
        let mut at = start;
        let mut k = 0;
        let wide = copy::Wide::up_to(max);
        let stopped = loop {
            if k == n as usize {
                break None;
            }
            // SAFETY: `slot` is slot `k` of the range `slot_ptrs` checked,
            // held by the caller; any bit pattern is a valid `SlotHeader`.
            let header = unsafe { slot.cast::<SlotHeader>().as_ref() };
            let len = header.len.load(Relaxed);
            let src = slot
                .as_ptr()
                .wrapping_add(crate::layout::SLOT_HEADER_SIZE as usize);
            if SMALL && wide.holds(len) {
                // One test for the common length, which is also in bounds.
                // SAFETY: 32 to max_msg_size bytes, so the source is in its
                // slot; `data` has room for `n` such payloads (checked by the
                // caller), initialised here before `set_len`; SMALL: this
                // loop runs only compiled for AVX2, on a CPU that has it.
                unsafe { copy::wide_by_avx2(src, dst.add(at), len as usize) };
            } else {
                if len > max {
                    break Some(Appended::BadLength { at: k as u64, len });
                }
                // SAFETY: as above, for a length of at most max_msg_size.
                unsafe { copy::bytes::<SMALL>(src, dst.add(at), len as usize) };
            }
            unsafe {
                at += len as usize;
                out.add(first_end + k).write(at);
                slot = slot.add(stride);
            }
            k += 1;
            if !then(&header.state) {
                break Some(Appended::Stopped(k as u64 - 1));
            }
        };
        // SAFETY: the first `k` entries and bytes `start .. at` were
        // initialised above.
        unsafe {
            ends.set_len(first_end + k);
            data.set_len(at);
        }
        stopped.unwrap_or(Appended::All)
    }

    /// [`append_payload`](Self::append_payload) for the slot at `slot`.
    ///
    /// # Safety
    /// `slot` is the address of a slot of the grid, held by the caller in
    /// the READING state.
    #[inline(always)]
    unsafe fn append_from(&self, slot: *mut u8, out: &mut Vec<u8>) -> Result<usize, u64> {
        // SAFETY: a slot address is 16-byte aligned and in the mapping (the
        // caller's promise); any bit pattern is a valid `SlotHeader`.
        let len = unsafe { &*(slot as *const SlotHeader) }.len.load(Relaxed);
        if len > self.geometry.max_msg_size {
            return Err(len);
        }
        let len = len as usize;
        let start = out.len();
        out.reserve(len);
        // SAFETY: source is in bounds (len <= max_msg_size, checked above) and
        // owned by the caller (READING); `out` has room for `len` more bytes,
        // which are initialised by the copy before `set_len`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                slot.add(crate::layout::SLOT_HEADER_SIZE as usize),
                out.as_mut_ptr().add(start),
                len,
            );
            out.set_len(start + len);
        }
        Ok(len)
    }

    /// Copies the payload of slot `idx` without owning it, for `peek`. The
    /// bytes may be torn by a concurrent claim; the caller validates them with
    /// `Ring::unchanged` afterwards and discards them if the slot moved on.
    pub(crate) fn peek_payload(&self, idx: u64, out: &mut Vec<u8>) -> bool {
        let len = self.slot(idx).len.load(Relaxed);
        if len > self.geometry.max_msg_size {
            return false;
        }
        let len = len as usize;
        out.clear();
        out.resize(len, 0);
        let src = self
            .slot_ptr(idx)
            .wrapping_add(crate::layout::SLOT_HEADER_SIZE as usize);
        // SAFETY: `src..src + len` lies inside slot `idx` (len <= max_msg_size)
        // and `out` holds `len` initialised bytes. A concurrent writer can only
        // change the values read, never the bounds; volatile reads keep the
        // compiler from assuming the memory is stable.
        for (i, b) in out.iter_mut().enumerate() {
            *b = unsafe { std::ptr::read_volatile(src.add(i)) };
        }
        true
    }
}

/// How a copy of consecutive payloads ended ([`Segment::append_payloads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Every payload was copied and its `then` said go on.
    All,
    /// The payload at this offset was copied, and its `then` said stop.
    Stopped(u64),
    /// Every payload before `at` was copied (each `then` said go on); the
    /// one at `at` has the bad length `len` and was not.
    BadLength {
        /// Offset of the bad slot in the range.
        at: u64,
        /// The length found.
        len: u64,
    },
}
