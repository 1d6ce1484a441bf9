//! `pocketpxe fetch debian`: download Debian's netboot installer, verify it, unpack it safely
//! and write boot menus.
//!
//! Steps, each of which names the URL or file it failed on:
//! 1. Lock the root (one fetch at a time), read our stamp file `.pocketpxe-debian-ARCH.stamp`.
//! 2. Download `dists/DIST/main/installer-ARCH/current/images/SHA256SUMS` (at most 1 MiB) and take
//!    the line for `./netboot/netboot.tar.gz`. If the stamp records that hash and every file it
//!    lists is still there, nothing is downloaded ("already fetched").
//! 3. Download `netboot/netboot.tar.gz` into a work directory inside the root, hashing it on the
//!    way; a hash mismatch deletes it and leaves the root as it was.
//! 4. Unpack into the work directory with [`unpack_safely`]: no entry may land outside it.
//! 5. Write the boot menus into the unpacked tree ([`crate::fetch::menus`]), keeping hand-edited ones.
//! 6. Move the new tree into the root unit by unit (`debian-installer/ARCH` and each top-level
//!    entry), each with one atomic `renameat2(RENAME_EXCHANGE)`. Files of yours inside a replaced
//!    directory are carried over; a file of yours at a path the tarball also has is kept beside
//!    it as `NAME.pocketpxe-saved`. Then the stamp is replaced atomically.

pub mod menus;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, IsTerminal as _, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use menus::{Arch, MenuSpec, MenuWrite, SerialConsole};

/// The official Debian mirror, used when `--mirror` is not given.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What to fetch and where.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Debian release codename or suite, e.g. `bookworm`, `trixie`.
    pub dist: String,
    /// Architecture.
    pub arch: Arch,
    /// Mirror base URL (`http://` or `https://`), e.g. [`DEFAULT_MIRROR`].
    pub mirror: String,
    /// The TFTP root to unpack into (created if missing).
    pub root: PathBuf,
    /// Serial console for the menus.
    pub console: Option<SerialConsole>,
    /// Name this server in GRUB's paths (see [`MenuSpec::tftp_server`]).
    pub tftp_server: Option<Ipv4Addr>,
    /// Whether to ask the mirror when a verified tree is already there.
    pub mode: FetchMode,
}

/// When to contact the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Always read SHA256SUMS; download again when the mirror has a different tarball.
    Check,
    /// Only when no verified tree for this dist and arch is present (`serve --debian`): a
    /// server restart needs no network.
    IfMissing,
}

/// What [`fetch_debian`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The verified SHA-256 of netboot.tar.gz (lowercase hex).
    pub sha256: String,
    /// Whether anything was downloaded.
    pub action: FetchAction,
    /// Each menu file (relative to the root) and what happened to it.
    pub menus: Vec<(String, MenuWrite)>,
    /// Files of yours that sat where the new tree has a file: kept as `PATH.pocketpxe-saved`.
    pub saved: Vec<String>,
}

/// Whether [`fetch_debian`] downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchAction {
    /// Downloaded, verified and unpacked this many bytes of tarball.
    Downloaded {
        /// Size of netboot.tar.gz.
        bytes: u64,
    },
    /// The verified tree was already there: nothing downloaded.
    AlreadyPresent,
}

/// Why a fetch failed. Every variant names the URL or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// A bad `--dist` or `--mirror`.
    #[error("{0}")]
    BadRequest(String),
    /// The HTTP request failed.
    #[error("{url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// SHA256SUMS does not list the tarball properly.
    #[error("{url}: {reason}")]
    Sums {
        /// The SHA256SUMS URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The tarball's hash is not the one SHA256SUMS lists.
    #[error(
        "{url}: SHA-256 mismatch: SHA256SUMS says {expected}, the download is {actual}; nothing was changed"
    )]
    Mismatch {
        /// The tarball URL.
        url: String,
        /// From SHA256SUMS.
        expected: String,
        /// Of the bytes received.
        actual: String,
    },
    /// The tarball has an entry that must not be unpacked.
    #[error("{archive}: {source}; nothing was changed")]
    Unpack {
        /// The tarball URL.
        archive: String,
        /// The entry and why.
        source: UnpackError,
    },
    /// Another fetch holds the root.
    #[error(
        "{0}: another pocketpxe fetch is writing into this directory; try again when it is done"
    )]
    Busy(PathBuf),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

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

/// Fetches Debian's netboot installer into `req.root` and writes its menus.
///
/// # Errors
/// See [`FetchError`]; on any error before the final moves the root is unchanged.
pub fn fetch_debian(req: &FetchRequest) -> Result<FetchReport, FetchError> {
    check_dist(&req.dist)?;
    let mirror = check_mirror(&req.mirror)?;
    let root = &req.root;
    fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
    let root_fd = open_dir(root)?;
    match rustix::fs::flock(&root_fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Err(FetchError::Busy(root.clone())),
        Err(e) => return Err(io_err(root, e.into())),
    }
    let spec = MenuSpec {
        dist: req.dist.clone(),
        arch: req.arch,
        console: req.console.clone(),
        tftp_server: req.tftp_server,
    };
    let stamp_name = format!(".pocketpxe-debian-{}.stamp", req.arch);
    let stamp = Stamp::read(&root.join(&stamp_name));
    let present = stamp
        .as_ref()
        .filter(|s| s.dist == req.dist && s.files_present(root));

    if req.mode == FetchMode::IfMissing
        && let Some(stamp) = present
    {
        return finish_present(root, &root_fd, &spec, &stamp.sha256);
    }

    let base = format!(
        "{mirror}/dists/{}/main/installer-{}/current/images",
        req.dist, req.arch
    );
    let sums_url = format!("{base}/SHA256SUMS");
    let tar_url = format!("{base}/netboot/netboot.tar.gz");
    let agent = agent();
    let sums = get_text(&agent, &sums_url, MAX_SUMS_BYTES)?;
    let expected =
        parse_sha256sums(&sums, NETBOOT_SUMS_NAME).map_err(|reason| FetchError::Sums {
            url: sums_url.clone(),
            reason,
        })?;
    if let Some(stamp) = present
        && stamp.sha256 == expected
    {
        return finish_present(root, &root_fd, &spec, &expected);
    }

    // Everything new is built in a work directory inside the root (same file system, so the
    // final moves are renames) and removed again however this ends.
    let work = WorkDir::create(root)?;
    let tarball = work.path.join("netboot.tar.gz");
    let (bytes, actual) = download(&agent, &tar_url, &tarball)?;
    if actual != expected {
        return Err(FetchError::Mismatch {
            url: tar_url,
            expected,
            actual,
        });
    }
    let staging = work.path.join("tree");
    fs::create_dir(&staging).map_err(|e| io_err(&staging, e))?;
    let file = File::open(&tarball).map_err(|e| io_err(&tarball, e))?;
    let mut manifest = unpack_safely(
        flate2::read::GzDecoder::new(io::BufReader::new(file)),
        &staging,
        UnpackLimits::default(),
    )
    .map_err(|err| match err {
        UnpackFailure::Refused(source) => FetchError::Unpack {
            archive: tar_url.clone(),
            source,
        },
        UnpackFailure::Io(source) => io_err(&staging, source),
    })?;
    let required = format!("debian-installer/{}/linux", req.arch);
    if !manifest.contains(&required) {
        return Err(FetchError::Unpack {
            archive: tar_url,
            source: UnpackError {
                entry: required,
                reason: "missing: this is not a Debian netboot tarball".into(),
            },
        });
    }

    let staging_fd = open_dir(&staging)?;
    let mut menus_done = Vec::new();
    for (rel, text) in menus::menu_files(&spec) {
        let outcome = stage_menu(&root_fd, &staging_fd, &rel, text.as_bytes())
            .map_err(|e| io_err(&root.join(&rel), e))?;
        if !manifest.contains(&rel) {
            manifest.push(rel.clone());
        }
        menus_done.push((rel, outcome));
    }

    let old_manifest: HashSet<String> = stamp
        .map(|s| s.files.into_iter().collect())
        .unwrap_or_default();
    let saved = install(root, &staging, &work.path.join("old"), &old_manifest)?;
    Stamp {
        sha256: expected.clone(),
        dist: req.dist.clone(),
        arch: req.arch.to_string(),
        url: tar_url,
        files: manifest,
    }
    .write(&root_fd, &stamp_name)
    .map_err(|e| io_err(&root.join(&stamp_name), e))?;
    drop(work);
    Ok(FetchReport {
        sha256: expected,
        action: FetchAction::Downloaded { bytes },
        menus: menus_done,
        saved,
    })
}

/// The expected SHA-256 (lowercase hex) of `name` in a `SHA256SUMS` file (`HASH  NAME` lines,
/// `HASH *NAME` for binary mode). `./x` and `x` name the same file.
///
/// # Errors
/// The file is missing from the list, listed twice with different hashes, or its hash is not
/// 64 hex digits.
pub fn parse_sha256sums(text: &str, name: &str) -> Result<String, String> {
    let want = name.strip_prefix("./").unwrap_or(name);
    let mut found: Option<String> = None;
    for line in text.lines() {
        let Some((hash, file)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let file = file.trim_start_matches([' ', '\t']);
        let file = file.strip_prefix('*').unwrap_or(file).trim_end();
        if file.strip_prefix("./").unwrap_or(file) != want {
            continue;
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "the hash for {name} is not 64 hex digits: '{hash}'"
            ));
        }
        let hash = hash.to_ascii_lowercase();
        match &found {
            Some(other) if *other != hash => {
                return Err(format!("{name} is listed twice with different hashes"));
            }
            _ => found = Some(hash),
        }
    }
    found.ok_or_else(|| format!("no line for {name}"))
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
    let dest_fd = open_dir(dest).map_err(|e| match e {
        FetchError::Io { source, .. } => UnpackFailure::Io(source),
        other => UnpackFailure::Io(io::Error::other(other.to_string())),
    })?;
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

/// The boot files `serve` should offer after a Debian fetch: `(bios, efi)` relative to the root;
/// `bios` is `None` for architectures without pxelinux.
pub fn debian_boot_files(arch: Arch) -> (Option<String>, String) {
    let bios = arch.has_bios().then(|| "pxelinux.0".to_owned());
    (bios, arch.efi_loader())
}

/// Whether a verified Debian tree for `dist`/`arch` is present in `root` (no network).
pub fn debian_present(root: &Path, dist: &str, arch: Arch) -> bool {
    Stamp::read(&root.join(format!(".pocketpxe-debian-{arch}.stamp")))
        .is_some_and(|s| s.dist == dist && s.files_present(root))
}

// ---- private helpers ----

fn finish_present(
    root: &Path,
    root_fd: &OwnedFd,
    spec: &MenuSpec,
    sha256: &str,
) -> Result<FetchReport, FetchError> {
    let mut done = Vec::new();
    for (rel, text) in menus::menu_files(spec) {
        let outcome =
            write_menu(root_fd, &rel, text.as_bytes()).map_err(|e| io_err(&root.join(&rel), e))?;
        done.push((rel, outcome));
    }
    Ok(FetchReport {
        sha256: sha256.to_owned(),
        action: FetchAction::AlreadyPresent,
        menus: done,
        saved: Vec::new(),
    })
}

/// Writes a menu into the live root: only if absent or carrying the marker.
fn write_menu(root_fd: &OwnedFd, rel: &str, text: &[u8]) -> io::Result<MenuWrite> {
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
fn stage_menu(
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
fn install(
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

fn check_dist(dist: &str) -> Result<(), FetchError> {
    let ok = !dist.is_empty()
        && dist.len() <= 32
        && dist.starts_with(|c: char| c.is_ascii_lowercase())
        && dist
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FetchError::BadRequest(format!(
            "'{dist}' is not a Debian release name, e.g. bookworm or trixie"
        )))
    }
}

fn check_mirror(mirror: &str) -> Result<&str, FetchError> {
    let trimmed = mirror.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !trimmed.contains(char::is_whitespace) => Ok(trimmed),
        _ => Err(FetchError::BadRequest(format!(
            "'{mirror}' is not an http:// or https:// mirror URL, e.g. {DEFAULT_MIRROR}"
        ))),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .user_agent(concat!("pocketpxe/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn get_text(agent: &ureq::Agent, url: &str, limit: u64) -> Result<String, FetchError> {
    let http = |detail: String| FetchError::Http {
        url: url.to_owned(),
        detail,
    };
    let mut response = agent.get(url).call().map_err(|e| http(describe(&e)))?;
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| http(describe(&e)))
}

/// Downloads `url` into `dest`, returning its size and SHA-256.
fn download(agent: &ureq::Agent, url: &str, dest: &Path) -> Result<(u64, String), FetchError> {
    let http = |detail: String| FetchError::Http {
        url: url.to_owned(),
        detail,
    };
    let mut response = agent.get(url).call().map_err(|e| http(describe(&e)))?;
    let total = response.body().content_length();
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(MAX_TARBALL_BYTES)
        .reader();
    let mut file = File::create(dest).map_err(|e| io_err(dest, e))?;
    let mut hasher = Sha256::new();
    let mut progress = Progress::start(url, total);
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.abort();
                return Err(http(format!(
                    "download interrupted after {done} bytes: {e}"
                )));
            }
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| io_err(dest, e))?;
        done += n as u64;
        progress.update(done);
    }
    progress.finish(done);
    if let Some(total) = total
        && total != done
    {
        return Err(http(format!("got {done} of {total} bytes")));
    }
    Ok((done, hex(&hasher.finalize())))
}

fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        other => other.to_string(),
    }
}

/// A hand-drawn progress bar on a terminal; two plain log lines otherwise.
struct Progress {
    tty: bool,
    total: Option<u64>,
    started: Instant,
    drawn: Instant,
}

impl Progress {
    fn start(url: &str, total: Option<u64>) -> Self {
        let tty = io::stderr().is_terminal();
        let size = total.map(|t| format!(" ({})", mib(t))).unwrap_or_default();
        tracing::info!("downloading {url}{size}");
        Self {
            tty,
            total,
            started: Instant::now(),
            drawn: Instant::now(),
        }
    }

    fn update(&mut self, done: u64) {
        if !self.tty || self.drawn.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.drawn = Instant::now();
        let line = match self.total {
            Some(total) if total > 0 => {
                let pct = (done.saturating_mul(100) / total).min(100);
                let width = 30usize;
                let fill = (pct as usize * width) / 100;
                format!(
                    "\r[{}{}] {:>3}% {} / {}",
                    "#".repeat(fill),
                    " ".repeat(width - fill),
                    pct,
                    mib(done),
                    mib(total)
                )
            }
            _ => format!("\r{}", mib(done)),
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "{line}\x1b[K");
        let _ = err.flush();
    }

    fn abort(&mut self) {
        if self.tty {
            eprintln!();
        }
    }

    fn finish(&mut self, done: u64) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
        tracing::info!(
            "downloaded {} in {:.1} s",
            mib(done),
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The work directory `ROOT/.pocketpxe-fetch.tmp`, removed on drop (we hold the root's lock, so
/// a leftover one is from a fetch that was killed).
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(root: &Path) -> Result<Self, FetchError> {
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

/// `.pocketpxe-debian-ARCH.stamp`: what was verified and unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    sha256: String,
    dist: String,
    arch: String,
    url: String,
    files: Vec<String>,
}

impl Stamp {
    /// The stamp, or `None` if missing or unreadable (then everything is fetched again).
    fn read(path: &Path) -> Option<Self> {
        let text = fs::read_to_string(path).ok()?;
        let mut stamp = Self {
            sha256: String::new(),
            dist: String::new(),
            arch: String::new(),
            url: String::new(),
            files: Vec::new(),
        };
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "sha256" => stamp.sha256 = value.to_owned(),
                "dist" => stamp.dist = value.to_owned(),
                "arch" => stamp.arch = value.to_owned(),
                "url" => stamp.url = value.to_owned(),
                "file" => stamp.files.push(value.to_owned()),
                _ => {}
            }
        }
        (stamp.sha256.len() == 64 && !stamp.files.is_empty()).then_some(stamp)
    }

    fn files_present(&self, root: &Path) -> bool {
        self.files
            .iter()
            .all(|f| fs::symlink_metadata(root.join(f)).is_ok())
    }

    fn write(&self, root_fd: &OwnedFd, name: &str) -> io::Result<()> {
        let mut text = format!(
            "# pocketpxe: the verified netboot.tar.gz unpacked here. Delete this file to fetch again.\nsha256 {}\ndist {}\narch {}\nurl {}\n",
            self.sha256, self.dist, self.arch, self.url
        );
        for file in &self.files {
            text.push_str("file ");
            text.push_str(file);
            text.push('\n');
        }
        write_atomic_at(root_fd, name, text.as_bytes())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Content {
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Other,
}

/// Reads `name` in `dir` without following a symlink.
fn read_entry(dir: &OwnedFd, name: &str) -> io::Result<Option<Content>> {
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
fn write_atomic_at(dir: &OwnedFd, name: &str, data: &[u8]) -> io::Result<()> {
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

/// Opens directory `root`.
fn open_dir(path: &Path) -> Result<OwnedFd, FetchError> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(path, e.into()))
}

/// Opens directory `rel` below `base` through real directories only (no symlinks, no `..`).
fn open_beneath(base: &OwnedFd, rel: &str) -> io::Result<OwnedFd> {
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
fn ensure_dirs(base: &OwnedFd, comps: &[&str]) -> Result<OwnedFd, String> {
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

fn is_kind(dir: &impl AsFd, name: &str, kind: FileType) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == kind)
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

fn io_err(path: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        path: path.to_owned(),
        source,
    }
}

const NETBOOT_SUMS_NAME: &str = "./netboot/netboot.tar.gz";
const MAX_SUMS_BYTES: u64 = 1 << 20;
const MAX_TARBALL_BYTES: u64 = 2 << 30;
const MAX_MENU_BYTES: u64 = 1 << 20;
const MAX_NAME_BYTES: usize = 4096;
const MAX_COMPONENT_BYTES: usize = 255;
const DIR_MODE: Mode = Mode::from_raw_mode(0o755);
const FILE_MODE: Mode = Mode::from_raw_mode(0o644);
const EXEC_MODE: Mode = Mode::from_raw_mode(0o755);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_parsed() {
        let hash = "a".repeat(64);
        let other = "b".repeat(64);
        let text = format!(
            "{other}  ./cdrom/initrd.gz\n{hash}  ./netboot/netboot.tar.gz\n{other}  ./netboot/debian-installer/amd64/linux\n"
        );
        assert_eq!(parse_sha256sums(&text, NETBOOT_SUMS_NAME), Ok(hash.clone()));
        // binary-mode marker, no ./ prefix, upper case, CRLF
        let text = format!("{}  *netboot/netboot.tar.gz\r\n", hash.to_uppercase());
        assert_eq!(parse_sha256sums(&text, NETBOOT_SUMS_NAME), Ok(hash.clone()));
        assert!(
            parse_sha256sums(&format!("{hash}  ./netboot/mini.iso\n"), NETBOOT_SUMS_NAME)
                .unwrap_err()
                .contains("no line")
        );
        assert!(
            parse_sha256sums("abc  ./netboot/netboot.tar.gz\n", NETBOOT_SUMS_NAME)
                .unwrap_err()
                .contains("64 hex")
        );
        let twice =
            format!("{hash}  ./netboot/netboot.tar.gz\n{other}  ./netboot/netboot.tar.gz\n");
        assert!(
            parse_sha256sums(&twice, NETBOOT_SUMS_NAME)
                .unwrap_err()
                .contains("twice")
        );
        // a similar name is not the file
        let similar = format!("{hash}  ./netboot/netboot.tar.gz.sig\n");
        assert!(parse_sha256sums(&similar, NETBOOT_SUMS_NAME).is_err());
        assert!(parse_sha256sums("", NETBOOT_SUMS_NAME).is_err());
    }

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

    #[test]
    fn request_checks() {
        assert!(check_dist("bookworm").is_ok());
        assert!(check_dist("trixie").is_ok());
        assert!(check_dist("../x").is_err());
        assert!(check_dist("Bookworm").is_err());
        assert!(check_dist("").is_err());
        assert_eq!(
            check_mirror("http://127.0.0.1:8080/debian/").unwrap(),
            "http://127.0.0.1:8080/debian"
        );
        assert!(check_mirror("https://deb.debian.org/debian").is_ok());
        assert!(check_mirror("ftp://x/debian").is_err());
        assert!(check_mirror("http://").is_err());
    }

    #[test]
    fn stamp_round_trip() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fd = open_dir(&dir).unwrap();
        let stamp = Stamp {
            sha256: "c".repeat(64),
            dist: "bookworm".into(),
            arch: "amd64".into(),
            url: "http://127.0.0.1:1/x".into(),
            files: vec!["version.info".into(), "a b/c".into()],
        };
        stamp.write(&fd, "s.stamp").unwrap();
        assert_eq!(Stamp::read(&dir.join("s.stamp")), Some(stamp.clone()));
        assert!(!stamp.files_present(&dir));
        fs::write(dir.join("version.info"), "x").unwrap();
        fs::create_dir_all(dir.join("a b")).unwrap();
        fs::write(dir.join("a b/c"), "x").unwrap();
        assert!(stamp.files_present(&dir));
        fs::write(dir.join("s.stamp"), "garbage").unwrap();
        assert_eq!(Stamp::read(&dir.join("s.stamp")), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
