//! `mq` on `nats://HOST:PORT/NAME` queues and `mq bridge`, against a real
//! `nats-server -js` per test (the helper is queue-net's test support).

#[path = "../../../queue-net/tests/support/mod.rs"]
mod nats;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use mq_tests::TestDir;
use nats::{NatsServer, Watchdog, spawn_guarded, unique};

use crate::support::{mq_std, run, stderr, stdout};

#[test]
fn the_verbs_take_a_url() {
    let _w = Watchdog::new("mq on a url", Duration::from_secs(120));
    let server = NatsServer::start();
    let dir = TestDir::new("net-verbs");
    let url = server.queue_url(&unique("jobs"));
    let url = url.as_str();
    let o = run(
        &dir,
        &[
            "create",
            url,
            "--capacity",
            "2",
            "--max-msg-size",
            "1KiB",
            "--ack-wait",
            "1s",
        ],
        0,
    );
    assert!(
        stdout(&o).contains("2 messages of at most 1024 bytes, ack wait 1s"),
        "{}",
        stdout(&o)
    );
    run(&dir, &["create", url, "--exist-ok"], 0);
    let o = run(&dir, &["create", url], 2);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    run(&dir, &["put", url, "one", "two"], 0);
    let o = run(&dir, &["put", url, "three", "--no-wait"], 1);
    assert!(stderr(&o).contains("is full"), "{}", stderr(&o));
    let o = run(&dir, &["inspect", url], 0);
    assert!(
        stdout(&o).contains("messages       2 of 2"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("ack wait       1s"), "{}", stdout(&o));
    let o = run(&dir, &["inspect", url, "--json"], 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["len"].as_u64(), v["capacity"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(stdout(&run(&dir, &["peek", url], 0)), "one\n");
    assert_eq!(stdout(&run(&dir, &["get", url], 0)), "one\n");
    let o = run(&dir, &["ls", &server.url()], 0);
    assert!(stdout(&o).contains(url), "{}", stdout(&o));
    assert_eq!(stdout(&run(&dir, &["get", url, "--all"], 0)), "two\n");
    let o = run(&dir, &["get", url, "--no-wait"], 1);
    assert!(stderr(&o).contains("is empty"), "{}", stderr(&o));
    run(&dir, &["get", url, "--timeout", "200ms"], 1);
    run(&dir, &["put", url, "last"], 0);
    run(&dir, &["close", url], 0);
    let o = run(&dir, &["put", url, "late"], 2);
    assert!(stderr(&o).contains("is closed"), "{}", stderr(&o));
    assert_eq!(stdout(&run(&dir, &["get", url, "--follow"], 0)), "last\n");
    let o = run(&dir, &["get", url], 1);
    assert!(stderr(&o).contains("closed and drained"), "{}", stderr(&o));
    run(&dir, &["rm", url], 0);
    let o = run(&dir, &["inspect", url], 2);
    assert!(
        stderr(&o).contains(&format!("not found (create it with 'mq create {url}')")),
        "{}",
        stderr(&o)
    );
    run(&dir, &["rm", "--force", url], 0);
}

#[test]
fn an_unreachable_server_is_named_with_a_hint() {
    let dir = TestDir::new("net-unreachable");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}/jobs");
    let o = run(&dir, &["put", &url, "x"], 2);
    assert_eq!(
        stderr(&o),
        format!("mq: cannot reach nats://127.0.0.1:{port} (is nats-server -js running?)\n")
    );
    let o = run(&dir, &["get", "nats://127.0.0.1:1/bad name"], 2);
    assert!(
        stderr(&o).contains("invalid queue name \"bad name\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn two_bridges_join_two_queue_directories_and_close_propagates() {
    let _w = Watchdog::new("mq bridge", Duration::from_secs(120));
    let server = NatsServer::start();
    let (a, b) = (TestDir::new("net-a"), TestDir::new("net-b"));
    let url = server.queue_url(&unique("hub"));
    run(&a, &["create", "jobs"], 0);
    run(&b, &["create", "jobs"], 0);
    run(&a, &["create", &url], 0);
    let mut out = spawn_guarded(mq_std(&a, &["bridge", "jobs", &url]).stderr(Stdio::piped()));
    let mut back = spawn_guarded(mq_std(&b, &["bridge", &url, "jobs"]).stderr(Stdio::piped()));
    let consumer = spawn_guarded(
        mq_std(&b, &["get", "jobs", "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut producer = spawn_guarded(mq_std(&a, &["put", "jobs", "--lines"]).stdin(Stdio::piped()));
    let lines: String = (0..1000).map(|i| format!("job {i}\n")).collect();
    producer
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(producer.wait().unwrap().success());
    run(&a, &["close", "jobs"], 0);
    let got = consumer.wait_with_output().unwrap();
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(stdout(&got), lines, "every message, in order");
    assert!(out.wait().unwrap().success());
    assert!(back.wait().unwrap().success());
    let mut note = String::new();
    std::io::Read::read_to_string(&mut back.stderr.take().unwrap(), &mut note).unwrap();
    assert!(note.contains("moved 1000 messages"), "{note}");
    let o = run(&a, &["inspect", &url, "--json"], 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["closed"], true);
    let _ = out.stderr.take();
}
