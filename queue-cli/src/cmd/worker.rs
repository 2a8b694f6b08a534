//! The hidden `mq worker ROLE NAME` subcommand: the producer and consumer
//! processes of `mq bench` and `mq demo` (the same binary, started again),
//! and `Team`, which starts them and makes sure none outlives its parent's
//! command or leaves its temporary queue behind.
//!
//! A worker with `--wait-go` prints `ready` once attached and waits for a
//! line on stdin, so that process start-up is not measured. Producers and
//! consumers then run the loops of the `queue-bench` crate (the same as the
//! comparison bench of queue-core), one message per call or `--batch N` per
//! call, and print one line at the end, a [`Report`]: `sent COUNT CHECKSUM`
//! or `got COUNT CHECKSUM`. The checksum is the wrapping sum of the 8-byte
//! sequence numbers at the start of each message (producer `id` in the top
//! bits), so the parent can check that every message arrived exactly once.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use queue_bench::Mode;
/// Re-exported for `mq demo`, which reads the same reports.
pub use queue_bench::Report;
use queue_core::Queue;

use super::Ctx;
use crate::cli::{Role, WorkerArgs};
use crate::exit::Exit;
use crate::interrupt;

pub fn run(ctx: &Ctx, a: WorkerArgs) -> Result<Exit> {
    let q = ctx.open(&a.name)?;
    let mut out = std::io::stdout();
    if a.wait_go {
        writeln!(out, "ready")?;
        out.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
    }
    let mode = Mode::batched(a.batch as usize);
    match a.role {
        Role::Producer => {
            let sent = queue_bench::produce(&q, a.id, a.size as usize, mode)?;
            writeln!(out, "{}", Report::sent(sent))?;
        }
        Role::Consumer => {
            let got = queue_bench::consume(&q, mode)?;
            writeln!(out, "{}", Report::got(got))?;
        }
        Role::LeaseHolder => {
            let lease = q.get_lease()?;
            writeln!(out, "leased {}", String::from_utf8_lossy(&lease))?;
            out.flush()?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
    out.flush()?;
    Ok(Exit::Ok)
}

/// A started worker.
pub struct Worker {
    pub role: Role,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the worker prints (without the newline).
    pub fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            let status = self.child.wait()?;
            bail!(
                "{:?} worker (pid {}) ended early: {status}",
                self.role,
                self.pid()
            );
        }
        Ok(line.trim_end().to_owned())
    }

    /// Tells a `--wait-go` worker to start.
    pub fn go(&mut self) -> Result<()> {
        let mut stdin = self.stdin.take().context("worker already started")?;
        writeln!(stdin, "go")?;
        Ok(())
    }
}

/// A temporary queue and the workers on it: on drop (and on Ctrl-C) the
/// workers are killed and the queue removed.
pub struct Team {
    pub dir: PathBuf,
    pub name: String,
    pub workers: Vec<Worker>,
}

impl Team {
    /// Takes charge of the queue `name` (already created) in `dir`.
    pub fn new(dir: PathBuf, name: String) -> Team {
        interrupt::add_queue(dir.clone(), name.clone());
        Team {
            dir,
            name,
            workers: Vec::new(),
        }
    }

    /// Starts a worker process; returns its index in `workers`.
    pub fn spawn(&mut self, role: Role, size: u64, id: u64, wait_go: bool) -> Result<usize> {
        self.spawn_batched(role, size, id, 1, wait_go)
    }

    /// Like [`Team::spawn`], for a producer or consumer that moves `batch`
    /// messages per call (`put_many` / `get_many_into`) when `batch` > 1.
    pub fn spawn_batched(
        &mut self,
        role: Role,
        size: u64,
        id: u64,
        batch: u64,
        wait_go: bool,
    ) -> Result<usize> {
        let exe = std::env::current_exe().context("cannot find the mq executable")?;
        let role_name = match role {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::LeaseHolder => "lease-holder",
        };
        let mut cmd = Command::new(&exe);
        cmd.args(["worker", role_name, &self.name])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--size", &size.to_string(), "--id", &id.to_string()])
            .args(["--batch", &batch.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if wait_go {
            cmd.arg("--wait-go");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        interrupt::add_child(child.id());
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
        self.workers.push(Worker {
            role,
            child,
            stdin,
            stdout,
        });
        Ok(self.workers.len() - 1)
    }

    /// Kills worker `i` with SIGKILL and reaps it.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        let w = &mut self.workers[i];
        w.child.kill()?;
        w.child.wait()?;
        interrupt::remove_child(w.pid());
        Ok(())
    }

    /// Waits for worker `i` to exit successfully.
    pub fn wait(&mut self, i: usize) -> Result<()> {
        let w = &mut self.workers[i];
        let status = w.child.wait()?;
        interrupt::remove_child(w.pid());
        if !status.success() {
            bail!("{:?} worker (pid {}) failed: {status}", w.role, w.pid());
        }
        Ok(())
    }

    /// Reads worker `i`'s final report line and waits for it to exit.
    pub fn finish(&mut self, i: usize) -> Result<Report> {
        let line = self.workers[i].read_line()?;
        self.wait(i)?;
        Ok(line.parse()?)
    }

    /// Removes the queue now (also done on drop).
    pub fn remove_queue(&mut self) -> Result<()> {
        interrupt::remove_queue(&self.name);
        Queue::remove_in(&self.dir, &self.name)?;
        Ok(())
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        for w in &mut self.workers {
            if let Ok(None) = w.child.try_wait() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
            interrupt::remove_child(w.pid());
        }
        let _ = Queue::remove_in(&self.dir, &self.name);
        interrupt::remove_queue(&self.name);
    }
}
