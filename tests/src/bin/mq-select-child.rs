//! A child process for the tests of waiting on many queues (`Select`) and of
//! the async verbs across processes. Queues are `PREFIX0` .. `PREFIX{N-1}` in
//! DIR; every mode prints "ready" once it waits.
//!
//! ```text
//! mq-select-child select DIR PREFIX N             # Select over N queues: prints "i payload" per message; exits 0 when all are closed and drained
//! mq-select-child select-once DIR PREFIX N MILLIS # one ready_timeout: prints the index (exit 0) or exits 10 on timeout
//! mq-select-child put-random DIR PREFIX N ID COUNT SEED  # puts "ID:seq:i" into random queues i (no "ready")
//! mq-select-child async-get DIR PREFIX N TASKS EXEC      # EXEC tokio|futures: TASKS tasks, task t awaits get_async on queue t % N until Closed; prints "i payload"
//! mq-select-child async-put DIR NAME              # put_async(b"late") on one queue (futures::executor::block_on); exit 0 when it went in
//! mq-select-child async-drop DIR NAME ROUNDS SEED # tokio: ROUNDS gets, each under a random timeout of 0-3 ms that drops it; prints each message got
//! ```

use std::io::Write;
use std::time::Duration;

use queue_core::{GetError, Queue, Select};

fn out(line: &str) {
    // Unbuffered: whatever was printed before a kill is in the pipe.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("mq-select-child: {what}: {e}");
    std::process::exit(2)
}

fn open_all(dir: &str, prefix: &str, n: usize) -> Vec<Queue> {
    (0..n)
        .map(|i| Queue::open_in(dir, &format!("{prefix}{i}")).unwrap_or_else(|e| fail("open", e)))
        .collect()
}

/// A small xorshift generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `select`: serves every queue from one thread until all are closed.
fn select(queues: &[Queue]) {
    let mut sel = Select::new();
    for q in queues {
        sel.add(q);
    }
    out("ready\n");
    while !sel.is_empty() {
        let i = sel.ready();
        match queues[i].try_get() {
            Ok(m) => out(&format!("{i} {}\n", String::from_utf8_lossy(&m))),
            Err(GetError::Empty) => {} // another getter was quicker
            Err(GetError::Closed) => {
                sel.remove(i);
            }
            Err(e) => fail("try_get", e),
        }
    }
}

/// One task of `async-get`: takes from `q` until it is closed.
async fn drain(i: usize, q: &Queue) {
    loop {
        match q.get_async().await {
            Ok(m) => out(&format!("{i} {}\n", String::from_utf8_lossy(&m))),
            Err(GetError::Closed) => return,
            Err(e) => fail("get_async", e),
        }
    }
}

fn async_get(queues: &'static [Queue], tasks: usize, exec: &str) {
    let n = queues.len();
    match exec {
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap_or_else(|e| fail("tokio", e));
            rt.block_on(async {
                let handles: Vec<_> = (0..tasks)
                    .map(|t| tokio::spawn(drain(t % n, &queues[t % n])))
                    .collect();
                out("ready\n");
                for h in handles {
                    h.await.unwrap_or_else(|e| fail("task", e));
                }
            });
        }
        "futures" => {
            let all = futures::future::join_all((0..tasks).map(|t| drain(t % n, &queues[t % n])));
            out("ready\n");
            futures::executor::block_on(all);
        }
        other => fail("executor", format!("{other:?} (tokio or futures)")),
    }
}

fn async_drop(q: &Queue, rounds: u64, seed: u64) {
    let mut rng = Rng(seed | 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| fail("tokio", e));
    out("ready\n");
    rt.block_on(async {
        for _ in 0..rounds {
            let limit = Duration::from_micros(rng.below(3000));
            // On timeout the get future is dropped wherever it was.
            if let Ok(got) = tokio::time::timeout(limit, q.get_async()).await {
                match got {
                    Ok(m) => out(&format!("{}\n", String::from_utf8_lossy(&m))),
                    Err(e) => fail("get_async", e),
                }
            }
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| {
        arg(i)
            .parse::<u64>()
            .unwrap_or_else(|e| fail("numeric argument", e))
    };
    match arg(0) {
        "select" => select(&open_all(arg(1), arg(2), num(3) as usize)),
        "select-once" => {
            let queues = open_all(arg(1), arg(2), num(3) as usize);
            let mut sel = Select::new();
            for q in &queues {
                sel.add(q);
            }
            out("ready\n");
            match sel.ready_timeout(Duration::from_millis(num(4))) {
                Some(i) => out(&format!("{i}\n")),
                None => std::process::exit(10),
            }
        }
        "put-random" => {
            let queues = open_all(arg(1), arg(2), num(3) as usize);
            let (id, count) = (num(4), num(5));
            let mut rng = Rng(num(6) | 1);
            for seq in 0..count {
                let i = rng.below(queues.len() as u64) as usize;
                let msg = format!("{id}:{seq}:{i}");
                queues[i]
                    .put(msg.as_bytes())
                    .unwrap_or_else(|e| fail("put", e));
                if rng.below(8) == 0 {
                    std::thread::sleep(Duration::from_micros(rng.below(500)));
                }
            }
        }
        "async-get" => {
            let queues = open_all(arg(1), arg(2), num(3) as usize);
            async_get(
                Box::leak(queues.into_boxed_slice()),
                num(4) as usize,
                arg(5),
            );
        }
        "async-put" => {
            let q = Queue::open_in(arg(1), arg(2)).unwrap_or_else(|e| fail("open", e));
            out("ready\n");
            futures::executor::block_on(q.put_async(b"late")).unwrap_or_else(|e| fail("put", e));
        }
        "async-drop" => {
            let q = Queue::open_in(arg(1), arg(2)).unwrap_or_else(|e| fail("open", e));
            async_drop(&q, num(3), num(4));
        }
        other => fail("mode", format!("{other:?} (see the doc comment)")),
    }
}
