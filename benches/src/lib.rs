//! Helpers shared by pocketpxe's criterion benches (`benches/benches/*.rs`): packets built by
//! hand and read from the real captures in `testdata/captures/` at the repository's top.

use std::net::Ipv4Addr;

/// Reads the UDP payloads of a capture in `testdata/captures/` (Ethernet/IPv4/UDP, libpcap).
///
/// # Panics
/// When the file is missing or not a capture: benches have no use without it.
pub fn capture_payloads(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/../testdata/captures/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen =
            u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + caplen) else {
            break;
        };
        at += 16 + caplen;
        // Ethernet (14) + IPv4 (IHL) + UDP (8).
        if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 17 {
            continue;
        }
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        if let Some(payload) = frame.get(14 + ihl + 8..) {
            out.push(payload.to_vec());
        }
    }
    out
}

/// A PXE DISCOVER (or REQUEST when `request` names the server and address) from `mac`, as iPXE
/// sends it (testdata/captures/bios-dhcp.pcap), built by hand.
pub fn pxe_client_packet(mac: [u8; 6], xid: u32, request: Option<(Ipv4Addr, Ipv4Addr)>) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&[99, 130, 83, 99]);
    let msg_type = if request.is_some() { 3 } else { 1 };
    p.extend_from_slice(&[
        53, 1, msg_type, 57, 2, 0x05, 0xc0, 93, 2, 0, 0, 94, 3, 1, 2, 1,
    ]);
    p.extend_from_slice(&[60, 32]);
    p.extend_from_slice(b"PXEClient:Arch:00000:UNDI:002001");
    p.extend_from_slice(&[55, 6, 1, 3, 6, 43, 66, 67]);
    if let Some((server, ip)) = request {
        p.extend_from_slice(&[54, 4]);
        p.extend_from_slice(&server.octets());
        p.extend_from_slice(&[50, 4]);
        p.extend_from_slice(&ip.octets());
    }
    p.push(255);
    p
}
