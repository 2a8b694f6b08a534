//! Helpers shared by the end-to-end tests: unique queue directories that
//! clean up after themselves, children that are killed if a test fails or
//! dies ([`ChildGuard`], [`die_with_test`]), and a watchdog for anything
//! that could hang; other packages' binaries and a
//! program's peak memory ([`bins`]).
//!
//! Used by this crate's tests and, as a dev-dependency, by the end-to-end
//! tests of `queue-cli` and `demos` (no cycle: this crate's library depends
//! only on queue-core and libc).

pub mod bins;

pub use bins::{Measured, measured_command, output_with_max_rss, workspace_bin};

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A fresh queue directory on the shared-memory tmpfs, removed (with
/// everything in it) on drop. Point `MQ_DIR` at it for child processes.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// Creates `/dev/shm/mq-test-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TestDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            PathBuf::from("/dev/shm").join(format!("mq-test-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create test queue directory");
        TestDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Files left in the directory (a test that cleaned up leaves none).
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.path)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Aborts the whole test process if not dropped within `limit`, printing
/// `what`: a hung test fails loudly instead of stalling CI.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// Starts a watchdog.
    pub fn new(what: &str, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_owned();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {what} still running after {limit:?}; aborting");
                std::process::abort();
            }
        });
        Watchdog { cancel: Some(tx) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.cancel.take() {
            let _ = tx.send(());
        }
    }
}

/// A child process that is killed and reaped when dropped (e.g. when the
/// test panics), so no process outlives its test.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Wraps a spawned child.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Takes the child out (it is then the caller's to wait for).
    pub fn take(mut self) -> Child {
        self.0.take().expect("child already taken")
    }

    /// The child, for waiting or reading its pipes.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already taken")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Makes the process `cmd` starts die with the thread that starts it
/// (`PR_SET_PDEATHSIG` with SIGKILL): when a test ends, and also when a
/// watchdog aborts it (an abort runs no destructor, so a [`ChildGuard`]
/// alone would leave the child running, holding the test's pipes).
///
/// The kernel ties the signal to the spawning *thread*: spawn from the
/// test's own thread, or from a helper thread that waits for the child.
pub fn die_with_test(cmd: &mut Command) -> &mut Command {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl and getppid, both async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody sends
            // the signal.
            if libc::getppid() as u32 != parent {
                libc::_exit(137);
            }
            Ok(())
        })
    }
}

/// Sends SIGKILL to `pid`.
pub fn kill9(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// A xorshift generator for chaos tests, seeded with `seed` and this
/// process's id (runs differ, a failing run prints its choices' effects):
/// `next(n)` is in `0..n`.
pub fn chaos_rng(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed ^ u64::from(std::process::id());
    move |n| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    }
}

/// Self-checking test messages: `[id u32][seq u64][checksum u64][body]`,
/// where the body is a pattern derived from `(id, seq)`. A torn or mixed-up
/// message fails [`message::decode`].
pub mod message {
    /// Bytes before the body.
    pub const HEADER: usize = 20;

    fn pattern(id: u32, seq: u64) -> impl Iterator<Item = u8> {
        let mut x = (u64::from(id) << 40) ^ seq ^ 0x9e37_79b9_7f4a_7c15;
        std::iter::repeat_with(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
    }

    fn checksum(body: &[u8]) -> u64 {
        body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    }

    /// Writes message `(id, seq)` of `size` bytes (at least [`HEADER`]) into `buf`.
    pub fn encode(id: u32, seq: u64, size: usize, buf: &mut Vec<u8>) {
        let size = size.max(HEADER);
        buf.clear();
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend(pattern(id, seq).take(size - HEADER));
        let sum = checksum(&buf[HEADER..]);
        buf[12..20].copy_from_slice(&sum.to_le_bytes());
    }

    /// Returns `(id, seq)` if the message is whole and untouched.
    pub fn decode(buf: &[u8]) -> Option<(u32, u64)> {
        if buf.len() < HEADER {
            return None;
        }
        let id = u32::from_le_bytes(buf[0..4].try_into().ok()?);
        let seq = u64::from_le_bytes(buf[4..12].try_into().ok()?);
        let sum = u64::from_le_bytes(buf[12..20].try_into().ok()?);
        let body = &buf[HEADER..];
        (checksum(body) == sum && pattern(id, seq).take(body.len()).eq(body.iter().copied()))
            .then_some((id, seq))
    }
}

/// What the children of a chaos or soak run recorded, and the exactly-once
/// arithmetic on it. Producer `i` writes `p{i}.out` in the run's directory:
/// one line per committed message, its sequence number, printed after `put`
/// returned `Ok` (or `timeout`). Consumer `i` writes `c{i}.out`: one line
/// `PRODUCER SEQ` per message it took (or `timeout`, or `released ...` for a
/// lease it gave back on purpose). A last line torn by a kill is skipped.
pub struct Ledger {
    /// Every (producer, seq) some producer recorded as put.
    pub committed: std::collections::HashSet<(u32, u64)>,
    /// Each producer's last recorded seq.
    pub last: std::collections::HashMap<u32, u64>,
    /// How often each (producer, seq) arrived.
    pub received: std::collections::HashMap<(u32, u64), u64>,
    /// `timeout` lines, producers and consumers together.
    pub timeouts: u64,
    /// `released ...` lines of consumers.
    pub releases: u64,
}

impl Ledger {
    /// Reads `p0.out ..` and `c0.out ..` of `producers` and `consumers`
    /// children from `dir`.
    pub fn read(dir: &Path, producers: u32, consumers: u32) -> Ledger {
        let mut l = Ledger {
            committed: Default::default(),
            last: Default::default(),
            received: Default::default(),
            timeouts: 0,
            releases: 0,
        };
        for id in 0..producers {
            for line in lines(&dir.join(format!("p{id}.out"))) {
                if line == "timeout" {
                    l.timeouts += 1;
                    continue;
                }
                let Ok(seq) = line.parse::<u64>() else {
                    continue;
                }; // torn last line
                l.committed.insert((id, seq));
                l.last.insert(id, seq);
            }
        }
        for id in 0..consumers {
            for line in lines(&dir.join(format!("c{id}.out"))) {
                if line == "timeout" {
                    l.timeouts += 1;
                    continue;
                }
                if line.starts_with("released ") {
                    l.releases += 1;
                    continue;
                }
                let Some((a, b)) = line.split_once(' ') else {
                    continue;
                };
                let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u64>()) else {
                    continue;
                };
                *l.received.entry((a, b)).or_default() += 1;
            }
        }
        l
    }

    /// Deliveries beyond the first of each message.
    pub fn duplicates(&self) -> u64 {
        self.received.values().map(|n| n - 1).sum()
    }

    /// Committed messages that never arrived.
    pub fn missing(&self) -> u64 {
        self.committed
            .iter()
            .filter(|k| !self.received.contains_key(k))
            .count() as u64
    }

    /// Panics unless the messages that arrived from each producer are a
    /// prefix of its sequence (`0 ..= highest`, no gap): the check that
    /// a producer killed mid-`put_many` committed a prefix of its batch,
    /// for runs in which no consumer can lose a message (leases).
    pub fn assert_prefixes(&self) {
        let mut seen: std::collections::HashMap<u32, (u64, u64)> = Default::default();
        for &(id, seq) in self.received.keys() {
            let e = seen.entry(id).or_default();
            e.0 = e.0.max(seq);
            e.1 += 1;
        }
        for (id, (highest, distinct)) in seen {
            assert_eq!(
                distinct,
                highest + 1,
                "producer {id}: {distinct} distinct messages arrived, up to seq {highest}: a gap"
            );
        }
    }

    /// Panics if a message arrived that no producer can have put. One that
    /// arrived without a record was put by a producer killed between `put`
    /// (or a `put_many` of up to `batch`) returning and printing, so it lies
    /// at most `batch` past the producer's last recorded seq.
    pub fn assert_nothing_invented(&self, batch: u64, context: &str) {
        for &(id, seq) in self.received.keys() {
            let limit = self.last.get(&id).map_or(batch - 1, |s| s + batch);
            assert!(
                seq <= limit,
                "{context}message ({id}, {seq}) arrived but was never put"
            );
        }
    }
}

/// The lines of a file a child wrote (none if it never created it).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Instant;

    /// A child started by `die_with_test` is killed when the thread that
    /// started it ends (and so when the whole test process dies).
    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        let _watchdog = Watchdog::new("die_with_test", Duration::from_secs(60));
        let child = std::thread::spawn(|| {
            die_with_test(&mut Command::new("sleep"))
                .arg("60")
                .spawn()
                .expect("spawn sleep")
        })
        .join()
        .unwrap();
        let mut child = ChildGuard::new(child);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.child().try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the child outlived the thread that started it by 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
}
