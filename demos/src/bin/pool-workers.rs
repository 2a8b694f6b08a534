//! # pool-workers: a process pool (seed article, section 4.5)
//!
//! What it teaches:
//! * starting a process per task is expensive; a **pool** starts a few
//!   worker processes once and *reuses* them: here 3 processes run 10 tasks,
//!   so each pid shows up several times;
//! * tasks are handed out as workers become free, so they finish out of
//!   order and a slow task does not hold up the others;
//! * `close()` stops new submissions and `join()` waits for the tasks and
//!   the workers, like the article's `po.close(); po.join()`;
//! * Rust cannot send a function to another process, so the pool starts
//!   *this program* again as its workers, and the workers run the task by
//!   name: that is why `main` begins with `run_worker_if_spawned`.
//!
//! ```text
//! cargo run -p demos --bin pool-workers
//! cargo run -p demos --bin pool-workers -- --workers 2 --tasks 6 --max-ms 500
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use demos::Rng;
use queue_pool::{Pool, Registry, Task};
use serde::{Deserialize, Serialize};

/// The article's `worker(msg)`: sleep a random time, report who ran it.
const WORKER: Task<Job, Ran> = Task::new("worker");

#[derive(Serialize, Deserialize)]
struct Job {
    /// The article's `msg`: the task number.
    msg: u32,
    /// How long to "work".
    sleep_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Ran {
    pid: u32,
    elapsed: Duration,
}

fn registry() -> Registry {
    Registry::new().register(WORKER, |job: Job| -> Result<Ran, String> {
        let start = Instant::now();
        let pid = std::process::id();
        println!("{} started, process id {pid}", job.msg);
        std::thread::sleep(Duration::from_millis(job.sleep_ms));
        let elapsed = start.elapsed();
        println!("{} finished, took {:.2} s", job.msg, elapsed.as_secs_f64());
        Ok(Ran { pid, elapsed })
    })
}

#[derive(Parser)]
#[command(about = "A pool of worker processes running tasks (seed article 4.5)")]
struct Cli {
    /// Worker processes in the pool (the article's Pool(3))
    #[arg(long, short = 'j', default_value_t = 3)]
    workers: usize,
    /// Tasks to run
    #[arg(long, default_value_t = 10)]
    tasks: u32,
    /// Longest random sleep of a task, in milliseconds (the article: 2 s)
    #[arg(long, default_value_t = 2000)]
    max_ms: u64,
    /// Seed for the random sleeps (default: the clock)
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    // In a worker this runs tasks and never returns.
    queue_pool::run_worker_if_spawned(&registry());
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pool-workers: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        queue_pool::cleanup();
        eprintln!("\ninterrupted");
        std::process::exit(130);
    })
    .context("cannot install the Ctrl-C handler")?;
    let mut rng = cli.seed.map_or_else(Rng::from_time, Rng::new);
    let po = Pool::builder(&registry())
        .workers(cli.workers)
        .on_worker_death(|d| eprintln!("pool-workers: {d}; a new worker took its place"))
        .spawn()
        .context("cannot start the pool")?;
    println!("pool of {} processes: {:?}", cli.workers, po.worker_pids());
    let started = Instant::now();
    for msg in 0..cli.tasks {
        let sleep_ms = rng.below(cli.max_ms.max(1));
        po.submit(WORKER, &Job { msg, sleep_ms })?;
    }
    println!("-----start-----");
    po.close(); // no more tasks
    let mut results = po.join().context("cannot stop the pool")?; // wait for every task
    println!("-----stop-----");

    results.sort_by_key(|r| r.id);
    let mut by_pid: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for r in &results {
        match r.output::<Ran>() {
            Ok(ran) => {
                println!(
                    "task {:>2} ran in process {} for {:.2} s",
                    r.id,
                    ran.pid,
                    ran.elapsed.as_secs_f64()
                );
                by_pid.entry(ran.pid).or_default().push(r.id.to_string());
            }
            Err(e) => println!("task {:>2} failed: {e}", r.id),
        }
    }
    println!(
        "{} processes ran {} tasks in {:.2} s:",
        by_pid.len(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    for (pid, tasks) in by_pid {
        println!("  process {pid} ran tasks {}", tasks.join(", "));
    }
    Ok(())
}
