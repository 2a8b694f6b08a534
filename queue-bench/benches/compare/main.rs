//! This queue side by side with what a user would pick instead, in one run.
//!
//! ```sh
//! cargo bench -p queue-bench --bench compare                  # full run, 2-3.5 minutes
//! MQ_BENCH_QUICK=1 cargo bench -p queue-bench --bench compare # quick run, 20-30 s
//! cargo bench -p queue-bench --bench compare -- --quick --only mq,posix --sizes 64
//! ```
//!
//! Peers (each cross-process peer runs in separate processes: the bench
//! binary re-runs itself as the children, with `MQ_COMPARE_CHILD` set):
//!
//! * `mq`            - this queue, blocking `put` / `get_into` (no allocation per message);
//! * `batch`         - this queue, `put_many` / `get_many_into` in batches of 64;
//! * `posix`         - POSIX message queues (`mq_open`, blocking `mq_send` / `mq_receive`);
//! * `pipe`          - a pipe carrying `[u32 length][payload]` frames: one `write` per
//!   message, the reader behind a 64 KiB `BufReader` (pipe buffer raised to 1 MiB);
//! * `socket`        - the same frames over a `socketpair(AF_UNIX, SOCK_STREAM)`;
//! * `crossbeam`     - `crossbeam_channel::bounded` between threads of one process,
//!   carrying `[u8; N]` by value (a copy in and a copy out, like this queue);
//! * `crossbeam-vec` - the same carrying a `Vec<u8>` allocated per message (only
//!   the pointer travels; the faster of the two rows is the in-process ceiling);
//! * `memcpy`        - one thread copying each message into the next slot of a
//!   ring as large as this queue's (the bandwidth ceiling for large messages);
//! * `probe1`, `probe16`, `probe64` - the limit probe: a minimal SPSC ring of
//!   64-byte-aligned slots between two threads (Lamport, cached indices, each
//!   index published once per batch of 1, 16 or 64), 1 -> 1 only: what the
//!   machine charges for moving a message, measured right after this
//!   queue's two rows, in the same round (issue 17's targets compare with it).
//!
//! The two rows of this queue run the producer and consumer loops of this
//! crate's library (`queue_bench`), the same code as `mq bench` (`--batch 64` for the
//! batched row): each message carries a sequence stamp, and each run checks
//! the producers' counts and checksums against the consumers' (see
//! `queue_bench::stamp`).
//!
//! Metrics (`--metrics`, default all): `1` throughput of 1 producer -> 1
//! consumer (of this queue's rows: `mq` unbatched, `batch` batched 64); `4` of
//! 4 producers -> 4 consumers (both rows again: `batch` 4->4 is the batched
//! figure) (a stream cannot be shared by
//! competing readers, so pipes and sockets get 4 independent 1 -> 1 pairs: the
//! easiest case for them); `pp` the ping-pong round trip (one message bounced
//! between two processes over two queues / pipes, or both directions of one
//! socketpair), median and p99; `10` fan-in: 10 producer processes -> 1
//! consumer with 64-byte messages (faster-fifo's case for `get_many`; this
//! queue with put/get and batched, and POSIX mq); `pin` the placement table:
//! 64-byte 1 -> 1 and ping-pong with both sides pinned to one core, then to
//! two cores. Throughput
//! runs are calibrated to about 0.5 s (0.1 s quick) and repeated 3 times (once
//! quick); the median is shown. The 1 -> 1 figures of `mq`, `batch` and the
//! probe rows are repeated round by round (one run of each per round, see
//! [`alternate`]), so their ratios compare the same host states.
//!
//! Also checked: a getter blocked on an empty queue uses no CPU (utime + stime
//! from `/proc/<pid>/stat` over 3 s).
//!
//! The machine's state is printed with the figures, because on a small
//! virtual machine it moves them more than any code change: the CPU time
//! other processes used, the time the hypervisor stole, and the round trip
//! of one cache line between CPU 0 and CPU 1 (110 ns or 450 ns on our test
//! machine, depending on where the host runs the two virtual CPUs, in spells
//! of a second or two). A measurement with such a spell at its start or end
//! (the round trip over three times its usual value, the lower quartile of
//! all probes of the run) is repeated, up to 3 times; a figure whose last try
//! still had one is marked with a dagger.
//!
//! Every queue lives in a private directory `/dev/shm/mq-bench-<pid>/`, removed
//! at the end (also on a panic); POSIX queue names are unlinked as soon as all
//! participants have opened them. The POSIX limits (`/proc/sys/fs/mqueue/msg_max`
//! and `msgsize_max`) are raised only for the instant of each `mq_open` that
//! creates a queue, and restored at once; RLIMIT_MSGQUEUE is raised to its
//! hard limit, and POSIX queues of large messages are made shorter to fit it.
//!
//! Options (after `--`): `--quick` (or `MQ_BENCH_QUICK=1`), `--only a,b,...`
//! (peers above, plus `idle`), `--sizes 64,1024,65536`, `--metrics 1,4,pp,10,pin`,
//! `--reps N`.
//!
//! The parts, one file each: this one (options, the rounds of measurements
//! and the order of the report), [`alternate`] (the 1 -> 1 rows measured
//! round by round), [`child`] (the child-process protocol),
//! [`ours`], [`posix_mq`], [`pipe`] (pipes and socketpairs), [`crossbeam`],
//! [`memcpy`], [`probe`] (the peers), [`pin`] (CPU placement), [`noise`] (the host-noise
//! probe), [`stats`] and [`table`] (the report). The bench uses only the
//! public API of `queue-core` and of this crate's library.

mod alternate;
mod child;
mod crossbeam;
mod memcpy;
mod noise;
mod ours;
mod pin;
mod pipe;
mod posix_mq;
mod probe;
mod stats;
mod table;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use queue_bench::machine;

use crate::alternate::alternated_rates;
use crate::child::child_main;
use crate::crossbeam::{pp_crossbeam_sized, tp_crossbeam_sized};
use crate::memcpy::tp_memcpy;
use crate::noise::{
    REPEATED, calibrate_host, line_note, load, machine_ticks, noise, own_cpu_secs, probe_line,
    steady, usual_line_ns,
};
use crate::ours::{Scratch, idle_check, pp_mq, tp_mq, tp_mq_fan};
use crate::pin::{Placement, set_placement};
use crate::pipe::{Stream, pp_stream, tp_stream};
use crate::posix_mq::{posix_capacity, pp_posix, raise_msgqueue_rlimit, tp_posix, tp_posix_fan};
use crate::probe::tp_probe;
use crate::stats::{PingPlan, median, summarise};
use crate::table::{PEERS, Row, fan_in_table, fmt_rate, placement_table, table, targets};

/// Set in the children: their role is in the arguments.
pub const CHILD_ENV: &str = "MQ_COMPARE_CHILD";
/// Messages per `put_many` / `get_many_into` call in the batched rows.
pub const BATCH: usize = 64;
/// Message sizes compared by default.
const SIZES: [usize; 3] = [64, 1024, 65536];
/// Producers and consumers of the "4 -> 4" runs.
const MANY: usize = 4;

/// Slots of every queue-like peer for messages of `size` bytes: 1024, or 64
/// for 64 KiB messages (a 4 MiB ring).
pub fn capacity_for(size: usize) -> usize {
    if size >= 32 * 1024 { 64 } else { 1024 }
}

/// Messages per producer when `parts` producers share `n`.
pub fn split(n: u64, parts: usize) -> u64 {
    n / parts as u64
}

struct Plan {
    quick: bool,
    target: Duration,
    reps: usize,
    ping: PingPlan,
    only: Option<Vec<String>>,
    metrics: Vec<String>,
    sizes: Vec<usize>,
}

impl Plan {
    fn from_args() -> Plan {
        let mut quick = std::env::var_os("MQ_BENCH_QUICK").is_some_and(|v| v != "0");
        let mut only = None;
        let mut sizes = SIZES.to_vec();
        let mut reps = None;
        let mut metrics: Vec<String> = ["1", "4", "pp", "10", "pin"].map(str::to_owned).into();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--only" => {
                    only = it.next().map(|s| s.split(',').map(str::to_owned).collect());
                }
                "--sizes" => {
                    sizes = it
                        .next()
                        .expect("--sizes needs a list")
                        .split(',')
                        .map(|s| s.parse().expect("size in bytes"))
                        .collect();
                }
                "--metrics" => {
                    metrics = it
                        .next()
                        .expect("--metrics needs a list")
                        .split(',')
                        .map(str::to_owned)
                        .collect();
                }
                "--reps" => reps = it.next().and_then(|s| s.parse().ok()),
                _ => {} // `--bench` from cargo, and anything else
            }
        }
        Plan {
            quick,
            target: Duration::from_millis(if quick { 100 } else { 500 }),
            reps: reps.unwrap_or(if quick { 1 } else { 3 }),
            ping: PingPlan {
                warmup: if quick { 200 } else { 1000 },
                max: 500_000,
                time: Duration::from_millis(if quick { 100 } else { 500 }),
            },
            only,
            metrics,
            sizes,
        }
    }

    fn metric(&self, m: &str) -> bool {
        self.metrics.iter().any(|x| x == m)
    }

    fn wants(&self, peer: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == peer))
    }

    /// A message count for which one run takes about the target time.
    fn calibrate(&self, run: &mut dyn FnMut(u64) -> Duration) -> u64 {
        let mut n: u64 = 4096;
        let mut d = run(n);
        while d < self.target / 2 && n < 1 << 34 {
            let scale = self.target.as_secs_f64() / d.as_secs_f64().max(1e-6);
            n = ((n as f64 * scale.clamp(2.0, 50.0)) as u64).next_multiple_of(256);
            d = run(n);
        }
        n
    }

    /// Calibrates a message count so one run takes about the target time,
    /// then returns the median rate (messages per second) of `reps` runs.
    fn rate(&self, label: &str, run: &mut dyn FnMut(u64) -> Duration) -> (f64, bool) {
        let n = self.calibrate(run);
        let mut rates = Vec::new();
        let mut slow = false;
        for _ in 0..self.reps {
            let (d, s) = steady(label, || run(n));
            rates.push(n as f64 / d.as_secs_f64());
            slow |= s;
        }
        let shown: Vec<String> = rates.iter().map(|r| fmt_rate(*r)).collect();
        eprintln!("  {label:<32} n={n:<10} runs: {}", shown.join(" "));
        (median(&mut rates), slow)
    }
}

fn measure_size(plan: &Plan, s: &Scratch, size: usize) -> Vec<(&'static str, Row)> {
    let mut rows = Vec::new();
    eprintln!(
        "== {size}-byte messages, capacity {} (POSIX mq: {} / {} for ping-pong)",
        capacity_for(size),
        posix_capacity(size, 1),
        posix_capacity(size, 2)
    );
    let (one, many, pp) = (plan.metric("1"), plan.metric("4"), plan.metric("pp"));
    // This queue's two rows and the limit probe, 1 -> 1: measured round by
    // round, so that the ratios compare figures of the same host states.
    let alternated = if one {
        alternated_rates(plan, s, size)
    } else {
        Vec::new()
    };
    for (key, _) in PEERS {
        if !plan.wants(key) {
            continue;
        }
        let mut row = Row::default();
        let label = |what: &str| format!("{key} {what}");
        // Throughput with p producers and p consumers, if that metric is wanted.
        let slow = std::cell::Cell::new([false; 3]);
        let flag = |i: usize, v: bool| {
            let mut f = slow.get();
            f[i] |= v;
            slow.set(f);
        };
        let tp = |p: usize, what: &str, run: &mut dyn FnMut(u64) -> Duration| {
            if p == 1 {
                if let Some((_, rate, slow)) = alternated.iter().find(|a| a.0 == key) {
                    flag(0, *slow);
                    return Some(*rate);
                }
            }
            let wanted = if p == 1 { one } else { many };
            wanted.then(|| {
                let (v, s) = plan.rate(&label(what), run);
                flag(usize::from(p != 1), s);
                v
            })
        };
        let ping = |f: &mut dyn FnMut() -> Vec<u64>| {
            let (v, s) = steady(&label("ping-pong"), f);
            flag(2, s);
            summarise(v)
        };
        match key {
            "mq" | "batch" => {
                let b = if key == "batch" { BATCH } else { 1 };
                row.one = tp(1, "1->1", &mut |n| tp_mq(s, size, 1, n, b));
                row.many = tp(MANY, "4->4", &mut |n| tp_mq(s, size, MANY, n, b));
                if key == "mq" && pp {
                    row.rtt = Some(ping(&mut || pp_mq(s, &plan.ping, size)));
                }
            }
            "posix" => {
                row.one = tp(1, "1->1", &mut |n| tp_posix(size, 1, n));
                row.many = tp(MANY, "4->4", &mut |n| tp_posix(size, MANY, n));
                row.rtt = pp.then(|| ping(&mut || pp_posix(&plan.ping, size)));
            }
            "pipe" | "socket" => {
                let k = if key == "pipe" {
                    Stream::Pipe
                } else {
                    Stream::Socket
                };
                row.one = tp(1, "1->1", &mut |n| tp_stream(k, size, 1, n));
                row.many = tp(MANY, "4x(1->1)", &mut |n| tp_stream(k, size, MANY, n));
                row.rtt = pp.then(|| ping(&mut || pp_stream(k, &plan.ping, size)));
            }
            "crossbeam" | "crossbeam-vec" => {
                let v = key == "crossbeam";
                row.one = tp(1, "1->1", &mut |n| tp_crossbeam_sized(size, v, 1, n));
                row.many = tp(MANY, "4->4", &mut |n| tp_crossbeam_sized(size, v, MANY, n));
                row.rtt = pp.then(|| ping(&mut || pp_crossbeam_sized(&plan.ping, size, v)));
            }
            "memcpy" => {
                row.one = tp(1, "copy", &mut |n| tp_memcpy(size, n));
            }
            "probe1" | "probe16" | "probe64" => {
                let b = key["probe".len()..].parse().expect("probe batch");
                row.one = tp(1, "1->1", &mut |n| tp_probe(size, b, n));
            }
            _ => unreachable!(),
        }
        row.slow = slow.get();
        if let Some((m, p)) = row.rtt {
            eprintln!(
                "  {:<32} median {m:.2} us, p99 {p:.2} us",
                label("ping-pong")
            );
        }
        rows.push((key, row));
    }
    rows
}

/// Peers of the placement table (64-byte messages).
const PINNED: [&str; 4] = ["mq", "posix", "pipe", "crossbeam"];

/// Producers in the fan-in measurement (faster-fifo's "10 -> 1" case).
pub const FAN_IN: usize = 10;

/// Fan-in: [`FAN_IN`] producer processes and one consumer, 64-byte messages:
/// this queue with put/get and with put_many/get_many_into, and POSIX mq.
/// With five producers per core the consumer shares its core with them, and
/// producers often find the queue full and sleep: the case where waking
/// once per batch instead of once per message should show.
fn measure_fan_in(plan: &Plan, s: &Scratch) -> Vec<(&'static str, f64, bool)> {
    let size = 64;
    eprintln!("== fan-in: {FAN_IN} producers -> 1 consumer, {size}-byte messages");
    let mut rows = Vec::new();
    for key in ["mq", "batch", "posix"] {
        if !plan.wants(key) {
            continue;
        }
        let label = format!("{key} {FAN_IN}->1");
        let (rate, slow) = match key {
            "mq" => plan.rate(&label, &mut |n| tp_mq_fan(s, size, FAN_IN, 1, n, 1)),
            "batch" => plan.rate(&label, &mut |n| tp_mq_fan(s, size, FAN_IN, 1, n, BATCH)),
            _ => plan.rate(&label, &mut |n| tp_posix_fan(size, FAN_IN, 1, n)),
        };
        rows.push((key, rate, slow));
    }
    rows
}

/// 1 -> 1 throughput and ping-pong of 64-byte messages with the two sides
/// pinned to one core, then to two cores.
fn measure_placement(plan: &Plan, s: &Scratch) -> Vec<(&'static str, [Row; 2])> {
    let size = 64;
    eprintln!("== placement: 64-byte messages, pinned to one core / two cores");
    let mut out = Vec::new();
    for key in PINNED {
        if !plan.wants(key) {
            continue;
        }
        let mut rows = [Row::default(); 2];
        for (i, p) in [Placement::OneCore, Placement::TwoCores]
            .into_iter()
            .enumerate()
        {
            set_placement(p);
            let label = format!("{key} 1->1 {p:?}");
            let r = &mut rows[i];
            let (tp, pp): (
                &mut dyn FnMut(u64) -> Duration,
                &mut dyn FnMut() -> Vec<u64>,
            ) = match key {
                "mq" => (&mut |n| tp_mq(s, size, 1, n, 1), &mut || {
                    pp_mq(s, &plan.ping, size)
                }),
                "posix" => (&mut |n| tp_posix(size, 1, n), &mut || {
                    pp_posix(&plan.ping, size)
                }),
                "pipe" => (&mut |n| tp_stream(Stream::Pipe, size, 1, n), &mut || {
                    pp_stream(Stream::Pipe, &plan.ping, size)
                }),
                "crossbeam" => (&mut |n| tp_crossbeam_sized(size, true, 1, n), &mut || {
                    pp_crossbeam_sized(&plan.ping, size, true)
                }),
                _ => unreachable!(),
            };
            let (one, slow_one) = plan.rate(&label, tp);
            let (rtt, slow_rtt) = steady(&label, pp);
            r.one = Some(one);
            r.rtt = Some(summarise(rtt));
            r.slow = [slow_one, false, slow_rtt];
            if let Some((m, q)) = r.rtt {
                eprintln!("  {key} ping-pong {p:?}: median {m:.2} us, p99 {q:.2} us");
            }
        }
        set_placement(Placement::Free);
        out.push((key, rows));
    }
    out
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_main();
        return;
    }
    let plan = Plan::from_args();
    let scratch = Scratch::new();
    raise_msgqueue_rlimit();
    let started = Instant::now();
    calibrate_host();
    let load_before = load();
    let ticks_before = machine_ticks();
    let own_before = own_cpu_secs();
    eprintln!(
        "mq compare ({} mode) on {}; load average {load_before}",
        if plan.quick { "quick" } else { "full" },
        machine()
    );
    let mut all = Vec::new();
    let mut noises = Vec::new();
    for &size in &plan.sizes {
        let line0 = probe_line();
        let (t0, o0, s0) = (machine_ticks(), own_cpu_secs(), Instant::now());
        let rows = measure_size(&plan, &scratch, size);
        let n = noise(t0, o0, s0.elapsed());
        noises.push(format!("{n}; {}", line_note(line0, probe_line())));
        all.push((size, rows));
    }
    let fan_in = plan.metric("10").then(|| {
        let line0 = probe_line();
        let (t0, o0, s0) = (machine_ticks(), own_cpu_secs(), Instant::now());
        let rows = measure_fan_in(&plan, &scratch);
        let n = noise(t0, o0, s0.elapsed());
        (rows, format!("{n}; {}", line_note(line0, probe_line())))
    });
    let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let line0 = probe_line();
    let (t0, o0, s0) = (machine_ticks(), own_cpu_secs(), Instant::now());
    let pinned = (plan.metric("pin") && two_cores).then(|| measure_placement(&plan, &scratch));
    let pin_noise = format!(
        "{}; {}",
        noise(t0, o0, s0.elapsed()),
        line_note(line0, probe_line())
    );
    let idle = plan
        .wants("idle")
        .then(|| idle_check(&scratch, if plan.quick { 2 } else { 3 }));

    let mut out = String::new();
    writeln!(out, "\n# mq compare: {}", machine()).unwrap();
    writeln!(
        out,
        "mode {}, {} run(s) per figure (median), load average before {load_before}, after {}, {:.0} s;\n{}",
        if plan.quick { "quick" } else { "full" },
        plan.reps,
        load(),
        started.elapsed().as_secs_f64(),
        noise(ticks_before, own_before, started.elapsed())
    )
    .unwrap();
    writeln!(
        out,
        "ratios: > 1 means this queue is better (higher throughput / lower round trip);\n\
         pipe and socket 4->4 are 4 independent 1->1 streams;\n\
         a measurement during which a cache line's round trip between CPU 0 and CPU 1 took\n\
         over three times the usual {} ns (lower quartile of all probes) - the host had moved the\n\
         virtual CPUs - was repeated ({} times in this run, up to 3 times each); \u{2020} marks\n\
         a figure whose last try was still slow.",
        usual_line_ns(),
        REPEATED.load(Ordering::Relaxed)
    )
    .unwrap();
    for ((size, rows), noise) in all.iter().zip(&noises) {
        out.push_str(&table(*size, rows));
        writeln!(out, "\n(while measuring these, {noise})").unwrap();
    }
    if let Some((rows, noise)) = &fan_in {
        out.push_str(&fan_in_table(rows));
        writeln!(out, "\n(while measuring these, {noise})").unwrap();
    }
    if let Some(rows) = &pinned {
        out.push_str(&placement_table(rows));
        writeln!(out, "\n(while measuring these, {pin_noise})").unwrap();
    }
    out.push_str(&targets(&all));
    if let Some(idle) = idle {
        writeln!(out, "\n{idle}").unwrap();
    }
    print!("{out}");
    drop(scratch);
}
