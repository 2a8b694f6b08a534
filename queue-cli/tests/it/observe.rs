//! `ls`, `inspect` and `watch`: JSON fields, blocked processes, plain lines
//! without a terminal.

use std::process::Stdio;
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog};
use serde_json::Value;

use crate::support::*;

#[test]
fn ls_and_inspect_json_fields() {
    let d = TestDir::new("cli-ls");
    run(
        &d,
        &[
            "create",
            "alpha",
            "--capacity",
            "8",
            "--max-msg-size",
            "1KiB",
            "--mode",
            "660",
        ],
        0,
    );
    run(
        &d,
        &[
            "create",
            "beta",
            "--max-msg-size",
            "1MiB",
            "--capacity",
            "2",
        ],
        0,
    );
    run(&d, &["put", "alpha", "x", "y", "z"], 0);
    run(&d, &["close", "beta"], 0);

    let o = run(&d, &["ls", "--json"], 0);
    let v: Value = serde_json::from_slice(&o.stdout).expect("ls --json");
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 2);
    let a = &list[0];
    assert_eq!(a["name"], "alpha");
    assert_eq!(a["ok"], true);
    assert_eq!(a["len"], 3);
    assert_eq!(a["capacity"], 8);
    assert_eq!(a["max_msg_size"], 1024);
    assert_eq!(a["mode"], "660");
    assert_eq!(a["closed"], false);
    assert_eq!(a["live_participants"], 0);
    assert_eq!(list[1]["name"], "beta");
    assert_eq!(list[1]["max_msg_size"], 1 << 20);
    assert_eq!(list[1]["closed"], true);
    let o = run(&d, &["ls"], 0);
    let text = stdout(&o);
    assert!(
        text.contains("NAME") && text.contains("alpha") && text.contains("3/8"),
        "{text}"
    );

    let o = run(&d, &["inspect", "alpha", "--json"], 0);
    let s: Value = serde_json::from_slice(&o.stdout).expect("inspect --json");
    for key in [
        "name",
        "path",
        "segment_size",
        "capacity",
        "max_msg_size",
        "len",
        "head",
        "tail",
        "total_put",
        "total_got",
        "producers_waiting",
        "consumers_waiting",
        "redelivered",
        "discarded_partial",
        "in_flight",
        "closed",
        "created",
        "creator_pid",
        "mode",
        "owner_uid",
        "participants",
        "slots",
        "slot_counts",
    ] {
        assert!(s.get(key).is_some(), "inspect --json lacks {key}: {s}");
    }
    assert_eq!(s["len"], 3);
    assert_eq!(s["head"], 0);
    assert_eq!(s["tail"], 3);
    assert_eq!(s["total_put"], 3);
    assert_eq!(s["slots"], "###.....");
    assert_eq!(s["slot_counts"]["ready"], 3);
    // inspect looks through a read-only observer, which is no participant:
    // nobody is listed as is_self (the queue has no handle open now).
    let participants = s["participants"].as_array().unwrap();
    assert!(
        participants.iter().all(|p| p["is_self"] == false),
        "the inspecting process is not a participant: {s}"
    );

    let o = run(&d, &["inspect", "alpha"], 0);
    let text = stdout(&o);
    assert!(text.contains("ring of 8 slots"), "{text}");
    assert!(text.contains("|###.....|"), "{text}");
    assert!(text.contains("H  T"), "head and tail marked: {text}");
}

#[test]
fn inspect_lists_blocked_processes_with_pids() {
    let _w = Watchdog::new("inspect blocked", Duration::from_secs(60));
    let d = TestDir::new("cli-inspect-blocked");
    run(&d, &["create", "q"], 0);
    let getter = ChildGuard::new(
        mq_std(&d, &["get", "q", "--timeout", "20s"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the getter blocks", || getters_waiting(&d, "q") >= 1);
    let o = run(&d, &["inspect", "q"], 0);
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.contains("in get:"))
        .unwrap_or_default();
    assert!(line.contains(&format!("pid {}", getter.id())), "{text}");
    let o = run(&d, &["ls", "--json"], 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["live_participants"], 1);
    assert_eq!(v[0]["pids"][0], getter.id());
}

#[test]
fn watch_without_a_terminal_prints_plain_lines() {
    let d = TestDir::new("cli-watch");
    run(&d, &["create", "q", "--capacity", "4"], 0);
    run(&d, &["put", "q", "a", "b", "c"], 0);
    let o = run(&d, &["watch", "q", "--count", "3", "--interval", "50ms"], 0);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in lines {
        assert!(!l.contains('\x1b'), "no escape codes off a terminal: {l:?}");
        assert!(
            l.contains("queue=q") && l.contains("len=3") && l.contains("capacity=4"),
            "{l}"
        );
    }
    // Without --count it ends when the queue is removed.
    let child = ChildGuard::new(
        mq_std(&d, &["watch", "q", "--interval", "50ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    run(&d, &["rm", "--force", "q"], 0);
    let _w = Watchdog::new("watch ends on rm", Duration::from_secs(30));
    let o = child.take().wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(stderr(&o).contains("was removed"), "{}", stderr(&o));
}
