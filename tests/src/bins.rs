//! Running the binaries under test: finding another package's binary beside
//! the test executable, and running a program while measuring its peak
//! memory.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

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
    /// waited for (`ru_maxrss` from `wait4` on the program, in the
    /// `peak-rss` process that started it: see [`measured_command`]).
    pub max_rss_kib: u64,
}

/// A command that runs `program` for [`output_with_max_rss`]: configure it
/// as usual (arguments, environment, stdin); it starts the `peak-rss` helper
/// of this crate, which starts `program` with all of that and measures it.
///
/// Why the helper: a program that the test process starts directly inherits
/// the test process's own peak in its `ru_maxrss` (Linux folds the peak of
/// the memory a process leaves at `exec` into it, and `posix_spawn` leaves
/// the parent's memory). A test binary runs its tests in threads of one
/// process, so any other test that once held 130 MB (reading two 64 MiB files
/// to compare them, say) made every program measured later "peak" at 130 MB.
/// `peak-rss` is a fresh process of a few MiB: that is all a program it
/// starts can inherit. Panics like [`workspace_bin`] if `peak-rss` is not
/// built.
pub fn measured_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(workspace_bin(PEAK_RSS));
    crate::die_with_test(&mut cmd).arg(program);
    cmd
}

/// The helper binary that [`measured_command`] starts.
const PEAK_RSS: &str = "peak-rss";

/// Runs `cmd` (from [`measured_command`]) to its end (stdout and stderr
/// captured, stdin as configured, else inherited) and measures the peak
/// memory of the program and its descendants.
pub fn output_with_max_rss(cmd: &mut Command) -> std::io::Result<Measured> {
    if Path::new(cmd.get_program()).file_name() != Some(OsStr::new(PEAK_RSS)) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "output_with_max_rss runs commands that start {PEAK_RSS}, not {} (make it with measured_command)",
                cmd.get_program().to_string_lossy()
            ),
        ));
    }
    static REPORTS: AtomicU32 = AtomicU32::new(0);
    let report = std::env::temp_dir().join(format!(
        "mq-peak-rss-{}-{}",
        std::process::id(),
        REPORTS.fetch_add(1, Ordering::Relaxed)
    ));
    let output = cmd
        .env("MQ_PEAK_RSS_REPORT", &report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    let text = std::fs::read_to_string(&report);
    let _ = std::fs::remove_file(&report);
    let bad = |why: String| {
        std::io::Error::other(format!(
            "{PEAK_RSS} gave no report ({why}); it exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ))
    };
    let text = text.map_err(|e| bad(format!("cannot read {}: {e}", report.display())))?;
    let (status, rss) = text
        .trim_end()
        .split_once(' ')
        .and_then(|(s, r)| Some((s.parse::<i32>().ok()?, r.parse::<u64>().ok()?)))
        .ok_or_else(|| bad(format!("it wrote {text:?}")))?;
    Ok(Measured {
        output: Output {
            status: ExitStatus::from_raw(status),
            ..output
        },
        max_rss_kib: rss,
    })
}
