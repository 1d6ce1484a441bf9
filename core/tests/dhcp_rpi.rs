//! Raspberry Pi vectors: the DHCPDISCOVERs of a Pi 3B, 4 and 5 in `testdata/rpi/*.hex` (built
//! from the Raspberry Pi documentation; see its README) go through the core in dhcp and proxy
//! mode, and each reply is checked against docs/raspberry-pi.md §1.

#![cfg(feature = "rpi")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use pocketpxe_core::dhcp::{
    BootRule, ClientClass, DhcpConfig, DhcpEvent, DhcpOutcome, DhcpServer, IgnoreReason, Lease,
    LeaseSlot, Mode, Pool,
};
use pocketpxe_core::net::Received;
use pocketpxe_core::time::Instant;
use pocketpxe_core::wire::dhcp::{MessageType, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);
const MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const RULES: [BootRule<'static>; 2] = [
    BootRule::new(ClientClass::Bios, "pxelinux.0"),
    BootRule::new(ClientClass::RaspberryPi, "rpi"),
];
/// Option 43 as the bootloader needs it: discovery control 3, menu prompt "PXE", and the boot
/// menu item "Raspberry Pi Boot" with three trailing spaces.
const OPTION_43: &[u8] = b"\x06\x01\x03\x0a\x04\x00PXE\x09\x17\x00\x00\x14Raspberry Pi Boot   \xff";
const LEASE: Duration = Duration::from_secs(3600);

/// The bytes of `testdata/rpi/NAME`: hex pairs, `#` to the end of a line is a comment.
fn vector(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/rpi")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (missing from the checkout?)", path.display()));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(str::split_whitespace)
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
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
            lease_time: LEASE,
            router: Some(SERVER),
            dns: &[],
            broadcast: None,
            relay_subnets: &[],
        }
    };
    let mut cfg = DhcpConfig::new(SERVER, MASK, mode);
    cfg.boot = rules;
    cfg
}

/// Sends `payload` from port 68 to port 67 at `ms`; the outcome and the reply's bytes.
fn send(server: &mut DhcpServer<'_>, ms: u64, payload: &[u8]) -> (DhcpOutcome, Vec<u8>) {
    let rx = Received {
        src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
        payload,
    };
    let mut tx = [0u8; 1500];
    let outcome = server
        .handle(Instant::from_millis(ms), &rx, &mut tx)
        .unwrap();
    let len = outcome.transmit().map_or(0, |t| t.len);
    (outcome, tx[..len].to_vec())
}

fn parse(bytes: &[u8]) -> Repr<'_> {
    Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}

/// The DHCPREQUEST (SELECTING) that follows `discover` for `offered` from us.
fn request_for(discover: &[u8], offered: Ipv4Addr) -> Vec<u8> {
    let mut r = parse(discover);
    r.message_type = Some(MessageType::Request);
    r.requested_ip = Some(offered);
    r.server_identifier = Some(SERVER);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}

/// `packet` from another MAC address.
fn with_mac(packet: &[u8], mac: [u8; 6]) -> Vec<u8> {
    let mut out = packet.to_vec();
    out[28..34].copy_from_slice(&mac);
    out
}

/// What every answer to a Pi carries (docs/raspberry-pi.md §1).
fn assert_pi_boot(reply: &Repr<'_>, what: &str) {
    assert_eq!(reply.server_ip, SERVER, "{what}: siaddr");
    assert_eq!(reply.boot_file, b"bootcode.bin", "{what}: file");
    assert_eq!(
        reply.vendor_class_id,
        Some(OptionBytes::new(b"PXEClient")),
        "{what}: option 60"
    );
    assert_eq!(
        reply.vendor_specific,
        Some(OptionBytes::new(OPTION_43)),
        "{what}: option 43"
    );
}

#[test]
fn vectors_are_what_their_notes_say() {
    for (name, mac, tag) in [
        (
            "pi3b-discover.hex",
            [0xb8, 0x27, 0xeb, 0x28, 0xf6, 0x6d],
            &b"DDD"[..],
        ),
        (
            "pi4-discover.hex",
            [0xdc, 0xa6, 0x32, 0x01, 0x36, 0xc2],
            b"RPi4",
        ),
        (
            "pi5-discover.hex",
            [0xd8, 0x3a, 0xdd, 0xe8, 0x27, 0x1e],
            b"RPi5",
        ),
    ] {
        let bytes = vector(name);
        let r = parse(&bytes);
        assert_eq!(r.client_hw_addr.mac(), Some(mac), "{name}");
        assert_eq!(r.message_type, Some(MessageType::Discover), "{name}");
        assert_eq!(r.client_arch, Some(OptionBytes::new(&[0, 0])), "{name}");
        let vendor = r.vendor_class_id.unwrap();
        assert!(
            vendor == OptionBytes::new(b"PXEClient:Arch:00000:UNDI:002001"),
            "{name}"
        );
        let uuid: Vec<u8> = r.client_uuid.unwrap().bytes().collect();
        assert_eq!((uuid.len(), uuid[0]), (17, 0), "{name}");
        assert!(uuid[1..].starts_with(tag), "{name}");
    }
    // The documentation's tcpdump: "length 320".
    assert_eq!(vector("pi3b-discover.hex").len(), 320);
}

#[test]
fn pi3b_is_bound_at_offer_time_in_dhcp_mode() {
    let discover = vector("pi3b-discover.hex");
    let mut slots = [LeaseSlot::EMPTY; 8];
    let mut server = DhcpServer::new(config(false, &RULES), &mut slots[..]);
    let (outcome, bytes) = send(&mut server, 0, &discover);
    // The binding is queued for the driver to store before the OFFER leaves.
    let events: Vec<_> = std::iter::from_fn(|| server.poll_event()).collect();
    let offer = parse(&bytes);
    assert_eq!(offer.message_type, Some(MessageType::Offer));
    assert_eq!(
        outcome.summary().unwrap().class,
        Some(ClientClass::RaspberryPi)
    );
    assert_pi_boot(&offer, "pi 3b offer");
    let lease = Lease {
        mac: [0xb8, 0x27, 0xeb, 0x28, 0xf6, 0x6d],
        ip: offer.your_ip,
        expires_at: Instant::from_millis(3_600_000),
    };
    assert_eq!(offer.your_ip, Ipv4Addr::new(192, 168, 242, 88));
    assert_eq!(offer.lease_time, Some(3600));
    assert_eq!(events, [DhcpEvent::LeaseGranted(lease)]);
    assert_eq!(server.leases().copied().collect::<Vec<_>>(), [lease]);
    // The ROM retries DISCOVER (five times, five seconds apart): the same address, renewed.
    let (_, bytes) = send(&mut server, 5000, &discover);
    assert_eq!(parse(&bytes).your_ip, lease.ip);
    let renewed = Lease {
        expires_at: Instant::from_millis(3_605_000),
        ..lease
    };
    assert_eq!(server.poll_event(), Some(DhcpEvent::LeaseRenewed(renewed)));
    // Long after an offer would have lapsed, the address is still the Pi's: no one else gets it.
    let buf = with_mac(&vector("pi4-discover.hex"), [2, 0, 0, 0, 0, 9]);
    server.handle_timeout(Instant::from_millis(600_000));
    let (_, bytes) = send(&mut server, 600_000, &buf);
    assert_ne!(parse(&bytes).your_ip, lease.ip);
}

#[test]
fn pi4_and_pi5_offer_then_ack_in_dhcp_mode() {
    for name in ["pi4-discover.hex", "pi5-discover.hex"] {
        let discover = vector(name);
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut server = DhcpServer::new(config(false, &RULES), &mut slots[..]);
        let (outcome, bytes) = send(&mut server, 0, &discover);
        let offer = parse(&bytes);
        assert_eq!(offer.message_type, Some(MessageType::Offer), "{name}");
        assert_eq!(
            outcome.summary().unwrap().class,
            Some(ClientClass::RaspberryPi)
        );
        assert_pi_boot(&offer, name);
        // Their EEPROM bootloaders send a DHCPREQUEST: the offer binds nothing yet.
        assert_eq!(server.poll_event(), None, "{name}");
        assert_eq!(server.leases().count(), 0, "{name}");
        let (_, bytes) = send(&mut server, 100, &request_for(&discover, offer.your_ip));
        let ack = parse(&bytes);
        assert_eq!(ack.message_type, Some(MessageType::Ack), "{name}");
        assert_eq!(ack.your_ip, offer.your_ip, "{name}");
        assert_pi_boot(&ack, name);
        assert!(matches!(
            server.poll_event(),
            Some(DhcpEvent::LeaseGranted(l)) if l.ip == offer.your_ip
        ));
    }
}

#[test]
fn proxy_mode_answers_every_pi_without_an_address() {
    for name in ["pi3b-discover.hex", "pi4-discover.hex", "pi5-discover.hex"] {
        let mut server = DhcpServer::new(config(true, &RULES), &mut [][..]);
        let (_, bytes) = send(&mut server, 0, &vector(name));
        let offer = parse(&bytes);
        assert_eq!(offer.message_type, Some(MessageType::Offer), "{name}");
        assert_eq!(offer.your_ip, Ipv4Addr::UNSPECIFIED, "{name}");
        assert_eq!(offer.lease_time, None, "{name}");
        assert_pi_boot(&offer, name);
        assert_eq!(server.poll_event(), None, "{name}: no lease in proxy mode");
    }
}

#[test]
fn without_an_rpi_rule_a_pi_is_not_sent_the_bios_file() {
    let rules: &'static [BootRule<'static>] = &RULES[..1];
    for name in ["pi3b-discover.hex", "pi4-discover.hex", "pi5-discover.hex"] {
        let mut server = DhcpServer::new(config(true, rules), &mut [][..]);
        let (outcome, _) = send(&mut server, 0, &vector(name));
        assert_eq!(
            outcome.ignore_reason(),
            Some(IgnoreReason::NoBootRule),
            "{name}"
        );
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut server = DhcpServer::new(config(false, rules), &mut slots[..]);
        let (_, bytes) = send(&mut server, 0, &vector(name));
        let offer = parse(&bytes);
        assert_eq!(offer.message_type, Some(MessageType::Offer), "{name}");
        assert_eq!(offer.boot_file, b"", "{name}: a plain lease");
        assert_eq!(offer.vendor_specific, None, "{name}");
    }
}

#[test]
fn a_pc_with_the_same_vendor_class_stays_bios() {
    // The Pi's vendor class is also iPXE's BIOS one (testdata/captures/bios-dhcp.pcap); without
    // the RPi tag or a Raspberry Pi MAC address the client is a PC.
    let buf = with_mac(
        &vector("pi3b-discover.hex"),
        [0x52, 0x54, 0, 0x12, 0x34, 0x56],
    );
    let mut slots = [LeaseSlot::EMPTY; 8];
    let mut server = DhcpServer::new(config(false, &RULES), &mut slots[..]);
    let (outcome, bytes) = send(&mut server, 0, &buf);
    let offer = parse(&bytes);
    assert_eq!(outcome.summary().unwrap().class, Some(ClientClass::Bios));
    assert_eq!(offer.boot_file, b"pxelinux.0");
    assert_eq!(server.poll_event(), None, "a PC is bound by its REQUEST");
}
