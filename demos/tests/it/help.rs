//! Smoke test of the demo binaries: each one starts and prints its help, and
//! a bad argument exits 2. (This package's integration tests also make
//! `cargo test --workspace` build the demos, which the tutorial test in
//! `tests/tests/it/tutorial.rs` runs.)

use std::process::Command;

#[test]
fn every_demo_prints_its_help() {
    for (bin, path) in [
        ("processes", env!("CARGO_BIN_EXE_processes")),
        (
            "downloader-analyzer",
            env!("CARGO_BIN_EXE_downloader-analyzer"),
        ),
        ("pool-workers", env!("CARGO_BIN_EXE_pool-workers")),
        ("pool-copier", env!("CARGO_BIN_EXE_pool-copier")),
    ] {
        let out = Command::new(path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{bin} --help: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{bin}"
        );
    }
}

#[test]
fn pool_copier_refuses_a_missing_source_with_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_pool-copier"))
        .arg("/nonexistent/mq-demo-source")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read SRC /nonexistent/mq-demo-source"),
        "{err}"
    );
}
