//! `pool-copier` onto a full file system: a small tmpfs (the writes fail)
//! and an 8 MiB ext4 image (the preallocation fails, before any byte
//! moves); what is left is whole, what failed is reported with a hint, and
//! the summary counts only what is there. Each is mounted in a mount
//! namespace of the test's own: nothing outside sees it, and it is gone
//! when the test's thread ends, even if the test is killed (the ext4
//! image's loop device is released with it).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{TestDir, Watchdog};

use crate::support::*;

/// A small file system to copy onto.
#[derive(Clone, Copy)]
enum Small {
    /// A tmpfs of this size (`mount -o size=`).
    Tmpfs(&'static str),
    /// An 8 MiB ext4 image, mounted through a loop device.
    Ext4,
}

/// Runs `f` on a thread of its own, in a new mount namespace with the file
/// system `small` mounted on `at` (an ext4 image is made in `scratch`).
fn with_small_fs<T: Send + 'static>(
    small: Small,
    at: PathBuf,
    scratch: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let image = scratch.join("ext4.img");
    if let Small::Ext4 = small {
        fs::File::create(&image).unwrap().set_len(8 << 20).unwrap();
        let out = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run mkfs.ext4: {e} (install it: apt-get install e2fsprogs)")
            });
        assert!(out.status.success(), "mkfs.ext4: {}", text(&out.stderr));
    }
    std::thread::spawn(move || {
        // SAFETY: plain system calls on NUL-terminated strings that outlive
        // them; they change this thread's mount namespace only.
        unsafe {
            assert!(
                libc::unshare(libc::CLONE_NEWNS) == 0,
                "this test mounts a small file system in a mount namespace of its own, which \
                 needs root (CAP_SYS_ADMIN); unshare failed: {} (run the tests as root, as CI \
                 does)",
                std::io::Error::last_os_error()
            );
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            let (none, root, null) = (c"none".as_ptr(), c"/".as_ptr(), std::ptr::null());
            assert!(
                libc::mount(none, root, null, flags, null.cast()) == 0,
                "make mounts private: {}",
                std::io::Error::last_os_error()
            );
        }
        // Spawned from this thread, `mount` works in its namespace.
        let mut mount = Command::new("mount");
        match small {
            Small::Tmpfs(size) => {
                mount.args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            }
            Small::Ext4 => mount.args(["-o", "loop"]).arg(&image),
        };
        let out = mount.arg(&at).output().expect("run mount");
        assert!(
            out.status.success(),
            "mount on {}: {}",
            at.display(),
            text(&out.stderr)
        );
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Copies two files that cannot fit on `small` (one of `size` bytes whole,
/// one in ranges of `chunk_mib` into a file the parent made) and one that
/// fits unless it comes while the others fill it; checks that what is there
/// is whole, and that what is not is reported with a hint (the big ones as
/// `why`).
fn copy_onto(small: Small, tag: &str, size: usize, chunk_mib: usize, why: &str) {
    let dir = TestDir::new(tag);
    let scratch = Scratch::new(tag);
    let src = scratch.0.join("src");
    fs::create_dir_all(&src).unwrap();
    let bytes = |n: usize| (0..n).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>();
    assert!(size < chunk_mib << 20, "whole.bin is copied whole");
    let files = [
        ("whole.bin", bytes(size), ["", why]),
        (
            "ranges.bin",
            bytes((3 * chunk_mib) << 19),
            [": bytes ", why],
        ),
        ("small.txt", b"fits".to_vec(), ["", ""]),
    ];
    for (name, bytes, _) in &files {
        fs::write(src.join(name), bytes).unwrap();
    }
    let mnt = scratch.0.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let dest = mnt.join("dest");

    let (src2, dest2, qdir) = (src.clone(), dest.clone(), dir.path().to_owned());
    let (out, copies) = with_small_fs(small, mnt, &scratch.0, move || {
        let out = mq_tests::die_with_test(&mut Command::new(demo("pool-copier")))
            .args(["--chunk-mib", &chunk_mib.to_string()])
            .args([src2.as_os_str(), dest2.as_os_str()])
            .env("MQ_DIR", &qdir)
            .stdin(Stdio::null())
            .output()
            .expect("run pool-copier");
        let copies: Vec<(String, Vec<u8>)> = fs::read_dir(&dest2)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read(e.path()).unwrap())
            })
            .filter(|(name, _)| name != "lost+found")
            .collect();
        (out, copies)
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let mut failed = 0;
    for (name, bytes, [how, why]) in &files {
        let error = stderr
            .lines()
            .find(|l| l.starts_with(&format!("pool-copier: {}: ", src.join(name).display())));
        match copies.iter().find(|(copy, _)| copy == name) {
            // What is there is whole: a copy that failed was removed.
            Some((_, copy)) => {
                assert!(copy == bytes, "{name}: a partial copy was left\n{stderr}");
                assert!(error.is_none(), "{name} was copied but reported\n{stderr}");
            }
            None => {
                failed += 1;
                let line =
                    error.unwrap_or_else(|| panic!("{name} is missing, no error:\n{stderr}"));
                for part in [
                    *how,
                    &*format!("cannot copy to {}", dest.join(name).display()),
                    *why,
                    "No space left on device",
                    "(free some space there, or copy to another place)",
                    "the partial copy is removed",
                ] {
                    assert!(line.contains(part), "{name}: {part:?} missing in {line:?}");
                }
            }
        }
    }
    assert!(failed >= 2, "the two big files cannot fit:\n{stderr}");
    // The summary counts what is there, not the ranges of a removed copy.
    let (n, bytes): (usize, usize) = (copies.len(), copies.iter().map(|(_, c)| c.len()).sum());
    assert!(
        stderr.contains(&format!("pool-copier: copied {n} files ({bytes} B)")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{failed} path(s) were not copied correctly")),
        "{stderr}"
    );
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn pool_copier_onto_a_full_tmpfs_says_so_and_leaves_no_partial_copy() {
    let _w = Watchdog::new("demo pool-copier full tmpfs", Duration::from_secs(60));
    copy_onto(
        Small::Tmpfs("1m"),
        "copy-full-tmpfs",
        1 << 20 | 12345,
        2,
        "",
    );
}

#[test]
fn pool_copier_onto_a_full_ext4_says_so_before_copying() {
    let _w = Watchdog::new("demo pool-copier full ext4", Duration::from_secs(60));
    // Preallocated (from 1 MiB, no holes): refused before any byte moves.
    copy_onto(
        Small::Ext4,
        "copy-full-ext4",
        12 << 20,
        16,
        "no room for its",
    );
}

#[test]
fn pool_copier_does_not_count_the_ranges_of_a_removed_copy() {
    let _w = Watchdog::new("demo pool-copier ranges counted", Duration::from_secs(60));
    let dir = TestDir::new("copy-full-count");
    let scratch = Scratch::new("copy-full-count");
    let src = scratch.0.join("src");
    fs::create_dir_all(&src).unwrap();
    // Three 1 MiB ranges onto 2 MiB: at least one range is copied, and the
    // file cannot be.
    fs::write(src.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    let mnt = scratch.0.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let (src2, dest, qdir) = (src.clone(), mnt.join("dest"), dir.path().to_owned());
    let (out, left) = with_small_fs(Small::Tmpfs("2m"), mnt, &scratch.0, move || {
        let out = mq_tests::die_with_test(&mut Command::new(demo("pool-copier")))
            .args(["--chunk-mib", "1"])
            .args([src2.as_os_str(), dest.as_os_str()])
            .env("MQ_DIR", &qdir)
            .stdin(Stdio::null())
            .output()
            .expect("run pool-copier");
        (out, fs::read_dir(&dest).unwrap().count())
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(left, 0, "the partial copy was left\n{stderr}");
    assert!(stderr.contains("the partial copy is removed"), "{stderr}");
    assert!(
        stderr.contains("pool-copier: copied 0 files (0 B)"),
        "{stderr}"
    );
    let last = stderr.lines().rfind(|l| l.starts_with("progress: "));
    assert!(
        last.is_some_and(|l| l.starts_with("progress: copied 0/1 files, 0 B of 3.0 MiB (0%)")),
        "{stderr}"
    );
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}
