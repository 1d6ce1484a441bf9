//! Lossy links: downloads through the impairment relay (`relay/`) with 10 % loss,
//! 5 % duplication, 25 % reordering and 20 ms ± 10 ms delay in each direction complete with
//! the right bytes, with `pocketpxe bench tftp` (windowsize 1 and 16) and the tftp-hpa client.
//! The server's per-transfer log lines prove that no retransmission came from a duplicate ACK:
//! with windowsize 1 every retransmission is explained by a timeout, with a window by a timeout
//! or a gap (at most `windowsize` blocks each), while duplicate ACKs did arrive.
//!
//! DHCP through the same link: busybox udhcpc clients in one namespace, `pocketpxe serve` in
//! another, the relay's `DhcpBridge` in a namespace between them; every client gets a lease.
//!
//! TFTP talks to 127.0.0.1 only; DHCP only uses namespaces the test creates. Every wait is
//! bounded.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

/// The lossy-link tests run one at a time: each is timing-sensitive (retries against a 20 ms
/// link), and running them together on a 2-core machine starved udhcpc once.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

mod common;
mod relay;
mod serve_support;

use common::{Server, TempDir, json_field, make_file, run_bounded};
use relay::{Impairment, TftpRelay};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Per-transfer counters from one "transfer ended" log line.
#[derive(Debug, Default, Clone, Copy)]
struct Ended {
    ok: bool,
    /// Failed only because the client's last ACK never arrived: every block was acknowledged
    /// but the last window, which the client had (its content check passed). RFC 1350 has no
    /// acknowledgement of the final ACK, so a server cannot tell this from a lost client.
    final_ack_lost: bool,
    windowsize: u64,
    retransmits: u64,
    timeouts: u64,
    duplicate_acks: u64,
    gaps: u64,
}

fn ended_lines(log: &str) -> Vec<Ended> {
    log.lines()
        .filter(|l| l.contains("transfer ended"))
        .map(|l| Ended {
            ok: l.contains("outcome=ok"),
            // The client ACKs once per window, so with a window the server may still miss up
            // to a whole window's ACK when the client (which has no dally) is already done.
            final_ack_lost: l.contains("outcome=\"timed out\"")
                && field(l, "bytes").unwrap()
                    + field(l, "windowsize").unwrap_or(1) * field(l, "blksize").unwrap_or(512)
                    >= field(l, "size").unwrap_or(u64::MAX),
            windowsize: field(l, "windowsize").unwrap_or(1),
            retransmits: field(l, "retransmits").unwrap(),
            timeouts: field(l, "timeouts").unwrap(),
            duplicate_acks: field(l, "duplicate_acks").unwrap(),
            gaps: field(l, "gaps").unwrap(),
        })
        .collect()
}

/// `name=N` in a log line (the first occurrence, also inside `granted="… name=N …"`).
fn field(line: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=");
    let at = line
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())?
        .0
        + key.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Checks the Sorcerer's Apprentice rule on every ended transfer; returns the totals.
fn check_retransmissions(log: &str, want_transfers: usize) -> Ended {
    let ended = ended_lines(log);
    assert!(
        ended.len() >= want_transfers,
        "{} transfer-ended lines, want {want_transfers}:\n{log}",
        ended.len()
    );
    let mut total = Ended::default();
    let lost_final = ended.iter().filter(|e| e.final_ack_lost).count();
    eprintln!(
        "transfers whose final ACK was lost (client complete, server timed out): {lost_final}"
    );
    for e in &ended {
        assert!(e.ok || e.final_ack_lost, "a transfer failed: {e:?}\n{log}");
        // Each timeout resends at most one window; each gap ACK rewinds at most one window.
        // A resend caused by a duplicate ACK would show up as retransmissions beyond that.
        let explained = e.windowsize * (e.timeouts + e.gaps);
        assert!(
            e.retransmits <= explained,
            "retransmissions not explained by timeouts or gaps: {e:?}"
        );
        if e.windowsize == 1 {
            assert!(
                e.retransmits <= e.timeouts,
                "lockstep: a resend without a timeout: {e:?}"
            );
        }
        total.retransmits += e.retransmits;
        total.timeouts += e.timeouts;
        total.duplicate_acks += e.duplicate_acks;
        total.gaps += e.gaps;
    }
    total
}

fn bench_through(relay: &TftpRelay, file: &str, sha: &str, extra: &[&str]) -> String {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_pocketpxe"))
            .args(["bench", "tftp", "--server", &relay.addr().to_string()])
            .args(["--file", file, "--json", "--expect-sha256", sha])
            .args(["--timeout-ms", "300", "--retries", "30"])
            .args(extra),
        Duration::from_secs(150),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {extra:?} through the relay failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_owned()
}

fn hostile_server(dir: &std::path::Path) -> Server {
    // Generous retries: 10 % loss each way makes ~19 % of round trips fail.
    Server::start(dir, &["--retries", "10"])
}

fn relay_to(server: &Server, seed: u64) -> TftpRelay {
    let SocketAddr::V4(addr) = server.addr() else {
        unreachable!()
    };
    TftpRelay::start(addr, Impairment::HOSTILE, Impairment::HOSTILE, seed)
}

#[test]
fn bench_windowsize_1_and_16_through_a_hostile_link() {
    let _serial = serial();
    let dir = TempDir::new("lossy-bench");
    let (small, small_data) = make_file(&dir.path, 24 << 10);
    let (big, big_data) = make_file(&dir.path, 256 << 10);
    let server = hostile_server(&dir.path);
    let relay = relay_to(&server, 7);
    let started = Instant::now();
    // Lockstep: every lost block costs a 1 s server timeout, so the file is small; 6 clients.
    let sha_small = format!("{:x}", Sha256::digest(&small_data));
    let w1 = bench_through(
        &relay,
        &small,
        &sha_small,
        &["--clients", "6", "--blksize", "1024", "--windowsize", "1"],
    );
    let sha_big = format!("{:x}", Sha256::digest(&big_data));
    let w16 = bench_through(
        &relay,
        &big,
        &sha_big,
        &["--clients", "3", "--blksize", "1468", "--windowsize", "16"],
    );
    for json in [&w1, &w16] {
        assert_eq!(json_field(json, "failed"), 0.0, "{json}");
        assert_eq!(json_field(json, "corrupt"), 0.0, "{json}");
    }
    assert_eq!(json_field(&w1, "ok"), 6.0, "{w1}");
    assert_eq!(json_field(&w16, "ok"), 3.0, "{w16}");
    // The server logs each transfer's end a moment after the client's last ACK.
    let deadline = Instant::now() + Duration::from_secs(15);
    while ended_lines(&server.log()).len() < 9 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let total = check_retransmissions(&server.log(), 9);
    let stats = relay.stats();
    eprintln!(
        "FIGURE lossy bench: ws1 {w1}\nFIGURE lossy bench: ws16 {w16}\n\
         FIGURE lossy bench: server totals {total:?}\n\
         FIGURE relay up: {}\nFIGURE relay down: {}\nFIGURE followed ports {} in {:.1} s",
        stats.up.summary(),
        stats.down.summary(),
        stats.followed_ports.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    assert!(
        stats.up.dropped.load(Ordering::Relaxed) > 0
            && stats.down.dropped.load(Ordering::Relaxed) > 0
            && stats.up.duplicated.load(Ordering::Relaxed) > 0
            && stats.down.reordered.load(Ordering::Relaxed) > 0,
        "the relay did not impair anything"
    );
    assert!(
        total.duplicate_acks > 0,
        "no duplicate ACK reached the server: the test proves nothing: {total:?}"
    );
    assert!(total.timeouts > 0, "no timeout under 10 % loss? {total:?}");
}

#[test]
fn tftp_hpa_through_a_hostile_link() {
    let _serial = serial();
    if !common::have_client("tftp") {
        return;
    }
    let dir = TempDir::new("lossy-hpa");
    let server = hostile_server(&dir.path);
    let relay = relay_to(&server, 11);
    let port = relay.addr().port();
    // Three downloads at once (tftp-hpa: blksize 512, no options, its own retransmissions).
    let files: Vec<(String, Vec<u8>)> = [12_000usize, 16_384, 20_001]
        .iter()
        .map(|&len| make_file(&dir.path, len))
        .collect();
    let started = Instant::now();
    let handles: Vec<_> = files
        .iter()
        .cloned()
        .map(|(name, data)| {
            let out = dir.join(&format!("got-{name}"));
            std::thread::spawn(move || {
                let output = run_bounded(
                    Command::new("tftp")
                        .args(["-m", "binary", "127.0.0.1", &port.to_string()])
                        .args(["-c", "get", &name])
                        .arg(&out),
                    Duration::from_secs(120),
                );
                let got = std::fs::read(&out).unwrap_or_default();
                assert!(
                    got == data,
                    "tftp-hpa {name}: {} bytes, want {}; stderr {}",
                    got.len(),
                    data.len(),
                    String::from_utf8_lossy(&output.stderr)
                );
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // A transfer whose final ACK was lost ends only when the server gives up (retries + 1 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    while ended_lines(&server.log()).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let total = check_retransmissions(&server.log(), 3);
    eprintln!(
        "FIGURE lossy tftp-hpa: 3 files ok in {:.1} s; server totals {total:?}; relay up {}; down {}",
        started.elapsed().as_secs_f64(),
        relay.stats().up.summary(),
        relay.stats().down.summary()
    );
}

#[test]
fn relay_follows_the_port_change() {
    let _serial = serial();
    // Without impairment: the client sees DATA from a new port (not the relay's front port) and
    // its ACKs reach the server's transfer port through it.
    let dir = TempDir::new("relay-ports");
    let (name, data) = make_file(&dir.path, 3000);
    let server = Server::start(&dir.path, &[]);
    let SocketAddr::V4(addr) = server.addr() else {
        unreachable!()
    };
    let relay = TftpRelay::start(addr, Impairment::NONE, Impairment::NONE, 1);
    let client = common::RawClient::new();
    client.send_to(&common::rrq(name.as_bytes(), &[]), relay.addr().into());
    let mut got = Vec::new();
    let mut tid = None;
    for block in 1u16.. {
        let (packet, from) = client.recv().expect("no DATA through the relay");
        assert_eq!(
            common::opcode(&packet),
            3,
            "{:?}",
            common::as_error(&packet)
        );
        assert_ne!(
            from,
            SocketAddr::V4(relay.addr()),
            "DATA from the front port"
        );
        assert_eq!(*tid.get_or_insert(from), from, "the transfer port changed");
        got.extend_from_slice(&packet[4..]);
        client.send_to(&common::ack(block), from);
        if packet.len() < 4 + 512 {
            break;
        }
    }
    assert_eq!(got, data);
    assert_eq!(relay.stats().followed_ports.load(Ordering::Relaxed), 1);
    // A missing file: the listener's ERROR comes back from the front port.
    client.send_to(&common::rrq(b"missing", &[]), relay.addr().into());
    let (packet, from) = client.recv().expect("no ERROR through the relay");
    assert_eq!(common::as_error(&packet).map(|e| e.0), Some(1));
    assert_eq!(from, SocketAddr::V4(relay.addr()));
}

/// DHCP clients get leases through the hostile link (10 % loss, 5 % duplication, 25 %
/// reordering, 20 ms ± 10 ms, each direction): eight busybox udhcpc instances (macvlans with
/// their own MACs, `-B` for broadcast replies, up to 20 DISCOVERs a second apart) in `cli`,
/// each run three times, the impairing DHCP bridge in `mid`, `pocketpxe serve` in `srv`.
/// Every run gets a lease; each client keeps its address; leases are distinct and in the
/// lease file.
#[test]
fn dhcp_leases_through_a_hostile_link() {
    let _serial = serial();
    use serve_support::{
        Netns, ServeProc, client_socket, have_tool, mac_of, netns_available, udhcpc_with, veth,
    };
    use std::net::{Ipv4Addr, SocketAddrV4};
    const T: &str = "dhcp_leases_through_a_hostile_link";
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 3;
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let srv = Netns::new("srv");
    let mid = Netns::new("mid");
    let cli = Netns::new("cli");
    veth(&srv, "eth1", &mid, "s0");
    veth(&cli, "eth0", &mid, "c0");
    srv.ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    mid.ip(&["addr", "add", "192.168.242.250/24", "dev", "s0"]);
    mid.ip(&["addr", "add", "10.99.0.1/24", "dev", "c0"]);
    let devs: Vec<String> = (0..CLIENTS).map(|i| format!("mv{i}")).collect();
    for dev in &devs {
        cli.ip(&[
            "link", "add", dev, "link", "eth0", "type", "macvlan", "mode", "bridge",
        ]);
        cli.ip(&["link", "set", dev, "up"]);
    }
    let dir = TempDir::new("lossy-dhcp");
    let root = dir.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("pxelinux.0"), b"nbp").unwrap();
    let leases = dir.join("leases");
    // The daemon drops root (to nobody here): its lease directory must be writable.
    std::fs::set_permissions(
        &dir.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let server = ServeProc::start(
        &srv,
        &[
            "--interface",
            "eth1",
            "--root",
            root.to_str().unwrap(),
            "--leases",
            leases.to_str().unwrap(),
            "--user",
            "nobody",
        ],
    );
    let (client_side, server_side) = mid.run(|| {
        let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        (client_socket("c0", any(67)), client_socket("s0", any(68)))
    });
    let bridge = relay::DhcpBridge::start(
        client_side,
        server_side,
        Impairment::HOSTILE,
        Impairment::HOSTILE,
        0xD4C9,
    );
    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = devs
            .iter()
            .map(|dev| {
                let (cli, dir) = (&cli, &dir.path);
                scope.spawn(move || {
                    (0..ROUNDS)
                        .map(|_| {
                            // udhcpc sends its REQUEST at most 3 times; with `-n` it then exits
                            // where a resident udhcpc would start over with a DISCOVER. Do
                            // that for it, up to 3 times (3 lost REQUEST/ACK exchanges in a
                            // row happen at 10 % loss each way).
                            let mut last = udhcpc_with(cli, dev, dir, &["-B", "-t", "20"]);
                            for _ in 1..3 {
                                if last.0.is_some() {
                                    break;
                                }
                                last = udhcpc_with(cli, dev, dir, &["-B", "-t", "20"]);
                            }
                            last
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let saved = std::fs::read_to_string(&leases).unwrap_or_default();
    let mut ips = Vec::new();
    for (dev, runs) in devs.iter().zip(&results) {
        let mut got = Vec::new();
        for (env, out) in runs {
            let env = env.as_ref().unwrap_or_else(|| {
                panic!(
                    "{dev}: no lease through the hostile link: {out:?}\nrelay up {}\ndown {}\n{}",
                    bridge.stats().up.summary(),
                    bridge.stats().down.summary(),
                    server.log()
                )
            });
            got.push(env["ip"].clone());
        }
        let ip = got[0].clone();
        assert!(
            got.iter().all(|g| *g == ip),
            "{dev} changed address: {got:?}"
        );
        let mac = mac_of(&cli, dev);
        assert!(
            saved.contains(&format!("{mac} {ip} ")),
            "{dev} ({mac}) got {ip}, not in the lease file:\n{saved}"
        );
        ips.push(ip);
    }
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        CLIENTS,
        "two clients share an address: {ips:?}"
    );
    let log = server.log();
    let count = |what: &str| log.matches(what).count();
    eprintln!(
        "FIGURE lossy dhcp: {CLIENTS} udhcpc clients x {ROUNDS} runs, all leased in {:.1} s; server saw \
         DISCOVER {} REQUEST {}; relay up {}; down {}",
        elapsed.as_secs_f64(),
        count("request=DISCOVER"),
        count("request=REQUEST"),
        bridge.stats().up.summary(),
        bridge.stats().down.summary()
    );
    assert!(
        elapsed < Duration::from_secs(90),
        "took {elapsed:?} (bounded)"
    );
}
