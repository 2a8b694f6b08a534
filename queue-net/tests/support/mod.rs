//! A `nats-server -js` per test: on a free loopback port, with its own
//! storage directory, killed when the guard drops and (through
//! `PR_SET_PDEATHSIG`) when the test process dies. Also a watchdog for
//! anything that could hang. Shared with the CLI's tests by `#[path]`.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child ends:
//! start servers and helpers from the test's own thread.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

/// Where the server binary comes from, or why there is none.
pub fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MQ_NATS_SERVER") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "nats-server not found: run 'cargo xtask test' (installs it under target/venv) or set MQ_NATS_SERVER"
        )
    })
}

/// A unique name for this process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A running `nats-server -js`, killed on drop; its storage is removed then.
pub struct NatsServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its `--store_dir`.
    pub store: PathBuf,
}

impl NatsServer {
    /// Starts a server on a free port with a new storage directory.
    pub fn start() -> NatsServer {
        let store = std::env::temp_dir().join(unique("mq-nats-store"));
        std::fs::create_dir_all(&store).expect("create the server's store dir");
        let mut s = NatsServer {
            child: None,
            port: free_port(),
            store,
        };
        s.spawn();
        s
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `nats://127.0.0.1:PORT/NAME`.
    pub fn queue_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url())
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(server_binary());
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "--store_dir",
        ])
        .arg(&self.store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = mq_tests::die_with_test(&mut cmd)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_binary().display()));
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nats-server did not listen on port {} within 30s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // JetStream answers a little after the port opens.
        let start = Instant::now();
        while queue_net::RemoteQueue::list(&self.url()).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nats-server JetStream not ready within 30s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9` the server (its storage stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Aborts the test process (and so, by PDEATHSIG, its servers) if it is
/// still running after `limit`; disarmed on drop.
pub struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    pub fn new(what: &'static str, limit: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if flag.load(Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("watchdog: {what} still running after {limit:?}, aborting");
            std::process::abort();
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// Spawns `cmd` so that it is killed if the spawning thread's process dies.
pub fn spawn_guarded(cmd: &mut Command) -> Child {
    mq_tests::die_with_test(cmd)
        .spawn()
        .expect("spawn a helper process")
}

/// A temporary queue directory, removed (with its queues) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&p).expect("create a queue dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 16-byte message carrying `i`, for [`Tally`].
pub fn numbered(i: u64) -> [u8; 16] {
    let mut m = [b'.'; 16];
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

/// Counts what a consumer received: every number, how often.
pub struct Tally {
    seen: Vec<u32>,
    total: u64,
    /// Messages that came after a higher number.
    pub out_of_order: u64,
    last: Option<u64>,
}

impl Tally {
    pub fn new(n: u64) -> Tally {
        Tally {
            seen: vec![0; n as usize],
            total: 0,
            out_of_order: 0,
            last: None,
        }
    }

    pub fn add(&mut self, msg: &[u8]) {
        let i = u64::from_le_bytes(msg[..8].try_into().unwrap());
        self.seen[i as usize] += 1;
        self.total += 1;
        if self.last.is_some_and(|l| i < l) {
            self.out_of_order += 1;
        }
        self.last = Some(i);
    }

    pub fn missing(&self) -> usize {
        self.seen.iter().filter(|&&c| c == 0).count()
    }

    pub fn duplicates(&self) -> u64 {
        self.total - self.seen.iter().filter(|&&c| c > 0).count() as u64
    }
}

/// Gets from `q` until it is closed and drained, counting every number.
pub fn tally_until_closed(q: &queue_core::Queue, n: u64) -> Tally {
    let mut tally = Tally::new(n);
    loop {
        match q.get() {
            Ok(m) => tally.add(&m),
            Err(queue_core::GetError::Closed) => return tally,
            Err(e) => panic!("consumer: {e}"),
        }
    }
}
