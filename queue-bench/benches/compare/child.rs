//! The child-process protocol: the bench binary re-runs itself as each
//! producer, consumer or echo process (with [`CHILD_ENV`] set and the role in
//! its arguments).
//!
//! A child opens what it was given, prints `ready`, and waits for the start
//! signal: the parent closes the child's stdin, so every child of a run sees
//! EOF at about the same moment. At the end it prints `done N` (the peers) or
//! a [`Report`] line (this queue's producers and consumers). [`Kid`] is the
//! parent's side of one child.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use queue_bench::{Report, Tally};

use crate::pin::{cpu_set, placement};
use crate::{CHILD_ENV, ours, pipe, posix_mq};

pub fn child_main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let num = |i: usize| -> usize { a[i].parse().expect("numeric argument") };
    match a[0] {
        "mq-prod" => ours::mq_producer(a[1], a[2], num(3), num(4), num(5), num(6)),
        "mq-cons" => ours::mq_consumer(a[1], a[2], num(3)),
        "mq-echo" => ours::mq_echo(a[1], a[2], a[3]),
        "mq-idle" => ours::mq_idle(a[1], a[2]),
        "pmq-prod" => posix_mq::pmq_producer(a[1], num(2), num(3)),
        "pmq-cons" => posix_mq::pmq_consumer(a[1], num(2)),
        "pmq-echo" => posix_mq::pmq_echo(a[1], a[2], num(3)),
        "fd-prod" => pipe::fd_producer(num(1) as RawFd, num(2), num(3)),
        "fd-cons" => pipe::fd_consumer(num(1) as RawFd, num(2)),
        "fd-echo" => pipe::fd_echo(num(1) as RawFd, num(2) as RawFd, num(3)),
        other => panic!("unknown child role {other:?}"),
    }
}

/// Tells the parent we are set up, then waits for the start signal (the
/// parent closes our stdin: every child sees EOF at about the same moment).
pub fn ready_then_wait_for_go() {
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).unwrap();
}

pub fn report_done(n: usize) {
    println!("done {n}");
    std::io::stdout().flush().unwrap();
}

/// The last line of this queue's producers and consumers.
pub fn report(r: Report) {
    println!("{r}");
    std::io::stdout().flush().unwrap();
}

/// A child process running one role; killed (it is ours) if still running
/// when dropped, e.g. after a panic in the parent.
pub struct Kid {
    pub child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Kid {
    /// Spawns the bench binary as a child with `args`; `keep` are descriptors
    /// (opened close-on-exec) the child must inherit.
    pub fn spawn(args: &[String], keep: &[RawFd]) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(CHILD_ENV, "1")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let keep = keep.to_vec();
        let consumer_side = !args[0].ends_with("-prod");
        let pin = cpu_set(placement().cpu(consumer_side));
        // SAFETY: the closure runs in the forked child before exec and only
        // calls fcntl and sched_setaffinity, which are async-signal-safe; it
        // allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &keep {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(set) = &pin {
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn bench child");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        Kid { child, stdin, out }
    }

    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read from child");
        assert!(
            !s.is_empty(),
            "bench child exited early (see its error above)"
        );
        s.trim_end().to_owned()
    }

    pub fn expect_ready(&mut self) {
        assert_eq!(self.line(), "ready");
    }

    pub fn go(&mut self) {
        self.stdin = None;
    }

    /// Waits for the child's `done <n>` line.
    pub fn done(&mut self) -> usize {
        let l = self.line();
        l.strip_prefix("done ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from child: {l:?}"))
    }

    /// Waits for the [`Report`] line of one of this queue's producers or
    /// consumers.
    pub fn report(&mut self) -> Tally {
        let l = self.line();
        l.parse::<Report>()
            .unwrap_or_else(|e| panic!("bench child: {e}"))
            .tally()
    }

    pub fn finish(mut self) {
        self.stdin = None;
        let st = self.child.wait().expect("wait for child");
        assert!(st.success(), "bench child failed: {st}");
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.stdin = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn spawn_all(specs: Vec<(Vec<String>, Vec<RawFd>)>) -> Vec<Kid> {
    let mut kids: Vec<Kid> = specs.iter().map(|(a, k)| Kid::spawn(a, k)).collect();
    for k in &mut kids {
        k.expect_ready();
    }
    kids
}

pub fn args(parts: &[&dyn std::fmt::Display]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}
