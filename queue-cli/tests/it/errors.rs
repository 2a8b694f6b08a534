//! Bad inputs exit 2 with a clear message; permission denied on another
//! user's queue.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use mq_tests::TestDir;
use serde_json::Value;

use crate::support::*;

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
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test runs mq as another user (nobody), which needs root: run the tests as root, as CI does"
    );
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
    let o = as_nobody(&["get", "private", "--no-wait"])
        .unwrap_or_else(|e| panic!("cannot run mq as nobody (uid 65534): {e}"));
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
