//! Soak: eight processes for a configurable time (`MQ_SOAK_SECS`, default
//! 60), with random `kill -9`s, timeouts, releases and closes, checked
//! round by round. Ignored by default; run it with
//!
//! ```text
//! MQ_SOAK_SECS=600 cargo test -p mq-tests --release --test it soak -- --ignored --nocapture
//! ```
//!
//! Each round makes a fresh queue (random capacity and message size) and
//! keeps eight children on it: producers and consumers in a random mix,
//! consumers each in lease mode (at-least-once) or plain-get mode
//! (at-most-once by a kill, exactly-once otherwise), every child choosing
//! at random among blocking, `try_`, timed and batch calls. Children are
//! killed with SIGKILL at random and replaced. The round ends with a close
//! (sometimes while producers are still putting, sometimes after killing
//! them), the consumers drain and exit on `Closed`, and then:
//!
//! * no message arrived that was never put, and none arrived torn (a
//!   consumer exits with code 3 on a bad checksum);
//! * every message whose put returned `Ok` arrived, except at most one
//!   batch (up to 4 messages, `get_many`) per killed plain-get consumer
//!   (taken, then killed before printing);
//! * no message arrived twice, except at most one per killed lease consumer
//!   (printed, then killed before its ack);
//! * no capacity leaked: every slot is empty and head == tail.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mq_tests::{ChildGuard, Ledger, TestDir, Watchdog, kill9};
use queue_core::{Queue, SlotView};

const CHILD: &str = env!("CARGO_BIN_EXE_mq-test-child");

/// Largest batch a soak producer puts with `put_many`, and a soak consumer
/// takes with `get_many` (see mq-test-child).
const BATCH: u64 = 4;

/// Processes on the queue at any time.
const PROCESSES: usize = 8;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[derive(Default, Debug)]
struct Figures {
    rounds: u64,
    committed: u64,
    received: u64,
    kills: u64,
    consumer_kills: u64,
    producer_kills: u64,
    redelivered: u64,
    discarded_partial: u64,
    duplicates: u64,
    missing: u64,
    timeouts: u64,
    releases: u64,
    closes_while_putting: u64,
}

enum Role {
    Producer,
    Consumer { lease: bool },
}

struct Running {
    role: Role,
    guard: ChildGuard,
}

fn spawn(args: &[&str], out: &Path) -> ChildGuard {
    let file = File::create(out).expect("create child output file");
    ChildGuard::new(
        Command::new(CHILD)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .spawn()
            .expect("spawn mq-test-child"),
    )
}

fn round(n: u64, rng: &mut Rng, total: &mut Figures) {
    let _w = Watchdog::new(&format!("soak round {n}"), Duration::from_secs(180));
    let d = TestDir::new(&format!("soak{n}"));
    let dir = d.path().to_str().unwrap().to_owned();
    let capacity = [1usize, 2, 3, 8, 64][rng.below(5) as usize];
    let max_size = [32usize, 200, 4096][rng.below(3) as usize];
    // Delivery control in half the rounds: 1-3 priority levels (producers
    // pick one per put) and a lease timeout.
    let mut builder = Queue::builder("soak")
        .dir(d.path())
        .capacity(capacity)
        .max_msg_size(max_size);
    if rng.below(2) == 0 {
        builder = builder
            .priorities(1 + rng.below(3) as usize)
            .lease_timeout(Duration::from_secs(2));
    }
    let q = builder.create().unwrap();
    let producers_wanted = 1 + rng.below(PROCESSES as u64 - 2) as usize;
    let mut next_producer = 0u32;
    let mut next_consumer = 0u32;
    let mut start = |role_is_producer: bool, rng: &mut Rng| -> Running {
        if role_is_producer {
            let id = next_producer;
            next_producer += 1;
            let out = d.path().join(format!("p{id}.out"));
            let guard = spawn(
                &[
                    "soak-produce",
                    &dir,
                    "soak",
                    &id.to_string(),
                    "1000000000",
                    &max_size.to_string(),
                    &rng.below(u64::MAX).to_string(),
                ],
                &out,
            );
            Running {
                role: Role::Producer,
                guard,
            }
        } else {
            let id = next_consumer;
            next_consumer += 1;
            let lease = rng.below(2) == 0;
            let out = d.path().join(format!("c{id}.out"));
            let mode = if lease { "lease" } else { "get" };
            let guard = spawn(
                &[
                    "soak-consume",
                    &dir,
                    "soak",
                    mode,
                    &rng.below(u64::MAX).to_string(),
                ],
                &out,
            );
            Running {
                role: Role::Consumer { lease },
                guard,
            }
        }
    };
    let mut running: Vec<Running> = (0..PROCESSES)
        .map(|i| start(i < producers_wanted, rng))
        .collect();
    let (mut get_kills, mut lease_kills, mut producer_kills) = (0u64, 0u64, 0u64);
    let round_time = Duration::from_millis(1500 + rng.below(3000));
    let started = Instant::now();
    while started.elapsed() < round_time {
        std::thread::sleep(Duration::from_millis(5 + rng.below(150)));
        let i = rng.below(running.len() as u64) as usize;
        let victim = running.swap_remove(i);
        kill9(victim.guard.id());
        let status = victim.guard.take().wait().unwrap();
        assert_eq!(status.code(), None, "child exited on its own: {status}");
        let replacement = match victim.role {
            Role::Producer => {
                producer_kills += 1;
                start(true, rng)
            }
            Role::Consumer { lease, .. } => {
                if lease {
                    lease_kills += 1;
                } else {
                    get_kills += 1;
                }
                start(false, rng)
            }
        };
        running.push(replacement);
    }
    // End of the round: close while producers still put (they see Closed
    // and exit 0), or kill them first and then close.
    let close_while_putting = rng.below(2) == 0;
    let (producers, consumers): (Vec<_>, Vec<_>) = running
        .into_iter()
        .partition(|r| matches!(r.role, Role::Producer));
    if close_while_putting {
        q.close().unwrap();
        for p in producers {
            let status = p.guard.take().wait().unwrap();
            assert!(status.success(), "a producer failed: {status}");
        }
    } else {
        for p in producers {
            kill9(p.guard.id());
            let _ = p.guard.take().wait();
            producer_kills += 1;
        }
        q.close().unwrap();
    }
    for c in consumers {
        let status = c.guard.take().wait().unwrap();
        assert!(
            status.success(),
            "a consumer failed (3: torn message, 2: error): {status}"
        );
    }

    let ledger = Ledger::read(d.path(), next_producer, next_consumer);
    ledger.assert_nothing_invented(BATCH, &format!("round {n}: "));
    let (committed, received) = (&ledger.committed, &ledger.received);
    let (duplicates, missing) = (ledger.duplicates(), ledger.missing());
    let (timeouts, releases) = (ledger.timeouts, ledger.releases);
    let st = q.stats();
    eprintln!(
        "soak round {n}: capacity {capacity} x {} levels, lease timeout {:?}, expired {}, max {max_size} B, {} producers + {} consumers started, \
         kills {} (producers {producer_kills}, get consumers {get_kills}, lease consumers {lease_kills}), \
         committed {}, received {}, duplicates {duplicates}, missing {missing}, redelivered {}, \
         discarded {}, timeouts {timeouts}, releases {releases}, {}",
        st.priorities,
        st.lease_timeout,
        st.expired,
        next_producer,
        next_consumer,
        producer_kills + get_kills + lease_kills,
        committed.len(),
        received.len(),
        st.redelivered,
        st.discarded_partial,
        if close_while_putting {
            "closed while putting"
        } else {
            "closed after killing the producers"
        }
    );
    assert!(
        missing <= BATCH * get_kills,
        "round {n}: {missing} committed messages lost for {get_kills} killed get consumers"
    );
    assert!(
        duplicates <= lease_kills + st.expired as u64,
        "round {n}: {duplicates} duplicates for {lease_kills} killed lease consumers and {} expired leases",
        st.expired
    );
    assert!(
        q.slots().iter().all(|s| *s == SlotView::Empty),
        "round {n}: capacity leaked: {:?}",
        q.slots()
    );
    assert_eq!(st.head, st.tail, "round {n}");
    assert_eq!(st.len, 0, "round {n}");
    drop(q);
    Queue::remove_in(d.path(), "soak").unwrap();

    total.rounds += 1;
    total.committed += committed.len() as u64;
    total.received += received.values().sum::<u64>();
    total.kills += producer_kills + get_kills + lease_kills;
    total.consumer_kills += get_kills + lease_kills;
    total.producer_kills += producer_kills;
    total.redelivered += st.redelivered as u64;
    total.discarded_partial += st.discarded_partial as u64;
    total.duplicates += duplicates;
    total.missing += missing;
    total.timeouts += timeouts;
    total.releases += releases;
    total.closes_while_putting += u64::from(close_while_putting);
}

#[test]
#[ignore = "long: run with MQ_SOAK_SECS=600 cargo test -p mq-tests --release --test it soak -- --ignored --nocapture"]
fn soak_eight_processes_with_kills_timeouts_and_closes() {
    let secs: u64 = std::env::var("MQ_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = std::env::var("MQ_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("soak: {secs} s, seed {seed} (MQ_SOAK_SEED={seed} repeats the choices)");
    let mut rng = Rng(seed | 1);
    let mut total = Figures::default();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        round(total.rounds + 1, &mut rng, &mut total);
    }
    eprintln!(
        "soak: {:.0} s, {} rounds, {} messages committed, {} received, {} kills ({} producers, {} consumers), \
         {} redelivered ({} after kills, {} lease releases), {} discarded partial, \
         {} duplicates (lease kills), {} missing (get kills), {} timeouts, {} closes while producers put",
        started.elapsed().as_secs_f64(),
        total.rounds,
        total.committed,
        total.received,
        total.kills,
        total.producer_kills,
        total.consumer_kills,
        total.redelivered,
        total.redelivered.saturating_sub(total.releases),
        total.releases,
        total.discarded_partial,
        total.duplicates,
        total.missing,
        total.timeouts,
        total.closes_while_putting
    );
}
