//! Directory-relative file operations that never follow a symlink out of the tree they work
//! in: opening directories beneath a root, creating paths through real directories only,
//! reading an entry without following it, and replacing a file atomically.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Content {
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Other,
}

/// Reads `name` in `dir` without following a symlink.
pub(super) fn read_entry(dir: &OwnedFd, name: &str) -> io::Result<Option<Content>> {
    let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Symlink => Ok(Some(Content::Symlink(
            rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes(),
        ))),
        FileType::RegularFile => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mut data = Vec::new();
            File::from(fd).take(MAX_MENU_BYTES).read_to_end(&mut data)?;
            Ok(Some(Content::File(data)))
        }
        _ => Ok(Some(Content::Other)),
    }
}

/// Writes `data` to `dir/name` via a temporary file, fsync and rename: readers see the old or
/// the new file, never a torn one.
pub(super) fn write_atomic_at(dir: &OwnedFd, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = format!(".{name}.pocketpxe-tmp");
    match rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FILE_MODE,
    )?;
    let mut file = File::from(fd);
    let written = file.write_all(data).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return Err(e);
    }
    rustix::fs::renameat(dir, tmp.as_str(), dir, name)?;
    rustix::fs::fsync(dir)?;
    Ok(())
}

/// Opens directory `path`.
pub(super) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens directory `rel` below `base` through real directories only (no symlinks, no `..`).
pub(super) fn open_beneath(base: &OwnedFd, rel: &str) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    Ok(rustix::fs::openat2(
        base,
        rel,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )?)
}

/// Creates (as needed) and opens `comps` below `base`, refusing to pass through a symlink or
/// a non-directory.
pub(super) fn ensure_dirs(base: &OwnedFd, comps: &[&str]) -> Result<OwnedFd, String> {
    let mut dir = rustix::fs::openat(
        base,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open the destination: {e}"))?;
    for (i, comp) in comps.iter().enumerate() {
        match rustix::fs::mkdirat(&dir, *comp, DIR_MODE) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(format!(
                    "cannot create directory {}: {e}",
                    comps[..=i].join("/")
                ));
            }
        }
        dir = rustix::fs::openat(
            &dir,
            *comp,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => format!(
                "{} is a symlink or a file: nothing may be unpacked through it",
                comps[..=i].join("/")
            ),
            e => format!("cannot open directory {}: {e}", comps[..=i].join("/")),
        })?;
    }
    Ok(dir)
}

pub(super) fn is_kind(dir: &impl AsFd, name: &str, kind: FileType) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == kind)
}

const MAX_MENU_BYTES: u64 = 1 << 20;
pub(super) const DIR_MODE: Mode = Mode::from_raw_mode(0o755);
pub(super) const FILE_MODE: Mode = Mode::from_raw_mode(0o644);
pub(super) const EXEC_MODE: Mode = Mode::from_raw_mode(0o755);
