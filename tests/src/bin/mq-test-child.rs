//! A child process for the multi-process tests: produces or consumes
//! self-checking messages on a queue so the parent can kill it at any moment
//! and then verify what was committed and what arrived.
//!
//! ```text
//! mq-test-child produce DIR NAME ID COUNT SIZE   # prints "seq" after each put returned Ok
//! mq-test-child consume DIR NAME MODE            # MODE get|lease; prints "id seq" per message; exits 0 on Closed
//! mq-test-child race DIR NAME ID                 # open_or_create, put one message, print "created" or "opened"
//! mq-test-child get-timeout DIR NAME MILLIS      # exit 0 got / 10 timeout / 11 closed
//! mq-test-child put-timeout DIR NAME MILLIS      # exit 0 put / 10 timeout / 11 closed
//! mq-test-child hold DIR NAME                    # attach and sleep until killed
//! ```
//! Exit code 3 means a message failed its checksum (a torn message arrived).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mq_tests::message;
use queue_core::{GetError, PutError, Queue};

fn out(line: &str) {
    // Unbuffered: whatever was printed before a SIGKILL is in the pipe.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

fn open(dir: &str, name: &str) -> Queue {
    Queue::open_in(dir, name).unwrap_or_else(|e| {
        eprintln!("mq-test-child: {e}");
        std::process::exit(2)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<u64>().expect("numeric argument");
    match arg(0) {
        "produce" => {
            let q = open(arg(1), arg(2));
            let (id, count, size) = (num(3) as u32, num(4), num(5) as usize);
            let mut buf = Vec::new();
            for seq in 0..count {
                message::encode(id, seq, size, &mut buf);
                match q.put(&buf) {
                    Ok(()) => out(&format!("{seq}\n")),
                    Err(PutError::Closed) => break,
                    Err(e) => {
                        eprintln!("mq-test-child: put: {e}");
                        std::process::exit(2)
                    }
                }
            }
        }
        "consume" => {
            let q = open(arg(1), arg(2));
            let lease_mode = arg(3) == "lease";
            let mut buf = Vec::new();
            loop {
                let (id, seq) = if lease_mode {
                    match q.get_lease() {
                        Ok(lease) => {
                            let Some(m) = message::decode(&lease) else {
                                std::process::exit(3)
                            };
                            out(&format!("{} {}\n", m.0, m.1));
                            lease.ack().expect("ack");
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
            out(if existed { "opened\n" } else { "maybe-created\n" });
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
        other => {
            eprintln!("mq-test-child: unknown role {other:?}");
            std::process::exit(2)
        }
    }
}
