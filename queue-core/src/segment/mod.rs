//! Finding, creating, opening, mapping and removing segment files.
//!
//! A queue named `jobs` is the file `<dir>/mq.jobs`, where `<dir>` is the
//! builder's directory, else `$MQ_DIR`, else `/dev/shm`. Creation is two-phase
//! (iceoryx2 style): the file is created exclusively, sized with
//! `posix_fallocate`, chmod-ed, initialised, and only then published by a
//! Release store of the magic; openers wait a bounded time for that store.
//!
//! All raw-pointer access to the mapping lives in this module and its
//! `payload` part (the copies of messages in and out of slots).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memmap2::MmapRaw;

use crate::error::{OpenError, RemoveError};
use crate::layout::{
    Delivery, Geometry, GeometryError, HEADER_SIZE, Header, LAYOUT_VERSION, LEVEL_SIZE,
    LevelCursors, MAGIC, ParticipantEntry, SLOT_META_SIZE, SlotHeader, SlotMeta,
};
use crate::ring::Slots;
use crate::sys;

mod copy;
mod payload;
pub(crate) use payload::Appended;

/// Prefix of every segment file name, so `mq ls` can find queues.
pub const FILE_PREFIX: &str = "mq.";

/// Longest queue name.
pub const MAX_NAME_LEN: usize = 200;
const _: () = assert!(MAX_NAME_LEN == 8 * crate::layout::NAME_WORDS);

/// Byte of the segment file whose record lock the creator holds while it
/// initialises; participant `i` locks byte `1 + i` (see `liveness.rs`).
pub(crate) const INIT_LOCK_BYTE: u64 = 0;

/// How long `open` waits for a creator to publish the segment.
const INIT_WAIT: Duration = Duration::from_secs(2);

/// Grace period in which a new file may not be locked by its creator yet.
const INIT_GRACE: Duration = Duration::from_millis(100);

/// Checks a queue name: 1-200 of `[A-Za-z0-9._-]`, not starting with '.'.
/// Nothing touches the file system before this passes, so `../x` or `a/b`
/// can never escape the queue directory.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("the name is longer than 200 characters");
    }
    if name.starts_with('.') {
        return Err("the name starts with '.'");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(match bad {
            '/' => "'/' is not allowed (names are not paths)",
            '\0' => "NUL bytes are not allowed",
            _ => "only letters, digits, '.', '_' and '-' are allowed",
        });
    }
    Ok(())
}

/// The queue directory: `explicit` if given, else `$MQ_DIR` if set and not
/// empty, else `/dev/shm`.
pub fn queue_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match std::env::var_os("MQ_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(sys::DEFAULT_DIR),
    }
}

/// The segment file of queue `name` in `dir`.
pub fn segment_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{name}"))
}

/// Names of the queue files in `dir` (files named `mq.<valid name>`), sorted.
/// Whether each really is a queue is found out by opening it.
pub fn list(dir: Option<&Path>) -> io::Result<Vec<String>> {
    let dir = queue_dir(dir);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)) else {
            continue;
        };
        if validate_name(name).is_ok() && entry.file_type()?.is_file() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Who owns a segment file, and its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileOwner {
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
}

/// What `wait_until_published` saw of a published file.
struct Published {
    /// The file's length when it was measured.
    len: u64,
    /// Its first eight bytes (the magic, if it is a queue).
    first: [u8; 8],
}

/// How a segment is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `O_RDWR` and a shared writable mapping: a participant.
    ReadWrite,
    /// `O_RDONLY` and `PROT_READ`: an observer.
    ReadOnly,
}

/// A mapped, validated segment.
pub(crate) struct Segment {
    pub name: String,
    pub path: PathBuf,
    pub file: File,
    pub geometry: Geometry,
    /// The delivery-control settings, read once when opened.
    pub delivery: Delivery,
    /// The dead-letter queue's name (`Builder::dead_letter`), read once
    /// when opened.
    pub dead_letter: Option<String>,
    map: MmapRaw,
    /// Where the slots are, derived once from `map` and `geometry`.
    grid: SlotGrid,
}

/// Where slot `i` lives and which slot a position of the whole ring falls
/// on, derived once per mapping: the hot path neither re-adds offsets nor
/// divides (when the slot count is a power of two).
#[derive(Clone, Copy)]
struct SlotGrid {
    /// Address of slot 0.
    first: *mut u8,
    /// `geometry.slot_stride`.
    stride: u64,
    /// `geometry.slots`.
    slots: u64,
    /// `log2(slots)` when `slots` is a power of two, else `u32::MAX`.
    shift: u32,
    /// Whether the payload loops copy by AVX2 moves
    /// ([`copy::small_copies`]).
    small_copies: bool,
}

impl SlotGrid {
    fn new(map: &MmapRaw, geometry: &Geometry) -> SlotGrid {
        let slots = geometry.slots;
        SlotGrid {
            // `slots_offset < total_size == mapping length`, checked on
            // open (wrapping: forming the address needs no `unsafe`).
            first: map
                .as_mut_ptr()
                .wrapping_add(geometry.slots_offset as usize),
            stride: geometry.slot_stride,
            slots,
            shift: if slots.is_power_of_two() {
                slots.trailing_zeros()
            } else {
                u32::MAX
            },
            small_copies: copy::small_copies(geometry.max_msg_size),
        }
    }
}

// SAFETY: the mapping is shared memory accessed only through atomics and
// through payload copies that the slot protocol gives to one owner at a time;
// the raw pointer inside `MmapRaw` is valid for the life of the value on any
// thread.
unsafe impl Send for Segment {}
// SAFETY: as above; no method hands out `&mut` to the mapping.
unsafe impl Sync for Segment {}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> OpenError {
    OpenError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn permission_denied(name: &str, path: &Path) -> OpenError {
    let (owner_uid, mode) = std::fs::metadata(path)
        .map(|m| (m.uid(), m.permissions().mode() & 0o7777))
        .unwrap_or((u32::MAX, 0));
    OpenError::PermissionDenied {
        name: name.to_owned(),
        path: path.to_path_buf(),
        owner_uid,
        mode,
    }
}

fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT)
    )
}

fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Removes a file we created if a later step failed, so nothing half-made is left.
struct RemoveOnDrop<'a>(Option<&'a Path>);
impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Segment {
    /// Creates a new segment exclusively and publishes it.
    pub(crate) fn create(
        name: &str,
        dir: &Path,
        geometry: Geometry,
        delivery: Delivery,
        dead_letter: Option<&str>,
        mode: u32,
    ) -> Result<Segment, OpenError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
        }
        let path = segment_path(dir, name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => OpenError::AlreadyExists {
                    name: name.to_owned(),
                    dir: dir.to_path_buf(),
                },
                io::ErrorKind::PermissionDenied => permission_denied(name, dir),
                _ if is_out_of_space(&e) => OpenError::OutOfSpace {
                    name: name.to_owned(),
                    dir: dir.to_path_buf(),
                    needed: geometry.total_size as usize,
                },
                _ => io_err("create", &path, e),
            })?;
        let mut cleanup = RemoveOnDrop(Some(&path));
        // Openers that see an unpublished file check this lock to tell a
        // creator at work from a dead one.
        let _ = sys::try_lock_byte(&file, INIT_LOCK_BYTE);
        sys::allocate(&file, geometry.total_size).map_err(|e| {
            if is_out_of_space(&e) {
                OpenError::OutOfSpace {
                    name: name.to_owned(),
                    dir: dir.to_path_buf(),
                    needed: geometry.total_size as usize,
                }
            } else {
                io_err("allocate space for", &path, e)
            }
        })?;
        // fchmod after creation: the requested mode must not depend on umask.
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_err("set the mode of", &path, e))?;
        let map = MmapRaw::map_raw(&file).map_err(|e| io_err("map", &path, e))?;
        let seg = Segment {
            name: name.to_owned(),
            path: path.clone(),
            file,
            geometry,
            delivery,
            grid: SlotGrid::new(&map, &geometry),
            dead_letter: dead_letter.map(str::to_owned),
            map,
        };
        // The file was just created by us and is not yet published (magic is
        // 0), so nobody else reads these yet; the Release store of the magic
        // below publishes them.
        let h = seg.header();
        h.layout_version.store(LAYOUT_VERSION, Relaxed);
        h.capacity.store(geometry.capacity, Relaxed);
        h.max_msg_size.store(geometry.max_msg_size, Relaxed);
        h.slot_stride.store(geometry.slot_stride, Relaxed);
        h.max_participants.store(geometry.max_participants, Relaxed);
        h.participants_offset
            .store(geometry.participants_offset, Relaxed);
        h.slots_offset.store(geometry.slots_offset, Relaxed);
        h.meta_offset.store(geometry.meta_offset, Relaxed);
        h.priorities.store(geometry.priorities, Relaxed);
        h.levels_offset.store(geometry.levels_offset, Relaxed);
        h.total_size.store(geometry.total_size, Relaxed);
        h.lease_timeout_ns.store(delivery.lease_timeout_ns, Relaxed);
        h.max_deliveries.store(delivery.max_deliveries, Relaxed);
        if let Some(dlq) = dead_letter {
            write_name(&h.dead_letter, &h.dead_letter_len, dlq);
        }
        h.created_unix_ns.store(now_unix_ns(), Relaxed);
        h.creator_pid.store(u64::from(sys::current_pid()), Relaxed);
        // Everything else (cursors, counters, participant table, slot states)
        // starts as the zeros fallocate gave us: zero is a valid empty ring.
        // SYNC: Release pairs with the Acquire load of the magic in `validate`.
        seg.header().magic.store(MAGIC, Release);
        let _ = sys::unlock_byte(&seg.file, INIT_LOCK_BYTE);
        cleanup.0 = None;
        Ok(seg)
    }

    /// Opens and validates an existing segment for reading and writing.
    pub(crate) fn open(name: &str, dir: &Path) -> Result<Segment, OpenError> {
        Self::open_with(name, dir, Access::ReadWrite)
    }

    /// Opens and validates an existing segment read-only (`O_RDONLY`,
    /// `PROT_READ`): needs only read permission, and nothing done through the
    /// result can write a byte (a store would fault). Validation is the same
    /// as [`Segment::open`]'s, without its one step that needs write access
    /// (reserving storage for a sparse file).
    pub(crate) fn open_read_only(name: &str, dir: &Path) -> Result<Segment, OpenError> {
        Self::open_with(name, dir, Access::ReadOnly)
    }

    fn open_with(name: &str, dir: &Path, access: Access) -> Result<Segment, OpenError> {
        let path = segment_path(dir, name);
        // O_NONBLOCK: anyone who may create files in the directory (all
        // users, in /dev/shm) could put a FIFO there under a queue's name;
        // opening must not wait for its other end. It changes nothing for
        // regular files.
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => OpenError::NotFound {
                    name: name.to_owned(),
                    dir: dir.to_path_buf(),
                },
                io::ErrorKind::PermissionDenied => permission_denied(name, &path),
                _ if e.raw_os_error() == Some(libc::ELOOP) => OpenError::NotAQueue {
                    name: name.to_owned(),
                    path: path.clone(),
                    what: "it is a symbolic link".into(),
                },
                _ => io_err("open", &path, e),
            })?;
        let Published { len, first } = Self::wait_until_published(name, &path, &file)?;
        let magic = u64::from_le_bytes(first);
        if magic != MAGIC {
            if first[..6] == MAGIC.to_le_bytes()[..6] {
                return Err(OpenError::Incompatible {
                    name: name.to_owned(),
                    path: path.clone(),
                    found: u64::from(first[7]),
                    expected: LAYOUT_VERSION,
                });
            }
            return Err(OpenError::NotAQueue {
                name: name.to_owned(),
                path: path.clone(),
                what: format!("its first bytes are {first:02x?}"),
            });
        }
        let corrupted = |what: String| OpenError::Corrupted {
            name: name.to_owned(),
            path: path.clone(),
            what,
        };
        if len < HEADER_SIZE {
            // A small segment of an older layout (whose header was shorter)
            // is reported as what it is.
            let mut version = [0u8; 8];
            if file.read_exact_at(&mut version, 8).is_ok() {
                let found = u64::from_le_bytes(version);
                if found != LAYOUT_VERSION {
                    return Err(OpenError::Incompatible {
                        name: name.to_owned(),
                        path,
                        found,
                        expected: LAYOUT_VERSION,
                    });
                }
            }
            return Err(corrupted(format!("the file is only {len} bytes")));
        }
        let map = match access {
            Access::ReadWrite => MmapRaw::map_raw(&file),
            Access::ReadOnly => memmap2::MmapOptions::new().map_raw_read_only(&file),
        }
        .map_err(|e| io_err("map", &path, e))?;
        let (geometry, delivery, dead_letter) = Self::validate(name, &path, &map, corrupted)?;
        // Make sure every page has storage behind it. A segment we created
        // has (`create` allocates it all), but a file made by someone else
        // may be sparse: touching a hole in a full tmpfs kills the process
        // with SIGBUS. Allocating never changes the contents or the length.
        // (A read-only opener cannot and need not: reading a hole maps the
        // zero page, it never needs new storage.)
        if access == Access::ReadWrite {
            if let Err(e) = sys::allocate(&file, geometry.total_size) {
                if is_out_of_space(&e) {
                    return Err(OpenError::OutOfSpace {
                        name: name.to_owned(),
                        dir: dir.to_path_buf(),
                        needed: geometry.total_size as usize,
                    });
                }
                // Not supported by this file system (or similar): go on, as
                // `create` could not have reserved space here either.
            }
        }
        Ok(Segment {
            name: name.to_owned(),
            path,
            file,
            geometry,
            delivery,
            grid: SlotGrid::new(&map, &geometry),
            dead_letter,
            map,
        })
    }

    /// Checks a mapped header field by field against itself and the mapping's
    /// length, and returns the geometry it describes. Reads only: shared by
    /// the writable and the read-only open.
    fn validate(
        name: &str,
        path: &Path,
        map: &MmapRaw,
        corrupted: impl Fn(String) -> OpenError,
    ) -> Result<(Geometry, Delivery, Option<String>), OpenError> {
        // From here on only the mapping's own length counts: the file may
        // have changed size since it was measured.
        let mapped = map.len() as u64;
        if mapped < HEADER_SIZE {
            return Err(corrupted(format!("the file is only {mapped} bytes")));
        }
        // SAFETY: the mapping is at least HEADER_SIZE bytes and page aligned;
        // `Header` is all atomics (and padding), valid for any bit pattern.
        let h = unsafe { &*(map.as_ptr() as *const Header) };
        // SYNC: Acquire pairs with the creator's Release store of the magic
        // in `create`, so the geometry fields read below are the initialised
        // ones.
        if h.magic.load(Acquire) != MAGIC {
            return Err(corrupted("the magic changed while opening".into()));
        }
        // Nobody following the protocol writes the geometry fields after
        // publication, but a hostile process may write them at any time:
        // read each exactly once and use only the values read (never the
        // fields again).
        let layout_version = h.layout_version.load(Relaxed);
        if layout_version != LAYOUT_VERSION {
            return Err(OpenError::Incompatible {
                name: name.to_owned(),
                path: path.to_path_buf(),
                found: layout_version,
                expected: LAYOUT_VERSION,
            });
        }
        let capacity = h.capacity.load(Relaxed);
        let max_msg_size = h.max_msg_size.load(Relaxed);
        let max_participants = h.max_participants.load(Relaxed);
        let priorities = h.priorities.load(Relaxed);
        let geometry = Geometry::with_priorities(capacity, max_msg_size, max_participants, priorities).map_err(|e| {
            corrupted(format!(
                "impossible sizes in the header (capacity {capacity}, max message size {max_msg_size}, participants {max_participants}, priorities {priorities}: {})",
                match e {
                    GeometryError::ZeroCapacity => "zero capacity",
                    GeometryError::BadParticipants => "participant table out of range",
                    GeometryError::BadPriorities => "priority levels out of range",
                    GeometryError::Overflow => "sizes overflow",
                }
            ))
        })?;
        let stored = [
            (
                "slot stride",
                h.slot_stride.load(Relaxed),
                geometry.slot_stride,
            ),
            (
                "participant table offset",
                h.participants_offset.load(Relaxed),
                geometry.participants_offset,
            ),
            (
                "level table offset",
                h.levels_offset.load(Relaxed),
                geometry.levels_offset,
            ),
            (
                "slot record offset",
                h.meta_offset.load(Relaxed),
                geometry.meta_offset,
            ),
            (
                "slot offset",
                h.slots_offset.load(Relaxed),
                geometry.slots_offset,
            ),
            (
                "total size",
                h.total_size.load(Relaxed),
                geometry.total_size,
            ),
            ("file length", mapped, geometry.total_size),
        ];
        for (what, found, expected) in stored {
            if found != expected {
                return Err(corrupted(format!(
                    "{what} is {found}, the header's sizes need {expected}"
                )));
            }
        }
        // Any value is a valid setting (0 means "none"); read once, and
        // every use is saturating arithmetic.
        let delivery = Delivery {
            lease_timeout_ns: h.lease_timeout_ns.load(Relaxed),
            max_deliveries: h.max_deliveries.load(Relaxed),
        };
        let dead_letter = match h.dead_letter_len.load(Relaxed) {
            0 => None,
            len => Some(
                read_name(&h.dead_letter, len)
                    .filter(|n| validate_name(n).is_ok())
                    .ok_or_else(|| {
                        corrupted(format!(
                            "the dead-letter queue's name ({len} bytes) is not a queue name"
                        ))
                    })?,
            ),
        };
        Ok((geometry, delivery, dead_letter))
    }

    /// Waits (bounded) until the file's magic is published. Returns the file
    /// length and its first eight bytes.
    fn wait_until_published(name: &str, path: &Path, file: &File) -> Result<Published, OpenError> {
        let started = Instant::now();
        loop {
            let meta = file.metadata().map_err(|e| io_err("inspect", path, e))?;
            if !meta.is_file() {
                return Err(OpenError::NotAQueue {
                    name: name.to_owned(),
                    path: path.to_path_buf(),
                    what: "it is not a regular file".into(),
                });
            }
            let len = meta.len();
            let mut first = [0u8; 8];
            let n = file
                .read_at(&mut first, 0)
                .map_err(|e| io_err("read", path, e))?;
            if first[..n].iter().any(|&b| b != 0) {
                return Ok(Published { len, first });
            }
            let creator_alive = sys::byte_is_locked(file, INIT_LOCK_BYTE).unwrap_or(false);
            let waited = started.elapsed();
            if (!creator_alive && waited >= INIT_GRACE) || waited >= INIT_WAIT {
                return Err(OpenError::Unfinished {
                    name: name.to_owned(),
                    path: path.to_path_buf(),
                    creator_alive,
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the segment file of `name` in `dir` if it is a queue segment
    /// (or one whose creator died before publishing it).
    pub(crate) fn remove(name: &str, dir: &Path) -> Result<(), RemoveError> {
        let path = segment_path(dir, name);
        // O_NONBLOCK: a FIFO under the queue's name must not hang `remove`.
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RemoveError::NotFound {
                    name: name.to_owned(),
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(RemoveError::NotAQueue { path });
            }
            // Unreadable: removal is governed by the directory, so try it.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Self::unlink(name, &path);
            }
            Err(source) => return Err(RemoveError::Io { path, source }),
        };
        let meta = file.metadata().map_err(|source| RemoveError::Io {
            path: path.clone(),
            source,
        })?;
        let mut magic = [0u8; 8];
        let is_segment = meta.is_file()
            && (meta.len() == 0
                || (file.read_exact(&mut magic).is_ok()
                    && (magic == [0u8; 8] || magic[..6] == MAGIC.to_le_bytes()[..6])));
        if !is_segment {
            return Err(RemoveError::NotAQueue { path });
        }
        Self::unlink(name, &path)
    }

    fn unlink(name: &str, path: &Path) -> Result<(), RemoveError> {
        std::fs::remove_file(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => RemoveError::NotFound {
                name: name.to_owned(),
                dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
            },
            io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied {
                name: name.to_owned(),
                path: path.to_path_buf(),
                owner_uid: std::fs::symlink_metadata(path)
                    .map(|m| m.uid())
                    .unwrap_or(u32::MAX),
            },
            _ => RemoveError::Io {
                path: path.to_path_buf(),
                source,
            },
        })
    }

    /// The cursors of level `level` (`1 <= level < priorities`).
    pub(crate) fn level_cursors(&self, level: u64) -> &LevelCursors {
        assert!(
            level >= 1 && level < self.geometry.priorities,
            "priority level out of range"
        );
        let offset = self.geometry.levels_offset + (level - 1) * LEVEL_SIZE;
        // SAFETY: `offset + LEVEL_SIZE <= meta_offset <= total_size` (the
        // geometry reserves `priorities - 1` entries there, checked against
        // the mapping length on open); 64-byte aligned; any bit pattern is a
        // valid `LevelCursors` (atomics and padding).
        unsafe { &*(self.map.as_ptr().add(offset as usize) as *const LevelCursors) }
    }

    /// The header.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least `total_size >= HEADER_SIZE` bytes,
        // page aligned, and lives as long as `self`; `Header` is all atomics
        // (and padding never read), valid for any bit pattern.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    /// Participant entry `i` (`i < max_participants`).
    pub(crate) fn participant(&self, i: u16) -> &ParticipantEntry {
        let i = u64::from(i);
        assert!(
            i < self.geometry.max_participants,
            "participant index out of range"
        );
        let offset = self.geometry.participants_offset + i * crate::layout::PARTICIPANT_SIZE;
        // SAFETY: `offset + PARTICIPANT_SIZE <= slots_offset <= total_size`,
        // checked against the file length on open; 64-byte aligned; any bit
        // pattern is a valid `ParticipantEntry`.
        unsafe { &*(self.map.as_ptr().add(offset as usize) as *const ParticipantEntry) }
    }

    /// The delivery record of slot `idx` (`idx < capacity`).
    pub(crate) fn meta(&self, idx: u64) -> &SlotMeta {
        assert!(idx < self.geometry.slots, "slot index out of range");
        let offset = self.geometry.meta_offset + idx * SLOT_META_SIZE;
        // SAFETY: `offset + SLOT_META_SIZE <= slots_offset <= total_size`
        // (the geometry reserves `capacity` records there, checked against
        // the mapping length on open); 32-byte aligned (`meta_offset` is a
        // multiple of 64); any bit pattern is a valid `SlotMeta` (atomics).
        unsafe { &*(self.map.as_ptr().add(offset as usize) as *const SlotMeta) }
    }

    #[inline]
    fn slot_ptr(&self, idx: u64) -> *mut u8 {
        let SlotGrid {
            first,
            stride,
            slots,
            ..
        } = self.grid;
        assert!(idx < slots, "slot index out of range");
        // SAFETY: `slots_offset + (idx + 1) * slot_stride <= total_size ==
        // mapping length` (checked on open), so this stays in the mapping.
        unsafe { first.add((idx * stride) as usize) }
    }

    /// The addresses of the `n` slots from `idx` on, in order, checked
    /// against the grid once (`idx + n <= slots`).
    #[inline]
    fn slot_ptrs(&self, idx: u64, n: u64) -> SlotPtrs {
        let SlotGrid {
            first,
            stride,
            slots,
            ..
        } = self.grid;
        assert!(idx <= slots && n <= slots - idx, "slot range out of range");
        // Wrapping: `end` (and `next` when `n == 0`) may be one past the
        // last slot; it is compared, never dereferenced.
        let next = first.wrapping_add((idx * stride) as usize);
        SlotPtrs {
            // A mapping is never at address 0 (nor is one past its end).
            next: NonNull::new(next).expect("slot address"),
            end: next.wrapping_add((n * stride) as usize),
            stride: stride as usize,
        }
    }

    /// The fixed part of slot `idx`.
    #[inline]
    pub(crate) fn slot(&self, idx: u64) -> &SlotHeader {
        // SAFETY: `slot_ptr` is in bounds and 16-byte aligned (`slots_offset`
        // is a multiple of 64, the stride of SLOT_ALIGN); any bit pattern is
        // a valid `SlotHeader`.
        unsafe { &*(self.slot_ptr(idx) as *const SlotHeader) }
    }

    /// The segment file's permission bits and owner (mode 0 and uid
    /// `u32::MAX` if they cannot be read).
    pub(crate) fn file_owner(&self) -> FileOwner {
        self.file
            .metadata()
            .map(|m| FileOwner {
                mode: m.permissions().mode() & 0o7777,
                uid: m.uid(),
            })
            .unwrap_or(FileOwner {
                mode: 0,
                uid: u32::MAX,
            })
    }
}

/// Stores `name` (at most [`MAX_NAME_LEN`] bytes, checked by the caller)
/// in a header name field, then its length with Release: a reader that sees
/// the length sees the name.
pub(crate) fn write_name(words: &[AtomicU64], len: &AtomicU64, name: &str) {
    for (word, chunk) in words.iter().zip(name.as_bytes().chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_le_bytes(bytes), Relaxed);
    }
    len.store(name.len() as u64, Release);
}

/// Reads a header name field of `len` bytes (loaded by the caller with
/// Acquire); `None` if the length or the bytes cannot be a name.
pub(crate) fn read_name(words: &[AtomicU64], len: u64) -> Option<String> {
    let len = usize::try_from(len).ok().filter(|&n| n <= MAX_NAME_LEN)?;
    let bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.load(Relaxed).to_le_bytes())
        .take(len)
        .collect();
    String::from_utf8(bytes).ok()
}

/// The addresses of consecutive slots ([`Segment::slot_ptrs`]).
/// (Non-null, so that an `Option` of a reference made from one needs no
/// test of its own in the loops.)
struct SlotPtrs {
    next: NonNull<u8>,
    end: *mut u8,
    stride: usize,
}

impl Iterator for SlotPtrs {
    type Item = NonNull<u8>;

    #[inline]
    fn next(&mut self) -> Option<NonNull<u8>> {
        if self.next.as_ptr() == self.end {
            return None;
        }
        let slot = self.next;
        // SAFETY: at most one past the last slot of the range, which
        // `slot_ptrs` checked to be in the mapping: in bounds, not null.
        self.next = unsafe { slot.add(self.stride) };
        Some(slot)
    }
}

impl Slots for Segment {
    // The trait's capacity is every slot of the segment; the geometry's
    // `capacity` is one priority level's.
    #[allow(clippy::misnamed_getters)]
    fn capacity(&self) -> u64 {
        self.geometry.slots
    }
    #[inline]
    fn state(&self, idx: u64) -> &AtomicU64 {
        &self.slot(idx).state
    }
    #[inline]
    fn states(&self, idx: u64, n: u64) -> impl Iterator<Item = &AtomicU64> {
        // SAFETY: `slot_ptrs` yields addresses of slots in the mapping,
        // 16-byte aligned; any bit pattern is a valid `SlotHeader`.
        self.slot_ptrs(idx, n)
            .map(|slot| unsafe { &slot.cast::<SlotHeader>().as_ref().state })
    }
    /// Four slots a step, with one branch for the four (the loop of a
    /// batch's claim: one test a slot cost more than the rest of the claim
    /// per message), then one a step.
    #[inline]
    fn count_alike(&self, idx: u64, n: u64, word: u64) -> u64 {
        let mut slots = self.slot_ptrs(idx, n);
        let stride = slots.stride;
        // SAFETY: `at` is a slot of the range `slot_ptrs` checked: in the
        // mapping and 16-byte aligned; any bit pattern is a valid header.
        let differs =
            |at: *const u8| unsafe { (*at.cast::<SlotHeader>()).state.load(Acquire) ^ word };
        let mut count = 0;
        while n - count >= 4 {
            let at = slots.next.as_ptr();
            // SAFETY: `at` and the three after it are in the range: four
            // of its slots are left.
            let step = unsafe {
                differs(at)
                    | differs(at.add(stride))
                    | differs(at.add(2 * stride))
                    | differs(at.add(3 * stride))
            };
            if step != 0 {
                break;
            }
            // SAFETY: at most one past the range's last slot.
            slots.next = unsafe { slots.next.add(4 * stride) };
            count += 4;
        }
        count + slots.take_while(|&at| differs(at.as_ptr()) == 0).count() as u64
    }
    #[inline]
    fn locate(&self, pos: u64) -> (u64, u32) {
        let SlotGrid { slots, shift, .. } = self.grid;
        if shift != u32::MAX {
            return (pos & (slots - 1), (pos >> shift) as u32);
        }
        (pos % slots, (pos / slots) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["jobs", "a", "A.b_c-9", "x..y", &"n".repeat(200)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "..",
            "../x",
            "a/b",
            "a b",
            "nul\0",
            "ü",
            &"n".repeat(201),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dir_rule() {
        assert_eq!(queue_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
        assert_eq!(segment_path(Path::new("/d"), "q"), PathBuf::from("/d/mq.q"));
    }
}
