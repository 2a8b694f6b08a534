//! What the tests of waiting on many queues (`select.rs`) and of the async
//! verbs (`asynk.rs`) share: a private queue directory and a watchdog.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use queue_core::Queue;

/// A private queue directory, removed on drop.
pub struct Dir(PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        Dir(std::env::temp_dir().join(format!(
            "mq-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }

    /// The directory.
    #[allow(dead_code)] // asynk.rs does not use it
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Creates queue `name` with `cap` slots of 64 bytes.
    pub fn queue(&self, name: &str, cap: usize) -> Queue {
        Queue::builder(name)
            .dir(&self.0)
            .capacity(cap)
            .max_msg_size(64)
            .create()
            .unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails the test instead of hanging it.
pub fn watchdog(secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("test hung for {secs} s");
        std::process::exit(99);
    });
}
