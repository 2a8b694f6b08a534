//! `pool-copier` onto a full file system: a 1 MiB tmpfs, mounted in a
//! mount namespace of the test's own (so nothing outside sees it, and it
//! is gone when the test's thread ends, even if the test is killed).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{TestDir, Watchdog};

use crate::support::*;

/// Runs `f` on a thread of its own, in a new mount namespace with a tmpfs
/// of `size` mounted on `at`.
fn with_small_tmpfs<T: Send + 'static>(
    at: PathBuf,
    size: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let size = std::ffi::CString::new(format!("size={size}")).unwrap();
    std::thread::spawn(move || {
        let path = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: plain system calls on NUL-terminated strings that outlive
        // them; they change this thread's mount namespace only.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                panic!(
                    "this test mounts a 1 MiB tmpfs in a mount namespace of its own, which \
                     needs root (CAP_SYS_ADMIN); unshare failed: {} (run the tests as root, \
                     as CI does)",
                    std::io::Error::last_os_error()
                );
            }
            let none = c"none".as_ptr();
            let root = c"/".as_ptr();
            assert_eq!(
                libc::mount(
                    none,
                    root,
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null()
                ),
                0,
                "make mounts private: {}",
                std::io::Error::last_os_error()
            );
            let tmpfs = c"tmpfs".as_ptr();
            assert_eq!(
                libc::mount(tmpfs, path.as_ptr(), tmpfs, 0, size.as_ptr().cast()),
                0,
                "mount a tmpfs on {}: {}",
                at.display(),
                std::io::Error::last_os_error()
            );
        }
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[test]
fn pool_copier_onto_a_full_disk_says_so_and_leaves_no_partial_copy() {
    let _w = Watchdog::new("demo pool-copier full disk", Duration::from_secs(60));
    let dir = TestDir::new("demo-copy-full");
    let scratch = Scratch::new("full");
    let src = scratch.0.join("src");
    fs::create_dir_all(&src).unwrap();
    // Two files that cannot fit: one copied whole by a worker, one in
    // ranges (over --chunk-mib 2) into a file the parent made; and one that
    // fits unless it comes while the others fill the disk.
    let big = |n: usize| (0..n).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>();
    let files = [
        ("whole.bin", big(1 << 20 | 12345), ""),
        ("ranges.bin", big(3 << 20), ": bytes "),
        ("small.txt", b"fits".to_vec(), ""),
    ];
    for (name, bytes, _) in &files {
        fs::write(src.join(name), bytes).unwrap();
    }
    let mnt = scratch.0.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let dest = mnt.join("dest");

    let (src2, dest2, qdir) = (src.clone(), dest.clone(), dir.path().to_owned());
    let (out, copies) = with_small_tmpfs(mnt, "1m", move || {
        let out = mq_tests::die_with_test(&mut Command::new(demo("pool-copier")))
            .args(["--chunk-mib", "2"])
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
            .collect();
        (out, copies)
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let mut failed = 0;
    for (name, bytes, how) in &files {
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
                    &format!("cannot copy to {}", dest.join(name).display()),
                    "No space left on device",
                    "(free some space there, or copy to another place)",
                    "the partial copy is removed",
                ] {
                    assert!(line.contains(part), "{name}: {part:?} missing in {line:?}");
                }
            }
        }
    }
    assert!(
        failed >= 2,
        "the two big files cannot fit in 1 MiB:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{failed} path(s) were not copied correctly")),
        "{stderr}"
    );
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}
