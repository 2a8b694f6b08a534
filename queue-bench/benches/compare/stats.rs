//! Statistics: ping-pong sampling, median and percentiles.

use std::time::{Duration, Instant};

use crate::pin::PinSelf;

/// How long a ping-pong measurement runs.
pub struct PingPlan {
    /// Round trips made before any is measured.
    pub warmup: usize,
    /// At most this many round trips are measured...
    pub max: usize,
    /// ... and, after the first 100, only while this time lasts.
    pub time: Duration,
}

/// Runs `round_trip` for the warm-up, then until the plan's time or count
/// runs out; returns the measured round trips.
pub fn sample(plan: &PingPlan, mut round_trip: impl FnMut()) -> Vec<u64> {
    let _pin = PinSelf::new(false);
    for _ in 0..plan.warmup {
        round_trip();
    }
    let mut v = Vec::with_capacity(plan.max);
    let start = Instant::now();
    while v.len() < plan.max && (v.len() < 100 || start.elapsed() < plan.time) {
        let t = Instant::now();
        round_trip();
        v.push(t.elapsed().as_nanos() as u64);
    }
    v
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub fn summarise(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}
