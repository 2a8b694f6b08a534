//! The host-noise probe: how busy the rest of the machine was (other
//! processes' CPU time, the hypervisor's steal), and the round trip of one
//! cache line between CPU 0 and CPU 1, probed around every measurement so that
//! one taken in a slow spell of the host is repeated (and marked if it stays
//! slow).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::pin::{PinSelf, Placement, placement, set_placement};

/// Measurements repeated because the host was slow while they ran.
pub static REPEATED: AtomicU32 = AtomicU32::new(0);

/// Runs `f` (up to 4 times) until it runs without a slow spell of the host
/// (see [`host_slow_during`]); returns the last result and whether it still
/// had one.
pub fn steady<T>(label: &str, mut f: impl FnMut() -> T) -> (T, bool) {
    let mut tries = 0;
    loop {
        let (v, slow) = host_slow_during(&mut f);
        tries += 1;
        if !slow || tries == 4 {
            return (v, slow);
        }
        REPEATED.fetch_add(1, Ordering::Relaxed);
        eprintln!("  {label}: the host was slow meanwhile; measuring again");
    }
}

/// Collects the first probes for [`usual_line_ns`], every 25 ms, and waits
/// (at most 5 s) for a calm start: 12 probes in a row within twice the
/// fastest seen, so that the first figures are not taken in a slow spell.
pub fn calibrate_host() {
    let start = Instant::now();
    let (mut fastest, mut calm) = (u64::MAX, 0);
    while start.elapsed() < Duration::from_secs(5) {
        let Some(ns) = probe_line() else { return };
        fastest = fastest.min(ns);
        calm = if ns <= 2 * fastest { calm + 1 } else { 0 };
        if calm >= 12 && PROBES.lock().unwrap().len() >= 30 {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Every cache-line round trip probed in this run, in ns.
static PROBES: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// The usual cache-line round trip between CPU 0 and CPU 1: the lower
/// quartile of all probes so far (robust to slow spells, and to the odd
/// freak fast probe), `u64::MAX` before the first or on one core.
pub fn usual_line_ns() -> u64 {
    let mut v = PROBES.lock().unwrap().clone();
    if v.is_empty() {
        return u64::MAX;
    }
    v.sort_unstable();
    v[v.len() / 4]
}

/// Probes the cache-line round trip and records it.
pub fn probe_line() -> Option<u64> {
    let ns = line_round_trip_ns()? as u64;
    PROBES.lock().unwrap().push(ns);
    Some(ns)
}

/// Runs `f` between two probes of the cache-line round trip; the flag says
/// whether either probe took over three times the usual one - the host had
/// moved our virtual CPUs somewhere slower, which slows every cross-core
/// figure (ours and the peers') for as long as it lasts.
pub fn host_slow_during<T>(f: impl FnOnce() -> T) -> (T, bool) {
    let before = probe_line();
    let v = f();
    let after = probe_line();
    let usual = usual_line_ns();
    let slow = [before, after]
        .into_iter()
        .flatten()
        .any(|x| x > usual.saturating_mul(3));
    (v, slow)
}

pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Machine-wide CPU time so far, from the first line of `/proc/stat`, in
/// clock ticks: (busy, steal). Busy is everything but idle, iowait and steal.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return (0, 0);
    }
    // user nice system idle iowait irq softirq steal
    (v[0] + v[1] + v[2] + v[5] + v[6], v[7])
}

/// CPU time used by this process and its waited-for children, in seconds.
pub fn own_cpu_secs() -> f64 {
    let secs = |who| {
        // SAFETY: getrusage fills the struct it is given; all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// How busy the rest of the machine was while we ran: CPU time used by
/// other processes, and time stolen by the hypervisor, each as a share of
/// all the cores' time.
pub fn noise(start: (u64, u64), own_start: f64, elapsed: Duration) -> String {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (busy, steal) = machine_ticks();
    let total = elapsed.as_secs_f64() * cores;
    let busy = (busy - start.0) as f64 / hz;
    let others = (busy - (own_cpu_secs() - own_start)).max(0.0);
    format!(
        "other processes used {:.0}% and the hypervisor stole {:.0}% of the {cores:.0} cores' time",
        others / total * 100.0,
        (steal - start.1) as f64 / hz / total * 100.0
    )
}

pub fn line_note(before: Option<u64>, after: Option<u64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!(
            "a cache line's round trip between CPU 0 and CPU 1 took {b} ns before, {a} ns after"
        ),
        _ => "one core: no cache-line round trip to measure".into(),
    }
}

/// The hardware floor for the two-core figures: median round trip of one
/// cache line between two threads spinning on CPU 0 and CPU 1, in ns. On a
/// virtual machine this moves (by 4x here) as the host moves the virtual
/// CPUs, so it is measured before and after each section.
fn line_round_trip_ns() -> Option<f64> {
    #[repr(align(128))]
    struct Line(std::sync::atomic::AtomicU64);
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    let (ping, pong) = (Line(0.into()), Line(0.into()));
    const N: u64 = 20_000;
    let old = placement();
    set_placement(Placement::TwoCores);
    let mut v = std::thread::scope(|s| {
        s.spawn(|| {
            let _pin = PinSelf::new(true);
            for i in 1..=N {
                while ping.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong.0.store(i, Ordering::Release);
            }
        });
        let _pin = PinSelf::new(false);
        let mut v = Vec::with_capacity(N as usize);
        for i in 1..=N {
            let t = Instant::now();
            ping.0.store(i, Ordering::Release);
            while pong.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            v.push(t.elapsed().as_nanos() as u64);
        }
        v
    });
    set_placement(old);
    v.sort_unstable();
    Some(v[v.len() / 2] as f64)
}
