//! Ctrl-C (exit 130), a reader that goes away (broken pipe), a terminal on
//! stdout (no binary, the cursor restored).

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog};
use serde_json::Value;

use crate::support::*;

#[test]
fn ctrl_c_during_a_blocked_get_exits_130_and_keeps_the_queue_healthy() {
    let _w = Watchdog::new("ctrl-c", Duration::from_secs(60));
    let d = TestDir::new("cli-sigint");
    run(&d, &["create", "q"], 0);
    let mut child = ChildGuard::new(
        mq_std(&d, &["get", "q"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_until("the getter blocks", || getters_waiting(&d, "q") >= 1);
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let status = child.child().wait().unwrap();
    assert_eq!(status.code(), Some(130));
    run(&d, &["put", "q", "after"], 0);
    let o = run(&d, &["get", "q", "--timeout", "5s"], 0);
    assert_eq!(stdout(&o), "after\n");
    let o = run(&d, &["inspect", "q", "--json"], 0);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["len"], 0);
    assert_eq!(s["in_flight"], 0);
    assert_eq!(s["live_participants"], 0);
}

#[test]
fn broken_pipe_exits_quietly_while_waiting() {
    let _w = Watchdog::new("broken pipe", Duration::from_secs(60));
    let d = TestDir::new("cli-epipe");
    run(&d, &["create", "q"], 0);
    run(&d, &["put", "q", "one"], 0);
    let mut child = ChildGuard::new(
        mq_std(&d, &["get", "q", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.child().stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "one\n");
    drop(out); // the reader goes away, as `head -1` does
    let mut err = String::new();
    let mut c = child.take();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = c.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(err.is_empty(), "quiet exit, got {err:?}");
    // Nothing was lost: a later put is there for the next getter.
    run(&d, &["put", "q", "two"], 0);
    let o = run(&d, &["get", "q", "--no-wait"], 0);
    assert_eq!(stdout(&o), "two\n");
}

// ------------------------------------------------------------ a terminal

/// Runs mq with stdout on a pseudo-terminal; returns (exit code, what the
/// terminal showed).
fn run_on_pty(d: &TestDir, args: &[&str]) -> (Option<i32>, String) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; the other arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = ChildGuard::new(
        mq_std(d, args)
            .stdout(Stdio::from(slave))
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // EIO once the child (the last holder of the slave) has exited.
        while let Ok(n) = f.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf
    });
    let status = child.child().wait().unwrap();
    let shown = reader.join().unwrap();
    (status.code(), String::from_utf8_lossy(&shown).into_owned())
}

#[test]
fn a_terminal_gets_no_binary_and_watch_restores_the_cursor() {
    let _w = Watchdog::new("pty", Duration::from_secs(60));
    let d = TestDir::new("cli-pty");
    run(&d, &["create", "q"], 0);
    run_stdin(&d, &["put", "q"], b"\x1b[2J\xff\x00binary");
    let (code, _) = run_on_pty(&d, &["get", "q"]);
    assert_eq!(code, Some(2), "binary refused on a terminal");
    // ... and it is still in the queue, for --raw.
    let (code, shown) = run_on_pty(&d, &["get", "q", "--json"]);
    assert_eq!(code, Some(0));
    assert!(shown.contains("\"encoding\":\"base64\""), "{shown:?}");
    run(&d, &["put", "q", "text is fine"], 0);
    let (code, shown) = run_on_pty(&d, &["get", "q"]);
    assert_eq!(code, Some(0));
    assert!(shown.contains("text is fine"));

    let (code, shown) = run_on_pty(&d, &["watch", "q", "--count", "2", "--interval", "50ms"]);
    assert_eq!(code, Some(0));
    assert!(shown.contains("\x1b[?25l"), "cursor hidden");
    assert!(
        shown.ends_with("\x1b[?25h"),
        "cursor shown again at the end: {shown:?}"
    );
    assert!(shown.contains("ring of 1024 slots"), "{shown:?}");
}
