//! # downloader-analyzer: a queue between two processes (seed article, section 4.4)
//!
//! What it teaches:
//! * processes do not share memory, so they talk through the operating
//!   system; here through a named queue in shared memory: the downloader
//!   `put`s items, the analyzer `get`s them, each item goes to one getter;
//! * a named queue outlives the process that made it, so the two sides can
//!   even run in two terminals (`download --queue NAME`, `analyze --queue NAME`);
//! * **how to stop**: the article's analyzer loops `data = q.get(); if
//!   q.empty(): break`. That is a race: "empty" only means the downloader has
//!   not put the *next* item *yet*, so the analyzer stops early and items are
//!   lost (try `run --naive`). The right way is an explicit end of stream:
//!   the downloader calls `close()` after its last item, and the analyzer
//!   reads until `get` says the queue is closed and drained.
//!
//! ```text
//! cargo run -p demos --bin downloader-analyzer -- run
//! cargo run -p demos --bin downloader-analyzer -- run --naive        # the article's race
//! # or in two terminals:
//! cargo run -p demos --bin downloader-analyzer -- analyze --queue lesson
//! cargo run -p demos --bin downloader-analyzer -- download --queue lesson
//! ```

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use demos::this_program;
use queue_core::{CloseError, GetError, PutError, Queue, TypedGetError, TypedPutError, TypedQueue};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "A downloader and an analyzer process connected by a queue (seed article 4.4)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a downloader and an analyzer process and wait for both
    Run {
        /// Queue name (default: a fresh one, removed at the end)
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        download: DownloadArgs,
        /// Use the article's `if q.empty(): break` loop, to see it lose items
        #[arg(long)]
        naive: bool,
    },
    /// Put items on the queue, then close it (end of stream)
    Download {
        /// Queue name
        #[arg(long)]
        queue: String,
        #[command(flatten)]
        args: DownloadArgs,
    },
    /// Take items until the queue is closed and drained
    Analyze {
        /// Queue name
        #[arg(long)]
        queue: String,
        /// Stop as soon as the queue looks empty (the article's race)
        #[arg(long)]
        naive: bool,
        /// Leave the queue in place afterwards (default: remove it)
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Args, Clone)]
struct DownloadArgs {
    /// How many items to download
    #[arg(long, default_value_t = 4)]
    items: u32,
    /// Pretend each download takes this long (milliseconds)
    #[arg(long, default_value_t = 200)]
    delay_ms: u64,
}

/// One "downloaded" item.
#[derive(Serialize, Deserialize, Debug)]
struct Item {
    /// 1, 2, 3, ... like the article's `data = [1, 2, 3, 4]`.
    seq: u32,
    /// Where it came from.
    url: String,
}

/// Every process opens the queue with the same settings: whoever comes
/// first creates it.
fn open(name: &str) -> anyhow::Result<TypedQueue<Item>> {
    TypedQueue::open_or_create(Queue::builder(name).capacity(64).max_msg_size(1024))
        .with_context(|| format!("cannot open queue {name:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            queue,
            download,
            naive,
        } => run(queue, &download, naive),
        Command::Download { queue, args } => download(&queue, &args),
        Command::Analyze { queue, naive, keep } => analyze(&queue, naive, keep).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("downloader-analyzer: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(queue: Option<String>, args: &DownloadArgs, naive: bool) -> anyhow::Result<()> {
    let name = queue.unwrap_or_else(|| format!("downloader-analyzer-{}", std::process::id()));
    // Create the queue before starting the children (like the article's
    // `q = multiprocessing.Queue()` in main), so both find it.
    let q = open(&name)?;
    {
        let name = name.clone();
        ctrlc::set_handler(move || {
            let _ = Queue::remove(&name);
            eprintln!("\ninterrupted: removed queue {name:?}");
            std::process::exit(130);
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    println!(
        "main {}: queue {name:?}, starting the downloader and the analyzer",
        std::process::id()
    );
    let items = args.items.to_string();
    let delay = args.delay_ms.to_string();
    let mut downloader = this_program(&[
        "download",
        "--queue",
        &name,
        "--items",
        &items,
        "--delay-ms",
        &delay,
    ])?
    .spawn()
    .context("cannot start the downloader")?;
    let mut analyze_args = vec!["analyze", "--queue", &name, "--keep"];
    if naive {
        analyze_args.push("--naive");
    }
    let mut analyzer = this_program(&analyze_args)?
        .spawn()
        .context("cannot start the analyzer")?;
    let analyzed = analyzer.wait().context("cannot wait for the analyzer")?;
    let downloaded = downloader
        .wait()
        .context("cannot wait for the downloader")?;
    let left = q.len();
    drop(q);
    let _ = Queue::remove(&name);
    if !analyzed.success() || !downloaded.success() {
        bail!("the downloader ({downloaded}) or the analyzer ({analyzed}) failed");
    }
    if left > 0 {
        println!(
            "main: {left} item(s) were never analyzed: the naive analyzer saw an empty queue \
             between two downloads and stopped. 'empty' is not 'finished'."
        );
    } else {
        println!("main: every item was analyzed");
    }
    Ok(())
}

fn download(name: &str, args: &DownloadArgs) -> anyhow::Result<()> {
    let q = open(name)?;
    let me = std::process::id();
    for seq in 1..=args.items {
        std::thread::sleep(Duration::from_millis(args.delay_ms));
        let item = Item {
            seq,
            url: format!("https://example.org/data/{seq}"),
        };
        match q.put(&item) {
            Ok(()) => {}
            Err(TypedPutError::Queue(PutError::Closed)) => bail!(
                "queue {name:?} is already closed: an earlier downloader finished its stream \
                 (remove it with 'mq rm {name}' and start again)"
            ),
            Err(e) => return Err(e).context("cannot put an item"),
        }
        if args.items <= 20 {
            println!("downloader {me}: put item {seq}");
        }
    }
    match q.close() {
        Ok(()) | Err(CloseError::AlreadyClosed) => {}
        Err(e) => return Err(e).context("cannot close the queue"),
    }
    println!(
        "downloader {me}: all {} items are on the queue; closed it (end of stream)",
        args.items
    );
    Ok(())
}

/// Returns how many items were analyzed.
fn analyze(name: &str, naive: bool, keep: bool) -> anyhow::Result<u64> {
    let q = open(name)?;
    let me = std::process::id();
    let (mut count, mut sum) = (0u64, 0u64);
    loop {
        let item = match q.get() {
            Ok(item) => item,
            // The right way to stop: the downloader closed the queue, and
            // everything it put has been taken.
            Err(TypedGetError::Queue(GetError::Closed)) => {
                println!("analyzer {me}: end of stream");
                break;
            }
            Err(e) => return Err(e).context("cannot get an item"),
        };
        count += 1;
        sum += u64::from(item.seq);
        if count <= 20 {
            println!("analyzer {me}: got item {} from {}", item.seq, item.url);
        }
        // The article's loop: `if q.empty(): break`. It races with the
        // downloader, which may simply not have put the next item yet.
        if naive && q.is_empty() {
            println!(
                "analyzer {me}: the queue is empty right now, so the naive analyzer stops (too early?)"
            );
            break;
        }
    }
    println!("analyzer {me}: analyzed {count} items, sum of their numbers {sum}");
    drop(q);
    if !keep {
        let _ = Queue::remove(name);
    }
    Ok(count)
}
