//! # processes: two processes running at once (seed article, section 4.2)
//!
//! What it teaches:
//! * a *program* is a file on disk; a *process* is that program running,
//!   with its own pid, its own memory, and a parent;
//! * starting a process is like starting a thread, but each process is a
//!   whole copy of the program: here the program starts itself twice
//!   (`processes child 1`, `processes child 2`), which is what Python's
//!   `multiprocessing.Process(target=...).start()` does with the *spawn*
//!   start method;
//! * the states of a process: **R** running or ready (waiting for a CPU),
//!   **S** waiting (here: in `sleep`), and **Z** zombie: it has finished,
//!   but its parent has not collected its exit status yet (`wait`).
//!
//! Like the article's `text1`, child 1 prints once and returns; like `text2`,
//! child 2 keeps printing (for `--seconds`, not forever) and computes a bit
//! each second so that you can catch it running. While they run, the parent
//! prints their states every half second; look at them yourself from
//! another terminal with the `ps` command it prints, and try `kill <pid>`.
//!
//! ```text
//! cargo run -p demos --bin processes -- --seconds 10
//! ```

use std::io::Write;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use demos::{process_state, state_meaning, this_program};

#[derive(Parser)]
#[command(about = "Two processes running at once, and their states (seed article 4.2)")]
struct Cli {
    /// How long child 2 keeps printing
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Role {
    /// Internal: run as one of the two children
    #[command(hide = true)]
    Child { number: u8 },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.role {
        Some(Role::Child { number }) => child(number, cli.seconds),
        None => parent(cli.seconds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("processes: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The article's `text1` and `text2`.
fn child(number: u8, seconds: u64) -> anyhow::Result<()> {
    let me = std::process::id();
    let parent = std::os::unix::process::parent_id();
    if number == 1 {
        // text1: print once, then return (the process ends).
        println!("1---------- (process {me}, parent {parent}) done, returning");
        return Ok(());
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0u64;
    while Instant::now() < end {
        round += 1;
        println!("2---------- (process {me}, parent {parent}) round {round}");
        let _ = std::io::stdout().flush();
        // Compute for a moment (state R), then sleep (state S).
        let busy_until = Instant::now() + Duration::from_millis(300);
        let mut x = 0u64;
        while Instant::now() < busy_until {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    Ok(())
}

fn parent(seconds: u64) -> anyhow::Result<()> {
    let me = std::process::id();
    let spawn = |n: &str| -> anyhow::Result<Child> {
        this_program(&["--seconds", &seconds.to_string(), "child", n])?
            .spawn()
            .with_context(|| format!("cannot start child {n}"))
    };
    let mut children = [spawn("1")?, spawn("2")?];
    let pids = [children[0].id(), children[1].id()];
    println!(
        "parent {me} started two processes: {} (text1) and {} (text2)",
        pids[0], pids[1]
    );
    println!(
        "look at them from another terminal while they run:\n    ps -o pid,ppid,stat,etime,cmd -p {me},{},{}\n",
        pids[0], pids[1]
    );

    // Watch the states until child 2 ends. Child 1 is not waited for yet,
    // so after it returns it stays a zombie (Z) - on purpose.
    let start = Instant::now();
    let mut last_seen = [' ', ' '];
    loop {
        std::thread::sleep(Duration::from_millis(500));
        // Child 2 ended? (try_wait on child 2 only; child 1 stays a zombie.)
        let done = children[1]
            .try_wait()
            .context("cannot check child 2")?
            .is_some();
        let mut line = format!("[{:4.1}s]", start.elapsed().as_secs_f64());
        for (i, &pid) in pids.iter().enumerate() {
            if done && i == 1 {
                line.push_str(&format!(
                    "  {pid}: gone (ended, and the parent collected it)"
                ));
                continue;
            }
            let state = process_state(pid).unwrap_or('X');
            line.push_str(&format!("  {pid}: {state}"));
            if state != last_seen[i] {
                line.push_str(&format!(" ({})", state_meaning(state)));
                last_seen[i] = state;
            }
        }
        println!("{line}");
        if done {
            break;
        }
    }
    // Collect child 1's exit status: only now does its zombie disappear.
    let status1 = children[0].wait().context("cannot wait for child 1")?;
    let status2 = children[1].wait().context("cannot wait for child 2")?;
    println!(
        "\nparent collected the exit statuses: {} {}, {} {} (child 1's zombie is gone now: {})",
        pids[0],
        status1,
        pids[1],
        status2,
        process_state(pids[0]).map_or("yes".to_string(), |s| format!("no, state {s}")),
    );
    Ok(())
}
