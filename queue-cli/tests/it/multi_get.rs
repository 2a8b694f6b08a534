//! `mq get` on several queues: messages from whichever queue has one,
//! `--with-name`, `--follow` ending when all are closed, and the other
//! stop reasons across several queues.

use std::process::Stdio;
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog};

use crate::support::*;

#[test]
fn follow_on_three_queues_prints_from_whichever_and_ends_when_all_are_closed() {
    let _w = Watchdog::new("multi get follow", Duration::from_secs(60));
    let d = TestDir::new("cli-multi");
    for q in ["q1", "q2", "q3"] {
        run(&d, &["create", q], 0);
    }
    let follow = ChildGuard::new(
        mq_std(&d, &["get", "q1", "q2", "q3", "--follow", "--with-name"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mq get --follow"),
    );
    wait_until("the selector blocks", || {
        ["q1", "q2", "q3"]
            .iter()
            .all(|q| getters_waiting(&d, q) >= 1)
    });
    run(&d, &["put", "q2", "two"], 0);
    wait_until("q2 is drained", || getters_waiting(&d, "q2") >= 1);
    run(&d, &["put", "q3", "three"], 0);
    run(&d, &["close", "q3"], 0);
    run(&d, &["put", "q1", "one"], 0);
    run(&d, &["close", "q1"], 0);
    run(&d, &["close", "q2"], 0);
    let o = follow.take().wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "q2: two");
    lines.sort();
    assert_eq!(lines, vec!["q1: one", "q2: two", "q3: three"]);
    for q in ["q1", "q2", "q3"] {
        run(&d, &["rm", q], 0);
    }
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn counts_all_no_wait_and_timeouts_span_every_queue() {
    let d = TestDir::new("cli-multi-stop");
    run(&d, &["create", "a"], 0);
    run(&d, &["create", "b"], 0);
    run(&d, &["put", "b", "b1", "b2"], 0);
    run(&d, &["put", "a", "a1"], 0);
    // -n takes from any queue.
    let o = run(&d, &["get", "a", "b", "-n", "2"], 0);
    assert_eq!(stdout(&o).lines().count(), 2);
    // --all takes what is left everywhere, then stops.
    let o = run(&d, &["get", "a", "b", "--all"], 0);
    assert_eq!(stdout(&o).lines().count(), 1);
    let o = run(&d, &["get", "a", "b", "--no-wait"], 1);
    assert!(
        stderr(&o).contains(r#"queues "a", "b" are empty"#),
        "{}",
        stderr(&o)
    );
    let o = run(&d, &["get", "a", "b", "--timeout", "200ms"], 1);
    assert!(
        stderr(&o).contains(r#"no message in queues "a", "b" within 200ms"#),
        "{}",
        stderr(&o)
    );
    // Without a name: a usage error. --with-name conflicts with --raw.
    run(&d, &["get"], 2);
    run(&d, &["get", "a", "--with-name", "--raw"], 2);
    // A queue that does not exist is named.
    let o = run(&d, &["get", "a", "nope"], 2);
    assert!(stderr(&o).contains("\"nope\""), "{}", stderr(&o));
    run(&d, &["close", "a"], 0);
    run(&d, &["close", "b"], 0);
    let o = run(&d, &["get", "a", "b", "--follow"], 1);
    assert!(
        stderr(&o).contains("are closed and drained"),
        "{}",
        stderr(&o)
    );
    run(&d, &["rm", "a", "b"], 0);
}
