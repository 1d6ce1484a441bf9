//! [`OptionWriter`]: emits options, splitting long values (RFC 3396 §6).

use core::net::Ipv4Addr;

use super::code;
use crate::wire::Error;

/// Writes options into a buffer, splitting values longer than 255 bytes into consecutive TLVs
/// of the same code (RFC 3396 §6). Never writes option 52 (overload).
#[derive(Debug)]
pub struct OptionWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> OptionWriter<'b> {
    /// A writer over `buf` (the area after the magic cookie).
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Writes option `code` with value `data`, split into TLVs of at most 255 bytes.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the buffer is too small; what was written stays written.
    pub fn put(&mut self, code: u8, data: &[u8]) -> Result<(), Error> {
        self.put_parts(code, core::iter::once(data))
    }

    /// Writes option `code` with a value given as pieces (e.g. [`OptionBytes::parts`](super::OptionBytes::parts)).
    ///
    /// # Errors
    /// [`Error::TooLong`] if the buffer is too small.
    pub fn put_parts<'d>(
        &mut self,
        code: u8,
        parts: impl Iterator<Item = &'d [u8]> + Clone,
    ) -> Result<(), Error> {
        let total: usize = parts.clone().map(<[u8]>::len).sum();
        let mut bytes = parts.flat_map(|p| p.iter().copied());
        let mut left = total;
        loop {
            let chunk = left.min(255);
            let header = self
                .buf
                .get_mut(self.pos..self.pos + 2)
                .ok_or(Error::TooLong)?;
            header.copy_from_slice(&[code, chunk as u8]);
            let body = self
                .buf
                .get_mut(self.pos + 2..self.pos + 2 + chunk)
                .ok_or(Error::TooLong)?;
            for slot in body.iter_mut() {
                *slot = bytes.next().unwrap_or(0);
            }
            self.pos += 2 + chunk;
            left -= chunk;
            if left == 0 {
                return Ok(());
            }
        }
    }

    /// Writes an IPv4 address option.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the buffer is too small.
    pub fn put_addr(&mut self, code: u8, addr: Ipv4Addr) -> Result<(), Error> {
        self.put(code, &addr.octets())
    }

    /// Writes the End option and zero-fills the rest of the buffer; returns the bytes used
    /// (including End).
    ///
    /// # Errors
    /// [`Error::TooLong`] if there is no room for End.
    pub fn finish(self) -> Result<usize, Error> {
        let end = self.buf.get_mut(self.pos).ok_or(Error::TooLong)?;
        *end = code::END;
        let used = self.pos + 1;
        for b in self.buf.iter_mut().skip(used) {
            *b = 0;
        }
        Ok(used)
    }
}

/// The encoded size of an option value of `len` bytes, including the extra headers of an RFC 3396
/// split.
pub const fn encoded_len(len: usize) -> usize {
    let tlvs = if len == 0 { 1 } else { len.div_ceil(255) };
    len + 2 * tlvs
}
