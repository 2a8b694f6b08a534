//! `mq demo`, `mq bench` (also batched), help, completions and the man page.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mq_tests::{TestDir, Watchdog};
use serde_json::Value;

use crate::support::*;

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
