//! What the workers do: copy batches of small files, copy byte ranges of big
//! files, and compare copies. Paths travel as raw bytes (Unix paths need
//! not be UTF-8), and every file's failure is reported on its own, so one
//! unreadable file never costs the rest of its batch.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use queue_pool::{Registry, Task};
use serde::{Deserialize, Serialize};

/// Copies whole files and sets their mode and times.
pub const COPY_FILES: Task<Vec<FileJob>, Vec<Result<u64, String>>> = Task::new("copy-files");
/// Copies one byte range of a big file into an existing destination.
pub const COPY_RANGE: Task<RangeJob, u64> = Task::new("copy-range");
/// Compares byte ranges (or whole files) of source and copy.
pub const COMPARE: Task<Vec<RangeJob>, Vec<Option<String>>> = Task::new("compare");

/// Size of the buffer a worker streams through (memory per worker).
const BUF: usize = 1 << 20;

/// The tasks every copier process knows.
pub fn registry() -> Registry {
    Registry::new()
        .register(COPY_FILES, |jobs: Vec<FileJob>| {
            Ok::<_, String>(jobs.iter().map(copy_file).collect::<Vec<_>>())
        })
        .register(COPY_RANGE, |job: RangeJob| copy_range(&job))
        .register(COMPARE, |jobs: Vec<RangeJob>| {
            Ok::<_, String>(jobs.iter().map(compare).collect::<Vec<_>>())
        })
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

/// Files up to this size are copied through one buffer read; bigger ones
/// with `io::copy` (in the kernel).
const SMALL: usize = 256 << 10;

thread_local! {
    static SMALL_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
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

fn copy_file(job: &FileJob) -> Result<u64, String> {
    let mut src = File::open(to_path(&job.src)).map_err(|e| format!("cannot read: {e}"))?;
    let mode = job.meta.mode & 0o7777;
    // create_new: never write through a symlink or over a file that appeared
    // meanwhile; the parent removed what --force allowed it to. The file is
    // made with its final mode when the umask leaves that mode alone (a
    // read-only mode is fine: it applies to later opens, not to this one).
    let exact = mode & 0o7000 == 0 && mode & umask() == 0;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if exact { mode } else { 0o600 })
        .open(to_path(&job.dst))
        .map_err(|e| format!("cannot create the copy: {e}"))?;
    // Stream: small files through one reused buffer (two reads, one write),
    // bigger ones with io::copy (copy_file_range in the kernel when it can).
    // Either way memory does not grow with the file.
    let n = SMALL_BUF
        .with(|buf| -> io::Result<Option<u64>> {
            let mut buf = buf.borrow_mut();
            buf.resize(SMALL + 1, 0);
            let mut filled = 0;
            loop {
                match src.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                if filled > SMALL {
                    return Ok(None); // bigger than it looked: stream the rest
                }
            }
            io::Write::write_all(&mut dst, &buf[..filled])?;
            Ok(Some(filled as u64))
        })
        .map_err(|e| format!("cannot copy: {e}"))?;
    let n = match n {
        Some(n) => n,
        None => {
            // Start again from byte 0 with the kernel's copy.
            io::Seek::rewind(&mut src)
                .and_then(|()| io::copy(&mut src, &mut dst))
                .map_err(|e| format!("cannot copy: {e}"))?
        }
    };
    let times = (Some(job.meta.atime.into()), Some(job.meta.mtime.into()));
    if exact {
        filetime::set_file_handle_times(&dst, times.0, times.1)
    } else {
        apply_meta(&dst, &job.meta)
    }
    .map_err(|e| format!("cannot set mode and times: {e}"))?;
    Ok(n)
}

fn copy_range(job: &RangeJob) -> Result<u64, String> {
    let src = File::open(to_path(&job.src)).map_err(|e| format!("cannot read: {e}"))?;
    let dst = OpenOptions::new()
        .write(true)
        .open(to_path(&job.dst))
        .map_err(|e| format!("cannot open the copy: {e}"))?;
    let len = job.len.unwrap_or(0);
    // In the kernel first (no copy through this process, and on file systems
    // that support it, shared extents); the fallback streams through a buffer.
    let mut done = 0u64;
    while done < len {
        let (mut from, mut to) = (job.offset + done, job.offset + done);
        let want = (len - done).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(&src, Some(&mut from), &dst, Some(&mut to), want) {
            Ok(0) => break, // end of file early, or nothing copied: let the loop below decide
            Ok(n) => done += n as u64,
            Err(_) => break, // not supported here (EXDEV, EINVAL, ENOSYS...)
        }
    }
    let mut buf = vec![0u8; BUF.min((len - done) as usize).max(1)];
    while done < len {
        let want = buf.len().min((len - done) as usize);
        let at = job.offset + done;
        let n = src
            .read_at(&mut buf[..want], at)
            .map_err(|e| format!("cannot read at byte {at}: {e}"))?;
        if n == 0 {
            return Err(format!(
                "the file shrank while being copied (ends at byte {at}, expected {})",
                job.offset + len
            ));
        }
        dst.write_all_at(&buf[..n], at)
            .map_err(|e| format!("cannot write at byte {at}: {e}"))?;
        done += n as u64;
    }
    Ok(done)
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
