//! DHCP in the core: DISCOVER→OFFER and REQUEST→ACK per second, with lease tables of 64 and
//! 4 096 slots filled with as many clients (each iteration serves the next client in turn).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pocketpxe_benches::pxe_client_packet;
use pocketpxe_core::dhcp::{
    BootRule, ClientClass, DhcpConfig, DhcpOutcome, DhcpServer, LeaseSlot, Mode, Pool,
};
use pocketpxe_core::{Instant, Received};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

fn dora(c: &mut Criterion) {
    let boot = [BootRule::new(ClientClass::Bios, "pxelinux.0")];
    let dns = [SERVER_IP];
    let mut group = c.benchmark_group("dhcp_dora");
    group.throughput(Throughput::Elements(1));
    for clients in [64u32, 4096] {
        group.bench_function(
            BenchmarkId::new("discover_offer_request_ack", clients),
            |b| {
                let mode = Mode::Authoritative {
                    pool: Pool {
                        start: Ipv4Addr::new(10, 1, 0, 2),
                        end: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 2)) + clients - 1),
                    },
                    lease_time: Duration::from_secs(3600),
                    router: Some(SERVER_IP),
                    dns: &dns,
                    broadcast: None,
                    relay_subnets: &[],
                };
                let mut cfg = DhcpConfig::new(SERVER_IP, Ipv4Addr::new(255, 255, 0, 0), mode);
                cfg.boot = &boot;
                let mut slots = vec![LeaseSlot::EMPTY; clients as usize];
                let mut server = DhcpServer::new(cfg, &mut slots[..]);
                let mut tx = vec![0u8; 1500];
                let packets: Vec<(Vec<u8>, [u8; 6])> = (0..clients)
                    .map(|i| {
                        let mac = [2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8];
                        (pxe_client_packet(mac, i, None), mac)
                    })
                    .collect();
                let src = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
                let dst = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
                let mut next = 0usize;
                let mut now = Instant::ZERO;
                b.iter(|| {
                    let (discover, mac) = &packets[next];
                    next = (next + 1) % packets.len();
                    now = now + Duration::from_micros(1000);
                    let rx = Received {
                        src,
                        dst,
                        payload: discover,
                    };
                    let DhcpOutcome::Reply(offer) =
                        server.handle(now, &rx, &mut tx).expect("tx fits")
                    else {
                        panic!("no OFFER")
                    };
                    let yiaddr = Ipv4Addr::new(tx[16], tx[17], tx[18], tx[19]);
                    let _ = black_box(offer);
                    let request = pxe_client_packet(*mac, 7, Some((SERVER_IP, yiaddr)));
                    let rx = Received {
                        src,
                        dst,
                        payload: &request,
                    };
                    let DhcpOutcome::Reply(ack) =
                        server.handle(now, &rx, &mut tx).expect("tx fits")
                    else {
                        panic!("no ACK")
                    };
                    while server.poll_event().is_some() {}
                    black_box(ack)
                });
            },
        );
    }
    group.finish();
}

/// DISCOVER→OFFER for a client the server has never seen, with the pool already half taken:
/// the cost of finding the lowest free address (a boot storm of new machines). Each iteration
/// first lets the previous offer run out, so the pool stays exactly half bound.
fn offer_to_new_client(c: &mut Criterion) {
    let boot = [BootRule::new(ClientClass::Bios, "pxelinux.0")];
    let dns = [SERVER_IP];
    let mut group = c.benchmark_group("dhcp_new_client");
    group.throughput(Throughput::Elements(1));
    for pool_len in [64u32, 4096] {
        group.bench_function(
            BenchmarkId::new("discover_offer_pool_half_bound", pool_len),
            |b| {
                let start = Ipv4Addr::new(10, 1, 0, 2);
                let mode = Mode::Authoritative {
                    pool: Pool {
                        start,
                        end: Ipv4Addr::from(u32::from(start) + pool_len - 1),
                    },
                    lease_time: Duration::from_secs(365 * 24 * 3600),
                    router: Some(SERVER_IP),
                    dns: &dns,
                    broadcast: None,
                    relay_subnets: &[],
                };
                let mut cfg = DhcpConfig::new(SERVER_IP, Ipv4Addr::new(255, 255, 0, 0), mode);
                cfg.boot = &boot;
                let offer_hold = cfg.offer_hold;
                let mut slots = vec![LeaseSlot::EMPTY; pool_len as usize];
                let mut server = DhcpServer::new(cfg, &mut slots[..]);
                let mut tx = vec![0u8; 1500];
                let src = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68);
                let dst = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
                let mut now = Instant::ZERO;
                // Bind the first half of the pool.
                for i in 0..pool_len / 2 {
                    let mac = [2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8];
                    let discover = pxe_client_packet(mac, i, None);
                    let rx = Received {
                        src,
                        dst,
                        payload: &discover,
                    };
                    let DhcpOutcome::Reply(_) = server.handle(now, &rx, &mut tx).expect("tx fits")
                    else {
                        panic!("no OFFER")
                    };
                    let yiaddr = Ipv4Addr::new(tx[16], tx[17], tx[18], tx[19]);
                    let request = pxe_client_packet(mac, i, Some((SERVER_IP, yiaddr)));
                    let rx = Received {
                        src,
                        dst,
                        payload: &request,
                    };
                    let DhcpOutcome::Reply(_) = server.handle(now, &rx, &mut tx).expect("tx fits")
                    else {
                        panic!("no ACK")
                    };
                    while server.poll_event().is_some() {}
                }
                let discovers: Vec<Vec<u8>> = (0..1024u32)
                    .map(|i| pxe_client_packet([6, 0, 0, 0, (i >> 8) as u8, i as u8], i, None))
                    .collect();
                let mut next = 0usize;
                b.iter(|| {
                    now = now + offer_hold + Duration::from_secs(1);
                    server.handle_timeout(now);
                    let rx = Received {
                        src,
                        dst,
                        payload: &discovers[next],
                    };
                    next = (next + 1) % discovers.len();
                    let DhcpOutcome::Reply(offer) =
                        server.handle(now, &rx, &mut tx).expect("tx fits")
                    else {
                        panic!("no OFFER")
                    };
                    black_box(offer)
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, dora, offer_to_new_client);
criterion_main!(benches);
