//! CPU pinning: the placement of a run's processes and threads (free, one
//! core, two cores), applied to children before `exec` and to threads of the
//! bench for the length of a guard.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where a run's processes (or threads) are pinned. `Free` leaves it to the
/// scheduler, which on this kind of machine may put a producer and its
/// consumer on one core or on two, and the figures differ a lot between the
/// two; the placement table measures both explicitly.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Placement {
    Free,
    /// Everything on CPU 0.
    OneCore,
    /// Producers (and the ping side) on CPU 0, consumers (and the echo) on CPU 1.
    TwoCores,
}

static PLACEMENT: AtomicU32 = AtomicU32::new(0);

pub fn placement() -> Placement {
    match PLACEMENT.load(Ordering::Relaxed) {
        1 => Placement::OneCore,
        2 => Placement::TwoCores,
        _ => Placement::Free,
    }
}

pub fn set_placement(p: Placement) {
    let v = match p {
        Placement::Free => 0,
        Placement::OneCore => 1,
        Placement::TwoCores => 2,
    };
    PLACEMENT.store(v, Ordering::Relaxed);
}

impl Placement {
    pub fn cpu(self, consumer_side: bool) -> Option<usize> {
        match self {
            Placement::Free => None,
            Placement::OneCore => Some(0),
            Placement::TwoCores => Some(usize::from(consumer_side)),
        }
    }
}

pub fn cpu_set(cpu: Option<usize>) -> Option<libc::cpu_set_t> {
    cpu.map(|c| {
        // SAFETY: cpu_set_t is plain data, all-zero is the empty set, and
        // CPU_SET only writes inside it (c is a small CPU number).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(c, &mut set);
            set
        }
    })
}

/// Pins the calling thread for the current placement; restores its previous
/// CPU mask when dropped.
pub struct PinSelf(Option<libc::cpu_set_t>);

impl PinSelf {
    pub fn new(consumer_side: bool) -> PinSelf {
        let Some(set) = cpu_set(placement().cpu(consumer_side)) else {
            return PinSelf(None);
        };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is plain data; the calls get valid pointers to
        // sets of `size` bytes and act on the calling thread only.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, size, &mut old);
            libc::sched_setaffinity(0, size, &set);
            PinSelf(Some(old))
        }
    }
}

impl Drop for PinSelf {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: as in `new`.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old) };
        }
    }
}
