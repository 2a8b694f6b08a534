//! This queue side by side with what a user would pick instead, in one run.
//!
//! ```sh
//! cargo bench -p queue-core --bench compare                   # full run, 2-3.5 minutes
//! MQ_BENCH_QUICK=1 cargo bench -p queue-core --bench compare  # quick run, 20-30 s
//! cargo bench -p queue-core --bench compare -- --quick --only mq,posix --sizes 64
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
//!   ring as large as this queue's (the bandwidth ceiling for large messages).
//!
//! The two rows of this queue run the producer and consumer loops of the
//! `queue-bench` crate, the same code as `mq bench` (`--batch 64` for the
//! batched row): each message carries a sequence stamp, and each run checks
//! the producers' counts and checksums against the consumers' (see
//! `queue_bench::stamp`).
//!
//! Metrics (`--metrics`, default all): `1` throughput of 1 producer -> 1
//! consumer; `4` of 4 producers -> 4 consumers (a stream cannot be shared by
//! competing readers, so pipes and sockets get 4 independent 1 -> 1 pairs: the
//! easiest case for them); `pp` the ping-pong round trip (one message bounced
//! between two processes over two queues / pipes, or both directions of one
//! socketpair), median and p99; `10` fan-in: 10 producer processes -> 1
//! consumer with 64-byte messages (faster-fifo's case for `get_many`; this
//! queue with put/get and batched, and POSIX mq); `pin` the placement table:
//! 64-byte 1 -> 1 and ping-pong with both sides pinned to one core, then to
//! two cores. Throughput
//! runs are calibrated to about 0.5 s (0.1 s quick) and repeated 3 times (once
//! quick); the median is shown.
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

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use queue_bench::{Mode, Report, Tally, machine};
use queue_core::{GetError, Queue};

/// Set in the children: their role is in the arguments.
const CHILD_ENV: &str = "MQ_COMPARE_CHILD";
/// Messages per `put_many` / `get_many_into` call in the batched rows.
const BATCH: usize = 64;
/// Message sizes compared by default.
const SIZES: [usize; 3] = [64, 1024, 65536];
/// Producers and consumers of the "4 -> 4" runs.
const MANY: usize = 4;

/// Slots of every queue-like peer for messages of `size` bytes: 1024, or 64
/// for 64 KiB messages (a 4 MiB ring).
fn capacity_for(size: usize) -> usize {
    if size >= 32 * 1024 { 64 } else { 1024 }
}

// ======================================================================
// Children
// ======================================================================

fn child_main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let num = |i: usize| -> usize { a[i].parse().expect("numeric argument") };
    match a[0] {
        "mq-prod" => mq_producer(a[1], a[2], num(3), num(4), num(5), num(6)),
        "mq-cons" => mq_consumer(a[1], a[2], num(3)),
        "mq-echo" => mq_echo(a[1], a[2], a[3]),
        "mq-idle" => mq_idle(a[1], a[2]),
        "pmq-prod" => pmq_producer(a[1], num(2), num(3)),
        "pmq-cons" => pmq_consumer(a[1], num(2)),
        "pmq-echo" => pmq_echo(a[1], a[2], num(3)),
        "fd-prod" => fd_producer(num(1) as RawFd, num(2), num(3)),
        "fd-cons" => fd_consumer(num(1) as RawFd, num(2)),
        "fd-echo" => fd_echo(num(1) as RawFd, num(2) as RawFd, num(3)),
        other => panic!("unknown child role {other:?}"),
    }
}

/// Tells the parent we are set up, then waits for the start signal (the
/// parent closes our stdin: every child sees EOF at about the same moment).
fn ready_then_wait_for_go() {
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).unwrap();
}

fn report_done(n: usize) {
    println!("done {n}");
    std::io::stdout().flush().unwrap();
}

/// The last line of this queue's producers and consumers.
fn report(r: Report) {
    println!("{r}");
    std::io::stdout().flush().unwrap();
}

/// Puts `count` messages of `size` bytes stamped with producer number `id`
/// (the shared loop of `queue_bench`), then reports `sent COUNT SUM`.
fn mq_producer(dir: &str, name: &str, size: usize, count: usize, batch: usize, id: usize) {
    let q = Queue::open_in(dir, name).expect("producer: open");
    ready_then_wait_for_go();
    let mode = Mode::batched(batch).limit(count as u64);
    let sent = queue_bench::produce(&q, id as u64, size, mode).expect("produce");
    report(Report::sent(sent));
}

/// Takes messages until the queue is closed and drained (the shared loop of
/// `queue_bench`), then reports `got COUNT SUM`.
fn mq_consumer(dir: &str, name: &str, batch: usize) {
    let q = Queue::open_in(dir, name).expect("consumer: open");
    ready_then_wait_for_go();
    let got = queue_bench::consume(&q, Mode::batched(batch)).expect("consume");
    report(Report::got(got));
}

fn mq_echo(dir: &str, ping: &str, pong: &str) {
    let ping = Queue::open_in(dir, ping).expect("echo: open ping");
    let pong = Queue::open_in(dir, pong).expect("echo: open pong");
    let mut buf = Vec::with_capacity(ping.max_msg_size());
    ready_then_wait_for_go();
    loop {
        match ping.get_into(&mut buf) {
            Ok(_) => pong.put(&buf).expect("echo put"),
            Err(GetError::Closed) => break,
            Err(e) => panic!("echo get: {e}"),
        }
    }
}

fn mq_idle(dir: &str, name: &str) {
    let q = Queue::open_in(dir, name).expect("idle: open");
    ready_then_wait_for_go();
    match q.get() {
        Err(GetError::Closed) => {}
        other => panic!("idle getter: expected Closed, got {other:?}"),
    }
}

// ---- POSIX message queues

fn pmq_open_existing(name: &str) -> libc::mqd_t {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: `c` is a valid NUL-terminated string; no attributes are passed
    // without O_CREAT.
    let q = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDWR) };
    assert!(
        q >= 0,
        "mq_open {name}: {}",
        std::io::Error::last_os_error()
    );
    q
}

fn pmq_send(q: libc::mqd_t, msg: &[u8]) {
    // SAFETY: `msg` is a valid buffer of `msg.len()` bytes.
    let r = unsafe { libc::mq_send(q, msg.as_ptr().cast(), msg.len(), 0) };
    assert!(r == 0, "mq_send: {}", std::io::Error::last_os_error());
}

/// Receives into `buf` (whose length must be the queue's `mq_msgsize`);
/// returns the message length.
fn pmq_receive(q: libc::mqd_t, buf: &mut [u8]) -> usize {
    let mut prio = 0;
    loop {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        let r = unsafe { libc::mq_receive(q, buf.as_mut_ptr().cast(), buf.len(), &mut prio) };
        if r >= 0 {
            return r as usize;
        }
        let e = std::io::Error::last_os_error();
        assert!(
            e.kind() == std::io::ErrorKind::Interrupted,
            "mq_receive: {e}"
        );
    }
}

fn pmq_producer(name: &str, size: usize, count: usize) {
    let q = pmq_open_existing(name);
    let msg = vec![0xabu8; size];
    ready_then_wait_for_go();
    for _ in 0..count {
        pmq_send(q, &msg);
    }
    report_done(count);
}

/// Takes messages until an empty one (the stop sentinel).
fn pmq_consumer(name: &str, size: usize) {
    let q = pmq_open_existing(name);
    let mut buf = vec![0u8; size];
    ready_then_wait_for_go();
    let mut n = 0;
    while pmq_receive(q, &mut buf) != 0 {
        n += 1;
    }
    report_done(n);
}

fn pmq_echo(ping: &str, pong: &str, size: usize) {
    let (ping, pong) = (pmq_open_existing(ping), pmq_open_existing(pong));
    let mut buf = vec![0u8; size];
    ready_then_wait_for_go();
    loop {
        let len = pmq_receive(ping, &mut buf);
        if len == 0 {
            break;
        }
        pmq_send(pong, &buf[..len]);
    }
}

// ---- pipes and sockets: `[u32 length, little-endian][payload]` frames

fn frame(size: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + size);
    f.extend_from_slice(&(size as u32).to_le_bytes());
    f.resize(4 + size, 0xab);
    f
}

/// Reads one frame into `buf`; `None` at EOF or at the empty stop frame.
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Option<usize> {
    let mut len = [0u8; 4];
    if r.read_exact(&mut len).is_err() {
        return None;
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 {
        return None;
    }
    buf.resize(len, 0);
    r.read_exact(buf).expect("read frame payload");
    Some(len)
}

/// Takes ownership of a descriptor the parent passed down.
fn inherited(fd: RawFd) -> File {
    // SAFETY: the parent cleared FD_CLOEXEC on exactly this descriptor for
    // this child and passed its number; nothing else in this process owns it.
    File::from(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_producer(fd: RawFd, size: usize, count: usize) {
    let mut w = inherited(fd);
    let f = frame(size);
    ready_then_wait_for_go();
    for _ in 0..count {
        w.write_all(&f).expect("write frame");
    }
    w.write_all(&0u32.to_le_bytes()).expect("write stop frame");
    report_done(count);
}

fn fd_consumer(fd: RawFd, size: usize) {
    let mut r = BufReader::with_capacity(64 * 1024, inherited(fd));
    let mut buf = Vec::with_capacity(size);
    ready_then_wait_for_go();
    let mut n = 0;
    while read_frame(&mut r, &mut buf).is_some() {
        n += 1;
    }
    report_done(n);
}

fn fd_echo(rfd: RawFd, wfd: RawFd, size: usize) {
    // For a socketpair both numbers are the same descriptor: own it once.
    let rf = inherited(rfd);
    let mut w = if wfd == rfd {
        rf.try_clone().unwrap()
    } else {
        inherited(wfd)
    };
    let mut r = BufReader::with_capacity(64 * 1024, rf);
    let mut buf = Vec::with_capacity(size);
    let mut out = Vec::with_capacity(4 + size);
    ready_then_wait_for_go();
    while let Some(len) = read_frame(&mut r, &mut buf) {
        out.clear();
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&buf);
        w.write_all(&out).expect("echo write");
    }
}

// ======================================================================
// Parent: process management
// ======================================================================

/// A child process running one role; killed (it is ours) if still running
/// when dropped, e.g. after a panic in the parent.
struct Kid {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Kid {
    /// Spawns the bench binary as a child with `args`; `keep` are descriptors
    /// (opened close-on-exec) the child must inherit.
    fn spawn(args: &[String], keep: &[RawFd]) -> Kid {
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

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).expect("read from child");
        assert!(
            !s.is_empty(),
            "bench child exited early (see its error above)"
        );
        s.trim_end().to_owned()
    }

    fn expect_ready(&mut self) {
        assert_eq!(self.line(), "ready");
    }

    fn go(&mut self) {
        self.stdin = None;
    }

    /// Waits for the child's `done <n>` line.
    fn done(&mut self) -> usize {
        let l = self.line();
        l.strip_prefix("done ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from child: {l:?}"))
    }

    /// Waits for the [`Report`] line of one of this queue's producers or
    /// consumers.
    fn report(&mut self) -> Tally {
        let l = self.line();
        l.parse::<Report>()
            .unwrap_or_else(|e| panic!("bench child: {e}"))
            .tally()
    }

    fn finish(mut self) {
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

/// Where a run's processes (or threads) are pinned. `Free` leaves it to the
/// scheduler, which on this kind of machine may put a producer and its
/// consumer on one core or on two, and the figures differ a lot between the
/// two; the placement table measures both explicitly.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Placement {
    Free,
    /// Everything on CPU 0.
    OneCore,
    /// Producers (and the ping side) on CPU 0, consumers (and the echo) on CPU 1.
    TwoCores,
}

static PLACEMENT: AtomicU32 = AtomicU32::new(0);

fn placement() -> Placement {
    match PLACEMENT.load(Ordering::Relaxed) {
        1 => Placement::OneCore,
        2 => Placement::TwoCores,
        _ => Placement::Free,
    }
}

fn set_placement(p: Placement) {
    let v = match p {
        Placement::Free => 0,
        Placement::OneCore => 1,
        Placement::TwoCores => 2,
    };
    PLACEMENT.store(v, Ordering::Relaxed);
}

impl Placement {
    fn cpu(self, consumer_side: bool) -> Option<usize> {
        match self {
            Placement::Free => None,
            Placement::OneCore => Some(0),
            Placement::TwoCores => Some(usize::from(consumer_side)),
        }
    }
}

fn cpu_set(cpu: Option<usize>) -> Option<libc::cpu_set_t> {
    cpu.map(|c| {
        // SAFETY: cpu_set_t is plain data, all-zero is the empty set, and
        // CPU_SET only writes inside it (c is a small CPU number).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(c, &mut set);
            set
        }
    })
}

/// Pins the calling thread for the current placement; restores its previous
/// CPU mask when dropped.
struct PinSelf(Option<libc::cpu_set_t>);

impl PinSelf {
    fn new(consumer_side: bool) -> PinSelf {
        let Some(set) = cpu_set(placement().cpu(consumer_side)) else {
            return PinSelf(None);
        };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is plain data; the calls get valid pointers to
        // sets of `size` bytes and act on the calling thread only.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, size, &mut old);
            libc::sched_setaffinity(0, size, &set);
            PinSelf(Some(old))
        }
    }
}

impl Drop for PinSelf {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: as in `new`.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old) };
        }
    }
}

fn spawn_all(specs: Vec<(Vec<String>, Vec<RawFd>)>) -> Vec<Kid> {
    let mut kids: Vec<Kid> = specs.iter().map(|(a, k)| Kid::spawn(a, k)).collect();
    for k in &mut kids {
        k.expect_ready();
    }
    kids
}

fn args(parts: &[&dyn std::fmt::Display]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// The private queue directory, removed when dropped.
struct Scratch {
    dir: PathBuf,
    next: AtomicU32,
}

impl Scratch {
    fn new() -> Scratch {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("mq-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create bench directory");
        Scratch {
            dir,
            next: AtomicU32::new(0),
        }
    }

    fn name(&self, what: &str) -> String {
        format!("{what}{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp path")
    }

    fn create(&self, name: &str, size: usize, capacity: usize) -> Queue {
        Queue::builder(name)
            .dir(&self.dir)
            .capacity(capacity)
            .max_msg_size(size)
            .create()
            .expect("create bench queue")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ======================================================================
// Parent: throughput runs (each returns the elapsed time for n messages)
// ======================================================================

fn split(n: u64, parts: usize) -> u64 {
    n / parts as u64
}

fn tp_mq(s: &Scratch, size: usize, p: usize, n: u64, batch: usize) -> Duration {
    tp_mq_fan(s, size, p, p, n, batch)
}

/// `p` producers and `c` consumers of this queue.
fn tp_mq_fan(s: &Scratch, size: usize, p: usize, c: usize, n: u64, batch: usize) -> Duration {
    let name = s.name("tp");
    let q = s.create(&name, size, capacity_for(size));
    let each = split(n, p);
    let mut specs = Vec::new();
    for id in 0..p {
        let a = args(&[&"mq-prod", &s.dir_str(), &name, &size, &each, &batch, &id]);
        specs.push((a, vec![]));
    }
    for _ in 0..c {
        specs.push((args(&[&"mq-cons", &s.dir_str(), &name, &batch]), vec![]));
    }
    let mut kids = spawn_all(specs);
    // Every participant is attached: unlink now, nothing can leak.
    Queue::remove_in(&s.dir, &name).expect("remove bench queue");
    let start = Instant::now();
    kids.iter_mut().for_each(Kid::go);
    let mut sent = Tally::default();
    for k in &mut kids[..p] {
        sent.merge(k.report());
    }
    q.close().unwrap();
    let mut got = Tally::default();
    for k in &mut kids[p..] {
        got.merge(k.report());
    }
    let elapsed = start.elapsed();
    assert_eq!(sent.count, each * p as u64, "producers put too few");
    assert_eq!(got, sent, "messages lost or duplicated (count, checksum)");
    kids.into_iter().for_each(Kid::finish);
    elapsed
}

fn tp_posix(size: usize, p: usize, n: u64) -> Duration {
    tp_posix_fan(size, p, p, n)
}

/// `p` producers and `c` consumers of a POSIX queue.
fn tp_posix_fan(size: usize, p: usize, c: usize, n: u64) -> Duration {
    let q = PosixQueue::create(size, posix_capacity(size, 1));
    let each = split(n, p);
    let mut specs = Vec::new();
    for _ in 0..p {
        specs.push((args(&[&"pmq-prod", &q.name, &size, &each]), vec![]));
    }
    for _ in 0..c {
        specs.push((args(&[&"pmq-cons", &q.name, &size]), vec![]));
    }
    let mut kids = spawn_all(specs);
    q.unlink();
    let start = Instant::now();
    kids.iter_mut().for_each(Kid::go);
    for k in &mut kids[..p] {
        k.done();
    }
    for _ in 0..c {
        pmq_send(q.mqd, &[]); // one stop sentinel per consumer
    }
    let got: usize = kids[p..].iter_mut().map(Kid::done).sum();
    let elapsed = start.elapsed();
    assert_eq!(got as u64, each * p as u64, "messages lost or duplicated");
    kids.into_iter().for_each(Kid::finish);
    elapsed
}

#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Pipe,
    Socket,
}

/// A connected pair of descriptors (read end, write end), close-on-exec.
fn stream_pair(kind: Stream) -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors returned.
    let r = unsafe {
        match kind {
            Stream::Pipe => libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC),
            Stream::Socket => libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            ),
        }
    };
    assert_eq!(r, 0, "pipe/socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let one_mib: libc::c_int = 1 << 20;
    // Best effort: bigger buffers, as a user tuning for throughput would do.
    // SAFETY: plain fcntl/setsockopt calls on descriptors we own, with a
    // pointer to a live c_int of the size passed.
    unsafe {
        match kind {
            Stream::Pipe => {
                libc::fcntl(b.as_raw_fd(), libc::F_SETPIPE_SZ, one_mib);
            }
            Stream::Socket => {
                for fd in [&a, &b] {
                    for opt in [libc::SO_SNDBUFFORCE, libc::SO_RCVBUFFORCE] {
                        libc::setsockopt(
                            fd.as_raw_fd(),
                            libc::SOL_SOCKET,
                            opt,
                            (&one_mib as *const libc::c_int).cast(),
                            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                        );
                    }
                }
            }
        }
    }
    (a, b)
}

/// `p` independent producer -> consumer pairs, one stream each.
fn tp_stream(kind: Stream, size: usize, p: usize, n: u64) -> Duration {
    let each = split(n, p);
    let mut specs = Vec::new();
    let mut fds = Vec::new();
    for _ in 0..p {
        let (r, w) = stream_pair(kind);
        let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
        specs.push((args(&[&"fd-prod", &wfd, &size, &each]), vec![wfd]));
        specs.push((args(&[&"fd-cons", &rfd, &size]), vec![rfd]));
        fds.push((r, w));
    }
    let mut kids = spawn_all(specs);
    drop(fds); // the children hold their ends now
    let start = Instant::now();
    kids.iter_mut().for_each(Kid::go);
    let mut got = 0;
    for pair in kids.chunks_mut(2) {
        got += pair[1].done();
    }
    let elapsed = start.elapsed();
    assert_eq!(got as u64, each * p as u64, "messages lost or duplicated");
    kids.into_iter().for_each(Kid::finish);
    elapsed
}

/// A message for the crossbeam rows, made by copying the template: a
/// `[u8; N]` travels by value (copied into the channel's slot and out, like
/// this queue's payload); a `Vec<u8>` is allocated and filled per message,
/// and only its pointer travels.
trait CbMsg: Send + 'static {
    fn make(template: &[u8]) -> Self;
}

impl<const N: usize> CbMsg for [u8; N] {
    #[inline]
    fn make(template: &[u8]) -> Self {
        template.try_into().expect("template of N bytes")
    }
}

impl CbMsg for Vec<u8> {
    #[inline]
    fn make(template: &[u8]) -> Self {
        template.to_vec()
    }
}

fn tp_crossbeam<M: CbMsg>(size: usize, p: usize, n: u64) -> Duration {
    let each = split(n, p);
    let (tx, rx) = crossbeam_channel::bounded::<M>(capacity_for(size));
    let barrier = Barrier::new(2 * p + 1);
    let template = vec![0xabu8; size];
    std::thread::scope(|sc| {
        let mut consumers = Vec::new();
        for _ in 0..p {
            let tx = tx.clone();
            let (barrier, template) = (&barrier, &template);
            sc.spawn(move || {
                let _pin = PinSelf::new(false);
                barrier.wait();
                for _ in 0..each {
                    tx.send(M::make(std::hint::black_box(template))).unwrap();
                }
            });
            let rx = rx.clone();
            consumers.push(sc.spawn(move || {
                let _pin = PinSelf::new(true);
                barrier.wait();
                let mut n = 0u64;
                while let Ok(m) = rx.recv() {
                    std::hint::black_box(&m);
                    n += 1;
                }
                n
            }));
        }
        drop((tx, rx));
        barrier.wait();
        let start = Instant::now();
        let got: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
        let elapsed = start.elapsed();
        assert_eq!(got, each * p as u64);
        elapsed
    })
}

fn tp_crossbeam_sized(size: usize, by_value: bool, p: usize, n: u64) -> Duration {
    match (by_value, size) {
        (false, _) => tp_crossbeam::<Vec<u8>>(size, p, n),
        (true, 64) => tp_crossbeam::<[u8; 64]>(size, p, n),
        (true, 1024) => tp_crossbeam::<[u8; 1024]>(size, p, n),
        (true, 65536) => tp_crossbeam::<[u8; 65536]>(size, p, n),
        _ => panic!("crossbeam [u8; N] rows exist for 64, 1024 and 65536 bytes only"),
    }
}

/// One thread copying `n` messages into successive slots of a ring as large
/// as this queue's.
fn tp_memcpy(size: usize, n: u64) -> Duration {
    let cap = capacity_for(size);
    let src = vec![0xabu8; size];
    let mut ring = vec![0u8; cap * size];
    ring.iter_mut().for_each(|b| *b = 1); // fault the pages in
    let start = Instant::now();
    for i in 0..n as usize {
        let slot = i % cap;
        ring[slot * size..(slot + 1) * size].copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&ring[slot * size]);
    }
    start.elapsed()
}

// ======================================================================
// Parent: ping-pong (each returns round-trip samples in nanoseconds)
// ======================================================================

struct PingPlan {
    warmup: usize,
    max: usize,
    time: Duration,
}

/// Runs `round_trip` for the warm-up, then until the plan's time or count
/// runs out; returns the measured round trips.
fn sample(plan: &PingPlan, mut round_trip: impl FnMut()) -> Vec<u64> {
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

fn pp_mq(s: &Scratch, plan: &PingPlan, size: usize) -> Vec<u64> {
    let (a, b) = (s.name("ping"), s.name("pong"));
    let ping = s.create(&a, size, capacity_for(size));
    let pong = s.create(&b, size, capacity_for(size));
    let mut kids = spawn_all(vec![(args(&[&"mq-echo", &s.dir_str(), &a, &b]), vec![])]);
    Queue::remove_in(&s.dir, &a).unwrap();
    Queue::remove_in(&s.dir, &b).unwrap();
    kids[0].go();
    let msg = vec![0xabu8; size];
    let mut buf = Vec::with_capacity(size);
    let v = sample(plan, || {
        ping.put(&msg).unwrap();
        pong.get_into(&mut buf).unwrap();
    });
    ping.close().unwrap();
    kids.into_iter().for_each(Kid::finish);
    v
}

fn pp_posix(plan: &PingPlan, size: usize) -> Vec<u64> {
    let ping = PosixQueue::create(size, posix_capacity(size, 2));
    let pong = PosixQueue::create(size, posix_capacity(size, 2));
    let mut kids = spawn_all(vec![(
        args(&[&"pmq-echo", &ping.name, &pong.name, &size]),
        vec![],
    )]);
    ping.unlink();
    pong.unlink();
    kids[0].go();
    let msg = vec![0xabu8; size];
    let mut buf = vec![0u8; size];
    let v = sample(plan, || {
        pmq_send(ping.mqd, &msg);
        pmq_receive(pong.mqd, &mut buf);
    });
    pmq_send(ping.mqd, &[]);
    kids.into_iter().for_each(Kid::finish);
    v
}

fn pp_stream(kind: Stream, plan: &PingPlan, size: usize) -> Vec<u64> {
    // Parent writes `to_w` and reads `from_r`; the child reads `to_r` and
    // writes `from_w`. A socketpair is one bidirectional stream.
    let (mine_r, mine_w, theirs_r, theirs_w, keep);
    match kind {
        Stream::Pipe => {
            let (to_r, to_w) = stream_pair(Stream::Pipe);
            let (from_r, from_w) = stream_pair(Stream::Pipe);
            (theirs_r, theirs_w) = (to_r.as_raw_fd(), from_w.as_raw_fd());
            mine_w = File::from(to_w);
            mine_r = File::from(from_r);
            keep = vec![to_r, from_w];
        }
        Stream::Socket => {
            let (x, y) = stream_pair(Stream::Socket);
            (theirs_r, theirs_w) = (y.as_raw_fd(), y.as_raw_fd());
            mine_w = File::from(x);
            mine_r = mine_w.try_clone().unwrap();
            keep = vec![y];
        }
    }
    let a = args(&[&"fd-echo", &theirs_r, &theirs_w, &size]);
    let mut kids = spawn_all(vec![(a, vec![theirs_r, theirs_w])]);
    drop(keep);
    kids[0].go();
    let f = frame(size);
    let mut w = mine_w;
    let mut r = BufReader::with_capacity(64 * 1024, mine_r);
    let mut buf = Vec::with_capacity(size);
    let v = sample(plan, || {
        w.write_all(&f).unwrap();
        read_frame(&mut r, &mut buf).unwrap();
    });
    drop(w); // EOF (or for the socket, the stop frame below) ends the echo
    if kind == Stream::Socket {
        r.get_mut().write_all(&0u32.to_le_bytes()).unwrap();
    }
    kids.into_iter().for_each(Kid::finish);
    v
}

fn pp_crossbeam<M: CbMsg>(plan: &PingPlan, size: usize) -> Vec<u64> {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<M>(capacity_for(size));
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<M>(capacity_for(size));
    let template = vec![0xabu8; size];
    std::thread::scope(|sc| {
        sc.spawn(move || {
            let _pin = PinSelf::new(true);
            while let Ok(m) = ping_rx.recv() {
                pong_tx.send(m).unwrap();
            }
        });
        let v = sample(plan, || {
            ping_tx
                .send(M::make(std::hint::black_box(&template)))
                .unwrap();
            std::hint::black_box(pong_rx.recv().unwrap());
        });
        drop(ping_tx);
        v
    })
}

fn pp_crossbeam_sized(plan: &PingPlan, size: usize, by_value: bool) -> Vec<u64> {
    match (by_value, size) {
        (false, _) => pp_crossbeam::<Vec<u8>>(plan, size),
        (true, 64) => pp_crossbeam::<[u8; 64]>(plan, size),
        (true, 1024) => pp_crossbeam::<[u8; 1024]>(plan, size),
        (true, 65536) => pp_crossbeam::<[u8; 65536]>(plan, size),
        _ => panic!("crossbeam [u8; N] rows exist for 64, 1024 and 65536 bytes only"),
    }
}

// ======================================================================
// POSIX queue creation with raised limits
// ======================================================================

/// A POSIX message queue created by the parent; unlinked when dropped.
struct PosixQueue {
    name: String,
    mqd: libc::mqd_t,
}

static PMQ_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Writes `value` to a sysctl file if its current value is lower; returns
/// the old value to restore.
fn raise_sysctl(path: &str, value: i64) -> Option<String> {
    let old = std::fs::read_to_string(path).ok()?;
    if old.trim().parse::<i64>().ok()? >= value {
        return None;
    }
    std::fs::write(path, value.to_string()).ok()?;
    Some(old)
}

impl PosixQueue {
    fn create(size: usize, capacity: usize) -> PosixQueue {
        let name = format!(
            "/mq-bench-{}-{}",
            std::process::id(),
            PMQ_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let c = std::ffi::CString::new(name.as_str()).unwrap();
        // SAFETY: mq_attr is plain data; all-zero is a valid value.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = capacity as libc::c_long;
        attr.mq_msgsize = size as libc::c_long;
        // Raise the system limits for the instant of the create, then restore.
        const MAX: &str = "/proc/sys/fs/mqueue/msg_max";
        const SIZE: &str = "/proc/sys/fs/mqueue/msgsize_max";
        let old_max = raise_sysctl(MAX, capacity as i64);
        let old_size = raise_sysctl(SIZE, size as i64);
        // SAFETY: `c` is NUL-terminated and `attr` lives across the call; the
        // variadic arguments are the mode (promoted to c_uint) and the attr.
        let mqd = unsafe {
            libc::mq_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                0o600 as libc::c_uint,
                &attr as *const libc::mq_attr,
            )
        };
        let err = std::io::Error::last_os_error();
        if let Some(v) = old_max {
            let _ = std::fs::write(MAX, v);
        }
        if let Some(v) = old_size {
            let _ = std::fs::write(SIZE, v);
        }
        assert!(
            mqd >= 0,
            "mq_open({name}, maxmsg {capacity}, msgsize {size}): {err}"
        );
        PosixQueue { name, mqd }
    }

    fn unlink(&self) {
        let c = std::ffi::CString::new(self.name.as_str()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated name.
        unsafe { libc::mq_unlink(c.as_ptr()) };
    }
}

impl Drop for PosixQueue {
    fn drop(&mut self) {
        self.unlink(); // ENOENT after an early unlink is fine
        // SAFETY: `mqd` was returned by mq_open and is closed only here.
        unsafe { libc::mq_close(self.mqd) };
    }
}

/// Raises the per-user byte budget of POSIX queues (RLIMIT_MSGQUEUE, 800 KiB
/// by default, charged when a queue is created) as far as allowed: to
/// unlimited with CAP_SYS_RESOURCE, else to the hard limit.
fn raise_msgqueue_rlimit() {
    let mut lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `lim` is a valid rlimit for both calls.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_MSGQUEUE, &lim) != 0
            && libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut lim) == 0
        {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MSGQUEUE, &lim);
        }
    }
}

/// The byte budget of POSIX queues (the soft RLIMIT_MSGQUEUE).
fn msgqueue_budget() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut lim) } != 0 {
        return 819_200;
    }
    lim.rlim_cur
}

/// Capacity of a POSIX queue for `size`-byte messages when `alive` such
/// queues exist at once: this queue's capacity, unless the RLIMIT_MSGQUEUE
/// budget is smaller (the kernel charges about 96 bytes per message on top
/// of `mq_msgsize`).
fn posix_capacity(size: usize, alive: u64) -> usize {
    let per_msg = size as u64 + 128;
    let fits = (msgqueue_budget() / alive).saturating_sub(4096) / per_msg;
    (capacity_for(size) as u64).min(fits).max(1) as usize
}

// ======================================================================
// Measurement plumbing and the report
// ======================================================================

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

    /// Calibrates a message count so one run takes about the target time,
    /// then returns the median rate (messages per second) of `reps` runs.
    fn rate(&self, label: &str, run: &mut dyn FnMut(u64) -> Duration) -> (f64, bool) {
        let mut n: u64 = 4096;
        let mut d = run(n);
        while d < self.target / 2 && n < 1 << 34 {
            let scale = self.target.as_secs_f64() / d.as_secs_f64().max(1e-6);
            n = ((n as f64 * scale.clamp(2.0, 50.0)) as u64).next_multiple_of(256);
            d = run(n);
        }
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

/// Measurements repeated because the host was slow while they ran.
static REPEATED: AtomicU32 = AtomicU32::new(0);

/// Runs `f` (up to 4 times) until it runs without a slow spell of the host
/// (see [`host_slow_during`]); returns the last result and whether it still
/// had one.
fn steady<T>(label: &str, mut f: impl FnMut() -> T) -> (T, bool) {
    let mut tries = 0;
    loop {
        let (v, slow) = host_slow_during(&mut f);
        tries += 1;
        if !slow || tries == 4 {
            return (v, slow);
        }
        REPEATED.fetch_add(1, Ordering::Relaxed);
        eprintln!("  {label}: the host was slow meanwhile; measuring again");
    }
}

/// Collects the first probes for [`usual_line_ns`], every 25 ms, and waits
/// (at most 5 s) for a calm start: 12 probes in a row within twice the
/// fastest seen, so that the first figures are not taken in a slow spell.
fn calibrate_host() {
    let start = Instant::now();
    let (mut fastest, mut calm) = (u64::MAX, 0);
    while start.elapsed() < Duration::from_secs(5) {
        let Some(ns) = probe_line() else { return };
        fastest = fastest.min(ns);
        calm = if ns <= 2 * fastest { calm + 1 } else { 0 };
        if calm >= 12 && PROBES.lock().unwrap().len() >= 30 {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[derive(Default, Clone, Copy)]
struct Row {
    /// Messages per second, 1 -> 1.
    one: Option<f64>,
    /// Messages per second in total, 4 -> 4.
    many: Option<f64>,
    /// Round trip median and p99, microseconds.
    rtt: Option<(f64, f64)>,
    /// Whether each of the three was measured while cross-core transfers
    /// were slow (see [`host_slow_during`]).
    slow: [bool; 3],
}

/// Every cache-line round trip probed in this run, in ns.
static PROBES: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// The usual cache-line round trip between CPU 0 and CPU 1: the lower
/// quartile of all probes so far (robust to slow spells, and to the odd
/// freak fast probe), `u64::MAX` before the first or on one core.
fn usual_line_ns() -> u64 {
    let mut v = PROBES.lock().unwrap().clone();
    if v.is_empty() {
        return u64::MAX;
    }
    v.sort_unstable();
    v[v.len() / 4]
}

/// Probes the cache-line round trip and records it.
fn probe_line() -> Option<u64> {
    let ns = line_round_trip_ns()? as u64;
    PROBES.lock().unwrap().push(ns);
    Some(ns)
}

/// Runs `f` between two probes of the cache-line round trip; the flag says
/// whether either probe took over three times the usual one - the host had
/// moved our virtual CPUs somewhere slower, which slows every cross-core
/// figure (ours and the peers') for as long as it lasts.
fn host_slow_during<T>(f: impl FnOnce() -> T) -> (T, bool) {
    let before = probe_line();
    let v = f();
    let after = probe_line();
    let usual = usual_line_ns();
    let slow = [before, after]
        .into_iter()
        .flatten()
        .any(|x| x > usual.saturating_mul(3));
    (v, slow)
}

/// A figure, marked when it was measured in a slow spell.
fn mark(text: String, slow: bool) -> String {
    if slow {
        format!("{text} \u{2020}")
    } else {
        text
    }
}

const PEERS: [(&str, &str); 8] = [
    ("mq", "this queue, put/get"),
    ("batch", "this queue, put_many/get_many_into 64"),
    ("posix", "POSIX mq"),
    ("pipe", "pipe, framed"),
    ("socket", "socketpair, framed"),
    ("crossbeam", "crossbeam-channel, [u8; N] (threads)"),
    ("crossbeam-vec", "crossbeam-channel, Vec<u8> (threads)"),
    ("memcpy", "memcpy (1 thread)"),
];

fn fmt_rate(r: f64) -> String {
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

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Machine-wide CPU time so far, from the first line of `/proc/stat`, in
/// clock ticks: (busy, steal). Busy is everything but idle, iowait and steal.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return (0, 0);
    }
    // user nice system idle iowait irq softirq steal
    (v[0] + v[1] + v[2] + v[5] + v[6], v[7])
}

/// CPU time used by this process and its waited-for children, in seconds.
fn own_cpu_secs() -> f64 {
    let secs = |who| {
        // SAFETY: getrusage fills the struct it is given; all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(ru.ru_utime) + t(ru.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// How busy the rest of the machine was while we ran: CPU time used by
/// other processes, and time stolen by the hypervisor, each as a share of
/// all the cores' time.
fn noise(start: (u64, u64), own_start: f64, elapsed: Duration) -> String {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (busy, steal) = machine_ticks();
    let total = elapsed.as_secs_f64() * cores;
    let busy = (busy - start.0) as f64 / hz;
    let others = (busy - (own_cpu_secs() - own_start)).max(0.0);
    format!(
        "other processes used {:.0}% and the hypervisor stole {:.0}% of the {cores:.0} cores' time",
        others / total * 100.0,
        (steal - start.1) as f64 / hz / total * 100.0
    )
}

fn line_note(before: Option<u64>, after: Option<u64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!(
            "a cache line's round trip between CPU 0 and CPU 1 took {b} ns before, {a} ns after"
        ),
        _ => "one core: no cache-line round trip to measure".into(),
    }
}

/// The hardware floor for the two-core figures: median round trip of one
/// cache line between two threads spinning on CPU 0 and CPU 1, in ns. On a
/// virtual machine this moves (by 4x here) as the host moves the virtual
/// CPUs, so it is measured before and after each section.
fn line_round_trip_ns() -> Option<f64> {
    #[repr(align(128))]
    struct Line(std::sync::atomic::AtomicU64);
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    let (ping, pong) = (Line(0.into()), Line(0.into()));
    const N: u64 = 20_000;
    let old = placement();
    set_placement(Placement::TwoCores);
    let mut v = std::thread::scope(|s| {
        s.spawn(|| {
            let _pin = PinSelf::new(true);
            for i in 1..=N {
                while ping.0.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong.0.store(i, Ordering::Release);
            }
        });
        let _pin = PinSelf::new(false);
        let mut v = Vec::with_capacity(N as usize);
        for i in 1..=N {
            let t = Instant::now();
            ping.0.store(i, Ordering::Release);
            while pong.0.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            v.push(t.elapsed().as_nanos() as u64);
        }
        v
    });
    set_placement(old);
    v.sort_unstable();
    Some(v[v.len() / 2] as f64)
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

fn summarise(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn table(size: usize, rows: &[(&str, Row)]) -> String {
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

/// Clock ticks (utime + stime) a process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A getter blocked on an empty queue: CPU ticks used over a few seconds.
fn idle_check(s: &Scratch, secs: u64) -> String {
    let name = s.name("idle");
    let q = s.create(&name, 64, 16);
    let mut kids = spawn_all(vec![(args(&[&"mq-idle", &s.dir_str(), &name]), vec![])]);
    kids[0].go();
    std::thread::sleep(Duration::from_millis(500)); // past any spinning
    let pid = kids[0].child.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let used = cpu_ticks(pid) - before;
    q.close().unwrap();
    kids.into_iter().for_each(Kid::finish);
    Queue::remove_in(&s.dir, &name).unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    format!(
        "blocked get: {used} clock ticks (utime+stime, {hz:.0}/s) in {secs} s = {:.2}% of one core",
        used as f64 / hz / secs as f64 * 100.0
    )
}

fn find(all: &[(usize, Vec<(&str, Row)>)], size: usize, key: &str) -> Option<Row> {
    all.iter()
        .find(|(s, _)| *s == size)
        .and_then(|(_, rows)| rows.iter().find(|(k, _)| *k == key))
        .map(|(_, r)| *r)
}

/// The issue's targets, each with the measured ratio and whether it is met.
fn targets(all: &[(usize, Vec<(&str, Row)>)]) -> String {
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

/// Peers of the placement table (64-byte messages).
const PINNED: [&str; 4] = ["mq", "posix", "pipe", "crossbeam"];

/// 1 -> 1 throughput and ping-pong of 64-byte messages with the two sides
/// pinned to one core, then to two cores.
/// Producers in the fan-in measurement (faster-fifo's "10 -> 1" case).
const FAN_IN: usize = 10;

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

fn fan_in_table(rows: &[(&str, f64, bool)]) -> String {
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

fn placement_table(rows: &[(&str, [Row; 2])]) -> String {
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
