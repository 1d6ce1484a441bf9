//! [`FsStore`]: the core's [`FileStore`] over a directory, confined by `openat2(2)`.
//!
//! The root is opened once (`O_PATH | O_DIRECTORY`); every file is opened relative to it with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so the kernel refuses any path, `..` or symlink
//! (absolute or relative) that would leave the root, and `/proc` magic links, without races.
//! Symlinks that stay inside the root are followed (Debian's netboot tree is built on them).
//! Files are opened with `O_NONBLOCK` so a FIFO never blocks, then refused unless regular.
//!
//! Every open handle of the same file version (same device, inode, size and modification
//! time) shares one descriptor: a request opens the file (that is where the path is checked)
//! and, when that version is open already, closes the new descriptor at once. 10 000 clients
//! fetching one initrd thus hold one file descriptor, not 10 000.
//!
//! Reads go through a small shared cache: a file is read in [`CHUNK`]-sized pieces with one
//! `pread(2)` each, and every open handle of the same file version shares them. Each handle holds on to the one chunk it last read from;
//! a chunk nobody holds is freed at once, so memory stays near one chunk per distinct reading
//! position, and the whole cache is bounded by [`FsStore::set_cache_limit`] (beyond it, reads
//! go straight to the file). A DATA block thus costs a copy instead of a system call, and a
//! boot storm of clients reading the same initrd at about the same place reads it once.

use pocketpxe_core::{FileStore, OpenError, Opened, SafePath};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::collections::{HashMap, hash_map};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A read-only file store rooted at a directory.
///
/// # Invariants
/// `free` holds exactly the indices of `files` whose entry is closed.
pub struct FsStore {
    root: OwnedFd,
    root_path: PathBuf,
    /// A directory under the root where files missing from the root are looked for next.
    fallback: Option<String>,
    files: Vec<Entry>,
    free: Vec<u32>,
    /// Chunks of open files, shared by every handle of the same file.
    shared: HashMap<FileKey, SharedFile>,
    /// Bytes held in chunks now, and at most.
    cached: usize,
    cache_limit: usize,
}

/// An open file of an [`FsStore`]: a slot index plus a generation, so a stale handle never
/// reaches a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileHandle {
    index: u32,
    generation: u32,
}

/// Why the root directory cannot be served. Each variant names the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootError {
    /// The root does not exist.
    #[error("TFTP root {}: no such directory", .path.display())]
    NotFound {
        /// The root as configured.
        path: PathBuf,
    },
    /// The root is not a directory.
    #[error("TFTP root {}: not a directory", .path.display())]
    NotADirectory {
        /// The root as configured.
        path: PathBuf,
    },
    /// The root cannot be read (permissions).
    #[error("TFTP root {}: not readable: {error}", .path.display())]
    Unreadable {
        /// The root as configured.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
    /// The kernel lacks `openat2(2)` (Linux < 5.6, or a sandbox that filters it). There is no
    /// weaker fallback: without it, symlinks could lead out of the root.
    #[error(
        "TFTP root {}: the kernel does not support openat2(2) (Linux 5.6 or later is required \
         to confine file access to the root; refusing to fall back to something weaker)",
        .path.display()
    )]
    Openat2Unsupported {
        /// The root as configured.
        path: PathBuf,
    },
    /// Any other OS error.
    #[error("TFTP root {}: {error}", .path.display())]
    Io {
        /// The root as configured.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
}

impl FsStore {
    /// Opens `root` for serving, checking that it is a readable directory and that the kernel
    /// can confine lookups to it.
    ///
    /// # Errors
    /// [`RootError`], naming `root`.
    pub fn open_root(root: impl AsRef<Path>) -> Result<Self, RootError> {
        let path = root.as_ref().to_path_buf();
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::NOENT => RootError::NotFound { path: path.clone() },
            Errno::NOTDIR => RootError::NotADirectory { path: path.clone() },
            Errno::ACCESS | Errno::PERM => RootError::Unreadable {
                path: path.clone(),
                error: errno.into(),
            },
            _ => RootError::Io {
                path: path.clone(),
                error: errno.into(),
            },
        })?;
        // Probe: openat2 exists, and the directory can be read through it.
        probe_root(&fd, &path)?;
        Ok(Self {
            root: fd,
            root_path: path,
            fallback: None,
            files: Vec::new(),
            free: Vec::new(),
            shared: HashMap::new(),
            cached: 0,
            cache_limit: DEFAULT_CACHE_LIMIT,
        })
    }

    /// Checks, as whoever the process runs as now, that the root can be read and searched
    /// through the descriptor opened by [`FsStore::open_root`] (which is what serving does;
    /// the directories above it no longer matter). Run it again after a change of user.
    ///
    /// # Errors
    /// [`RootError::Unreadable`] (or another [`RootError`]), naming the root.
    pub fn check_readable(&self) -> Result<(), RootError> {
        probe_root(&self.root, &self.root_path)
    }

    /// Whether the file `rel` (relative to the root, a leading `/` ignored) can be served now:
    /// it opens and is a regular file. Confined like every request.
    ///
    /// # Errors
    /// The OS error (`NotFound` when it is missing; `InvalidInput` when it is not a regular
    /// file).
    pub fn probe(&self, rel: &str) -> io::Result<()> {
        let rel = rel.trim_start_matches('/');
        let fd = rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?;
        if File::from(fd).metadata()?.is_file() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ))
        }
    }

    /// Opens `path` for a server that reads the file itself (HTTP), on a descriptor of its
    /// own, outside the handle table and the read cache, confined like every request: the
    /// file and its metadata.
    ///
    /// # Errors
    /// As [`FileStore::open`]: `NotFound`, `Denied` (outside the root, not a regular file,
    /// not readable) or an OS error.
    pub fn open_detached(
        &self,
        path: SafePath<'_>,
    ) -> Result<(File, std::fs::Metadata), OpenError<io::Error>> {
        let rel = path.to_string();
        let (file, _) = self.open_file(&rel)?;
        let meta = file
            .metadata()
            .map_err(|err| self.io_error(&rel, "fstat", err))?;
        Ok((file, meta))
    }

    /// Bounds the bytes held in the shared read cache (default 32 MiB); 0 turns it off, so that
    /// every read is a `pread(2)`.
    pub fn set_cache_limit(&mut self, bytes: usize) {
        self.cache_limit = bytes;
    }

    /// Bytes held in the shared read cache now.
    pub fn cached_bytes(&self) -> usize {
        self.cached
    }

    /// Looks for a file missing from the root under `dir` (relative to the root) next: the
    /// Raspberry Pi boot directory of `--boot rpi=DIR`, whose bootloader asks for its files at
    /// the top of the TFTP tree (docs/raspberry-pi.md §2). Lookups there are confined to the
    /// root like every other.
    pub fn with_fallback_dir(mut self, dir: Option<&str>) -> Self {
        self.fallback = dir
            .map(|d| d.trim_matches('/').to_owned())
            .filter(|d| !d.is_empty());
        self
    }

    /// The root as configured.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// How many files are open now.
    pub fn open_files(&self) -> usize {
        self.files.len() - self.free.len()
    }

    /// How many file descriptors the open files hold: one per distinct file version.
    pub fn open_descriptors(&self) -> usize {
        self.shared.len()
    }

    /// Opens `rel`, or, when the root has no such file, `rel` under the fallback directory.
    fn open_file(&self, rel: &str) -> Result<(File, FileKey), OpenError<io::Error>> {
        match (self.open_here(rel), &self.fallback) {
            (Err(OpenError::NotFound), Some(dir)) => self.open_here(&format!("{dir}/{rel}")),
            (found, _) => found,
        }
    }

    fn open_here(&self, rel: &str) -> Result<(File, FileKey), OpenError<io::Error>> {
        let fd = rustix::fs::openat2(
            &self.root,
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|errno| self.map_open_error(rel, errno))?;
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|err| self.io_error(rel, "fstat", err))?;
        if !meta.is_file() {
            tracing::debug!(
                file = rel,
                kind = file_kind(meta.file_type()),
                "refused: not a regular file"
            );
            return Err(OpenError::Denied);
        }
        let key = FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        Ok((file, key))
    }

    fn map_open_error(&self, rel: &str, errno: Errno) -> OpenError<io::Error> {
        match errno {
            Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => OpenError::NotFound,
            // EXDEV: the path would leave the root (RESOLVE_BENEATH). ELOOP: a magic link or a
            // symlink loop. ENXIO: a socket. EACCES/EPERM: permissions.
            Errno::XDEV => {
                tracing::info!(file = rel, "refused: resolves outside the TFTP root");
                OpenError::Denied
            }
            Errno::LOOP | Errno::ACCESS | Errno::PERM | Errno::NXIO | Errno::ISDIR => {
                tracing::debug!(file = rel, error = %io::Error::from(errno), "refused");
                OpenError::Denied
            }
            _ => OpenError::Io(self.log_io(rel, "open", errno.into())),
        }
    }

    fn io_error(&self, rel: &str, what: &str, err: io::Error) -> OpenError<io::Error> {
        OpenError::Io(self.log_io(rel, what, err))
    }

    fn log_io(&self, rel: &str, what: &str, err: io::Error) -> io::Error {
        tracing::warn!(
            root = %self.root_path.display(),
            file = rel,
            error = %err,
            "{what} failed"
        );
        err
    }

    fn insert(&mut self, open: OpenFile) -> Result<FileHandle, OpenError<io::Error>> {
        if let Some(index) = self.free.pop() {
            let entry = &mut self.files[index as usize];
            entry.generation = entry.generation.wrapping_add(1);
            entry.open = Some(open);
            return Ok(FileHandle {
                index,
                generation: entry.generation,
            });
        }
        let index = u32::try_from(self.files.len())
            .map_err(|_| OpenError::Io(io::Error::other("too many open files in the store")))?;
        self.files.push(Entry {
            generation: 0,
            open: Some(open),
        });
        Ok(FileHandle {
            index,
            generation: 0,
        })
    }
}

impl fmt::Debug for FsStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsStore")
            .field("root", &self.root_path)
            .field("open_files", &self.open_files())
            .finish()
    }
}

/// Opens `.` under `root` for reading, as serving would: openat2 must exist, and the
/// directory must be readable and searchable.
fn probe_root(root: &OwnedFd, path: &Path) -> Result<(), RootError> {
    let path = || path.to_path_buf();
    match rustix::fs::openat2(
        root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    ) {
        Ok(_) => Ok(()),
        Err(Errno::NOSYS) => Err(RootError::Openat2Unsupported { path: path() }),
        Err(errno @ (Errno::ACCESS | Errno::PERM)) => Err(RootError::Unreadable {
            path: path(),
            error: errno.into(),
        }),
        Err(errno) => Err(RootError::Io {
            path: path(),
            error: errno.into(),
        }),
    }
}

impl FileStore for FsStore {
    type Handle = FileHandle;
    type Error = io::Error;

    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<FileHandle>, OpenError<io::Error>> {
        // `SafePath` guarantees no empty, `.` or `..` component and no NUL; the kernel
        // (RESOLVE_BENEATH) guarantees the rest, including symlinks.
        let rel = path.to_string();
        let (file, key) = self.open_file(&rel)?;
        let size = key.size;
        let handle = self.insert(OpenFile {
            path: rel,
            key,
            pinned: None,
        })?;
        // A version already open keeps its descriptor; the new one is closed here.
        self.shared
            .entry(key)
            .or_insert_with(|| SharedFile {
                file,
                handles: 0,
                chunks: HashMap::new(),
            })
            .handles += 1;
        Ok(Opened {
            handle,
            size: Some(size),
        })
    }

    fn read_at(
        &mut self,
        handle: FileHandle,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, io::Error> {
        let Ok(index) = usize::try_from(handle.index) else {
            return Err(io::Error::other("read from a closed file handle"));
        };
        let Some(open) = self
            .files
            .get_mut(index)
            .filter(|e| e.generation == handle.generation)
            .and_then(|e| e.open.as_mut())
        else {
            return Err(io::Error::other("read from a closed file handle"));
        };
        let Some(shared) = self.shared.get_mut(&open.key) else {
            return Err(io::Error::other(
                "bug: open file missing from the shared table",
            ));
        };
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset.saturating_add(filled as u64);
            let chunk_index = at / CHUNK as u64;
            if !shared.chunks.contains_key(&chunk_index) && self.cached + CHUNK > self.cache_limit {
                // Cache full: straight from the file.
                let got = pread_full(&shared.file, at, &mut buf[filled..])
                    .map_err(|err| log_read_error(&self.root_path, &open.path, at, err))?;
                return Ok(filled + got);
            }
            if open.pinned != Some(chunk_index) {
                if let hash_map::Entry::Vacant(slot) = shared.chunks.entry(chunk_index) {
                    let start = chunk_index * CHUNK as u64;
                    let mut data = vec![0u8; CHUNK];
                    let got = pread_full(&shared.file, start, &mut data)
                        .map_err(|err| log_read_error(&self.root_path, &open.path, start, err))?;
                    data.truncate(got);
                    self.cached += data.len();
                    slot.insert(Chunk {
                        data: data.into_boxed_slice(),
                        pins: 0,
                    });
                }
                if let Some(chunk) = shared.chunks.get_mut(&chunk_index) {
                    chunk.pins += 1;
                }
                if let Some(old) = open.pinned.replace(chunk_index) {
                    self.cached -= shared.unpin(old);
                }
            }
            let Some(chunk) = shared.chunks.get(&chunk_index) else {
                return Err(io::Error::other("bug: pinned chunk missing from the cache"));
            };
            let within = (at - chunk_index * CHUNK as u64) as usize;
            let available = chunk.data.get(within..).unwrap_or_default();
            let n = available.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&available[..n]);
            filled += n;
            if chunk.data.len() < CHUNK {
                break; // end of file
            }
        }
        Ok(filled)
    }

    fn close(&mut self, handle: FileHandle) {
        let Ok(index) = usize::try_from(handle.index) else {
            return;
        };
        if let Some(entry) = self.files.get_mut(index)
            && entry.generation == handle.generation
            && let Some(open) = entry.open.take()
        {
            self.free.push(handle.index);
            if let Some(shared) = self.shared.get_mut(&open.key) {
                if let Some(chunk) = open.pinned {
                    self.cached -= shared.unpin(chunk);
                }
                shared.handles -= 1;
                if shared.handles == 0 {
                    self.cached -= shared.chunks.values().map(|c| c.data.len()).sum::<usize>();
                    self.shared.remove(&open.key);
                }
            }
        }
    }
}

struct Entry {
    generation: u32,
    open: Option<OpenFile>,
}

struct OpenFile {
    /// Root-relative, for logs.
    path: String,
    key: FileKey,
    /// The chunk this handle holds in the shared cache.
    pinned: Option<u64>,
}

/// Identifies one version of a file: a changed size or modification time is another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// One open file version: its descriptor, how many handles have it open, its cached chunks.
struct SharedFile {
    file: File,
    handles: usize,
    chunks: HashMap<u64, Chunk>,
}

impl SharedFile {
    /// Releases one hold on chunk `index`; frees it when nobody holds it. Returns the bytes
    /// freed.
    fn unpin(&mut self, index: u64) -> usize {
        let Some(chunk) = self.chunks.get_mut(&index) else {
            return 0;
        };
        chunk.pins = chunk.pins.saturating_sub(1);
        if chunk.pins > 0 {
            return 0;
        }
        self.chunks.remove(&index).map_or(0, |c| c.data.len())
    }
}

struct Chunk {
    /// The file's bytes from `index * CHUNK`; shorter than `CHUNK` only at the end of file.
    data: Box<[u8]>,
    pins: u32,
}

/// Fills `buf` from `offset`, looping over short reads; fewer bytes mean end of file.
fn pread_full(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset.saturating_add(filled as u64)) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// What a non-regular file is, in words (for logs).
fn file_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_dir() {
        "directory"
    } else if kind.is_symlink() {
        "symlink"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_char_device() {
        "character device"
    } else {
        "regular file"
    }
}

fn log_read_error(root: &Path, file: &str, offset: u64, err: io::Error) -> io::Error {
    tracing::warn!(root = %root.display(), file, offset, error = %err, "read failed");
    err
}

/// Bytes per cached chunk: one `pread(2)` serves 44 blocks of 1468 bytes.
pub const CHUNK: usize = 64 * 1024;
/// Default bound of the shared read cache.
const DEFAULT_CACHE_LIMIT: usize = 32 * 1024 * 1024;

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "pocketpxe-fs-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open(store: &mut FsStore, name: &[u8]) -> Result<Opened<FileHandle>, OpenError<io::Error>> {
        store.open(SafePath::parse(name).unwrap())
    }

    fn read_all(store: &mut FsStore, handle: FileHandle) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = store.read_at(handle, out.len() as u64, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                return out;
            }
        }
    }

    #[test]
    fn serves_files_and_inside_symlinks_refuses_escapes() {
        let tmp = TempDir::new("confine");
        let root = tmp.0.join("root");
        std::fs::create_dir_all(root.join("debian-installer/amd64")).unwrap();
        std::fs::write(root.join("debian-installer/amd64/pxelinux.0"), b"pxe").unwrap();
        symlink("debian-installer/amd64/pxelinux.0", root.join("pxelinux.0")).unwrap();
        std::fs::write(tmp.0.join("secret"), b"secret").unwrap();
        symlink("../secret", root.join("up")).unwrap();
        symlink(tmp.0.join("secret"), root.join("abs")).unwrap();
        symlink("/proc/self/root/etc/hostname", root.join("magic")).unwrap();

        let mut store = FsStore::open_root(&root).unwrap();
        let opened = open(&mut store, b"/pxelinux.0").unwrap();
        assert_eq!(opened.size, Some(3));
        assert_eq!(read_all(&mut store, opened.handle), b"pxe");
        store.close(opened.handle);
        assert_eq!(store.open_files(), 0);

        for name in [
            &b"up"[..],
            b"abs",
            b"magic",
            b"etc/passwd",
            b"debian-installer",
        ] {
            let err = open(&mut store, name).unwrap_err();
            assert!(
                matches!(err, OpenError::Denied | OpenError::NotFound),
                "{name:?}: {err:?}"
            );
        }
        assert!(matches!(open(&mut store, b"up"), Err(OpenError::Denied)));
        assert!(matches!(
            open(&mut store, b"nope"),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            open(&mut store, b"pxelinux.0/x"),
            Err(OpenError::NotFound)
        ));
    }

    #[test]
    fn files_missing_from_the_root_come_from_the_fallback_dir() {
        let tmp = TempDir::new("fallback");
        let root = tmp.0.join("root");
        std::fs::create_dir_all(root.join("rpi/9ffefdef")).unwrap();
        std::fs::write(root.join("config.txt"), b"root").unwrap();
        std::fs::write(root.join("rpi/config.txt"), b"pi").unwrap();
        std::fs::write(root.join("rpi/start4.elf"), b"shared").unwrap();
        std::fs::write(root.join("rpi/9ffefdef/start4.elf"), b"own").unwrap();
        std::fs::write(tmp.0.join("outside"), b"secret").unwrap();
        symlink("../../outside", root.join("rpi/escape")).unwrap();
        let mut store = FsStore::open_root(&root)
            .unwrap()
            .with_fallback_dir(Some("/rpi/"));
        for (name, want) in [
            (&b"config.txt"[..], &b"root"[..]),
            (b"start4.elf", b"shared"),
            (b"9ffefdef/start4.elf", b"own"),
            (b"rpi/start4.elf", b"shared"),
        ] {
            let h = open(&mut store, name).unwrap().handle;
            assert_eq!(read_all(&mut store, h), want, "{name:?}");
        }
        assert!(matches!(
            open(&mut store, b"9ffefdef/fixup4.dat"),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            open(&mut store, b"escape"),
            Err(OpenError::Denied)
        ));
        // Without a fallback, only the root.
        let mut plain = FsStore::open_root(&root).unwrap().with_fallback_dir(None);
        assert!(matches!(
            open(&mut plain, b"start4.elf"),
            Err(OpenError::NotFound)
        ));
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let tmp = TempDir::new("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, tmp.0.join("fifo"), Mode::RUSR | Mode::WUSR).unwrap();
        let mut store = FsStore::open_root(&tmp.0).unwrap();
        assert!(matches!(open(&mut store, b"fifo"), Err(OpenError::Denied)));
        assert_eq!(store.open_files(), 0);
    }

    #[test]
    fn stale_handles_are_errors_not_panics() {
        let tmp = TempDir::new("stale");
        std::fs::write(tmp.0.join("a"), b"aaaa").unwrap();
        std::fs::write(tmp.0.join("b"), b"bb").unwrap();
        let mut store = FsStore::open_root(&tmp.0).unwrap();
        let a = open(&mut store, b"a").unwrap().handle;
        store.close(a);
        store.close(a); // double close is harmless
        let b = open(&mut store, b"b").unwrap().handle;
        assert_eq!(a.index, b.index);
        assert!(store.read_at(a, 0, &mut [0; 4]).is_err());
        assert_eq!(read_all(&mut store, b), b"bb");
        assert_eq!(store.read_at(b, 99, &mut [0; 4]).unwrap(), 0);
    }

    #[test]
    fn cached_reads_match_the_file_and_free_their_memory() {
        let tmp = TempDir::new("cache");
        let content: Vec<u8> = (0..3 * CHUNK + 1234).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(tmp.0.join("f"), &content).unwrap();
        for limit in [0, CHUNK, 32 * CHUNK] {
            let mut store = FsStore::open_root(&tmp.0).unwrap();
            store.set_cache_limit(limit);
            let a = open(&mut store, b"f").unwrap().handle;
            let b = open(&mut store, b"f").unwrap().handle;
            for blksize in [1468usize, 512, 65464] {
                for handle in [a, b] {
                    let mut out = Vec::new();
                    let mut buf = vec![0u8; blksize];
                    loop {
                        let n = store.read_at(handle, out.len() as u64, &mut buf).unwrap();
                        out.extend_from_slice(&buf[..n]);
                        assert!(store.cached_bytes() <= limit);
                        if n < blksize {
                            break;
                        }
                    }
                    assert_eq!(out, content, "limit {limit} blksize {blksize}");
                }
            }
            // A rewind into a freed chunk reads it again.
            let mut buf = [0u8; 100];
            assert_eq!(store.read_at(a, 10, &mut buf).unwrap(), 100);
            assert_eq!(&buf[..], &content[10..110]);
            assert_eq!(store.read_at(a, content.len() as u64, &mut buf).unwrap(), 0);
            store.close(a);
            store.close(b);
            assert_eq!(store.cached_bytes(), 0, "limit {limit}");
            assert!(store.shared.is_empty());
        }
    }

    #[test]
    fn handles_of_one_file_version_share_one_descriptor() {
        let tmp = TempDir::new("share");
        std::fs::write(tmp.0.join("initrd"), b"old").unwrap();
        std::fs::write(tmp.0.join("other"), b"x").unwrap();
        let mut store = FsStore::open_root(&tmp.0).unwrap();
        let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let olds: Vec<FileHandle> = (0..100)
            .map(|_| open(&mut store, b"initrd").unwrap().handle)
            .collect();
        assert_eq!((store.open_files(), store.open_descriptors()), (100, 1));
        let other = open(&mut store, b"other").unwrap().handle;
        assert_eq!(store.open_descriptors(), 2);
        // Other tests open files meanwhile: far fewer than 100 more descriptors, not exact.
        assert!(std::fs::read_dir("/proc/self/fd").unwrap().count() < fds_before + 50);

        // A new version (replaced by rename) gets its own descriptor; old handles keep theirs.
        std::fs::write(tmp.0.join("initrd.new"), b"new!").unwrap();
        std::fs::rename(tmp.0.join("initrd.new"), tmp.0.join("initrd")).unwrap();
        let new = open(&mut store, b"initrd").unwrap().handle;
        assert_eq!(store.open_descriptors(), 3);
        assert_eq!(read_all(&mut store, new), b"new!");
        assert_eq!(read_all(&mut store, olds[42]), b"old");
        assert_eq!(read_all(&mut store, other), b"x");

        for handle in olds {
            store.close(handle);
        }
        assert_eq!((store.open_files(), store.open_descriptors()), (2, 2));
        store.close(new);
        store.close(other);
        assert_eq!((store.open_files(), store.open_descriptors()), (0, 0));
    }

    #[test]
    fn unusable_roots_name_the_path() {
        let tmp = TempDir::new("roots");
        std::fs::write(tmp.0.join("file"), b"").unwrap();
        let err = FsStore::open_root(tmp.0.join("missing")).unwrap_err();
        assert!(matches!(err, RootError::NotFound { .. }));
        assert!(err.to_string().contains("missing"), "{err}");
        let err = FsStore::open_root(tmp.0.join("file")).unwrap_err();
        assert!(matches!(err, RootError::NotADirectory { .. }), "{err}");
    }
}
