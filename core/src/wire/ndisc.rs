//! Router solicitations and advertisements of IPv6 Neighbor Discovery (RFC 4861 §4.1, §4.2),
//! as ICMPv6 messages (RFC 4443) without the IPv6 header, which the driver's raw socket adds.
//!
//! pocketpxe advertises itself as a link with no router: router lifetime 0, no prefix
//! information, managed and other-configuration flags clear. A client that waits for router
//! advertisements before it boots (iPXE waits about 13 s) then knows at once that no IPv6
//! router, address or DHCPv6 server is coming, and no host uses this server as an IPv6 router
//! or takes an address from it (RFC 4861 §6.2.3: lifetime 0 "MUST NOT be used as a default
//! router"). The checksum covers the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1), so
//! both parse and emit take the packet's source and destination addresses.

use core::net::Ipv6Addr;

use super::Error;

/// ICMPv6 type of a router solicitation (RFC 4861 §4.1).
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a router advertisement (RFC 4861 §4.2).
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// The IPv6 hop limit every Neighbor Discovery message is sent with and must arrive with
/// (RFC 4861 §6.1.1, §6.1.2: a smaller one means it crossed a router).
pub const HOP_LIMIT: u8 = 255;
/// The all-nodes multicast address advertisements go to (RFC 4861 §6.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The all-routers multicast address solicitations go to (RFC 4861 §6.3.7).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// A router solicitation, as far as a router needs it (RFC 4861 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RouterSolicitation {
    /// The Source Link-Layer Address option (RFC 4861 §4.6.1), if present and Ethernet-sized.
    pub source_link_addr: Option<[u8; 6]>,
}

impl RouterSolicitation {
    /// Parses and validates an ICMPv6 message received from `src` to `dst` (RFC 4861 §6.1.1):
    /// type 133, code 0, at least 8 bytes, a correct checksum, options of non-zero length that
    /// fit, and no link-layer address option when `src` is unspecified. The IPv6 hop limit
    /// (which must be [`HOP_LIMIT`]) is the driver's to check: it is not in these bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::UnknownOpcode`] (another ICMPv6 type), [`Error::BadValue`]
    /// (code or checksum), [`Error::BadOption`].
    pub fn parse(bytes: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Self, Error> {
        let options = check_message(bytes, src, dst, ROUTER_SOLICITATION, RS_LEN)?;
        let source_link_addr = source_link_addr(options)?;
        if src.is_unspecified() && source_link_addr.is_some() {
            return Err(Error::BadOption {
                code: OPT_SOURCE_LINK_ADDR,
            });
        }
        Ok(Self { source_link_addr })
    }
}

/// A router advertisement without prefix, MTU or other options but the source link-layer
/// address (RFC 4861 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RouterAdvertisement {
    /// Cur Hop Limit for the hosts' packets; 0 means unspecified.
    pub cur_hop_limit: u8,
    /// M: addresses come from DHCPv6.
    pub managed: bool,
    /// O: other configuration comes from DHCPv6.
    pub other_config: bool,
    /// Router Lifetime in seconds; 0: not a default router.
    pub router_lifetime: u16,
    /// Reachable Time in ms; 0: unspecified.
    pub reachable_time: u32,
    /// Retrans Timer in ms; 0: unspecified.
    pub retrans_timer: u32,
    /// The Source Link-Layer Address option (RFC 4861 §4.6.1).
    pub source_link_addr: Option<[u8; 6]>,
}

impl RouterAdvertisement {
    /// The advertisement pocketpxe sends from the interface with MAC `mac`: no default router,
    /// no prefix, M and O clear, every other value unspecified (0).
    pub const fn no_router(mac: [u8; 6]) -> Self {
        Self {
            cur_hop_limit: 0,
            managed: false,
            other_config: false,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 0,
            source_link_addr: Some(mac),
        }
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        if self.source_link_addr.is_some() {
            RA_LEN + LINK_ADDR_OPT_LEN
        } else {
            RA_LEN
        }
    }

    /// Writes the message with its checksum for an IPv6 packet from `src` (a link-local
    /// address, RFC 4861 §6.1.2) to `dst`; returns the length written.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`buffer_len`](Self::buffer_len).
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
        out.fill(0);
        out[0] = ROUTER_ADVERTISEMENT;
        out[4] = self.cur_hop_limit;
        out[5] = (u8::from(self.managed) << 7) | (u8::from(self.other_config) << 6);
        out[6..8].copy_from_slice(&self.router_lifetime.to_be_bytes());
        out[8..12].copy_from_slice(&self.reachable_time.to_be_bytes());
        out[12..16].copy_from_slice(&self.retrans_timer.to_be_bytes());
        if let Some(mac) = self.source_link_addr {
            out[16] = OPT_SOURCE_LINK_ADDR;
            out[17] = 1;
            out[18..24].copy_from_slice(&mac);
        }
        let sum = checksum(src, dst, out);
        out[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }

    /// Parses and validates an advertisement (RFC 4861 §6.1.2, without the hop limit and the
    /// link-local source, which are the driver's): type 134, code 0, at least 16 bytes, a
    /// correct checksum, well-formed options. Options other than the source link-layer
    /// address are skipped.
    ///
    /// # Errors
    /// As [`RouterSolicitation::parse`].
    pub fn parse(bytes: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Self, Error> {
        let options = check_message(bytes, src, dst, ROUTER_ADVERTISEMENT, RA_LEN)?;
        let u32_at = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_be_bytes)
        };
        let flags = bytes.get(5).copied().unwrap_or(0);
        Ok(Self {
            cur_hop_limit: bytes.get(4).copied().unwrap_or(0),
            managed: flags & 0x80 != 0,
            other_config: flags & 0x40 != 0,
            router_lifetime: bytes
                .get(6..8)
                .and_then(|b| <[u8; 2]>::try_from(b).ok())
                .map_or(0, u16::from_be_bytes),
            reachable_time: u32_at(8),
            retrans_timer: u32_at(12),
            source_link_addr: source_link_addr(options)?,
        })
    }
}

/// The ICMPv6 checksum of `message` (its checksum field taken as zero) in an IPv6 packet from
/// `src` to `dst` (RFC 4443 §2.3 over the pseudo-header of RFC 8200 §8.1).
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for addr in [src, dst] {
        sum += sum_words(&addr.octets());
    }
    // Upper-layer packet length (32 bits) and next header 58; messages here are far below 4 GiB.
    sum += message.len() as u64;
    sum += u64::from(NEXT_HEADER_ICMPV6);
    sum += sum_words(message.get(..2).unwrap_or(message));
    sum += sum_words(message.get(4..).unwrap_or(&[]));
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // `sum` fits 16 bits after the fold.
    !(sum as u16)
}

/// Checks type, code, length and checksum; returns the options.
fn check_message(
    bytes: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    fixed_len: usize,
) -> Result<&[u8], Error> {
    let options = bytes.get(fixed_len..).ok_or(Error::Truncated)?;
    if bytes[0] != kind {
        return Err(Error::UnknownOpcode {
            code: u16::from(bytes[0]),
        });
    }
    if bytes[1] != 0 {
        return Err(Error::BadValue);
    }
    if u16::from_be_bytes([bytes[2], bytes[3]]) != checksum(src, dst, bytes) {
        return Err(Error::BadValue);
    }
    Ok(options)
}

/// The source link-layer address among `options`, after checking that every option has a
/// non-zero length and fits (RFC 4861 §4.6).
fn source_link_addr(mut options: &[u8]) -> Result<Option<[u8; 6]>, Error> {
    let mut found = None;
    while let [code, units, ..] = *options {
        let len = usize::from(units) * 8;
        if len == 0 {
            return Err(Error::BadOption { code });
        }
        let option = options.get(..len).ok_or(Error::BadOption { code })?;
        if code == OPT_SOURCE_LINK_ADDR && found.is_none() {
            found = option
                .get(2..8)
                .and_then(|mac| <[u8; 6]>::try_from(mac).ok());
        }
        options = &options[len..];
    }
    if options.is_empty() {
        Ok(found)
    } else {
        Err(Error::Truncated)
    }
}

/// Sum of the big-endian 16-bit words of `bytes`, an odd last byte padded with zero.
fn sum_words(bytes: &[u8]) -> u64 {
    bytes
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)])))
        .sum()
}

/// Fixed part of a router solicitation: type, code, checksum, reserved (RFC 4861 §4.1).
const RS_LEN: usize = 8;
/// Fixed part of a router advertisement (RFC 4861 §4.2).
const RA_LEN: usize = 16;
/// The source link-layer address option for Ethernet: 8 bytes (RFC 4861 §4.6.1, RFC 2464 §6).
const LINK_ADDR_OPT_LEN: usize = 8;
/// Option type of the source link-layer address (RFC 4861 §4.6.1).
const OPT_SOURCE_LINK_ADDR: u8 = 1;
/// IPv6 next header value of ICMPv6 (RFC 4443 §1).
const NEXT_HEADER_ICMPV6: u8 = 58;

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456);
    const CLIENT: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfea5, 1);

    /// A router solicitation as Linux sends it from fe80::5054:ff:fea5:1 with its MAC
    /// 52:54:00:a5:00:01, checksum computed by hand from RFC 4443 §2.3.
    fn linux_rs() -> [u8; 16] {
        let mut rs = [
            133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0x00, 0xa5, 0x00, 0x01,
        ];
        // Pseudo-header: fe80::5054:ff:fea5:1 and ff02::2, length 16, next header 58.
        let words: [u32; 21] = [
            0xfe80,
            0,
            0,
            0,
            0x5054,
            0x00ff,
            0xfea5,
            0x0001,
            0xff02,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            16,
            58,
            // The message: 133 0 | reserved | option 1, length 1, MAC.
            0x8500,
            0x0101,
            0x5254 + 0x00a5 + 0x0001,
        ];
        let mut sum: u32 = words.iter().sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let sum = !(sum as u16);
        rs[2..4].copy_from_slice(&sum.to_be_bytes());
        rs
    }

    #[test]
    fn no_router_advertisement_fields() {
        let ra = RouterAdvertisement::no_router(MAC);
        let mut buf = [0xaa; 64];
        let len = ra.emit(LL, ALL_NODES, &mut buf).unwrap();
        assert_eq!(len, 24);
        let b = &buf[..len];
        assert_eq!(b[0], 134);
        assert_eq!(b[1], 0, "code");
        assert_eq!(b[4], 0, "cur hop limit unspecified");
        assert_eq!(b[5], 0, "M and O clear");
        assert_eq!(&b[6..8], &[0, 0], "router lifetime 0");
        assert_eq!(
            &b[8..16],
            &[0; 8],
            "reachable time and retrans timer unspecified"
        );
        assert_eq!(&b[16..24], &[1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(buf[len], 0xaa, "nothing written past the message");
        assert_eq!(RouterAdvertisement::parse(b, LL, ALL_NODES), Ok(ra));
    }

    #[test]
    fn checksum_matches_a_hand_computed_one_and_the_pseudo_header() {
        let rs = linux_rs();
        assert_eq!(
            RouterSolicitation::parse(&rs, CLIENT, ALL_ROUTERS),
            Ok(RouterSolicitation {
                source_link_addr: Some([0x52, 0x54, 0, 0xa5, 0, 1])
            })
        );
        assert_eq!(
            checksum(CLIENT, ALL_ROUTERS, &rs),
            u16::from_be_bytes([rs[2], rs[3]])
        );
        // The checksum covers the addresses: the same bytes from elsewhere are refused.
        assert_eq!(
            RouterSolicitation::parse(&rs, LL, ALL_ROUTERS),
            Err(Error::BadValue)
        );
        // Summing the whole message with its checksum in place gives 0xffff (RFC 1071).
        let ra = RouterAdvertisement::no_router(MAC);
        let mut buf = [0; 24];
        ra.emit(LL, CLIENT, &mut buf).unwrap();
        let mut sum = sum_words(&LL.octets()) + sum_words(&CLIENT.octets()) + 24 + 58;
        sum += sum_words(&buf);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn emit_round_trips_every_field() {
        let ra = RouterAdvertisement {
            cur_hop_limit: 64,
            managed: true,
            other_config: true,
            router_lifetime: 1800,
            reachable_time: 30_000,
            retrans_timer: 1000,
            source_link_addr: None,
        };
        let mut buf = [0; 16];
        assert_eq!(ra.emit(LL, ALL_NODES, &mut buf), Ok(16));
        assert_eq!(buf[5], 0xc0);
        assert_eq!(RouterAdvertisement::parse(&buf, LL, ALL_NODES), Ok(ra));
        assert_eq!(
            RouterAdvertisement::no_router(MAC).emit(LL, ALL_NODES, &mut buf),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn malformed_solicitations_are_errors() {
        let good = linux_rs();
        let parse = |b: &[u8]| RouterSolicitation::parse(b, CLIENT, ALL_ROUTERS);
        assert_eq!(parse(&good[..7]), Err(Error::Truncated));
        // Another ICMPv6 type.
        let mut b = good;
        b[0] = 135;
        assert_eq!(parse(&b), Err(Error::UnknownOpcode { code: 135 }));
        // A bad checksum, a non-zero code.
        let mut b = good;
        b[3] ^= 1;
        assert_eq!(parse(&b), Err(Error::BadValue));
        let mut b = good;
        b[1] = 1;
        assert_eq!(parse(&b), Err(Error::BadValue));
        // Option length 0, an option longer than the message (checksums fixed up).
        for (at, value, want) in [
            (9, 0, Error::BadOption { code: 1 }),
            (9, 2, Error::BadOption { code: 1 }),
        ] {
            let mut b = good;
            b[at] = value;
            let sum = checksum(CLIENT, ALL_ROUTERS, &b);
            b[2..4].copy_from_slice(&sum.to_be_bytes());
            assert_eq!(parse(&b), Err(want));
        }
        // A lone byte after the options.
        let mut b = [0u8; 17];
        b[..16].copy_from_slice(&good);
        let sum = checksum(CLIENT, ALL_ROUTERS, &b);
        b[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse(&b), Err(Error::Truncated));
        // From the unspecified address, a link-layer address option is not allowed.
        let mut b = good;
        let sum = checksum(Ipv6Addr::UNSPECIFIED, ALL_ROUTERS, &b);
        b[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            RouterSolicitation::parse(&b, Ipv6Addr::UNSPECIFIED, ALL_ROUTERS),
            Err(Error::BadOption { code: 1 })
        );
        // Without options, from the unspecified address: fine.
        let mut b = [133, 0, 0, 0, 0, 0, 0, 0];
        let sum = checksum(Ipv6Addr::UNSPECIFIED, ALL_ROUTERS, &b);
        b[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            RouterSolicitation::parse(&b, Ipv6Addr::UNSPECIFIED, ALL_ROUTERS),
            Ok(RouterSolicitation {
                source_link_addr: None
            })
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every length up to 40 with a few byte patterns, and every prefix of valid messages.
        let mut ra = [0u8; 24];
        RouterAdvertisement::no_router(MAC)
            .emit(LL, ALL_NODES, &mut ra)
            .unwrap();
        let rs = linux_rs();
        for msg in [&ra[..], &rs[..]] {
            for end in 0..=msg.len() {
                let _ = RouterSolicitation::parse(&msg[..end], CLIENT, ALL_ROUTERS);
                let _ = RouterAdvertisement::parse(&msg[..end], LL, ALL_NODES);
            }
        }
        let mut seed: u32 = 0x1234_5678;
        for len in 0..40 {
            for _ in 0..200 {
                let mut b = [0u8; 40];
                for byte in &mut b[..len] {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    *byte = (seed >> 16) as u8;
                }
                b[0] = if seed & 1 == 0 { 133 } else { 134 };
                let _ = RouterSolicitation::parse(&b[..len], CLIENT, ALL_ROUTERS);
                let _ = RouterAdvertisement::parse(&b[..len], LL, ALL_NODES);
                let _ = checksum(LL, CLIENT, &b[..len]);
            }
        }
    }
}
