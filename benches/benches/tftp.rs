//! The TFTP DATA hot path of the core: bytes per second emitting DATA from an in-memory store,
//! measured interleaved with a bare memcpy of the same bytes.
//!
//! One iteration sends one window (`windowsize` blocks, `blksize` bytes each) through
//! `poll_transmit` and takes its ACK, as the host driver does when a transfer's socket is
//! readable (it drains that transfer directly; the readiness queue serves the turns after a
//! timeout). Each transfer is set up through the core's reference drive loop (`tftp::drive`). The memcpy baseline copies
//! the same block payloads from the same file into the same buffer.
//!
//! Both run in turns of [`CHUNK`] windows within one measurement (core, memcpy, memcpy, core,
//! …), each timed on its own, so that a change in the machine's memory bandwidth during a run
//! affects both alike. Criterion reports each side (`core`, `memcpy`); after each setting the
//! bench prints `core ÷ memcpy` throughput over every interleaved window of both measurements.

use std::cell::Cell;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant as WallClock};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pocketpxe_core::tftp::drive;
use pocketpxe_core::tftp::{
    Handled, RequestOutcome, Slot, TftpConfig, TftpEvent, TftpServer, TransferId,
};
use pocketpxe_core::{Instant, MemStore, Received};

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 69);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3000);
const FILE_LEN: usize = 32 << 20;
/// Windows per turn: long enough that reading the clock costs little, short enough that both
/// sides see the same machine.
const CHUNK: u64 = 32;

fn rrq(blksize: u16, windowsize: u16) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(b"f\0octet\0");
    p.extend_from_slice(format!("blksize\0{blksize}\0windowsize\0{windowsize}\0").as_bytes());
    p
}

/// The core sending one file over and over, a window per call.
struct CoreSide<'a> {
    server: TftpServer<'a, usize>,
    store: MemStore<'a>,
    tx: Vec<u8>,
    request: Vec<u8>,
    id: TransferId,
}

impl<'a> CoreSide<'a> {
    fn new(
        slots: &'a mut [Slot<usize>],
        files: &'a [(&'a str, &'a [u8])],
        request: Vec<u8>,
    ) -> Self {
        let cfg = TftpConfig {
            max_blksize: 8192,
            ..TftpConfig::default()
        };
        let mut server = TftpServer::new(cfg, slots);
        let mut store = MemStore::new(files);
        let mut tx = vec![0u8; 4 + 8192];
        let id = start(&mut server, &mut store, &mut tx, &request);
        Self {
            server,
            store,
            tx,
            request,
            id,
        }
    }

    /// One window of DATA and its ACK.
    fn window(&mut self) -> usize {
        let now = Instant::ZERO;
        let mut sent = 0;
        while let Some(t) = self
            .server
            .poll_transmit(now, self.id, &mut self.store, &mut self.tx)
            .expect("tx fits")
        {
            black_box(&self.tx[..t.len]);
            sent += 1;
        }
        // Every block is written at the start of `tx`: the last one is still there.
        let ack = [0, 4, self.tx[2], self.tx[3]];
        let rx = Received {
            src: CLIENT,
            dst: SERVER,
            payload: &ack,
        };
        let _ = self.server.handle(now, self.id, &rx);
        if let Some(TftpEvent::Finished { .. }) = self.server.poll_event(&mut self.store) {
            self.id = start(
                &mut self.server,
                &mut self.store,
                &mut self.tx,
                &self.request,
            );
        }
        sent
    }
}

/// A new transfer: the request and its OACK through the drive loop, then ACK 0.
fn start(
    server: &mut TftpServer<'_, usize>,
    store: &mut MemStore<'_>,
    tx: &mut [u8],
    request: &[u8],
) -> TransferId {
    let now = Instant::ZERO;
    let rx = Received {
        src: CLIENT,
        dst: SERVER,
        payload: request,
    };
    let mut oack = 0;
    let outcome = drive::request(server, now, &rx, store, tx, |_| oack += 1).expect("tx fits");
    let RequestOutcome::Accepted { id, .. } = outcome else {
        panic!("request refused")
    };
    assert_eq!(oack, 1);
    let rx = Received {
        src: CLIENT,
        dst: SERVER,
        payload: &[0, 4, 0, 0],
    };
    assert_eq!(server.handle(now, id, &rx), Handled::Accepted);
    id
}

/// A bare copy of the same block payloads into the same buffer, a window per call.
struct CopySide<'a> {
    file: &'a [u8],
    tx: Vec<u8>,
    block: usize,
    windowsize: u16,
    offset: usize,
}

impl CopySide<'_> {
    fn window(&mut self) {
        for _ in 0..self.windowsize {
            if self.offset + self.block > FILE_LEN {
                self.offset = 0;
            }
            self.tx[4..4 + self.block]
                .copy_from_slice(&self.file[self.offset..self.offset + self.block]);
            black_box(&self.tx[..4 + self.block]);
            self.offset += self.block;
        }
    }
}

/// Time spent on each side over the interleaved windows of a setting.
#[derive(Default)]
struct Totals {
    core: Cell<Duration>,
    memcpy: Cell<Duration>,
    windows: Cell<u64>,
}

/// Runs `iters` windows of each side in alternating turns and returns the time of each.
fn interleaved(
    core: &mut CoreSide<'_>,
    copy: &mut CopySide<'_>,
    iters: u64,
) -> (Duration, Duration) {
    let (mut core_time, mut copy_time) = (Duration::ZERO, Duration::ZERO);
    let mut left = iters;
    let mut core_first = true;
    while left > 0 {
        let n = left.min(CHUNK);
        let time_core = |core: &mut CoreSide<'_>| {
            let start = WallClock::now();
            for _ in 0..n {
                black_box(core.window());
            }
            start.elapsed()
        };
        let time_copy = |copy: &mut CopySide<'_>| {
            let start = WallClock::now();
            for _ in 0..n {
                copy.window();
            }
            start.elapsed()
        };
        // Alternate which side goes first, so neither always follows the other.
        if core_first {
            core_time += time_core(core);
            copy_time += time_copy(copy);
        } else {
            copy_time += time_copy(copy);
            core_time += time_core(core);
        }
        left -= n;
        core_first = !core_first;
    }
    (core_time, copy_time)
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
        let mut slots = vec![Slot::EMPTY; 1];
        let mut core = CoreSide::new(&mut slots, &files, rrq(blksize, windowsize));
        let mut copy = CopySide {
            file: &file,
            tx: vec![0u8; 4 + 8192],
            block: usize::from(blksize),
            windowsize,
            offset: 0,
        };
        let totals = Totals::default();
        let mut run = |iters: u64| {
            let (core_time, copy_time) = interleaved(&mut core, &mut copy, iters);
            totals.core.set(totals.core.get() + core_time);
            totals.memcpy.set(totals.memcpy.get() + copy_time);
            totals.windows.set(totals.windows.get() + iters);
            (core_time, copy_time)
        };
        group.bench_function(BenchmarkId::new("core", &label), |b| {
            b.iter_custom(|iters| run(iters).0);
        });
        group.bench_function(BenchmarkId::new("memcpy", &label), |b| {
            b.iter_custom(|iters| run(iters).1);
        });
        let windows = totals.windows.get().max(1) as f64;
        let per_window = |d: Duration| d.as_secs_f64() * 1e9 / windows;
        let (core_ns, copy_ns) = (
            per_window(totals.core.get()),
            per_window(totals.memcpy.get()),
        );
        let gib_s = |ns: f64| window_bytes as f64 / ns * 1e9 / f64::from(1u32 << 30);
        println!(
            "tftp_data/interleaved/{label}: core {core_ns:.0} ns ({:.2} GiB/s), memcpy \
             {copy_ns:.0} ns ({:.2} GiB/s) per window; core ÷ memcpy {:.2}× over {windows} windows",
            gib_s(core_ns),
            gib_s(copy_ns),
            copy_ns / core_ns,
        );
    }
    group.finish();
}

criterion_group!(benches, data_path);
criterion_main!(benches);
