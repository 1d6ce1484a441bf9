//! TFTP wire format: RFC 1350 packets plus the OACK of RFC 2347.
//!
//! ```text
//!  RRQ/WRQ  | 01/02 | filename | 0 | mode | 0 | opt1 | 0 | value1 | 0 | ...
//!  DATA     | 03 | block | data (0..=blksize bytes)
//!  ACK      | 04 | block |
//!  ERROR    | 05 | code | message | 0 |
//!  OACK     | 06 | opt1 | 0 | value1 | 0 | ...
//! ```
//! [`Packet`] is a checked view; [`Repr`] is the parsed form, emitted into caller buffers.

use super::Error;
use core::fmt;
use core::fmt::Write as _;

/// Header length of DATA and ACK packets: opcode plus block number (RFC 1350 §5).
pub const HEADER_LEN: usize = 4;
/// The largest request RFC 2347 §2 allows (and the most we accept).
pub const MAX_REQUEST_LEN: usize = 512;
/// The block size when no `blksize` option is negotiated (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;

/// TFTP opcodes (RFC 1350 §5, RFC 2347 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Opcode {
    /// Read request.
    Rrq,
    /// Write request.
    Wrq,
    /// Data block.
    Data,
    /// Acknowledgement.
    Ack,
    /// Error.
    Error,
    /// Option acknowledgement (RFC 2347).
    Oack,
}

impl Opcode {
    /// The wire value.
    pub const fn code(self) -> u16 {
        match self {
            Self::Rrq => 1,
            Self::Wrq => 2,
            Self::Data => 3,
            Self::Ack => 4,
            Self::Error => 5,
            Self::Oack => 6,
        }
    }

    fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1 => Self::Rrq,
            2 => Self::Wrq,
            3 => Self::Data,
            4 => Self::Ack,
            5 => Self::Error,
            6 => Self::Oack,
            _ => return None,
        })
    }
}

/// TFTP error codes (RFC 1350 appendix, RFC 2347 §2 for code 8). Open: an unknown code is data
/// (STYLE.md R7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorCode {
    /// 0: not defined, see message.
    Undefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: option negotiation refused (RFC 2347).
    OptionNegotiation,
    /// Any other value.
    Unknown(u16),
}

impl ErrorCode {
    /// The wire value.
    pub const fn code(self) -> u16 {
        match self {
            Self::Undefined => 0,
            Self::FileNotFound => 1,
            Self::AccessViolation => 2,
            Self::DiskFull => 3,
            Self::IllegalOperation => 4,
            Self::UnknownTransferId => 5,
            Self::FileExists => 6,
            Self::NoSuchUser => 7,
            Self::OptionNegotiation => 8,
            Self::Unknown(code) => code,
        }
    }
}

impl From<u16> for ErrorCode {
    fn from(code: u16) -> Self {
        match code {
            0 => Self::Undefined,
            1 => Self::FileNotFound,
            2 => Self::AccessViolation,
            3 => Self::DiskFull,
            4 => Self::IllegalOperation,
            5 => Self::UnknownTransferId,
            6 => Self::FileExists,
            7 => Self::NoSuchUser,
            8 => Self::OptionNegotiation,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TFTP error {}", self.code())
    }
}

/// Transfer modes (RFC 1350 §1). Compared case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// `octet`: raw bytes.
    Octet,
    /// `netascii`: text with CR LF line ends.
    Netascii,
    /// `mail`: obsolete.
    Mail,
    /// Anything else.
    Unknown,
}

impl Mode {
    /// Classifies a mode string from a request.
    pub fn from_bytes(raw: &[u8]) -> Self {
        if raw.eq_ignore_ascii_case(b"octet") {
            Self::Octet
        } else if raw.eq_ignore_ascii_case(b"netascii") {
            Self::Netascii
        } else if raw.eq_ignore_ascii_case(b"mail") {
            Self::Mail
        } else {
            Self::Unknown
        }
    }
}

/// A checked view of a TFTP packet.
///
/// # Invariants
/// After [`Packet::new_checked`] the buffer holds a known opcode and, for DATA, ACK and ERROR,
/// the 4-byte header; no accessor can panic.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may then panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after checking its length and opcode.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::UnknownOpcode`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that accessors cannot panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::UnknownOpcode`].
    pub fn check_len(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        if bytes.len() < 2 {
            return Err(Error::Truncated);
        }
        let code = u16::from_be_bytes([bytes[0], bytes[1]]);
        let opcode = Opcode::from_code(code).ok_or(Error::UnknownOpcode { code })?;
        match opcode {
            Opcode::Data | Opcode::Ack | Opcode::Error if bytes.len() < HEADER_LEN => {
                Err(Error::Truncated)
            }
            _ => Ok(()),
        }
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        let bytes = self.buffer.as_ref();
        Opcode::from_code(u16::from_be_bytes([bytes[0], bytes[1]])).unwrap_or(Opcode::Error)
    }

    /// The block number (DATA, ACK) or error code (ERROR): bytes 2..4.
    pub fn block(&self) -> u16 {
        let bytes = self.buffer.as_ref();
        u16::from_be_bytes([bytes[2], bytes[3]])
    }

    /// Everything after the opcode (requests, OACK) .
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[2..]
    }

    /// Everything after the 4-byte header (DATA payload, ERROR message).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Consumes the view, giving back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// The options block of a request or OACK: NUL-terminated name/value pairs (RFC 2347 §2).
///
/// # Invariants
/// Holds an even number of NUL-terminated strings (checked by [`Options::new_checked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    raw: &'a [u8],
}

impl<'a> Options<'a> {
    /// No options.
    pub const EMPTY: Options<'static> = Options { raw: &[] };

    /// Checks a raw block of `name\0value\0` pairs.
    ///
    /// # Errors
    /// [`Error::Unterminated`] if a string lacks its NUL, [`Error::BadOption`] if a name has no
    /// value.
    pub fn new_checked(raw: &'a [u8]) -> Result<Self, Error> {
        if raw.last().is_some_and(|&b| b != 0) {
            return Err(Error::Unterminated);
        }
        if raw.iter().filter(|&&b| b == 0).count() % 2 != 0 {
            return Err(Error::BadOption { code: 0 });
        }
        Ok(Self { raw })
    }

    /// The raw bytes, NULs included.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether there are no options.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The `(name, value)` pairs in order, without their NULs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let mut strings = self.raw.split(|&b| b == 0);
        core::iter::from_fn(move || {
            let name = strings.next()?;
            let value = strings.next()?;
            Some((name, value))
        })
    }

    /// The value of option `name` (case-insensitive, RFC 2347 §2), if present.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

impl fmt::Display for Options<'_> {
    /// `name=value` pairs, space-separated, as [`WireText`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}={}", WireText(name), WireText(value))?;
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Options<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        for (name, value) in self.iter() {
            defmt::write!(f, "{=[u8]:a}={=[u8]:a} ", name, value);
        }
    }
}

/// Bytes from the wire shown as text: UTF-8 where valid (U+FFFD where not); tabs, line
/// breaks, quotes and backslashes escaped as in Rust strings, other control characters as
/// `\u{..}`, so that a name cannot forge a log line. (Written out rather than
/// `str::escape_debug`, whose Unicode tables would not fit a small board's flash.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireText<'a>(pub &'a [u8]);

impl fmt::Display for WireText<'_> {
    // Text goes out in runs through `write_str`, and only the bytes to escape one by one: a
    // small board logs these names, and decoding every character would cost it flash and time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        loop {
            match core::str::from_utf8(rest) {
                Ok(text) => return write_escaped(f, text),
                Err(e) => {
                    let valid = rest.get(..e.valid_up_to()).unwrap_or_default();
                    write_escaped(f, core::str::from_utf8(valid).unwrap_or_default())?;
                    f.write_char(char::REPLACEMENT_CHARACTER)?;
                    // `None`: an incomplete sequence at the end, one U+FFFD for all of it.
                    let bad = e.error_len().unwrap_or(rest.len());
                    rest = rest.get(e.valid_up_to() + bad..).unwrap_or_default();
                }
            }
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for WireText<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[u8]:a}", self.0);
    }
}

/// Writes `name\0value\0` pairs into a buffer, for OACKs and requests.
#[derive(Debug)]
pub struct OptionWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> OptionWriter<'b> {
    /// A writer filling `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends `name` with a decimal `value`.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the buffer is full; the writer is then unchanged.
    pub fn push_u64(&mut self, name: &str, value: u64) -> Result<(), Error> {
        // Digits from the right into a buffer that holds u64::MAX's 20 (rather than through
        // `core::fmt`, which would bring its `fmt::Write` plumbing to a small board).
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = value;
        while at > 0 {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.push(name.as_bytes(), digits.get(at..).unwrap_or_default())
    }

    /// Appends a raw `name` and `value`.
    ///
    /// # Errors
    /// [`Error::TooLong`] if the buffer is full, [`Error::BadValue`] if either holds a NUL; the
    /// writer is then unchanged.
    pub fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        if name.contains(&0) || value.contains(&0) {
            return Err(Error::BadValue);
        }
        let need = name.len() + value.len() + 2;
        let out = self
            .buf
            .get_mut(self.len..self.len + need)
            .ok_or(Error::TooLong)?;
        let (n, v) = out.split_at_mut(name.len() + 1);
        n[..name.len()].copy_from_slice(name);
        n[name.len()] = 0;
        v[..value.len()].copy_from_slice(value);
        v[value.len()] = 0;
        self.len += need;
        Ok(())
    }

    /// Bytes written so far.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A parsed TFTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// RRQ (RFC 1350 §5) with options (RFC 2347).
    ReadRequest {
        /// The file name as sent (not validated: see [`crate::SafePath`]).
        filename: &'a [u8],
        /// The mode string as sent.
        mode: &'a [u8],
        /// Requested options.
        options: Options<'a>,
    },
    /// WRQ (RFC 1350 §5) with options (RFC 2347).
    WriteRequest {
        /// The file name as sent.
        filename: &'a [u8],
        /// The mode string as sent.
        mode: &'a [u8],
        /// Requested options.
        options: Options<'a>,
    },
    /// DATA (RFC 1350 §5).
    Data {
        /// The block number on the wire (wraps after 65535).
        block: u16,
        /// The payload.
        data: &'a [u8],
    },
    /// ACK (RFC 1350 §5).
    Ack {
        /// The block number acknowledged.
        block: u16,
    },
    /// ERROR (RFC 1350 §5).
    Error {
        /// The error code.
        code: ErrorCode,
        /// The message, without its NUL (may be empty; some clients omit the NUL).
        message: &'a [u8],
    },
    /// OACK (RFC 2347 §2).
    OptionAck {
        /// The acknowledged options.
        options: Options<'a>,
    },
}

impl<'a> Repr<'a> {
    /// Parses a checked packet.
    ///
    /// # Errors
    /// [`Error::Unterminated`] for a request whose strings lack their NUL,
    /// [`Error::TooLong`] for a request over 512 bytes (RFC 2347 §2), [`Error::BadOption`] for
    /// a name without a value.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, Error> {
        let bytes: &'a [u8] = packet.buffer;
        let packet = Packet::new_checked(bytes)?;
        match packet.opcode() {
            opcode @ (Opcode::Rrq | Opcode::Wrq) => {
                if bytes.len() > MAX_REQUEST_LEN {
                    return Err(Error::TooLong);
                }
                let body = &bytes[2..];
                let (filename, rest) = split_cstr(body).ok_or(Error::Unterminated)?;
                let (mode, rest) = split_cstr(rest).ok_or(Error::Unterminated)?;
                let options = Options::new_checked(rest)?;
                Ok(if opcode == Opcode::Rrq {
                    Self::ReadRequest {
                        filename,
                        mode,
                        options,
                    }
                } else {
                    Self::WriteRequest {
                        filename,
                        mode,
                        options,
                    }
                })
            }
            Opcode::Data => Ok(Self::Data {
                block: packet.block(),
                data: &bytes[HEADER_LEN..],
            }),
            Opcode::Ack => Ok(Self::Ack {
                block: packet.block(),
            }),
            Opcode::Error => {
                let raw = &bytes[HEADER_LEN..];
                let message = split_cstr(raw).map_or(raw, |(m, _)| m);
                Ok(Self::Error {
                    code: ErrorCode::from(packet.block()),
                    message,
                })
            }
            Opcode::Oack => Ok(Self::OptionAck {
                options: Options::new_checked(&bytes[2..])?,
            }),
        }
    }

    /// Parses raw bytes: `Packet::new_checked` then [`Repr::parse`].
    ///
    /// # Errors
    /// As [`Packet::new_checked`] and [`Repr::parse`].
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// The opcode of this packet.
    pub const fn opcode(&self) -> Opcode {
        match self {
            Self::ReadRequest { .. } => Opcode::Rrq,
            Self::WriteRequest { .. } => Opcode::Wrq,
            Self::Data { .. } => Opcode::Data,
            Self::Ack { .. } => Opcode::Ack,
            Self::Error { .. } => Opcode::Error,
            Self::OptionAck { .. } => Opcode::Oack,
        }
    }

    /// How many bytes [`Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Self::ReadRequest {
                filename,
                mode,
                options,
            }
            | Self::WriteRequest {
                filename,
                mode,
                options,
            } => 2 + filename.len() + 1 + mode.len() + 1 + options.raw.len(),
            Self::Data { data, .. } => HEADER_LEN + data.len(),
            Self::Ack { .. } => HEADER_LEN,
            Self::Error { message, .. } => HEADER_LEN + message.len() + 1,
            Self::OptionAck { options } => 2 + options.raw.len(),
        }
    }

    /// Writes the packet into `buf`, returning the length written.
    ///
    /// # Errors
    /// [`Error::TooLong`] when `buf` is shorter than [`Repr::buffer_len`]; [`Error::BadValue`]
    /// when a string field holds a NUL. Nothing is promised about `buf` then.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::TooLong)?;
        out[..2].copy_from_slice(&self.opcode().code().to_be_bytes());
        match *self {
            Self::ReadRequest {
                filename,
                mode,
                options,
            }
            | Self::WriteRequest {
                filename,
                mode,
                options,
            } => {
                if filename.contains(&0) || mode.contains(&0) {
                    return Err(Error::BadValue);
                }
                let mut at = 2;
                for field in [filename, mode] {
                    out[at..at + field.len()].copy_from_slice(field);
                    out[at + field.len()] = 0;
                    at += field.len() + 1;
                }
                out[at..].copy_from_slice(options.raw);
            }
            Self::Data { block, data } => {
                out[2..4].copy_from_slice(&block.to_be_bytes());
                out[HEADER_LEN..].copy_from_slice(data);
            }
            Self::Ack { block } => out[2..4].copy_from_slice(&block.to_be_bytes()),
            Self::Error { code, message } => {
                if message.contains(&0) {
                    return Err(Error::BadValue);
                }
                out[2..4].copy_from_slice(&code.code().to_be_bytes());
                out[HEADER_LEN..len - 1].copy_from_slice(message);
                out[len - 1] = 0;
            }
            Self::OptionAck { options } => out[2..].copy_from_slice(options.raw),
        }
        Ok(len)
    }
}

/// Writes a DATA header for `block` into `buf[..4]`; the caller fills the payload after it.
///
/// # Errors
/// [`Error::TooLong`] if `buf` is shorter than 4 bytes.
pub fn emit_data_header(block: u16, buf: &mut [u8]) -> Result<(), Error> {
    let header = buf.get_mut(..HEADER_LEN).ok_or(Error::TooLong)?;
    header[..2].copy_from_slice(&Opcode::Data.code().to_be_bytes());
    header[2..].copy_from_slice(&block.to_be_bytes());
    Ok(())
}

/// Parses a decimal option value (RFC 2347 values are ASCII decimal), rejecting empty strings,
/// signs, non-digits and overflow.
pub fn parse_decimal(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 {
        return None;
    }
    raw.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

fn split_cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = bytes.iter().position(|&b| b == 0)?;
    Some((&bytes[..nul], &bytes[nul + 1..]))
}

/// Writes `text` as [`WireText`] shows it: tab, CR, LF, `\\` and `"` as Rust escapes, every
/// other control character (C0, DEL, C1) as `char::escape_unicode` does.
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let bytes = text.as_bytes();
    let (mut plain, mut at) = (0, 0);
    while let Some(&b) = bytes.get(at) {
        // Every escape starts at an ASCII byte or at 0xC2 (the lead byte of U+0080..=U+009F),
        // so `plain..at` is always on character boundaries.
        let (escape, code, len) = match (b, bytes.get(at + 1)) {
            (b'\t', _) => ("\\t", 0, 1),
            (b'\r', _) => ("\\r", 0, 1),
            (b'\n', _) => ("\\n", 0, 1),
            (b'\\', _) => ("\\\\", 0, 1),
            (b'"', _) => ("\\\"", 0, 1),
            (0..=0x1f | 0x7f, _) => ("", b, 1),
            (0xc2, Some(&c1 @ 0x80..=0x9f)) => ("", c1, 2),
            _ => {
                at += 1;
                continue;
            }
        };
        f.write_str(text.get(plain..at).unwrap_or_default())?;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            f.write_str("\\u{")?;
            if code >= 0x10 {
                f.write_char(char::from(HEX[usize::from(code >> 4)]))?;
            }
            f.write_char(char::from(HEX[usize::from(code & 0xf)]))?;
            f.write_char('}')?;
        } else {
            f.write_str(escape)?;
        }
        at += len;
        plain = at;
    }
    f.write_str(text.get(plain..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    // An RRQ as OVMF sends its tsize probe (captures/uefi-tftp.txt, first line).
    const OVMF_RRQ: &[u8] = b"\x00\x01debian-installer/amd64/bootnetx64.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00windowsize\x004\x00";

    #[test]
    fn deconstruct_request() {
        let packet = Packet::new_checked(OVMF_RRQ).unwrap();
        assert_eq!(packet.opcode(), Opcode::Rrq);
        assert!(packet.body().starts_with(b"debian-installer/"));
    }

    #[test]
    fn parse_request_with_options() {
        let repr = Repr::parse_bytes(OVMF_RRQ).unwrap();
        let Repr::ReadRequest {
            filename,
            mode,
            options,
        } = repr
        else {
            panic!("not an RRQ: {repr:?}");
        };
        assert_eq!(filename, b"debian-installer/amd64/bootnetx64.efi");
        assert_eq!(Mode::from_bytes(mode), Mode::Octet);
        assert_eq!(options.get("TSIZE"), Some(&b"0"[..]));
        assert_eq!(options.get("blksize"), Some(&b"1468"[..]));
        assert_eq!(options.get("windowsize"), Some(&b"4"[..]));
        assert_eq!(options.get("timeout"), None);
        assert_eq!(options.iter().count(), 3);
    }

    #[test]
    fn emit_request_gives_same_bytes() {
        let repr = Repr::parse_bytes(OVMF_RRQ).unwrap();
        let mut buf = [0u8; 128];
        let len = repr.emit(&mut buf).unwrap();
        assert_eq!(len, repr.buffer_len());
        assert_eq!(&buf[..len], OVMF_RRQ);
    }

    #[test]
    fn construct_oack_with_writer() {
        let mut opts = [0u8; 64];
        let mut writer = OptionWriter::new(&mut opts);
        writer.push_u64("tsize", 1_048_504).unwrap();
        writer.push_u64("blksize", 1468).unwrap();
        let len = writer.len();
        let repr = Repr::OptionAck {
            options: Options::new_checked(&opts[..len]).unwrap(),
        };
        let mut buf = [0u8; 64];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"\x00\x06tsize\x001048504\x00blksize\x001468\x00"
        );
    }

    #[test]
    fn data_ack_error_round_trip() {
        let mut buf = [0u8; 600];
        for repr in [
            Repr::Data {
                block: 65535,
                data: b"abc",
            },
            Repr::Data {
                block: 0,
                data: b"",
            },
            Repr::Ack { block: 7 },
            Repr::Error {
                code: ErrorCode::FileNotFound,
                message: b"file not found",
            },
            Repr::Error {
                code: ErrorCode::Unknown(99),
                message: b"",
            },
        ] {
            let n = repr.emit(&mut buf).unwrap();
            assert_eq!(Repr::parse_bytes(&buf[..n]).unwrap(), repr);
        }
        assert_eq!(
            Repr::parse_bytes(b"\x00\x03\x01\x02xyz").unwrap(),
            Repr::Data {
                block: 0x0102,
                data: b"xyz"
            }
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(Repr::parse_bytes(b""), Err(Error::Truncated));
        assert_eq!(Repr::parse_bytes(b"\x00"), Err(Error::Truncated));
        assert_eq!(Repr::parse_bytes(b"\x00\x04\x00"), Err(Error::Truncated));
        assert_eq!(
            Repr::parse_bytes(b"\x00\x09"),
            Err(Error::UnknownOpcode { code: 9 })
        );
        assert_eq!(Repr::parse_bytes(b"\x00\x01file"), Err(Error::Unterminated));
        assert_eq!(
            Repr::parse_bytes(b"\x00\x01file\x00octet"),
            Err(Error::Unterminated)
        );
        assert_eq!(
            Repr::parse_bytes(b"\x00\x01file\x00octet\x00blksize\x00"),
            Err(Error::BadOption { code: 0 })
        );
        let mut long = [b'a'; 600];
        long[..2].copy_from_slice(b"\x00\x01");
        long[598] = 0;
        long[599] = 0;
        assert_eq!(Repr::parse_bytes(&long), Err(Error::TooLong));
        // An ERROR without its NUL is accepted: the message is what is there.
        assert_eq!(
            Repr::parse_bytes(b"\x00\x05\x00\x08abort").unwrap(),
            Repr::Error {
                code: ErrorCode::OptionNegotiation,
                message: b"abort"
            }
        );
    }

    #[test]
    fn emit_into_short_buffer_is_an_error() {
        let mut buf = [0u8; 3];
        assert_eq!(Repr::Ack { block: 1 }.emit(&mut buf), Err(Error::TooLong));
        assert_eq!(emit_data_header(1, &mut buf), Err(Error::TooLong));
        let mut opts = [0u8; 8];
        let mut writer = OptionWriter::new(&mut opts);
        assert_eq!(writer.push_u64("blksize", 1468), Err(Error::TooLong));
        assert!(writer.is_empty());
    }

    #[test]
    fn decimal_values() {
        assert_eq!(parse_decimal(b"1468"), Some(1468));
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b"12a"), None);
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        let mut buf = [0u8; 64];
        let mut writer = OptionWriter::new(&mut buf);
        writer.push_u64("tsize", u64::MAX).unwrap();
        writer.push_u64("timeout", 0).unwrap();
        let len = writer.len();
        assert_eq!(
            &buf[..len],
            b"tsize\x0018446744073709551615\x00timeout\x000\x00"
        );
    }

    #[test]
    fn options_and_names_display_escaped() {
        let opts = Options::new_checked(b"blksize\x001468\x00a\nb\x00\xff\x00").unwrap();
        assert_eq!(std::format!("{opts}"), "blksize=1468 a\\nb=\u{fffd}");
        assert_eq!(
            std::format!("{}", WireText(b"pxe\"lin\x07ux")),
            "pxe\\\"lin\\u{7}ux"
        );
    }

    #[test]
    fn wire_text_escapes_every_control_character_and_replaces_bad_utf8() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"a\tb\r\n\\", "a\\tb\\r\\n\\\\"),
            (b"\x00\x1b\x7f", "\\u{0}\\u{1b}\\u{7f}"),
            (
                "\u{85}\u{9f}\u{a0}é…€".as_bytes(),
                "\\u{85}\\u{9f}\u{a0}é…€",
            ),
            (b"x\xffy\xc3", "x\u{fffd}y\u{fffd}"),
            (b"\xf0\x9f\xff\xc2", "\u{fffd}\u{fffd}\u{fffd}"),
            (b"\"q\"", "\\\"q\\\""),
        ];
        for (bytes, shown) in cases {
            assert_eq!(std::format!("{}", WireText(bytes)), shown, "{bytes:?}");
        }
        // Every control character as `escape_unicode`; every other character as itself.
        for c in ('\0'..='\u{2ff}').chain(['\u{2028}', '\u{feff}', '\u{10ffff}']) {
            let mut buf = [0u8; 4];
            let shown = std::format!("{}", WireText(c.encode_utf8(&mut buf).as_bytes()));
            let expected = match c {
                '\t' | '\r' | '\n' | '\\' | '"' => c.escape_debug().to_string(),
                c if c.is_control() => c.escape_unicode().to_string(),
                c => c.to_string(),
            };
            assert_eq!(shown, expected, "{c:?}");
        }
        // Invalid UTF-8 as `from_utf8_lossy` shows it.
        for bytes in [
            &b"\xe2\x82"[..],
            b"a\xe2\x82b",
            b"\xed\xa0\x80",
            b"\xc0\xaf",
        ] {
            let shown = std::format!("{}", WireText(bytes));
            assert_eq!(shown, String::from_utf8_lossy(bytes), "{bytes:?}");
        }
    }
}
