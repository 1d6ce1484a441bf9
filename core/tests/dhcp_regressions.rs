//! Regressions found by fuzzing (fuzz/), each replayed through the public API.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use pocketpxe_core::dhcp::{DhcpConfig, DhcpOutcome, DhcpServer, LeaseSlot, Mode, Pool};
use pocketpxe_core::{Instant, Received};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);

/// A DHCPREQUEST (SELECTING: option 54 = us) for `ip` from `mac`.
fn request(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1;
    p[1] = 1;
    p[2] = 6;
    p[4..8].copy_from_slice(&[0, 8, 0, 1]);
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&[99, 130, 83, 99, 53, 1, 3, 54, 4]);
    p.extend_from_slice(&SERVER.octets());
    p.extend_from_slice(&[50, 4]);
    p.extend_from_slice(&ip.octets());
    p.push(255);
    p
}

/// fuzz/dhcp_server_seq crash-ac65fd0a: a client that asked for .7 and then for .3 (no offer in
/// between) held both addresses.
#[test]
fn a_client_moving_to_another_address_holds_one_lease() {
    let dns = [SERVER];
    let mode = Mode::Authoritative {
        pool: Pool {
            start: Ipv4Addr::new(192, 168, 242, 2),
            end: Ipv4Addr::new(192, 168, 242, 9),
        },
        lease_time: Duration::from_secs(194),
        router: Some(SERVER),
        dns: &dns,
        broadcast: None,
        relay_subnets: &[],
    };
    let cfg = DhcpConfig::new(SERVER, Ipv4Addr::new(255, 255, 255, 0), mode);
    let mut slots = [LeaseSlot::EMPTY; 6];
    let mut server = DhcpServer::new(cfg, &mut slots[..]);
    let mut tx = [0u8; 1500];
    let mac = [2, 0, 0, 0, 0, 7];
    for last in [7, 3] {
        let ip = Ipv4Addr::new(192, 168, 242, last);
        let payload = request(mac, ip);
        let rx = Received {
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
            payload: &payload,
        };
        let outcome = server.handle(Instant::ZERO, &rx, &mut tx).unwrap();
        assert!(matches!(outcome, DhcpOutcome::Reply { .. }), "{outcome:?}");
        while server.poll_event().is_some() {}
        let leases: Vec<_> = server.leases().collect();
        assert_eq!(leases.len(), 1, "one client, one lease: {leases:?}");
        assert_eq!((leases[0].mac, leases[0].ip), (mac, ip));
    }
}
