//! A minimal libpcap reader for the capture replay tests: Ethernet / IPv4 / UDP only, parsed by
//! hand (24-byte global header, 16-byte record headers).

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddrV4};

/// One UDP datagram from a capture.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Capture timestamp in milliseconds.
    pub millis: u64,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// Every IPv4/UDP datagram in a libpcap file (microsecond or nanosecond, either byte order,
/// link type Ethernet or Linux cooked).
pub fn udp_datagrams(bytes: &[u8]) -> Result<Vec<Datagram>, String> {
    let magic = bytes.get(..4).ok_or("file shorter than the pcap header")?;
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err(format!("not a pcap file (magic {magic:02x?})")),
    };
    let u32_at = |at: usize| -> Result<u32, String> {
        let b: [u8; 4] = bytes
            .get(at..at + 4)
            .ok_or("truncated pcap")?
            .try_into()
            .map_err(|_| "truncated pcap")?;
        Ok(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let link = u32_at(20)?;
    let link_header = match link {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked (SLL)
        other => return Err(format!("unsupported link type {other}")),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let secs = u64::from(u32_at(at)?);
        let frac = u64::from(u32_at(at + 4)?);
        let caplen = u32_at(at + 8)? as usize;
        let frame = bytes
            .get(at + 16..at + 16 + caplen)
            .ok_or("truncated pcap record")?;
        at += 16 + caplen;
        let millis = secs * 1000 + if nanos { frac / 1_000_000 } else { frac / 1000 };
        let Some(mut ip) = frame.get(link_header..) else {
            continue;
        };
        // Skip one 802.1Q tag if present.
        if link == 1 && frame.get(12..14) == Some(&[0x81, 0x00]) {
            ip = frame.get(18..).unwrap_or(&[]);
        } else if link == 1 && frame.get(12..14) != Some(&[0x08, 0x00]) {
            continue;
        }
        if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let Some(udp) = ip.get(ihl..total) else {
            continue;
        };
        if udp.len() < 8 {
            continue;
        }
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]])).clamp(8, udp.len());
        out.push(Datagram {
            millis,
            src: SocketAddrV4::new(src_ip, sport),
            dst: SocketAddrV4::new(dst_ip, dport),
            payload: udp[8..ulen].to_vec(),
        });
    }
    Ok(out)
}
