//! The payloads: copying messages into slots and out of them, one or a
//! run at a time. The copies call `memcpy` (`copy_nonoverlapping`): copies
//! of up to 64 bytes inline, by 16-byte loads and stores, saved about one
//! instruction a batched message but moved 4-8% fewer messages between two
//! processes (docs/performance.md, "Batches in registers").

use std::sync::atomic::{AtomicU64, Ordering::*};

use super::Segment;
use crate::layout::SlotHeader;

/// The most bytes `append_payloads` reserves ahead for a batch's largest
/// messages (so a reused batch is filled in one pass); above it a batch
/// grows by what it received.
const ONE_PASS_ROOM: u64 = 256 << 10;

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

    /// Copies `msgs` into the slots from `idx` on, one message per slot.
    ///
    /// # Safety
    /// The caller must hold those slots in the WRITING state, and every
    /// message must be at most `max_msg_size` bytes long.
    #[inline]
    pub(crate) unsafe fn write_payloads<M: AsRef<[u8]>>(&self, idx: u64, msgs: &[M]) {
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
                std::ptr::copy_nonoverlapping(
                    msg.as_ptr(),
                    slot.as_ptr().add(crate::layout::SLOT_HEADER_SIZE as usize),
                    msg.len(),
                );
                slot.cast::<SlotHeader>()
                    .as_ref()
                    .len
                    .store(msg.len() as u64, Relaxed);
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
            // SAFETY: passed on from the caller.
            return unsafe { self.append_payloads_in_room(idx, n, data, ends, then) };
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
    /// `n` messages of `max_msg_size` and `ends` for `n` entries: one pass,
    /// each length read, checked and its payload copied in turn.
    ///
    /// # Safety
    /// As [`append_payloads`](Self::append_payloads).
    #[inline(always)]
    unsafe fn append_payloads_in_room(
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
        let stopped = loop {
            if k == n as usize {
                break None;
            }
            // SAFETY: `slot` is slot `k` of the range `slot_ptrs` checked,
            // held by the caller; any bit pattern is a valid `SlotHeader`.
            let header = unsafe { slot.cast::<SlotHeader>().as_ref() };
            let len = header.len.load(Relaxed);
            if len > max {
                break Some(Appended::BadLength { at: k as u64, len });
            }
            // SAFETY: the length is at most max_msg_size, so the source is
            // in its slot; `data` has room for `n` such payloads and `ends`
            // for `n` entries (checked by the caller), both initialised here
            // before `set_len`.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    slot.as_ptr().add(crate::layout::SLOT_HEADER_SIZE as usize),
                    dst.add(at),
                    len as usize,
                );
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
