//! Writing images and UF2 files (host side, `std`).

use std::io;
use std::path::Path;

use crate::{ALIGN, ENTRY_LEN, Entry, Error, HEADER_LEN, Header, crc32};

/// Builds an image from `(name, bytes)` pairs, in the order given.
///
/// # Errors
/// [`Error::BadName`] for a name the format cannot hold, [`Error::OutOfBounds`] if the image
/// would exceed 4 GiB.
pub fn build_image(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, Error> {
    let count = u32::try_from(files.len()).map_err(|_| Error::OutOfBounds)?;
    let mut data_at = align(HEADER_LEN + files.len() * ENTRY_LEN);
    let mut table = Vec::with_capacity(files.len() * ENTRY_LEN);
    for (name, bytes) in files {
        let offset = u32::try_from(data_at).map_err(|_| Error::OutOfBounds)?;
        let len = u32::try_from(bytes.len()).map_err(|_| Error::OutOfBounds)?;
        table.extend_from_slice(&Entry::new(name, offset, len)?.emit());
        data_at = align(data_at + bytes.len());
    }
    let header = Header {
        count,
        table_crc: crc32(0, &table),
    };
    let mut image = Vec::with_capacity(data_at);
    image.extend_from_slice(&header.emit());
    image.extend_from_slice(&table);
    for (_, bytes) in files {
        image.resize(align(image.len()), 0);
        image.extend_from_slice(bytes);
    }
    Ok(image)
}

/// Reads every regular file under `dir` (following symlinks), named by its path relative to
/// `dir` with '/' separators, sorted by name.
///
/// # Errors
/// The I/O error, or `InvalidData` for a name that is not UTF-8.
pub fn collect_dir(dir: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// UF2 blocks (Microsoft's USB flashing format) carrying `segments` of `(address, bytes)`,
/// 256 payload bytes per block, for the board family `family` (RP2040: `0xe48bff56`).
pub fn uf2(segments: &[(u32, &[u8])], family: u32) -> Vec<u8> {
    let chunks: Vec<(u32, &[u8])> = segments
        .iter()
        .flat_map(|&(addr, bytes)| {
            bytes
                .chunks(256)
                .enumerate()
                .map(move |(i, chunk)| (addr + (i * 256) as u32, chunk))
        })
        .collect();
    let total = chunks.len() as u32;
    let mut out = Vec::with_capacity(chunks.len() * 512);
    for (index, (addr, chunk)) in chunks.into_iter().enumerate() {
        let mut block = [0u8; 512];
        let words = [
            0x0a32_4655,
            0x9e5d_5157,
            0x0000_2000, // flag: family id present
            addr,
            256,
            index as u32,
            total,
            family,
        ];
        for (i, w) in words.iter().enumerate() {
            block[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        block[32..32 + chunk.len()].copy_from_slice(chunk);
        block[508..].copy_from_slice(&0x0ab1_6f30u32.to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

fn walk(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().into_string().map_err(|n| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{n:?} is not UTF-8"))
        })?;
        let path = entry.path();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(&path, &rel, files)?;
        } else if meta.is_file() {
            files.push((rel, std::fs::read(&path)?));
        }
    }
    Ok(())
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}
