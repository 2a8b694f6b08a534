//! The `mq` command end to end: put in one process and get in another,
//! blocking and timeouts, exit codes, every input form, binary payloads,
//! JSON output, ls/inspect/watch/rm/close, bad inputs, permissions, Ctrl-C,
//! broken pipes, a terminal, the demo and the generated man page.
//!
//! The `mq` binary belongs to another package, so cargo does not build it
//! for these tests nor tell us its path (`CARGO_BIN_EXE_*` is only set for
//! the same package's binaries). `mq_bin` therefore asks the cargo that runs
//! the tests to build it into the same target directory (a no-op when it is
//! up to date) and uses `target/<profile>/mq`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use mq_tests::{ChildGuard, TestDir, Watchdog, kill9};
use queue_core::Queue;
use serde_json::Value;

/// The `mq` executable, built on first use.
fn mq_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/it-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target dir");
        let bin = profile_dir.join("mq");
        if let Some(cargo) = std::env::var_os("CARGO") {
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev",
                Some(p) => p,
            };
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let out = StdCommand::new(cargo)
                .current_dir(&workspace)
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "queue-cli",
                    "--bin",
                    "mq",
                    "--profile",
                    profile,
                ])
                .arg("--target-dir")
                .arg(target_dir)
                .stdin(Stdio::null())
                .output()
                .expect("run cargo build for mq");
            assert!(
                out.status.success(),
                "cargo build -p queue-cli failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            bin.exists(),
            "{} not found: build it with 'cargo build -p queue-cli'",
            bin.display()
        );
        bin
    })
}

/// `mq` with `MQ_DIR` pointing at the test's directory and a time limit.
fn mq(dir: &TestDir) -> Command {
    let mut c = Command::new(mq_bin());
    c.env("MQ_DIR", dir.path()).timeout(Duration::from_secs(30));
    c
}

/// The same as a std Command, for children that run alongside the test.
fn mq_std(dir: &TestDir, args: &[&str]) -> StdCommand {
    let mut c = StdCommand::new(mq_bin());
    c.env("MQ_DIR", dir.path()).args(args);
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `mq args` and returns its output, checking the exit code.
#[track_caller]
fn run(dir: &TestDir, args: &[&str], code: i32) -> Output {
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
fn run_stdin(dir: &TestDir, args: &[&str], input: &[u8]) -> Output {
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
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
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
fn getters_waiting(dir: &TestDir, name: &str) -> usize {
    Queue::open_in(dir.path(), name)
        .map(|q| q.stats().consumers_waiting)
        .unwrap_or(0)
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

fn decode(v: &Value) -> Vec<u8> {
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

// ------------------------------------------------------------------ put/get

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

// ------------------------------------------------------- inspect, ls, watch

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

// ------------------------------------------------------------------ rm

#[test]
fn rm_refuses_non_queues_and_queues_in_use() {
    let _w = Watchdog::new("rm", Duration::from_secs(60));
    let d = TestDir::new("cli-rm");
    std::fs::write(d.path().join("mq.notes"), "my notes, not a queue").unwrap();
    let o = run(&d, &["rm", "notes"], 2);
    assert!(stderr(&o).contains("not a queue segment"), "{}", stderr(&o));
    let o = run(&d, &["rm", "--force", "notes"], 2);
    assert!(stderr(&o).contains("not a queue segment"), "{}", stderr(&o));
    assert!(d.path().join("mq.notes").exists());

    run(&d, &["create", "busy"], 0);
    let getter = ChildGuard::new(
        mq_std(&d, &["get", "busy"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the getter blocks", || getters_waiting(&d, "busy") >= 1);
    let o = run(&d, &["rm", "busy"], 2);
    let err = stderr(&o);
    assert!(
        err.contains("in use by 1 live process") && err.contains(&getter.id().to_string()),
        "{err}"
    );
    assert!(err.contains("mq rm --force busy"), "{err}");
    run(&d, &["rm", "--force", "busy"], 0);
    drop(getter);

    // Several names: the good ones go, the exit code reports the bad one.
    run(&d, &["create", "a"], 0);
    run(&d, &["create", "b"], 0);
    let o = run(&d, &["rm", "a", "missing", "b"], 2);
    assert!(
        stderr(&o).contains("\"missing\" not found"),
        "{}",
        stderr(&o)
    );
    // --force ignores names that do not exist, like rm -f.
    run(&d, &["rm", "--force", "missing"], 0);
    std::fs::remove_file(d.path().join("mq.notes")).unwrap();
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn stale_queues_are_listed_and_removed_with_rm_stale() {
    let _w = Watchdog::new("rm --stale", Duration::from_secs(60));
    let d = TestDir::new("cli-stale");
    run(&d, &["create", "orphan"], 0);
    run(&d, &["create", "used"], 0);
    // A getter attached to "used" stays alive; "orphan"'s user is killed.
    let getter = ChildGuard::new(
        mq_std(&d, &["get", "used"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let crashed = ChildGuard::new(
        mq_std(&d, &["get", "orphan"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("both getters block", || {
        getters_waiting(&d, "used") >= 1 && getters_waiting(&d, "orphan") >= 1
    });
    kill9(crashed.id());
    drop(crashed);
    // An unfinished segment whose creator is gone counts as stale too.
    std::fs::File::create(d.path().join("mq.unfinished")).unwrap();

    let o = run(&d, &["ls", "--json"], 0);
    let rows: Vec<Value> = match serde_json::from_slice(&o.stdout).expect("ls --json parses") {
        Value::Array(a) => a,
        v => vec![v],
    };
    let live = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["live_participants"].as_u64())
    };
    assert_eq!(live("orphan"), Some(0), "{rows:?}");
    assert_eq!(live("used"), Some(1), "{rows:?}");

    let o = run(&d, &["rm", "--stale"], 0);
    let out = stdout(&o);
    assert!(out.contains("removed stale queue \"orphan\""), "{out}");
    assert!(out.contains("removed stale queue \"unfinished\""), "{out}");
    assert!(!out.contains("\"used\""), "{out}");
    assert!(d.path().join("mq.used").exists());
    let o = run(&d, &["rm", "--stale"], 0);
    assert!(stdout(&o).contains("no stale queues"), "{}", stdout(&o));
    run(&d, &["rm", "--force", "used"], 0);
    drop(getter);
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

// ------------------------------------------------------------------ errors

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let d = TestDir::new("cli-bad");
    run(&d, &["create", "jobs"], 0);
    std::fs::write(d.path().join("mq.junk"), vec![7u8; 8192]).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["get", "a/b"], "invalid queue name \"a/b\""),
        (&["put", ".hidden", "x"], "invalid queue name \".hidden\""),
        (&["create", "sp ace"], "invalid queue name"),
        (&["get", "nope"], "queue \"nope\" not found"),
        (&["get", "nope"], "(create it with 'mq create nope')"),
        (&["put", "nope", "x"], "queue \"nope\" not found"),
        (&["inspect", "nope"], "not found"),
        (&["peek", "nope"], "not found"),
        (&["close", "nope"], "not found"),
        (&["watch", "nope", "--count", "1"], "not found"),
        (&["rm", "nope"], "queue \"nope\" not found"),
        (&["create", "jobs"], "queue \"jobs\" already exists"),
        (
            &["create", "x", "--max-msg-size", "4XB"],
            "invalid size \"4XB\"",
        ),
        (&["create", "x", "--max-msg-size", "lots"], "invalid size"),
        (
            &["create", "x", "--capacity", "ten"],
            "invalid number \"ten\"",
        ),
        (&["create", "x", "--capacity", "0"], "capacity is 0"),
        (&["create", "x", "--mode", "800"], "invalid mode \"800\""),
        (
            &["get", "jobs", "--timeout", "5parsecs"],
            "invalid duration \"5parsecs\"",
        ),
        (
            &["get", "jobs", "--timeout", "1s", "--no-wait"],
            "cannot be used with",
        ),
        (&["get", "jobs", "--all", "--follow"], "cannot be used with"),
        (&["get", "jobs", "--raw", "--json"], "cannot be used with"),
        (&["get", "jobs", "-n", "0"], "must be at least 1"),
        (&["get", "junk"], "mq.junk is not a queue segment"),
        (&["inspect", "junk"], "not a queue segment"),
        (&["rm", "junk"], "not a queue segment"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let o = run(&d, args, 2);
        let err = stderr(&o);
        assert!(
            err.contains(want),
            "mq {args:?}: stderr lacks {want:?}:\n{err}"
        );
        assert!(o.stdout.is_empty(), "mq {args:?} printed to stdout");
    }
    // The exact wording of the oversize error, from an argument and from stdin.
    let big = "x".repeat(10240);
    let o = run(&d, &["put", "jobs", &big], 2);
    assert_eq!(
        stderr(&o).trim_end(),
        "mq: message is 10240 bytes, queue \"jobs\" takes at most 4096 (create it with --max-msg-size)"
    );
    let o = mq(&d)
        .args(["put", "jobs"])
        .write_stdin(big.as_bytes())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("message is 10240 bytes, queue \"jobs\" takes at most 4096"));
    // Nothing was put by the failed attempts.
    run(&d, &["get", "jobs", "--no-wait"], 1);
    // ls still lists the junk file, with its problem, and exits 0.
    let o = run(&d, &["ls", "--json"], 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let junk = v
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "junk")
        .expect("junk listed");
    assert_eq!(junk["ok"], false);
    assert!(
        junk["error"]
            .as_str()
            .unwrap()
            .contains("not a queue segment")
    );
    // --exist-ok makes create idempotent.
    run(&d, &["create", "jobs", "--exist-ok"], 0);
}

#[test]
fn permission_denied_on_another_users_queue() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run mq as another user");
        return;
    }
    use std::os::unix::process::CommandExt;
    let d = TestDir::new("cli-perm");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    run(&d, &["create", "private", "--mode", "600"], 0);
    run(&d, &["create", "shared", "--mode", "666"], 0);
    let as_nobody = |args: &[&str]| {
        let mut c = mq_std(&d, args);
        c.uid(65534).gid(65534).stdin(Stdio::null());
        c.output()
    };
    let o = match as_nobody(&["get", "private", "--no-wait"]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipped: cannot run mq as nobody: {e}");
            return;
        }
    };
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("permission denied on queue \"private\""),
        "{err}"
    );
    assert!(err.contains("mode 600"), "{err}");
    // A world-writable queue works for the other user.
    let o = as_nobody(&["put", "shared", "from nobody"]).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&d, &["get", "shared"], 0);
    assert_eq!(stdout(&o), "from nobody\n");
    // ls as that user lists both, the private one with its error.
    let o = as_nobody(&["ls", "--json"]).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let private = v
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "private")
        .unwrap();
    assert_eq!(private["ok"], false);
    assert_eq!(private["mode"], "600");
    assert!(
        private["error"]
            .as_str()
            .unwrap()
            .contains("permission denied")
    );
    run(&d, &["rm", "private", "shared"], 0);
}

// ------------------------------------------------- Ctrl-C and broken pipes

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

// ------------------------------------------------- demo, bench, docs

#[test]
fn demo_exits_0_and_leaves_nothing() {
    let _w = Watchdog::new("demo", Duration::from_secs(120));
    let d = TestDir::new("cli-demo");
    let o = run(&d, &["demo"], 0);
    let text = stdout(&o);
    for want in [
        "1. Create a queue",
        "kill -9",
        "redelivered: 1",
        "exactly once",
        "ring of 16 slots",
        "removed",
    ] {
        assert!(text.contains(want), "demo output lacks {want:?}:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no escape codes off a terminal");
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn bench_runs_cross_process_and_cleans_up() {
    let _w = Watchdog::new("bench", Duration::from_secs(120));
    let d = TestDir::new("cli-bench");
    let o = run(
        &d,
        &["bench", "--seconds", "0.3", "--producers", "2", "--json"],
        0,
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("bench --json");
    assert!(v["msg_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["producers"], 2);
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn bench_batch_uses_put_many_and_get_many_into_and_checks_every_message() {
    let _w = Watchdog::new("bench --batch", Duration::from_secs(120));
    let d = TestDir::new("cli-bench-batch");
    let o = run(
        &d,
        &[
            "bench",
            "--seconds",
            "0.3",
            "--batch",
            "16",
            "-p",
            "2",
            "-c",
            "2",
            "--json",
        ],
        0,
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("bench --json");
    assert_eq!(v["batch"], 16, "{v}");
    assert_eq!(
        (v["producers"].clone(), v["consumers"].clone()),
        (2.into(), 2.into())
    );
    let (taken, total) = (
        v["messages"].as_u64().unwrap(),
        v["messages_total"].as_u64().unwrap(),
    );
    assert!(taken > 0 && taken <= total, "{v}");
    assert!(v["msg_per_s"].as_f64().unwrap() > 0.0, "{v}");

    // The table: the batch column, and the exactly-once check (counts and
    // checksums of the producers and consumers matched), here with messages
    // too short for a stamp and a batch of the whole queue.
    let o = run(
        &d,
        &["bench", "--seconds", "0.3", "--batch", "8", "--size", "4"],
        0,
    );
    let text = stdout(&o);
    let header = text.lines().find(|l| l.contains("producers")).unwrap();
    assert!(header.contains("batch"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("4 B"))
        .unwrap_or_else(|| panic!("no result row:\n{text}"));
    let cells: Vec<&str> = row.split(['│', '┆']).map(str::trim).collect();
    assert_eq!(&cells[1..6], ["1", "1", "4 B", "1024", "8"], "{row}");
    let once = text
        .lines()
        .find_map(|l| l.strip_prefix("all "))
        .and_then(|l| l.split_once(" messages arrived exactly once"))
        .unwrap_or_else(|| panic!("no exactly-once line:\n{text}"));
    assert!(once.0.parse::<u64>().unwrap() > 0, "{text}");
    assert!(
        stderr(&o).contains("put_many/get_many_into 8 at a time"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &d,
        &[
            "bench",
            "--seconds",
            "0.3",
            "--batch",
            "4",
            "--capacity",
            "4",
        ],
        0,
    );
    assert!(stdout(&o).contains("exactly once"), "{}", stdout(&o));

    // A batch larger than the queue is refused with a hint.
    let o = run(&d, &["bench", "--batch", "2048"], 2);
    assert!(
        stderr(&o).contains("--batch 2048 is larger than the queue's 1024 slots"),
        "{}",
        stderr(&o)
    );
    run(&d, &["bench", "--batch", "0"], 2);
    assert!(d.leftovers().is_empty(), "{:?}", d.leftovers());
}

#[test]
fn help_completions_and_man_page() {
    let d = TestDir::new("cli-docs");
    let o = run(&d, &["--help"], 0);
    let help = stdout(&o);
    assert!(
        help.contains("Exit codes") && help.contains("130"),
        "{help}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&d, &["completions", shell], 0);
        assert!(stdout(&o).contains("inspect"), "{shell} completions");
        assert!(
            !stdout(&o).contains("worker"),
            "{shell}: hidden subcommands left out"
        );
    }
    run(&d, &["completions", "tcsh"], 2);
    let o = run(&d, &["man"], 0);
    let page = stdout(&o);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..80.min(page.len())]
    );
    assert!(page.contains("mq\\-get(1)"));
    // The shipped pages are the generated ones.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man");
    for page in ["mq", "mq-get", "mq-put", "mq-inspect"] {
        let args: Vec<&str> = match page.strip_prefix("mq-") {
            Some(sub) => vec!["man", sub],
            None => vec!["man"],
        };
        let o = run(&d, &args, 0);
        let file = shipped.join(format!("{page}.1"));
        let on_disk = std::fs::read(&file).unwrap_or_default();
        assert!(
            on_disk == o.stdout,
            "{} is stale: regenerate with 'mq man --out-dir docs/man'",
            file.display()
        );
    }
    let _ = std::io::stderr().flush();
}
