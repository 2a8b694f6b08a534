//! Everything operating-system specific, behind a handful of functions:
//! futex wait/wake on a word in shared memory, kernel-held record locks used
//! for liveness, space reservation, and the default queue directory.
//!
//! A port (for example macOS, with `os_sync_wait_on_address` and its shared
//! flag for waiting, and `fcntl` advisory locks on per-participant lock
//! files) is a new file beside `linux.rs` with the same functions.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("queue-core supports Linux only for now; see src/sys/mod.rs for what a port needs");
