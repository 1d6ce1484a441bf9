//! DHCP/BOOTP wire format (RFC 2131 §2, RFC 951): a checked zero-copy [`Packet`] view and the
//! high-level [`Repr`].
//!
//! ```text
//!  0      op | htype | hlen | hops           (1 byte each)
//!  4      xid                                 (4)
//!  8      secs (2) | flags (2)
//! 12      ciaddr | yiaddr | siaddr | giaddr   (4 each)
//! 28      chaddr (16) | sname (64) | file (128)
//! 236     magic cookie 99.130.83.99           (4)
//! 240     options (TLV, RFC 2132)
//! ```
//!
//! [`Repr::emit`] never uses option overload (52): `file`, `sname` and `siaddr` always go in the
//! BOOTP header, because shim and GRUB read the boot file only from there (docs/protocol.md §2).

mod packet;
mod repr;

pub use packet::Packet;
pub use repr::Repr;

/// The DHCP magic cookie, 99.130.83.99 (RFC 2131 §3).
pub const MAGIC_COOKIE: u32 = 0x6382_5363;

/// Length of the fixed BOOTP header plus magic cookie: options start here.
pub const HEADER_LEN: usize = field::OPTIONS;

/// Minimum size of an emitted message: BOOTP's 300 bytes (RFC 951, RFC 1542 §2.1), which some
/// PXE ROMs still insist on.
pub const MIN_MESSAGE_LEN: usize = 300;

/// The BOOTP `op` field (RFC 2131 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    /// 1: BOOTREQUEST, client to server.
    Request,
    /// 2: BOOTREPLY, server to client.
    Reply,
}

/// DHCP message type, option 53 (RFC 2132 §9.6). Open enum (STYLE.md R7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MessageType {
    /// 1
    Discover,
    /// 2
    Offer,
    /// 3
    Request,
    /// 4
    Decline,
    /// 5
    Ack,
    /// 6
    Nak,
    /// 7
    Release,
    /// 8
    Inform,
    /// Any other value.
    Unknown(u8),
}

impl MessageType {
    /// The RFC 2132 §9.6 name in capitals (`DISCOVER`, `OFFER`, ...); `UNKNOWN` for other
    /// values.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Discover => "DISCOVER",
            Self::Offer => "OFFER",
            Self::Request => "REQUEST",
            Self::Decline => "DECLINE",
            Self::Ack => "ACK",
            Self::Nak => "NAK",
            Self::Release => "RELEASE",
            Self::Inform => "INFORM",
            Self::Unknown(_) => "UNKNOWN",
        }
    }
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            other => Self::Unknown(other),
        }
    }
}

/// The RFC 2132 §9.6 name in capitals (`DISCOVER`, `OFFER`, ...); `UNKNOWN` for other values.
impl core::fmt::Display for MessageType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> Self {
        match t {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(v) => v,
        }
    }
}

/// A client hardware address: `htype`, `hlen` and the `chaddr` bytes (RFC 2131 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HwAddr {
    hw_type: u8,
    len: u8,
    bytes: [u8; 16],
}

impl HwAddr {
    /// An Ethernet (htype 1, hlen 6) address.
    pub const fn ethernet(mac: [u8; 6]) -> Self {
        let mut bytes = [0u8; 16];
        let mut i = 0;
        while i < 6 {
            bytes[i] = mac[i];
            i += 1;
        }
        Self {
            hw_type: 1,
            len: 6,
            bytes,
        }
    }

    /// Any hardware type; `None` if `addr` is longer than 16 bytes.
    pub fn new(hw_type: u8, addr: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; 16];
        bytes.get_mut(..addr.len())?.copy_from_slice(addr);
        Some(Self {
            hw_type,
            len: addr.len() as u8,
            bytes,
        })
    }

    /// `htype` (1 = Ethernet).
    pub const fn hw_type(&self) -> u8 {
        self.hw_type
    }

    /// The significant `hlen` bytes of `chaddr`.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The MAC address, if this is Ethernet (htype 1, hlen 6).
    pub fn mac(&self) -> Option<[u8; 6]> {
        if self.hw_type != 1 {
            return None;
        }
        self.as_bytes().try_into().ok()
    }
}
bitflags::bitflags! {
    /// The BOOTP `flags` field (RFC 2131 §2, figure 2). Only the broadcast bit is defined; the
    /// others must be zero, so [`Repr::parse`] drops them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Flags: u16 {
        /// The client cannot receive IP unicast before it is configured: broadcast replies
        /// (RFC 2131 §4.1).
        const BROADCAST = 0x8000;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Flags {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Flags({=u16:#06x})", self.bits());
    }
}

/// Byte offsets of the BOOTP header fields (RFC 2131 §2, figure 1).
pub mod field {
    #![allow(missing_docs)]
    use core::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: usize = 236;
    pub const OPTIONS: usize = 240;
}

#[cfg(test)]
mod tests;
