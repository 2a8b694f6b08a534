//! A global allocator for test binaries that counts what one thread
//! allocates while it asks to (the system allocator does the work): the
//! largest single allocation (`largest_allocation`, for the hostile-segment
//! tests) and the number of allocations (`allocations`, for the hot path).
//! Each test binary that includes this module gets it as its allocator.

// Not every binary uses every helper.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` while tracking this thread's allocations.
fn tracked<T>(f: impl FnOnce() -> T) -> T {
    LARGEST.with(|m| m.set(0));
    COUNT.with(|n| n.set(0));
    TRACKING.with(|t| t.set(true));
    let v = f();
    TRACKING.with(|t| t.set(false));
    v
}

/// Runs `f` and returns the largest single allocation it made on this thread.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let v = tracked(f);
    (v, LARGEST.with(Cell::get))
}

/// Runs `f` and returns how many allocations (and reallocations) it made on
/// this thread.
pub fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let v = tracked(f);
    (v, COUNT.with(Cell::get))
}
