//! `pocketpxe bench tftp`: many concurrent TFTP downloads from one process, against any TFTP
//! server, with a summary of throughput, latency, retransmissions, failures and corruption.
//!
//! Every download is driven by the core's sans-IO [`TftpClient`]; each client is a small tokio
//! task with its own UDP socket, so a thousand clients cost little CPU; it reads a whole window
//! of DATA with one `recvmmsg(2)` ([`recv_slots`]). Content is verified:
//! against `--expect-sha256` when given, otherwise every download must match the first one.
//! The tool sends only to the one address it is given.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use clap::Args;
use pocketpxe_core::Received;
use pocketpxe_core::tftp::{ClientConfig, ClientInput, TftpClient};
use sha2::{Digest, Sha256};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::sys::clock::{Clock, sleep_until};
use crate::sys::udp_batch::{RecvSlots, recv_slots};

/// Flags of `pocketpxe bench tftp`.
#[derive(Debug, Clone, Args)]
pub struct BenchTftpArgs {
    /// The TFTP server to load (only this address is ever sent to).
    #[arg(long, value_name = "HOST:PORT")]
    pub server: SocketAddrV4,
    /// The file every client downloads.
    #[arg(long, value_name = "NAME")]
    pub file: String,
    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub clients: u32,
    /// `blksize` to ask for (RFC 2348); none asks for nothing (512).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub blksize: Option<u16>,
    /// `windowsize` to ask for (RFC 7440); none is lock-step.
    #[arg(long, value_name = "BLOCKS", value_parser = clap::value_parser!(u16).range(1..))]
    pub windowsize: Option<u16>,
    /// Downloads per client (default 1).
    #[arg(long, value_name = "R", conflicts_with = "duration",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: Option<u32>,
    /// Keep downloading for this long instead (e.g. 10s, 2m, 1m30s).
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub duration: Option<Duration>,
    /// The expected SHA-256 of the file (hex); otherwise all downloads must match the first.
    #[arg(long, value_name = "HEX")]
    pub expect_sha256: Option<String>,
    /// Client retransmission timeout in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Client retransmissions before a download counts as failed.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u8,
    /// Print one machine-readable JSON line instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Threads that drive the clients (one event loop each; clients are spread over them).
    /// One thread caps the load tool at one CPU: on a small machine, give it as many as there
    /// are CPUs to load a fast server fully.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

/// The outcome of a benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSummary {
    /// Downloads attempted.
    pub transfers: u64,
    /// Downloads that completed with the right content.
    pub ok: u64,
    /// Downloads that failed (error, timeout).
    pub failed: u64,
    /// Downloads that completed with wrong content.
    pub corrupt: u64,
    /// File bytes received by completed downloads.
    pub bytes: u64,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// Per-download time, median.
    pub p50: Duration,
    /// Per-download time, 99th percentile.
    pub p99: Duration,
    /// Client retransmissions (RRQ or ACK resent after a timeout).
    pub retransmits: u64,
    /// This process's CPU time (user + system).
    pub cpu: Duration,
    /// The first failure's description, if any.
    pub first_error: Option<String>,
}

impl BenchSummary {
    /// Aggregate throughput in MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The summary as one JSON object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"transfers\":{},\"ok\":{},\"failed\":{},\"corrupt\":{},\"bytes\":{},\"wall_s\":{:.3},\"mb_per_s\":{:.2},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"retransmits\":{},\"cpu_s\":{:.3}}}",
            self.transfers,
            self.ok,
            self.failed,
            self.corrupt,
            self.bytes,
            self.wall.as_secs_f64(),
            self.mb_per_s(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.retransmits,
            self.cpu.as_secs_f64()
        )
    }

    /// The summary as text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "transfers {} ok {} failed {} corrupt {}\n\
             {} bytes in {:.2} s: {:.1} MB/s aggregate\n\
             per transfer: p50 {:.1} ms, p99 {:.1} ms\n\
             retransmits {}; client CPU {:.2} s",
            self.transfers,
            self.ok,
            self.failed,
            self.corrupt,
            self.bytes,
            self.wall.as_secs_f64(),
            self.mb_per_s(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.retransmits,
            self.cpu.as_secs_f64()
        );
        if let Some(e) = &self.first_error {
            text.push_str(&format!("\nfirst failure: {e}"));
        }
        text
    }
}

/// Runs the benchmark described by `args`. Progress goes to stderr once a second.
///
/// # Errors
/// When `--expect-sha256` is not 64 hex digits, or no UDP socket can be opened.
pub async fn run_bench_tftp(args: BenchTftpArgs) -> anyhow::Result<BenchSummary> {
    let expected =
        match &args.expect_sha256 {
            Some(hex) => Some(parse_sha256(hex).ok_or_else(|| {
                anyhow::anyhow!("--expect-sha256 {hex}: not 64 hexadecimal digits")
            })?),
            None => None,
        };
    let cfg = ClientConfig {
        blksize: args.blksize,
        windowsize: args.windowsize,
        tsize: true,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
        max_retries: args.retries,
    };
    let rounds = args.rounds.unwrap_or(1);
    // One socket per client.
    crate::sys::fd_limit::raise_to(
        u64::from(args.clients) + crate::sys::fd_limit::RESERVED,
        "--clients",
    );
    let stop_at = args.duration.map(|d| StdInstant::now() + d);
    let progress = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_time();
    let started = StdInstant::now();

    // One copy of the name for every client and every dallying socket, for the whole run.
    let file: &'static [u8] = Box::leak(args.file.clone().into_bytes().into_boxed_slice());
    let mut tasks = Vec::with_capacity(args.clients as usize);
    for _ in 0..args.clients {
        let progress = progress.clone();
        let server = args.server;
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            let mut dallies = Vec::new();
            let mut round = 0;
            loop {
                let more = match stop_at {
                    Some(stop) => StdInstant::now() < stop,
                    None => round < rounds,
                };
                if !more {
                    break;
                }
                round += 1;
                let (result, dally) = download(cfg, server, file, &progress).await;
                results.push(result);
                dallies.extend(dally);
            }
            (results, dallies)
        }));
    }

    let ticker = tokio::spawn({
        let progress = progress.clone();
        async move {
            let mut last = 0;
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.tick().await;
            loop {
                interval.tick().await;
                let now = progress.load(Ordering::Relaxed);
                // A closed stderr loses the line; `eprintln!` would panic.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "bench: {:.1} MB received, {:.1} MB/s",
                    now as f64 / 1e6,
                    (now - last) as f64 / 1e6
                );
                last = now;
            }
        }
    });

    let mut results = Vec::new();
    let mut dallies = Vec::new();
    for task in tasks {
        match task.await {
            Ok((r, d)) => {
                results.extend(r);
                dallies.extend(d);
            }
            Err(e) => results.push(Err(format!("client task failed: {e}"))),
        }
    }
    ticker.abort();
    let wall = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    // Let the last sockets finish dallying (bounded by their own deadline), outside the timing.
    for dally in dallies {
        let _ = dally.await;
    }
    Ok(summarize(&results, expected, wall, cpu))
}

/// One completed download.
#[derive(Debug, Clone)]
struct Download {
    bytes: u64,
    elapsed: Duration,
    sha256: [u8; 32],
    retransmits: u64,
}

/// One download. On success the socket stays open a little longer in a task of its own (the
/// returned handle) to dally (RFC 1350 §6): if the final ACK was lost and the server sends the
/// last block again, it is acknowledged again, so the server sees the transfer end cleanly.
async fn download(
    cfg: ClientConfig,
    server: SocketAddrV4,
    file: &'static [u8],
    progress: &AtomicU64,
) -> (Result<Download, String>, Option<JoinHandle<()>>) {
    let socket = match UdpSocket::bind(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)).await
    {
        Ok(socket) => socket,
        Err(e) => return (Err(format!("cannot open a UDP socket: {e}")), None),
    };
    // Room for two whole windows of large blocks (the kernel's default, about 208 KiB, drops
    // part of a 16 × 65 464-byte window); best effort, capped by net.core.rmem_max.
    let window_bytes = (usize::from(cfg.blksize.unwrap_or(512)) + 64)
        * usize::from(cfg.windowsize.unwrap_or(1))
        * 2;
    if window_bytes > DEFAULT_RECV_BUFFER {
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(window_bytes.min(8 << 20));
    }
    let local = match socket.local_addr() {
        Ok(SocketAddr::V4(a)) => a,
        _ => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
    };
    let clock = Clock::new();
    let mut client = TftpClient::new(cfg, server, file);
    let mut hasher = Sha256::new();
    let mut tx = [0u8; 600];
    // One recvmmsg(2) takes a whole window: slots for `windowsize` datagrams and one more (so
    // that a whole window is a short read, which proves the queue empty without an EAGAIN
    // read), of the block size asked for (a longer datagram is cut and dropped; the server
    // must not send one), at most RX_BYTES_PER_CLIENT (large blocks: a window takes more reads).
    let slot = 4 + usize::from(cfg.blksize.unwrap_or(512).max(512));
    let slots = (usize::from(cfg.windowsize.unwrap_or(1)) + 1).min(RX_BYTES_PER_CLIENT / slot);
    let mut rx = RecvSlots::new(slots.max(2), slot);
    let started = StdInstant::now();
    loop {
        flush(&mut client, &clock, &socket, server, &mut tx).await;
        if let Some(outcome) = client.outcome() {
            return match outcome {
                Ok(bytes) => {
                    let done = Download {
                        bytes,
                        elapsed: started.elapsed(),
                        sha256: hasher.finalize().into(),
                        retransmits: u64::from(client.stats().retransmits),
                    };
                    let dally_until = tokio::time::Instant::now() + cfg.timeout * 2;
                    let dally = tokio::spawn(async move {
                        let mut rx = [0u8; 65536];
                        let mut tx = [0u8; 600];
                        loop {
                            tokio::select! {
                                received = socket.recv_from(&mut rx) => {
                                    if let Ok((len, SocketAddr::V4(src))) = received {
                                        let datagram = Received { src, dst: local, payload: &rx[..len] };
                                        let _ = client.handle(clock.now(), &datagram);
                                        flush(&mut client, &clock, &socket, server, &mut tx).await;
                                    }
                                }
                                () = tokio::time::sleep_until(dally_until) => return,
                            }
                        }
                    });
                    (Ok(done), Some(dally))
                }
                Err(e) => (Err(format!("{}: {e}", String::from_utf8_lossy(file))), None),
            };
        }
        let deadline = client.poll_timeout().map(|at| clock.deadline(at));
        tokio::select! {
            ready = socket.readable() => {
                let Ok(()) = ready else { continue };
                let mut n = 0;
                // A short read emptied the queue: reporting WouldBlock clears the readiness, so
                // the next turn waits instead of reading EAGAIN.
                let _ = socket.try_io(Interest::READABLE, || {
                    n = recv_slots(socket.as_fd(), &mut rx)?;
                    if n < rx.capacity() {
                        Err(std::io::ErrorKind::WouldBlock.into())
                    } else {
                        Ok(())
                    }
                });
                let now = clock.now();
                for i in 0..n {
                    let Some((Some(src), payload)) = rx.get(i) else { continue };
                    let datagram = Received { src, dst: local, payload };
                    if let ClientInput::Data { data, .. } = client.handle(now, &datagram) {
                        hasher.update(data);
                        progress.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                }
            }
            () = sleep_until(deadline) => client.handle_timeout(clock.now()),
        }
    }
}

/// Sends everything the client has queued, only ever to the server's address (its port 69 or
/// its transfer port).
async fn flush(
    client: &mut TftpClient<'_>,
    clock: &Clock,
    socket: &UdpSocket,
    server: SocketAddrV4,
    tx: &mut [u8],
) {
    while let Ok(Some(t)) = client.poll_transmit(clock.now(), tx) {
        if t.dst.ip() == server.ip() {
            let _ = socket.send_to(&tx[..t.len], t.dst).await;
        }
    }
}

fn summarize(
    results: &[Result<Download, String>],
    expected: Option<[u8; 32]>,
    wall: Duration,
    cpu: Duration,
) -> BenchSummary {
    let reference = expected.or_else(|| {
        results
            .iter()
            .find_map(|r| r.as_ref().ok())
            .map(|d| d.sha256)
    });
    let mut times: Vec<Duration> = Vec::new();
    let mut summary = BenchSummary {
        transfers: results.len() as u64,
        ok: 0,
        failed: 0,
        corrupt: 0,
        bytes: 0,
        wall,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        retransmits: 0,
        cpu,
        first_error: None,
    };
    for result in results {
        match result {
            Ok(d) => {
                summary.retransmits += d.retransmits;
                summary.bytes += d.bytes;
                times.push(d.elapsed);
                if Some(d.sha256) == reference {
                    summary.ok += 1;
                } else {
                    summary.corrupt += 1;
                    summary.first_error.get_or_insert_with(|| {
                        format!("content mismatch: sha256 {}", hex(&d.sha256))
                    });
                }
            }
            Err(e) => {
                summary.failed += 1;
                summary.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    times.sort();
    summary.p50 = percentile(&times, 50);
    summary.p99 = percentile(&times, 99);
    summary
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * pct).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// This process's CPU time (user + system): `CLOCK_PROCESS_CPUTIME_ID`.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Linux's default `SO_RCVBUF` (net.core.rmem_default), about 208 KiB.
const DEFAULT_RECV_BUFFER: usize = 212_992;

/// Receive buffer bytes per client at most (see `download`).
const RX_BYTES_PER_CLIENT: usize = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_parses() {
        let h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hex(&parse_sha256(h).unwrap()), h);
        assert!(parse_sha256("e3b0").is_none());
        assert!(parse_sha256(&"zz".repeat(32)).is_none());
    }

    #[test]
    fn summary_counts_corrupt_and_failed() {
        let d = |sha: u8, ms: u64| {
            Ok(Download {
                bytes: 10,
                elapsed: Duration::from_millis(ms),
                sha256: [sha; 32],
                retransmits: 1,
            })
        };
        let results = vec![d(1, 10), d(1, 30), d(2, 20), Err("timed out".to_owned())];
        let s = summarize(&results, None, Duration::from_secs(1), Duration::ZERO);
        assert_eq!((s.transfers, s.ok, s.corrupt, s.failed), (4, 2, 1, 1));
        assert_eq!(s.bytes, 30);
        assert_eq!(s.retransmits, 3);
        assert_eq!(s.p50, Duration::from_millis(20));
        assert_eq!(s.p99, Duration::from_millis(30));
        let s = summarize(
            &results,
            Some([2; 32]),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        assert_eq!((s.ok, s.corrupt), (1, 2));
        assert!(s.to_json().starts_with("{\"transfers\":4,\"ok\":1,"));
    }
}
