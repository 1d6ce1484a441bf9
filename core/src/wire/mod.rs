//! Wire formats: checked zero-copy views over packet bytes plus `Repr` parse/emit, after
//! smoltcp's `wire` layer.
//!
//! `Packet::new_checked` validates lengths once so no accessor can panic; `Repr::parse` applies
//! the protocol's semantics; `Repr::emit` writes into a caller buffer of at least
//! `Repr::buffer_len()` bytes.

use core::fmt;

pub mod dhcp;
pub mod dhcp_option;
pub mod ndisc;
pub mod tftp;

/// Why bytes did not parse as a packet. Names the cause, because an operator needs to know why
/// a boot failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The packet ends before a field it must hold.
    Truncated,
    /// The DHCP magic cookie (RFC 2131 §3) is missing.
    BadMagic,
    /// An option is malformed (bad length, missing terminator, bad value).
    BadOption {
        /// The option's code (DHCP) or 0 for TFTP options.
        code: u8,
    },
    /// An opcode or message type this format does not define.
    UnknownOpcode {
        /// The value found.
        code: u16,
    },
    /// A string field is not NUL-terminated where it must be.
    Unterminated,
    /// A field holds a value the format does not allow.
    BadValue,
    /// The packet is larger than the format allows.
    TooLong,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("packet truncated"),
            Self::BadMagic => f.write_str("DHCP magic cookie missing"),
            Self::BadOption { code } => write!(f, "malformed option {code}"),
            Self::UnknownOpcode { code } => write!(f, "unknown opcode {code}"),
            Self::Unterminated => f.write_str("string field not NUL-terminated"),
            Self::BadValue => f.write_str("field value not allowed"),
            Self::TooLong => f.write_str("packet too long"),
        }
    }
}

impl core::error::Error for Error {}
