//! The TFTP DATA hot path of the core: bytes per second emitting DATA from an in-memory store,
//! next to a bare memcpy of the same bytes in the same run.
//!
//! One iteration sends one window (`windowsize` blocks, `blksize` bytes each) through
//! `poll_transmit` and acknowledges it, exactly as a driver would. The memcpy baseline copies
//! the same block payloads from the same file into the same buffer.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pocketpxe_core::tftp::{Handled, RequestOutcome, Slot, TftpConfig, TftpEvent, TftpServer};
use pocketpxe_core::{Instant, MemStore, Received};

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 69);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3000);
const FILE_LEN: usize = 32 << 20;

fn rrq(blksize: u16, windowsize: u16) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(b"f\0octet\0");
    p.extend_from_slice(format!("blksize\0{blksize}\0windowsize\0{windowsize}\0").as_bytes());
    p
}

fn data_path(c: &mut Criterion) {
    let file: Vec<u8> = (0..FILE_LEN).map(|i| (i * 31 % 251) as u8).collect();
    let files = [("f", &file[..])];
    let mut group = c.benchmark_group("tftp_data");
    for (blksize, windowsize) in [
        (512u16, 1u16),
        (1468, 1),
        (8192, 1),
        (512, 16),
        (1468, 16),
        (8192, 16),
    ] {
        let window_bytes = u64::from(blksize) * u64::from(windowsize);
        group.throughput(Throughput::Bytes(window_bytes));
        let label = format!("blksize {blksize} window {windowsize}");

        group.bench_function(BenchmarkId::new("core", &label), |b| {
            let mut store = MemStore::new(&files);
            let mut slots = vec![Slot::EMPTY; 1];
            let cfg = TftpConfig {
                max_blksize: 8192,
                ..TftpConfig::default()
            };
            let mut server = TftpServer::new(cfg, &mut slots[..]);
            let mut tx = vec![0u8; 4 + 8192];
            let request = rrq(blksize, windowsize);
            let now = Instant::ZERO;
            let start =
                |server: &mut TftpServer<'_, usize>, store: &mut MemStore<'_>, tx: &mut [u8]| {
                    let rx = Received {
                        src: CLIENT,
                        dst: SERVER,
                        payload: &request,
                    };
                    let RequestOutcome::Accepted(id) =
                        server.handle_request(now, &rx, store, tx).expect("tx fits")
                    else {
                        panic!("request refused")
                    };
                    // OACK, then ACK 0.
                    assert!(
                        server
                            .poll_transmit(now, id, store, tx)
                            .expect("tx fits")
                            .is_some()
                    );
                    let rx = Received {
                        src: CLIENT,
                        dst: SERVER,
                        payload: &[0, 4, 0, 0],
                    };
                    assert_eq!(server.handle(now, id, &rx), Handled::Accepted);
                    id
                };
            let mut id = start(&mut server, &mut store, &mut tx);
            b.iter(|| {
                let mut sent = 0;
                while let Some(t) = server
                    .poll_transmit(now, id, &mut store, &mut tx)
                    .expect("tx fits")
                {
                    black_box(&tx[..t.len]);
                    sent += 1;
                }
                // Every block is written at the start of `tx`: the last one is still there.
                let ack = [0, 4, tx[2], tx[3]];
                let rx = Received {
                    src: CLIENT,
                    dst: SERVER,
                    payload: &ack,
                };
                let _ = server.handle(now, id, &rx);
                if let Some(TftpEvent::Finished { .. }) = server.poll_event(&mut store) {
                    id = start(&mut server, &mut store, &mut tx);
                }
                sent
            });
        });

        group.bench_function(BenchmarkId::new("memcpy", &label), |b| {
            let mut tx = vec![0u8; 4 + 8192];
            let block = usize::from(blksize);
            let mut offset = 0usize;
            b.iter(|| {
                for _ in 0..windowsize {
                    if offset + block > FILE_LEN {
                        offset = 0;
                    }
                    tx[4..4 + block].copy_from_slice(&file[offset..offset + block]);
                    black_box(&tx[..4 + block]);
                    offset += block;
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, data_path);
criterion_main!(benches);
