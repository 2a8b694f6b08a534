//! End-to-end tests: one test binary, one module per area. Every test uses
//! its own queue directory (`mq_tests::TestDir`) and a watchdog where it
//! could hang.

mod core_mp;
mod demos;
mod hardening;
mod pool;
mod soak;
mod tutorial;
