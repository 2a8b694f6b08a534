//! Copies of payloads: `memcpy` (`copy_nonoverlapping`), or, in the
//! payload loops of a queue whose messages are at most 64 bytes on a CPU
//! with AVX2, two 32-byte moves inline (docs/performance.md, "Copies by
//! AVX2 moves").
//!
//! The loops are compiled twice, `SMALL` or not: the `SMALL` copy is
//! inlined only into functions compiled for AVX2 (`#[target_feature]`),
//! which the segment calls only when [`small_copies`] said yes when it
//! was opened. Without a call in them the loops keep their state in
//! registers; a copy's call cost about as many instructions as its
//! message's other work.

/// Longest message the `SMALL` copies take, and the most a queue's
/// messages may be for its loops to use them.
const SMALL_MAX: u64 = 64;

/// Shortest message of the common case ([`Wide`]): from here on, two
/// overlapping 32-byte moves copy it.
const WIDE_FROM: u64 = 32;

/// Whether the payload loops of a queue whose messages are at most
/// `max_msg_size` bytes copy them by AVX2 moves: if this CPU has AVX2 and
/// `WIDE_FROM <= max_msg_size <= SMALL_MAX`.
pub(super) fn small_copies(max_msg_size: u64) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (WIDE_FROM..=SMALL_MAX).contains(&max_msg_size) && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = max_msg_size;
        false
    }
}

/// The common lengths of a queue whose copies are small, `WIDE_FROM ..=
/// max` (`max` its largest message): in bounds and copied by two moves,
/// told by one test ([`Wide::holds`]).
#[derive(Clone, Copy)]
pub(super) struct Wide {
    /// How many lengths: `max - WIDE_FROM + 1`, or 0.
    count: u64,
}

impl Wide {
    /// The common lengths up to `max` (none if `max < WIDE_FROM`).
    #[inline(always)]
    pub(super) fn up_to(max: u64) -> Wide {
        Wide {
            count: max.saturating_sub(WIDE_FROM - 1),
        }
    }

    /// Whether the stored length `len` is one of them.
    #[inline(always)]
    pub(super) fn holds(self, len: u64) -> bool {
        len.wrapping_sub(WIDE_FROM) < self.count
    }
}

/// Copies `len` bytes from `src` to `dst`: by AVX2 moves if `SMALL` (then
/// `len` is at most `SMALL_MAX` and the caller is compiled for AVX2 and
/// runs where [`small_copies`] said yes), else by `memcpy`.
///
/// # Safety
/// As [`std::ptr::copy_nonoverlapping`]; and the conditions above.
#[inline(always)]
pub(super) unsafe fn bytes<const SMALL: bool>(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if SMALL {
        // SAFETY: passed on from the caller.
        return unsafe { small_by_avx2(src, dst, len) };
    }
    // SAFETY: passed on from the caller.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
}

/// Copies `len` bytes (`WIDE_FROM ..= SMALL_MAX`, see [`Wide`]) by two
/// overlapping 32-byte moves.
///
/// # Safety
/// As [`std::ptr::copy_nonoverlapping`], with `len` in that range and a
/// CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn wide_by_avx2(src: *const u8, dst: *mut u8, len: usize) {
    use std::arch::x86_64::{_mm256_loadu_si256, _mm256_storeu_si256};
    debug_assert!((WIDE_FROM as usize..=SMALL_MAX as usize).contains(&len));
    // SAFETY: the first and the last 32 of the `len` bytes: both in bounds
    // (the caller's promise), unaligned moves.
    unsafe {
        let head = _mm256_loadu_si256(src.cast());
        let tail = _mm256_loadu_si256(src.add(len - 32).cast());
        _mm256_storeu_si256(dst.cast(), head);
        _mm256_storeu_si256(dst.add(len - 32).cast(), tail);
    }
}

/// Copies `len` bytes (at most `SMALL_MAX`) by moves of the widest size
/// that fits, overlapping: two of 32, 16, 8 or 4 bytes, or three single
/// bytes. Nothing outside `src .. src + len` is read, nor outside `dst ..
/// dst + len` written.
///
/// # Safety
/// As [`std::ptr::copy_nonoverlapping`], with `len` at most `SMALL_MAX`
/// and a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn small_by_avx2(src: *const u8, dst: *mut u8, len: usize) {
    use std::arch::x86_64::{_mm_loadu_si128, _mm_storeu_si128};
    debug_assert!(len <= SMALL_MAX as usize);
    // SAFETY: each pair of moves reads the first and the last bytes of
    // `src .. src + len` and writes the same of `dst`: in bounds (the
    // caller's promise), unaligned.
    unsafe {
        if len >= WIDE_FROM as usize {
            wide_by_avx2(src, dst, len);
        } else if len >= 16 {
            let head = _mm_loadu_si128(src.cast());
            let tail = _mm_loadu_si128(src.add(len - 16).cast());
            _mm_storeu_si128(dst.cast(), head);
            _mm_storeu_si128(dst.add(len - 16).cast(), tail);
        } else if len >= 8 {
            let head = src.cast::<u64>().read_unaligned();
            let tail = src.add(len - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(head);
            dst.add(len - 8).cast::<u64>().write_unaligned(tail);
        } else if len >= 4 {
            let head = src.cast::<u32>().read_unaligned();
            let tail = src.add(len - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(head);
            dst.add(len - 4).cast::<u32>().write_unaligned(tail);
        } else if len > 0 {
            let (first, middle, last) = (*src, *src.add(len / 2), *src.add(len - 1));
            *dst = first;
            *dst.add(len / 2) = middle;
            *dst.add(len - 1) = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies `len` bytes by `copy` from the middle of a patterned buffer
    /// into the middle of a zeroed one, at every alignment of either, and
    /// checks that exactly those bytes arrived and nothing around them
    /// changed.
    fn copies_exactly(
        lens: std::ops::RangeInclusive<usize>,
        copy: unsafe fn(*const u8, *mut u8, usize),
    ) {
        let src: Vec<u8> = (0..256).map(|i| (i * 7 + 1) as u8).collect();
        for len in lens {
            for (from, to) in [(64, 64), (65, 64), (64, 67), (95, 101)] {
                let mut dst = vec![0u8; 256];
                // SAFETY: both ranges lie inside the 256-byte buffers, and
                // the caller checked the CPU for what `copy` needs.
                unsafe { copy(src.as_ptr().add(from), dst.as_mut_ptr().add(to), len) };
                assert_eq!(&dst[to..to + len], &src[from..from + len], "len {len}");
                assert!(dst[..to].iter().all(|&b| b == 0), "before, len {len}");
                assert!(dst[to + len..].iter().all(|&b| b == 0), "after, len {len}");
            }
        }
    }

    #[test]
    fn small_copies_copy_every_length_exactly() {
        if !small_copies(SMALL_MAX) {
            // No AVX2 here (or not x86-64): the loops copy by `memcpy`,
            // and the AVX2 copies must never run.
            #[cfg(target_arch = "x86_64")]
            assert!(!std::is_x86_feature_detected!("avx2"));
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the CPU has AVX2 (`small_copies` said so), and
            // `copies_exactly` passes ranges in bounds of every length the
            // copy takes.
            let small = |s, d, n| unsafe { small_by_avx2(s, d, n) };
            copies_exactly(0..=SMALL_MAX as usize, small);
            // SAFETY: as above.
            let wide = |s, d, n| unsafe { wide_by_avx2(s, d, n) };
            copies_exactly(WIDE_FROM as usize..=SMALL_MAX as usize, wide);
        }
    }

    #[test]
    fn wide_lengths_are_the_ones_from_32_to_the_largest() {
        for max in [0, 31, 32, 33, 64] {
            let wide = Wide::up_to(max);
            for len in [0, 1, 31, 32, 33, 63, 64, 65, 1 << 40, u64::MAX] {
                assert_eq!(
                    wide.holds(len),
                    (32..=max).contains(&len),
                    "max {max} len {len}"
                );
            }
        }
    }

    #[test]
    fn only_queues_of_32_to_64_byte_messages_copy_small() {
        assert!(!small_copies(31));
        assert!(!small_copies(65));
        assert!(!small_copies(4096));
    }
}
