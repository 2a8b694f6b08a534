//! The `mq` command end to end, one module per area. Every test uses its own
//! queue directory (`mq_tests::TestDir`, `MQ_DIR`) and a watchdog or a time
//! limit where it could hang; `mq` is `env!("CARGO_BIN_EXE_mq")`.

mod support;

mod bridge_chaos;
mod delivery;
mod demo_bench_docs;
mod errors;
mod multi_get;
mod net;
mod observe;
mod put_get;
mod put_lines;
mod read_only;
mod rm;
mod signals;
