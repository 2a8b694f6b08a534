//! The report: one row per peer, the Markdown tables (per message size,
//! fan-in, placement), the targets, and how figures are formatted.

use std::fmt::Write as _;

use crate::{BATCH, FAN_IN, capacity_for, posix_mq::posix_capacity};

#[derive(Default, Clone, Copy)]
pub struct Row {
    /// Messages per second, 1 -> 1.
    pub one: Option<f64>,
    /// Messages per second in total, 4 -> 4.
    pub many: Option<f64>,
    /// Round trip median and p99, microseconds.
    pub rtt: Option<(f64, f64)>,
    /// Whether each of the three was measured while cross-core transfers
    /// were slow (see [`host_slow_during`](crate::noise::host_slow_during)).
    pub slow: [bool; 3],
}

/// A figure, marked when it was measured in a slow spell.
fn mark(text: String, slow: bool) -> String {
    if slow {
        format!("{text} \u{2020}")
    } else {
        text
    }
}

pub const PEERS: [(&str, &str); 11] = [
    ("mq", "this queue, put/get"),
    ("batch", "this queue, put_many/get_many_into 64"),
    ("probe1", "limit probe: SPSC ring, batch 1 (threads)"),
    ("probe16", "limit probe: SPSC ring, batch 16 (threads)"),
    ("probe64", "limit probe: SPSC ring, batch 64 (threads)"),
    ("posix", "POSIX mq"),
    ("pipe", "pipe, framed"),
    ("socket", "socketpair, framed"),
    ("crossbeam", "crossbeam-channel, [u8; N] (threads)"),
    ("crossbeam-vec", "crossbeam-channel, Vec<u8> (threads)"),
    ("memcpy", "memcpy (1 thread)"),
];

pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else {
        format!("{:.0}k", r / 1e3)
    }
}

fn fmt_bw(r: f64, size: usize) -> String {
    let b = r * size as f64;
    if b >= 1e9 {
        format!("{:.2} GB/s", b / 1e9)
    } else {
        format!("{:.0} MB/s", b / 1e6)
    }
}

/// How many times better this queue is than the peer (> 1: we win).
fn ratio(ours: Option<f64>, theirs: Option<f64>, higher_is_better: bool) -> String {
    match (ours, theirs) {
        (Some(o), Some(t)) if o > 0.0 && t > 0.0 => {
            let x = if higher_is_better { o / t } else { t / o };
            format!("{x:.2}x")
        }
        _ => "-".into(),
    }
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

pub fn table(size: usize, rows: &[(&str, Row)]) -> String {
    let ours = rows.iter().find(|(k, _)| *k == "mq").map(|(_, r)| *r);
    let mut t = String::new();
    writeln!(
        t,
        "\n{size}-byte messages (capacity {}; POSIX mq {}, {} per ping-pong queue, as RLIMIT_MSGQUEUE allows):\n",
        capacity_for(size),
        posix_capacity(size, 1),
        posix_capacity(size, 2)
    )
    .unwrap();
    writeln!(
        t,
        "| peer | 1->1 msg/s | 1->1 bandwidth | mq / peer | 4->4 msg/s | mq / peer | RTT median | RTT p99 | peer / mq (median) |"
    )
    .unwrap();
    writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|").unwrap();
    for (key, r) in rows {
        let name = PEERS.iter().find(|(k, _)| k == key).unwrap().1;
        let o = ours.unwrap_or_default();
        writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            mark(opt(r.one, fmt_rate), r.slow[0]),
            opt(r.one, |x| fmt_bw(x, size)),
            ratio(o.one, r.one, true),
            mark(opt(r.many, fmt_rate), r.slow[1]),
            ratio(o.many, r.many, true),
            mark(opt(r.rtt, |x| format!("{:.2} us", x.0)), r.slow[2]),
            opt(r.rtt, |x| format!("{:.2} us", x.1)),
            ratio(o.rtt.map(|x| x.0), r.rtt.map(|x| x.0), false),
        )
        .unwrap();
    }
    t
}

fn find(all: &[(usize, Vec<(&str, Row)>)], size: usize, key: &str) -> Option<Row> {
    all.iter()
        .find(|(s, _)| *s == size)
        .and_then(|(_, rows)| rows.iter().find(|(k, _)| *k == key))
        .map(|(_, r)| *r)
}

/// The targets, each with the measured ratio and whether it is met.
pub fn targets(all: &[(usize, Vec<(&str, Row)>)]) -> String {
    let mut t = String::from("\nTargets:\n\n| target | measured | met |\n|---|---:|---|\n");
    let mut line = |what: String, value: Option<f64>, unit: &str, ok: &dyn Fn(f64) -> bool| {
        let (v, m) = match value {
            Some(v) => (format!("{v:.2}{unit}"), if ok(v) { "yes" } else { "NO" }),
            None => ("-".into(), "not measured"),
        };
        writeln!(t, "| {what} | {v} | {m} |").unwrap();
    };
    let one = |size, key| find(all, size, key).and_then(|r| r.one);
    let div = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let mq64 = one(64, "mq");
    line(
        "1->1 64 B: this queue / POSIX mq >= 10".into(),
        div(mq64, one(64, "posix")),
        "x",
        &|x| x >= 10.0,
    );
    line(
        "1->1 64 B: this queue / pipe >= 3".into(),
        div(mq64, one(64, "pipe")),
        "x",
        &|x| x >= 3.0,
    );
    // The in-process ceiling is the faster of the two crossbeam rows.
    let cb64 = match (one(64, "crossbeam"), one(64, "crossbeam-vec")) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    line(
        "1->1 64 B: this queue / crossbeam-channel (faster row) >= 0.5".into(),
        div(mq64, cb64),
        "x",
        &|x| x >= 0.5,
    );
    for (size, _) in all {
        let r = find(all, *size, "mq");
        line(
            format!("4->4 / 1->1 of this queue, {size} B >= 0.5"),
            r.and_then(|r| div(r.many, r.one)),
            "x",
            &|x| x >= 0.5,
        );
    }
    for (size, _) in all {
        let ours = find(all, *size, "mq").and_then(|r| r.rtt).map(|x| x.0);
        let posix = find(all, *size, "posix").and_then(|r| r.rtt).map(|x| x.0);
        line(
            format!("ping-pong {size} B: POSIX mq median / ours > 1"),
            div(posix, ours),
            "x",
            &|x| x > 1.0,
        );
    }
    let ours64 = find(all, 64, "mq").and_then(|r| r.rtt).map(|x| x.0);
    line(
        "ping-pong 64 B: our median <= 2 us".into(),
        ours64,
        " us",
        &|x| x <= 2.0,
    );
    line(
        "64 KiB 1->1: this queue / memcpy bandwidth >= 0.5".into(),
        div(one(65536, "mq"), one(65536, "memcpy")),
        "x",
        &|x| x >= 0.5,
    );
    let batch64 = one(64, "batch");
    line(
        "1->1 64 B: batched / this queue unbatched >= 2.5".into(),
        div(batch64, mq64),
        "x",
        &|x| x >= 2.5,
    );
    line(
        "1->1 64 B: batched / limit probe batch 64 >= 0.5".into(),
        div(batch64, one(64, "probe64")),
        "x",
        &|x| x >= 0.5,
    );
    line(
        "1->1 64 B: unbatched / limit probe batch 1 >= 0.5".into(),
        div(mq64, one(64, "probe1")),
        "x",
        &|x| x >= 0.5,
    );
    // Same message size on both sides, so the ratio of bytes per second
    // is the ratio of messages per second.
    line(
        "1->1 1 KiB: batched / limit probe batch 64 (bytes/s) >= 0.7".into(),
        div(one(1024, "batch"), one(1024, "probe64")),
        "x",
        &|x| x >= 0.7,
    );
    for (size, _) in all {
        let b = find(all, *size, "batch");
        line(
            format!("4->4 / 1->1 batched, {size} B >= 0.5"),
            b.and_then(|b| div(b.many, b.one)),
            "x",
            &|x| x >= 0.5,
        );
    }
    for (size, _) in all {
        let r = find(all, *size, "mq");
        let b = find(all, *size, "batch");
        if let (Some(r), Some(b)) = (r, b) {
            writeln!(
                t,
                "| batching gain {size} B (put_many/get_many_into 64 vs put/get) | 1->1 {:.2}x, 4->4 {:.2}x | (info) |",
                div(b.one, r.one).unwrap_or(0.0),
                div(b.many, r.many).unwrap_or(0.0)
            )
            .unwrap();
        }
    }
    t
}

pub fn fan_in_table(rows: &[(&str, f64, bool)]) -> String {
    let ours = rows.iter().find(|r| r.0 == "mq").map(|r| r.1);
    let mut t = String::new();
    writeln!(
        t,
        "\nFan-in, 64-byte messages ({FAN_IN} producer processes -> 1 consumer; capacity {}; POSIX mq {}):\n",
        capacity_for(64),
        posix_capacity(64, 1)
    )
    .unwrap();
    writeln!(t, "| peer | {FAN_IN}->1 msg/s | mq put/get / peer |").unwrap();
    writeln!(t, "|---|---:|---:|").unwrap();
    for (key, rate, slow) in rows {
        let name = PEERS.iter().find(|(k, _)| k == key).unwrap().1;
        writeln!(
            t,
            "| {name} | {} | {} |",
            mark(fmt_rate(*rate), *slow),
            ratio(ours, Some(*rate), true)
        )
        .unwrap();
    }
    let batched = rows.iter().find(|r| r.0 == "batch").map(|r| r.1);
    if let (Some(o), Some(b)) = (ours, batched) {
        writeln!(
            t,
            "\nbatching gain {FAN_IN}->1: put_many/get_many_into {BATCH} moves {:.2}x the messages of put/get",
            b / o
        )
        .unwrap();
    }
    t
}

pub fn placement_table(rows: &[(&str, [Row; 2])]) -> String {
    let mut t = String::from(
        "\nPlacement, 64-byte messages (producer/ping side on CPU 0; consumer/echo side on CPU 0 = one core, on CPU 1 = two cores):\n\n\
         | peer | 1->1 one core | 1->1 two cores | RTT median one core | RTT p99 one core | RTT median two cores | RTT p99 two cores |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (key, [a, b]) in rows {
        let name = PEERS.iter().find(|(k, _)| k == key).unwrap().1;
        let us = |x: f64| format!("{x:.2} us");
        writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            mark(opt(a.one, fmt_rate), a.slow[0]),
            mark(opt(b.one, fmt_rate), b.slow[0]),
            mark(opt(a.rtt.map(|x| x.0), us), a.slow[2]),
            opt(a.rtt.map(|x| x.1), us),
            mark(opt(b.rtt.map(|x| x.0), us), b.slow[2]),
            opt(b.rtt.map(|x| x.1), us),
        )
        .unwrap();
    }
    t
}
