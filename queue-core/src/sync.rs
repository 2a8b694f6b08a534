//! The one place that chooses between `std` and `loom` primitives, so that
//! the slot protocol in `ring/` can be model-checked with
//! `RUSTFLAGS="--cfg loom" cargo test -p queue-core --release --lib loom`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

/// Pause after a lost race in a lock-free retry loop.
#[cfg(not(loom))]
#[inline]
pub(crate) fn contention_pause(backoff: &crossbeam_utils::Backoff) {
    backoff.spin();
}

/// Under loom a retry loop must yield so the model explores the other threads.
#[cfg(loom)]
#[inline]
pub(crate) fn contention_pause(_backoff: &crossbeam_utils::Backoff) {
    loom::thread::yield_now();
}

/// Marks the places where the protocol relies on the single total order of
/// SeqCst operations (a store/CAS followed by a load of another location,
/// paired with the mirror image in another process). With real atomics the
/// SeqCst accesses themselves give that order, so this is a no-op; loom
/// models SeqCst accesses only as AcqRel, so there it becomes the SeqCst
/// fence that restores the order in the model.
#[inline(always)]
pub(crate) fn seqcst_order_point() {
    #[cfg(loom)]
    loom::sync::atomic::fence(atomic::Ordering::SeqCst);
}
