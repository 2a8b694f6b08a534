//! Shared helpers for the teaching demos (`src/bin/`): re-starting the
//! running program as a child process, reading a process's state from
//! `/proc`, a human-friendly transfer rate, and a tiny random number generator (so the
//! demos need no extra crates).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytesize::ByteSize;

/// A command that runs this same program again with `args`, the way Python's
/// `multiprocessing` *spawn* start method starts a child.
pub fn this_program(args: &[&str]) -> anyhow::Result<Command> {
    let exe: PathBuf = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find this program's path to start a child: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(args);
    Ok(cmd)
}

/// The scheduler state of process `pid` as Linux reports it in
/// `/proc/<pid>/stat` (`R`, `S`, `D`, `Z`, `T`, ...), or `None` if there is
/// no such process.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (command name) S ...": the name may contain spaces and ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// What a state letter means, in the words of the seed article's three
/// states (ready, running, waiting) plus the two every student meets.
pub fn state_meaning(state: char) -> &'static str {
    match state {
        'R' => "running or ready to run",
        'S' => "waiting: asleep until something happens",
        'D' => "waiting for the disk, uninterruptible",
        'Z' => "zombie: finished, exit status not collected by its parent yet",
        'T' | 't' => "stopped by Ctrl-Z or a debugger",
        'X' => "dead",
        'I' => "idle kernel thread",
        _ => "other",
    }
}

/// Bytes per second as `"123.4 MiB/s"` (sizes themselves print with
/// [`bytesize::ByteSize`], as in the `mq` CLI).
pub fn human_rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!("{}/s", ByteSize((bytes as f64 / secs) as u64))
}

/// A small, fast pseudo-random generator (xorshift64*), good enough to make
/// demo tasks take different times. Not for anything that needs real randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed`; the same seed gives the same numbers.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Seeded from the clock and the pid.
    pub fn from_time() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::new(nanos ^ u64::from(std::process::id()) << 32)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(ByteSize(0).to_string(), "0 B");
        assert_eq!(ByteSize(1023).to_string(), "1023 B");
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(3 << 30).to_string(), "3.0 GiB");
        assert_eq!(human_rate(3 << 20, Duration::from_secs(2)), "1.5 MiB/s");
    }

    #[test]
    fn states_come_from_proc() {
        // The test harness's main thread (whose state /proc shows) waits.
        assert!(matches!(process_state(std::process::id()), Some('R' | 'S')));
        assert_eq!(process_state(u32::MAX), None);
        assert!(state_meaning('Z').starts_with("zombie"));
    }

    #[test]
    fn rng_is_deterministic_per_seed() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..10 {
            let x = a.below(100);
            assert_eq!(x, b.below(100));
            assert!(x < 100);
        }
    }
}
