//! `mq inspect`, `mq ls`, `mq watch` and `mq peek` only look: as another
//! user (`nobody`) with read permission alone, and on a queue whose
//! participant table is full, they work and change no byte of the segment.
//!
//! The tests run as root (they skip otherwise): the other user is a child
//! started with uid/gid 65534 (nobody/nogroup), running a copy of `mq` in a
//! world-readable temporary directory (the build directory may sit below
//! directories only root may enter). Every queue lives in this test's own
//! directory under `/dev/shm`, removed at the end; every child has a
//! watchdog.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use queue_core::Queue;

const MQ: &str = env!("CARGO_BIN_EXE_mq");

/// nobody / nogroup on Debian.
const NOBODY: u32 = 65534;

/// Longest a child may run before the watchdog kills it (and the test fails).
const WATCHDOG: Duration = Duration::from_secs(60);

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A directory removed, with everything in it, on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(parent: &Path, what: &str) -> Scratch {
        let p = parent.join(format!("mq-cli-observe-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        set_mode(&p, 0o755);
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `mq args...` (the copy at `mq`) as nobody/nogroup with `MQ_DIR` set,
/// under a watchdog.
fn mq_as_nobody(mq: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut child = mq_tests::die_with_test(&mut Command::new(mq))
        .args(args)
        .env("MQ_DIR", dir)
        .env("NO_COLOR", "1")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: mq {args:?} ran longer than {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Runs inspect, inspect --json, ls, ls --json, watch (one frame) and peek
/// on queue `name` as nobody; each must succeed and show the queue (peek:
/// its next message, `next`), and the segment must be byte for byte what it
/// was.
fn look_as_nobody(mq: &Path, dir: &Path, q: &Queue, next: &str) {
    let name = q.name();
    let before = std::fs::read(q.path()).unwrap();
    let runs: [(&[&str], &str); 6] = [
        (&["inspect", name], name),
        (&["inspect", name, "--json"], name),
        (&["ls"], name),
        (&["ls", "--json"], name),
        (&["watch", name, "--count", "1"], name),
        (&["peek", name], next),
    ];
    for (args, shown) in runs {
        let o = mq_as_nobody(mq, dir, args);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(
            o.status.success(),
            "mq {args:?} as nobody: {}\nstdout: {out}\nstderr: {err}",
            o.status
        );
        assert!(out.contains(shown), "mq {args:?}: {out}");
        assert!(
            !out.contains("permission denied") && !out.contains("no free participant"),
            "mq {args:?} could not look: {out}"
        );
        assert_eq!(
            std::fs::read(q.path()).unwrap(),
            before,
            "mq {args:?} as nobody changed the segment"
        );
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn nobody_can_look_at_a_read_only_queue_and_a_full_one_without_writing() {
    assert!(
        is_root(),
        "this test runs mq as another user (nobody), which needs root: run the tests as root, as CI does"
    );
    // The copy of mq that nobody can run.
    let bin = Scratch::new(&std::env::temp_dir(), "bin");
    let mq = bin.0.join("mq");
    std::fs::copy(MQ, &mq).unwrap();
    set_mode(&mq, 0o755);
    let dir = Scratch::new(Path::new("/dev/shm"), "queues");

    // A root-owned queue of mode 0644: others may read it, not write it.
    let readable = Queue::builder("readable")
        .dir(&dir.0)
        .mode(0o644)
        .capacity(8)
        .create()
        .unwrap();
    readable.put_many(&[&b"one"[..], b"two", b"three"]).unwrap();
    let lease = readable.get_lease().unwrap();
    look_as_nobody(&mq, &dir.0, &readable, "two");

    // A queue whose participant table is full (both entries held).
    let full = Queue::builder("full")
        .dir(&dir.0)
        .mode(0o644)
        .max_participants(2)
        .create()
        .unwrap();
    let second = Queue::open_in(&dir.0, "full").unwrap();
    assert!(Queue::open_in(&dir.0, "full").is_err(), "the table is full");
    full.put(b"waiting").unwrap();
    look_as_nobody(&mq, &dir.0, &full, "waiting");

    // What nobody saw is what is there: the full queue's two participants.
    let o = mq_as_nobody(&mq, &dir.0, &["inspect", "full", "--json"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("\"is_self\": false").count(), 2, "{text}");

    lease.ack().unwrap();
    drop((readable, full, second));
    for name in ["readable", "full"] {
        Queue::remove_in(&dir.0, name).unwrap();
    }
}
