//! `mq put --lines` with a line far larger than the queue's maximum message
//! size and no newline: it fails at once with the usual error and never
//! holds the line in memory.

use std::process::{Command, Stdio};
use std::time::Duration;

use mq_tests::{ChildGuard, TestDir, Watchdog, measured_command, output_with_max_rss};

use crate::support::*;

#[test]
fn a_huge_line_fails_fast_without_being_read_into_memory() {
    let _w = Watchdog::new(
        "mq put --lines with a 300 MB line",
        Duration::from_secs(120),
    );
    let d = TestDir::new("cli-hugeline");
    run(&d, &["create", "q", "--max-msg-size", "4KiB"], 0);
    run_stdin(&d, &["put", "q", "--lines"], b"before\n");

    // `head -c 300M /dev/zero | mq put q --lines`: one 300 MB line.
    let mut head = ChildGuard::new(
        mq_tests::die_with_test(&mut Command::new("head"))
            .args(["-c", "300M", "/dev/zero"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run head"),
    );
    let line = head.child().stdout.take().expect("head's stdout");
    let m = output_with_max_rss(
        measured_command(MQ)
            .env("MQ_DIR", d.path())
            .args(["put", "q", "--lines"])
            .stdin(Stdio::from(line)),
    )
    .expect("run mq");
    drop(head);

    let err = stderr(&m.output);
    assert_eq!(m.output.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end(),
        "mq: line 1: message is over 4096 bytes (read no further), queue \"q\" takes at most 4096 (create it with --max-msg-size)"
    );
    assert!(m.max_rss_kib > 0, "no peak memory measured");
    assert!(
        m.max_rss_kib < 64 * 1024,
        "mq put --lines grew to {} KiB resident on a 300 MB line",
        m.max_rss_kib
    );
    // Nothing of the line went in; the message before it is still there.
    let o = run(&d, &["get", "q", "--all"], 0);
    assert_eq!(stdout(&o), "before\n");
    run(&d, &["rm", "q"], 0);
    assert!(d.leftovers().is_empty(), "left: {:?}", d.leftovers());
}
