//! `put` in one process and `get` in another: blocking, timeouts and exit
//! codes, every input form, binary payloads, JSON output.

use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mq_tests::{ChildGuard, TestDir, Watchdog};

use crate::support::*;

#[test]
fn put_in_one_process_get_in_another() {
    let d = TestDir::new("cli-putget");
    let o = run(&d, &["create", "jobs"], 0);
    assert!(stdout(&o).contains("created queue \"jobs\""));
    run(&d, &["put", "jobs", "first", "second"], 0);
    let o = run(&d, &["get", "jobs"], 0);
    assert_eq!(stdout(&o), "first\n");
    let o = run(&d, &["get", "jobs", "-n", "1"], 0);
    assert_eq!(stdout(&o), "second\n");
    run(&d, &["rm", "jobs"], 0);
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn blocked_get_is_released_by_a_later_put() {
    let _w = Watchdog::new("blocked get", Duration::from_secs(60));
    let d = TestDir::new("cli-block");
    run(&d, &["create", "q"], 0);
    let child = ChildGuard::new(
        mq_std(&d, &["get", "q"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mq get"),
    );
    wait_until("the getter blocks", || getters_waiting(&d, "q") >= 1);
    run(&d, &["put", "q", "late news"], 0);
    let o = child.take().wait_with_output().expect("wait");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "late news\n");
    // A second getter waiting with --follow sees every later put, then the close.
    let follow = ChildGuard::new(
        mq_std(&d, &["get", "q", "--follow"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn mq get --follow"),
    );
    wait_until("the follower blocks", || getters_waiting(&d, "q") >= 1);
    run(&d, &["put", "q", "a", "b", "c"], 0);
    run(&d, &["close", "q"], 0);
    let o = follow.take().wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "a\nb\nc\n");
}

#[test]
fn timeouts_and_exit_codes() {
    let d = TestDir::new("cli-timeouts");
    run(&d, &["create", "q", "--capacity", "1"], 0);
    let start = Instant::now();
    let o = run(&d, &["get", "q", "--timeout", "300ms"], 1);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        stderr(&o).contains("no message in queue \"q\" within 300ms"),
        "{}",
        stderr(&o)
    );
    let o = run(&d, &["get", "q", "--no-wait"], 1);
    assert!(stderr(&o).contains("queue \"q\" is empty"));
    run(&d, &["get", "q", "--all"], 1);
    run(&d, &["peek", "q"], 1);
    run(&d, &["put", "q", "only"], 0);
    let o = run(&d, &["put", "q", "more", "--timeout", "200ms"], 1);
    assert!(stderr(&o).contains("stayed full"), "{}", stderr(&o));
    let o = run(&d, &["put", "q", "more", "--no-wait"], 1);
    assert!(stderr(&o).contains("is full"));
    let o = run(&d, &["peek", "q"], 0);
    assert_eq!(stdout(&o), "only\n");
    // Fewer than asked for is still a success once something came.
    let o = run(&d, &["get", "q", "-n", "3", "--timeout", "100ms"], 0);
    assert_eq!(stdout(&o), "only\n");
    assert!(stderr(&o).contains("got 1 of 3"), "{}", stderr(&o));
    run(&d, &["close", "q"], 0);
    // Closing twice is not an error; putting into a closed queue is.
    let o = run(&d, &["close", "q"], 0);
    assert!(stderr(&o).contains("already closed"));
    let o = run(&d, &["put", "q", "x"], 2);
    assert!(stderr(&o).contains("is closed"));
    let o = run(&d, &["get", "q"], 1);
    assert!(stderr(&o).contains("closed and drained"));
    let o = run(&d, &["get", "q", "--follow"], 1);
    assert!(stdout(&o).is_empty());
}

#[test]
fn lines_file_and_stdin() {
    let d = TestDir::new("cli-inputs");
    run(&d, &["create", "q"], 0);
    run_stdin(&d, &["put", "q", "--lines"], b"one\ntwo\n\nfour");
    let o = run(&d, &["get", "q", "--all", "--json"], 0);
    let got: Vec<Vec<u8>> = json_lines(&o).iter().map(decode).collect();
    assert_eq!(got, [&b"one"[..], b"two", b"", b"four"]);

    // All of stdin is one message, newlines included.
    run_stdin(&d, &["put", "q"], b"line 1\nline 2\n");
    let o = run(&d, &["get", "q", "--raw"], 0);
    assert_eq!(o.stdout, b"line 1\nline 2\n");

    // --file, repeated: one message per file.
    let f1 = d.path().join("a.bin");
    let f2 = d.path().join("b.txt");
    std::fs::write(&f1, [0u8, 1, 2, 255]).unwrap();
    std::fs::write(&f2, "text file").unwrap();
    run(
        &d,
        &[
            "put",
            "q",
            "--file",
            f1.to_str().unwrap(),
            "--file",
            f2.to_str().unwrap(),
        ],
        0,
    );
    let o = run(&d, &["get", "q", "--raw"], 0);
    assert_eq!(o.stdout, [0u8, 1, 2, 255]);
    let o = run(&d, &["get", "q"], 0);
    assert_eq!(stdout(&o), "text file\n");
    // A missing file names itself.
    let o = run(&d, &["put", "q", "--file", "/nonexistent/x"], 2);
    assert!(stderr(&o).contains("/nonexistent/x"));
    std::fs::remove_file(f1).unwrap();
    std::fs::remove_file(f2).unwrap();
}

#[test]
fn binary_payloads_round_trip_byte_for_byte() {
    let d = TestDir::new("cli-binary");
    run(&d, &["create", "q"], 0);
    let all: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    // stdin -> --raw
    run_stdin(&d, &["put", "q"], &all);
    let o = run(&d, &["get", "q", "--raw"], 0);
    assert_eq!(o.stdout, all);
    // stdin -> --json (base64)
    run_stdin(&d, &["put", "q"], &all);
    let o = run(&d, &["get", "q", "--json"], 0);
    let v = &json_lines(&o)[0];
    assert_eq!(v["encoding"], "base64");
    assert_eq!(v["bytes"], all.len());
    assert_eq!(decode(v), all);
    // A non-UTF-8 argument is one message too.
    let arg = std::ffi::OsStr::from_bytes(b"\xff\xfe caf\xc3\xa9");
    let o = mq(&d).arg("put").arg("q").arg(arg).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&d, &["get", "q", "--raw"], 0);
    assert_eq!(o.stdout, arg.as_bytes());
    // Default mode to a pipe: the bytes and a newline.
    run_stdin(&d, &["put", "q"], &all);
    let o = run(&d, &["get", "q"], 0);
    assert_eq!(o.stdout[..all.len()], all[..]);
    assert_eq!(o.stdout.len(), all.len() + 1);
    // An empty message is a message.
    run_stdin(&d, &["put", "q"], b"");
    let o = run(&d, &["get", "q", "--json"], 0);
    assert_eq!(json_lines(&o)[0]["bytes"], 0);
}

#[test]
fn json_output_parses() {
    let d = TestDir::new("cli-json");
    run(&d, &["create", "q"], 0);
    run(
        &d,
        &["put", "q", "plain", "quote \" and \\ and\nnewline", "grüße"],
        0,
    );
    let o = run(&d, &["peek", "q", "--json"], 0);
    assert_eq!(json_lines(&o)[0]["data"], "plain");
    let o = run(&d, &["get", "q", "-n", "3", "--json"], 0);
    let v = json_lines(&o);
    assert_eq!(v.len(), 3);
    assert_eq!(v[1]["data"], "quote \" and \\ and\nnewline");
    assert_eq!(v[2]["data"], "grüße");
    assert_eq!(v[2]["encoding"], "utf8");
    assert_eq!(v[2]["bytes"], "grüße".len());
}
