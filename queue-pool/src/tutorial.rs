//! The tutorial chapters whose programs use the pool (`docs/tutorial/`),
//! compiled only for doc-tests, so that every Rust program in them is built
//! and run by `cargo test -p queue-pool --doc`. The chapters that use only
//! the queue are doc-tested by queue-core (`queue-core/src/tutorial.rs`).
//! The Chinese edition (`docs/tutorial/zh/`) has byte-identical code
//! blocks, which `tests/tests/it/tutorial.rs` checks.

#[doc = include_str!("../../docs/tutorial/04-process-pool.md")]
pub struct Chapter4;

#[doc = include_str!("../../docs/tutorial/05-folder-copier.md")]
pub struct Chapter5;
