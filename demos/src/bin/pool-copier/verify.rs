//! `--verify`: reads source and copy back and compares them - metadata in
//! the parent (cheap), hard links by inode, content in the pool (ranges of
//! big files one per task, whole small files in batches).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use filetime::FileTime;
use queue_pool::{Pool, TaskId};

use crate::plan::{Plan, Problem};
use crate::progress::Progress;
use crate::work::{self, COMPARE, RangeJob, to_bytes};
use crate::{Cli, MAX_BATCH_FILES};

/// Compares the copy with the source; what differs goes to `problems`.
/// Files that failed to copy (`failed`) are not compared.
pub fn verify(
    cli: &Cli,
    plan: &Plan,
    dest: &Path,
    chunk: u64,
    pool: &Pool,
    failed: &[bool],
    problems: &mut Vec<Problem>,
) -> anyhow::Result<()> {
    let src = &cli.src;
    let mut differ = |path: PathBuf, message: String| {
        problems.push(Problem {
            path,
            message: format!("verify: {message}"),
        });
    };
    // Metadata, in this process: cheap.
    let check_meta = |rel: &Path, meta: &work::Meta, is_link: bool| -> Option<String> {
        let to = dest.join(rel);
        let md = match fs::symlink_metadata(&to) {
            Ok(md) => md,
            Err(e) => return Some(format!("cannot stat the copy {}: {e}", to.display())),
        };
        let mtime: work::Time = FileTime::from_last_modification_time(&md).into();
        if mtime != meta.mtime {
            return Some(format!(
                "modification times differ ({:?} vs {:?})",
                meta.mtime, mtime
            ));
        }
        if !is_link && md.mode() & 0o7777 != meta.mode {
            return Some(format!(
                "modes differ ({:o} vs {:o})",
                meta.mode,
                md.mode() & 0o7777
            ));
        }
        None
    };
    for d in &plan.dirs {
        if let Some(m) = check_meta(&d.rel, &d.meta, false) {
            differ(dest.join(&d.rel), m);
        }
    }
    for l in &plan.links {
        let to = dest.join(&l.entry.rel);
        match fs::read_link(&to) {
            Ok(t) if t == l.target => {
                if let Some(m) = check_meta(&l.entry.rel, &l.entry.meta, true) {
                    differ(to, m);
                }
            }
            Ok(t) => differ(
                to,
                format!("link points to {}, not {}", t.display(), l.target.display()),
            ),
            Err(e) => differ(to, format!("not a symlink: {e}")),
        }
    }
    for h in &plan.hardlinks {
        let first = &plan.files[h.first].entry.rel;
        if failed[h.first] {
            continue;
        }
        let id = |rel: &Path| fs::symlink_metadata(dest.join(rel)).map(|m| (m.dev(), m.ino()));
        match (id(first), id(&h.entry.rel)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => differ(
                dest.join(&h.entry.rel),
                format!("not a hard link of {}", dest.join(first).display()),
            ),
            (Err(e), _) | (_, Err(e)) => differ(
                dest.join(&h.entry.rel),
                format!("cannot stat it or its first name: {e}"),
            ),
        }
    }
    let mut checks: Vec<RangeJob> = Vec::new();
    let mut range_files: Vec<usize> = Vec::new();
    for (i, f) in plan.files.iter().enumerate() {
        if failed[i] {
            continue;
        }
        if let Some(m) = check_meta(&f.entry.rel, &f.entry.meta, false) {
            differ(dest.join(&f.entry.rel), m);
        }
        let (a, b) = (
            to_bytes(&src.join(&f.entry.rel)),
            to_bytes(&dest.join(&f.entry.rel)),
        );
        if f.size > chunk {
            for r in 0..f.size.div_ceil(chunk) {
                checks.push(RangeJob {
                    src: a.clone(),
                    dst: b.clone(),
                    offset: r * chunk,
                    len: Some(chunk.min(f.size - r * chunk)),
                    sparse: false,
                    prealloc: 0,
                });
                range_files.push(i);
            }
            // Ranges compare bytes, not sizes: check those here.
            let len = fs::metadata(dest.join(&f.entry.rel))
                .map(|m| m.len())
                .unwrap_or(u64::MAX);
            if len != f.size {
                differ(
                    dest.join(&f.entry.rel),
                    format!("sizes differ: source {} bytes, copy {len} bytes", f.size),
                );
            }
        } else {
            checks.push(RangeJob {
                src: a,
                dst: b,
                offset: 0,
                len: None,
                sparse: false,
                prealloc: 0,
            });
            range_files.push(i);
        }
    }
    // Content, in the pool: ranges one per task, whole small files in batches.
    let mut jobs: HashMap<TaskId, Vec<usize>> = HashMap::new();
    let mut cur: Vec<usize> = Vec::new();
    let per_batch =
        (checks.len() / (pool.worker_pids().len().max(1) * 4)).clamp(1, MAX_BATCH_FILES);
    let mut flush = |cur: &mut Vec<usize>| -> anyhow::Result<()> {
        if !cur.is_empty() {
            let batch: Vec<RangeJob> = cur.iter().map(|&k| checks[k].clone()).collect();
            jobs.insert(pool.submit(COMPARE, &batch)?, std::mem::take(cur));
        }
        Ok(())
    };
    for (k, check) in checks.iter().enumerate() {
        if check.len.is_some() {
            flush(&mut vec![k])?;
        } else {
            cur.push(k);
            if cur.len() >= per_batch {
                flush(&mut cur)?;
            }
        }
    }
    flush(&mut cur)?;
    let mut progress = Progress::new("verified", 0, checks.len() as u64, cli.quiet);
    while let Some(r) = pool.next_result() {
        let Some(batch) = jobs.remove(&r.id) else {
            continue;
        };
        match r.output::<Vec<Option<String>>>() {
            Ok(outcomes) => {
                for (&k, outcome) in batch.iter().zip(outcomes) {
                    if let Some(m) = outcome {
                        differ(dest.join(&plan.files[range_files[k]].entry.rel), m);
                    }
                }
            }
            Err(e) => {
                for &k in &batch {
                    differ(
                        dest.join(&plan.files[range_files[k]].entry.rel),
                        format!("not compared: {e}"),
                    );
                }
            }
        }
        progress.add(0, batch.len() as u64);
    }
    progress.finish();
    Ok(())
}
