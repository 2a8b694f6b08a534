//! The teaching demos (`src/bin/`) end to end, one module per area. The
//! binaries come from `env!("CARGO_BIN_EXE_<demo>")`; every test uses its own
//! queue directory (`mq_tests::TestDir`) and a watchdog where it could hang.

mod support;

mod copier;
mod copier_full;
mod copier_keeps;
mod help;
mod small;
