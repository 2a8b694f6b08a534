//! Helpers shared by the end-to-end tests: unique queue directories that
//! clean up after themselves, children that are killed if a test fails, and
//! a watchdog for anything that could hang.

use std::path::{Path, PathBuf};
use std::process::Child;
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
        let path = PathBuf::from("/dev/shm").join(format!(
            "mq-test-{}-{n}-{tag}",
            std::process::id()
        ));
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

/// Sends SIGKILL to `pid`.
pub fn kill9(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}
