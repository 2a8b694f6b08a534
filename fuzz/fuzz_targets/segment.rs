//! Fuzz target `segment`: the fuzzer's bytes choose a state for a real
//! queue (capacity, message size, messages, leases held, a second handle,
//! closed) and a list of damages to its segment (bit flips, fields
//! overwritten with raw values, slot states, cursor shifts by positions or
//! laps, truncation, extension). The damaged segment is written as another
//! queue and opened, and every operation that cannot block for good is
//! called, then a closed-queue drain with blocking gets.
//!
//! A crash is a bug: a panic, an out-of-bounds access (AddressSanitizer), an
//! allocation above `-malloc_limit_mb`, or a hang (`-timeout`). The same
//! harness runs as a property test in the normal test run
//! (`queue-core/tests/hostile.rs`). How to run: docs/security.md.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../queue-core/tests/support/hostile.rs"]
mod support;

/// One private queue directory per fuzzing process. Every input removes
/// what it created; only a crash (or the end of `-max_total_time`, which
/// stops the process mid-input) leaves files behind, and those of processes
/// that are gone are removed here at start-up.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(entries) = std::fs::read_dir("/dev/shm") {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("mq-fuzz-")) else {
                    continue;
                };
                if !PathBuf::from("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = PathBuf::from("/dev/shm").join(format!("mq-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create the fuzzing queue directory");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let (scenario, mutations) = support::decode(data);
    let mut image = support::base_image(dir, "base", &scenario);
    support::apply(&mut image, &mutations);
    support::exercise(dir, "damaged", &image);
});
