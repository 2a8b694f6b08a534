//! The tutorial for classes (`docs/tutorial/`), compiled only for doc-tests,
//! so that every Rust program in it is built and run by
//! `cargo test -p queue-core --doc`. The Chinese edition (`docs/tutorial/zh/`)
//! has byte-identical code blocks, which `tests/tests/it/tutorial.rs` checks.

#[doc = include_str!("../../docs/tutorial/README.md")]
pub struct Index;

#[doc = include_str!("../../docs/tutorial/01-processes.md")]
pub struct Chapter1;

#[doc = include_str!("../../docs/tutorial/02-processes-vs-threads.md")]
pub struct Chapter2;

#[doc = include_str!("../../docs/tutorial/03-queue-between-processes.md")]
pub struct Chapter3;

#[doc = include_str!("../../docs/tutorial/04-process-pool.md")]
pub struct Chapter4;

#[doc = include_str!("../../docs/tutorial/05-folder-copier.md")]
pub struct Chapter5;
