//! Putting a verified, unpacked tree into the live root: the work directory, the boot menus
//! (generated, or the hand-edited ones kept), and the unit-by-unit atomic exchange that carries
//! over files that are yours.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, RenameFlags};

use super::dirfd::{Content, ensure_dirs, open_beneath, read_entry, write_atomic_at};
use super::menus::{self, MenuWrite};
use super::{FetchError, io_err};

/// Writes a menu into the live root: only if absent or carrying the marker.
pub(super) fn write_menu(root_fd: &OwnedFd, rel: &str, text: &[u8]) -> io::Result<MenuWrite> {
    let (parent, name) = split_rel(rel);
    let dir = open_beneath(root_fd, parent)?;
    match read_entry(&dir, name)? {
        None => {
            write_atomic_at(&dir, name, text)?;
            Ok(MenuWrite::Created)
        }
        Some(Content::File(old)) if old == text => Ok(MenuWrite::Unchanged),
        Some(Content::File(old)) if menus::is_generated(&old) => {
            write_atomic_at(&dir, name, text)?;
            Ok(MenuWrite::Replaced)
        }
        Some(_) => Ok(MenuWrite::KeptHandEdited),
    }
}

/// Puts a menu into the staging tree: the generated text, or the live root's hand-edited file.
pub(super) fn stage_menu(
    root_fd: &OwnedFd,
    staging_fd: &OwnedFd,
    rel: &str,
    text: &[u8],
) -> io::Result<MenuWrite> {
    let (parent, name) = split_rel(rel);
    let upstream_dir = ensure_dirs(
        staging_fd,
        &parent
            .split('/')
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>(),
    )
    .map_err(io::Error::other)?;
    let upstream = read_entry(&upstream_dir, name)?;
    let live = match open_beneath(root_fd, parent) {
        Ok(dir) => read_entry(&dir, name)?,
        Err(_) => None,
    };
    let outcome = match &live {
        None => MenuWrite::Created,
        Some(Content::File(old)) if old == text => MenuWrite::Unchanged,
        Some(Content::File(old)) if menus::is_generated(old) => MenuWrite::Replaced,
        Some(old) if Some(old) == upstream.as_ref() => MenuWrite::Replaced,
        Some(_) => MenuWrite::KeptHandEdited,
    };
    if upstream.is_some() {
        rustix::fs::unlinkat(&upstream_dir, name, AtFlags::empty())?;
    }
    match (&outcome, live) {
        (MenuWrite::KeptHandEdited, Some(Content::File(old))) => {
            write_atomic_at(&upstream_dir, name, &old)?
        }
        (MenuWrite::KeptHandEdited, Some(Content::Symlink(target))) => {
            rustix::fs::symlinkat(target.as_slice(), &upstream_dir, name)?
        }
        _ => write_atomic_at(&upstream_dir, name, text)?,
    }
    Ok(outcome)
}

/// Moves the staged tree into `root` unit by unit; returns the files saved aside.
pub(super) fn install(
    root: &Path,
    staging: &Path,
    old_area: &Path,
    old_manifest: &HashSet<String>,
) -> Result<Vec<String>, FetchError> {
    fs::create_dir(old_area).map_err(|e| io_err(old_area, e))?;
    let mut units = Vec::new();
    for entry in read_dir_sorted(staging)? {
        let path = staging.join(&entry);
        let is_dir = fs::symlink_metadata(&path)
            .map_err(|e| io_err(&path, e))?
            .is_dir();
        if entry == "debian-installer" && is_dir {
            let live = root.join(&entry);
            match fs::symlink_metadata(&live) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(io_err(
                        &live,
                        io::Error::other("exists and is not a directory; move it away"),
                    ));
                }
                Err(_) => fs::create_dir(&live).map_err(|e| io_err(&live, e))?,
            }
            for child in read_dir_sorted(&path)? {
                units.push(format!("{entry}/{child}"));
            }
        } else {
            units.push(entry);
        }
    }
    let mut saved = Vec::new();
    for (index, unit) in units.iter().enumerate() {
        let new = staging.join(unit);
        let live = root.join(unit);
        match fs::symlink_metadata(&live) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &new,
                    rustix::fs::CWD,
                    &live,
                    RenameFlags::NOREPLACE,
                )
                .map_err(|e| io_err(&live, e.into()))?;
            }
            Err(e) => return Err(io_err(&live, e)),
            Ok(_) => {
                carry_over(&live, &new, unit, old_manifest, &mut saved)
                    .map_err(|e| io_err(&live, e))?;
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &new,
                    rustix::fs::CWD,
                    &live,
                    RenameFlags::EXCHANGE,
                )
                .map_err(|e| io_err(&live, e.into()))?;
                // The old unit now sits in staging; park it for removal with the work dir.
                let parked = old_area.join(index.to_string());
                fs::rename(&new, &parked).map_err(|e| io_err(&parked, e))?;
            }
        }
    }
    Ok(saved)
}

/// Before `live` is replaced by `new`: moves what is yours in `live` into `new`.
/// Upstream files (in the previous stamp's manifest) are dropped; your files the new tree lacks
/// move over; your files where the new tree has a different one are kept as `NAME.pocketpxe-saved`.
fn carry_over(
    live: &Path,
    new: &Path,
    rel: &str,
    old_manifest: &HashSet<String>,
    saved: &mut Vec<String>,
) -> io::Result<()> {
    let live_meta = fs::symlink_metadata(live)?;
    let new_meta = fs::symlink_metadata(new).ok();
    if live_meta.is_dir() {
        match new_meta {
            Some(meta) if meta.is_dir() => {
                for child in fs::read_dir(live)? {
                    let child = child?.file_name();
                    let Some(child) = child.to_str() else {
                        // A name the manifest cannot hold is never upstream: keep it.
                        fs::rename(live.join(&child), new.join(&child))?;
                        continue;
                    };
                    carry_over(
                        &live.join(child),
                        &new.join(child),
                        &format!("{rel}/{child}"),
                        old_manifest,
                        saved,
                    )?;
                }
                Ok(())
            }
            None => {
                fs::create_dir(new)?;
                carry_over(live, new, rel, old_manifest, saved)?;
                // Nothing of yours in it: do not resurrect an empty upstream directory.
                if fs::read_dir(new)?.next().is_none() {
                    fs::remove_dir(new)?;
                }
                Ok(())
            }
            Some(_) => save_aside(live, new, rel, saved),
        }
    } else if old_manifest.contains(rel) {
        Ok(())
    } else if new_meta.is_none() {
        fs::rename(live, new)
    } else if same_content(live, new) {
        Ok(())
    } else {
        save_aside(live, new, rel, saved)
    }
}

fn save_aside(live: &Path, new: &Path, rel: &str, saved: &mut Vec<String>) -> io::Result<()> {
    let mut name = new.as_os_str().to_owned();
    name.push(".pocketpxe-saved");
    fs::rename(live, PathBuf::from(name))?;
    tracing::warn!(
        file = rel,
        "your file sits where the new installer has one: kept as {rel}.pocketpxe-saved"
    );
    saved.push(rel.to_owned());
    Ok(())
}

fn same_content(a: &Path, b: &Path) -> bool {
    match (fs::read_link(a), fs::read_link(b)) {
        (Ok(x), Ok(y)) => x == y,
        (Err(_), Err(_)) => matches!((fs::read(a), fs::read(b)), (Ok(x), Ok(y)) if x == y),
        _ => false,
    }
}

/// The work directory `ROOT/.pocketpxe-fetch.tmp`, removed on drop (we hold the root's lock, so
/// a leftover one is from a fetch that was killed).
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
}

impl WorkDir {
    pub(super) fn create(root: &Path) -> Result<Self, FetchError> {
        let path = root.join(".pocketpxe-fetch.tmp");
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(dir = %path.display(), "removed the leftovers of an interrupted fetch")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
        fs::create_dir(&path).map_err(|e| io_err(&path, e))?;
        Ok(Self { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), "cannot remove the work directory: {e}");
        }
    }
}

fn split_rel(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<String>, FetchError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|name| io_err(&dir.join(&name), io::Error::other("name is not UTF-8")))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}
