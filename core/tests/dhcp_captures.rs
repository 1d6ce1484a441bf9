//! Capture replay: every client packet in `testdata/captures/*-dhcp.pcap` (real iPXE BIOS, iPXE
//! EFI, OVMF and udhcpc clients; see its README) goes through the core, and each reply is
//! checked against the DHCP + PXE rules of docs/protocol.md §2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pcap::{Datagram, udp_datagrams};
use pocketpxe_core::dhcp::{
    BootRule, ClientClass, DhcpConfig, DhcpEvent, DhcpOutcome, DhcpServer, IgnoreReason, LeaseSlot,
    Mode, PXE_PORT, Pool,
};
use pocketpxe_core::net::{Destination, Received};
use pocketpxe_core::time::Instant;
use pocketpxe_core::wire::dhcp::{Flags, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);
const MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const BIOS_FILE: &str = "pxelinux.0";
const EFI_FILE: &str = "debian-installer/amd64/bootnetx64.efi";
const IPXE_FILE: &str = "boot.ipxe";
const RULES: [BootRule<'static>; 3] = [
    BootRule::new(ClientClass::Bios, BIOS_FILE),
    BootRule::new(ClientClass::EfiX64, EFI_FILE),
    BootRule::new(ClientClass::Ipxe, IPXE_FILE),
];

fn captures_dir() -> PathBuf {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/captures/"
    ));
    assert!(
        dir.is_dir(),
        "capture directory {} is missing from the checkout",
        dir.display()
    );
    dir.to_path_buf()
}

fn captures() -> Vec<(String, Vec<Datagram>)> {
    let mut out: Vec<_> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            let datagrams =
                udp_datagrams(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, datagrams)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 7,
        "expected the 7 captures, found {}",
        out.len()
    );
    out
}

fn config(proxy: bool, rules: &'static [BootRule<'static>]) -> DhcpConfig<'static> {
    let mode = if proxy {
        Mode::Proxy
    } else {
        Mode::Authoritative {
            pool: Pool {
                start: Ipv4Addr::new(192, 168, 242, 88),
                end: Ipv4Addr::new(192, 168, 242, 99),
            },
            lease_time: Duration::from_secs(3600),
            router: Some(SERVER),
            dns: &[SERVER],
            broadcast: Some(Ipv4Addr::new(192, 168, 242, 255)),
            relay_subnets: &[],
        }
    };
    let mut cfg = DhcpConfig::new(SERVER, MASK, mode);
    cfg.boot = rules;
    cfg
}

#[derive(Default, Debug)]
struct Tally {
    client_packets: usize,
    offers: usize,
    acks: usize,
    boot_server_acks: usize,
    granted: usize,
}

/// Replays one capture; returns what happened.
fn replay(name: &str, datagrams: &[Datagram], ipxe_rule: bool) -> Tally {
    let proxy = name.contains("proxy");
    let rules: &'static [BootRule<'static>] = if ipxe_rule { &RULES } else { &RULES[..2] };
    let mut slots = [LeaseSlot::EMPTY; 16];
    let mut server = DhcpServer::new(config(proxy, rules), &mut slots[..]);
    let mut tally = Tally::default();
    let t0 = datagrams.first().map_or(0, |d| d.millis);
    for (n, d) in datagrams.iter().enumerate() {
        let to_server = d.dst.port() == 67 || d.dst.port() == PXE_PORT;
        if !to_server || d.payload.first() != Some(&1) {
            continue; // server replies in the capture (dnsmasq's), not ours to judge
        }
        tally.client_packets += 1;
        let ctx = format!("{name} packet #{} (ipxe rule: {ipxe_rule})", n + 1);
        let req = Repr::parse(&Packet::new_checked(&d.payload[..]).unwrap())
            .unwrap_or_else(|e| panic!("{ctx}: captured request does not parse: {e}"));
        // The driver tells the core which local address and port the packet arrived on.
        let rx = Received {
            src: d.src,
            dst: d.dst,
            payload: &d.payload,
        };
        let mut tx = [0u8; 1500];
        let now = Instant::from_millis(d.millis - t0);
        let outcome = server.handle(now, &rx, &mut tx).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
        let msg = req.message_type.unwrap();
        let vendor = req.vendor_class_id;
        let pxe = vendor.is_some_and(|v| v.starts_with(b"PXEClient"));
        let ipxe = req.user_class.is_some() || req.ipxe_encap.is_some();
        let efi = req.client_arch == Some(OptionBytes::new(&[0, 7]));

        let DhcpOutcome::Reply {
            transmit: t,
            summary,
        } = outcome
        else {
            // What may legitimately go unanswered.
            let DhcpOutcome::Ignored { reason, .. } = outcome else {
                panic!("{ctx}: unexpected {outcome:?}")
            };
            match reason {
                IgnoreReason::OtherServerId => {
                    assert!(proxy, "{ctx}");
                    assert_ne!(req.server_identifier, Some(SERVER), "{ctx}");
                }
                IgnoreReason::NotPxeClient => {
                    assert!(proxy && !pxe, "{ctx}: {reason}");
                }
                other => panic!("{ctx}: {msg:?} ignored: {other}"),
            }
            continue;
        };
        let bytes = &tx[..t.len];
        let reply = Repr::parse(&Packet::new_checked(bytes).unwrap())
            .unwrap_or_else(|e| panic!("{ctx}: our reply does not parse: {e}"));

        // The summary for the driver's logs says what the bytes say.
        assert_eq!(Some(summary.mac.0), req.client_hw_addr.mac(), "{ctx}");
        assert_eq!(summary.request, msg, "{ctx}");
        assert_eq!(summary.reply, reply.message_type, "{ctx}");
        assert_eq!(
            summary.boot_file.as_deref().map(str::as_bytes),
            Some(reply.boot_file).filter(|f| !f.is_empty()),
            "{ctx}"
        );
        let class = summary.class;
        if ipxe {
            assert_eq!(class, Some(ClientClass::Ipxe), "{ctx}");
        } else if efi {
            assert_eq!(class, Some(ClientClass::EfiX64), "{ctx}");
        }

        // Header basics (RFC 2131 §4.3.1 table 3).
        assert_eq!(reply.op, Op::Reply, "{ctx}");
        assert_eq!(reply.transaction_id, req.transaction_id, "{ctx}");
        assert_eq!(reply.client_hw_addr, req.client_hw_addr, "{ctx}");
        assert_eq!(reply.flags, req.flags, "{ctx}");
        assert_eq!(reply.server_identifier, Some(SERVER), "{ctx}: option 54");
        // Size (docs/protocol.md §2: respect option 57, 576 otherwise).
        let limit = req.max_message_size.map_or(576, usize::from);
        assert!(t.len <= limit, "{ctx}: reply of {} bytes > {limit}", t.len);
        assert!(!has_option_52(bytes), "{ctx}: option overload used");

        // Addressing.
        if d.dst.port() == PXE_PORT {
            assert_eq!(
                t.dst,
                Destination::Unicast(d.src),
                "{ctx}: 4011 answered to source"
            );
            assert_eq!(reply.message_type, Some(MessageType::Ack), "{ctx}");
            assert_eq!(reply.your_ip, Ipv4Addr::UNSPECIFIED, "{ctx}");
            tally.boot_server_acks += 1;
        } else if req.flags.contains(Flags::BROADCAST) {
            assert_eq!(t.dst, Destination::Broadcast { port: 68 }, "{ctx}");
        }

        match msg {
            MessageType::Discover => {
                assert_eq!(reply.message_type, Some(MessageType::Offer), "{ctx}");
                tally.offers += 1;
            }
            MessageType::Request if d.dst.port() != PXE_PORT => {
                assert_eq!(reply.message_type, Some(MessageType::Ack), "{ctx}");
                // Durable before ACK: the grant is already queued when the reply is returned.
                assert!(
                    events.iter().any(|e| matches!(
                        e,
                        DhcpEvent::LeaseGranted(l) | DhcpEvent::LeaseRenewed(l)
                            if l.ip == reply.your_ip && Some(l.mac) == req.client_hw_addr.mac()
                    )),
                    "{ctx}: no lease event for the ACK: {events:?}"
                );
                tally.granted += 1;
                tally.acks += 1;
            }
            _ => {}
        }

        if proxy {
            assert_eq!(reply.your_ip, Ipv4Addr::UNSPECIFIED, "{ctx}: proxy yiaddr");
            assert_eq!(reply.lease_time, None, "{ctx}");
            assert_eq!(
                reply.vendor_class_id,
                Some(OptionBytes::new(b"PXEClient")),
                "{ctx}"
            );
            assert_eq!(
                reply.client_uuid, req.client_uuid,
                "{ctx}: option 97 echoed"
            );
        } else if d.dst.port() != PXE_PORT {
            let pool = Pool {
                start: Ipv4Addr::new(192, 168, 242, 88),
                end: Ipv4Addr::new(192, 168, 242, 99),
            };
            assert!(pool.contains(reply.your_ip), "{ctx}: {}", reply.your_ip);
            assert_eq!(reply.lease_time, Some(3600), "{ctx}");
            assert_eq!(reply.subnet_mask, Some(MASK), "{ctx}");
            assert_eq!(reply.router, Some(SERVER), "{ctx}");
        }

        // Boot information (docs/protocol.md §2): BOOTP header always, 67 when asked.
        if pxe {
            let want = if ipxe && ipxe_rule {
                IPXE_FILE
            } else if efi {
                EFI_FILE
            } else {
                BIOS_FILE
            };
            assert_eq!(
                std::str::from_utf8(reply.boot_file).unwrap(),
                want,
                "{ctx}: boot file"
            );
            assert_eq!(reply.server_ip, SERVER, "{ctx}: siaddr");
            if req.requested(67) {
                assert_eq!(
                    reply.bootfile_name,
                    Some(OptionBytes::new(want.as_bytes())),
                    "{ctx}: option 67"
                );
            }
            // The file field is NUL-terminated.
            let file_field = &bytes[108..236];
            assert_eq!(file_field[want.len()], 0, "{ctx}");
        } else {
            assert_eq!(reply.boot_file, b"", "{ctx}: no boot file for {vendor:?}");
            assert_eq!(reply.bootfile_name, None, "{ctx}");
        }
    }
    tally
}

fn has_option_52(bytes: &[u8]) -> bool {
    let Ok(p) = Packet::new_checked(bytes) else {
        return false;
    };
    p.options().iter().any(|o| o.is_ok_and(|o| o.code == 52))
}

#[test]
fn every_capture_replays_against_protocol_rules() {
    for ipxe_rule in [true, false] {
        for (name, datagrams) in captures() {
            let tally = replay(&name, &datagrams, ipxe_rule);
            assert!(tally.client_packets > 0, "{name}: no client packets found");
            assert!(tally.offers > 0, "{name}: nothing offered: {tally:?}");
            if name.contains("proxy") {
                assert!(
                    tally.boot_server_acks > 0,
                    "{name}: no port-4011 ACK: {tally:?}"
                );
            } else {
                assert!(
                    tally.acks > 0 && tally.granted > 0,
                    "{name}: no ACK: {tally:?}"
                );
            }
        }
    }
}

#[test]
fn uefi_proxy_4011_request_is_answered_to_its_source() {
    let (_, datagrams) = captures()
        .into_iter()
        .find(|(n, _)| n == "uefi-proxy-dhcp.pcap")
        .expect("uefi-proxy capture present");
    let d = datagrams
        .iter()
        .find(|d| d.dst.port() == PXE_PORT)
        .expect("the capture holds the port-4011 request");
    assert_eq!(
        d.src,
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 242, 127), 4011)
    );
    let mut server = DhcpServer::new(config(true, &RULES), &mut [][..]);
    let mut tx = [0u8; 1500];
    let rx = Received {
        src: d.src,
        dst: d.dst,
        payload: &d.payload,
    };
    let Some(t) = server
        .handle(Instant::ZERO, &rx, &mut tx)
        .unwrap()
        .transmit()
    else {
        panic!("4011 request not answered")
    };
    assert_eq!(t.dst, Destination::Unicast(d.src));
    let reply = Repr::parse(&Packet::new_checked(&tx[..t.len]).unwrap()).unwrap();
    assert_eq!(reply.boot_file, EFI_FILE.as_bytes());
    assert_eq!(reply.client_ip, Ipv4Addr::new(192, 168, 242, 127));
}
