//! [`machine`]: the one-line description of the machine printed with
//! benchmark figures.

/// CPU model, CPU count and kernel release, for example `AMD EPYC, 2 CPUs,
/// Linux 6.18.44`. The CPU model comes from `/proc/cpuinfo` (the
/// architecture if it has none), the kernel from
/// `/proc/sys/kernel/osrelease`.
///
/// ```
/// let m = queue_bench::machine();
/// assert!(m.contains(" CPUs, Linux"), "{m}");
/// ```
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cpus} CPUs, Linux {kernel}")
}
