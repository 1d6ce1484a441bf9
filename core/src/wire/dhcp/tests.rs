use super::*;
use crate::wire::Error;
use crate::wire::dhcp_option::OptionBytes;
use core::net::Ipv4Addr;

/// The OVMF (EDK2 PXE, x64 UEFI) DISCOVER from testdata/captures/uefi-dhcp.pcap, packet [1]: the UDP
/// payload, trailing zero padding trimmed.
fn ovmf_discover() -> Vec<u8> {
    let mut p = vec![0u8; 240];
    p[..12].copy_from_slice(&[1, 1, 6, 0, 0xc6, 0x71, 0x58, 0x83, 0, 0, 0x80, 0]);
    p[28..34].copy_from_slice(&[0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]);
    p[236..240].copy_from_slice(&[99, 130, 83, 99]);
    p.extend_from_slice(&[53, 1, 1, 57, 2, 0x05, 0xc0, 55, 35]);
    p.extend_from_slice(&[
        1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60,
        66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135,
    ]);
    p.extend_from_slice(&[97, 17, 0]);
    p.extend_from_slice(&[0; 16]);
    p.extend_from_slice(&[94, 3, 1, 3, 0, 93, 2, 0, 7, 60, 32]);
    p.extend_from_slice(b"PXEClient:Arch:00007:UNDI:003000");
    p.push(255);
    p
}

#[test]
fn deconstruct() {
    let bytes = ovmf_discover();
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.op(), 1);
    assert_eq!(packet.hardware_type(), 1);
    assert_eq!(packet.hardware_len(), 6);
    assert_eq!(packet.hops(), 0);
    assert_eq!(packet.transaction_id(), 0xc671_5883);
    assert_eq!(packet.secs(), 0);
    assert!(packet.broadcast_flag());
    assert_eq!(packet.client_ip(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(packet.your_ip(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(packet.server_ip(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(packet.relay_agent_ip(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        &packet.client_hw_addr()[..6],
        &[0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]
    );
    assert!(packet.server_name().iter().all(|&b| b == 0));
    assert!(packet.boot_file().iter().all(|&b| b == 0));
    assert_eq!(packet.magic_number(), MAGIC_COOKIE);
    assert_eq!(packet.options().iter().count(), 7);
}

#[test]
fn construct() {
    let want = ovmf_discover();
    let mut bytes = vec![0xa5u8; 240];
    let mut packet = Packet::new_unchecked(&mut bytes[..]);
    packet.set_op(1);
    packet.set_hardware_type(1);
    packet.set_hardware_len(6);
    packet.set_hops(0);
    packet.set_transaction_id(0xc671_5883);
    packet.set_secs(0);
    packet.set_flags(Flags::BROADCAST);
    packet.set_client_ip(Ipv4Addr::UNSPECIFIED);
    packet.set_your_ip(Ipv4Addr::UNSPECIFIED);
    packet.set_server_ip(Ipv4Addr::UNSPECIFIED);
    packet.set_relay_agent_ip(Ipv4Addr::UNSPECIFIED);
    packet
        .set_client_hw_addr(&[0x52, 0x54, 0x00, 0xa5, 0x00, 0x01])
        .unwrap();
    packet.set_server_name(b"").unwrap();
    packet.set_boot_file(b"").unwrap();
    packet.set_magic_number(MAGIC_COOKIE);
    assert_eq!(&bytes[..], &want[..240]);
}

#[test]
fn parse() {
    let bytes = ovmf_discover();
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    let repr = Repr::parse(&packet).unwrap();
    assert_eq!(repr.op, Op::Request);
    assert_eq!(
        repr.client_hw_addr.mac(),
        Some([0x52, 0x54, 0x00, 0xa5, 0x00, 0x01])
    );
    assert_eq!(repr.message_type, Some(MessageType::Discover));
    assert_eq!(repr.max_message_size, Some(1472));
    assert_eq!(repr.flags, Flags::BROADCAST);
    assert!(repr.requested(67) && repr.requested(66) && !repr.requested(175));
    assert_eq!(
        repr.vendor_class_id,
        Some(OptionBytes::new(b"PXEClient:Arch:00007:UNDI:003000"))
    );
    assert_eq!(repr.client_arch, Some(OptionBytes::new(&[0, 7])));
    assert_eq!(repr.client_ndi, Some(OptionBytes::new(&[1, 3, 0])));
    assert_eq!(repr.client_uuid.map(|u| u.len()), Some(17));
    assert_eq!(repr.user_class, None);
    assert_eq!(repr.server_identifier, None);
    assert_eq!(repr.boot_file, b"");
}

#[test]
fn emit() {
    // An OFFER like the one dnsmasq sent in testdata/captures/uefi-dhcp.pcap packet [2].
    let mut repr = Repr::new(
        Op::Reply,
        0xc671_5883,
        HwAddr::ethernet([0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]),
    );
    repr.flags = Flags::BROADCAST;
    repr.your_ip = Ipv4Addr::new(192, 168, 242, 88);
    repr.server_ip = Ipv4Addr::new(192, 168, 242, 1);
    repr.server_name = b"pxeserver";
    repr.boot_file = b"debian-installer/amd64/bootnetx64.efi";
    repr.message_type = Some(MessageType::Offer);
    repr.server_identifier = Some(Ipv4Addr::new(192, 168, 242, 1));
    repr.lease_time = Some(3600);
    repr.renewal_time = Some(1800);
    repr.rebinding_time = Some(3150);
    repr.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
    repr.broadcast_address = Some(Ipv4Addr::new(192, 168, 242, 255));
    repr.router = Some(Ipv4Addr::new(192, 168, 242, 1));
    assert_eq!(repr.buffer_len(), MIN_MESSAGE_LEN);
    let mut buf = [0xeeu8; 400];
    let mut packet = Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut packet).unwrap();
    assert_eq!(&buf[..4], &[2, 1, 6, 0]);
    assert_eq!(&buf[10..12], &[0x80, 0]);
    assert_eq!(&buf[16..24], &[192, 168, 242, 88, 192, 168, 242, 1]);
    assert_eq!(&buf[44..54], b"pxeserver\0");
    assert_eq!(&buf[108..146], b"debian-installer/amd64/bootnetx64.efi\0");
    assert_eq!(
        &buf[240..258],
        &[
            53, 1, 2, 54, 4, 192, 168, 242, 1, 51, 4, 0, 0, 0x0e, 0x10, 58, 4, 0
        ]
    );
    assert!(!buf[240..300].contains(&52));
    assert_eq!(buf[300], 0xee, "nothing written past buffer_len");
    let packet = Packet::new_checked(&buf[..300]).unwrap();
    assert_eq!(Repr::parse(&packet).unwrap(), repr);
}

#[test]
fn emit_rejects_short_buffer_and_long_file() {
    let mut repr = Repr::new(Op::Reply, 1, HwAddr::ethernet([2; 6]));
    let mut buf = [0u8; 299];
    assert_eq!(
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])),
        Err(Error::Truncated)
    );
    let long = [b'a'; 129];
    repr.boot_file = &long;
    let mut buf = [0u8; 300];
    assert_eq!(
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])),
        Err(Error::TooLong)
    );
}

#[test]
fn edge_cases() {
    let good = ovmf_discover();
    // Too short.
    assert_eq!(
        Packet::new_checked(&good[..239]).err(),
        Some(Error::Truncated)
    );
    // Bad magic.
    let mut bad = good.clone();
    bad[236] = 0;
    assert_eq!(
        Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
        Err(Error::BadMagic)
    );
    // Impossible hlen.
    let mut bad = good.clone();
    bad[2] = 17;
    assert_eq!(
        Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
        Err(Error::BadValue)
    );
    // Unknown op.
    let mut bad = good.clone();
    bad[0] = 3;
    assert_eq!(
        Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
        Err(Error::UnknownOpcode { code: 3 })
    );
    // Option length past the end.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad.truncate(last - 5);
    assert_eq!(
        Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
        Err(Error::BadOption { code: 60 })
    );
    // Missing End: tolerated.
    let mut no_end = good.clone();
    no_end.pop();
    assert!(Repr::parse(&Packet::new_checked(&no_end[..]).unwrap()).is_ok());
    // Wrong length of a fixed option.
    let mut bad = good.clone();
    bad[241] = 2;
    bad[242] = 1; // 53 len 2 -> consumes 57's code byte
    assert!(Repr::parse(&Packet::new_checked(&bad[..]).unwrap()).is_err());
}

#[test]
fn option_overload_is_parsed() {
    let mut bytes = ovmf_discover();
    bytes.pop();
    bytes.extend_from_slice(&[52, 1, 1, 255]);
    // Option 67 inside `file`.
    bytes[108..115].copy_from_slice(&[67, 4, b'a', b'.', b'0', b'x', 255]);
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    let repr = Repr::parse(&packet).unwrap();
    assert_eq!(repr.bootfile_name, Some(OptionBytes::new(b"a.0x")));
    assert_eq!(repr.boot_file, b"");
    // Emitting never overloads: 67 goes to the options field.
    let mut buf = [0u8; 600];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    assert!(buf[108..236].iter().all(|&b| b == 0));
    let again = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
    // A bad overload value is an error.
    let n = bytes.len();
    bytes[n - 2] = 4;
    assert_eq!(
        Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()),
        Err(Error::BadOption { code: 52 })
    );
}

#[test]
fn split_option_round_trips() {
    let mut bytes = ovmf_discover();
    bytes.pop();
    // Vendor-specific option split in three pieces (RFC 3396).
    bytes.extend_from_slice(&[43, 2, 6, 1, 43, 1, 8, 43, 1, 255, 255]);
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    let repr = Repr::parse(&packet).unwrap();
    let v = repr.vendor_specific.unwrap();
    assert_eq!(v.as_contiguous(), None);
    assert_eq!(v, OptionBytes::new(&[6, 1, 8, 255]));
    let mut buf = [0u8; 600];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    let again = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
    assert_eq!(
        again.vendor_specific.unwrap().as_contiguous(),
        Some(&[6, 1, 8, 255][..])
    );
    assert_eq!(again, repr);
}
