//! Linux implementation of the OS layer.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Where queues live unless `MQ_DIR` or the builder says otherwise: a tmpfs
/// that every Linux system mounts.
pub(crate) const DEFAULT_DIR: &str = "/dev/shm";

/// Sleeps while `*word == expected`, for at most `timeout`. Returns early on a
/// wake-up, a changed value, a signal or the timeout; callers re-check their
/// condition in every case. The futex is shared (never `FUTEX_PRIVATE`):
/// sleepers and wakers are different processes mapping the same page.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    // EAGAIN (value changed), EINTR (signal) and ETIMEDOUT all mean "re-check".
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes up to `count` processes sleeping on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), count);
}

/// Most words one `futex_waitv` call waits on (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// What a [`futex_waitv`] call ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waitv {
    /// Woken on the word at this index (it may have been woken without a
    /// change: a wake-up passed on).
    Woken(usize),
    /// Returned without a wake-up: a word no longer held its expected value,
    /// the timeout passed, or a signal came. Re-check every word.
    Recheck,
    /// The kernel has no `futex_waitv` (before Linux 5.16, or a seccomp
    /// filter refuses it): use the fallback.
    Unsupported,
}

/// Sleeps until one of `words` is woken, or one no longer holds its expected
/// value, for at most `timeout` (at most [`WAITV_MAX`] words; more is
/// `Unsupported`). Shared futexes (no `FUTEX2_PRIVATE`): sleeper and waker
/// of a queue are different processes (and a private wait would not match
/// [`futex_wake`], which is shared, even on process memory).
/// Takes the words' addresses, not references: the kernel reads them itself
/// (a word whose mapping went away makes the call fail with `EFAULT`, a
/// `Recheck`), so the caller need not keep them mapped during the sleep.
pub(crate) fn futex_waitv(words: &[(*const AtomicU32, u32)], timeout: Duration) -> Waitv {
    if words.len() > WAITV_MAX {
        return Waitv::Unsupported;
    }
    let waiters: Vec<futex::Wait> = words
        .iter()
        .map(|&(word, expected)| {
            let mut w = futex::Wait::new();
            w.val = u64::from(expected);
            w.uaddr = futex::WaitPtr::new(word.cast_mut().cast());
            w.flags = futex::WaitFlags::SIZE_U32;
            w
        })
        .collect();
    // The timeout of futex_waitv is absolute, on the clock named here.
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let nanos = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
    let until = rustix::time::Timespec {
        tv_sec: now
            .tv_sec
            .saturating_add(timeout.as_secs().min(i64::MAX as u64 / 2) as i64)
            .saturating_add((nanos / 1_000_000_000) as i64) as _,
        tv_nsec: (nanos % 1_000_000_000) as _,
    };
    match futex::waitv(
        &waiters,
        futex::WaitvFlags::empty(),
        Some(&until),
        rustix::time::ClockId::Monotonic,
    ) {
        Ok(i) => Waitv::Woken(i),
        Err(e) if e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::PERM => {
            Waitv::Unsupported
        }
        // EAGAIN (a value changed), ETIMEDOUT, EINTR; EFAULT if a mapping
        // went away meanwhile (the caller's next look finds it gone).
        Err(_) => Waitv::Recheck,
    }
}

fn lock_struct(kind: libc::c_short, offset: u64) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset as libc::off_t;
    fl.l_len = 1;
    fl.l_pid = 0; // must be 0 for open-file-description locks
    fl
}

fn ofd_fcntl(fd: BorrowedFd<'_>, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    // SAFETY: `fd` is a valid open descriptor for the duration of the call and
    // `fl` points to a properly initialised `flock` that lives across it.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, fl as *mut libc::flock) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Tries to take an exclusive open-file-description lock on one byte of the
/// file. The kernel releases it when the last descriptor of this open file is
/// closed - in particular when the process dies, however it dies. Returns
/// `Ok(false)` if another open file description holds it.
pub(crate) fn try_lock_byte(fd: impl AsFd, offset: u64) -> io::Result<bool> {
    let mut fl = lock_struct(libc::F_WRLCK as libc::c_short, offset);
    match ofd_fcntl(fd.as_fd(), libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases a lock taken with [`try_lock_byte`] through the same descriptor.
pub(crate) fn unlock_byte(fd: impl AsFd, offset: u64) -> io::Result<()> {
    let mut fl = lock_struct(libc::F_UNLCK as libc::c_short, offset);
    ofd_fcntl(fd.as_fd(), libc::F_OFD_SETLK, &mut fl)
}

/// Whether some *other* open file description holds a lock on the byte.
/// (Locks held through `fd` itself never conflict and read as free.)
pub(crate) fn byte_is_locked(fd: impl AsFd, offset: u64) -> io::Result<bool> {
    let mut fl = lock_struct(libc::F_WRLCK as libc::c_short, offset);
    ofd_fcntl(fd.as_fd(), libc::F_OFD_GETLK, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Reserves `len` bytes of real storage for the file (`posix_fallocate`
/// semantics), so that a full tmpfs fails here with ENOSPC instead of killing
/// a process with SIGBUS when it first touches a page.
pub(crate) fn allocate(fd: impl AsFd, len: u64) -> io::Result<()> {
    rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, len).map_err(io::Error::from)
}

/// The current process id.
pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The effective user id of this process.
pub(crate) fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Milliseconds of `CLOCK_MONOTONIC`. The clock is system-wide (unlike an
/// `Instant`, its value means the same in every process), so lease deadlines
/// written by one process are compared by another.
/// (Through libc, not rustix: rustix's own vDSO lookup crashes under
/// valgrind, which the instruction counts in docs/performance.md use.)
pub(crate) fn monotonic_ms() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail (and `t` stays 0 if it did).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(t.tv_nsec as u64 / 1_000_000)
}
