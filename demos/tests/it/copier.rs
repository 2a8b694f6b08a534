//! `pool-copier` end to end: an identical copy of a tree (streaming, with
//! its peak memory measured), refusals, an unreadable file, Ctrl-C.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mq_tests::{ChildGuard, TestDir, Watchdog, measured_command, output_with_max_rss};

use crate::support::*;

/// Sets a path's modification time (never following a symlink).
fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let times = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nanos,
        },
    ];
    // SAFETY: `c` is a valid NUL-terminated path and `times` two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", path.display());
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// What the test tree holds.
struct TreeInfo {
    files: usize,
    big: PathBuf,
}

/// At least 2,000 files: nested folders, empty files and folders, a file
/// over 64 MiB (not a multiple of the copier's range size), names with
/// spaces, non-ASCII and non-UTF-8 names, symlinks to a file, to a folder
/// and to nowhere, unusual modes and sub-second mtimes.
fn make_tree(root: &Path) -> TreeInfo {
    let mut rng = demos::Rng::new(42);
    let mut files = 0;
    for i in 0..2000u64 {
        let path = root.join(format!("d{}/e{}/f{i}.txt", i % 10, i % 7));
        let len = if i % 100 == 0 {
            0
        } else {
            rng.below(6000) as usize
        };
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        write(&path, &bytes);
        files += 1;
    }
    for (name, bytes) in [
        ("with space/a file with spaces.txt", &b"spaces"[..]),
        ("with space/empty file", &b""[..]),
        ("ünïcødé 目录/文件 ✓.txt", "你好, мир".as_bytes()),
        ("emoji 🦀/crab.rs", b"fn main() {}"),
    ] {
        write(&root.join(name), bytes);
        files += 1;
    }
    let raw = root.join(std::ffi::OsStr::from_bytes(b"raw-\xff\xfe-name.bin"));
    write(&raw, b"not utf-8");
    files += 1;
    fs::create_dir_all(root.join("empty/deeper/deepest")).unwrap();

    // The big file: 70 MiB + 12345 bytes of pseudo-random data.
    let big = root.join("big/large.bin");
    fs::create_dir_all(big.parent().unwrap()).unwrap();
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(fs::File::create(&big).unwrap());
        let mut left = (70u64 << 20) + 12345;
        while left > 0 {
            let word = rng.next_u64().to_le_bytes();
            let n = left.min(8) as usize;
            f.write_all(&word[..n]).unwrap();
            left -= n as u64;
        }
        f.flush().unwrap();
    }
    files += 1;

    std::os::unix::fs::symlink("big/large.bin", root.join("link-to-large")).unwrap();
    std::os::unix::fs::symlink("d0", root.join("link-to-dir")).unwrap();
    std::os::unix::fs::symlink("../nowhere/at all", root.join("with space/dangling link")).unwrap();

    let mode =
        |p: &str, m: u32| fs::set_permissions(root.join(p), fs::Permissions::from_mode(m)).unwrap();
    mode("d0/e0/f0.txt", 0o600);
    mode("d1/e1/f1.txt", 0o755);
    mode("d2/e2/f2.txt", 0o444);
    mode("d3/e3/f3.txt", 0o4755);
    mode("with space", 0o750);
    mode("big/large.bin", 0o640);

    set_mtime(&root.join("d4/e4/f4.txt"), 981_173_106, 789_000_000);
    set_mtime(&root.join("big/large.bin"), 1_000_000_000, 123_456_789);
    set_mtime(&root.join("link-to-large"), 1_010_000_000, 5);
    set_mtime(&root.join("empty/deeper/deepest"), 900_000_000, 0);
    // Directory mtimes last: creating entries changes them.
    set_mtime(&root.join("d5"), 1_100_000_000, 42);
    set_mtime(&root.join("ünïcødé 目录"), 1_200_000_000, 999_999_999);
    mode("d6", 0o555); // read-only folder
    TreeInfo { files, big }
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let (mut ra, mut rb) = (
        BufReader::with_capacity(1 << 20, fa),
        BufReader::with_capacity(1 << 20, fb),
    );
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut ra, &mut ba);
        let nb = read_full(&mut rb, &mut bb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Differences between two trees: names, types, modes, mtimes, content, links.
fn tree_diff(a: &Path, b: &Path) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut stack = vec![PathBuf::new()];
    let mut seen = 0usize;
    while let Some(rel) = stack.pop() {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        let (ma, mb) = match (fs::symlink_metadata(&pa), fs::symlink_metadata(&pb)) {
            (Ok(ma), Ok(mb)) => (ma, mb),
            (_, Err(e)) => {
                diffs.push(format!("{}: missing in the copy ({e})", rel.display()));
                continue;
            }
            (Err(e), _) => {
                diffs.push(format!("{}: {e}", rel.display()));
                continue;
            }
        };
        seen += 1;
        let (ta, tb) = (ma.file_type(), mb.file_type());
        if (ta.is_dir(), ta.is_file(), ta.is_symlink())
            != (tb.is_dir(), tb.is_file(), tb.is_symlink())
        {
            diffs.push(format!("{}: types differ", rel.display()));
            continue;
        }
        if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
            diffs.push(format!(
                "{}: mtimes differ: {}.{:09} vs {}.{:09}",
                rel.display(),
                ma.mtime(),
                ma.mtime_nsec(),
                mb.mtime(),
                mb.mtime_nsec()
            ));
        }
        if ta.is_symlink() {
            if fs::read_link(&pa).unwrap() != fs::read_link(&pb).unwrap() {
                diffs.push(format!("{}: link targets differ", rel.display()));
            }
            continue;
        }
        if ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            diffs.push(format!(
                "{}: modes differ: {:o} vs {:o}",
                rel.display(),
                ma.mode() & 0o7777,
                mb.mode() & 0o7777
            ));
        }
        if ta.is_file() {
            if ma.len() != mb.len() || !same_bytes(&pa, &pb) {
                diffs.push(format!("{}: contents differ", rel.display()));
            }
            continue;
        }
        let names = |p: &Path| -> Vec<std::ffi::OsString> {
            let mut v: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let (na, nb) = (names(&pa), names(&pb));
        if na != nb {
            diffs.push(format!(
                "{}: entries differ: {na:?} vs {nb:?}",
                rel.display()
            ));
        }
        for n in na {
            stack.push(rel.join(n));
        }
    }
    assert!(seen > 2000, "walked only {seen} entries");
    diffs
}

#[test]
fn pool_copier_copies_a_tree_identically() {
    let _w = Watchdog::new("demo pool-copier tree", Duration::from_secs(120));
    let dir = TestDir::new("demo-copy");
    let scratch = Scratch::new("copy");
    let src = scratch.0.join("src tree");
    let info = make_tree(&src);
    assert!(info.files >= 2000);
    let src_mtime = fs::metadata(&src).unwrap().modified().unwrap();

    let started = Instant::now();
    // DEST defaults to "SRC-copy" beside SRC. The peak memory measured is
    // the largest of the copier and its workers (it waits for them). It is
    // measured through the small `peak-rss` helper, not from this process:
    // a program this process starts inherits this process's own peak in its
    // `ru_maxrss`, and the other tests of this binary, running in threads
    // beside this one, read whole files of 64 MiB (the copier once "reached"
    // 134 MB that way while its processes held under 12 MB).
    let m = output_with_max_rss(
        measured_command(demo("pool-copier"))
            .args(["-j", "3", "--verify"])
            .arg(&src)
            .env("MQ_DIR", dir.path())
            .stdin(Stdio::null()),
    )
    .unwrap();
    let out = m.output;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    eprintln!(
        "pool-copier copied the test tree in {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!("copied {} files", info.files)),
        "{stderr}"
    );
    assert!(
        stderr.contains("verified: the copy is identical"),
        "{stderr}"
    );
    // Not a terminal: plain progress lines, no bar.
    assert!(stderr.contains("progress: copied"), "{stderr}");

    let dest = scratch.0.join("src tree-copy");
    let diffs = tree_diff(&src, &dest);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    assert!(
        fs::symlink_metadata(dest.join("link-to-dir"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // The source was only read.
    assert_eq!(fs::metadata(&src).unwrap().modified().unwrap(), src_mtime);
    // Streaming: no process held the big file in memory.
    let big = fs::metadata(&info.big).unwrap().len() / 1024;
    let rss = m.max_rss_kib;
    assert!(rss > 0, "no peak memory measured");
    assert!(
        rss < big / 2,
        "a copier process reached {rss} KiB resident copying a {big} KiB file"
    );
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn pool_copier_refuses_dest_inside_src_and_overwrites_only_with_force() {
    let _w = Watchdog::new("demo pool-copier refusals", Duration::from_secs(60));
    let dir = TestDir::new("demo-copy-refuse");
    let scratch = Scratch::new("refuse");
    let src = scratch.0.join("src");
    write(&src.join("a/one.txt"), b"new one");
    write(&src.join("two.txt"), b"new two");
    let s = src.to_str().unwrap();

    // DEST inside SRC: refused before anything is written.
    let inside = src.join("a/copy");
    let out = run_demo(&dir, "pool-copier", &[s, inside.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("is inside SRC"),
        "{}",
        text(&out.stderr)
    );
    assert!(!inside.exists());
    // DEST containing SRC, and DEST = SRC.
    for d in [scratch.0.to_str().unwrap(), s] {
        let out = run_demo(&dir, "pool-copier", &[s, d]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
    }
    // SRC that is a file.
    let out = run_demo(
        &dir,
        "pool-copier",
        &[src.join("two.txt").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("is not a directory"));

    // Existing files in DEST: refused without --force, untouched.
    let dest = scratch.0.join("dest");
    write(&dest.join("a/one.txt"), b"old one");
    write(&dest.join("keep.txt"), b"mine");
    let d = dest.to_str().unwrap();
    let out = run_demo(&dir, "pool-copier", &[s, d]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to overwrite 1 existing path") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(stderr.contains("a/one.txt"), "{stderr}");
    assert_eq!(fs::read(dest.join("a/one.txt")).unwrap(), b"old one");
    assert!(
        !dest.join("two.txt").exists(),
        "nothing copied after a refusal"
    );

    // With --force: overwritten, and files only in DEST are kept.
    let out = run_demo(&dir, "pool-copier", &["--force", "--verify", s, d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs::read(dest.join("a/one.txt")).unwrap(), b"new one");
    assert_eq!(fs::read(dest.join("two.txt")).unwrap(), b"new two");
    assert_eq!(fs::read(dest.join("keep.txt")).unwrap(), b"mine");
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn pool_copier_reports_an_unreadable_file_and_copies_the_rest() {
    let _w = Watchdog::new("demo pool-copier unreadable", Duration::from_secs(60));
    let dir = TestDir::new("demo-copy-unreadable");
    let scratch = Scratch::new("unreadable");
    let src = scratch.0.join("src");
    for i in 0..200 {
        write(
            &src.join(format!("d{}/ok{i}.txt", i % 5)),
            format!("file {i}").as_bytes(),
        );
    }
    let secret = src.join("d3/secret.txt");
    write(&secret, b"top secret");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let dest = scratch.0.join("out/dest");

    let mut cmd = Command::new(demo("pool-copier"));
    mq_tests::die_with_test(&mut cmd)
        .args([src.as_os_str(), dest.as_os_str()])
        .env("MQ_DIR", dir.path())
        .stdin(Stdio::null());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root reads anything: run the copier as nobody, for whom the file
        // is unreadable; it needs write access to the queue and dest parents.
        for p in [dir.path(), &scratch.0] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
        }
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run pool-copier (as nobody, uid 65534, when the tests run as root): {e}")
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: cannot read: Permission denied",
            secret.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 path(s) were not copied"), "{stderr}");
    assert!(!dest.join("d3/secret.txt").exists());
    for i in 0..200 {
        let copy = dest.join(format!("d{}/ok{i}.txt", i % 5));
        assert_eq!(fs::read(&copy).unwrap(), format!("file {i}").as_bytes());
    }
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn pool_copier_ctrl_c_stops_workers_and_removes_queues() {
    let _w = Watchdog::new("demo pool-copier ctrl-c", Duration::from_secs(60));
    let dir = TestDir::new("demo-copy-sigint");
    let scratch = Scratch::new("sigint");
    let src = scratch.0.join("src");
    fs::create_dir_all(&src).unwrap();
    // A big sparse file: cheap to make and read, slow enough to copy.
    let f = fs::File::create(src.join("huge.bin")).unwrap();
    f.set_len(1 << 30).unwrap();
    drop(f);
    let dest = scratch.0.join("dest");

    let mut cmd = Command::new(demo("pool-copier"));
    mq_tests::die_with_test(&mut cmd)
        .args(["-j", "2", "--chunk-mib", "1"])
        .args([src.as_os_str(), dest.as_os_str()])
        .env("MQ_DIR", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = ChildGuard::new(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.child().stderr.take().unwrap()).lines();
    let mut seen: Vec<String> = Vec::new();
    let mut pids: Vec<u32> = Vec::new();
    while !seen.iter().any(|l| l.starts_with("progress:")) {
        let line = lines.next().expect("pool-copier ended early").unwrap();
        if let Some(list) = line.split("worker processes: ").nth(1) {
            pids = list.split(' ').map(|p| p.parse().unwrap()).collect();
        }
        seen.push(line);
    }
    assert_eq!(pids.len(), 2, "{seen:#?}");
    // Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGINT);
    }
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.child().wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}\n{seen:#?}");
    assert!(seen.iter().any(|l| l.contains("interrupted")), "{seen:#?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let running = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
    };
    while pids.iter().any(|&p| running(p)) {
        assert!(Instant::now() < deadline, "workers still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}
