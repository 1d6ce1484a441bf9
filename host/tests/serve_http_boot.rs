//! UEFI HTTP boot answers of `pocketpxe serve`, at the packet level, in network namespaces the
//! tests create: a DISCOVER as EDK2's HTTP boot sends it (option 60 `HTTPClient:Arch:00016…`,
//! option 93 = 16) gets an OFFER with option 60 `HTTPClient` and its `efi-x64-http` path as an
//! `http://` URL on the server, in dhcp mode (with an address) and in proxy mode (without).
//! Needs root and `ip netns`; skipped with a `SKIP:` line otherwise, except under `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[test]
fn http_clients_get_a_url_and_httpclient_in_both_modes() {
    const T: &str = "http_clients_get_a_url_and_httpclient_in_both_modes";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("serve-http-boot");
    for proxy in [false, true] {
        let mut args = vec![
            "--address",
            "192.168.242.1/24",
            "--boot",
            "efi-x64-http=debian-installer/amd64/bootnetx64.efi",
        ];
        if proxy {
            args.extend_from_slice(&["--mode", "proxy"]);
        }
        let mut server = lab.serve(&args);
        let xid = if proxy { 0x4854_5450 } else { 0x4854_5444 };
        let replies = lab.cli.run(move || {
            let socket = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
            socket
                .send_to(
                    &http_discover(xid),
                    SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
                )
                .unwrap();
            collect(&socket, Duration::from_secs(2))
        });
        let offer = replies
            .iter()
            .find_map(|bytes| {
                let packet = Packet::new_checked(&bytes[..]).ok()?;
                let repr = Repr::parse(&packet).ok()?;
                (repr.op == Op::Reply && repr.transaction_id == xid).then(|| {
                    (
                        repr.message_type,
                        repr.your_ip,
                        repr.vendor_class_id.map(|v| v.bytes().collect::<Vec<u8>>()),
                        repr.boot_file.to_vec(),
                    )
                })
            })
            .unwrap_or_else(|| panic!("no reply (proxy: {proxy}):\n{}", server.log()));
        let (kind, yiaddr, vendor, file) = offer;
        assert_eq!(kind, Some(MessageType::Offer));
        assert_eq!(yiaddr.is_unspecified(), proxy, "{yiaddr}");
        assert_eq!(vendor.as_deref(), Some(&b"HTTPClient"[..]));
        assert_eq!(
            String::from_utf8_lossy(&file),
            "http://192.168.242.1/debian-installer/amd64/bootnetx64.efi"
        );
        let status = server.stop();
        assert!(status.success(), "{status}; log:\n{}", server.log());
    }
}

/// A DHCPDISCOVER like EDK2's HttpBootDxe sends (UEFI 2.x §24.7.2).
fn http_discover(xid: u32) -> Vec<u8> {
    let mac = [0x52, 0x54, 0x00, 0x48, 0x54, 0x50];
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(MessageType::Discover);
    r.flags.set(Flags::BROADCAST, true);
    r.vendor_class_id = Some(OptionBytes::new(b"HTTPClient:Arch:00016:UNDI:003001"));
    r.client_arch = Some(OptionBytes::new(&[0, 16]));
    r.client_uuid = Some(OptionBytes::new(&[0; 17]));
    r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 15, 43, 60, 66, 67]));
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}
