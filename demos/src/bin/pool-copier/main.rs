//! # pool-copier: copy a folder with a pool of processes (seed article, section 4.6, grown up)
//!
//! What it teaches:
//! * splitting a job into tasks for a process pool: small files go in
//!   batches (one task per file would cost more in messages than in
//!   copying), big files are cut into byte ranges (8 MiB by default) so that
//!   one huge file keeps every worker busy instead of one;
//! * a progress bar fed by the results as they come back, the article's
//!   second version, but without counting on a separate queue: each result
//!   says how many bytes and files it finished;
//! * letting the kernel move the bytes (`copy_file_range`, with reflinks
//!   where the file system has them, `read`/`write` where it refuses), and
//!   copying what a file is beyond its bytes: holes of sparse files stay
//!   holes (`SEEK_DATA`/`SEEK_HOLE`), names of one hard-linked file stay
//!   names of one file (linked in the parent once the copy is complete);
//! * what "copy" has to mean to be trusted: the whole tree (nested folders,
//!   empty files, any file name), permissions and modification times kept,
//!   symlinks copied as links, memory bounded whatever the file size, a file
//!   that changes while it is copied reported, no silent overwrite
//!   (`--force`), no copy into itself, every failure reported by path at the
//!   end with a non-zero exit code while the rest is copied, and `--verify`
//!   to read both sides back and compare them;
//! * cleaning up on Ctrl-C: the pool's workers and queues go away (exit 130).
//!
//! ```text
//! pool-copier SRC [DEST] [-j N] [--force] [--verify] [--quiet]
//!   DEST defaults to SRC-copy beside SRC
//! exit status: 0 copied, 1 some paths not copied (listed), 2 refused or failed, 130 interrupted
//! ```

mod data;
mod plan;
mod progress;
mod verify;
mod work;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytesize::ByteSize;
use clap::Parser;
use demos::human_rate;
use queue_pool::{Pool, TaskId, TaskResult};

use plan::{Plan, Problem};
use progress::Progress;
use work::{COPY_FILES, COPY_RANGE, FileJob, RangeJob, to_bytes};

#[derive(Parser)]
#[command(
    about = "Copy a folder with a pool of worker processes (seed article 4.6)",
    after_help = "Exit status: 0 copied, 1 some paths were not copied (listed at the end), \
                  2 refused or failed, 130 interrupted."
)]
struct Cli {
    /// The folder to copy
    src: PathBuf,
    /// Where the copy goes (default: SRC-copy beside SRC); created if missing
    dest: Option<PathBuf>,
    /// Worker processes (default: the number of CPUs)
    #[arg(short = 'j', long = "workers", value_name = "N")]
    workers: Option<usize>,
    /// Overwrite files and symlinks that exist in DEST
    #[arg(long)]
    force: bool,
    /// Read source and copy back and compare them (content, mode, mtime, links)
    #[arg(long)]
    verify: bool,
    /// Files larger than this are copied in ranges of this size by several workers (MiB)
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    chunk_mib: u64,
    /// No progress output
    #[arg(short, long)]
    quiet: bool,
}

/// Files per batch at most; batches are also cut by bytes and path length.
const MAX_BATCH_FILES: usize = 64;
const MAX_BATCH_BYTES: u64 = 8 << 20;
const MAX_BATCH_PATHS: usize = 128 << 10;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    // Workers are this program started again: they run tasks and exit here.
    queue_pool::run_worker_if_spawned(&work::registry());
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("pool-copier: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// What a submitted task was for.
enum Job {
    /// Whole files, by index in `plan.files`.
    Batch(Vec<usize>),
    /// One range of a big file.
    Range { file: usize },
}

/// The copy of one big file, range by range.
struct BigFile {
    ranges_left: u64,
    failed: bool,
    /// Bytes its ranges copied so far (taken back out of the total if the
    /// file fails: a removed copy was not copied).
    bytes: u64,
}

fn run(cli: &Cli) -> anyhow::Result<bool> {
    let started = Instant::now();
    let src = &cli.src;
    let md = fs::metadata(src).with_context(|| format!("cannot read SRC {}", src.display()))?;
    if !md.is_dir() {
        bail!("SRC {} is not a directory", src.display());
    }
    let dest = match &cli.dest {
        Some(d) => d.clone(),
        None => plan::default_dest(src)?,
    };
    plan::check_nesting(src, &dest)?;
    let dest_existed = match fs::symlink_metadata(&dest) {
        Ok(md) if md.is_dir() => true,
        Ok(_) => bail!("DEST {} exists and is not a directory", dest.display()),
        Err(_) => false,
    };
    let workers = cli
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if !(1..=256).contains(&workers) {
        bail!("-j {workers}: use 1 to 256 workers");
    }
    if cli.chunk_mib == 0 {
        bail!("--chunk-mib must be at least 1");
    }
    let chunk = cli.chunk_mib << 20;

    {
        let dest = dest.clone();
        ctrlc::set_handler(move || {
            INTERRUPTED.store(true, Ordering::SeqCst);
            queue_pool::cleanup();
            eprintln!(
                "\npool-copier: interrupted; {} is incomplete",
                dest.display()
            );
            std::process::exit(130);
        })
        .context("cannot install the Ctrl-C handler")?;
    }

    // The walk of SRC (in a thread) and the start of the workers overlap:
    // each takes 10-25 ms for 5,000 files, and neither needs the other.
    let (plan, pool) = std::thread::scope(|s| {
        let walk = s.spawn(|| plan::scan(src));
        let pool = Pool::builder(&work::registry())
            .workers(workers)
            .max_task_size(512 << 10)
            // One task waiting per worker: no idle round trip to the parent
            // between two ranges, and tasks are small enough to balance anyway.
            .prefetch(1)
            .on_worker_death(|d| eprintln!("pool-copier: {d}; a new worker took its place"))
            .spawn();
        let plan = walk
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (plan, pool)
    });
    let pool = pool.context("cannot start the worker pool")?;
    phase("scan and pool", started);
    let mut problems = match prepare(cli, &plan, &dest, dest_existed) {
        Ok(problems) => problems,
        Err(e) => {
            let _ = stop_pool(pool);
            return Err(e);
        }
    };
    phase("tree", started);
    if !cli.quiet {
        let pids: Vec<String> = pool.worker_pids().iter().map(u32::to_string).collect();
        eprintln!(
            "pool-copier: {} files ({}) in {} directories; {workers} worker processes: {}",
            plan.files.len(),
            ByteSize(plan.bytes()),
            plan.dirs.len(),
            pids.join(" ")
        );
    }

    let copied = copy(cli, &plan, &dest, chunk, &pool, &mut problems)?;
    phase("copy", started);
    // Further names of hard-linked files, now that their copies are complete.
    let (linked, link_problems) = plan::link_names(&plan, src, &dest, &copied.failed);
    problems.extend(link_problems);
    problems.extend(plan::finish_dirs(&plan, &dest));
    phase("dirs", started);
    let elapsed = started.elapsed();
    if !cli.quiet {
        // Hard links are named only when there are some (older outputs stay).
        let hard = match linked {
            0 => String::new(),
            n => format!(", {n} hard links"),
        };
        eprintln!(
            "pool-copier: copied {} files ({}), {} directories, {} symlinks{hard} from {} to {} in {:.2} s ({}) with {workers} worker processes",
            copied.files,
            ByteSize(copied.bytes),
            plan.dirs.len(),
            plan.links.len(),
            src.display(),
            dest.display(),
            elapsed.as_secs_f64(),
            human_rate(copied.bytes, elapsed),
        );
    }
    if cli.verify {
        let before = problems.len();
        verify::verify(
            cli,
            &plan,
            &dest,
            chunk,
            &pool,
            &copied.failed,
            &mut problems,
        )?;
        if !cli.quiet && problems.len() == before {
            eprintln!("pool-copier: verified: the copy is identical (content, mode, mtime, links)");
        }
    }
    stop_pool(pool)?;
    phase("join", started);

    let mut bad = problems;
    bad.extend(plan.problems);
    if bad.is_empty() {
        return Ok(true);
    }
    for p in &bad {
        eprintln!("pool-copier: {}: {}", p.path.display(), p.message);
    }
    eprintln!(
        "pool-copier: {} path(s) were not copied correctly (listed above)",
        bad.len()
    );
    Ok(false)
}

/// Checks the walk and DEST (refusing to overwrite without `--force`),
/// clears what `--force` allows, and makes the folders and symlinks.
fn prepare(
    cli: &Cli,
    plan: &Plan,
    dest: &Path,
    dest_existed: bool,
) -> anyhow::Result<Vec<Problem>> {
    let src = &cli.src;
    if plan.dirs.is_empty() {
        let why = plan.problems.first().map_or("", |p| p.message.as_str());
        bail!("cannot read SRC {}: {why}", src.display());
    }
    let mut problems: Vec<Problem> = Vec::new();
    if dest_existed {
        let existing = plan::conflicts(plan, dest);
        if !existing.is_empty() && !cli.force {
            let shown: Vec<String> = existing
                .iter()
                .take(5)
                .map(|p| format!("  {}", p.display()))
                .collect();
            bail!(
                "refusing to overwrite {} existing path(s) in {} (use --force to overwrite):\n{}{}",
                existing.len(),
                dest.display(),
                shown.join("\n"),
                if existing.len() > 5 { "\n  ..." } else { "" }
            );
        }
        problems.extend(plan::clear_conflicts(&existing));
    }
    problems.extend(plan::make_tree(plan, dest));
    Ok(problems)
}

/// What the copy did.
struct Copied {
    files: u64,
    bytes: u64,
    /// Indexes of files that failed (not verified).
    failed: Vec<bool>,
}

/// Groups small files into batches, in walk order (neighbours in a folder
/// stay together), at least ~4 batches per worker when there are enough.
fn batches(plan: &Plan, small: &[usize], workers: usize) -> Vec<Vec<usize>> {
    let per_batch = (small.len() / (workers * 4)).clamp(1, MAX_BATCH_FILES);
    let mut out = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let (mut bytes, mut paths) = (0u64, 0usize);
    for &i in small {
        let f = &plan.files[i];
        let path_len = 2 * f.entry.rel.as_os_str().len() + 64;
        if !cur.is_empty()
            && (cur.len() >= per_batch
                || bytes + f.size > MAX_BATCH_BYTES
                || paths + path_len > MAX_BATCH_PATHS)
        {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
            paths = 0;
        }
        cur.push(i);
        bytes += f.size;
        paths += path_len;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn copy(
    cli: &Cli,
    plan: &Plan,
    dest: &Path,
    chunk: u64,
    pool: &Pool,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<Copied> {
    let src = &cli.src;
    let mut failed = vec![false; plan.files.len()];
    let mut jobs: HashMap<TaskId, Job> = HashMap::new();
    let mut big: HashMap<usize, BigFile> = HashMap::new();
    let prealloc = data::preallocates(dest);

    // Big files first, biggest first: their ranges keep everyone busy, and
    // the small batches fill the gaps at the end.
    let mut order: Vec<usize> = (0..plan.files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plan.files[i].size));
    let (large, mut small): (Vec<usize>, Vec<usize>) =
        order.into_iter().partition(|&i| plan.files[i].size > chunk);
    small.sort_unstable();
    for i in large {
        let f = &plan.files[i];
        let to = dest.join(&f.entry.rel);
        // The parent makes the file full-size (one hole); workers fill in
        // their ranges, and the holes of a sparse source stay holes.
        let made = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&to)
            .and_then(|file| file.set_len(f.size));
        if let Err(e) = made {
            problems.push(Problem {
                path: src.join(&f.entry.rel),
                message: format!("cannot create the copy {}: {e}", to.display()),
            });
            failed[i] = true;
            continue;
        }
        let ranges = f.size.div_ceil(chunk);
        big.insert(
            i,
            BigFile {
                ranges_left: ranges,
                failed: false,
                bytes: 0,
            },
        );
        for r in 0..ranges {
            let offset = r * chunk;
            let job = RangeJob {
                src: to_bytes(&src.join(&f.entry.rel)),
                dst: to_bytes(&to),
                offset,
                len: Some(chunk.min(f.size - offset)),
                sparse: f.sparse,
                prealloc: if offset == 0 && prealloc && !f.sparse {
                    f.size
                } else {
                    0
                },
            };
            jobs.insert(pool.submit(COPY_RANGE, &job)?, Job::Range { file: i });
        }
    }
    for batch in batches(plan, &small, pool.worker_pids().len().max(1)) {
        let files: Vec<FileJob> = batch
            .iter()
            .map(|&i| {
                let f = &plan.files[i];
                FileJob {
                    src: to_bytes(&src.join(&f.entry.rel)),
                    dst: to_bytes(&dest.join(&f.entry.rel)),
                    meta: f.entry.meta,
                    size: f.size,
                    sparse: f.sparse,
                    prealloc: prealloc && !f.sparse,
                }
            })
            .collect();
        jobs.insert(pool.submit(COPY_FILES, &files)?, Job::Batch(batch));
    }

    let mut progress = Progress::new("copied", plan.bytes(), plan.files.len() as u64, cli.quiet);
    let (mut files_done, mut bytes_done) = (0u64, 0u64);
    let mut problem = |i: usize, message: String, progress: &Progress| {
        let path = src.join(&plan.files[i].entry.rel);
        if cli.quiet {
            problems.push(Problem { path, message });
        } else {
            progress.println(&format!("pool-copier: {}: {message}", path.display()));
            problems.push(Problem { path, message });
        }
    };
    while let Some(r) = pool.next_result() {
        if INTERRUPTED.load(Ordering::SeqCst) {
            // The Ctrl-C handler is tearing everything down and exits.
            std::thread::sleep(Duration::from_secs(3600));
        }
        let Some(job) = jobs.remove(&r.id) else {
            continue;
        };
        match job {
            Job::Batch(batch) => match r.output::<Vec<Result<u64, String>>>() {
                Ok(outcomes) => {
                    for (&i, outcome) in batch.iter().zip(outcomes) {
                        match outcome {
                            Ok(n) => {
                                files_done += 1;
                                bytes_done += n;
                                progress.add(n, 1);
                            }
                            Err(e) => {
                                failed[i] = true;
                                problem(i, e, &progress);
                            }
                        }
                    }
                }
                Err(e) => {
                    for &i in &batch {
                        failed[i] = true;
                        problem(i, format!("not copied: {e}"), &progress);
                    }
                }
            },
            Job::Range { file } => {
                let state = big
                    .get_mut(&file)
                    .expect("every range belongs to a big file");
                state.ranges_left -= 1;
                match range_outcome(&r) {
                    Ok(n) => {
                        state.bytes += n;
                        progress.add(n, 0);
                    }
                    Err(e) => {
                        if !state.failed {
                            state.failed = true;
                            failed[file] = true;
                            problem(file, e, &progress);
                        }
                    }
                }
                if state.ranges_left == 0 && state.failed {
                    // Made here (create_new) and not completed: a partial
                    // copy must not look like one (each range's error said
                    // it is removed), nor be counted as copied.
                    let _ = fs::remove_file(dest.join(&plan.files[file].entry.rel));
                    progress.take_back(state.bytes);
                }
                if state.ranges_left == 0 && !state.failed {
                    let f = &plan.files[file];
                    // The ranges copied the size listed: a source that grew
                    // or was rewritten meanwhile is reported, not trusted.
                    if let Some(e) = plan::changed_since_scan(&src.join(&f.entry.rel), f) {
                        failed[file] = true;
                        problem(file, e, &progress);
                        continue;
                    }
                    // Content complete: now mode and times.
                    let to = dest.join(&f.entry.rel);
                    let done = fs::OpenOptions::new()
                        .write(true)
                        .open(&to)
                        .and_then(|h| work::apply_meta(&h, &f.entry.meta));
                    match done {
                        Ok(()) => {
                            files_done += 1;
                            bytes_done += state.bytes;
                            progress.add(0, 1);
                        }
                        Err(e) => {
                            failed[file] = true;
                            problem(file, format!("cannot set mode and times: {e}"), &progress);
                        }
                    }
                }
            }
        }
    }
    progress.finish();
    Ok(Copied {
        files: files_done,
        bytes: bytes_done,
        failed,
    })
}

/// Stops the pool once every task is done. The pool's supervisor notices
/// `join` when it next wakes: at a result, or after its 50 ms poll. One
/// task that does nothing, submitted just before, brings a result at once
/// (and if it comes back before `join` starts, nothing worse than the poll
/// happens). Measured: `join` took 52-57 ms without it, 3-12 ms with it,
/// on a 5,000-file tree on tmpfs that copies in 110-240 ms.
fn stop_pool(pool: Pool) -> anyhow::Result<()> {
    // If it cannot be submitted, join still works, only later.
    let _ = pool.submit(work::NOTHING, &());
    pool.join().context("cannot stop the worker pool")?;
    Ok(())
}

fn phase(what: &str, started: Instant) {
    if std::env::var_os("POOL_COPIER_TIMING").is_some() {
        eprintln!(
            "timing: {what} done at {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn range_outcome(r: &TaskResult) -> Result<u64, String> {
    r.output::<u64>().map_err(|e| e.to_string())
}
