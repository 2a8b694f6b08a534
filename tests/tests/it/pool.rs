//! `queue_pool` end to end: the helper program `pool-test-app` is the
//! pool's parent and, re-started by the pool, its workers. Each test checks
//! that no worker outlives it and no queue is left in its directory.

use std::io::{BufRead, BufReader, Lines};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use mq_tests::{ChildGuard, TestDir, Watchdog, kill9};

fn app(dir: &TestDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pool-test-app"));
    mq_tests::die_with_test(&mut cmd)
        .args(args)
        .env("MQ_DIR", dir.path())
        .env_remove("MQ_POOL_WORKER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the app to the end; returns its exit code and stdout lines.
fn run(dir: &TestDir, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = app(dir, args).output().expect("run pool-test-app");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("pool-test-app {args:?} stderr:\n{stderr}");
    }
    (
        out.status.code(),
        stdout.lines().map(str::to_owned).collect(),
    )
}

/// The value of `key=` in a line; `error=` takes the rest of the line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    if key == "error" {
        return Some(rest);
    }
    Some(rest.split(' ').next().unwrap_or(""))
}

fn pids_of(lines: &[String]) -> Vec<u32> {
    let line = lines
        .iter()
        .find(|l| l.starts_with("pids="))
        .expect("a pids= line");
    field(line, "pids")
        .unwrap()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap())
        .collect()
}

fn results(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("result ")).collect()
}

/// Whether `pid` is no longer running (absent, or a zombie nobody reaped).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|s| matches!(s, 'Z' | 'X')),
    }
}

fn assert_all_gone(pids: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    while !pids.iter().all(|&p| gone(p)) {
        assert!(
            Instant::now() < deadline,
            "worker processes still running: {:?}",
            pids.iter().filter(|&&p| !gone(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every worker the app listed or saw die is gone, and no queue is left.
fn assert_workers_gone_and_queues_removed(dir: &TestDir, lines: &[String]) {
    let deaths: Vec<u32> = lines
        .iter()
        .filter(|l| l.starts_with("death "))
        .filter_map(|l| field(l, "pid")?.parse().ok())
        .collect();
    let mut pids = pids_of(lines);
    pids.extend(deaths);
    assert_all_gone(&pids, Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

fn read_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    seen: &mut Vec<String>,
    want: impl Fn(&[String]) -> bool,
) {
    while !want(seen) {
        match lines.next() {
            Some(Ok(line)) => seen.push(line),
            _ => panic!("pool-test-app ended early; output so far: {seen:#?}"),
        }
    }
}

#[test]
fn every_task_gets_its_result() {
    let _w = Watchdog::new("pool: every task", Duration::from_secs(60));
    let dir = TestDir::new("pool-all");
    let (code, lines) = run(&dir, &["squares", "500", "3"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        lines.contains(&"done ok=500 of=500".to_string()),
        "{lines:#?}"
    );
    let pids = pids_of(&lines);
    assert_eq!(pids.len(), 3);
    assert_all_gone(&pids, Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn a_worker_killed_mid_task_is_replaced_and_its_task_completes() {
    let _w = Watchdog::new("pool: killed worker", Duration::from_secs(60));
    let dir = TestDir::new("pool-kill");
    let mut child = ChildGuard::new(app(&dir, &["slow", "4", "800", "2"]).spawn().unwrap());
    let mut lines = BufReader::new(child.child().stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    read_until(&mut lines, &mut seen, |s| {
        s.iter().any(|l| l.starts_with("started "))
    });
    let victim: u32 = seen
        .iter()
        .find(|l| l.starts_with("started "))
        .and_then(|l| field(l, "pid"))
        .unwrap()
        .parse()
        .unwrap();
    kill9(victim);
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.child().wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen:#?}");

    let results = results(&seen);
    assert_eq!(results.len(), 4, "{seen:#?}");
    assert!(
        results.iter().all(|r| field(r, "ok") == Some("true")),
        "{seen:#?}"
    );
    let retried: Vec<_> = results
        .iter()
        .filter(|r| field(r, "attempts") == Some("2"))
        .collect();
    assert_eq!(
        retried.len(),
        1,
        "exactly the killed task ran twice: {seen:#?}"
    );
    assert_ne!(field(retried[0], "pid"), Some(victim.to_string().as_str()));
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("death pid={victim} task=Some("))
                && l.contains("SIGKILL")),
        "the death is reported: {seen:#?}"
    );
    assert!(seen.contains(&"done deaths=1".to_string()), "{seen:#?}");

    // Every worker that ever ran (including the replacement) is gone.
    let mut pids = pids_of(&seen);
    pids.extend(
        results
            .iter()
            .filter_map(|r| field(r, "pid")?.parse::<u32>().ok()),
    );
    assert_all_gone(&pids, Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn task_errors_and_panics_come_back_as_error_results() {
    let _w = Watchdog::new("pool: errors", Duration::from_secs(60));
    let dir = TestDir::new("pool-err");
    let (code, lines) = run(&dir, &["errors"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let results = results(&lines);
    assert_eq!(results.len(), 3, "{lines:#?}");
    assert_eq!(field(results[0], "ok"), Some("false"));
    assert_eq!(field(results[0], "error"), Some("disk on fire"));
    assert_eq!(field(results[1], "ok"), Some("false"));
    let panic = field(results[1], "error").unwrap();
    assert!(panic.starts_with("task panicked: kaboom (at "), "{panic}");
    assert_eq!(field(results[2], "ok"), Some("true"));
    assert!(lines.contains(&"square=Ok(144)".to_string()), "{lines:#?}");
    // Neither an error nor a panic costs a worker.
    assert!(lines.contains(&"deaths=0".to_string()), "{lines:#?}");
    assert_all_gone(&pids_of(&lines), Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn a_task_that_always_kills_its_worker_is_retried_then_reported_failed() {
    let _w = Watchdog::new("pool: crash loop", Duration::from_secs(60));
    let dir = TestDir::new("pool-crash");
    let (code, lines) = run(&dir, &["crash", "2"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let results = results(&lines);
    assert_eq!(results.len(), 2, "{lines:#?}");
    assert_eq!(field(results[0], "ok"), Some("false"), "{lines:#?}");
    assert_eq!(
        field(results[0], "attempts"),
        Some("3"),
        "1 run + 2 retries: {lines:#?}"
    );
    let error = field(results[0], "error").unwrap();
    assert!(
        error.contains("died in all 3 attempt(s)") && error.contains("SIGABRT"),
        "{error}"
    );
    assert!(
        error.contains("task \"abort\" killed its worker"),
        "{error}"
    );
    assert_eq!(field(results[1], "ok"), Some("true"), "{lines:#?}");
    assert!(lines.contains(&"deaths=3".to_string()), "{lines:#?}");
    assert_workers_gone_and_queues_removed(&dir, &lines);
}

#[test]
fn dropping_a_pool_kills_its_workers_and_removes_its_queues() {
    let _w = Watchdog::new("pool: drop", Duration::from_secs(60));
    let dir = TestDir::new("pool-drop");
    let (code, lines) = run(&dir, &["drop", "4"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.contains(&"dropped".to_string()), "{lines:#?}");
    let queues = lines.iter().find(|l| l.starts_with("queues=")).unwrap();
    assert_eq!(
        field(queues, "queues").unwrap().split(',').count(),
        3,
        "results + 2 inboxes"
    );
    assert_all_gone(&pids_of(&lines), Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn ctrl_c_runs_cleanup_kills_workers_and_removes_queues() {
    let _w = Watchdog::new("pool: ctrl-c", Duration::from_secs(60));
    let dir = TestDir::new("pool-sigint");
    // Its own process group, so that the SIGINT goes to it and its workers
    // (as a terminal's Ctrl-C does) and not to the test runner.
    let mut cmd = app(&dir, &["sigint", "4"]);
    cmd.process_group(0);
    let mut child = ChildGuard::new(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.child().stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    read_until(&mut lines, &mut seen, |s| {
        s.iter().filter(|l| l.starts_with("started ")).count() == 2
    });
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGINT);
    }
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.child().wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "{status:?} {:?}\n{seen:#?}",
        status.signal()
    );
    assert!(seen.contains(&"interrupted".to_string()), "{seen:#?}");
    let mut pids = pids_of(&seen);
    pids.extend(
        seen.iter()
            .filter(|l| l.starts_with("started "))
            .filter_map(|l| field(l, "pid")?.parse::<u32>().ok()),
    );
    assert_all_gone(&pids, Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn workers_die_with_their_parent_and_the_next_pool_sweeps_the_queues() {
    let _w = Watchdog::new("pool: orphans", Duration::from_secs(60));
    let dir = TestDir::new("pool-orphan");
    let mut child = ChildGuard::new(app(&dir, &["hang", "2"]).spawn().unwrap());
    let mut lines = BufReader::new(child.child().stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    read_until(&mut lines, &mut seen, |s| {
        s.iter().filter(|l| l.starts_with("started ")).count() == 2
    });
    let pids = pids_of(&seen);
    kill9(child.id());
    let _ = child.child().wait();
    assert_all_gone(&pids, Duration::from_secs(5));
    // A parent killed outright cannot clean up: its queues stay ...
    assert_eq!(dir.leftovers().len(), 3, "{:?}", dir.leftovers());
    // ... until the next pool in that directory sees that nobody uses them.
    let (code, out) = run(&dir, &["squares", "3", "1"]);
    assert_eq!(code, Some(0), "{out:#?}");
    assert_all_gone(&pids_of(&out), Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn random_kills_lose_no_task_and_charge_only_the_running_one() {
    let _w = Watchdog::new("pool: random kills", Duration::from_secs(90));
    let dir = TestDir::new("pool-chaos");
    // 40 tasks of 100 ms on 3 workers, each with one task waiting in its inbox.
    let mut child = ChildGuard::new(app(&dir, &["slow", "40", "100", "3", "1"]).spawn().unwrap());
    let parent = child.id();
    let mut lines = BufReader::new(child.child().stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    read_until(&mut lines, &mut seen, |s| {
        s.iter().any(|l| l.starts_with("started "))
    });
    // Kill a worker (a child of the app) every 150 ms, 8 times.
    let reader = std::thread::spawn(move || lines.map(|l| l.unwrap()).collect::<Vec<_>>());
    let mut rng = demos::Rng::new(u64::from(parent));
    for _ in 0..8 {
        // Children are listed per thread: the pool's supervisor thread starts them.
        let pids: Vec<u32> = std::fs::read_dir(format!("/proc/{parent}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        if !pids.is_empty() {
            kill9(pids[rng.below(pids.len() as u64) as usize]);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    seen.extend(reader.join().unwrap());
    let status = child.child().wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen:#?}");

    let results = results(&seen);
    assert_eq!(results.len(), 40, "every task has a result: {seen:#?}");
    let mut retries = 0;
    for r in &results {
        let attempts: u32 = field(r, "attempts").unwrap().parse().unwrap();
        if field(r, "ok") == Some("true") {
            retries += attempts - 1;
        } else {
            // Only a task whose workers all died fails: 1 run + 2 retries.
            assert_eq!(attempts, 3, "{r}");
            assert!(field(r, "error").unwrap().contains("died in all 3"), "{r}");
            retries += attempts;
        }
    }
    let deaths: Vec<&String> = seen.iter().filter(|l| l.starts_with("death ")).collect();
    let charged = deaths.iter().filter(|l| l.contains("task=Some(")).count() as u32;
    assert!(!deaths.is_empty(), "{seen:#?}");
    // A death charges at most the one task that was running, never the
    // task waiting in its inbox.
    assert!(
        retries >= charged && retries <= deaths.len() as u32,
        "retries {retries}, deaths {deaths:#?}"
    );
    let ran: Vec<u32> = seen
        .iter()
        .filter(|l| l.starts_with("started "))
        .filter_map(|l| field(l, "pid")?.parse().ok())
        .collect();
    assert_all_gone(&ran, Duration::from_secs(5));
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

/// Runs `pool-test-app SCENARIO 300` (one task that hangs past a 300 ms
/// limit, then three short ones) and checks: the first ends with an error
/// holding every one of `words`, its worker was killed and replaced, the
/// other three ran, nothing is left.
fn one_task_times_out(tag: &str, scenario: &str, words: &[&str]) {
    let dir = TestDir::new(tag);
    let (code, lines) = run(&dir, &[scenario, "300"]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let results = results(&lines);
    assert_eq!(results.len(), 4, "{lines:#?}");
    assert_eq!(field(results[0], "ok"), Some("false"), "{lines:#?}");
    let error = field(results[0], "error").unwrap();
    assert!(words.iter().all(|w| error.contains(w)), "{error}");
    for r in &results[1..] {
        assert_eq!(field(r, "ok"), Some("true"), "{lines:#?}");
    }
    assert!(lines.contains(&"deaths=1".to_string()), "{lines:#?}");
    assert_workers_gone_and_queues_removed(&dir, &lines);
}

/// A task given its own timeout (`apply_async(..).timeout(..)`, in a pool
/// without `task_timeout`) ends with an error naming it and that timeout
/// once a run lasts longer; its worker is replaced and the other tasks run.
#[test]
fn a_task_past_its_own_timeout_fails_and_the_others_run() {
    let _w = Watchdog::new("pool: own timeout", Duration::from_secs(60));
    one_task_times_out(
        "pool-own-timeout",
        "own-timeout",
        &[
            "task \"slow\" ran longer than its own timeout of 300ms",
            "AsyncResult::timeout",
        ],
    );
}

/// A task that runs longer than the pool's task timeout ends with an error
/// naming it; its (stuck) worker is killed and replaced, and the tasks that
/// waited in its inbox still run.
#[test]
fn a_task_past_the_task_timeout_fails_and_its_worker_is_replaced() {
    let _w = Watchdog::new("pool: task timeout", Duration::from_secs(60));
    one_task_times_out(
        "pool-timeout",
        "timeout",
        &["task \"slow\" ran longer than the pool's task timeout of 300ms"],
    );
}
