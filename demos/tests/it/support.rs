//! Helpers for the demo end-to-end tests: the demo binaries, running one
//! against a test's queue directory, scratch directory trees.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use mq_tests::TestDir;

/// Path of demo binary `name` (cargo builds them for this package's tests).
pub fn demo(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "processes" => env!("CARGO_BIN_EXE_processes"),
        "downloader-analyzer" => env!("CARGO_BIN_EXE_downloader-analyzer"),
        "pool-workers" => env!("CARGO_BIN_EXE_pool-workers"),
        "pool-copier" => env!("CARGO_BIN_EXE_pool-copier"),
        other => panic!("no demo binary {other:?}"),
    })
}

pub fn run_demo(dir: &TestDir, name: &str, args: &[&str]) -> Output {
    mq_tests::die_with_test(&mut Command::new(demo(name)))
        .args(args)
        .env("MQ_DIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory tree, removed on drop (read-only parts included).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!(
            "mq-demo-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Make every directory writable again so everything can go.
        let mut stack = vec![self.0.clone()];
        while let Some(d) = stack.pop() {
            let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o755));
            if let Ok(rd) = fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}
