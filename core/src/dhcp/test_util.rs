//! Helpers shared by the DHCP server's unit tests.

pub(super) use core::net::{Ipv4Addr, SocketAddrV4};
pub(super) use core::time::Duration;

pub(super) use crate::net::{Destination, Received};
pub(super) use crate::time::Instant;
pub(super) use crate::wire::dhcp::{HwAddr, MessageType, Op, Packet, Repr};
pub(super) use crate::wire::dhcp_option::{AddrList, OptionBytes};

use super::*;

pub(super) const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);
pub(super) const MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
pub(super) const MAC: [u8; 6] = [0x52, 0x54, 0, 0xa5, 0, 1];
pub(super) const MAC2: [u8; 6] = [0x52, 0x54, 0, 0xa5, 0, 2];
pub(super) const DNS: [Ipv4Addr; 1] = [Ipv4Addr::new(9, 9, 9, 9)];
pub(super) const BOOT: [BootRule<'static>; 4] = [
    BootRule::new(ClientClass::Bios, "pxelinux.0"),
    BootRule::new(ClientClass::EfiX64, "debian-installer/amd64/bootnetx64.efi"),
    BootRule::new(ClientClass::EfiX64Http, "boot/x64.efi"),
    BootRule::new(ClientClass::Ipxe, "boot.ipxe"),
];

pub(super) fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 242, last)
}

pub(super) fn auth(start: u8, end: u8) -> DhcpConfig<'static> {
    let mut cfg = DhcpConfig::new(
        SERVER,
        MASK,
        Mode::Authoritative {
            pool: Pool {
                start: ip(start),
                end: ip(end),
            },
            lease_time: Duration::from_secs(3600),
            router: Some(SERVER),
            dns: &DNS,
            broadcast: Some(ip(255)),
            relay_subnets: &[],
        },
    );
    cfg.boot = &BOOT;
    cfg
}

pub(super) fn proxy() -> DhcpConfig<'static> {
    let mut cfg = DhcpConfig::new(SERVER, MASK, Mode::Proxy);
    cfg.boot = &BOOT;
    cfg
}

/// A client message; `pxe` adds the options of the OVMF client in testdata/captures/uefi-dhcp.pcap.
pub(super) fn msg(kind: MessageType, mac: [u8; 6], pxe: Option<u8>) -> Repr<'static> {
    let mut r = Repr::new(Op::Request, 0x1234, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 43, 60, 66, 67]));
    if let Some(arch) = pxe {
        r.vendor_class_id = Some(OptionBytes::new(b"PXEClient:Arch:00007:UNDI:003000"));
        r.client_arch = Some(OptionBytes::new(if arch == 7 { &[0, 7] } else { &[0, 0] }));
        r.client_uuid = Some(OptionBytes::new(&[0; 17]));
    }
    r
}

pub(super) struct Out {
    pub(super) outcome: DhcpOutcome,
    pub(super) bytes: Vec<u8>,
}

impl Out {
    /// The decoded reply (its bytes leaked: test only).
    pub(super) fn reply(&self) -> (Destination, Repr<'static>) {
        let Some(t) = self.outcome.transmit() else {
            panic!("expected a reply, got {:?}", self.outcome)
        };
        let bytes: &'static [u8] = self.bytes[..t.len].to_vec().leak();
        let p = Packet::new_checked(bytes).unwrap();
        (t.dst, Repr::parse(&p).unwrap())
    }
}

pub(super) fn send_to(server: &mut DhcpServer<'_>, now: u64, r: &Repr<'_>, port: u16) -> Out {
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    let rx = Received {
        src: SocketAddrV4::new(r.client_ip, if port == PXE_PORT { PXE_PORT } else { 68 }),
        dst: SocketAddrV4::new(
            if port == PXE_PORT {
                SERVER
            } else {
                Ipv4Addr::BROADCAST
            },
            port,
        ),
        payload: &buf,
    };
    let mut tx = vec![0u8; 1500];
    let outcome = server
        .handle(Instant::from_millis(now), &rx, &mut tx)
        .unwrap();
    Out { outcome, bytes: tx }
}

pub(super) fn send(server: &mut DhcpServer<'_>, now: u64, r: &Repr<'_>) -> Out {
    send_to(server, now, r, 67)
}

pub(super) fn request(mac: [u8; 6], yiaddr: Ipv4Addr, pxe: Option<u8>) -> Repr<'static> {
    let mut r = msg(MessageType::Request, mac, pxe);
    r.server_identifier = Some(SERVER);
    r.requested_ip = Some(yiaddr);
    r
}
