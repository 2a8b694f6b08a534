//! `mq` on `nats://HOST:PORT/NAME` queues and `mq bridge`, against a real
//! `nats-server -js` per test (the helper is queue-net's test support).

#[path = "../../../queue-net/tests/support/mod.rs"]
pub(crate) mod nats;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use mq_tests::TestDir;
use nats::{NatsServer, Watchdog, spawn_guarded, unique};

use crate::support::{mq_std, run, stderr, stdout, wait_until};

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

#[test]
fn a_killed_getters_message_is_redelivered_after_the_ack_wait() {
    let _w = Watchdog::new("redelivery", Duration::from_secs(120));
    let server = NatsServer::start();
    let dir = TestDir::new("net-redeliver");
    let url = server.queue_url(&unique("jobs"));
    let url = url.as_str();
    run(
        &dir,
        &[
            "create",
            url,
            "--max-msg-size",
            "512KiB",
            "--ack-wait",
            "1s",
        ],
        0,
    );
    let o = run(&dir, &["inspect", url], 0);
    assert!(stdout(&o).contains("ack wait       1s"), "{}", stdout(&o));
    // Larger than a pipe holds: `mq get` takes the lease, starts writing
    // into a pipe nobody reads and blocks there, lease held, not yet acked.
    let job = vec![b'j'; 256 * 1024];
    let file = dir.path().join("job");
    std::fs::write(&file, &job).unwrap();
    run(&dir, &["put", url, "--file", file.to_str().unwrap()], 0);
    let mut getter = spawn_guarded(
        mq_std(&dir, &["get", url, "--raw"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let q = queue_net::RemoteQueue::open(url).unwrap();
    wait_until("mq get holds the lease", || {
        q.stats().is_ok_and(|s| s.in_flight == 1)
    });
    getter.kill().unwrap(); // SIGKILL: no nak, no ack
    getter.wait().unwrap();
    // Another getter receives it once the ack wait has run out.
    let lease = q.get_lease_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(&*lease, &job[..]);
    assert_eq!(
        lease.deliveries(),
        2,
        "the killed getter's delivery was the first"
    );
    lease.ack().unwrap();
    let o = run(&dir, &["inspect", url, "--json"], 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["len"].as_u64(), v["in_flight"].as_u64()),
        (Some(0), Some(0))
    );
}

/// Runs `mq args` with `input` on stdin; returns (exit code, stdout, stderr).
fn outcome(dir: &TestDir, args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let o = crate::support::mq(dir)
        .args(args)
        .write_stdin(input)
        .output()
        .expect("run mq");
    (o.status.code(), stdout(&o), stderr(&o))
}

#[test]
fn batched_put_lines_and_get_n_print_and_exit_as_for_a_local_queue() {
    let _w = Watchdog::new("remote batches", Duration::from_secs(120));
    let server = NatsServer::start();
    let dir = TestDir::new("net-batches");
    let url = server.queue_url(&unique("jobs"));
    let many: String = (0..998).map(|i| format!("line {i}\n")).collect();
    let too_long = format!("h\n{}\n", "x".repeat(20));
    // The same session on a local queue and on a remote one (which takes
    // batches: put_many underneath, pulls of up to 256).
    let session = |q: &str| -> Vec<(Option<i32>, String, String)> {
        let steps: &[(&[&str], &str)] = &[
            (
                &["create", q, "--capacity", "1000", "--max-msg-size", "16"],
                "",
            ),
            (&["put", q, "--lines"], &many),
            (&["put", q, "--lines", "--no-wait"], "d\ne\nf\ng\n"),
            (&["get", q, "-n", "300"], ""),
            (&["put", q, "--lines"], &too_long),
            (&["get", q, "-n", "1000", "--timeout", "300ms"], ""),
            (&["put", q, "a1", "a2"], ""),
            (&["get", q, "--all"], ""),
            (&["get", q, "--all"], ""),
            (&["put", q, "z"], ""),
            (&["close", q], ""),
            (&["get", q, "-n", "3"], ""),
            (&["put", q, "--lines"], "late\n"),
        ];
        steps
            .iter()
            .map(|(args, input)| {
                let (code, out, err) = outcome(&dir, args, input);
                (code, out.replace(q, "Q"), err.replace(q, "Q"))
            })
            .collect()
    };
    let local = session("jobs");
    let remote = session(&url);
    // Only `create` prints what differs (the ack wait).
    for (i, (l, r)) in local.iter().zip(&remote).enumerate().skip(1) {
        assert_eq!(l, r, "step {i}");
    }
    let codes: Vec<_> = remote.iter().map(|s| s.0.unwrap()).collect();
    assert_eq!(codes, [0, 0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    assert!(remote[2].2.contains("is full"), "{}", remote[2].2);
    assert_eq!(
        remote[3].1,
        many.lines()
            .take(300)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert!(
        remote[4].2.contains("the 1 lines before it were put"),
        "{}",
        remote[4].2
    );
    assert!(
        remote[5].2.contains("got 701 of 1000 messages"),
        "{}",
        remote[5].2
    );
    assert!(
        remote[5].1.ends_with("line 997\nd\ne\nh\n"),
        "{}",
        remote[5].1
    );
    assert_eq!(remote[7].1, "a1\na2\n");
    assert!(
        remote[11].2.contains("got 1 of 3 messages"),
        "{}",
        remote[11].2
    );
    assert!(remote[12].2.contains("is closed"), "{}", remote[12].2);
}

#[test]
fn put_lines_on_a_url_sends_each_line_as_it_comes() {
    let _w = Watchdog::new("remote --lines stream", Duration::from_secs(120));
    let server = NatsServer::start();
    let dir = TestDir::new("net-lines-stream");
    let url = server.queue_url(&unique("log"));
    run(&dir, &["create", &url], 0);
    let q = queue_net::RemoteQueue::open(&url).unwrap();
    let mut put = spawn_guarded(mq_std(&dir, &["put", &url, "--lines"]).stdin(Stdio::piped()));
    let mut stdin = put.stdin.take().unwrap();
    // As from `tail -f`: a line, then a half line; the first is sent
    // while the second is still being written.
    stdin.write_all(b"first\nsec").unwrap();
    stdin.flush().unwrap();
    wait_until("the first line is in the queue", || {
        q.len().is_ok_and(|n| n == 1)
    });
    stdin.write_all(b"ond\n").unwrap();
    drop(stdin);
    assert!(put.wait().unwrap().success());
    assert_eq!(q.get_many(10).unwrap(), [&b"first"[..], b"second"]);
}
