//! DHCP options: the TLV area after the magic cookie (RFC 2132 §2), long options split over
//! several TLVs (RFC 3396), option overload into `file`/`sname` (RFC 2132 §9.3, parse only), and
//! the PXE option values (RFC 4578, RFC 3004).
//!
//! Everything here is a zero-copy view over packet bytes. [`Options`] walks the option areas of
//! one packet in RFC 3396 order (options field, then `file`, then `sname` when option 52 says
//! they are overloaded). [`OptionBytes`] is one option's full value, which may be split over
//! several TLVs; read it with [`OptionBytes::parts`] or [`OptionBytes::copy_into`].
//! [`OptionWriter`] emits options and splits values longer than 255 bytes (RFC 3396 §6).

use core::net::Ipv4Addr;

use super::Error;

/// One option TLV as it appears on the wire (RFC 2132 §2): its code and its data.
///
/// A long option may appear as several `DhcpOption`s with the same code (RFC 3396 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DhcpOption<'a> {
    /// The option code.
    pub code: u8,
    /// The option data (without code and length).
    pub data: &'a [u8],
}

/// The option areas of one packet, walked in RFC 3396 order.
///
/// Without overload this is just the options field. With option 52 (RFC 2132 §9.3) in the
/// options field, the `file` field and/or the `sname` field hold further options, each area
/// ending with its own End option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Options<'a> {
    main: &'a [u8],
    file: &'a [u8],
    sname: &'a [u8],
}

impl<'a> Options<'a> {
    /// A view over a plain option area (no overload).
    pub const fn new(main: &'a [u8]) -> Self {
        Self {
            main,
            file: &[],
            sname: &[],
        }
    }

    /// A view over a packet's option areas: `main` (after the magic cookie), and the `file` and
    /// `sname` fields, which are only read as options if `main` holds option 52 saying so
    /// (RFC 2132 §9.3).
    pub fn with_overload(main: &'a [u8], file: &'a [u8], sname: &'a [u8]) -> Self {
        let overload = OptionIter::new(main)
            .map_while(Result::ok)
            .find(|o| o.code == code::OVERLOAD)
            .and_then(|o| o.data.first().copied())
            .unwrap_or(0);
        Self {
            main,
            file: if overload & 1 != 0 { file } else { &[] },
            sname: if overload & 2 != 0 { sname } else { &[] },
        }
    }

    /// Whether the `file` field holds options rather than a file name.
    pub fn file_overloaded(&self) -> bool {
        !self.file.is_empty()
    }

    /// Whether the `sname` field holds options rather than a server name.
    pub fn sname_overloaded(&self) -> bool {
        !self.sname.is_empty()
    }

    /// Iterates every TLV in every area, skipping Pad. Yields one `Err` and stops at a TLV whose
    /// length runs past the end of its area.
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter {
            areas: [self.main, self.file, self.sname],
            area: 0,
            pos: 0,
            failed: false,
        }
    }

    /// The full value of option `code`, concatenated over all its TLVs (RFC 3396).
    ///
    /// # Errors
    /// [`Error::BadOption`] if the option area is malformed.
    pub fn get(&self, code: u8) -> Result<Option<OptionBytes<'a>>, Error> {
        let mut found: Option<OptionBytes<'a>> = None;
        for opt in self.iter() {
            let opt = opt?;
            if opt.code == code {
                found = Some(match found {
                    None => OptionBytes::new(opt.data),
                    Some(_) => OptionBytes::split(*self, code),
                });
            }
        }
        Ok(found)
    }
}

/// Iterator over the TLVs of [`Options`]. Pad (0) is skipped; End (255) ends an area.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    areas: [&'a [u8]; 3],
    area: usize,
    pos: usize,
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Iterates one plain option area.
    pub fn new(area: &'a [u8]) -> Self {
        Options::new(area).iter()
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<DhcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let area = *self.areas.get(self.area)?;
            let rest = area.get(self.pos..).unwrap_or(&[]);
            let Some((&code, rest)) = rest.split_first() else {
                // Area exhausted without an End option: tolerated (many clients pad instead).
                self.next_area();
                continue;
            };
            match code {
                code::PAD => {
                    self.pos += 1;
                }
                code::END => {
                    self.next_area();
                }
                _ => {
                    let Some((&len, rest)) = rest.split_first() else {
                        self.failed = true;
                        return Some(Err(Error::BadOption { code }));
                    };
                    let Some(data) = rest.get(..usize::from(len)) else {
                        self.failed = true;
                        return Some(Err(Error::BadOption { code }));
                    };
                    self.pos += 2 + usize::from(len);
                    return Some(Ok(DhcpOption { code, data }));
                }
            }
        }
    }
}

impl OptionIter<'_> {
    fn next_area(&mut self) {
        self.area += 1;
        self.pos = 0;
    }
}

/// The full value of one option, which may be split over several TLVs (RFC 3396 §6).
///
/// Compares by content, so a split value equals the same bytes held contiguously.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionBytes<'a>(Inner<'a>);

#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Inner<'a> {
    Contiguous(&'a [u8]),
    Split { options: Options<'a>, code: u8 },
}

impl<'a> OptionBytes<'a> {
    /// A value held in one piece (what a server builds for emission).
    pub const fn new(data: &'a [u8]) -> Self {
        Self(Inner::Contiguous(data))
    }

    /// A value made of every TLV with `code` in `options`, concatenated (RFC 3396 §6).
    pub const fn split(options: Options<'a>, code: u8) -> Self {
        Self(Inner::Split { options, code })
    }

    /// The value's pieces, in order. A contiguous value yields one piece.
    pub fn parts(&self) -> Parts<'a> {
        match self.0 {
            Inner::Contiguous(data) => Parts {
                single: Some(data),
                iter: None,
                code: 0,
            },
            Inner::Split { options, code } => Parts {
                single: None,
                iter: Some(options.iter()),
                code,
            },
        }
    }

    /// The value as one slice, if it is held in one piece.
    pub fn as_contiguous(&self) -> Option<&'a [u8]> {
        match self.0 {
            Inner::Contiguous(data) => Some(data),
            Inner::Split { .. } => None,
        }
    }

    /// The value's total length in bytes.
    pub fn len(&self) -> usize {
        self.parts().map(<[u8]>::len).sum()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes one by one (across pieces).
    pub fn bytes(&self) -> impl Iterator<Item = u8> + use<'a> {
        self.parts().flat_map(|p| p.iter().copied())
    }

    /// Copies the whole value into `buf` and returns the filled part.
    ///
    /// # Errors
    /// [`Error::TooLong`] if `buf` is shorter than [`len`](Self::len).
    pub fn copy_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
        let mut at = 0;
        for part in self.parts() {
            let end = at + part.len();
            buf.get_mut(at..end)
                .ok_or(Error::TooLong)?
                .copy_from_slice(part);
            at = end;
        }
        Ok(buf.get(..at).unwrap_or(&[]))
    }

    /// Whether the value begins with `prefix` (used for option 60 `PXEClient`, matched by prefix
    /// as PXE spec 2.1 §2.2 and UEFI HTTP boot require).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        let mut bytes = self.bytes();
        prefix.iter().all(|p| bytes.next() == Some(*p))
    }

    /// Whether the value contains byte `b` (used for the parameter request list, option 55).
    pub fn contains(&self, b: u8) -> bool {
        self.bytes().any(|x| x == b)
    }
}

impl PartialEq for OptionBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

impl Eq for OptionBytes<'_> {}

/// The pieces of an [`OptionBytes`]; see [`OptionBytes::parts`].
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    single: Option<&'a [u8]>,
    iter: Option<OptionIter<'a>>,
    code: u8,
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(single) = self.single.take() {
            return Some(single);
        }
        let iter = self.iter.as_mut()?;
        // Errors cannot occur on a value from a parsed packet; stop quietly if they do.
        iter.map_while(Result::ok)
            .find(|o| o.code == self.code)
            .map(|o| o.data)
    }
}

/// A list of IPv4 addresses (options 3, 6): either wire bytes or caller-supplied addresses.
///
/// Compares by content.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddrList<'a> {
    /// As parsed from the wire (length a multiple of 4, checked by the parser).
    Wire(OptionBytes<'a>),
    /// Supplied by the caller for emission.
    Addrs(&'a [Ipv4Addr]),
}

impl<'a> AddrList<'a> {
    /// Caller-supplied lists ([`AddrList::Addrs`]) are emitted up to this many addresses.
    pub const MAX_ADDRS: usize = 63;

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + use<'a> {
        let (wire, addrs) = match *self {
            Self::Wire(b) => (Some(b), &[][..]),
            Self::Addrs(a) => (None, a),
        };
        let mut bytes = wire.into_iter().flat_map(|b| b.bytes());
        let from_wire = core::iter::from_fn(move || {
            Some(Ipv4Addr::new(
                bytes.next()?,
                bytes.next()?,
                bytes.next()?,
                bytes.next()?,
            ))
        });
        from_wire.chain(addrs.iter().copied())
    }

    /// The encoded length in bytes: the wire bytes, or 4 per address up to
    /// [`MAX_ADDRS`](Self::MAX_ADDRS).
    pub fn byte_len(&self) -> usize {
        match self {
            Self::Wire(b) => b.len(),
            Self::Addrs(a) => a.len().min(Self::MAX_ADDRS) * 4,
        }
    }
}

impl PartialEq for AddrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for AddrList<'_> {}

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

    /// Writes option `code` with a value given as pieces (e.g. [`OptionBytes::parts`]).
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

/// Client system architecture, option 93 (RFC 4578 §2.1, IANA "Processor Architecture Types").
///
/// Open enum (STYLE.md R7): unknown codes are kept as [`Arch::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Arch {
    /// 0: x86 BIOS.
    BiosX86,
    /// 6: x86 (IA32) UEFI.
    EfiIa32,
    /// 7: x64 UEFI.
    EfiX64,
    /// 9: EFI byte code per RFC 4578, but sent by x64 UEFI firmware in the wild (errata 4624).
    EfiBc,
    /// 10: ARM 32-bit UEFI.
    EfiArm32,
    /// 11: ARM 64-bit UEFI.
    EfiArm64,
    /// 15: x86 UEFI HTTP boot.
    EfiIa32Http,
    /// 16: x64 UEFI HTTP boot.
    EfiX64Http,
    /// 18: ARM 32-bit UEFI HTTP boot.
    EfiArm32Http,
    /// 19: ARM 64-bit UEFI HTTP boot.
    EfiArm64Http,
    /// 20: x86 BIOS HTTP boot.
    BiosX86Http,
    /// 41: Raspberry Pi boot ROM.
    RaspberryPi,
    /// Any other code.
    Unknown(u16),
}

impl From<u16> for Arch {
    fn from(code: u16) -> Self {
        match code {
            0 => Self::BiosX86,
            6 => Self::EfiIa32,
            7 => Self::EfiX64,
            9 => Self::EfiBc,
            10 => Self::EfiArm32,
            11 => Self::EfiArm64,
            15 => Self::EfiIa32Http,
            16 => Self::EfiX64Http,
            18 => Self::EfiArm32Http,
            19 => Self::EfiArm64Http,
            20 => Self::BiosX86Http,
            41 => Self::RaspberryPi,
            other => Self::Unknown(other),
        }
    }
}

impl From<Arch> for u16 {
    fn from(arch: Arch) -> Self {
        match arch {
            Arch::BiosX86 => 0,
            Arch::EfiIa32 => 6,
            Arch::EfiX64 => 7,
            Arch::EfiBc => 9,
            Arch::EfiArm32 => 10,
            Arch::EfiArm64 => 11,
            Arch::EfiIa32Http => 15,
            Arch::EfiX64Http => 16,
            Arch::EfiArm32Http => 18,
            Arch::EfiArm64Http => 19,
            Arch::BiosX86Http => 20,
            Arch::RaspberryPi => 41,
            Arch::Unknown(code) => code,
        }
    }
}

/// The architectures listed in an option 93 value, in the client's order of preference
/// (RFC 4578 §2.1). A trailing odd byte is ignored.
pub fn arches<'a>(value: &OptionBytes<'a>) -> impl Iterator<Item = Arch> + use<'a> {
    let mut bytes = value.bytes();
    core::iter::from_fn(move || {
        let hi = bytes.next()?;
        let lo = bytes.next()?;
        Some(Arch::from(u16::from_be_bytes([hi, lo])))
    })
}

/// Whether an option 77 value (RFC 3004 §4) names `class`: either the raw bytes (what iPXE
/// sends: `iPXE` without framing) or an RFC 3004 list of length-prefixed class names.
pub fn user_class_contains(value: &OptionBytes<'_>, class: &[u8]) -> bool {
    if value.len() == class.len() && value.bytes().eq(class.iter().copied()) {
        return true;
    }
    // RFC 3004 framing: UC_Len_i, User_Class_Data_i, ...
    let mut bytes = value.bytes();
    while let Some(len) = bytes.next() {
        let len = usize::from(len);
        let mut matched = len == class.len();
        for i in 0..len {
            let Some(b) = bytes.next() else {
                return false;
            };
            matched &= class.get(i) == Some(&b);
        }
        if matched {
            return true;
        }
    }
    false
}

/// Option codes used by pocketpxe (RFC 2132, RFC 4578, RFC 3004, PXE spec 2.1).
pub mod code {
    /// Pad (RFC 2132 §3.1).
    pub const PAD: u8 = 0;
    /// Subnet mask (RFC 2132 §3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Router (RFC 2132 §3.5).
    pub const ROUTER: u8 = 3;
    /// Domain name servers (RFC 2132 §3.8).
    pub const DNS_SERVERS: u8 = 6;
    /// Broadcast address (RFC 2132 §5.3).
    pub const BROADCAST_ADDRESS: u8 = 28;
    /// Vendor-specific information; PXE uses it encapsulated (RFC 2132 §8.4, PXE spec §2.4).
    pub const VENDOR_SPECIFIC: u8 = 43;
    /// Requested IP address (RFC 2132 §9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// IP address lease time (RFC 2132 §9.2).
    pub const LEASE_TIME: u8 = 51;
    /// Option overload (RFC 2132 §9.3). Parsed, never emitted.
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type (RFC 2132 §9.6).
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier (RFC 2132 §9.7).
    pub const SERVER_IDENTIFIER: u8 = 54;
    /// Parameter request list (RFC 2132 §9.8).
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Message (RFC 2132 §9.9).
    pub const MESSAGE: u8 = 56;
    /// Maximum DHCP message size (RFC 2132 §9.10).
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) time (RFC 2132 §9.11).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time (RFC 2132 §9.12).
    pub const REBINDING_TIME: u8 = 59;
    /// Vendor class identifier, `PXEClient...` / `HTTPClient...` (RFC 2132 §9.13).
    pub const VENDOR_CLASS_ID: u8 = 60;
    /// Client identifier (RFC 2132 §9.14).
    pub const CLIENT_IDENTIFIER: u8 = 61;
    /// TFTP server name (RFC 2132 §9.4).
    pub const TFTP_SERVER_NAME: u8 = 66;
    /// Bootfile name (RFC 2132 §9.5).
    pub const BOOTFILE_NAME: u8 = 67;
    /// User class (RFC 3004 §4); iPXE sends `iPXE` unframed.
    pub const USER_CLASS: u8 = 77;
    /// Client system architecture (RFC 4578 §2.1).
    pub const CLIENT_ARCH: u8 = 93;
    /// Client network device interface (RFC 4578 §2.2).
    pub const CLIENT_NDI: u8 = 94;
    /// Client machine identifier / UUID (RFC 4578 §2.3).
    pub const CLIENT_UUID: u8 = 97;
    /// iPXE encapsulated options (iPXE's feature list); its presence marks an iPXE client.
    pub const IPXE_ENCAP: u8 = 175;
    /// End (RFC 2132 §3.2).
    pub const END: u8 = 255;
}

#[cfg(test)]
mod tests {
    use super::*;

    // Options of the iPXE BIOS DISCOVER in captures/bios-dhcp.pcap, packet [1] (shortened: 53,
    // 57, 93, 60 and 77, then End).
    static BIOS_OPTIONS: &[u8] = &[
        0x35, 0x01, 0x01, // 53 DISCOVER
        0x39, 0x02, 0x05, 0xc0, // 57 = 1472
        0x5d, 0x02, 0x00, 0x00, // 93 = BIOS
        0x3c, 0x20, b'P', b'X', b'E', b'C', b'l', b'i', b'e', b'n', b't', b':', b'A', b'r', b'c',
        b'h', b':', b'0', b'0', b'0', b'0', b'0', b':', b'U', b'N', b'D', b'I', b':', b'0', b'0',
        b'2', b'0', b'0', b'1', // 60
        0x4d, 0x04, b'i', b'P', b'X', b'E', // 77
        0xff,
    ];

    #[test]
    fn iterates_captured_options() {
        let codes: Vec<u8> = OptionIter::new(BIOS_OPTIONS)
            .map(|o| o.unwrap().code)
            .collect();
        assert_eq!(codes, [53, 57, 93, 60, 77]);
        let opts = Options::new(BIOS_OPTIONS);
        let vc = opts.get(code::VENDOR_CLASS_ID).unwrap().unwrap();
        assert!(vc.starts_with(b"PXEClient"));
        assert!(!vc.starts_with(b"HTTPClient"));
        let uc = opts.get(code::USER_CLASS).unwrap().unwrap();
        assert!(user_class_contains(&uc, b"iPXE"));
        let arch = opts.get(code::CLIENT_ARCH).unwrap().unwrap();
        assert_eq!(arches(&arch).collect::<Vec<_>>(), [Arch::BiosX86]);
        assert_eq!(opts.get(code::ROUTER).unwrap(), None);
    }

    #[test]
    fn pad_skipped_end_stops_missing_end_tolerated() {
        let area = [0, 0, 53, 1, 3, 0, 255, 54, 4, 1, 2, 3, 4];
        let all: Vec<_> = OptionIter::new(&area).collect();
        assert_eq!(
            all,
            [Ok(DhcpOption {
                code: 53,
                data: &[3]
            })]
        );
        let no_end = [53, 1, 3];
        assert_eq!(OptionIter::new(&no_end).count(), 1);
    }

    #[test]
    fn truncated_option_is_an_error_and_fuses() {
        for area in [&[53u8][..], &[53, 2, 1][..], &[60, 10, b'P'][..]] {
            let mut it = OptionIter::new(area);
            assert_eq!(
                it.next(),
                Some(Err(Error::BadOption { code: area[0] })),
                "{area:?}"
            );
            assert_eq!(it.next(), None);
        }
    }

    #[test]
    fn rfc3396_split_value_concatenates() {
        // Option 43 split in two TLVs around another option.
        let area = [43, 2, 6, 1, 53, 1, 1, 43, 2, 8, 255, 255];
        let opts = Options::new(&area);
        let v = opts.get(43).unwrap().unwrap();
        assert_eq!(v.as_contiguous(), None);
        assert_eq!(v.len(), 4);
        let mut buf = [0u8; 8];
        assert_eq!(v.copy_into(&mut buf).unwrap(), &[6, 1, 8, 255]);
        assert_eq!(v, OptionBytes::new(&[6, 1, 8, 255]));
        assert_eq!(v.parts().collect::<Vec<_>>(), [&[6, 1][..], &[8, 255][..]]);
        assert_eq!(v.copy_into(&mut [0u8; 3]), Err(Error::TooLong));
    }

    #[test]
    fn overload_areas_are_walked_in_order() {
        let main = [52, 1, 3, 60, 1, b'a', 255];
        let mut file = [0u8; 128];
        file[..5].copy_from_slice(&[60, 2, b'b', b'c', 255]);
        let mut sname = [0u8; 64];
        sname[..4].copy_from_slice(&[77, 1, b'x', 255]);
        let opts = Options::with_overload(&main, &file, &sname);
        assert!(opts.file_overloaded() && opts.sname_overloaded());
        let vc = opts.get(60).unwrap().unwrap();
        assert_eq!(vc.bytes().collect::<Vec<_>>(), b"abc");
        assert!(opts.get(77).unwrap().is_some());
        // Without 52 the fields are not options.
        let opts = Options::with_overload(&main[3..], &file, &sname);
        assert!(!opts.file_overloaded());
        assert!(opts.get(77).unwrap().is_none());
    }

    #[test]
    fn writer_splits_long_values() {
        let value = [7u8; 300];
        let mut buf = [0xaau8; 320];
        let mut w = OptionWriter::new(&mut buf);
        w.put(43, &value).unwrap();
        assert_eq!(w.len(), encoded_len(300));
        let used = w.finish().unwrap();
        assert_eq!(used, 305);
        assert_eq!(&buf[..2], &[43, 255]);
        assert_eq!(&buf[257..259], &[43, 45]);
        assert_eq!(buf[304], 255);
        assert!(buf[305..].iter().all(|&b| b == 0));
        let v = Options::new(&buf).get(43).unwrap().unwrap();
        assert_eq!(v, OptionBytes::new(&value));
    }

    #[test]
    fn writer_reports_short_buffer() {
        let mut buf = [0u8; 4];
        let mut w = OptionWriter::new(&mut buf);
        assert_eq!(w.put(60, b"PXEClient"), Err(Error::TooLong));
        let mut buf = [0u8; 3];
        let mut w = OptionWriter::new(&mut buf);
        w.put(53, &[2]).unwrap();
        assert_eq!(w.finish(), Err(Error::TooLong));
    }

    #[test]
    fn user_class_rfc3004_framed() {
        let framed = [4, b'i', b'P', b'X', b'E', 3, b'f', b'o', b'o'];
        assert!(user_class_contains(&OptionBytes::new(&framed), b"iPXE"));
        assert!(user_class_contains(&OptionBytes::new(&framed), b"foo"));
        assert!(!user_class_contains(&OptionBytes::new(&framed), b"bar"));
        assert!(!user_class_contains(&OptionBytes::new(b"iPX"), b"iPXE"));
        // Bad framing never panics.
        assert!(!user_class_contains(&OptionBytes::new(&[9, 1]), b"iPXE"));
    }

    #[test]
    fn arch_is_open() {
        for code in 0..=64u16 {
            assert_eq!(u16::from(Arch::from(code)), code);
        }
        assert_eq!(Arch::from(9), Arch::EfiBc);
        assert_eq!(Arch::from(4242), Arch::Unknown(4242));
        let v = OptionBytes::new(&[0, 7, 0, 9, 1]);
        assert_eq!(arches(&v).collect::<Vec<_>>(), [Arch::EfiX64, Arch::EfiBc]);
    }

    #[test]
    fn addr_list_compares_by_content() {
        let addrs = [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)];
        let wire = [1, 1, 1, 1, 8, 8, 8, 8];
        assert_eq!(
            AddrList::Wire(OptionBytes::new(&wire)),
            AddrList::Addrs(&addrs)
        );
        assert_eq!(AddrList::Addrs(&addrs).byte_len(), 8);
    }
}
