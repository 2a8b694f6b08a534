//! Delivery control from the shell: `mq create --priorities --lease-timeout
//! --max-deliveries`, `mq put --priority`, what `mq inspect` shows, and
//! `mq get` keeping its lease while a slow reader drains its output.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use mq_tests::{TestDir, Watchdog};
use queue_core::Queue;
use serde_json::Value;

use crate::support::*;

#[test]
fn priorities_from_the_shell() {
    let _w = Watchdog::new("priorities", Duration::from_secs(60));
    let d = TestDir::new("cli-prio");
    let o = run(
        &d,
        &["create", "jobs", "--priorities", "3", "--capacity", "4"],
        0,
    );
    assert!(
        stdout(&o).contains("in each of 3 priority levels"),
        "{}",
        stdout(&o)
    );
    run(&d, &["put", "jobs", "low"], 0);
    run(&d, &["put", "jobs", "--priority", "2", "urgent"], 0);
    run(&d, &["put", "jobs", "-p", "1", "mid"], 0);
    let o = run(&d, &["put", "jobs", "-p", "3", "nope"], 2);
    assert!(stderr(&o).contains("0 to 2"), "{}", stderr(&o));
    let o = run(&d, &["inspect", "jobs"], 0);
    let text = stdout(&o);
    assert!(
        text.contains("priority 2 (1 waiting, served first)"),
        "{text}"
    );
    assert!(text.contains("priority 0 (1 waiting)"), "{text}");
    let o = run(&d, &["inspect", "jobs", "--json"], 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["priorities"], 3);
    assert_eq!(v["levels"].as_array().unwrap().len(), 3);
    let o = run(&d, &["get", "jobs", "-n", "3"], 0);
    assert_eq!(stdout(&o), "urgent\nmid\nlow\n");
}

#[test]
fn delivery_rules_are_stored_and_shown() {
    let _w = Watchdog::new("delivery rules", Duration::from_secs(60));
    let d = TestDir::new("cli-rules");
    let o = run(
        &d,
        &[
            "create",
            "jobs",
            "--lease-timeout",
            "1500ms",
            "--max-deliveries",
            "4",
        ],
        0,
    );
    assert!(
        stdout(&o).contains("leases expire after 1s 500ms"),
        "{}",
        stdout(&o)
    );
    let q = Queue::open_in(d.path(), "jobs").unwrap();
    assert_eq!(q.lease_timeout(), Some(Duration::from_millis(1500)));
    assert_eq!(q.max_deliveries(), Some(4));
    q.put(b"m").unwrap();
    let lease = q.get_lease().unwrap();
    let o = run(&d, &["inspect", "jobs"], 0);
    let text = stdout(&o);
    assert!(text.contains("delivered 5 times"), "{text}");
    assert!(text.contains("(delivery 1, expires in"), "{text}");
    let o = run(&d, &["inspect", "jobs", "--json"], 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lease_timeout_ms"], 1500);
    assert_eq!(v["max_deliveries"], 4);
    assert_eq!(v["leases"][0]["deliveries"], 1);
    lease.ack().unwrap();
    // --exist-ok names the settings that differ.
    let o = run(&d, &["create", "jobs", "--exist-ok"], 0);
    assert!(
        stderr(&o).contains("lease timeout 1s 500ms"),
        "{}",
        stderr(&o)
    );
    drop(q);
}

/// `mq get` writes a message into a pipe nobody reads for longer than the
/// lease timeout: it renews the lease meanwhile, so nobody else gets the
/// message and the ack succeeds.
#[test]
fn get_renews_its_lease_while_a_slow_reader_drains_it() {
    let _w = Watchdog::new("get renews", Duration::from_secs(60));
    let d = TestDir::new("cli-renew");
    run(
        &d,
        &[
            "create",
            "jobs",
            "--lease-timeout",
            "300ms",
            "--max-msg-size",
            "1MiB",
            "--capacity",
            "2",
        ],
        0,
    );
    let q = Queue::open_in(d.path(), "jobs").unwrap();
    let big = vec![b'x'; 1 << 20]; // far more than a pipe holds
    q.put(&big).unwrap();
    q.put(b"second").unwrap();
    let mut child = mq_std(&d, &["get", "jobs", "--raw"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    out.read_exact(&mut first).unwrap(); // it is writing now
    // Longer than the timeout, while another handle looks for overdue leases.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        q.recover();
    }
    assert_eq!(
        q.try_get().unwrap(),
        b"second",
        "the big one is still leased"
    );
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len() + 1, big.len());
    assert!(child.wait().unwrap().success());
    let s = q.stats();
    assert_eq!((s.expired, s.total_got, s.len), (0, 2, 0));
}

#[test]
fn dead_letters_from_the_shell() {
    let _w = Watchdog::new("dead letters", Duration::from_secs(60));
    let d = TestDir::new("cli-dead");
    let o = run(
        &d,
        &[
            "create",
            "jobs",
            "--max-deliveries",
            "1",
            "--dead-letter",
            "jobs.dead",
        ],
        0,
    );
    let text = stdout(&o);
    assert!(
        text.contains(
            "moved to dead-letter queue \"jobs.dead\" instead of being delivered 2 times"
        ),
        "{text}"
    );
    run(&d, &["put", "jobs", "poison"], 0);
    let q = Queue::open_in(d.path(), "jobs").unwrap();
    q.try_get_lease().unwrap().release(); // the one delivery allowed
    assert!(q.try_get().is_err(), "the second delivery moves it");
    drop(q);
    let text = stdout(&run(&d, &["inspect", "jobs"], 0));
    assert!(text.contains("1 poison messages dead-lettered"), "{text}");
    let text = stdout(&run(&d, &["inspect", "jobs.dead"], 0));
    assert!(text.contains("dead letters of \"jobs\""), "{text}");
    let v: Value =
        serde_json::from_slice(&run(&d, &["inspect", "jobs", "--json"], 0).stdout).unwrap();
    assert_eq!(
        (v["dead_lettered"].clone(), v["dead_letter"].clone()),
        (1.into(), "jobs.dead".into())
    );
    let v: Value =
        serde_json::from_slice(&run(&d, &["inspect", "jobs.dead", "--json"], 0).stdout).unwrap();
    assert_eq!(v["dead_letters_of"], "jobs");
    let o = run(&d, &["peek", "jobs.dead"], 0);
    assert_eq!(stdout(&o), "poison\n");
    assert!(
        stderr(&o).contains("a dead letter of queue \"jobs\", moved after 1 deliveries there"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&run(&d, &["get", "jobs.dead"], 0)), "poison\n");

    // Bad settings: each a clear error naming what is wrong.
    let o = run(&d, &["create", "a", "--dead-letter", "a.dead"], 2);
    assert!(stderr(&o).contains("--max-deliveries"), "{}", stderr(&o));
    let o = run(
        &d,
        &[
            "create",
            "b",
            "--max-deliveries",
            "2",
            "--dead-letter",
            "../x",
        ],
        2,
    );
    assert!(
        stderr(&o).contains("\"../x\" is not a queue name"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &d,
        &[
            "create",
            "c",
            "--max-deliveries",
            "2",
            "--dead-letter",
            "jobs.dead",
        ],
        2,
    );
    let e = stderr(&o);
    assert!(
        e.contains("\"jobs.dead\"") && e.contains("\"jobs\"") && e.contains("hint"),
        "{e}"
    );
    Queue::remove_in(d.path(), "jobs").unwrap();
    Queue::remove_in(d.path(), "jobs.dead").unwrap();
}
