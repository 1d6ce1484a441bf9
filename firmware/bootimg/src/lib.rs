//! The pocket boot server's boot-file image: a read-only directory of files in one blob, made
//! to be mapped into a microcontroller's address space (QEMU PSRAM, RP2040 XIP flash) and read
//! in place.
//!
//! ## Format (version 1, all integers little-endian)
//! ```text
//! offset 0   magic "PPXEIMG1"                      8 bytes
//!        8   count: number of entries              u32
//!        12  table_crc: CRC-32 (IEEE) of the table u32
//!        16  table: count entries of 64 bytes each
//!              name   56 bytes, UTF-8, '/'-separated, root-relative, NUL-padded (≤ 55 bytes)
//!              offset u32, from the start of the image
//!              len    u32
//!        ..  file data, each file starting on a 16-byte boundary
//! ```
//! The table CRC catches a missing or half-written image; file data is not checksummed (the
//! firmware reads it in place, block by block, and a full check of 16 MiB at boot would cost
//! seconds on a small MCU).
//!
//! Without the `std` feature this crate is `no_std` and only parses. With it (the default) it
//! also writes images ([`build_image`]) and UF2 files ([`uf2`]) for `mkbootimg`.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The first 8 bytes of every image.
pub const MAGIC: [u8; 8] = *b"PPXEIMG1";
/// Header length in bytes.
pub const HEADER_LEN: usize = 16;
/// Length of one table entry in bytes.
pub const ENTRY_LEN: usize = 64;
/// Bytes reserved for a name, including at least one NUL.
pub const NAME_LEN: usize = 56;
/// File data alignment.
pub const ALIGN: usize = 16;

/// The image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Number of table entries.
    pub count: u32,
    /// CRC-32 of the table.
    pub table_crc: u32,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of an image.
    ///
    /// # Errors
    /// [`Error::BadMagic`] if this is not an image.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, Error> {
        if bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        Ok(Self {
            count: u32_at(bytes, 8),
            table_crc: u32_at(bytes, 12),
        })
    }

    /// The header's bytes.
    pub fn emit(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&self.count.to_le_bytes());
        out[12..16].copy_from_slice(&self.table_crc.to_le_bytes());
        out
    }

    /// Length of the table in bytes.
    pub fn table_len(&self) -> usize {
        self.count as usize * ENTRY_LEN
    }
}

/// One table entry: a file's name and where its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    name: [u8; NAME_LEN],
    /// Offset of the file's first byte from the start of the image.
    pub offset: u32,
    /// The file's length.
    pub len: u32,
}

impl Entry {
    /// An entry for `name` (at most `NAME_LEN - 1` bytes, no NUL).
    ///
    /// # Errors
    /// [`Error::BadName`] if the name is empty, too long or contains NUL.
    pub fn new(name: &str, offset: u32, len: u32) -> Result<Self, Error> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= NAME_LEN || bytes.contains(&0) {
            return Err(Error::BadName);
        }
        let mut field = [0; NAME_LEN];
        field[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            name: field,
            offset,
            len,
        })
    }

    /// Parses one table entry.
    ///
    /// # Errors
    /// [`Error::BadName`] if the name is not NUL-terminated UTF-8.
    pub fn parse(bytes: &[u8; ENTRY_LEN]) -> Result<Self, Error> {
        let mut name = [0; NAME_LEN];
        name.copy_from_slice(&bytes[..NAME_LEN]);
        let entry = Self {
            name,
            offset: u32_at(bytes, NAME_LEN),
            len: u32_at(bytes, NAME_LEN + 4),
        };
        if !name.contains(&0) || core::str::from_utf8(entry.name_bytes()).is_err() {
            return Err(Error::BadName);
        }
        Ok(entry)
    }

    /// The entry's bytes.
    pub fn emit(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0; ENTRY_LEN];
        out[..NAME_LEN].copy_from_slice(&self.name);
        out[NAME_LEN..NAME_LEN + 4].copy_from_slice(&self.offset.to_le_bytes());
        out[NAME_LEN + 4..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// The name ('/'-separated, root-relative).
    pub fn name(&self) -> &str {
        core::str::from_utf8(self.name_bytes()).unwrap_or("")
    }

    /// One past the file's last byte, from the start of the image.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.len)
    }

    fn name_bytes(&self) -> &[u8] {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        &self.name[..end]
    }
}

/// What is wrong with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// It does not start with [`MAGIC`].
    BadMagic,
    /// The table does not match its CRC.
    TableCrc,
    /// A name is empty, too long, not UTF-8 or not NUL-terminated.
    BadName,
    /// An entry points outside the image's region.
    OutOfBounds,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadMagic => "no boot image (bad magic)",
            Self::TableCrc => "boot image table is corrupt (CRC mismatch)",
            Self::BadName => "boot image has a bad file name",
            Self::OutOfBounds => "boot image entry lies outside the image region",
        })
    }
}

impl core::error::Error for Error {}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`), fed in pieces: start with `0`, pass the
/// previous result back in.
pub fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(feature = "std")]
mod write;
#[cfg(feature = "std")]
pub use write::{build_image, collect_dir, uf2};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(0, b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xcbf4_3926);
    }

    #[test]
    fn image_round_trips() {
        let files = vec![
            ("pxelinux.cfg/default".to_string(), b"DEFAULT x\n".to_vec()),
            ("empty".to_string(), Vec::new()),
            ("pxelinux.0".to_string(), vec![7u8; 1000]),
        ];
        let image = build_image(&files).unwrap();
        let header = Header::parse(image[..HEADER_LEN].try_into().unwrap()).unwrap();
        assert_eq!(header.count, 3);
        let table = &image[HEADER_LEN..HEADER_LEN + header.table_len()];
        assert_eq!(crc32(0, table), header.table_crc);
        for (i, (name, data)) in files.iter().enumerate() {
            let raw = &table[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
            let entry = Entry::parse(raw.try_into().unwrap()).unwrap();
            assert_eq!(entry.name(), name);
            assert_eq!(entry.offset as usize % ALIGN, 0);
            assert_eq!(
                &image[entry.offset as usize..entry.end() as usize],
                &data[..]
            );
        }
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(Entry::new("", 0, 0), Err(Error::BadName));
        assert_eq!(Entry::new(&"a".repeat(56), 0, 0), Err(Error::BadName));
        assert!(Entry::new(&"a".repeat(55), 0, 0).is_ok());
        let mut raw = [b'a'; ENTRY_LEN];
        assert_eq!(Entry::parse(&raw), Err(Error::BadName));
        raw[3] = 0;
        assert_eq!(Entry::parse(&raw).unwrap().name(), "aaa");
        assert_eq!(
            Header::parse(&[0; HEADER_LEN]).unwrap_err(),
            Error::BadMagic
        );
    }

    #[test]
    fn uf2_blocks_are_well_formed() {
        let data = vec![0xabu8; 600];
        let out = uf2(&[(0x1010_0000, &data[..])], 0xe48b_ff56);
        assert_eq!(out.len(), 3 * 512);
        let block = &out[512..1024];
        assert_eq!(u32_at(block, 0), 0x0a32_4655);
        assert_eq!(u32_at(block, 12), 0x1010_0100);
        assert_eq!(u32_at(block, 20), 1);
        assert_eq!(u32_at(block, 24), 3);
        assert_eq!(u32_at(block, 28), 0xe48b_ff56);
        assert_eq!(u32_at(block, 508), 0x0ab1_6f30);
    }
}
