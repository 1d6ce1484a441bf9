//! DHCP in the core: DISCOVER→OFFER and REQUEST→ACK per second, with lease tables of 64 and
//! 4 096 slots filled with as many clients (each iteration serves the next client in turn);
//! a new client's whole DORA on a /16 with 64 and with 50 000 leases held; and DISCOVER→OFFER
//! to a client never seen before, with the pool half bound.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pocketpxe_benches::pxe_client_packet;
use pocketpxe_core::dhcp::{
    BootRule, ClientClass, DhcpConfig, DhcpOutcome, DhcpServer, Lease, LeaseSlot, Mode, Pool,
};
use pocketpxe_core::{Instant, Received, Transmit};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const BOOT: [BootRule<'static>; 1] = [BootRule::new(ClientClass::Bios, "pxelinux.0")];
const DNS: [Ipv4Addr; 1] = [SERVER_IP];

/// A server leasing `pool_len` addresses after [`SERVER_IP`] for `lease_time`, BIOS clients
/// booting `pxelinux.0`.
fn config(pool_len: u32, lease_time: Duration) -> DhcpConfig<'static> {
    let start = Ipv4Addr::new(10, 1, 0, 2);
    let mode = Mode::Authoritative {
        pool: Pool {
            start,
            end: Ipv4Addr::from(u32::from(start) + pool_len - 1),
        },
        lease_time,
        router: Some(SERVER_IP),
        dns: &DNS,
        broadcast: None,
        relay_subnets: &[],
    };
    let mut cfg = DhcpConfig::new(SERVER_IP, Ipv4Addr::new(255, 255, 0, 0), mode);
    cfg.boot = &BOOT;
    cfg
}

/// Hands `payload` (from a client, broadcast) to the server; panics unless it replies.
fn reply(server: &mut DhcpServer<'_>, now: Instant, payload: &[u8], tx: &mut [u8]) -> Transmit {
    let rx = Received {
        src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
        dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
        payload,
    };
    match server.handle(now, &rx, tx).expect("tx fits") {
        DhcpOutcome::Reply { transmit, .. } => transmit,
        other => panic!("no reply: {other:?}"),
    }
}

/// DISCOVER (already built) → OFFER, REQUEST → ACK for `mac`; the lease events are drained as
/// a driver would after saving them. Returns the ACK.
fn handshake(
    server: &mut DhcpServer<'_>,
    now: Instant,
    mac: [u8; 6],
    discover: &[u8],
    tx: &mut [u8],
) -> Transmit {
    let offer = reply(server, now, discover, tx);
    let yiaddr = Ipv4Addr::new(tx[16], tx[17], tx[18], tx[19]);
    let _ = black_box(offer);
    let request = pxe_client_packet(mac, 7, Some((SERVER_IP, yiaddr)));
    let ack = reply(server, now, &request, tx);
    while server.poll_event().is_some() {}
    ack
}

fn mac_of(i: u32) -> [u8; 6] {
    [2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn dora(c: &mut Criterion) {
    let mut group = c.benchmark_group("dhcp_dora");
    group.throughput(Throughput::Elements(1));
    for clients in [64u32, 4096] {
        group.bench_function(
            BenchmarkId::new("discover_offer_request_ack", clients),
            |b| {
                let mut slots = vec![LeaseSlot::EMPTY; clients as usize];
                let mut server =
                    DhcpServer::new(config(clients, Duration::from_secs(3600)), &mut slots[..]);
                let mut tx = vec![0u8; 1500];
                let packets: Vec<(Vec<u8>, [u8; 6])> = (0..clients)
                    .map(|i| (pxe_client_packet(mac_of(i), i, None), mac_of(i)))
                    .collect();
                let mut next = 0usize;
                let mut now = Instant::ZERO;
                b.iter(|| {
                    let (discover, mac) = &packets[next];
                    next = (next + 1) % packets.len();
                    now = now + Duration::from_micros(1000);
                    black_box(handshake(&mut server, now, *mac, discover, &mut tx))
                });
            },
        );
    }
    group.finish();
}

/// A new client's DISCOVER→OFFER, REQUEST→ACK on a /16 pool (65 533 addresses, 65 535 slots)
/// while `held` other leases (restored, a year long) fill its lowest addresses. The clients'
/// leases last 1 s and each iteration starts 1 s after the previous one, so the handshake also
/// expires the previous client's lease: the table holds `held` + 1 entries throughout, and the
/// cost of an allocation, a binding and an expiry is measured against its size.
fn dora_with_leases_held(c: &mut Criterion) {
    let mut group = c.benchmark_group("dhcp_dora_leases_held");
    group.throughput(Throughput::Elements(1));
    for held in [64u32, 50_000] {
        group.bench_function(BenchmarkId::new("new_client_slash16", held), |b| {
            let mut slots = vec![LeaseSlot::EMPTY; 65_535];
            let cfg = config(65_533, Duration::from_secs(1));
            let Mode::Authoritative { pool, .. } = cfg.mode else {
                unreachable!("config() is authoritative")
            };
            let mut server = DhcpServer::new(cfg, &mut slots[..]);
            let year = Instant::ZERO + Duration::from_secs(365 * 24 * 3600);
            for (i, ip) in (0..held).zip(pool.iter()) {
                let lease = Lease {
                    mac: mac_of(i),
                    ip,
                    expires_at: year,
                };
                server.restore(lease).expect("room for every lease");
            }
            let mut tx = vec![0u8; 1500];
            let clients: Vec<(Vec<u8>, [u8; 6])> = (0..1024u32)
                .map(|i| {
                    let mac = [6, 0, 0, 0, (i >> 8) as u8, i as u8];
                    (pxe_client_packet(mac, i, None), mac)
                })
                .collect();
            let mut next = 0usize;
            let mut now = Instant::ZERO;
            b.iter(|| {
                let (discover, mac) = &clients[next];
                next = (next + 1) % clients.len();
                now = now + Duration::from_secs(1);
                black_box(handshake(&mut server, now, *mac, discover, &mut tx))
            });
            assert_eq!(server.leases().count(), held as usize + 1);
        });
    }
    group.finish();
}

/// DISCOVER→OFFER for a client the server has never seen, with the pool already half taken:
/// the cost of finding the lowest free address (a boot storm of new machines). Each iteration
/// first lets the previous offer run out, so the pool stays exactly half bound.
fn offer_to_new_client(c: &mut Criterion) {
    let mut group = c.benchmark_group("dhcp_new_client");
    group.throughput(Throughput::Elements(1));
    for pool_len in [64u32, 4096] {
        group.bench_function(
            BenchmarkId::new("discover_offer_pool_half_bound", pool_len),
            |b| {
                let cfg = config(pool_len, Duration::from_secs(365 * 24 * 3600));
                let offer_hold = cfg.offer_hold;
                let mut slots = vec![LeaseSlot::EMPTY; pool_len as usize];
                let mut server = DhcpServer::new(cfg, &mut slots[..]);
                let mut tx = vec![0u8; 1500];
                let mut now = Instant::ZERO;
                for i in 0..pool_len / 2 {
                    let discover = pxe_client_packet(mac_of(i), i, None);
                    let _bound = handshake(&mut server, now, mac_of(i), &discover, &mut tx);
                }
                let discovers: Vec<Vec<u8>> = (0..1024u32)
                    .map(|i| pxe_client_packet([6, 0, 0, 0, (i >> 8) as u8, i as u8], i, None))
                    .collect();
                let mut next = 0usize;
                b.iter(|| {
                    now = now + offer_hold + Duration::from_secs(1);
                    server.handle_timeout(now);
                    let offer = reply(&mut server, now, &discovers[next], &mut tx);
                    next = (next + 1) % discovers.len();
                    black_box(offer)
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, dora, dora_with_leases_held, offer_to_new_client);
criterion_main!(benches);
