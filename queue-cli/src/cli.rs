//! The command line, as clap types only: what each subcommand accepts and
//! how `--help` describes it. The work is done in `cmd/`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::parse;

const AFTER_HELP: &str = "\
Queues live in $MQ_DIR (or --dir), else /dev/shm; queue NAME is the file mq.NAME there.
Sizes: 4096, 4KiB, 1MiB (K/M/G are binary; kB/MB/GB are decimal).
Durations: 500ms, 5s, 2m, 1h 30m.

Exit codes: 0 ok, 1 nothing received / timed out, 2 error, 130 Ctrl-C (see --help).";

const AFTER_LONG_HELP: &str = "\
Queues live in $MQ_DIR (or --dir), else /dev/shm; queue NAME is the file mq.NAME there.
Sizes: 4096, 4KiB, 1MiB (K/M/G are binary; kB/MB/GB are decimal).
Durations: 500ms, 5s, 2m, 1h 30m.

Try it from two terminals:
  terminal 1:  mq create jobs
               mq get jobs --follow
  terminal 2:  mq put jobs 'hello' 'world'
               mq inspect jobs
Or run `mq demo` for a self-contained tour.

Exit codes:
  0    ok (also when the reader of a pipe went away: `mq get q --follow | head -1`)
  1    nothing received: `get`/`peek` found no message (timed out, empty with
       --no-wait, or closed and drained); `put` timed out on a full queue
  2    usage or runtime error (bad name, size or duration, missing queue,
       message too large, permission denied, ...)
  130  interrupted by Ctrl-C (no message is lost: it was printed or is still queued)";

/// `mq`: put, get, inspect and watch named shared-memory message queues.
#[derive(Debug, Parser)]
#[command(
    name = "mq",
    version,
    about = "Put, get, inspect and watch named shared-memory message queues",
    long_about = "Put, get, inspect and watch named shared-memory message queues.\n\n\
        A queue is a bounded, multi-producer multi-consumer message queue in a \
        shared-memory segment that unrelated processes open by name. Each message \
        goes to exactly one getter. Queues survive `kill -9` of any participant.",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Queue directory [default: $MQ_DIR, else /dev/shm]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "MQ_DIR",
        hide_env = true
    )]
    pub dir: Option<PathBuf>,

    /// Print no confirmations or notes (errors are still printed)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a queue
    #[command(
        after_help = "Example:\n  mq create jobs --capacity 64 --max-msg-size 16KiB --mode 660"
    )]
    Create(CreateArgs),

    /// Put messages: each MESSAGE argument is one message; with none, stdin is read
    #[command(after_help = "Examples:\n  \
        mq put jobs 'first job' 'second job'\n  \
        echo hello | mq put jobs\n  \
        seq 100 | mq put jobs --lines\n  \
        mq put jobs --file photo.jpg")]
    Put(PutArgs),

    /// Take messages and print them (exit 1 if none came)
    #[command(after_help = "Examples:\n  \
        mq get jobs                       # wait for one message\n  \
        mq get jobs -n 10 --timeout 5s    # up to 10 messages, waiting at most 5s for each\n  \
        mq get jobs --all --json          # drain what is there now, as JSON lines\n  \
        mq get jobs --follow | grep err   # keep printing until the queue is closed")]
    Get(GetArgs),

    /// Show the next message without taking it (exit 1 if there is none)
    Peek(PeekArgs),

    /// Show everything about a queue, with a drawing of its ring of slots
    Inspect(InspectArgs),

    /// List the queues in the queue directory
    #[command(visible_alias = "list")]
    Ls(LsArgs),

    /// Remove queues (refuses files that are not queues, and queues in use unless --force)
    #[command(visible_alias = "remove")]
    Rm(RmArgs),

    /// Close a queue: end of stream (puts fail, gets drain what is left, then stop)
    Close(CloseArgs),

    /// Move every message from SRC to DST (each a name or nats://HOST:PORT/NAME)
    /// until SRC is closed and drained, then close DST
    #[command(after_help = "Examples:\n  \
        mq bridge jobs nats://hub:4222/jobs     # on the producers' machine\n  \
        mq bridge nats://hub:4222/jobs jobs     # on each consumers' machine\n\n\
        Safe to kill -9 and restart at any moment: nothing is lost; what may be\n\
        delivered twice is described in docs/scale-out.md.")]
    Bridge(BridgeArgs),

    /// Live view of a queue: fill level, rates, blocked processes, participants
    Watch(WatchArgs),

    /// Measure throughput between processes on this machine
    Bench(BenchArgs),

    /// A self-contained tour: a temporary queue, producer and consumer processes,
    /// a crash, and what `inspect` shows
    Demo(DemoArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:\n  \
        mq completions bash > ~/.local/share/bash-completion/completions/mq\n  \
        mq completions zsh > ~/.zfunc/_mq\n  \
        mq completions fish > ~/.config/fish/completions/mq.fish")]
    Completions(CompletionsArgs),

    /// Print the man page (roff) generated from these definitions
    #[command(hide = true)]
    Man(ManArgs),

    /// Internal: a producer or consumer process of `mq bench` and `mq demo`
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// `mq create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Queue name: 1-200 of letters, digits, '.', '_', '-' (not starting with '.'),
    /// or nats://HOST:PORT/NAME for a queue on a NATS JetStream server
    pub name: String,

    /// Number of messages the queue holds
    #[arg(long, short = 'c', value_name = "N", default_value = "1024", value_parser = parse::count)]
    pub capacity: u64,

    /// Largest message (every slot reserves this much)
    #[arg(long, short = 's', value_name = "SIZE", default_value = "4KiB", value_parser = parse::size)]
    pub max_msg_size: u64,

    /// File permission bits, in octal (600: only you; 660: your group too; 666: everyone)
    #[arg(long, short = 'm', value_name = "MODE", default_value = "600", value_parser = parse::mode)]
    pub mode: u32,

    /// Most processes (handles) attached at once
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse::count)]
    pub max_participants: u64,

    /// Priority levels 0..N ('mq put --priority'); a get takes the highest first. Each level holds --capacity messages
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse::positive_count)]
    pub priorities: u64,

    /// Put a leased message back for another getter if it is not acked (or renewed) within DURATION, even though its holder lives
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub lease_timeout: Option<Duration>,

    /// Drop a message instead of delivering it an (N+1)-th time (a poison message that kills its consumers); counted in 'mq inspect'
    #[arg(long, value_name = "N", value_parser = parse::positive_count)]
    pub max_deliveries: Option<u64>,

    /// Move such a message to the queue NAME2 instead of dropping it (created with this queue's sizes if missing; it serves this queue only)
    #[arg(long, value_name = "NAME2", requires = "max_deliveries")]
    pub dead_letter: Option<String>,

    /// Succeed if the queue already exists (its own settings are kept)
    #[arg(long)]
    pub exist_ok: bool,

    /// Remote queues: how long a taken message may stay unacked before the
    /// server delivers it again (a getter that died)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse::duration)]
    pub ack_wait: Duration,
}

/// How long to wait, shared by put and get.
#[derive(Debug, Args, Clone, Copy)]
pub struct WaitArgs {
    /// Wait at most this long for each message (default: wait as long as it takes)
    #[arg(long, short = 't', value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,

    /// Do not wait at all
    #[arg(long, conflicts_with = "timeout")]
    pub no_wait: bool,
}

/// `mq put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Queue name, or nats://HOST:PORT/NAME
    pub name: String,

    /// Messages, one per argument (with none, stdin is read)
    #[arg(value_name = "MESSAGE")]
    pub messages: Vec<OsString>,

    /// Read stdin as one message per line (the newline is not part of the message)
    #[arg(long, short = 'l', conflicts_with_all = ["messages", "file"])]
    pub lines: bool,

    /// One message from this file's bytes (may be repeated)
    #[arg(long, short = 'f', value_name = "PATH", conflicts_with = "messages")]
    pub file: Vec<PathBuf>,

    #[command(flatten)]
    pub wait: WaitArgs,

    /// Priority of the messages (0 to the queue's levels - 1; higher is served first)
    #[arg(long, short = 'p', value_name = "N", default_value = "0", value_parser = parse::count)]
    pub priority: u64,

    /// Create the queue (default sizes) if it does not exist
    #[arg(long)]
    pub create: bool,
}

/// Output format of messages, shared by get and peek.
#[derive(Debug, Args, Clone, Copy)]
pub struct FormatArgs {
    /// Write the bytes of each message exactly, adding nothing
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// One JSON object per line: {"data": ..., "encoding": "utf8" | "base64", "bytes": N}
    #[arg(long)]
    pub json: bool,
}

/// `mq get`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("how_many").args(["count", "all", "follow"])))]
pub struct GetArgs {
    /// Queue names (or nats://HOST:PORT/NAME for one remote queue): with several, take from whichever has a message (--follow ends when all are closed)
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,

    /// Prefix each message with its queue's name and ": " (as in "q2: msg")
    #[arg(long, conflicts_with_all = ["raw", "json"])]
    pub with_name: bool,

    /// Take this many messages
    #[arg(short = 'n', long, value_name = "COUNT", default_value = "1", value_parser = parse::positive_count)]
    pub count: u64,

    /// Take every message waiting now (with --timeout: until none came for that long)
    #[arg(long, short = 'a')]
    pub all: bool,

    /// Keep taking messages until the queue is closed (or Ctrl-C, or --timeout passes without one)
    #[arg(long, short = 'f')]
    pub follow: bool,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

/// `mq peek`.
#[derive(Debug, Args)]
pub struct PeekArgs {
    /// Queue name, or nats://HOST:PORT/NAME
    pub name: String,

    #[command(flatten)]
    pub format: FormatArgs,
}

/// `mq inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Queue name, or nats://HOST:PORT/NAME
    pub name: String,

    /// Print one JSON object instead
    #[arg(long)]
    pub json: bool,
}

/// `mq ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// List the queues on this NATS server (nats://HOST:PORT) instead
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,

    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `mq rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Queue names or nats://HOST:PORT/NAME URLs (with --stale: only these
    /// are considered; default all)
    #[arg(required_unless_present = "stale", value_name = "NAME")]
    pub names: Vec<String>,

    /// Remove queues that no live process is attached to (left behind by
    /// crashed or finished processes), and unfinished segments whose creator
    /// died
    #[arg(long, conflicts_with = "force")]
    pub stale: bool,

    /// Remove even if processes are attached, or if the queue is corrupted or
    /// unfinished; ignore names that do not exist
    #[arg(long, short = 'f')]
    pub force: bool,
}

/// `mq close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// Queue name, or nats://HOST:PORT/NAME
    pub name: String,
}

/// `mq watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Queue name
    pub name: String,

    /// Time between refreshes [default: 250ms on a terminal, else 1s]
    #[arg(long, short = 'i', value_name = "DURATION", value_parser = parse::duration)]
    pub interval: Option<Duration>,

    /// Stop after this many refreshes
    #[arg(long, short = 'c', value_name = "N", value_parser = parse::positive_count)]
    pub count: Option<u64>,
}

/// `mq bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Message size
    #[arg(long, short = 's', value_name = "SIZE", default_value = "64", value_parser = parse::size)]
    pub size: u64,

    /// Producer processes
    #[arg(long, short = 'p', value_name = "N", default_value = "1", value_parser = parse::positive_count)]
    pub producers: u64,

    /// Consumer processes
    #[arg(long, short = 'c', value_name = "N", default_value = "1", value_parser = parse::positive_count)]
    pub consumers: u64,

    /// How long the producers run
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = parse::seconds)]
    pub seconds: Duration,

    /// Slots in the benchmark queue
    #[arg(long, value_name = "N", default_value = "1024", value_parser = parse::positive_count)]
    pub capacity: u64,

    /// Messages per call: 1 puts and gets one at a time (put, get_into); N > 1
    /// puts N at a time (put_many) and gets up to N (get_many_into); at most
    /// --capacity
    #[arg(long, short = 'b', value_name = "N", default_value = "1", value_parser = parse::positive_count)]
    pub batch: u64,

    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `mq demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long the producers run in the multi-process part
    #[arg(long, value_name = "SECONDS", default_value = "1.5", value_parser = parse::seconds)]
    pub seconds: Duration,
}

/// `mq completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `mq man` (hidden).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page of this subcommand (mq-SUBCOMMAND(1)) instead of mq(1)
    pub subcommand: Option<String>,

    /// Write every page (mq.1, mq-create.1, ...) into this directory instead
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub out_dir: Option<PathBuf>,
}

/// What a worker process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Put messages until the queue is closed (or `--count` messages).
    Producer,
    /// Take messages until the queue is closed and drained.
    Consumer,
    /// Take one message under a lease, report it, then sleep until killed.
    LeaseHolder,
}

/// `mq worker` (hidden).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// What to do
    #[arg(value_enum)]
    pub role: Role,

    /// Queue name
    pub name: String,

    /// Message size for producers
    #[arg(long, default_value = "64", value_parser = parse::size)]
    pub size: u64,

    /// Producer number, stamped into its messages
    #[arg(long, default_value = "0")]
    pub id: u64,

    /// Messages per call for producers and consumers (put_many / get_many_into when > 1)
    #[arg(long, default_value = "1", value_parser = parse::positive_count)]
    pub batch: u64,

    /// Wait for a line on stdin before starting (after printing "ready")
    #[arg(long)]
    pub wait_go: bool,
}

/// How long an operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitMode {
    /// As long as it takes.
    Forever,
    /// At most this long.
    Timeout(Duration),
    /// Not at all.
    NoWait,
}

impl WaitArgs {
    /// The wait mode these flags ask for, or `default` if none was given.
    pub fn mode_or(&self, default: WaitMode) -> WaitMode {
        match (self.no_wait, self.timeout) {
            (true, _) => WaitMode::NoWait,
            (false, Some(d)) => WaitMode::Timeout(d),
            (false, None) => default,
        }
    }
}

/// `mq bridge`.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Source queue: a name or nats://HOST:PORT/NAME
    pub src: String,

    /// Destination queue: a name or nats://HOST:PORT/NAME
    pub dst: String,

    /// Messages moved per round trip (also the most one kill -9 can duplicate)
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse::positive_count)]
    pub batch: u64,
}
