//! The 1 -> 1 rows that issue 17's targets compare - this queue unbatched
//! and batched, and the limit probe - measured round by round: each run is
//! calibrated alone, then every round runs each of them once. On a host
//! whose state moves the figures 3x from one minute to the next, a ratio of
//! figures taken minutes apart says little; taken in the same rounds, the
//! medians see the same states.

use std::time::Duration;

use crate::noise::steady;
use crate::ours::{Scratch, tp_mq};
use crate::probe::tp_probe;
use crate::stats::median;
use crate::table::fmt_rate;
use crate::{BATCH, Plan};

/// The rows measured so.
const ALTERNATED: [&str; 5] = ["mq", "batch", "probe1", "probe16", "probe64"];

/// The 1 -> 1 rate (median of the plan's repetitions) of each wanted row of
/// [`ALTERNATED`] for messages of `size` bytes, and whether a run of it
/// still had a slow spell after its repeats (as [`Plan::rate`]).
pub fn alternated_rates(plan: &Plan, s: &Scratch, size: usize) -> Vec<(&'static str, f64, bool)> {
    let keys: Vec<&'static str> = ALTERNATED.into_iter().filter(|k| plan.wants(k)).collect();
    let run = |key: &str, n: u64| match key {
        "mq" => tp_mq(s, size, 1, n, 1),
        "batch" => tp_mq(s, size, 1, n, BATCH),
        _ => tp_probe(size, key["probe".len()..].parse().expect("probe batch"), n),
    };
    let counts: Vec<u64> = keys
        .iter()
        .map(|k| plan.calibrate(&mut |n| run(k, n)))
        .collect();
    let mut rates = vec![Vec::new(); keys.len()];
    let mut slow = vec![false; keys.len()];
    for _ in 0..plan.reps {
        for (i, key) in keys.iter().enumerate() {
            let n = counts[i];
            let (d, s): (Duration, bool) = steady(&format!("{key} 1->1"), || run(key, n));
            rates[i].push(n as f64 / d.as_secs_f64());
            slow[i] |= s;
        }
    }
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            let shown: Vec<String> = rates[i].iter().map(|r| fmt_rate(*r)).collect();
            let label = format!("{key} 1->1 (alternated)");
            eprintln!(
                "  {label:<32} n={:<10} runs: {}",
                counts[i],
                shown.join(" ")
            );
            (*key, median(&mut rates[i]), slow[i])
        })
        .collect()
}
