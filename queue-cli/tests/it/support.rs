//! Helpers for the `mq` end-to-end tests: running `mq` against a test's own
//! queue directory, checking exit codes, reading its output.

use std::process::{Command as StdCommand, Output};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use mq_tests::TestDir;
use queue_core::Queue;
use serde_json::Value;

/// The `mq` executable (cargo builds it for this package's tests).
pub const MQ: &str = env!("CARGO_BIN_EXE_mq");

/// `mq` with `MQ_DIR` pointing at the test's directory and a time limit.
pub fn mq(dir: &TestDir) -> Command {
    let mut std = StdCommand::new(MQ);
    mq_tests::die_with_test(&mut std);
    let mut c = Command::from_std(std);
    c.env("MQ_DIR", dir.path()).timeout(Duration::from_secs(30));
    c
}

/// The same as a std Command, for children that run alongside the test.
pub fn mq_std(dir: &TestDir, args: &[&str]) -> StdCommand {
    let mut c = StdCommand::new(MQ);
    mq_tests::die_with_test(&mut c)
        .env("MQ_DIR", dir.path())
        .args(args);
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `mq args` and returns its output, checking the exit code.
#[track_caller]
pub fn run(dir: &TestDir, args: &[&str], code: i32) -> Output {
    let o = mq(dir).args(args).output().expect("run mq");
    assert_eq!(
        o.status.code(),
        Some(code),
        "mq {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Runs `mq args` with `input` on stdin, expecting success.
#[track_caller]
pub fn run_stdin(dir: &TestDir, args: &[&str], input: &[u8]) -> Output {
    let o = mq(dir)
        .args(args)
        .write_stdin(input)
        .output()
        .expect("run mq");
    assert!(o.status.success(), "mq {args:?}: {}", stderr(&o));
    o
}

/// Polls `cond` until it holds, failing after 10 s.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many processes are blocked in get on the queue.
pub fn getters_waiting(dir: &TestDir, name: &str) -> usize {
    Queue::open_in(dir.path(), name)
        .map(|q| q.stats().consumers_waiting)
        .unwrap_or(0)
}

pub fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

pub fn decode(v: &Value) -> Vec<u8> {
    use base64::Engine;
    let data = v["data"].as_str().expect("data");
    match v["encoding"].as_str() {
        Some("utf8") => data.as_bytes().to_vec(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64"),
        other => panic!("unknown encoding {other:?}"),
    }
}
