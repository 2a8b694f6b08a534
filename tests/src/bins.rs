//! Running the binaries under test: finding another package's binary beside
//! the test executable, and running a program while measuring its peak
//! memory.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

/// The binary `name` of another workspace package, in the target directory
/// beside the running test executable (`target/<profile>/NAME`).
///
/// A test finds its own package's binaries with `env!("CARGO_BIN_EXE_...")`;
/// cargo tells it nothing about other packages', but `cargo test --workspace`
/// builds every binary of every package with integration tests before it runs
/// any test, into the same `target/<profile>/`. Panics, naming the binary and
/// the fix, if it is not there.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test>-<hash>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lies in target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{name} not found in {}: run cargo build --workspace --bins first (cargo test --workspace does)",
        dir.display()
    );
    bin
}

/// What [`output_with_max_rss`] returns.
#[derive(Debug)]
pub struct Measured {
    /// Exit status and everything the program wrote.
    pub output: Output,
    /// Peak resident set, in KiB, of the program or of any descendant it
    /// waited for (`ru_maxrss` from `wait4` on this one child, so other
    /// children of the test process do not count).
    pub max_rss_kib: u64,
}

/// Runs `cmd` to its end (stdout and stderr captured, stdin as configured,
/// else inherited) and measures its peak memory.
pub fn output_with_max_rss(cmd: &mut Command) -> std::io::Result<Measured> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: all-zero is a valid `rusage` (plain integers).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child; `status` and `usage` are valid
        // for writes. `child` is not waited for again (dropping it does not).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(Measured {
        output: Output {
            status: ExitStatus::from_raw(status),
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        },
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}
