//! [`FsStore`]: the core's [`FileStore`] over a directory, confined by `openat2(2)`.
//!
//! The root is opened once (`O_PATH | O_DIRECTORY`); every file is opened relative to it with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so the kernel refuses any path, `..` or symlink
//! (absolute or relative) that would leave the root, and `/proc` magic links, without races.
//! Symlinks that stay inside the root are followed (Debian's netboot tree is built on them).
//! Files are opened with `O_NONBLOCK` so a FIFO never blocks, then refused unless regular.

use pocketpxe_core::{FileStore, OpenError, Opened, SafePath};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A read-only file store rooted at a directory.
///
/// # Invariants
/// `free` holds exactly the indices of `files` whose entry is closed.
pub struct FsStore {
    root: OwnedFd,
    root_path: PathBuf,
    files: Vec<Entry>,
    free: Vec<u32>,
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
        match rustix::fs::openat2(
            &fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(_) => {}
            Err(Errno::NOSYS) => return Err(RootError::Openat2Unsupported { path }),
            Err(errno @ (Errno::ACCESS | Errno::PERM)) => {
                return Err(RootError::Unreadable {
                    path,
                    error: errno.into(),
                });
            }
            Err(errno) => {
                return Err(RootError::Io {
                    path,
                    error: errno.into(),
                });
            }
        }
        Ok(Self {
            root: fd,
            root_path: path,
            files: Vec::new(),
            free: Vec::new(),
        })
    }

    /// The root as configured.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// How many files are open now.
    pub fn open_files(&self) -> usize {
        self.files.len() - self.free.len()
    }

    fn open_file(&self, rel: &str) -> Result<(File, u64), OpenError<io::Error>> {
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
            tracing::debug!(file = rel, kind = ?meta.file_type(), "refused: not a regular file");
            return Err(OpenError::Denied);
        }
        Ok((file, meta.len()))
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

    fn entry(&self, handle: FileHandle) -> Option<&OpenFile> {
        let entry = self.files.get(usize::try_from(handle.index).ok()?)?;
        if entry.generation != handle.generation {
            return None;
        }
        entry.open.as_ref()
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

impl FileStore for FsStore {
    type Handle = FileHandle;
    type Error = io::Error;

    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<FileHandle>, OpenError<io::Error>> {
        // `SafePath` guarantees no empty, `.` or `..` component and no NUL; the kernel
        // (RESOLVE_BENEATH) guarantees the rest, including symlinks.
        let rel = path.to_string();
        let (file, size) = self.open_file(&rel)?;
        let handle = self.insert(OpenFile { file, path: rel })?;
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
        let Some(open) = self.entry(handle) else {
            return Err(io::Error::other("read from a closed file handle"));
        };
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset.saturating_add(filled as u64);
            match open.file.read_at(&mut buf[filled..], at) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    tracing::warn!(
                        root = %self.root_path.display(),
                        file = %open.path,
                        offset = at,
                        error = %err,
                        "read failed"
                    );
                    return Err(err);
                }
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
            && entry.open.take().is_some()
        {
            self.free.push(handle.index);
        }
    }
}

struct Entry {
    generation: u32,
    open: Option<OpenFile>,
}

struct OpenFile {
    file: File,
    /// Root-relative, for logs.
    path: String,
}

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
