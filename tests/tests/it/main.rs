//! Cross-process tests: one test binary, one module per area. Every test
//! uses its own queue directory (`mq_tests::TestDir`) and a watchdog where
//! it could hang. The `mq` end-to-end tests live beside the CLI
//! (`queue-cli/tests/it/`), the demos' beside the demos (`demos/tests/it/`);
//! the tutorial test here needs both, and finds them in the target directory
//! (`mq_tests::workspace_bin`).

mod batch_mp;
mod core_mp;
mod dead_letter_mp;
mod delivery_mp;
mod hardening;
mod pool;
mod select_mp;
mod soak;
mod tutorial;
