//! Property tests for the DHCP wire layer and server: no panics on arbitrary bytes, parse/emit
//! round trips, and lease-pool invariants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use pocketpxe_core::dhcp::{
    BootRule, ClientClass, DhcpConfig, DhcpOutcome, DhcpServer, IgnoreReason, LeaseSlot, Mode,
    PXE_PORT, Pool,
};
use pocketpxe_core::net::{Mac, Received};
use pocketpxe_core::time::Instant;
use pocketpxe_core::wire::dhcp::{HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use proptest::prelude::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const RULES: [BootRule<'static>; 3] = [
    BootRule::new(ClientClass::Bios, "pxelinux.0"),
    BootRule::new(ClientClass::EfiX64, "bootx64.efi"),
    BootRule::new(ClientClass::Ipxe, "boot.ipxe"),
];
const POOL: Pool = Pool {
    start: Ipv4Addr::new(10, 0, 0, 10),
    end: Ipv4Addr::new(10, 0, 0, 14),
};

fn config(proxy: bool) -> DhcpConfig<'static> {
    let mode = if proxy {
        Mode::Proxy
    } else {
        Mode::Authoritative {
            pool: POOL,
            lease_time: Duration::from_secs(100),
            router: Some(SERVER),
            dns: &[SERVER],
            broadcast: None,
            relay_subnets: &[],
        }
    };
    let mut cfg = DhcpConfig::new(SERVER, Ipv4Addr::new(255, 255, 255, 0), mode);
    cfg.boot = &RULES;
    cfg
}

/// A DHCP header with the magic cookie, then options built from TLVs of interesting codes,
/// sometimes broken (so parse and handle see both good and bad option areas).
fn dhcpish() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        Just(53u8),
        Just(54),
        Just(50),
        Just(57),
        Just(55),
        Just(60),
        Just(61),
        Just(77),
        Just(93),
        Just(94),
        Just(97),
        Just(175),
        Just(43),
        Just(52),
        Just(1),
        Just(3),
        Just(6),
        Just(51),
        Just(0),
        any::<u8>(),
    ];
    let tlv = (
        code,
        prop::collection::vec(any::<u8>(), 0..8),
        any::<bool>(),
    );
    (
        prop::collection::vec(any::<u8>(), 236),
        prop::collection::vec(tlv, 0..12),
        0u8..4,
        any::<bool>(),
    )
        .prop_map(|(mut header, tlvs, op, end)| {
            header[0] = [1, 2, 1, 3][usize::from(op)]; // mostly valid, sometimes not
            header[1] = 1;
            header[2] = 6;
            header.extend_from_slice(&[99, 130, 83, 99]);
            for (code, data, good_len) in tlvs {
                header.push(code);
                if code == 0 || code == 255 {
                    continue;
                }
                let len = if good_len {
                    data.len() as u8
                } else {
                    data.len() as u8 + 3
                };
                header.push(len);
                header.extend_from_slice(&data);
            }
            if end {
                header.push(255);
            }
            header
        })
}

fn handle_bytes(server: &mut DhcpServer<'_>, bytes: &[u8], port: u16) -> DhcpOutcome {
    let rx = Received {
        src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 99), 68),
        dst: SocketAddrV4::new(SERVER, port),
        payload: bytes,
    };
    let mut tx = [0u8; 1500];
    server.handle(Instant::ZERO, &rx, &mut tx).unwrap()
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = Repr::parse(&p);
            let _ = p.options().iter().count();
        }
    }

    #[test]
    fn parse_never_panics_on_dhcpish(bytes in dhcpish()) {
        let p = Packet::new_checked(&bytes[..]).unwrap();
        if let Ok(repr) = Repr::parse(&p) {
            // Every OptionBytes reads without panicking.
            for v in [repr.vendor_class_id, repr.client_arch, repr.user_class, repr.vendor_specific] {
                let _ = v.map(|v| v.len());
            }
        }
    }

    #[test]
    fn emit_parse_round_trips(bytes in dhcpish()) {
        let p = Packet::new_checked(&bytes[..]).unwrap();
        if let Ok(repr) = Repr::parse(&p) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
            let again = Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap();
            prop_assert_eq!(again, repr);
            // Emission never uses overload.
            let q = Packet::new_checked(&out[..]).unwrap();
            prop_assert!(!q.options().iter().any(|o| o.unwrap().code == 52));
        }
    }

    #[test]
    fn server_never_panics(
        bytes in prop_oneof![dhcpish(), prop::collection::vec(any::<u8>(), 0..400)],
        proxy in any::<bool>(),
        port in prop_oneof![Just(67u16), Just(PXE_PORT)],
    ) {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut server = DhcpServer::new(config(proxy), &mut slots[..]);
        let _ = handle_bytes(&mut server, &bytes, port);
        let mut tiny = [0u8; 10];
        let rx = Received {
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, port),
            payload: &bytes,
        };
        let _ = server.handle(Instant::from_millis(1), &rx, &mut tiny);
        server.handle_timeout(Instant::from_millis(u64::MAX));
        while server.poll_event().is_some() {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Discover { client: u8, wants: Option<u8> },
    Request { client: u8, ip: u8, selecting: bool },
    Decline { client: u8, ip: u8 },
    Release { client: u8, ip: u8 },
    Wait { ms: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    let client = 0u8..8;
    let ip = 8u8..17; // around the pool .10-.14
    prop_oneof![
        4 => (client.clone(), prop::option::of(ip.clone()))
            .prop_map(|(client, wants)| Step::Discover { client, wants }),
        4 => (client.clone(), ip.clone(), any::<bool>())
            .prop_map(|(client, ip, selecting)| Step::Request { client, ip, selecting }),
        1 => (client.clone(), ip.clone()).prop_map(|(client, ip)| Step::Decline { client, ip }),
        1 => (client, ip).prop_map(|(client, ip)| Step::Release { client, ip }),
        1 => (0u64..200_000).prop_map(|ms| Step::Wait { ms }),
    ]
}

fn mac(client: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, client]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Lease invariants: no address is held by two MACs; every offer and ACK is inside the pool;
    /// an address is never offered or acknowledged to one client while another holds it; an
    /// exhausted pool answers nothing.
    #[test]
    fn pool_invariants(steps in prop::collection::vec(step(), 1..60), slots_n in 2usize..10) {
        let mut slots = vec![LeaseSlot::EMPTY; slots_n];
        let mut server = DhcpServer::new(config(false), &mut slots[..]);
        let mut now = 0u64;
        // ip -> (mac, until): what the server has promised (offers and ACKs).
        // ip -> (mac, until, is a lease rather than an offer)
        let mut promised: HashMap<Ipv4Addr, ([u8; 6], u64, bool)> = HashMap::new();
        let mut declined: HashMap<Ipv4Addr, u64> = HashMap::new();
        for step in steps {
            now += 1;
            let (kind, client, ip, selecting) = match step {
                Step::Wait { ms } => {
                    now += ms;
                    server.handle_timeout(Instant::from_millis(now));
                    while server.poll_event().is_some() {}
                    continue;
                }
                Step::Discover { client, wants } => (MessageType::Discover, client, wants, false),
                Step::Request { client, ip, selecting } => (MessageType::Request, client, Some(ip), selecting),
                Step::Decline { client, ip } => (MessageType::Decline, client, Some(ip), false),
                Step::Release { client, ip } => (MessageType::Release, client, Some(ip), false),
            };
            let mut r = Repr::new(Op::Request, u32::from(client), HwAddr::ethernet(mac(client)));
            r.message_type = Some(kind);
            r.vendor_class_id = (client % 2 == 0).then_some(OptionBytes::new(b"PXEClient"));
            let addr = ip.map(|i| Ipv4Addr::new(10, 0, 0, i));
            match kind {
                MessageType::Release => r.client_ip = addr.unwrap(),
                MessageType::Request if !selecting && client % 3 == 0 => r.client_ip = addr.unwrap(),
                _ => r.requested_ip = addr,
            }
            if selecting || kind == MessageType::Decline {
                r.server_identifier = Some(SERVER);
            }
            let mut bytes = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
            let rx = Received {
                src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
                dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
                payload: &bytes,
            };
            let mut tx = [0u8; 1500];
            let outcome = server.handle(Instant::from_millis(now), &rx, &mut tx).unwrap();
            while server.poll_event().is_some() {}
            let macs: Vec<[u8; 6]> = server.leases().map(|l| l.mac).collect();
            for (i, m) in macs.iter().enumerate() {
                prop_assert!(!macs[i + 1..].contains(m), "{:?} holds two leases", m);
            }
            promised.retain(|_, (_, until, _)| *until > now);
            match outcome {
                DhcpOutcome::Reply { transmit: t, summary } => {
                    let reply = Repr::parse(&Packet::new_checked(&tx[..t.len]).unwrap()).unwrap();
                    let yi = reply.your_ip;
                    // The summary tells what the bytes say.
                    prop_assert_eq!(summary.reply, reply.message_type);
                    prop_assert_eq!(summary.mac, Mac(mac(client)));
                    prop_assert_eq!(summary.your_ip, Some(yi).filter(|ip| !ip.is_unspecified()));
                    match reply.message_type.unwrap() {
                        MessageType::Offer | MessageType::Ack => {
                            prop_assert!(POOL.contains(yi), "{yi} outside the pool");
                            prop_assert_ne!(yi, SERVER);
                            if let Some((holder, _, _)) = promised.get(&yi) {
                                prop_assert_eq!(*holder, mac(client), "{} promised twice", yi);
                            }
                            let hold = if reply.message_type == Some(MessageType::Ack) { 100_000 } else { 60_000 };
                            let ack = reply.message_type == Some(MessageType::Ack);
                            if ack {
                                // One binding per client: an ACK withdraws the client's other
                                // offers and moves any other lease of it to `yi`.
                                promised.retain(|ip, (m, _, _)| *ip == yi || *m != mac(client));
                            }
                            let (until, was_lease) = promised
                                .get(&yi)
                                .map_or((0, false), |p| (p.1, p.2));
                            promised.insert(yi, (mac(client), until.max(now + hold), ack || was_lease));
                        }
                        MessageType::Nak => {}
                        other => prop_assert!(false, "unexpected reply {:?}", other),
                    }
                }
                DhcpOutcome::Handled { .. } => {
                    // The address is no longer this client's; a declined one is quarantined.
                    if let Some(addr) = addr {
                        promised.remove(&addr);
                        if kind == MessageType::Decline {
                            declined.insert(addr, now + 600_000);
                        }
                    }
                }
                DhcpOutcome::Ignored { reason: IgnoreReason::PoolExhausted, .. } => {
                    // Only when every pool address is really taken (promised or quarantined).
                    for a in POOL.iter() {
                        prop_assert!(
                            promised.contains_key(&a) || declined.get(&a).is_some_and(|u| *u > now),
                            "pool exhausted while {} is free", a
                        );
                    }
                }
                DhcpOutcome::Ignored { .. } => {}
            }
            // No address held by two MACs.
            let mut seen = HashMap::new();
            for lease in server.leases() {
                prop_assert!(POOL.contains(lease.ip));
                if let Some(other) = seen.insert(lease.ip, lease.mac) {
                    prop_assert_eq!(other, lease.mac, "{} held twice", lease.ip);
                }
            }
        }
    }

    /// A pool with more clients than addresses hands each address to one client, then answers
    /// PoolExhausted.
    #[test]
    fn exhausted_pool_answers_nothing(extra in 1u8..6) {
        let mut slots = [LeaseSlot::EMPTY; 32];
        let mut server = DhcpServer::new(config(false), &mut slots[..]);
        let mut given = Vec::new();
        for client in 0..(5 + extra) {
            let mut r = Repr::new(Op::Request, 7, HwAddr::ethernet(mac(client)));
            r.message_type = Some(MessageType::Discover);
            let mut bytes = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
            let outcome = handle_bytes(&mut server, &bytes, 67);
            if client < 5 {
                let DhcpOutcome::Reply { .. } = outcome else {
                    panic!("client {client}: {outcome:?}")
                };
                given.push(client);
            } else {
                prop_assert_eq!(outcome.ignore_reason(), Some(IgnoreReason::PoolExhausted));
            }
        }
        prop_assert_eq!(given.len(), 5);
    }
}
