//! Hardening tests (hostile segments, permissions, exhaustion, lifecycle).
//!
//! The tests run as root, so the "other user" is a child process started
//! with uid/gid 65534 (nobody/nogroup); full file systems are small tmpfs
//! mounts made by the test itself. Hostile segment *contents* are covered
//! in `queue-core/tests/hostile.rs` (property test and aimed cases).

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog, kill9};
use queue_core::{OpenError, Queue, RemoveError};

const CHILD: &str = env!("CARGO_BIN_EXE_mq-test-child");

/// nobody / nogroup on Debian.
const OTHER_UID: u32 = 65534;
const OTHER_GID: u32 = 65534;

fn dir_str(d: &TestDir) -> &str {
    d.path().to_str().unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether another user can run the test child where cargo built it: the
/// build directory may sit below directories only root may enter.
fn child_is_reachable() -> bool {
    let original = Path::new(CHILD);
    original.ancestors().all(|a| {
        a.as_os_str().is_empty()
            || std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

/// Runs the test child as user `uid` / group `gid` (no supplementary
/// groups) with `env` added, and returns its output. Where the build
/// directory is closed to others, a copy of the child in a temporary
/// world-readable directory is run (and removed afterwards).
fn as_user(uid: u32, gid: u32, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let copy_dir = std::env::temp_dir().join(format!(
        "mq-test-child-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let exe = if child_is_reachable() {
        PathBuf::from(CHILD)
    } else {
        std::fs::create_dir_all(&copy_dir).unwrap();
        set_mode(&copy_dir, 0o755);
        let copy = copy_dir.join("mq-test-child");
        std::fs::copy(CHILD, &copy).unwrap();
        set_mode(&copy, 0o755);
        copy
    };
    let mut cmd = Command::new(exe);
    mq_tests::die_with_test(&mut cmd)
        .args(args)
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("spawn mq-test-child as another user");
    let _ = std::fs::remove_dir_all(&copy_dir);
    out
}

/// Runs the test child as nobody/nogroup.
fn as_other_user(args: &[&str]) -> Output {
    as_user(OTHER_UID, OTHER_GID, &[], args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

// ------------------------------------------------------------ permissions

#[test]
fn default_mode_keeps_other_users_out() {
    let _w = Watchdog::new("other user, mode 0600", Duration::from_secs(60));
    let d = TestDir::new("perm-private");
    set_mode(d.path(), 0o755);
    let q = Queue::builder("private").dir(d.path()).create().unwrap();
    q.put(b"secret").unwrap();
    let meta = std::fs::metadata(q.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "default mode");

    // Open (and so inspect): refused, naming the queue, its owner and mode.
    let o = as_other_user(&["probe", dir_str(&d), "private", "open"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(
        text.starts_with("err permission denied on queue \"private\""),
        "{text}"
    );
    assert!(text.contains("owner uid 0"), "{text}");
    assert!(text.contains("mode 600"), "{text}");
    assert!(text.contains("ask its owner"), "{text}");

    // Remove, from a directory the other user may not write: refused.
    let o = as_other_user(&["probe", dir_str(&d), "private", "remove"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(
        text.starts_with("err permission denied removing queue \"private\""),
        "{text}"
    );
    assert!(text.contains("owner uid 0"), "{text}");

    // Remove, from a sticky world-writable directory like /dev/shm: still
    // refused, because only a file's owner may unlink it there.
    set_mode(d.path(), 0o1777);
    let o = as_other_user(&["probe", dir_str(&d), "private", "remove"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(text.contains("permission denied removing queue"), "{text}");
    // Nor can it put its own queue in its place.
    let o = as_user(
        OTHER_UID,
        OTHER_GID,
        &[("MQ_DIR", d.path())],
        &["create-env", "private", "4", "64"],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(
        text.starts_with("err queue \"private\" already exists"),
        "{text}"
    );

    // The queue is untouched.
    assert_eq!(q.get().unwrap(), b"secret");
    let e = RemoveError::PermissionDenied {
        name: "x".into(),
        path: "/p".into(),
        owner_uid: 7,
    };
    assert!(e.to_string().contains("owner uid 7"));
    drop(q);
    set_mode(d.path(), 0o755);
    Queue::remove_in(d.path(), "private").unwrap();
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn mode_0660_lets_a_group_member_use_the_queue() {
    let _w = Watchdog::new("group member, mode 0660", Duration::from_secs(60));
    let d = TestDir::new("perm-group");
    set_mode(d.path(), 0o755);
    let q = Queue::builder("shared")
        .dir(d.path())
        .mode(0o660)
        .create()
        .unwrap();
    assert_eq!(
        std::fs::metadata(q.path()).unwrap().permissions().mode() & 0o777,
        0o660,
        "the mode is applied exactly, whatever the umask"
    );
    // Give the file to the other user's group (as an administrator would
    // with `chgrp`, or by creating it from a process in that group).
    std::os::unix::fs::chown(q.path(), None, Some(OTHER_GID)).unwrap();
    q.put(b"for the group").unwrap();
    let o = as_other_user(&["probe", dir_str(&d), "shared", "putget"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert_eq!(text, "ok for the group put\n");
    assert_eq!(q.get().unwrap(), b"from the child");
    // Its handle was a participant like any other, and has left cleanly.
    let st = q.stats();
    assert_eq!(st.participants.len(), 1, "{:?}", st.participants);
    assert_eq!((st.total_put, st.total_got), (2, 2));

    // A user outside the group is still refused.
    let o = as_user(
        OTHER_UID,
        OTHER_GID - 1,
        &[],
        &["probe", dir_str(&d), "shared", "open"],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(
        text.contains("permission denied on queue \"shared\""),
        "{text}"
    );
    assert!(text.contains("mode 660"), "{text}");
    drop(q);
    Queue::remove_in(d.path(), "shared").unwrap();
}

// ------------------------------------------------------------------ names

#[test]
fn bad_names_touch_no_file_in_any_operation() {
    let d = TestDir::new("names");
    let sub = d.path().join("queues");
    std::fs::create_dir(&sub).unwrap();
    // Decoys a traversal would hit.
    std::fs::write(d.path().join("x"), b"decoy").unwrap();
    std::fs::write(d.path().join("mq.x"), b"decoy").unwrap();
    let long = "n".repeat(201);
    for name in [
        "", "../x", "..", ".", "a/b", "/x", ".hidden", "nul\0", "x\n", &long,
    ] {
        let e = Queue::builder(name).dir(&sub).create().unwrap_err();
        assert!(matches!(e, OpenError::InvalidName { .. }), "{name:?}: {e}");
        let e = Queue::builder(name).dir(&sub).open_or_create().unwrap_err();
        assert!(matches!(e, OpenError::InvalidName { .. }), "{name:?}: {e}");
        let e = Queue::open_in(&sub, name).unwrap_err();
        assert!(matches!(e, OpenError::InvalidName { .. }), "{name:?}: {e}");
        let e = Queue::remove_in(&sub, name).unwrap_err();
        assert!(
            matches!(e, RemoveError::InvalidName { .. }),
            "{name:?}: {e}"
        );
        assert!(e.to_string().starts_with("invalid queue name"), "{e}");
    }
    assert!(std::fs::read_dir(&sub).unwrap().next().is_none());
    assert_eq!(std::fs::read(d.path().join("x")).unwrap(), b"decoy");
    assert_eq!(std::fs::read(d.path().join("mq.x")).unwrap(), b"decoy");
}

// ------------------------------------------------------------- exhaustion

/// A small tmpfs mounted for one test, unmounted (and its mount point
/// removed) on drop, also when the test fails.
struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    /// Mounts `size` of tmpfs at `<parent>/tmpfs`, or returns why it cannot.
    fn mount(parent: &Path, size: &str) -> Result<SmallTmpfs, std::io::Error> {
        let path = parent.join("tmpfs");
        std::fs::create_dir(&path)?;
        let c = |s: &str| CString::new(s).unwrap();
        let target = c(path.to_str().unwrap());
        let data = c(&format!("size={size},mode=0755"));
        // SAFETY: every pointer is a valid NUL-terminated string that lives
        // across the call.
        let rc = unsafe {
            libc::mount(
                c("tmpfs").as_ptr(),
                target.as_ptr(),
                c("tmpfs").as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_dir(&path);
            return Err(e);
        }
        Ok(SmallTmpfs { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path. MNT_DETACH: even with a file
        // still open somewhere, the mount goes away.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Mounts a small tmpfs, or skips the test (loudly) where mounting is not
/// permitted - never as root on this project's machines.
fn small_tmpfs(d: &TestDir, size: &str) -> Option<SmallTmpfs> {
    match SmallTmpfs::mount(d.path(), size) {
        Ok(m) => Some(m),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            eprintln!("SKIPPED: mounting a tmpfs is not permitted here ({e}); run as root");
            None
        }
        Err(e) => panic!("cannot mount a tmpfs: {e}"),
    }
}

#[test]
fn a_full_queue_directory_fails_cleanly_and_leaves_nothing() {
    let _w = Watchdog::new("full tmpfs", Duration::from_secs(60));
    let d = TestDir::new("enospc");
    let Some(fs) = small_tmpfs(&d, "256k") else {
        return;
    };
    // Bigger than the whole file system: 64 x 8 KiB slots.
    let e = Queue::builder("big")
        .dir(fs.path())
        .capacity(64)
        .max_msg_size(8192)
        .create()
        .unwrap_err();
    assert!(matches!(e, OpenError::OutOfSpace { .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("no space for queue \"big\""), "{text}");
    assert!(text.contains("choose a smaller capacity"), "{text}");
    assert!(
        fs.files().is_empty(),
        "a partial file was left: {:?}",
        fs.files()
    );

    // One that fits, then one that no longer does; removing the first
    // makes room again. Also through $MQ_DIR, from another process.
    let small = Queue::builder("small")
        .dir(fs.path())
        .capacity(16)
        .max_msg_size(4096)
        .create()
        .unwrap();
    small.put(b"still works").unwrap();
    let o = Command::new(CHILD)
        .args(["create-env", "second", "40", "4096"])
        .env("MQ_DIR", fs.path())
        .output()
        .unwrap();
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert!(
        text.starts_with("err no space for queue \"second\""),
        "{text}"
    );
    assert_eq!(fs.files(), ["mq.small"]);
    assert_eq!(small.get().unwrap(), b"still works");
    drop(small);
    Queue::remove_in(fs.path(), "small").unwrap();
    let o = Command::new(CHILD)
        .args(["create-env", "second", "40", "4096"])
        .env("MQ_DIR", fs.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    Queue::remove_in(fs.path(), "second").unwrap();
    assert!(fs.files().is_empty());
}

/// A segment file made by someone else may be sparse. On a full tmpfs,
/// touching a hole kills the toucher with SIGBUS; `open` reserves the
/// storage first and reports OutOfSpace instead.
#[test]
fn a_sparse_segment_on_a_full_file_system_is_refused_not_a_sigbus() {
    let _w = Watchdog::new("sparse segment", Duration::from_secs(60));
    let d = TestDir::new("sparse");
    let Some(fs) = small_tmpfs(&d, "256k") else {
        return;
    };
    let q = Queue::builder("model")
        .dir(fs.path())
        .capacity(16)
        .max_msg_size(4096)
        .create()
        .unwrap();
    let image = std::fs::read(q.path()).unwrap();
    drop(q);
    Queue::remove_in(fs.path(), "model").unwrap();
    // Same bytes, but only the first page is stored: the rest is a hole.
    let sparse = fs.path().join("mq.sparse");
    let mut f = File::create(&sparse).unwrap();
    f.write_all(&image[..4096]).unwrap();
    f.set_len(image.len() as u64).unwrap();
    drop(f);
    assert!(std::fs::metadata(&sparse).unwrap().blocks() * 512 < image.len() as u64);
    // Fill the file system.
    let mut filler = File::create(fs.path().join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);
    // Open in a child, so that a SIGBUS (the bug) fails the test rather
    // than killing the test runner.
    let o = Command::new(CHILD)
        .args(["probe", fs.path().to_str().unwrap(), "sparse", "putget"])
        .output()
        .unwrap();
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "status {}: {text}", o.status);
    assert!(
        text.starts_with("err no space for queue \"sparse\""),
        "{text}"
    );
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    Queue::remove_in(fs.path(), "sparse").unwrap();
}

#[test]
fn sizes_that_overflow_are_invalid_settings() {
    let d = TestDir::new("overflow");
    let cases: [(usize, usize); 5] = [
        (usize::MAX, usize::MAX), // the product overflows u64
        (usize::MAX, 64),         // capacity x stride overflows
        (1, usize::MAX),          // the slot size itself overflows
        (1 << 40, 1 << 30),       // fits u64, not the address space
        (1 << 62, 0),             // 64-byte slots: overflows u64 again
    ];
    for (capacity, size) in cases {
        let e = Queue::builder("q")
            .dir(d.path())
            .capacity(capacity)
            .max_msg_size(size)
            .create()
            .unwrap_err();
        assert!(matches!(e, OpenError::InvalidConfig { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "invalid settings for queue \"q\": capacity {capacity} x max message size {size} does not fit in memory"
            )
        );
    }
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn a_full_participant_table_names_its_limit_across_processes() {
    let _w = Watchdog::new("participant table", Duration::from_secs(60));
    let d = TestDir::new("table");
    let q = Queue::builder("q")
        .dir(d.path())
        .max_participants(2)
        .create()
        .unwrap();
    let mut holder = ChildGuard::new(
        Command::new(CHILD)
            .args(["hold", dir_str(&d), "q"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(holder.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let o = Command::new(CHILD)
        .args(["probe", dir_str(&d), "q", "open"])
        .output()
        .unwrap();
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}");
    assert_eq!(
        text,
        "err queue \"q\" has no free participant entry: all 2 are held by live handles (close some handles, or create the queue with a larger max_participants)\n"
    );
    // The holder dies: its entry is free for the next process at once.
    kill9(holder.id());
    let _ = holder.take().wait();
    let o = Command::new(CHILD)
        .args(["probe", dir_str(&d), "q", "open"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    drop(q);
    Queue::remove_in(d.path(), "q").unwrap();
}

// -------------------------------------------------------------- lifecycle

/// A child that attaches to a queue and then runs `put TEXT` / `get`
/// commands from the test, one reply line each.
struct Scripted {
    guard: ChildGuard,
    input: std::process::ChildStdin,
    output: BufReader<std::process::ChildStdout>,
}

impl Scripted {
    fn start(d: &TestDir, name: &str) -> Scripted {
        let mut guard = ChildGuard::new(
            Command::new(CHILD)
                .args(["script", dir_str(d), name])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let input = guard.child().stdin.take().unwrap();
        let output = BufReader::new(guard.child().stdout.take().unwrap());
        let mut s = Scripted {
            guard,
            input,
            output,
        };
        assert_eq!(s.line(), "ready");
        s
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn run(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").unwrap();
        self.line()
    }

    fn finish(self) {
        drop(self.input);
        let status = self.guard.take().wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

#[test]
fn remove_while_processes_are_attached() {
    let _w = Watchdog::new("remove while attached", Duration::from_secs(60));
    let d = TestDir::new("life");
    let old = Queue::builder("jobs").dir(d.path()).create().unwrap();
    let mut a = Scripted::start(&d, "jobs");
    Queue::remove_in(d.path(), "jobs").unwrap();
    assert!(matches!(
        Queue::open_in(d.path(), "jobs"),
        Err(OpenError::NotFound { .. })
    ));
    // The attached process keeps working on the removed queue.
    assert_eq!(a.run("put one"), "ok");
    assert_eq!(old.get().unwrap(), b"one");

    // A new queue under the same name is a different queue.
    let new = Queue::builder("jobs").dir(d.path()).create().unwrap();
    let mut b = Scripted::start(&d, "jobs");
    assert_eq!(b.run("put two"), "ok");
    assert_eq!(a.run("get"), "err queue is empty");
    assert_eq!(new.get().unwrap(), b"two");
    assert_eq!(a.run("put three"), "ok");
    assert_eq!(new.try_get(), Err(queue_core::GetError::Empty));
    assert_eq!(old.get().unwrap(), b"three");
    assert_eq!(b.run("get"), "err queue is empty");
    old.put(b"four").unwrap();
    assert_eq!(a.run("get"), "msg four");
    assert_eq!(new.stats().participants.len(), 2, "new: this handle and b");
    assert_eq!(old.stats().participants.len(), 2, "old: this handle and a");
    a.finish();
    b.finish();
    assert_eq!(old.stats().participants.len(), 1);
    drop((old, new));
    Queue::remove_in(d.path(), "jobs").unwrap();
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn a_queue_left_by_crashed_processes_has_no_live_participants() {
    let _w = Watchdog::new("crashed holders", Duration::from_secs(60));
    let d = TestDir::new("crashed");
    let watcher = Queue::builder("left").dir(d.path()).create().unwrap();
    let mut holders: Vec<ChildGuard> = (0..3)
        .map(|_| {
            let mut g = ChildGuard::new(
                Command::new(CHILD)
                    .args(["hold", dir_str(&d), "left"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
            let mut line = String::new();
            BufReader::new(g.child().stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line, "ready\n");
            g
        })
        .collect();
    let others = |q: &Queue| -> Vec<(u32, bool)> {
        q.stats()
            .participants
            .iter()
            .filter(|p| !p.is_self)
            .map(|p| (p.pid, p.alive))
            .collect()
    };
    assert_eq!(others(&watcher).len(), 3);
    assert!(others(&watcher).iter().all(|&(_, alive)| alive));
    for g in holders.drain(..) {
        kill9(g.id());
        let _ = g.take().wait();
    }
    // Seen from a handle that was there all along: listed, but dead.
    let seen = others(&watcher);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|&(_, alive)| !alive), "{seen:?}");
    drop(watcher);
    // Seen by a newcomer (what `mq ls` / `mq rm --stale` do): opening
    // cleans up after the dead, and no one else is there.
    let newcomer = Queue::open_in(d.path(), "left").unwrap();
    assert_eq!(others(&newcomer), []);
    drop(newcomer);
    Queue::remove_in(d.path(), "left").unwrap();
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}
