//! `pool-copier` end to end, for what it keeps beyond bytes: sparse files
//! stay sparse, hard links stay linked (also across the byte-range tasks of
//! a big file), and a file that changes size while it is copied is reported
//! instead of silently copied wrong.
//!
//! Each test works in its own scratch directories (removed at the end; the
//! pool's queues go to one of them through `MQ_DIR`, checked empty at the
//! end) under a watchdog.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mq_tests::{TestDir, Watchdog};

const COPIER: &str = env!("CARGO_BIN_EXE_pool-copier");

/// A source tree, its copy and the pool's queues (`MQ_DIR`), all on tmpfs
/// (sparse files and hard links work there) and removed on drop.
struct Scratch {
    files: TestDir,
    queues: TestDir,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let files = TestDir::new(&format!("copier-{tag}"));
        fs::create_dir_all(files.path().join("src")).unwrap();
        Scratch {
            files,
            queues: TestDir::new(&format!("copier-{tag}-queues")),
        }
    }

    fn src(&self) -> PathBuf {
        self.files.path().join("src")
    }

    fn dest(&self) -> PathBuf {
        self.files.path().join("dest")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(COPIER);
        mq_tests::die_with_test(&mut cmd)
            .args(args)
            .arg(self.src())
            .arg(self.dest())
            .env("MQ_DIR", self.queues.path())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("cannot run pool-copier")
    }

    /// The pool removed its queues.
    fn assert_no_leftovers(&self) {
        let left = self.queues.leftovers();
        assert!(left.is_empty(), "queues left behind: {left:?}");
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `bytes` at `offset` of an existing file.
fn write_at(path: &Path, bytes: &[u8], offset: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// A pattern that differs from byte to byte, so misplaced bytes show.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn same_content(a: &Path, b: &Path) -> bool {
    fs::read(a).unwrap() == fs::read(b).unwrap()
}

/// `to` has the bytes and size of `from` and at most `slack` more 512-byte
/// blocks (so the holes of a sparse `from` were not filled).
fn assert_copied(from: &Path, to: &Path, slack: u64) {
    assert!(same_content(from, to), "{}: contents differ", to.display());
    let (a, b) = (fs::metadata(from).unwrap(), fs::metadata(to).unwrap());
    assert_eq!(a.len(), b.len(), "{}: sizes differ", to.display());
    assert!(
        b.blocks() <= a.blocks() + slack,
        "{}: {} blocks in the copy, {} in the source: holes filled or room wasted",
        to.display(),
        b.blocks(),
        a.blocks()
    );
}

#[test]
fn a_sparse_file_stays_sparse() {
    let _w = Watchdog::new("pool-copier sparse", Duration::from_secs(120));
    let s = Scratch::new("sparse");
    // 64 MiB with two data extents: 1 MiB at 4 MiB and 2 MiB at 40 MiB;
    // the rest (and the end) is holes. A smaller sparse file is copied
    // whole by one task, the big one in 8 MiB ranges.
    let big = s.src().join("disk.img");
    File::create(&big).unwrap().set_len(64 << 20).unwrap();
    write_at(&big, &pattern(1 << 20, 1), 4 << 20);
    write_at(&big, &pattern(2 << 20, 2), 40 << 20);
    let small = s.src().join("small.db");
    File::create(&small).unwrap().set_len(4 << 20).unwrap();
    write_at(&small, &pattern(8192, 3), 1 << 20);
    let src_blocks = fs::metadata(&big).unwrap().blocks();
    assert!(
        src_blocks * 512 < 64 << 20,
        "the file system of {} does not keep holes, so this test cannot check that copies \
         keep them: set TMPDIR to a folder on ext4 or tmpfs",
        s.src().display()
    );

    let out = s.run(&["-j", "2", "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (from, name) in [(&big, "disk.img"), (&small, "small.db")] {
        // About the same allocation as the source (page rounding aside),
        // nowhere near the full length.
        assert_copied(from, &s.dest().join(name), 64);
    }
    s.assert_no_leftovers();
}

#[test]
fn hard_links_stay_linked() {
    let _w = Watchdog::new("pool-copier hard links", Duration::from_secs(120));
    let s = Scratch::new("links");
    let src = s.src();
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::create_dir_all(src.join("c")).unwrap();
    // Three names of one small file, in three directories.
    fs::write(src.join("a/one.txt"), b"one inode, three names\n").unwrap();
    fs::hard_link(src.join("a/one.txt"), src.join("a/b/two.txt")).unwrap();
    fs::hard_link(src.join("a/one.txt"), src.join("c/three.txt")).unwrap();
    // Two names of a file copied in three 1 MiB range tasks.
    fs::write(src.join("big.bin"), pattern((3 << 20) + 123, 7)).unwrap();
    fs::hard_link(src.join("big.bin"), src.join("c/big-again.bin")).unwrap();
    // An ordinary file beside them.
    fs::write(src.join("c/alone.txt"), b"just one name\n").unwrap();

    let out = s.run(&["-j", "3", "--chunk-mib", "1", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("3 hard links"), "{err}");
    let dest = s.dest();
    let inode = |p: &str| {
        let md = fs::metadata(dest.join(p)).unwrap();
        (md.ino(), md.nlink())
    };
    let (ino, nlink) = inode("a/one.txt");
    assert_eq!(nlink, 3);
    assert_eq!(inode("a/b/two.txt"), (ino, 3));
    assert_eq!(inode("c/three.txt"), (ino, 3));
    assert_ne!(ino, fs::metadata(src.join("a/one.txt")).unwrap().ino());
    let (big, nlink) = inode("big.bin");
    assert_eq!(nlink, 2);
    assert_eq!(inode("c/big-again.bin"), (big, 2));
    assert!(same_content(&src.join("big.bin"), &dest.join("big.bin")));
    assert_eq!(inode("c/alone.txt").1, 1);
    s.assert_no_leftovers();
}

#[test]
fn a_file_that_changes_size_while_copied_is_reported() {
    let _w = Watchdog::new("pool-copier changing files", Duration::from_secs(120));
    let s = Scratch::new("changing");
    // Two 1 GiB sparse files in 1 MiB ranges: thousands of tasks, so the
    // copy is still running when this test changes them right after the
    // scan (the first line of output comes after it).
    let grows = s.src().join("grows.log");
    let shrinks = s.src().join("shrinks.log");
    for f in [&grows, &shrinks] {
        File::create(f).unwrap().set_len(1 << 30).unwrap();
    }
    write_at(&shrinks, &pattern(4096, 9), 900 << 20);
    fs::write(s.src().join("steady.txt"), b"unchanged\n").unwrap();

    let mut child = s
        .command(&["-j", "2", "--chunk-mib", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run pool-copier");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("pool-copier ended early").unwrap();
    assert!(first.contains("worker processes"), "{first}");
    let mut f = fs::OpenOptions::new().append(true).open(&grows).unwrap();
    f.write_all(b"one more line\n").unwrap();
    File::options()
        .write(true)
        .open(&shrinks)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let err = rest.join("\n");
    assert_eq!(status.code(), Some(1), "{err}");
    let reported = |path: &Path, how: &str| {
        rest.iter()
            .any(|l| l.contains(&path.display().to_string()) && l.contains(how))
    };
    assert!(reported(&grows, "grew while being copied"), "{err}");
    assert!(reported(&shrinks, "shrank while being copied"), "{err}");
    assert!(err.contains("2 path(s) were not copied correctly"), "{err}");
    // The rest of the tree is copied.
    assert!(same_content(
        &s.src().join("steady.txt"),
        &s.dest().join("steady.txt")
    ));
    s.assert_no_leftovers();
}

/// A folder in the system's temporary directory (not tmpfs, unlike
/// `TestDir`), removed on drop.
struct DiskDir(PathBuf);

impl Drop for DiskDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn preallocated_copies_on_ext4_have_their_exact_size_and_bytes_and_holes() {
    let _w = Watchdog::new("pool-copier on ext4", Duration::from_secs(120));
    let root = std::env::temp_dir().join(format!("pool-copier-ext4-{}", std::process::id()));
    // ext2, ext3 and ext4 share this f_type. Not skipped elsewhere: the
    // test says where to point it.
    let tmp = std::env::temp_dir();
    assert_eq!(
        rustix::fs::statfs(&tmp).map(|s| s.f_type as u64),
        Ok(0xEF53),
        "the temporary directory {} is not on ext4, where pool-copier preallocates: \
         run the tests with TMPDIR set to a folder on an ext4 file system",
        tmp.display()
    );
    let disk = DiskDir(root);
    let (src, dest) = (disk.0.join("src"), disk.0.join("dest"));
    fs::create_dir_all(&src).unwrap();
    let queues = TestDir::new("copier-ext4-queues");
    // Preallocated: a file copied in three 1 MiB ranges, and one copied
    // whole (from 1 MiB up); too small to be: a short file.
    fs::write(src.join("big.bin"), pattern((2 << 20) + 4097, 5)).unwrap();
    fs::write(src.join("whole.bin"), pattern((1 << 20) + 1, 6)).unwrap();
    fs::write(src.join("short.txt"), b"a few bytes\n").unwrap();
    // Never preallocated: sparse files, in ranges and whole, with a hole at
    // the end.
    let holes = src.join("holes.img");
    File::create(&holes).unwrap().set_len(16 << 20).unwrap();
    write_at(&holes, &pattern(8192, 7), 3 << 20);
    let small_holes = src.join("small-holes.img");
    File::create(&small_holes)
        .unwrap()
        .set_len(900 << 10)
        .unwrap();
    write_at(&small_holes, &pattern(4096, 8), 100 << 10);

    let out = mq_tests::die_with_test(&mut Command::new(COPIER))
        .args(["-j", "2", "--chunk-mib", "1", "--verify"])
        .arg(&src)
        .arg(&dest)
        .env("MQ_DIR", queues.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for name in [
        "big.bin",
        "whole.bin",
        "short.txt",
        "holes.img",
        "small-holes.img",
    ] {
        // No more room taken than the source takes, one block of slack:
        // the preallocation is exact and holes stay holes.
        assert_copied(&src.join(name), &dest.join(name), 8);
    }
    let left = queues.leftovers();
    assert!(left.is_empty(), "queues left behind: {left:?}");
}
