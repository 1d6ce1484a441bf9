//! A [`FileStore`] over [`embedded_io`] files: any storage whose files are
//! [`Read`] + [`Seek`] (a FAT file system on an SD card, a flash file system, an OS file on a
//! host) serves TFTP through [`IoStore`] with no glue beyond a [`Directory`] that opens a file
//! by its [`SafePath`].
//!
//! The store keeps up to `N` open files in its own slots (no allocation); a handle is a slot
//! index. Each slot remembers its file's position, so the sequential block reads of a transfer
//! cost no seek, and a retransmission (RFC 1350 §2) or a window rewind (RFC 7440 §4) costs one.
//! Errors of the underlying storage come back as values: an open error by its
//! [`ErrorKind`] ([`OpenError::NotFound`], [`OpenError::Denied`] or [`OpenError::Io`]), a read
//! or seek error as [`IoStoreError::Io`], which aborts the transfer with TFTP error 0.

use core::fmt;

use embedded_io::{Error as _, ErrorKind, ErrorType, Read, Seek, SeekFrom};

use crate::storage::{FileStore, OpenError, Opened, SafePath};

/// Opens files by validated path: the storage side of an [`IoStore`].
///
/// Implemented by the storage (or a thin wrapper over it): look `path` up, for example by
/// walking [`SafePath::components`] through directories, and return the open file.
pub trait Directory: ErrorType {
    /// An open file, read through `embedded-io`. Dropping it closes it.
    type File: Read + Seek + ErrorType<Error = Self::Error>;

    /// Opens `path` for reading.
    ///
    /// # Errors
    /// The storage's error. Its [`ErrorKind`] decides what the client sees:
    /// [`ErrorKind::NotFound`] is TFTP error 1, [`ErrorKind::PermissionDenied`] is error 2,
    /// anything else error 0.
    fn open(&mut self, path: SafePath<'_>) -> Result<Self::File, Self::Error>;
}

/// A [`FileStore`] serving the files of a [`Directory`], with up to `N` open at once.
///
/// Give `N` at least the number of TFTP transfer slots: an open beyond `N` fails with
/// [`IoStoreError::TooManyOpen`] (TFTP error 0).
pub struct IoStore<D: Directory, const N: usize> {
    dir: D,
    files: [Option<OpenFile<D::File>>; N],
}

impl<D: Directory, const N: usize> IoStore<D, N> {
    /// A store over `dir` with no file open.
    pub const fn new(dir: D) -> Self {
        Self {
            dir,
            files: [const { None }; N],
        }
    }

    /// The directory.
    pub const fn directory(&self) -> &D {
        &self.dir
    }

    /// The directory, mutably (open files stay open).
    pub const fn directory_mut(&mut self) -> &mut D {
        &mut self.dir
    }

    /// How many files are open.
    pub fn open_files(&self) -> usize {
        self.files.iter().filter(|slot| slot.is_some()).count()
    }
}

impl<D: Directory, const N: usize> fmt::Debug for IoStore<D, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoStore")
            .field("open_files", &self.open_files())
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

impl<D: Directory, const N: usize> FileStore for IoStore<D, N> {
    type Handle = usize;
    type Error = IoStoreError<D::Error>;

    /// Opens `path` in the directory and learns its size by seeking to its end (a file that
    /// cannot seek there, [`ErrorKind::Unsupported`], is served without `tsize`).
    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<usize>, OpenError<Self::Error>> {
        let Some(handle) = self.files.iter().position(Option::is_none) else {
            return Err(OpenError::Io(IoStoreError::TooManyOpen));
        };
        let mut file = self.dir.open(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => OpenError::NotFound,
            ErrorKind::PermissionDenied => OpenError::Denied,
            _ => OpenError::Io(IoStoreError::Io(e)),
        })?;
        let size = match file.seek(SeekFrom::End(0)) {
            Ok(size) => Some(size),
            Err(e) if e.kind() == ErrorKind::Unsupported => None,
            Err(e) => return Err(OpenError::Io(IoStoreError::Io(e))),
        };
        self.files[handle] = Some(OpenFile { file, pos: size });
        Ok(Opened { handle, size })
    }

    /// Seeks only when `offset` is not where the previous read ended, then reads until `buf`
    /// is full or the file ends.
    fn read_at(&mut self, file: usize, offset: u64, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match self.files.get_mut(file) {
            Some(Some(open)) => open.read_at(offset, buf),
            _ => Err(IoStoreError::NotOpen),
        }
    }

    /// Drops the file, which closes it.
    fn close(&mut self, file: usize) {
        if let Some(slot) = self.files.get_mut(file) {
            *slot = None;
        }
    }
}

/// What went wrong in an [`IoStore`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IoStoreError<E> {
    /// The storage failed: opening, seeking or reading.
    Io(E),
    /// A seek to `wanted` landed at `landed` (the file changed size, or the storage
    /// clamps seeks).
    SeekLanded {
        /// The offset asked for.
        wanted: u64,
        /// Where the file said it is.
        landed: u64,
    },
    /// All `N` file slots are in use.
    TooManyOpen,
    /// The handle names no open file.
    NotOpen,
}

impl<E: fmt::Display> fmt::Display for IoStoreError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "storage error: {e}"),
            Self::SeekLanded { wanted, landed } => {
                write!(f, "seek to {wanted} landed at {landed}")
            }
            Self::TooManyOpen => f.write_str("too many open files"),
            Self::NotOpen => f.write_str("file not open"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for IoStoreError<E> {}

/// An open file and where its next read starts, if known.
struct OpenFile<F> {
    file: F,
    pos: Option<u64>,
}

impl<F: Read + Seek> OpenFile<F> {
    // One copy: inlined into each of a driver's send paths, the loop cost about 1.6 KiB of
    // code on thumbv6m (firmware/README.md's budgets); a call per block costs nothing
    // measurable.
    #[inline(never)]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, IoStoreError<F::Error>> {
        if self.pos != Some(offset) {
            // Unknown until the seek succeeds.
            self.pos = None;
            let landed = self
                .file
                .seek(SeekFrom::Start(offset))
                .map_err(IoStoreError::Io)?;
            if landed != offset {
                return Err(IoStoreError::SeekLanded {
                    wanted: offset,
                    landed,
                });
            }
        }
        let mut filled = 0;
        // Bounded: every pass fills at least one more byte or leaves the loop.
        while filled < buf.len() {
            match self.file.read(&mut buf[filled..]) {
                Ok(0) => break,
                // `min`: a reader claiming more than it was given cannot push `filled` past
                // the buffer.
                Ok(n) => filled += n.min(buf.len() - filled),
                Err(e) => {
                    self.pos = None;
                    return Err(IoStoreError::Io(e));
                }
            }
        }
        self.pos = Some(offset.saturating_add(filled as u64));
        Ok(filled)
    }
}
