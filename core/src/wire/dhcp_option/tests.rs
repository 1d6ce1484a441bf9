use super::*;
use crate::wire::Error;
use core::net::Ipv4Addr;

// Options of the iPXE BIOS DISCOVER in testdata/captures/bios-dhcp.pcap, packet [1] (shortened: 53,
// 57, 93, 60 and 77, then End).
static BIOS_OPTIONS: &[u8] = &[
    0x35, 0x01, 0x01, // 53 DISCOVER
    0x39, 0x02, 0x05, 0xc0, // 57 = 1472
    0x5d, 0x02, 0x00, 0x00, // 93 = BIOS
    0x3c, 0x20, b'P', b'X', b'E', b'C', b'l', b'i', b'e', b'n', b't', b':', b'A', b'r', b'c', b'h',
    b':', b'0', b'0', b'0', b'0', b'0', b':', b'U', b'N', b'D', b'I', b':', b'0', b'0', b'2', b'0',
    b'0', b'1', // 60
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

#[test]
fn pxe_option_writer_emits_sub_options_then_end() {
    let mut buf = [0xaa; 16];
    let mut w = PxeOptionWriter::new(&mut buf);
    w.discovery_control(DiscoveryControl::BOOT_FILE_IN_OFFER)
        .unwrap();
    assert_eq!(w.finish().unwrap(), &[6, 1, 8, 255]);

    let item = BootItem {
        server_type: 0x8000,
        layer: 1,
    };
    let mut w = PxeOptionWriter::new(&mut buf);
    w.discovery_control(DiscoveryControl::NO_BROADCAST | DiscoveryControl::NO_MULTICAST)
        .unwrap();
    w.boot_item(item).unwrap();
    let written = w.finish().unwrap();
    assert_eq!(written, &[6, 1, 3, 71, 4, 0x80, 0, 0, 1, 255]);
    assert_eq!(
        written.len(),
        PxeOptionWriter::DISCOVERY_CONTROL_LEN + PxeOptionWriter::BOOT_ITEM_LEN + 1
    );
    // What the writer emits, the reader finds.
    assert_eq!(
        BootItem::from_vendor_options(&OptionBytes::new(written)),
        Some(item)
    );
}

#[test]
fn pxe_option_writer_reports_a_short_buffer_and_keeps_what_fit() {
    let mut buf = [0u8; 6];
    let mut w = PxeOptionWriter::new(&mut buf);
    w.discovery_control(DiscoveryControl::BOOT_FILE_IN_OFFER)
        .unwrap();
    assert_eq!(
        w.boot_item(BootItem {
            server_type: 0,
            layer: 0
        }),
        Err(Error::TooLong)
    );
    assert_eq!(w.finish().unwrap(), &[6, 1, 8, 255]);
    let mut tiny = [0u8; 3];
    let w = PxeOptionWriter::new(&mut tiny[..0]);
    assert_eq!(w.finish(), Err(Error::TooLong));
}

#[test]
fn boot_item_is_read_only_when_present_and_four_bytes_long() {
    let read = |bytes: &[u8]| BootItem::from_vendor_options(&OptionBytes::new(bytes));
    assert_eq!(read(&[6, 1, 8, 255]), None);
    assert_eq!(read(&[71, 3, 0, 0, 0, 255]), None);
    assert_eq!(
        read(&[6, 1, 8, 71, 4, 0, 7, 0x80, 0, 255]),
        Some(BootItem {
            server_type: 7,
            layer: 0x8000
        })
    );
}
