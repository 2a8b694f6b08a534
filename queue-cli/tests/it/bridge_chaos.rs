//! Two "machines" (two queue directories) joined through one `nats-server`
//! by two real `mq bridge` processes, which are killed with `kill -9` ten
//! times mid-stream (alternately), and the server once (restarted on the
//! same storage directory): nothing lost, duplicates within the documented
//! bound `B × (k + 2r)`, and the producers' `mq close` propagating end to
//! end (bridges exit 0, the consumer sees Closed).

use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mq_tests::TestDir;
use queue_core::Queue;
use queue_net::{CreateOptions, RemoteQueue};

use crate::net::nats::{NatsServer, Watchdog, numbered, spawn_guarded, tally_until_closed, unique};
use crate::support::{mq_std, run};

/// `mq bridge`'s default `--batch`: the duplicates one kill may cause.
const BATCH: u64 = 256;
const KILLS: u64 = 10;

/// One side's `mq bridge SRC DST` process, started again after each kill,
/// its stderr appended to a log (shown if it fails).
struct Bridge<'a> {
    dir: &'a TestDir,
    args: [&'a str; 3],
    log: std::path::PathBuf,
    child: Child,
}

impl<'a> Bridge<'a> {
    fn start(dir: &'a TestDir, src: &'a str, dst: &'a str, log: &Path) -> Bridge<'a> {
        let args = ["bridge", src, dst];
        let child = Self::spawn(dir, &args, log);
        Bridge {
            dir,
            args,
            log: log.to_owned(),
            child,
        }
    }

    // Spawned from the test's thread, so PR_SET_PDEATHSIG ties it to the test.
    fn spawn(dir: &TestDir, args: &[&str], log: &Path) -> Child {
        let log = File::options().create(true).append(true).open(log).unwrap();
        spawn_guarded(
            mq_std(dir, args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log),
        )
    }

    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        self.child = Self::spawn(self.dir, &self.args, &self.log);
    }

    /// Fails the test if the bridge stopped with an error.
    fn check(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "mq {:?} failed: {status}\n{}",
                self.args,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    fn wait_success(mut self) {
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "mq {:?} exited with {status}\n{}",
            self.args,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

#[test]
fn mq_bridge_processes_survive_kill_9_and_a_server_restart() {
    let _w = Watchdog::new("mq bridge chaos", Duration::from_secs(300));
    let n: u64 = std::env::var("MQ_TEST_BRIDGE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut server = NatsServer::start();
    let (a, b) = (TestDir::new("chaos-a"), TestDir::new("chaos-b"));
    let logs = TestDir::new("chaos-logs");
    let url = server.queue_url(&unique("hub"));
    run(&a, &["create", "jobs", "--capacity", "2000"], 0);
    run(&b, &["create", "jobs", "--capacity", "2000"], 0);
    // A short ack wait: a killed bridge's remote batch comes back quickly.
    RemoteQueue::create(
        &url,
        &CreateOptions::default()
            .capacity(2000)
            .ack_wait(Duration::from_secs(2)),
    )
    .unwrap();
    let src = Queue::open_in(a.path(), "jobs").unwrap();
    let dst = Queue::open_in(b.path(), "jobs").unwrap();
    let mid = RemoteQueue::open(&url).unwrap();
    let started = Instant::now();
    let producer = {
        let dir = a.path().to_owned();
        std::thread::spawn(move || {
            let q = Queue::open_in(&dir, "jobs").unwrap();
            for i in 0..n {
                q.put(&numbered(i)).unwrap();
            }
        })
    };
    let consumer = {
        let dir = b.path().to_owned();
        std::thread::spawn(move || {
            let q = Queue::open_in(&dir, "jobs").unwrap();
            tally_until_closed(&q, n)
        })
    };
    let mut out = Bridge::start(&a, "jobs", &url, &logs.path().join("out.log"));
    let mut back = Bridge::start(&b, &url, "jobs", &logs.path().join("back.log"));
    // A bridge that fails, or a stream that stops moving for 60 s, fails
    // the test with what each queue holds (before the watchdog would).
    let mut progress = (0, Instant::now());
    let mut check = |out: &mut Bridge, back: &mut Bridge| {
        out.check();
        back.check();
        let moved = dst.stats().total_put;
        if moved != progress.0 {
            progress = (moved, Instant::now());
        }
        assert!(
            progress.1.elapsed() < Duration::from_secs(60),
            "stalled at {moved}: src {:?}\nremote {:?}\ndst {:?}",
            src.stats(),
            mid.stats(),
            dst.stats()
        );
    };
    let (mut kills, mut server_kills) = (0u64, 0u64);
    let mut closed = false;
    let mut last_total = 0;
    while !consumer.is_finished() {
        std::thread::sleep(Duration::from_millis(if kills < KILLS {
            150 + 37 * kills
        } else {
            50
        }));
        check(&mut out, &mut back);
        if !closed && producer.is_finished() {
            // The producers' side is done: close it with the CLI.
            run(&a, &["close", "jobs"], 0);
            closed = true;
        }
        let total = dst.stats().total_put;
        if kills == KILLS || total == last_total {
            continue;
        }
        last_total = total;
        if kills == KILLS / 2 && server_kills == 0 {
            // Both bridges running for a while (not starting up): the
            // server goes away under them, and they resume on their own.
            let published = mid.stats().map(|s| s.total_put).unwrap_or(0);
            while mid.stats().map(|s| s.total_put).unwrap_or(0) == published
                && !consumer.is_finished()
            {
                check(&mut out, &mut back);
                std::thread::sleep(Duration::from_millis(20));
            }
            server.kill();
            std::thread::sleep(Duration::from_millis(300));
            server.restart();
            server_kills += 1;
        }
        if kills % 2 == 0 {
            out.kill_and_restart();
        } else {
            back.kill_and_restart();
        }
        kills += 1;
    }
    producer.join().unwrap();
    let tally = consumer.join().unwrap();
    assert!(
        closed,
        "the consumer saw Closed before the producers closed"
    );
    out.wait_success();
    back.wait_success();
    assert!(
        mid.is_closed().unwrap(),
        "the bridge closed the remote queue"
    );
    let bound = BATCH * (kills + 2 * server_kills);
    eprintln!(
        "chaos: {n} messages in {:?}, {kills} mq bridge kills, {server_kills} server kill: \
         {} missing, {} duplicates (bound {bound}), {} out of order",
        started.elapsed(),
        tally.missing(),
        tally.duplicates(),
        tally.out_of_order
    );
    assert_eq!(tally.missing(), 0, "lost messages");
    assert!(
        tally.duplicates() <= bound,
        "{} duplicates over the bound {bound}",
        tally.duplicates()
    );
    assert!(kills >= 5, "the stream ended before enough kills");
    assert_eq!(server_kills, 1, "the stream ended before the server kill");
}
