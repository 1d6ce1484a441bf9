//! DHCP options: the TLV area after the magic cookie (RFC 2132 §2), long options split over
//! several TLVs (RFC 3396), option overload into `file`/`sname` (RFC 2132 §9.3, parse only), and
//! the PXE option values (RFC 4578, RFC 3004).
//!
//! Everything here is a zero-copy view over packet bytes. [`Options`] walks the option areas of
//! one packet in RFC 3396 order (options field, then `file`, then `sname` when option 52 says
//! they are overloaded). [`OptionBytes`] is one option's full value, which may be split over
//! several TLVs; read it with [`OptionBytes::parts`] or [`OptionBytes::copy_into`].
//! [`OptionWriter`] emits options and splits values longer than 255 bytes (RFC 3396 §6).

use super::Error;

mod bytes;
mod pxe;
mod writer;

pub use bytes::{AddrList, OptionBytes, Parts};
pub use pxe::{
    Arch, BootItem, DiscoveryControl, PxeOptionWriter, arches, pxe_code, user_class_contains,
};
pub use writer::{OptionWriter, encoded_len};

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
    /// Host name (RFC 2132 §3.14).
    pub const HOST_NAME: u8 = 12;
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
    /// Relay agent information (RFC 3046 §2.0).
    pub const RELAY_AGENT_INFO: u8 = 82;
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
mod tests;
