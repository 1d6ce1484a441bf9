//! The DHCP server (authoritative or proxy) fed an arbitrary sequence of datagrams on ports 67
//! and 4011, mostly well-formed client messages with fuzzed fields, plus time steps. Nothing may
//! panic, replies fit, and the lease table keeps its invariants: no address held by two MACs,
//! no MAC holding two addresses, every lease inside the pool.
#![no_main]

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use pocketpxe_core::dhcp::{
    BootRule, ClientClass, DhcpConfig, DhcpOutcome, DhcpServer, LeaseSlot, Mode, PXE_PORT, Pool,
};
use pocketpxe_core::{Instant, Received};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);
const POOL: Pool = Pool {
    start: Ipv4Addr::new(192, 168, 242, 2),
    end: Ipv4Addr::new(192, 168, 242, 9),
};

/// A client message with fields from the input: type, MAC (from a small set, so clients
/// collide), requested address, server id, ciaddr, PXE-ness.
fn message(b: &[u8; 8]) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1;
    p[1] = 1;
    p[2] = 6;
    p[4..8].copy_from_slice(&[b[0], b[1], 0, 1]);
    p[10] = b[2] & 0x80; // broadcast flag
    if b[2] & 0x40 != 0 {
        p[12..16].copy_from_slice(&[192, 168, 242, b[3] % 12]); // ciaddr
    }
    if b[2] & 0x20 != 0 {
        p[24..28].copy_from_slice(&[10, 9, 8, 7]); // giaddr
    }
    p[28..34].copy_from_slice(&[2, 0, 0, 0, 0, b[4] % 12]);
    p.extend_from_slice(&[99, 130, 83, 99]);
    p.extend_from_slice(&[53, 1, 1 + b[5] % 8]);
    if b[6] & 1 != 0 {
        p.extend_from_slice(&[54, 4, 192, 168, 242, if b[6] & 2 != 0 { 1 } else { 254 }]);
    }
    if b[6] & 4 != 0 {
        p.extend_from_slice(&[50, 4, 192, 168, 242, b[7] % 12]);
    }
    if b[6] & 8 != 0 {
        p.extend_from_slice(&[60, 32]);
        p.extend_from_slice(b"PXEClient:Arch:00007:UNDI:003000");
        p.extend_from_slice(&[93, 2, 0, b[7] % 12]);
    }
    if b[6] & 16 != 0 {
        p.extend_from_slice(&[77, 4, b'i', b'P', b'X', b'E']);
    }
    if b[6] & 32 != 0 {
        p.extend_from_slice(&[57, 2, 2, 64, 55, 4, 1, 3, 66, 67]);
    }
    p.push(255);
    p
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode_byte, mut rest)) = data.split_first() else {
        return;
    };
    let dns = [SERVER];
    let boot = [
        BootRule::new(ClientClass::Bios, "pxelinux.0"),
        BootRule::new(ClientClass::EfiX64, "bootnetx64.efi"),
        BootRule::new(ClientClass::Ipxe, "boot.ipxe"),
    ];
    let mode = if mode_byte & 1 == 0 {
        Mode::Authoritative {
            pool: POOL,
            lease_time: Duration::from_secs(60 + u64::from(mode_byte)),
            router: Some(SERVER),
            dns: &dns,
            broadcast: None,
            relay_subnets: &[],
        }
    } else {
        Mode::Proxy
    };
    let mut cfg = DhcpConfig::new(SERVER, Ipv4Addr::new(255, 255, 255, 0), mode);
    cfg.boot = &boot;
    let mut slots = [LeaseSlot::EMPTY; 6];
    let mut server = DhcpServer::new(cfg, &mut slots[..]);
    let mut tx = [0u8; 1500];
    let mut now = Instant::ZERO;
    let mut steps = 0;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        steps += 1;
        if steps > 300 {
            break;
        }
        let port = if op & 0x10 != 0 { PXE_PORT } else { 67 };
        let payload = match op % 4 {
            0 | 1 => {
                let Some(b) = rest.get(..8) else { break };
                let b: [u8; 8] = b.try_into().expect("8 bytes");
                rest = &rest[8..];
                message(&b)
            }
            2 => {
                let n = usize::from(rest.first().copied().unwrap_or(0))
                    .min(rest.len().saturating_sub(1));
                let raw = rest.get(1..1 + n).unwrap_or(&[]).to_vec();
                rest = rest.get(1 + n..).unwrap_or(&[]);
                raw
            }
            _ => {
                let Some(&step) = rest.first() else { break };
                rest = &rest[1..];
                now = now + Duration::from_secs(u64::from(step));
                server.handle_timeout(now);
                while server.poll_event().is_some() {}
                continue;
            }
        };
        let rx = Received {
            src: SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                if port == PXE_PORT { PXE_PORT } else { 68 },
            ),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, port),
            payload: &payload,
        };
        match server
            .handle(now, &rx, &mut tx)
            .expect("1500 bytes hold any reply")
        {
            DhcpOutcome::Reply { transmit, summary } => {
                assert!(transmit.len <= tx.len());
                assert!(summary.reply.is_some(), "a reply is summarised as one");
            }
            DhcpOutcome::Handled { .. } | DhcpOutcome::Ignored { .. } => {}
        }
        while server.poll_event().is_some() {}
        let leases: Vec<_> = server.leases().copied().collect();
        for (i, a) in leases.iter().enumerate() {
            assert!(POOL.contains(a.ip), "lease outside the pool: {a:?}");
            for b in &leases[i + 1..] {
                assert_ne!(a.ip, b.ip, "one address, two leases");
                assert_ne!(a.mac, b.mac, "one MAC, two leases");
            }
        }
        if mode_byte & 1 != 0 {
            assert!(leases.is_empty(), "a proxy never leases");
        }
    }
});
