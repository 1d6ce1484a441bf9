//! Floods: `pocketpxe serve` in a network namespace is hit, from a client namespace,
//! with random garbage and truncated packets at ports 67, 69 and 4011, then with RRQs for
//! missing and for huge files from thousands of source ports that never ACK. The daemon stays
//! up, its peak RSS (VmHWM) stays bounded, the flooder is held to its per-client transfer
//! limit, its slots are reclaimed after the timeout, and a legitimate client on another
//! address downloads its files during the flood.
//!
//! Network safety: everything happens between two namespaces the test creates; every loop is
//! bounded in count and time; the server is stopped by its PID.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;
mod serve_support;

use common::run_bounded;
use serve_support::*;
use sha2::{Digest, Sha256};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

const SERVER_IP: &str = "192.168.242.1";
const LEGIT_IP: &str = "192.168.242.200";
const FLOOD_IP: &str = "192.168.242.201";
const PER_CLIENT: usize = 16;

/// Runs `f` on a new thread inside namespace `ns` (sockets it opens live there).
/// `VmHWM` and `VmRSS` of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let get = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmHWM:"), get("VmRSS:"))
}

/// splitmix64, for garbage.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Random garbage and truncated DHCP/TFTP packets at 67, 69 and 4011: `count` datagrams.
fn garbage_flood(count: u32, seed: u64) -> u32 {
    let sock = UdpSocket::bind(format!("{FLOOD_IP}:0")).unwrap();
    let mut state = seed;
    let mut sent = 0;
    let dhcp_prefix: Vec<u8> = {
        // A DISCOVER's fixed part plus the magic cookie: truncations of it parse further.
        let mut p = vec![1u8, 1, 6, 0];
        p.resize(236, 0);
        p.extend_from_slice(&[99, 130, 83, 99, 53, 1, 1, 255]);
        p
    };
    let started = Instant::now();
    for i in 0..count {
        if started.elapsed() > Duration::from_secs(12) {
            break;
        }
        let port = [67u16, 69, 4011][(i % 3) as usize];
        let r = next(&mut state);
        let packet: Vec<u8> = match r % 4 {
            0 => {
                let len = (next(&mut state) % 1500) as usize;
                (0..len).map(|_| next(&mut state) as u8).collect()
            }
            1 => dhcp_prefix[..(next(&mut state) as usize % dhcp_prefix.len())].to_vec(),
            2 => {
                let rrq = b"\x00\x01pxelinux.0\x00octet\x00blksize\x001468\x00windowsize\x0064\x00";
                rrq[..(next(&mut state) as usize % rrq.len())].to_vec()
            }
            _ => {
                // Valid opcodes, garbage after them.
                let mut p = vec![0, (r % 7) as u8];
                p.extend((0..(r >> 8) % 600).map(|_| next(&mut state) as u8));
                p
            }
        };
        let dst: SocketAddrV4 = format!("{SERVER_IP}:{port}").parse().unwrap();
        if sock.send_to(&packet, dst).is_ok() {
            sent += 1;
        }
        if i % 64 == 0 {
            // Let ICMP errors and the server breathe; keeps the flood bounded in rate too.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    sent
}

/// RRQs from `ports` distinct source ports, half for missing files and half for the huge one;
/// nobody ever ACKs. Returns (accepted: DATA seen, refused busy: ERROR 0, other answers
/// (ERROR 1 for the missing files), unanswered within 400 ms).
fn rrq_flood(ports: u32) -> (u32, u32, u32, u32) {
    let mut unanswered = 0;
    // Transfers are counted by their TID: a source port the OS reuses for a later socket may
    // still receive an earlier transfer's retransmitted DATA.
    let mut tids = std::collections::HashSet::new();
    let mut busy = 0;
    let mut other = 0;
    let started = Instant::now();
    // Batches of 200 sockets at a time keep the file descriptors bounded.
    let mut port = 0;
    while port < ports && started.elapsed() < Duration::from_secs(30) {
        let batch: Vec<UdpSocket> = (0..200.min(ports - port))
            .map(|_| {
                let s = UdpSocket::bind(format!("{FLOOD_IP}:0")).unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        for (i, s) in batch.iter().enumerate() {
            let name = if (port as usize + i).is_multiple_of(2) {
                format!("missing-{}", port as usize + i)
            } else {
                "huge.bin".to_owned()
            };
            let _ = s.send_to(&rrq(name.as_bytes(), &[]), format!("{SERVER_IP}:69"));
        }
        // Collect the first answer of each socket within 400 ms.
        let mut answered = vec![false; batch.len()];
        let until = Instant::now() + Duration::from_millis(400);
        while Instant::now() < until && answered.iter().any(|a| !a) {
            for (i, s) in batch.iter().enumerate() {
                let mut buf = [0u8; 1600];
                if answered[i] {
                    continue;
                }
                if let Ok((n, from)) = s.recv_from(&mut buf) {
                    answered[i] = true;
                    match (n >= 4, buf[1], buf[3]) {
                        (true, 3, _) => {
                            tids.insert(from);
                        }
                        (true, 5, 0) => busy += 1,
                        _ => other += 1,
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        unanswered += answered.iter().filter(|a| !**a).count() as u32;
        port += batch.len() as u32;
    }
    (tids.len() as u32, busy, other, unanswered)
}

fn rrq(name: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    p.extend_from_slice(name);
    p.extend_from_slice(b"\0octet\0");
    for (k, v) in options {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.as_bytes());
        p.push(0);
    }
    p
}

#[test]
fn floods_leave_the_daemon_up_bounded_and_serving() {
    const T: &str = "floods_leave_the_daemon_up_bounded_and_serving";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("hostile-flood");
    lab.srv
        .ip(&["addr", "add", &format!("{SERVER_IP}/24"), "dev", "eth1"]);
    // The legitimate client's address first: busybox tftp sends from the primary address.
    lab.cli
        .ip(&["addr", "add", &format!("{LEGIT_IP}/24"), "dev", "eth0"]);
    lab.cli
        .ip(&["addr", "add", &format!("{FLOOD_IP}/24"), "dev", "eth0"]);
    // A 2 GiB sparse file: a flood of requests for it must not read or buffer it.
    let huge = std::fs::File::create(lab.root.join("huge.bin")).unwrap();
    huge.set_len(2 << 30).unwrap();
    let payload = common::random_bytes(1 << 20, 99);
    std::fs::write(lab.root.join("legit.bin"), &payload).unwrap();
    let mut server = lab.serve(&["--max-transfers-per-client", &PER_CLIENT.to_string()]);
    let pid = server.pid();
    let (hwm_idle, _) = memory_kib(pid);
    let started = Instant::now();

    let garbage = lab.cli.spawn(|| garbage_flood(60_000, 7));
    let rrqs = lab.cli.spawn(|| rrq_flood(3000));
    // Meanwhile: the legitimate client, again and again while the flood lasts (at least twice).
    std::thread::sleep(Duration::from_millis(300));
    let mut legit_ok = 0;
    for round in 0..50 {
        if round >= 2 && garbage.is_finished() && rrqs.is_finished() {
            break;
        }
        let got = lab.tmp.join(&format!("legit-{round}.bin"));
        let out = run_bounded(
            lab.cli
                .command("busybox")
                .args(["tftp", "-g", "-b", "1468", "-r", "legit.bin", "-l"])
                .arg(&got)
                .arg(SERVER_IP),
            Duration::from_secs(60),
        );
        let data = std::fs::read(&got).unwrap_or_default();
        assert!(
            out.status.success() && Sha256::digest(&data) == Sha256::digest(&payload),
            "legitimate download {round} during the flood failed: {out:?}"
        );
        legit_ok += 1;
    }
    let legit_secs = started.elapsed().as_secs_f64();
    let sent = garbage.join().unwrap();
    let (accepted, busy, other, unanswered) = rrqs.join().unwrap();
    let flood_secs = started.elapsed().as_secs_f64();
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the daemon died:\n{}",
        server.log()
    );
    let (hwm_flood, rss_flood) = memory_kib(pid);
    // The flooder got at most its share at any moment: beyond PER_CLIENT, only as many as
    // had already ended (timed out, failed on an ICMP error from a closed port, or superseded
    // by a new request from a reused source port). Their log lines may lag a little.
    std::thread::sleep(Duration::from_millis(500));
    let ended = server
        .log()
        .lines()
        .filter(|l| l.contains("transfer ended") && l.contains(FLOOD_IP))
        .count();
    assert!(
        accepted as usize <= PER_CLIENT + ended,
        "the flooder got {accepted} transfers (limit {PER_CLIENT} at a time, {ended} ended)"
    );
    assert!(busy > 0, "no request was refused as busy");
    let log = server.log();
    assert!(
        log.contains("too many transfers from your address") || log.contains("ClientBusy"),
        "no ClientBusy refusal in the log"
    );
    // Slots are reclaimed after the timeout: the flooder may download again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reclaimed = lab
        .cli
        .spawn(move || {
            let s = UdpSocket::bind(format!("{FLOOD_IP}:0")).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            loop {
                let _ = s.send_to(&rrq(b"pxelinux.0", &[]), format!("{SERVER_IP}:69"));
                let mut buf = [0u8; 1600];
                if let Ok((n, _)) = s.recv_from(&mut buf)
                    && n >= 4
                    && buf[1] == 3
                {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
        .join()
        .unwrap();
    assert!(reclaimed, "the flooder's slots were not reclaimed");
    let (hwm_end, rss_end) = memory_kib(pid);
    eprintln!(
        "FIGURE flood: {sent} garbage datagrams to 67/69/4011, 3000 RRQ ports \
         (accepted {accepted}, refused busy {busy}, other answers {other}, unanswered {unanswered}) in {flood_secs:.1} s; \
         legitimate 1 MiB downloads ok during it: {legit_ok} (until {legit_secs:.1} s); \
         VmHWM idle {hwm_idle} KiB, after flood {hwm_flood} KiB (RSS {rss_flood} KiB), \
         end {hwm_end} KiB (RSS {rss_end} KiB)"
    );
    assert!(
        hwm_end < 64 * 1024,
        "peak RSS {hwm_end} KiB: memory not bounded"
    );
    let status = server.stop();
    assert!(status.success(), "exit {status}");
}
