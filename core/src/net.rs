//! Datagrams crossing the sans-IO boundary.

use core::net::{Ipv4Addr, SocketAddrV4};

/// One datagram handed to the core by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// Where it came from.
    pub src: SocketAddrV4,
    /// The local address and port it arrived on (broadcast vs unicast, :67 vs :4011).
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// A datagram the core wrote into the caller's buffer: the bytes are `tx[..len]`.
#[must_use = "a Transmit describes bytes that must be sent"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transmit {
    /// Where to send it.
    pub dst: Destination,
    /// How many bytes of the caller's buffer to send.
    pub len: usize,
}

/// A datagram to one unicast address, written into the caller's buffer: the bytes are
/// `tx[..len]`. What TFTP sends (RFC 1350 §4: every packet goes to the peer's TID), so its
/// drivers need no case for broadcasts.
#[must_use = "a UnicastTransmit describes bytes that must be sent"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnicastTransmit {
    /// Where to send it.
    pub dst: SocketAddrV4,
    /// How many bytes of the caller's buffer to send.
    pub len: usize,
}

impl From<UnicastTransmit> for Transmit {
    fn from(t: UnicastTransmit) -> Self {
        Self {
            dst: Destination::Unicast(t.dst),
            len: t.len,
        }
    }
}

/// Where a [`Transmit`] goes.
///
/// `repr(C, u32)` keeps the tag and each variant's fields aligned. With Rust's packed default
/// layout, returning a `Transmit` for every DATA block wrote the peer address in two stores and
/// read it back in two overlapping loads that the CPU could not forward: a store-forwarding
/// stall that cost about as much as copying a 512-byte block (`benches/benches/tftp.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(C, u32)]
pub enum Destination {
    /// Plain IP unicast.
    Unicast(SocketAddrV4),
    /// Limited broadcast, 255.255.255.255 on the interface, to this port.
    Broadcast {
        /// Destination UDP port.
        port: u16,
    },
    /// IP unicast to a client that cannot answer ARP yet (RFC 2131 §4.1). Only produced when
    /// the driver advertises support for it; otherwise the core picks `Broadcast`.
    UnicastToMac {
        /// The client's (new) IP address.
        ip: Ipv4Addr,
        /// The client's hardware address.
        mac: [u8; 6],
        /// Destination UDP port.
        port: u16,
    },
}

/// `10.0.0.5:68`, `255.255.255.255:68` (broadcast), `10.0.0.5:68 at 52:54:00:12:34:56`.
impl core::fmt::Display for Destination {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Unicast(addr) => write!(f, "{addr}"),
            Self::Broadcast { port } => write!(f, "{}:{port}", Ipv4Addr::BROADCAST),
            Self::UnicastToMac { ip, mac, port } => write!(f, "{ip}:{port} at {}", Mac(mac)),
        }
    }
}

/// The caller's transmit buffer is too small; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InsufficientSize {
    /// The buffer size the call needs.
    pub required: usize,
}

impl core::fmt::Display for InsufficientSize {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "transmit buffer too small: {} bytes required",
            self.required
        )
    }
}

impl core::error::Error for InsufficientSize {}

/// A hardware address, displayed as `52:54:00:12:34:56` (lower-case hex, colon-separated).
///
/// Both drivers log clients by this form, so that one `grep` finds a client in either's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Mac {
    fn format(&self, f: defmt::Formatter<'_>) {
        let [a, b, c, d, e, g] = self.0;
        defmt::write!(
            f,
            "{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}",
            a,
            b,
            c,
            d,
            e,
            g
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{Destination, Mac};

    #[test]
    fn mac_displays_as_lower_case_colon_separated_hex() {
        let mac = Mac([0x52, 0x54, 0x00, 0x0a, 0xbc, 0xff]);
        assert_eq!(std::format!("{mac}"), "52:54:00:0a:bc:ff");
    }

    #[test]
    fn destinations_display_as_address_and_port() {
        use core::net::{Ipv4Addr, SocketAddrV4};
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        let show = |d: Destination| std::format!("{d}");
        assert_eq!(
            show(Destination::Unicast(SocketAddrV4::new(ip, 68))),
            "10.0.0.5:68"
        );
        assert_eq!(
            show(Destination::Broadcast { port: 68 }),
            "255.255.255.255:68"
        );
        let to_mac = Destination::UnicastToMac {
            ip,
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            port: 68,
        };
        assert_eq!(show(to_mac), "10.0.0.5:68 at 52:54:00:12:34:56");
    }
}
