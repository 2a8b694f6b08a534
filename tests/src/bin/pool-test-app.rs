//! A small program built on `queue_pool`, driven as a process by the
//! pool tests (`tests/it/pool.rs`). It is both the parent and, re-started by
//! the pool, the workers. Every line it prints is `key=value` pairs, so the
//! tests can parse it; workers print `started` lines on the shared stdout.
//!
//! ```text
//! pool-test-app SCENARIO [ARGS...]
//!   squares N WORKERS     map `square` over 0..N
//!   slow N MS WORKERS [PREFETCH]  N tasks that sleep MS ms (kill a worker meanwhile)
//!   errors                a failing task, a panicking task, a good one
//!   crash RETRIES         a task that aborts its worker every time, and a good one
//!   timeout MS            task_timeout MS: one task that hangs, then N short ones
//!   own-timeout MS        no task_timeout; one task that hangs with its own timeout MS
//!                         (AsyncResult::timeout), then 3 short ones
//!   drop N                submit N long tasks, then drop the pool unjoined
//!   sigint N              N long tasks; SIGINT runs queue_pool::cleanup and exits 130
//!   hang N                N long tasks; never returns (kill the parent)
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use queue_pool::{Pool, Registry, Task, TaskResult};

const SQUARE: Task<u64, u64> = Task::new("square");
const SLOW: Task<u64, u32> = Task::new("slow");
const FAIL: Task<String, ()> = Task::new("fail");
const PANIC: Task<String, ()> = Task::new("panic");
const ABORT: Task<(), ()> = Task::new("abort");

fn registry() -> Registry {
    Registry::new()
        .register(SQUARE, |x: u64| Ok::<_, String>(x * x))
        .register(SLOW, |ms: u64| -> Result<u32, String> {
            let pid = std::process::id();
            println!("started pid={pid} ms={ms}");
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_millis(ms));
            Ok(pid)
        })
        .register(FAIL, |msg: String| Err::<(), _>(msg))
        .register(PANIC, |msg: String| -> Result<(), String> {
            panic!("{msg}")
        })
        .register(ABORT, |()| -> Result<(), String> { std::process::abort() })
}

fn print_result(r: &TaskResult) {
    match r.error() {
        None => println!(
            "result id={} task={} ok=true pid={} attempts={}",
            r.id, r.task, r.pid, r.attempts
        ),
        Some(e) => println!(
            "result id={} task={} ok=false pid={} attempts={} error={e}",
            r.id, r.task, r.pid, r.attempts
        ),
    }
}

fn print_pool(p: &Pool) {
    let pids: Vec<String> = p.worker_pids().iter().map(u32::to_string).collect();
    println!("pids={}", pids.join(","));
    println!("queues={}", p.queue_names().join(","));
    let _ = std::io::stdout().flush();
}

/// Prints every result in submission order, the deaths, joins, "done".
fn finish_in_order(p: Pool) -> Result<(), Box<dyn std::error::Error>> {
    let mut results: Vec<TaskResult> = p.results().collect();
    results.sort_by_key(|r| r.id);
    for r in &results {
        print_result(r);
    }
    println!("deaths={}", p.worker_deaths().len());
    p.join()?;
    println!("done");
    Ok(())
}

fn arg(args: &[String], i: usize, default: u64) -> u64 {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    queue_pool::run_worker_if_spawned(&registry());
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pool-test-app: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let scenario = args.first().map(String::as_str).unwrap_or("");
    let builder = |workers: u64| {
        Pool::builder(&registry())
            .workers(workers as usize)
            .on_worker_death(|d| {
                println!(
                    "death pid={} task={:?} status={}",
                    d.pid,
                    d.task.map(|t| t.index()),
                    d.status
                )
            })
    };
    match scenario {
        "squares" => {
            let n = arg(args, 1, 100);
            let p = builder(arg(args, 2, 3)).spawn()?;
            print_pool(&p);
            let out = p.map(SQUARE, 0..n)?;
            let mut ok = 0;
            for (i, r) in out.iter().enumerate() {
                if *r == Ok(i as u64 * i as u64) {
                    ok += 1;
                }
            }
            p.join()?;
            println!("done ok={ok} of={n}");
        }
        "slow" => {
            let (n, ms) = (arg(args, 1, 4), arg(args, 2, 1000));
            let p = builder(arg(args, 3, 2))
                .prefetch(arg(args, 4, 0) as usize)
                .spawn()?;
            print_pool(&p);
            for _ in 0..n {
                p.submit(SLOW, &ms)?;
            }
            for r in p.results() {
                print_result(&r);
            }
            let deaths = p.worker_deaths().len();
            p.join()?;
            println!("done deaths={deaths}");
        }
        "errors" => {
            let p = builder(2).spawn()?;
            print_pool(&p);
            p.submit(FAIL, &"disk on fire".to_string())?;
            p.submit(PANIC, &"kaboom".to_string())?;
            p.submit(SQUARE, &12)?;
            let mut results: Vec<TaskResult> = p.results().collect();
            results.sort_by_key(|r| r.id);
            for r in &results {
                print_result(r);
            }
            println!("square={:?}", results[2].output::<u64>());
            println!("deaths={}", p.worker_deaths().len());
            p.join()?;
            println!("done");
        }
        "crash" => {
            let p = builder(2).max_retries(arg(args, 1, 2) as u32).spawn()?;
            print_pool(&p);
            p.submit(ABORT, &())?;
            p.submit(SQUARE, &3)?;
            finish_in_order(p)?;
        }
        "timeout" => {
            let p = builder(1)
                .task_timeout(Duration::from_millis(arg(args, 1, 300)))
                .prefetch(2)
                .spawn()?;
            print_pool(&p);
            p.submit(SLOW, &600_000)?; // hangs (for a test's lifetime)
            for _ in 0..3 {
                p.submit(SLOW, &10)?;
            }
            finish_in_order(p)?;
        }
        "own-timeout" => {
            let p = builder(1).prefetch(2).spawn()?;
            print_pool(&p);
            p.apply_async(SLOW, &600_000)? // hangs (for a test's lifetime)
                .timeout(Duration::from_millis(arg(args, 1, 300)));
            for _ in 0..3 {
                p.submit(SLOW, &10)?;
            }
            finish_in_order(p)?;
        }
        "drop" => {
            let p = builder(2).spawn()?;
            print_pool(&p);
            for _ in 0..arg(args, 1, 4) {
                p.submit(SLOW, &60_000)?;
            }
            std::thread::sleep(Duration::from_millis(300));
            drop(p);
            println!("dropped");
        }
        "sigint" => {
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe.
            unsafe {
                libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
            }
            let p = builder(2).spawn()?;
            print_pool(&p);
            for _ in 0..arg(args, 1, 4) {
                p.submit(SLOW, &60_000)?;
            }
            while !INTERRUPTED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            queue_pool::cleanup();
            println!("interrupted");
            let _ = std::io::stdout().flush();
            // Exit at once, as a Ctrl-C handler does: no destructors.
            std::process::exit(130);
        }
        "hang" => {
            let p = builder(2).spawn()?;
            print_pool(&p);
            for _ in 0..arg(args, 1, 4) {
                p.submit(SLOW, &60_000)?;
            }
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        other => return Err(format!("unknown scenario {other:?}").into()),
    }
    Ok(ExitCode::SUCCESS)
}
