//! The one place that chooses between `std` and `loom` primitives, so that
//! the slot protocol in `ring.rs` can be model-checked with
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
