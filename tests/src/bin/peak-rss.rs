//! Runs a program and reports its peak memory, for
//! [`mq_tests::output_with_max_rss`]: a small, freshly started process
//! between the test and the program measured.
//!
//! ```text
//! MQ_PEAK_RSS_REPORT=FILE peak-rss PROGRAM [ARGS...]
//! ```
//! runs PROGRAM (stdin, stdout, stderr and the environment inherited, less
//! `MQ_PEAK_RSS_REPORT`), waits for it with `wait4` and writes
//! `WAIT_STATUS MAX_RSS_KIB` to FILE. Exits 0 once the report is written,
//! 127 (with a message on stderr and no report) if it could not.
//!
//! Why not measure the program from the test directly: Rust spawns with
//! `posix_spawn` (a `vfork`-like clone that shares the parent's memory until
//! `exec`), and at `exec` Linux folds the peak resident set of the memory the
//! process leaves into the `ru_maxrss` that `wait4` later reports (likewise
//! after `fork`, whose copy carries the parent's pages). So a program started
//! by a test binary whose other tests once held 130 MB "peaked" at 130 MB
//! however little it used. Started from this process instead, the program
//! inherits a peak of a few MiB at most.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

/// The environment variable that names the report file.
const REPORT: &str = "MQ_PEAK_RSS_REPORT";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peak-rss: {e}");
            ExitCode::from(127)
        }
    }
}

fn run() -> Result<(), String> {
    let report = std::env::var_os(REPORT)
        .ok_or_else(|| format!("{REPORT} is not set (set it to the file for the report)"))?;
    let mut args = std::env::args_os().skip(1);
    let program: OsString = args
        .next()
        .ok_or("no program given (usage: peak-rss PROGRAM [ARGS...])")?;
    let child = mq_tests::die_with_test(&mut Command::new(&program))
        .args(args)
        .env_remove(REPORT)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.to_string_lossy()))?;
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
            return Err(format!(
                "cannot wait for {}: {e}",
                program.to_string_lossy()
            ));
        }
    }
    std::fs::write(&report, format!("{status} {}\n", usage.ru_maxrss)).map_err(|e| {
        format!(
            "cannot write the report {}: {e}",
            std::path::Path::new(&report).display()
        )
    })
}
