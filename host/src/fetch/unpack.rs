//! Unpacking an untrusted tar stream so that nothing lands outside the destination.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, OFlags};
use rustix::io::Errno;

use super::dirfd::{DIR_MODE, EXEC_MODE, FILE_MODE, ensure_dirs, is_kind, open_beneath, open_dir};

/// Why a tar entry was refused.
#[derive(Debug, thiserror::Error)]
#[error("entry '{entry}': {reason}")]
pub struct UnpackError {
    /// The entry's name (lossy UTF-8, cut to 200 characters).
    pub entry: String,
    /// Why.
    pub reason: String,
}

/// Limits for [`unpack_safely`].
#[derive(Debug, Clone, Copy)]
pub struct UnpackLimits {
    /// Most entries.
    pub max_entries: usize,
    /// Most bytes of file content in total.
    pub max_bytes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        // Debian's netboot trees have ~300 entries and ~60 MB.
        Self {
            max_entries: 100_000,
            max_bytes: 4 << 30,
        }
    }
}

/// Why [`unpack_safely`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum UnpackFailure {
    /// An entry must not be unpacked (or the archive is malformed).
    #[error(transparent)]
    Refused(UnpackError),
    /// Writing failed.
    #[error(transparent)]
    Io(io::Error),
}

/// Unpacks a tar stream into the existing, empty directory `dest`, which nothing else writes
/// to meanwhile. Returns the paths of all non-directory entries (relative, `/`-separated).
///
/// Refused: absolute names, `..` components, names over 4096 bytes (or a component over 255),
/// non-UTF-8 or control characters, entries reached through a symlink (`a -> /etc` then
/// `a/passwd`), symlinks that are absolute or could climb above `dest` (leading `..`s beyond
/// the link's depth, or `..` after a name), hard links to anything but a regular file already
/// unpacked, devices, FIFOs, duplicates, and more than `limits`. Ownership is not restored; files
/// get mode 0644, or 0755 if any execute bit is set.
///
/// # Errors
/// [`UnpackFailure`]; `dest` may then hold a partial tree, for the caller to remove.
pub fn unpack_safely<R: Read>(
    reader: R,
    dest: &Path,
    limits: UnpackLimits,
) -> Result<Vec<String>, UnpackFailure> {
    let dest_fd = open_dir(dest).map_err(UnpackFailure::Io)?;
    let mut archive = tar::Archive::new(reader);
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut count = 0usize;
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| refused("(archive)", format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| refused("(archive)", format!("corrupt: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let shown = show(&raw);
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        count += 1;
        if count > limits.max_entries {
            return Err(refused(
                &shown,
                format!("more than {} entries", limits.max_entries),
            ));
        }
        let comps = check_name(&raw).map_err(|reason| refused(&shown, reason))?;
        let Some((name, parents)) = comps.split_last() else {
            if kind.is_dir() {
                continue; // "./" itself
            }
            return Err(refused(&shown, "empty name".into()));
        };
        let rel = comps.join("/");
        if !kind.is_dir() && !seen.insert(rel.clone()) {
            return Err(refused(&shown, "duplicate entry".into()));
        }
        let parent = ensure_dirs(&dest_fd, parents).map_err(|reason| refused(&shown, reason))?;
        match kind {
            tar::EntryType::Directory => match rustix::fs::mkdirat(&parent, *name, DIR_MODE) {
                Ok(()) => {}
                Err(Errno::EXIST) if is_kind(&parent, name, FileType::Directory) => {}
                Err(e) => return Err(refused(&shown, format!("cannot create directory: {e}"))),
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                total = total.saturating_add(size);
                if total > limits.max_bytes {
                    return Err(refused(
                        &shown,
                        format!("content exceeds {} bytes in total", limits.max_bytes),
                    ));
                }
                let mode = entry.header().mode().unwrap_or(0o644);
                let mode = if mode & 0o111 != 0 {
                    EXEC_MODE
                } else {
                    FILE_MODE
                };
                let fd = rustix::fs::openat(
                    &parent,
                    *name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    mode,
                )
                .map_err(|e| match e {
                    Errno::EXIST => refused(&shown, "duplicate entry".into()),
                    e => UnpackFailure::Io(e.into()),
                })?;
                let mut file = File::from(fd);
                let copied = io::copy(&mut (&mut entry).take(size), &mut file)
                    .map_err(|e| refused(&shown, format!("truncated or unreadable: {e}")))?;
                if copied != size {
                    return Err(refused(&shown, "truncated".into()));
                }
                files.push(rel);
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&shown, "symlink without a target".into()))?
                    .into_owned();
                check_symlink_target(&target, parents.len()).map_err(|reason| {
                    refused(&shown, format!("symlink to '{}': {reason}", show(&target)))
                })?;
                let target = String::from_utf8(target)
                    .map_err(|_| refused(&shown, "symlink target is not UTF-8".into()))?;
                rustix::fs::symlinkat(target.as_str(), &parent, *name).map_err(|e| match e {
                    Errno::EXIST => refused(&shown, "duplicate entry".into()),
                    e => UnpackFailure::Io(e.into()),
                })?;
                files.push(rel);
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&shown, "hard link without a target".into()))?
                    .into_owned();
                let bad = |reason: String| {
                    refused(
                        &shown,
                        format!("hard link to '{}': {reason}", show(&target)),
                    )
                };
                let target_comps = check_name(&target).map_err(bad)?;
                let Some((target_name, target_parents)) = target_comps.split_last() else {
                    return Err(bad("empty target".into()));
                };
                let target_dir = open_beneath(&dest_fd, &target_parents.join("/"))
                    .map_err(|_| bad("not an unpacked regular file".into()))?;
                if !is_kind(&target_dir, target_name, FileType::RegularFile) {
                    return Err(bad("not an unpacked regular file".into()));
                }
                rustix::fs::linkat(&target_dir, *target_name, &parent, *name, AtFlags::empty())
                    .map_err(|e| match e {
                        Errno::EXIST => refused(&shown, "duplicate entry".into()),
                        e => UnpackFailure::Io(e.into()),
                    })?;
                files.push(rel);
            }
            other => {
                return Err(refused(
                    &shown,
                    format!("unsupported entry type {other:?} (only files, directories and links)"),
                ));
            }
        }
    }
    Ok(files)
}

/// Splits a tar name into checked components (`./` and empty components dropped).
fn check_name(raw: &[u8]) -> Result<Vec<&str>, String> {
    if raw.len() > MAX_NAME_BYTES {
        return Err(format!("name longer than {MAX_NAME_BYTES} bytes"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| "name is not UTF-8".to_owned())?;
    if text.chars().any(char::is_control) {
        return Err("name has control characters".into());
    }
    if text.starts_with('/') {
        return Err("absolute name".into());
    }
    let mut comps = Vec::new();
    for comp in text.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err("name has a '..' component".into()),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return Err(format!(
                    "a name component is longer than {MAX_COMPONENT_BYTES} bytes"
                ));
            }
            c => comps.push(c),
        }
    }
    Ok(comps)
}

/// A symlink at depth `depth` (number of directories between the root and the link) may point
/// to `(../)*name(/name)*` with at most `depth` leading `..`: it then stays inside the root even
/// when its names are themselves symlinks (which are checked the same way).
fn check_symlink_target(target: &[u8], depth: usize) -> Result<(), String> {
    if target.is_empty() {
        return Err("empty target".into());
    }
    if target.len() > MAX_NAME_BYTES {
        return Err(format!("target longer than {MAX_NAME_BYTES} bytes"));
    }
    if target.starts_with(b"/") {
        return Err("absolute target".into());
    }
    if target.contains(&0) {
        return Err("NUL in target".into());
    }
    let mut ups = 0;
    let mut named = false;
    for comp in target.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." if named => {
                return Err("'..' after a name could climb out through a symlink".into());
            }
            b".." => ups += 1,
            _ => named = true,
        }
    }
    if ups > depth {
        return Err("points above the root".into());
    }
    Ok(())
}

fn refused(entry: &str, reason: String) -> UnpackFailure {
    UnpackFailure::Refused(UnpackError {
        entry: entry.to_owned(),
        reason,
    })
}

fn show(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.into_owned()
    }
}

const MAX_NAME_BYTES: usize = 4096;
const MAX_COMPONENT_BYTES: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets() {
        assert!(check_symlink_target(b"debian-installer/amd64/pxelinux.0", 0).is_ok());
        assert!(check_symlink_target(b"../boot-screens/syslinux.cfg", 3).is_ok());
        assert!(check_symlink_target(b"./x", 0).is_ok());
        assert!(check_symlink_target(b"../x", 0).is_err());
        assert!(check_symlink_target(b"../../x", 1).is_err());
        assert!(check_symlink_target(b"/etc", 5).is_err());
        assert!(check_symlink_target(b"up/..", 1).is_err());
        assert!(check_symlink_target(b"a/../b", 1).is_err());
        assert!(check_symlink_target(b"", 1).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(check_name(b"./a//b/./c").unwrap(), ["a", "b", "c"]);
        assert!(check_name(b"./").unwrap().is_empty());
        assert!(check_name(b"/etc/passwd").is_err());
        assert!(check_name(b"a/../../x").is_err());
        assert!(check_name(b"a\nb").is_err());
        assert!(check_name(&[b'a', 0xff]).is_err());
        assert!(check_name("x".repeat(256).as_bytes()).is_err());
        assert!(check_name(format!("{}/", "d/".repeat(2100)).as_bytes()).is_err());
    }
}
