//! Boot files from a read-only image in flash or memory: a [`FileStore`] over
//! [`embedded_storage::ReadStorage`] in the `pocketpxe-bootimg`
//! format (a table of `(name, offset, len)` plus data; see that crate).
//!
//! Files are read in place, one TFTP block at a time, straight into the outgoing packet;
//! nothing is copied into RAM.

use embedded_storage::ReadStorage;
use pocketpxe_bootimg::{ENTRY_LEN, Entry, Error as ImageError, HEADER_LEN, Header, crc32};
use pocketpxe_core::{FileStore, OpenError, Opened, SafePath};

/// An open file: where its bytes are in the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRef {
    offset: u32,
    len: u32,
}

/// A read-only store over an image in `F`.
#[derive(Debug)]
pub struct FlashStore<F> {
    storage: F,
    count: u32,
    bytes: u64,
}

impl<F: ReadStorage> FlashStore<F> {
    /// Checks the image at the start of `storage`: magic, table CRC, every entry in bounds.
    ///
    /// # Errors
    /// What is wrong with the image; [`ImageError::OutOfBounds`] also for a storage read error.
    pub fn new(mut storage: F) -> Result<Self, ImageError> {
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

    /// A store with no files (every request gets "file not found").
    pub fn empty(storage: F) -> Self {
        Self {
            storage,
            count: 0,
            bytes: 0,
        }
    }

    /// Number of files.
    pub fn files(&self) -> u32 {
        self.count
    }

    /// Total bytes of file data.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl<F: ReadStorage> FileStore for FlashStore<F> {
    type Handle = FileRef;
    type Error = ImageError;

    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<FileRef>, OpenError<ImageError>> {
        for i in 0..self.count {
            let raw = read_entry(&mut self.storage, i).map_err(OpenError::Io)?;
            let entry = Entry::parse(&raw).map_err(OpenError::Io)?;
            if path.matches(entry.name()) {
                return Ok(Opened {
                    handle: FileRef {
                        offset: entry.offset,
                        len: entry.len,
                    },
                    size: Some(u64::from(entry.len)),
                });
            }
        }
        Err(OpenError::NotFound)
    }

    fn read_at(&mut self, file: FileRef, offset: u64, buf: &mut [u8]) -> Result<usize, ImageError> {
        let start = offset.min(u64::from(file.len));
        let n = (buf.len() as u64).min(u64::from(file.len) - start) as usize;
        // In bounds: `new` checked offset + len against the capacity, which fits u32.
        let at = file.offset + start as u32;
        self.storage
            .read(at, &mut buf[..n])
            .map_err(|_| ImageError::OutOfBounds)?;
        Ok(n)
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
