//! Boot files from a read-only image in flash or memory, in the `pocketpxe-bootimg` format (a
//! table of `(name, offset, len)` plus data; see that crate), over
//! [`embedded_storage::ReadStorage`].
//!
//! The image is a [`Directory`] whose files are `embedded-io` `Read` + `Seek` ([`ImageFile`]),
//! served through the core's [`IoStore`]: the same adapter any `embedded-io` storage (an SD
//! card's file system) plugs into. Each open file reads through its own copy of the storage
//! handle, so the storage is `Clone` (a memory-mapped region is `Copy`).
//!
//! Files are read in place, one TFTP block at a time, straight into the outgoing packet;
//! nothing is copied into RAM.

use embedded_storage::ReadStorage;
use pocketpxe_bootimg::{ENTRY_LEN, Entry, Error as ImageError, HEADER_LEN, Header, crc32};
use pocketpxe_core::embedded_io::{ErrorKind, ErrorType, Read, Seek, SeekFrom};
use pocketpxe_core::{Directory, FileStore, IoStore, IoStoreError, OpenError, Opened, SafePath};

/// The handle of an open file: a slot of the store.
pub type FileRef = usize;

/// A read-only store over an image in `F`: the image's [`Directory`] under the core's
/// [`IoStore`], one open file per TFTP transfer.
#[derive(Debug)]
pub struct FlashStore<F: ReadStorage + Clone> {
    inner: IoStore<FlashImage<F>, { crate::net::SLOTS }>,
}

/// The checked image: opens its files by name.
#[derive(Debug)]
pub struct FlashImage<F> {
    storage: F,
    count: u32,
    bytes: u64,
}

/// An open file of the image: `embedded-io` `Read` + `Seek` over its bytes in the storage.
#[derive(Debug)]
pub struct ImageFile<F> {
    storage: F,
    offset: u32,
    len: u32,
    pos: u64,
}

impl<F: ReadStorage + Clone> FlashStore<F> {
    /// Checks the image at the start of `storage`: magic, table CRC, every entry in bounds.
    ///
    /// # Errors
    /// What is wrong with the image; [`ImageError::OutOfBounds`] also for a storage read error.
    pub fn new(storage: F) -> Result<Self, ImageError> {
        Ok(Self {
            inner: IoStore::new(FlashImage::new(storage)?),
        })
    }

    /// A store with no files (every request gets "file not found").
    pub fn empty(storage: F) -> Self {
        Self {
            inner: IoStore::new(FlashImage {
                storage,
                count: 0,
                bytes: 0,
            }),
        }
    }

    /// Number of files.
    pub fn files(&self) -> u32 {
        self.inner.directory().count
    }

    /// Total bytes of file data.
    pub fn bytes(&self) -> u64 {
        self.inner.directory().bytes
    }
}

impl<F: ReadStorage + Clone> FileStore for FlashStore<F> {
    type Handle = FileRef;
    type Error = IoStoreError<ErrorKind>;

    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<FileRef>, OpenError<Self::Error>> {
        self.inner.open(path)
    }

    fn read_at(
        &mut self,
        file: FileRef,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Self::Error> {
        self.inner.read_at(file, offset, buf)
    }

    fn close(&mut self, file: FileRef) {
        self.inner.close(file);
    }
}

impl<F: ReadStorage> FlashImage<F> {
    fn new(mut storage: F) -> Result<Self, ImageError> {
        let mut head = [0; HEADER_LEN];
        storage
            .read(0, &mut head)
            .map_err(|_| ImageError::OutOfBounds)?;
        let header = Header::parse(&head)?;
        let capacity = storage.capacity() as u64;
        if (HEADER_LEN + header.table_len()) as u64 > capacity {
            return Err(ImageError::OutOfBounds);
        }
        let mut crc = 0;
        let mut bytes = 0;
        for i in 0..header.count {
            let raw = read_entry(&mut storage, i)?;
            crc = crc32(crc, &raw);
            let entry = Entry::parse(&raw)?;
            if entry.end() > capacity {
                return Err(ImageError::OutOfBounds);
            }
            bytes += u64::from(entry.len);
        }
        if crc != header.table_crc {
            return Err(ImageError::TableCrc);
        }
        Ok(Self {
            storage,
            count: header.count,
            bytes,
        })
    }
}

impl<F: ReadStorage> ErrorType for FlashImage<F> {
    type Error = ErrorKind;
}

impl<F: ReadStorage + Clone> Directory for FlashImage<F> {
    type File = ImageFile<F>;

    fn open(&mut self, path: SafePath<'_>) -> Result<ImageFile<F>, ErrorKind> {
        for i in 0..self.count {
            let raw = read_entry(&mut self.storage, i).map_err(|_| ErrorKind::Other)?;
            let entry = Entry::parse(&raw).map_err(|_| ErrorKind::InvalidData)?;
            if path.matches(entry.name()) {
                return Ok(ImageFile {
                    storage: self.storage.clone(),
                    offset: entry.offset,
                    len: entry.len,
                    pos: 0,
                });
            }
        }
        Err(ErrorKind::NotFound)
    }
}

impl<F> ErrorType for ImageFile<F> {
    type Error = ErrorKind;
}

impl<F: ReadStorage> Read for ImageFile<F> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let start = self.pos.min(u64::from(self.len));
        let n = (buf.len() as u64).min(u64::from(self.len) - start) as usize;
        // In bounds: `FlashImage::new` checked offset + len against the capacity, which fits u32.
        self.storage
            .read(self.offset + start as u32, &mut buf[..n])
            .map_err(|_| ErrorKind::Other)?;
        self.pos = start + n as u64;
        Ok(n)
    }
}

impl<F: ReadStorage> Seek for ImageFile<F> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, ErrorKind> {
        self.pos = match pos {
            SeekFrom::Start(at) => at,
            SeekFrom::End(delta) => u64::from(self.len)
                .checked_add_signed(delta)
                .ok_or(ErrorKind::InvalidInput)?,
            SeekFrom::Current(delta) => self
                .pos
                .checked_add_signed(delta)
                .ok_or(ErrorKind::InvalidInput)?,
        };
        Ok(self.pos)
    }
}

/// Storage that is simply memory: QEMU's PSRAM, or the RP2040's execute-in-place flash window.
#[derive(Debug, Clone, Copy)]
pub struct MappedStorage {
    bytes: &'static [u8],
}

impl MappedStorage {
    /// Storage over `len` bytes at `addr`.
    ///
    /// # Safety
    /// `addr..addr + len` must be readable memory that nothing writes while the store lives.
    pub const unsafe fn new(addr: usize, len: usize) -> Self {
        // SAFETY: the caller guarantees the region is readable and not written.
        Self {
            bytes: unsafe { core::slice::from_raw_parts(addr as *const u8, len) },
        }
    }
}

/// A read outside the mapped region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds;

impl ReadStorage for MappedStorage {
    type Error = OutOfBounds;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), OutOfBounds> {
        let start = offset as usize;
        let src = self
            .bytes
            .get(start..start + bytes.len())
            .ok_or(OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

fn read_entry<F: ReadStorage>(storage: &mut F, index: u32) -> Result<[u8; ENTRY_LEN], ImageError> {
    let mut raw = [0; ENTRY_LEN];
    let at = HEADER_LEN as u32 + index * ENTRY_LEN as u32;
    storage
        .read(at, &mut raw)
        .map_err(|_| ImageError::OutOfBounds)?;
    Ok(raw)
}
