//! What the workers do: copy batches of small files, copy byte ranges of big
//! files (the bytes themselves move in `data.rs`), and compare copies. Paths
//! travel as raw bytes (Unix paths need not be UTF-8), and every file's
//! failure is reported on its own, so one unreadable file never costs the
//! rest of its batch.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use queue_pool::{Registry, Task};
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::data;

/// Copies whole files and sets their mode and times.
pub const COPY_FILES: Task<Vec<FileJob>, Vec<Result<u64, String>>> = Task::new("copy-files");
/// Copies one byte range of a big file into an existing destination.
pub const COPY_RANGE: Task<RangeJob, u64> = Task::new("copy-range");
/// Does nothing; its result wakes the pool's supervisor at `join` (see
/// `stop_pool` in main.rs).
pub const NOTHING: Task<(), ()> = Task::new("nothing");
/// Compares byte ranges (or whole files) of source and copy.
pub const COMPARE: Task<Vec<RangeJob>, Vec<Option<String>>> = Task::new("compare");

/// Size of the buffer a worker streams through (memory per worker).
const BUF: usize = 1 << 20;

/// Smaller files are not preallocated: one more syscall per file made the
/// 5,000-file tree on ext4 slower (0.50 s against 0.46 s); from 1 MiB up it
/// was level.
const PREALLOC_MIN: u64 = 1 << 20;

/// The tasks every copier process knows.
pub fn registry() -> Registry {
    Registry::new()
        .register(COPY_FILES, |jobs: Vec<FileJob>| {
            let (mut from, mut to) = (Folder::default(), Folder::default());
            Ok::<_, String>(
                jobs.iter()
                    .map(|job| copy_file(job, &mut from, &mut to))
                    .collect::<Vec<_>>(),
            )
        })
        .register(COPY_RANGE, |job: RangeJob| copy_range(&job))
        .register(COMPARE, |jobs: Vec<RangeJob>| {
            Ok::<_, String>(jobs.iter().map(compare).collect::<Vec<_>>())
        })
        .register(NOTHING, |()| Ok::<_, String>(()))
}

/// A timestamp that survives serialisation.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub secs: i64,
    /// Nanoseconds.
    pub nanos: u32,
}

impl From<FileTime> for Time {
    fn from(t: FileTime) -> Time {
        Time {
            secs: t.unix_seconds(),
            nanos: t.nanoseconds(),
        }
    }
}

impl From<Time> for FileTime {
    fn from(t: Time) -> FileTime {
        FileTime::from_unix_time(t.secs, t.nanos)
    }
}

/// Mode and times to give a copy.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct Meta {
    /// Permission bits (including setuid, setgid, sticky).
    pub mode: u32,
    /// Last access.
    pub atime: Time,
    /// Last modification.
    pub mtime: Time,
}

/// Copy one whole file.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FileJob {
    /// Source path bytes.
    pub src: Vec<u8>,
    /// Destination path bytes (must not exist).
    pub dst: Vec<u8>,
    /// What to set on the copy once its content is complete.
    pub meta: Meta,
    /// Size when SRC was listed (a different size when copied is reported).
    pub size: u64,
    /// Has holes: copy only its data extents.
    pub sparse: bool,
    /// Preallocate the copy to `size` first (never with `sparse`).
    pub prealloc: bool,
}

/// A byte range of a file (`len: None` = the whole file, compared with its size).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RangeJob {
    /// Source path bytes.
    pub src: Vec<u8>,
    /// Destination path bytes.
    pub dst: Vec<u8>,
    /// First byte.
    pub offset: u64,
    /// Number of bytes, or the whole file.
    pub len: Option<u64>,
    /// The file has holes: copy only the data extents in the range.
    pub sparse: bool,
    /// Preallocate the destination to this many bytes first (the first
    /// range of a file without holes; 0: no).
    pub prealloc: u64,
}

/// Path to bytes, for a task.
pub fn to_bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// Bytes from a task back to a path.
pub fn to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// Sets mode and times on an open copy (times last: nothing writes after).
pub fn apply_meta(file: &File, meta: &Meta) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(meta.mode & 0o7777))?;
    filetime::set_file_handle_times(file, Some(meta.atime.into()), Some(meta.mtime.into()))
}

/// This process's umask, from `/proc/self/status` (0o777 if unknown, which
/// makes every copy get an explicit chmod).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            })
            .unwrap_or(0o777)
    })
}

/// The folder of the last file opened on one side, kept open: the files of
/// a batch are neighbours in the walk, so most opens then resolve one name
/// (`openat`) instead of every component of a long path.
#[derive(Default)]
struct Folder {
    /// The folder's path bytes and an `O_PATH` descriptor of it.
    open: Option<(Vec<u8>, OwnedFd)>,
}

impl Folder {
    /// Opens `path` (bytes) with `flags` relative to its folder.
    fn openat(&mut self, path: &[u8], flags: OFlags, mode: u32) -> io::Result<File> {
        let (dir, name) = self.enter(path)?;
        let fd = rustix::fs::openat(
            dir,
            name,
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        Ok(File::from(fd))
    }

    /// Removes the file `path` (bytes), relative to its folder.
    fn unlink(&mut self, path: &[u8]) -> io::Result<()> {
        let (dir, name) = self.enter(path)?;
        Ok(rustix::fs::unlinkat(
            dir,
            name,
            rustix::fs::AtFlags::empty(),
        )?)
    }

    /// The folder of `path` (opened unless it is the one kept) and the name
    /// in it.
    fn enter<'p>(&mut self, path: &'p [u8]) -> io::Result<(&OwnedFd, &'p std::ffi::OsStr)> {
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let parent_bytes = parent.as_os_str().as_bytes();
        let (_, dir) = match self.open.take() {
            Some((p, fd)) if p == parent_bytes => self.open.insert((p, fd)),
            _ => {
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let fd = rustix::fs::open(parent, flags, Mode::empty())?;
                self.open.insert((parent_bytes.to_vec(), fd))
            }
        };
        Ok((dir, name))
    }
}

fn copy_file(job: &FileJob, from: &mut Folder, to: &mut Folder) -> Result<u64, String> {
    let src = from
        .openat(&job.src, OFlags::RDONLY, 0)
        .map_err(|e| format!("cannot read: {e}"))?;
    let mode = job.meta.mode & 0o7777;
    // O_EXCL: never write through a symlink or over a file that appeared
    // meanwhile; the parent removed what --force allowed it to. The file is
    // made with its final mode when the umask leaves that mode alone (a
    // read-only mode is fine: it applies to later opens, not to this one).
    let exact = mode & 0o7000 == 0 && mode & umask() == 0;
    let dst = to
        .openat(
            &job.dst,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            if exact { mode } else { 0o600 },
        )
        .map_err(|e| format!("cannot create the copy: {e}"))?;
    let copied = if job.prealloc && job.size >= PREALLOC_MIN {
        data::preallocate(&dst, job.size)
    } else {
        Ok(())
    }
    .and_then(|()| {
        // In the kernel (copy_file_range), never through more than one
        // buffer: memory does not grow with the file.
        if job.sparse {
            data::copy_sparse(&src, &dst, job.size)
        } else {
            data::copy_to_end(&src, &dst, job.size)
        }
    });
    let n = match copied {
        Ok(n) => n,
        Err(e) => {
            // The copy is ours (O_EXCL): a half-written file that looks like
            // a copy must not stay behind.
            drop(dst);
            let removed = to.unlink(&job.dst).is_ok();
            return Err(copy_failed(&job.dst, &e, removed));
        }
    };
    if n != job.size {
        // A source that shrank leaves the preallocated length: cut the copy
        // to what was copied (it is reported anyway).
        let _ = dst.set_len(n);
        return Err(changed(job.size, n));
    }
    let times = (Some(job.meta.atime.into()), Some(job.meta.mtime.into()));
    if exact {
        filetime::set_file_handle_times(&dst, times.0, times.1)
    } else {
        apply_meta(&dst, &job.meta)
    }
    .map_err(|e| format!("cannot set mode and times: {e}"))?;
    Ok(n)
}

/// The message for a source whose size changed while it was copied.
pub fn changed(listed: u64, now: u64) -> String {
    let how = if now > listed { "grew" } else { "shrank" };
    format!(
        "the file {how} while being copied ({listed} bytes when listed, {now} bytes copied): \
         the copy may mix old and new content (copy it again when it is not being written)"
    )
}

fn copy_range(job: &RangeJob) -> Result<u64, String> {
    let src = File::open(to_path(&job.src)).map_err(|e| format!("cannot read: {e}"))?;
    let dst = OpenOptions::new()
        .write(true)
        .open(to_path(&job.dst))
        .map_err(|e| format!("cannot open the copy: {e}"))?;
    let (offset, len) = (job.offset, job.len.unwrap_or(0));
    data::preallocate(&dst, job.prealloc)
        .and_then(|()| data::copy_range(&src, &dst, offset, len, job.sparse))
        .map_err(|e| {
            // The parent removes the copy once its other ranges are done.
            let what = copy_failed(&job.dst, &e, true);
            format!("bytes {offset}..{}: {what}", offset + len)
        })
}

/// The message for a copy to `dst` that failed with `e`; `removed` says
/// whether the partial copy was removed. A full destination is named as
/// the cause, with a hint; any other error (a read of the source, which
/// `data` says, or a write) only says which copy it stopped.
fn copy_failed(dst: &[u8], e: &io::Error, removed: bool) -> String {
    // ENOSPC, EDQUOT, EFBIG, and `data::preallocate`'s own error for them.
    use io::ErrorKind::{FileTooLarge, QuotaExceeded, StorageFull};
    let full = matches!(e.kind(), StorageFull | QuotaExceeded | FileTooLarge);
    let removed = if removed {
        "; the partial copy is removed"
    } else {
        ""
    };
    let dst = to_path(dst);
    let dst = dst.display();
    if full {
        format!(
            "cannot copy to {dst}: {e} (free some space there, or copy to another place){removed}"
        )
    } else {
        format!("the copy to {dst} failed: {e}{removed}")
    }
}

/// `None` when both sides hold the same bytes, else what differs.
fn compare(job: &RangeJob) -> Option<String> {
    let open = |p: &[u8], side: &str| {
        File::open(to_path(p)).map_err(|e| format!("cannot read the {side}: {e}"))
    };
    let (a, b) = match (open(&job.src, "source"), open(&job.dst, "copy")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Some(e),
    };
    let len = match job.len {
        Some(len) => len,
        None => {
            let (la, lb) = match (a.metadata(), b.metadata()) {
                (Ok(ma), Ok(mb)) => (ma.len(), mb.len()),
                (Err(e), _) | (_, Err(e)) => return Some(format!("cannot stat: {e}")),
            };
            if la != lb {
                return Some(format!("sizes differ: source {la} bytes, copy {lb} bytes"));
            }
            la
        }
    };
    let mut ba = vec![0u8; BUF.min(len as usize).max(1)];
    let mut bb = ba.clone();
    let mut done = 0u64;
    while done < len {
        let want = ba.len().min((len - done) as usize);
        let at = job.offset + done;
        let read = |f: &File, buf: &mut [u8]| -> io::Result<()> {
            let mut r = ReadAt { file: f, at };
            r.read_exact(buf)
        };
        if let Err(e) = read(&a, &mut ba[..want]).and_then(|()| read(&b, &mut bb[..want])) {
            return Some(format!("cannot read at byte {at}: {e}"));
        }
        if ba[..want] != bb[..want] {
            let first = ba[..want]
                .iter()
                .zip(&bb[..want])
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            return Some(format!("contents differ at byte {}", at + first as u64));
        }
        done += want as u64;
    }
    None
}

/// `Read` over positional reads, for `read_exact`.
struct ReadAt<'f> {
    file: &'f File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a full destination is blamed on the destination, with the hint.
    #[test]
    fn a_failed_copy_blames_the_destination_only_when_it_is_full() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let read = io::Error::other("cannot read the source at byte 0: Input/output error");
        assert_eq!(
            copy_failed(b"/d/f", &full, true),
            format!(
                "cannot copy to /d/f: {full} (free some space there, or copy to another place); the partial copy is removed"
            )
        );
        assert_eq!(
            copy_failed(b"/d/f", &read, false),
            "the copy to /d/f failed: cannot read the source at byte 0: Input/output error"
        );
    }
}
