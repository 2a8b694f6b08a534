//! POSIX message queues as a peer (`mq_open`, blocking `mq_send` /
//! `mq_receive`): the FFI calls, the child roles, queue creation with the
//! system limits raised for the instant of the create, and the throughput and
//! ping-pong runs. An empty message is the consumers' stop sentinel.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::child::{Kid, args, ready_then_wait_for_go, report_done, spawn_all};
use crate::stats::{PingPlan, sample};
use crate::{capacity_for, split};

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

pub fn pmq_producer(name: &str, size: usize, count: usize) {
    let q = pmq_open_existing(name);
    let msg = vec![0xabu8; size];
    ready_then_wait_for_go();
    for _ in 0..count {
        pmq_send(q, &msg);
    }
    report_done(count);
}

/// Takes messages until an empty one (the stop sentinel).
pub fn pmq_consumer(name: &str, size: usize) {
    let q = pmq_open_existing(name);
    let mut buf = vec![0u8; size];
    ready_then_wait_for_go();
    let mut n = 0;
    while pmq_receive(q, &mut buf) != 0 {
        n += 1;
    }
    report_done(n);
}

pub fn pmq_echo(ping: &str, pong: &str, size: usize) {
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

pub fn tp_posix(size: usize, p: usize, n: u64) -> Duration {
    tp_posix_fan(size, p, p, n)
}

/// `p` producers and `c` consumers of a POSIX queue.
pub fn tp_posix_fan(size: usize, p: usize, c: usize, n: u64) -> Duration {
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

pub fn pp_posix(plan: &PingPlan, size: usize) -> Vec<u64> {
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
    pub fn create(size: usize, capacity: usize) -> PosixQueue {
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

    pub fn unlink(&self) {
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
pub fn raise_msgqueue_rlimit() {
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
pub fn posix_capacity(size: usize, alive: u64) -> usize {
    let per_msg = size as u64 + 128;
    let fits = (msgqueue_budget() / alive).saturating_sub(4096) / per_msg;
    (capacity_for(size) as u64).min(fits).max(1) as usize
}
