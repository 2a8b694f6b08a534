//! `mq demo`: a self-contained tour, nothing to set up.
//!
//! 1. creates a temporary queue `demo-<pid>`;
//! 2. puts three messages and takes one, drawing the ring;
//! 3. lets a consumer process take a message under a lease, kills it with
//!    SIGKILL, and shows the message delivered again;
//! 4. runs producer and consumer processes for a moment, with progress and
//!    the measured rate, then closes the queue (end of stream) and checks
//!    that every message arrived exactly once;
//! 5. shows what `mq inspect` saw half-way through;
//! 6. removes the queue - also on an error or Ctrl-C.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytesize::ByteSize;
use queue_bench::Tally;
use queue_core::Queue;

use super::Ctx;
use super::worker::{Report, Team};
use crate::cli::{DemoArgs, Role};
use crate::exit::Exit;
use crate::output::{human_rate, stdout_is_tty};
use crate::render;

const CAPACITY: usize = 16;
const MSG_SIZE: usize = 64;
const PRODUCERS: u64 = 2;
const CONSUMERS: u64 = 2;

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<Exit> {
    let name = format!("demo-{}", std::process::id());
    let tty = stdout_is_tty();
    let mut out = io::stdout();
    let (bold, off) = if tty {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    let step = |out: &mut io::Stdout, title: &str| writeln!(out, "\n{bold}{title}{off}");
    let shell = |out: &mut io::Stdout, cmd: &str| writeln!(out, "  $ {cmd}");

    writeln!(
        out,
        "{bold}mq demo{off}: a tour of a named shared-memory queue shared by separate processes"
    )?;

    // 1 ------------------------------------------------------------------
    step(&mut out, "1. Create a queue")?;
    shell(
        &mut out,
        &format!("mq create {name} --capacity {CAPACITY} --max-msg-size {MSG_SIZE}"),
    )?;
    let q = Queue::builder(&name)
        .capacity(CAPACITY)
        .max_msg_size(MSG_SIZE)
        .dir(&ctx.dir)
        .create()
        .context("cannot create the demo queue (set MQ_DIR to a writable directory)")?;
    let mut team = Team::new(ctx.dir.clone(), name.clone());
    let s = q.stats();
    writeln!(
        out,
        "  created {}: {CAPACITY} slots of {MSG_SIZE} bytes = {} of shared memory.\n  \
         Any process that knows the name can open it; this one is a participant now.",
        s.path.display(),
        ByteSize(s.segment_size as u64)
    )?;

    // 2 ------------------------------------------------------------------
    step(&mut out, "2. Put three messages, take one")?;
    shell(&mut out, &format!("mq put {name} hello shared memory"))?;
    for m in ["hello", "shared", "memory"] {
        q.put(m.as_bytes())?;
    }
    shell(&mut out, &format!("mq get {name}"))?;
    let first = q.get()?;
    writeln!(out, "  {}", String::from_utf8_lossy(&first))?;
    writeln!(
        out,
        "  The queue is a ring of slots: puts fill slots at the tail, gets empty them at the head."
    )?;
    indent(&mut out, &render::ring(&q.stats(), &q.slots()))?;
    shell(&mut out, &format!("mq get {name} --all"))?;
    while let Ok(m) = q.try_get() {
        writeln!(out, "  {}", String::from_utf8_lossy(&m))?;
    }

    // 3 ------------------------------------------------------------------
    step(&mut out, "3. A consumer is killed while it holds a message")?;
    q.put(b"precious")?;
    let holder = team.spawn(Role::LeaseHolder, 0, 0, false)?;
    let pid = team.workers[holder].pid();
    let line = team.workers[holder].read_line()?;
    writeln!(
        out,
        "  consumer process {pid} took {:?} under a lease (taken, not yet acknowledged):",
        line.trim_start_matches("leased ")
    )?;
    indent(&mut out, &render::ring(&q.stats(), &q.slots()))?;
    shell(&mut out, &format!("kill -9 {pid}"))?;
    team.kill9(holder)?;
    let t = Instant::now();
    let again = q
        .get_timeout(Duration::from_secs(5))
        .context("the message of the killed consumer did not come back")?;
    writeln!(
        out,
        "  The kernel dropped the dead process's record lock; {:.0} ms later this process noticed,\n  \
         put the message back and got it again: {:?} (redelivered: {}). Nothing is lost.",
        t.elapsed().as_secs_f64() * 1e3,
        String::from_utf8_lossy(&again),
        q.stats().redelivered
    )?;

    // 4 ------------------------------------------------------------------
    step(&mut out, "4. Producers and consumers in separate processes")?;
    let mut producers = Vec::new();
    let mut consumers = Vec::new();
    for i in 0..PRODUCERS {
        producers.push(team.spawn(Role::Producer, MSG_SIZE as u64, i + 1, true)?);
    }
    for i in 0..CONSUMERS {
        consumers.push(team.spawn(Role::Consumer, MSG_SIZE as u64, i, true)?);
    }
    for w in &mut team.workers[producers[0]..] {
        let line = w.read_line()?;
        if line != "ready" {
            bail!("unexpected worker output {line:?}");
        }
    }
    let pids = |idx: &[usize], team: &Team| {
        idx.iter()
            .map(|&i| team.workers[i].pid().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        out,
        "  {PRODUCERS} producers (pids {}) put {MSG_SIZE}-byte messages as fast as they can for {:.1} s;\n  \
         {CONSUMERS} consumers (pids {}) take them. Each message goes to exactly one consumer.",
        pids(&producers, &team),
        a.seconds.as_secs_f64(),
        pids(&consumers, &team)
    )?;
    let base = q.stats().total_got;
    let t0 = Instant::now();
    for w in &mut team.workers[producers[0]..] {
        w.go()?;
    }
    let mut snapshot = None;
    let mut last_line = Instant::now();
    if tty {
        // Ctrl-C in the middle of the progress line: end the line first.
        crate::interrupt::set_terminal_reset(Some("\n"));
    }
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = t0.elapsed();
        let s = q.stats();
        let moved = s.total_got - base;
        if snapshot.is_none() && elapsed >= a.seconds / 2 {
            snapshot = Some(render::inspect_text(&s, &q.slots(), "demo"));
        }
        let frac = (elapsed.as_secs_f64() / a.seconds.as_secs_f64().max(1e-9)).min(1.0);
        let line = format!(
            "  {} {:>4.1}s  {moved:>9} messages  {:>9}  ring {}/{}",
            render::fill_bar((frac * 20.0) as u64, 20, 20),
            elapsed.as_secs_f64(),
            human_rate(moved as f64 / elapsed.as_secs_f64()),
            s.len,
            s.capacity
        );
        if tty {
            write!(out, "\r{line}\x1b[K")?;
            out.flush()?;
        } else if last_line.elapsed() >= Duration::from_millis(500) || elapsed >= a.seconds {
            writeln!(out, "{line}")?;
            last_line = Instant::now();
        }
        if elapsed >= a.seconds {
            break;
        }
    }
    if tty {
        writeln!(out)?;
        crate::interrupt::set_terminal_reset(None);
    }
    let moved_while_running = q.stats().total_got - base;
    let ran = t0.elapsed();
    shell(&mut out, &format!("mq close {name}"))?;
    q.close()?;
    writeln!(
        out,
        "  Closed: end of stream. Producers' next put fails, so they stop; consumers take what is\n  \
         left and then stop too."
    )?;
    let (mut sent, mut got) = (Tally::default(), Tally::default());
    let mut per = Vec::new();
    for i in producers.iter().chain(&consumers).copied() {
        let pid = team.workers[i].pid();
        let report = team.finish(i)?;
        let count = report.tally().count;
        match report {
            Report::Sent { .. } => {
                sent.merge(report.tally());
                per.push(format!("producer {pid} put {count}"));
            }
            Report::Got { .. } => {
                got.merge(report.tally());
                per.push(format!("consumer {pid} took {count}"));
            }
        }
    }
    let rate = moved_while_running as f64 / ran.as_secs_f64();
    writeln!(
        out,
        "  {} messages in {:.2} s: {} ({:.1} MB/s) between processes on this machine.\n  {}.",
        moved_while_running,
        ran.as_secs_f64(),
        human_rate(rate),
        rate * MSG_SIZE as f64 / 1e6,
        per.join(", ")
    )?;
    writeln!(
        out,
        "  (A ring of {CAPACITY} slots shared by {} processes on {} CPUs keeps them waiting for each other;\n  \
         'mq bench' measures this machine with a bigger ring.)",
        PRODUCERS + CONSUMERS + 1,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    )?;
    let (sent_n, got_n) = (sent.count, got.count);
    if sent != got {
        bail!("messages were lost or duplicated: {sent_n} sent, {got_n} received");
    }
    writeln!(
        out,
        "  {sent_n} sent, {got_n} received: every message arrived exactly once (counts and checksums match)."
    )?;

    // 5 ------------------------------------------------------------------
    step(
        &mut out,
        "5. What 'mq inspect' showed half-way through (run it yourself on any queue)",
    )?;
    shell(&mut out, &format!("mq inspect {name}"))?;
    if let Some(snap) = snapshot {
        indent(&mut out, &snap)?;
    }

    // 6 ------------------------------------------------------------------
    step(&mut out, "6. Clean up")?;
    shell(&mut out, &format!("mq rm {name}"))?;
    drop(q);
    team.remove_queue()?;
    writeln!(
        out,
        "  removed {}",
        queue_core::segment_path(&ctx.dir, &name).display()
    )?;

    writeln!(
        out,
        "\n{bold}Try it yourself{off} in two terminals:\n  \
         terminal 1:  mq create jobs && mq get jobs --follow\n  \
         terminal 2:  mq put jobs 'hello from terminal 2'; mq watch jobs\n  \
         then:        mq close jobs; mq rm jobs      (docs/cli.md has more)"
    )?;
    out.flush()?;
    Ok(Exit::Ok)
}

fn indent(out: &mut io::Stdout, text: &str) -> io::Result<()> {
    for line in text.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}
