//! A child process for the multi-process tests: produces or consumes
//! self-checking messages on a queue so the parent can kill it at any moment
//! and then verify what was committed and what arrived.
//!
//! ```text
//! mq-test-child produce DIR NAME ID COUNT SIZE [LEVELS]  # prints "seq" after each put returned Ok; with LEVELS, message seq goes to priority seq % LEVELS
//! mq-test-child produce-many DIR NAME ID COUNT SIZE BATCH  # like produce, with put_many of BATCH messages; prints each seq once its put_many returned
//! mq-test-child consume DIR NAME MODE            # MODE get|lease|batch (get_many_into, up to 8); prints "id seq" per message; exits 0 on Closed
//! mq-test-child race DIR NAME ID                 # open_or_create, put one message, print "created" or "opened"
//! mq-test-child get-timeout DIR NAME MILLIS      # exit 0 got / 10 timeout / 11 closed
//! mq-test-child put-timeout DIR NAME MILLIS      # exit 0 put / 10 timeout / 11 closed
//! mq-test-child hold DIR NAME                    # attach and sleep until killed
//! mq-test-child lease-hold DIR NAME MILLIS       # lease one message, print "leased DELIVERIES", sleep, ack: print "acked" or "ack-failed <error>"
//! mq-test-child lease-print DIR NAME             # lease messages; print "msg DELIVERIES BYTES" for each, then wait to be killed before the ack
//! mq-test-child dlq-consume DIR NAME            # lease self-checking messages; id 1 is poison: SIGKILL ourselves holding it; others: print "id seq", ack; exits 0 on Closed
//! mq-test-child probe DIR NAME ACTION            # ACTION open|remove|putget: prints "ok ..." (exit 0) or "err <error>" (exit 4)
//! mq-test-child create-env NAME CAP SIZE         # create in $MQ_DIR: prints "ok" (exit 0) or "err <error>" (exit 4)
//! mq-test-child script DIR NAME                  # prints "ready", then per stdin line "put TEXT" / "get": "ok" / "msg TEXT" / "err <error>"
//! mq-test-child soak-produce DIR NAME ID COUNT MAXSIZE SEED  # like produce, with random put / try_put / put_timeout / put_many
//! mq-test-child soak-consume DIR NAME MODE SEED  # like consume, with random blocking / try / timeout / batch gets (get_many and get_many_into); "timeout" lines
//! ```
//! Exit code 3 means a message failed its checksum (a torn message arrived).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mq_tests::message;
use queue_core::{Batch, GetError, PutError, Queue};

fn out(line: &str) {
    // Unbuffered: whatever was printed before a SIGKILL is in the pipe.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

/// `consume DIR NAME batch`: takes up to 8 messages per `get_many_into`
/// call and prints each; the hand-off happens per message inside the call,
/// so a kill loses at most the messages of one batch not printed yet.
fn consume_batches(q: &Queue) {
    let mut batch = Batch::new();
    loop {
        match q.get_many_into(&mut batch, 8) {
            Ok(_) => {
                for m in batch.iter() {
                    let Some((id, seq)) = message::decode(m) else {
                        std::process::exit(3)
                    };
                    out(&format!("{id} {seq}\n"));
                }
            }
            Err(GetError::Closed) => return,
            Err(e) => {
                eprintln!("mq-test-child: get_many_into: {e}");
                std::process::exit(2)
            }
        }
    }
}

/// `produce-many`: messages `0 .. count` of producer `id` in `put_many`
/// calls of `batch`; prints the seqs a call committed once it returned (on
/// an error, the ones it reports as put), so a kill inside or right after
/// a call leaves up to `batch` committed messages unprinted.
fn produce_many(q: &Queue, id: u32, count: u64, size: usize, batch: u64) {
    let mut seq = 0;
    while seq < count {
        let n = batch.min(count - seq);
        let msgs: Vec<Vec<u8>> = (seq..seq + n)
            .map(|s| {
                let mut buf = Vec::new();
                message::encode(id, s, size, &mut buf);
                buf
            })
            .collect();
        let (put, err) = match q.put_many(&msgs) {
            Ok(()) => (n, None),
            Err((put, e)) => (put as u64, Some(e)),
        };
        let printed: String = (seq..seq + put).map(|s| format!("{s}\n")).collect();
        out(&printed);
        seq += put;
        match err {
            None => {}
            Some(PutError::Closed) => return,
            Some(e) => {
                eprintln!("mq-test-child: put_many: {e}");
                std::process::exit(2)
            }
        }
    }
}

fn open(dir: &str, name: &str) -> Queue {
    Queue::open_in(dir, name).unwrap_or_else(|e| {
        eprintln!("mq-test-child: {e}");
        std::process::exit(2)
    })
}

/// Has the kernel kill this process when the test that started it dies: a
/// test aborted by its watchdog runs no destructors, so no `ChildGuard`
/// kills its children, and a child blocked on a queue would otherwise live
/// on, holding the test's queue directory and its stderr pipe (which keeps
/// whoever reads that pipe, CI included, waiting).
fn die_with_parent() {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, sig)` takes a signal number and no
    // pointers; `getppid` takes nothing. Neither can fail in a way that
    // harms the process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The parent died before the call: nobody would ever stop us.
        if libc::getppid() == 1 {
            std::process::exit(2);
        }
    }
}

fn main() {
    die_with_parent();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().expect("numeric argument");
    match arg(0) {
        "produce" => {
            let q = open(arg(1), arg(2));
            let (id, count, size) = (num(3) as u32, num(4), num(5) as usize);
            let levels = arg(6).parse::<u64>().unwrap_or(1).max(1);
            let mut buf = Vec::new();
            for seq in 0..count {
                message::encode(id, seq, size, &mut buf);
                match q.put_priority(&buf, (seq % levels) as usize) {
                    Ok(()) => out(&format!("{seq}\n")),
                    Err(PutError::Closed) => break,
                    Err(e) => {
                        eprintln!("mq-test-child: put: {e}");
                        std::process::exit(2)
                    }
                }
            }
        }
        "produce-many" => {
            let q = open(arg(1), arg(2));
            let (id, count, size, batch) = (num(3) as u32, num(4), num(5) as usize, num(6));
            produce_many(&q, id, count, size, batch.max(1));
        }
        "consume" => {
            let q = open(arg(1), arg(2));
            // `lease-drop`: leases, every second one dropped unacked and
            // unprinted (the message goes back for the next getter).
            let drop_every_second = arg(3) == "lease-drop";
            let lease_mode = arg(3) == "lease" || drop_every_second;
            let mut leases = 0u64;
            if arg(3) == "batch" {
                consume_batches(&q);
                return;
            }
            let mut buf = Vec::new();
            loop {
                let (id, seq) = if lease_mode {
                    match q.get_lease() {
                        Ok(lease) => {
                            let Some(m) = message::decode(&lease) else {
                                std::process::exit(3)
                            };
                            leases += 1;
                            if drop_every_second && leases.is_multiple_of(2) {
                                drop(lease);
                                continue;
                            }
                            out(&format!("{} {}\n", m.0, m.1));
                            match lease.ack() {
                                // A lease timeout passed (a very slow
                                // moment): the message comes again, and
                                // the parent allows one duplicate per
                                // expiry (`Stats::expired`).
                                Ok(()) | Err(queue_core::AckError::Expired { .. }) => {}
                                Err(e) => {
                                    eprintln!("mq-test-child: ack: {e}");
                                    std::process::exit(2)
                                }
                            }
                            continue;
                        }
                        Err(GetError::Closed) => break,
                        Err(e) => {
                            eprintln!("mq-test-child: get_lease: {e}");
                            std::process::exit(2)
                        }
                    }
                } else {
                    match q.get_into(&mut buf) {
                        Ok(_) => match message::decode(&buf) {
                            Some(m) => m,
                            None => std::process::exit(3),
                        },
                        Err(GetError::Closed) => break,
                        Err(e) => {
                            eprintln!("mq-test-child: get: {e}");
                            std::process::exit(2)
                        }
                    }
                };
                out(&format!("{id} {seq}\n"));
            }
        }
        "lease-hold" => {
            let q = open(arg(1), arg(2));
            let lease = q.get_lease().expect("lease");
            out(&format!("leased {}\n", lease.deliveries()));
            std::thread::sleep(Duration::from_millis(num(3)));
            match lease.ack() {
                Ok(()) => out("acked\n"),
                Err(e) => out(&format!("ack-failed {e}\n")),
            }
        }
        "dlq-consume" => {
            let q = open(arg(1), arg(2));
            loop {
                match q.get_lease() {
                    Ok(lease) => {
                        let Some((id, seq)) = message::decode(&lease) else {
                            std::process::exit(3)
                        };
                        if id == 1 {
                            // A poison message kills its consumer.
                            mq_tests::kill9(std::process::id());
                        }
                        out(&format!("{id} {seq}\n"));
                        lease.ack().expect("ack");
                    }
                    Err(GetError::Closed) => break,
                    Err(e) => {
                        eprintln!("mq-test-child: get_lease: {e}");
                        std::process::exit(2)
                    }
                }
            }
        }
        "lease-print" => {
            let q = open(arg(1), arg(2));
            loop {
                match q.get_lease() {
                    Ok(lease) => {
                        out(&format!(
                            "msg {} {}\n",
                            lease.deliveries(),
                            String::from_utf8_lossy(&lease)
                        ));
                        // The parent kills us here for a poison message,
                        // and lets us ack the others.
                        if &*lease == b"poison" {
                            std::thread::sleep(Duration::from_secs(3600));
                        }
                        lease.ack().expect("ack");
                    }
                    Err(GetError::Closed) => break,
                    Err(e) => {
                        eprintln!("mq-test-child: get_lease: {e}");
                        std::process::exit(2)
                    }
                }
            }
        }
        "race" => {
            let id = num(3) as u32;
            let dir = Path::new(arg(1));
            // Wait for the parent's start signal so all racers start together.
            while !dir.join("go").exists() {
                std::thread::sleep(Duration::from_micros(200));
            }
            let existed = dir.join(format!("mq.{}", arg(2))).exists();
            let q = Queue::builder(arg(2))
                .dir(dir)
                .capacity(16)
                .max_msg_size(64)
                .open_or_create()
                .unwrap_or_else(|e| {
                    eprintln!("mq-test-child: {e}");
                    std::process::exit(2)
                });
            let mut buf = Vec::new();
            message::encode(id, 0, 32, &mut buf);
            q.put(&buf).expect("put");
            out(if existed {
                "opened\n"
            } else {
                "maybe-created\n"
            });
        }
        "get-timeout" => {
            let q = open(arg(1), arg(2));
            out("ready\n");
            match q.get_timeout(Duration::from_millis(num(3))) {
                Ok(m) => out(&format!("{}\n", m.len())),
                Err(GetError::Timeout) => std::process::exit(10),
                Err(GetError::Closed) => std::process::exit(11),
                Err(e) => {
                    eprintln!("mq-test-child: {e}");
                    std::process::exit(2)
                }
            }
        }
        "put-timeout" => {
            let q = open(arg(1), arg(2));
            out("ready\n");
            match q.put_timeout(b"late", Duration::from_millis(num(3))) {
                Ok(()) => {}
                Err(PutError::Timeout) => std::process::exit(10),
                Err(PutError::Closed) => std::process::exit(11),
                Err(e) => {
                    eprintln!("mq-test-child: {e}");
                    std::process::exit(2)
                }
            }
        }
        "hold" => {
            let _q = open(arg(1), arg(2));
            out("ready\n");
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "probe" => {
            let result = match arg(3) {
                "open" => Queue::open_in(arg(1), arg(2))
                    .map(|_| String::new())
                    .map_err(|e| e.to_string()),
                "remove" => Queue::remove_in(arg(1), arg(2))
                    .map(|_| String::new())
                    .map_err(|e| e.to_string()),
                "putget" => Queue::open_in(arg(1), arg(2))
                    .map_err(|e| e.to_string())
                    .map(|q| {
                        let got = match q.get_timeout(Duration::from_secs(10)) {
                            Ok(m) => String::from_utf8_lossy(&m).into_owned(),
                            Err(e) => format!("<{e}>"),
                        };
                        let put = match q.put(b"from the child") {
                            Ok(()) => "put".to_owned(),
                            Err(e) => format!("<{e}>"),
                        };
                        format!("{got} {put}")
                    }),
                other => panic!("unknown probe {other:?}"),
            };
            finish(result);
        }
        "create-env" => {
            // No `.dir()`: the queue directory comes from $MQ_DIR.
            let result = Queue::builder(arg(1))
                .capacity(num(2) as usize)
                .max_msg_size(num(3) as usize)
                .create()
                .map(|_| String::new())
                .map_err(|e| e.to_string());
            finish(result);
        }
        "script" => {
            let q = open(arg(1), arg(2));
            out("ready\n");
            for line in std::io::stdin().lines() {
                let line = line.unwrap_or_default();
                let reply = match line.split_once(' ') {
                    Some(("put", text)) => match q.put(text.as_bytes()) {
                        Ok(()) => "ok".to_owned(),
                        Err(e) => format!("err {e}"),
                    },
                    _ if line == "get" => match q.try_get() {
                        Ok(m) => format!("msg {}", String::from_utf8_lossy(&m)),
                        Err(e) => format!("err {e}"),
                    },
                    _ => format!("err unknown command {line:?}"),
                };
                out(&format!("{reply}\n"));
            }
        }
        "soak-produce" => soak_produce(&args),
        "soak-consume" => soak_consume(&args),
        other => {
            eprintln!("mq-test-child: unknown role {other:?}");
            std::process::exit(2)
        }
    }
}

/// Prints the outcome of a probe and exits: 0 with "ok ..." or 4 with "err ...".
fn finish(result: Result<String, String>) -> ! {
    match result {
        Ok(v) => {
            out(&format!("ok {v}\n"));
            std::process::exit(0)
        }
        Err(e) => {
            out(&format!("err {e}\n"));
            std::process::exit(4)
        }
    }
}

/// A small xorshift generator, so the soak children need no dependencies.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Largest batch a soak producer puts at once: a producer killed inside
/// `put_many` may have committed up to this many messages it never printed.
pub const SOAK_BATCH: u64 = 4;

fn soak_produce(args: &[String]) {
    let q = open(&args[1], &args[2]);
    let num = |i: usize| args[i].parse::<u64>().expect("numeric argument");
    let (id, count, max_size) = (num(3) as u32, num(4), num(5) as usize);
    let mut rng = Rng::new(num(6));
    let mut seq = 0;
    let mut buf = Vec::new();
    let size = |rng: &mut Rng| {
        message::HEADER + rng.below((max_size - message::HEADER) as u64 + 1) as usize
    };
    let levels = q.priorities() as u64;
    while seq < count {
        // On a queue with priorities, each put picks a level.
        let level = rng.below(levels) as usize;
        let result = match rng.below(8) {
            0 => {
                // A batch, printed once it is all in.
                let n = (1 + rng.below(SOAK_BATCH)).min(count - seq);
                let batch: Vec<Vec<u8>> = (seq..seq + n)
                    .map(|s| {
                        let mut m = Vec::new();
                        message::encode(id, s, size(&mut rng), &mut m);
                        m
                    })
                    .collect();
                match q.put_many_priority(&batch, level) {
                    Ok(()) => {
                        let lines: String = (seq..seq + n).map(|s| format!("{s}\n")).collect();
                        out(&lines);
                        seq += n;
                        continue;
                    }
                    Err((done, e)) => {
                        let lines: String =
                            (seq..seq + done as u64).map(|s| format!("{s}\n")).collect();
                        out(&lines);
                        seq += done as u64;
                        Err(e)
                    }
                }
            }
            1 => {
                message::encode(id, seq, size(&mut rng), &mut buf);
                q.try_put_priority(&buf, level)
            }
            2 | 3 => {
                message::encode(id, seq, size(&mut rng), &mut buf);
                q.put_priority_timeout(&buf, level, Duration::from_millis(1 + rng.below(30)))
            }
            _ => {
                message::encode(id, seq, size(&mut rng), &mut buf);
                q.put_priority(&buf, level)
            }
        };
        match result {
            Ok(()) => {
                out(&format!("{seq}\n"));
                seq += 1;
            }
            Err(PutError::Full | PutError::Timeout) => out("timeout\n"),
            Err(PutError::Closed) => return,
            Err(e) => {
                eprintln!("mq-test-child: put: {e}");
                std::process::exit(2)
            }
        }
    }
}

fn soak_consume(args: &[String]) {
    let q = open(&args[1], &args[2]);
    let lease_mode = args[3] == "lease";
    let mut rng = Rng::new(args[4].parse().expect("numeric seed"));
    let mut batch = Batch::new();
    let check = |m: &[u8]| match message::decode(m) {
        Some((id, seq)) => format!("{id} {seq}\n"),
        None => std::process::exit(3),
    };
    loop {
        let wait = Duration::from_millis(1 + rng.below(30));
        let result: Result<String, GetError> = if lease_mode {
            let lease = match rng.below(3) {
                0 => q.try_get_lease(),
                1 => q.get_lease_timeout(wait),
                _ => q.get_lease(),
            };
            lease.map(|l| {
                let line = check(&l);
                if rng.below(16) == 0 {
                    // Hand it back now and then: it must come again (not
                    // counted as received: "released" lines are skipped).
                    out(&format!("released {line}"));
                    l.release();
                    return String::new();
                }
                // Printed before the ack: a kill in between duplicates it,
                // which at-least-once allows (at most one per kill).
                out(&line);
                match l.ack() {
                    // A lease timeout passed (a very slow moment): the
                    // message comes again; the parent allows one duplicate
                    // per expiry (`Stats::expired`).
                    Ok(()) | Err(queue_core::AckError::Expired { .. }) => {}
                    Err(e) => {
                        eprintln!("mq-test-child: ack: {e}");
                        std::process::exit(2)
                    }
                }
                String::new()
            })
        } else {
            match rng.below(6) {
                0 => q.try_get().map(|m| check(&m)),
                1 => q.get_timeout(wait).map(|m| check(&m)),
                2 => q
                    .get_many_timeout(1 + rng.below(4) as usize, wait)
                    .map(|ms| ms.iter().map(|m| check(m)).collect()),
                3 => q
                    .get_many_into_timeout(&mut batch, 1 + rng.below(4) as usize, wait)
                    .map(|_| batch.iter().map(check).collect()),
                _ => q.get().map(|m| check(&m)),
            }
        };
        match result {
            Ok(lines) => out(&lines),
            Err(GetError::Empty | GetError::Timeout) => out("timeout\n"),
            Err(GetError::Closed) => return,
            Err(e) => {
                eprintln!("mq-test-child: get: {e}");
                std::process::exit(2)
            }
        }
    }
}
