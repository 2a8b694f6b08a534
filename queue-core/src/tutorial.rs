//! The tutorial for classes (`docs/tutorial/`), compiled only for doc-tests,
//! so that every Rust program in it is built and run by
//! `cargo test -p queue-core --doc`: here the chapters that use only the
//! queue; the pool chapters (4 and 5) are doc-tested by queue-pool
//! (`queue-pool/src/tutorial.rs`). The Chinese edition (`docs/tutorial/zh/`)
//! has byte-identical code blocks, which `tests/tests/it/tutorial.rs` checks.

#[doc = include_str!("../../docs/tutorial/README.md")]
pub struct Index;

#[doc = include_str!("../../docs/tutorial/01-processes.md")]
pub struct Chapter1;

#[doc = include_str!("../../docs/tutorial/02-processes-vs-threads.md")]
pub struct Chapter2;

#[doc = include_str!("../../docs/tutorial/03-queue-between-processes.md")]
pub struct Chapter3;

/// Chapter 6 is Python: its programs are run by pytest
/// (`queue-py/tests/test_tutorial.py`); included here so that every chapter
/// is listed in one place.
#[doc = include_str!("../../docs/tutorial/06-python.md")]
pub struct Chapter6;
