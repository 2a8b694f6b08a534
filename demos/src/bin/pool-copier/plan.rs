//! What to copy: the walk of SRC (which also finds sparse files and groups
//! the names of hard-linked files), the checks on DEST, and preparing DEST
//! (directories, symlinks) in the parent.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use filetime::FileTime;
use walkdir::WalkDir;

use crate::work::Meta;

/// Something under SRC, with its path relative to SRC.
pub struct Entry {
    /// Relative path ("" for SRC itself).
    pub rel: PathBuf,
    /// Mode and times.
    pub meta: Meta,
}

/// A regular file.
pub struct FileEntry {
    /// Where and what.
    pub entry: Entry,
    /// Size at walk time.
    pub size: u64,
    /// Fewer blocks than bytes: has holes, copied extent by extent.
    pub sparse: bool,
}

/// A further name of a file with several hard links in SRC: in DEST it
/// becomes a link to the copy of the first name, once that copy is done.
pub struct HardLink {
    /// Where (its meta is the first name's: they share an inode).
    pub entry: Entry,
    /// The first name, by index in `Plan::files`.
    pub first: usize,
}

/// A symbolic link (copied as a link, never followed).
pub struct LinkEntry {
    /// Where and what.
    pub entry: Entry,
    /// What it points to, as written.
    pub target: PathBuf,
}

/// A path that cannot be copied, and why.
pub struct Problem {
    /// The source path.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Everything found under SRC.
#[derive(Default)]
pub struct Plan {
    /// Directories, SRC first, parents before children.
    pub dirs: Vec<Entry>,
    /// Regular files (one name per inode).
    pub files: Vec<FileEntry>,
    /// Further names of files in `files`, in walk order.
    pub hardlinks: Vec<HardLink>,
    /// Symbolic links.
    pub links: Vec<LinkEntry>,
    /// Unreadable directories, special files, ...
    pub problems: Vec<Problem>,
}

impl Plan {
    /// Bytes in regular files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn meta_of(md: &fs::Metadata) -> Meta {
    Meta {
        mode: md.permissions().mode() & 0o7777,
        atime: FileTime::from_last_access_time(md).into(),
        mtime: FileTime::from_last_modification_time(md).into(),
    }
}

/// Walks SRC without following symlinks.
pub fn scan(src: &Path) -> Plan {
    let mut plan = Plan::default();
    // (device, inode) -> index in plan.files, for files with several names.
    let mut inodes: HashMap<(u64, u64), usize> = HashMap::new();
    for item in WalkDir::new(src).follow_links(false).sort_by_file_name() {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                let path = e.path().unwrap_or(src).to_path_buf();
                let message = e.io_error().map_or_else(
                    || e.to_string(),
                    |io| format!("cannot read the directory: {io}"),
                );
                plan.problems.push(Problem { path, message });
                continue;
            }
        };
        let rel = item
            .path()
            .strip_prefix(src)
            .unwrap_or(item.path())
            .to_path_buf();
        let md = match item.metadata() {
            Ok(md) => md,
            Err(e) => {
                plan.problems.push(Problem {
                    path: item.path().to_path_buf(),
                    message: format!("cannot read its metadata: {e}"),
                });
                continue;
            }
        };
        let entry = Entry {
            rel,
            meta: meta_of(&md),
        };
        let kind = item.file_type();
        if kind.is_dir() {
            plan.dirs.push(entry);
        } else if kind.is_file() {
            if md.nlink() > 1 {
                let next = plan.files.len();
                let first = *inodes.entry((md.dev(), md.ino())).or_insert(next);
                if first != next {
                    plan.hardlinks.push(HardLink { entry, first });
                    continue;
                }
            }
            plan.files.push(FileEntry {
                entry,
                size: md.len(),
                // st_blocks counts 512-byte units whatever the block size.
                sparse: md.blocks().saturating_mul(512) < md.len(),
            });
        } else if kind.is_symlink() {
            match fs::read_link(item.path()) {
                Ok(target) => plan.links.push(LinkEntry { entry, target }),
                Err(e) => plan.problems.push(Problem {
                    path: item.path().to_path_buf(),
                    message: format!("cannot read the link: {e}"),
                }),
            }
        } else {
            plan.problems.push(Problem {
                path: item.path().to_path_buf(),
                message: format!(
                    "not copied: a special file (device, fifo or socket, mode {:o})",
                    md.mode()
                ),
            });
        }
    }
    plan
}

/// `SRC-copy` beside SRC.
pub fn default_dest(src: &Path) -> anyhow::Result<PathBuf> {
    let abs =
        std::path::absolute(src).with_context(|| format!("cannot resolve {}", src.display()))?;
    // Normalise away "." and trailing slashes, so `dir/` gives `dir-copy`.
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    let Some(name) = clean.file_name() else {
        bail!(
            "cannot name a copy of {} (give DEST explicitly)",
            src.display()
        );
    };
    let mut copy = name.to_os_string();
    copy.push("-copy");
    Ok(clean.with_file_name(copy))
}

/// The real path of `p`, even if its last parts do not exist yet.
fn resolve(p: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(p)?;
    let mut missing = Vec::new();
    let mut existing = abs.as_path();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut out = real;
                for part in missing.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                missing.push(name.to_os_string());
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Refuses a DEST inside SRC (the copy would copy itself) or containing it.
pub fn check_nesting(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let real_src = src
        .canonicalize()
        .with_context(|| format!("cannot read {}", src.display()))?;
    let real_dest = resolve(dest).with_context(|| format!("cannot resolve {}", dest.display()))?;
    if real_dest == real_src {
        bail!("DEST {} is SRC itself", dest.display());
    }
    if real_dest.starts_with(&real_src) {
        bail!(
            "DEST {} is inside SRC {}: the copy would copy itself (choose a DEST outside SRC)",
            dest.display(),
            src.display()
        );
    }
    if real_src.starts_with(&real_dest) {
        bail!(
            "DEST {} contains SRC {}: copying into it would write over the source (choose another DEST)",
            dest.display(),
            src.display()
        );
    }
    Ok(())
}

/// Paths in DEST that the copy would replace.
pub fn conflicts(plan: &Plan, dest: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let exists = |rel: &Path| fs::symlink_metadata(dest.join(rel)).ok();
    for d in &plan.dirs {
        if exists(&d.rel).is_some_and(|md| !md.is_dir()) {
            found.push(dest.join(&d.rel));
        }
    }
    let others = plan
        .files
        .iter()
        .map(|f| &f.entry.rel)
        .chain(plan.hardlinks.iter().map(|h| &h.entry.rel))
        .chain(plan.links.iter().map(|l| &l.entry.rel));
    for rel in others {
        if exists(rel).is_some() {
            found.push(dest.join(rel));
        }
    }
    found
}

/// Makes room for `--force`: removes files and links where the copy goes.
/// Directories in the way of a file are left alone (reported by the copy).
pub fn clear_conflicts(paths: &[PathBuf]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for path in paths {
        match fs::symlink_metadata(path) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                if let Err(e) = fs::remove_file(path) {
                    problems.push(Problem {
                        path: path.clone(),
                        message: format!("cannot remove it to overwrite it: {e}"),
                    });
                }
            }
            Err(_) => {}
        }
    }
    problems
}

/// Creates every directory (owner-writable for now; modes are set at the
/// end) and every symlink.
pub fn make_tree(plan: &Plan, dest: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(parent) = dest.parent()
        && let Err(e) = fs::create_dir_all(parent)
    {
        problems.push(Problem {
            path: parent.to_path_buf(),
            message: format!("cannot create the directory: {e}"),
        });
        return problems;
    }
    for d in &plan.dirs {
        let path = dest.join(&d.rel);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {
                // Merging into an existing directory: it must be writable now.
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o700));
            }
            Err(e) => problems.push(Problem {
                path,
                message: format!("cannot create the directory: {e}"),
            }),
        }
    }
    for l in &plan.links {
        let path = dest.join(&l.entry.rel);
        let made = std::os::unix::fs::symlink(&l.target, &path).and_then(|()| {
            filetime::set_symlink_file_times(
                &path,
                l.entry.meta.atime.into(),
                l.entry.meta.mtime.into(),
            )
        });
        if let Err(e) = made {
            problems.push(Problem {
                path,
                message: format!("cannot create the symlink: {e}"),
            });
        }
    }
    problems
}

/// `None` if `path` still has the size and modification time `file` had
/// when SRC was listed, else what changed.
pub fn changed_since_scan(path: &Path, file: &FileEntry) -> Option<String> {
    let md = match fs::metadata(path) {
        Ok(md) => md,
        Err(e) => return Some(format!("cannot stat it after copying it: {e}")),
    };
    if md.len() != file.size {
        return Some(crate::work::changed(file.size, md.len()));
    }
    if meta_of(&md).mtime != file.entry.meta.mtime {
        return Some(
            "the file was modified while being copied: the copy may mix old and new content \
             (copy it again when it is not being written)"
                .to_string(),
        );
    }
    None
}

/// Makes every further name of a hard-linked file a link to the copy of its
/// first name (which must be complete: the caller has every result back).
/// Returns how many links were made, and the names that could not be.
pub fn link_names(plan: &Plan, src: &Path, dest: &Path, failed: &[bool]) -> (u64, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut made = 0;
    for h in &plan.hardlinks {
        let first = &plan.files[h.first].entry.rel;
        let (original, link) = (dest.join(first), dest.join(&h.entry.rel));
        if failed[h.first] {
            problems.push(Problem {
                path: src.join(&h.entry.rel),
                message: format!(
                    "not linked: it is a hard link of {}, which was not copied",
                    src.join(first).display()
                ),
            });
            continue;
        }
        match fs::hard_link(&original, &link) {
            Ok(()) => made += 1,
            Err(e) => problems.push(Problem {
                path: src.join(&h.entry.rel),
                message: format!(
                    "cannot link {} to {}: {e}",
                    link.display(),
                    original.display()
                ),
            }),
        }
    }
    (made, problems)
}

/// Sets directory modes and times, deepest first: creating entries changes
/// a directory's mtime, and a read-only mode would stop us creating them.
pub fn finish_dirs(plan: &Plan, dest: &Path) -> Vec<Problem> {
    let mut dirs: Vec<&Entry> = plan.dirs.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
    let mut problems = Vec::new();
    for d in dirs {
        let path = dest.join(&d.rel);
        let done =
            fs::set_permissions(&path, fs::Permissions::from_mode(d.meta.mode)).and_then(|()| {
                filetime::set_file_times(&path, d.meta.atime.into(), d.meta.mtime.into())
            });
        if let Err(e) = done {
            problems.push(Problem {
                path,
                message: format!("cannot set the directory's mode and times: {e}"),
            });
        }
    }
    problems
}
