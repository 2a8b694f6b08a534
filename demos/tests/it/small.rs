//! The small demos end to end: `processes`, `downloader-analyzer` (alone and
//! as two processes meeting by queue name) and `pool-workers`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog};

use crate::support::*;

#[test]
fn processes_shows_two_processes_and_their_states() {
    let _w = Watchdog::new("demo processes", Duration::from_secs(60));
    let dir = TestDir::new("demo-proc");
    let out = run_demo(&dir, "processes", &["--seconds", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("1----------"), "{stdout}");
    assert!(stdout.contains("2----------"), "{stdout}");
    assert!(
        stdout.contains("ps -o pid,ppid,stat,etime,cmd -p "),
        "{stdout}"
    );
    // Child 1 returned at once and is not waited for yet: a zombie.
    assert!(stdout.contains(": Z (zombie"), "{stdout}");
    assert!(
        stdout.contains("parent collected the exit statuses"),
        "{stdout}"
    );
}

#[test]
fn downloader_analyzer_run_counts_every_item() {
    let _w = Watchdog::new("demo downloader-analyzer", Duration::from_secs(60));
    let dir = TestDir::new("demo-da");
    let out = run_demo(
        &dir,
        "downloader-analyzer",
        &["run", "--items", "1000", "--delay-ms", "0"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // 1 + 2 + ... + 1000 = 500500
    assert!(
        stdout.contains("analyzed 1000 items, sum of their numbers 500500"),
        "{stdout}"
    );
    assert!(stdout.contains("end of stream"), "{stdout}");
    assert!(stdout.contains("main: every item was analyzed"), "{stdout}");
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn downloader_analyzer_naive_loop_stops_too_early() {
    let _w = Watchdog::new("demo downloader-analyzer naive", Duration::from_secs(60));
    let dir = TestDir::new("demo-da-naive");
    // 300 ms between downloads: after item 1 the queue is empty for a while,
    // and the article's `if q.empty(): break` stops there.
    let out = run_demo(
        &dir,
        "downloader-analyzer",
        &["run", "--naive", "--items", "3", "--delay-ms", "300"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("analyzed 1 items"), "{stdout}");
    assert!(
        stdout.contains("main: 2 item(s) were never analyzed"),
        "{stdout}"
    );
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}

#[test]
fn downloader_and_analyzer_meet_by_queue_name() {
    let _w = Watchdog::new(
        "demo downloader-analyzer terminals",
        Duration::from_secs(60),
    );
    let dir = TestDir::new("demo-da-name");
    // The analyzer starts first (as in a second terminal) and waits.
    let analyzer = mq_tests::die_with_test(&mut Command::new(demo("downloader-analyzer")))
        .args(["analyze", "--queue", "lesson"])
        .env("MQ_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut analyzer = ChildGuard::new(analyzer);
    let out = run_demo(
        &dir,
        "downloader-analyzer",
        &[
            "download",
            "--queue",
            "lesson",
            "--items",
            "50",
            "--delay-ms",
            "1",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let mut stdout = String::new();
    analyzer
        .child()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(analyzer.child().wait().unwrap().success());
    assert!(
        stdout.contains("analyzed 50 items, sum of their numbers 1275"),
        "{stdout}"
    );
    assert!(
        dir.leftovers().is_empty(),
        "the analyzer removes the queue: {:?}",
        dir.leftovers()
    );
}

#[test]
fn pool_workers_runs_ten_tasks_on_three_reused_processes() {
    let _w = Watchdog::new("demo pool-workers", Duration::from_secs(60));
    let dir = TestDir::new("demo-pw");
    let out = run_demo(&dir, "pool-workers", &["--max-ms", "100", "--seed", "7"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("-----start-----") && stdout.contains("-----stop-----"),
        "{stdout}"
    );
    let ran: Vec<&str> = stdout.lines().filter(|l| l.starts_with("task ")).collect();
    assert_eq!(ran.len(), 10, "{stdout}");
    let mut pids: Vec<&str> = ran
        .iter()
        .map(|l| {
            l.split("process ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() <= 3, "a pool of 3: {pids:?}");
    assert!(stdout.contains("processes ran 10 tasks"), "{stdout}");
    assert!(dir.leftovers().is_empty(), "left: {:?}", dir.leftovers());
}
