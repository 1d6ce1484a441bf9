//! Crashes: `pocketpxe serve` is killed with SIGKILL at random moments while DHCP
//! clients keep it writing its lease file, then restarted, 20 times over.
//!
//! The clients are hand-made (the core's `wire::dhcp` emitter), one UDP socket in a client
//! namespace standing for up to 80 MAC addresses: new clients (DISCOVER, OFFER, REQUEST, ACK),
//! renewals (INIT-REBOOT REQUEST) and re-discoveries, as fast as the server answers. Every
//! DHCPACK a client receives is recorded as (MAC, IP, expiry). After each kill:
//!
//! * the lease file parses with [`LeaseFile::load`] and starts with its header line; only its
//!   last line may be torn (an append cut short, ignored by `load`: it was never confirmed);
//! * every acknowledged, unexpired lease is in it (durable before announced).
//!
//! After each restart, every acknowledged client asks again (DISCOVER, then REQUEST) and must
//! be offered and granted the same address; throughout, no OFFER or ACK may give one client's
//! address to another MAC.
//!
//! Network safety: two namespaces the test creates (a veth between them); the server is
//! killed by its own PID; every wait and loop is bounded.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;
mod serve_support;

use common::SplitMix64;
use pocketpxe::serve::lease_file::LeaseFile;
use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use serve_support::*;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kill/restart cycles.
const CYCLES: usize = 20;
/// Distinct client MAC addresses at most (the pool has 98 addresses).
const MAX_CLIENTS: usize = 80;
/// New clients per cycle at most, so that new bindings are spread over the cycles.
const NEW_PER_CYCLE: usize = 5;
/// Time from "ready" to the kill: uniform in this range (ms).
const KILL_AFTER_MS: (u64, u64) = (150, 1500);

#[test]
fn kill9_during_lease_writes_loses_no_acknowledged_lease() {
    const T: &str = "kill9_during_lease_writes_loses_no_acknowledged_lease";
    if !netns_available(T) {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new("hostile-crash");
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    // The daemon drops root (to nobody here): its lease directory must be writable.
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    let sock = lab
        .cli
        .run(|| client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)));
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| unix_now() ^ u64::from(std::process::id()));
    eprintln!("hostile_crash: seed {seed} (set CRASH_SEED to repeat)");
    let mut fleet = Fleet::new(sock, seed);
    let mut kill_rng = SplitMix64(seed ^ 0x5EED);
    let file = LeaseFile::new(lab.leases());
    let tmp = lab.tmp.join("leases.tmp");
    let mut mid_write_kills = 0usize;
    let mut torn_tails = 0usize;
    let mut verified = 0usize;

    for cycle in 0..CYCLES {
        let mut server = lab.serve(&["--user", "nobody", "--lease-time", "1h"]);
        verified += fleet.verify(&format!("after restart {cycle}"));
        fleet.assert_clean(&server.log());

        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let churn = std::thread::spawn(move || {
            fleet.churn(&stop2);
            fleet
        });
        let delay = KILL_AFTER_MS.0 + kill_rng.next() % (KILL_AFTER_MS.1 - KILL_AFTER_MS.0);
        std::thread::sleep(Duration::from_millis(delay));
        server.child.kill().unwrap(); // SIGKILL, by the child's own PID
        let _ = server.child.wait();
        // Let replies already on the wire arrive, then stop the clients.
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        fleet = churn.join().unwrap();
        if tmp.exists() {
            mid_write_kills += 1;
        }
        if check_file(&file, &fleet, cycle, &server.log()) {
            torn_tails += 1;
        }
        fleet.assert_clean(&server.log());
    }

    // A last clean run: everything still there, and SIGTERM leaves a good file.
    let mut server = lab.serve(&["--user", "nobody", "--lease-time", "1h"]);
    verified += fleet.verify("after the last restart");
    fleet.assert_clean(&server.log());
    assert!(server.stop().success(), "SIGTERM:\n{}", server.log());
    check_file(&file, &fleet, CYCLES, &server.log());
    let records = file.load().unwrap();
    let s = &fleet.stats;
    eprintln!(
        "FIGURE crash: {CYCLES} SIGKILLs in {:.1} s; {} kills left leases.tmp (inside a \
         compaction), {torn_tails} a torn last line (inside an append); \
         clients {}; ACKs {} (granted+renewed), OFFERs {}, NAKs {}, unanswered {}; \
         re-checks after restarts {}; leases in file at the end {}",
        started.elapsed().as_secs_f64(),
        mid_write_kills,
        fleet.clients.len(),
        s.acks,
        s.offers,
        s.naks,
        s.unanswered,
        verified,
        records.len()
    );
    assert!(
        fleet.clients.len() >= 40,
        "too few clients got going ({}): the test did not test much",
        fleet.clients.len()
    );
}

/// The lease file right after a kill (or at the end): well-formed and holding every
/// acknowledged, unexpired lease. True if its last line is torn.
fn check_file(file: &LeaseFile, fleet: &Fleet, cycle: usize, log: &str) -> bool {
    let text = std::fs::read_to_string(file.path()).unwrap_or_default();
    let records = file
        .load()
        .unwrap_or_else(|e| panic!("cycle {cycle}: lease file corrupt: {e}\n{text}\n{log}"));
    if !fleet.acked.is_empty() {
        // Compactions replace the file whole; appends may be cut short by the kill, which
        // leaves at most a last line without its newline (ignored by `load`).
        assert!(
            text.starts_with("# pocketpxe leases v2"),
            "cycle {cycle}: partial lease file:\n{text}"
        );
    }
    let now = unix_now();
    for (mac, (ip, expires)) in &fleet.acked {
        if *expires <= now {
            continue;
        }
        assert!(
            records
                .iter()
                .any(|r| r.mac == *mac && r.ip == *ip && r.expires_unix > now),
            "cycle {cycle}: acknowledged lease {} {ip} (until {expires}) is not in the lease \
             file:\n{text}\n--- server log ---\n{log}",
            fmt_mac(mac)
        );
    }
    !text.is_empty() && !text.ends_with('\n')
}

#[derive(Debug, Default)]
struct Stats {
    acks: u64,
    offers: u64,
    naks: u64,
    unanswered: u64,
}

/// What one reply said.
#[derive(Debug, Clone, Copy)]
struct Reply {
    kind: MessageType,
    ip: Ipv4Addr,
    lease_secs: u32,
}

/// Many DHCP clients on one socket, told apart by MAC and transaction id.
struct Fleet {
    sock: UdpSocket,
    rng: SplitMix64,
    xid: u32,
    clients: Vec<[u8; 6]>,
    /// MAC → (IP, expiry in Unix seconds) of its last DHCPACK.
    acked: HashMap<[u8; 6], (Ipv4Addr, u64)>,
    violations: Vec<String>,
    stats: Stats,
}

impl Fleet {
    fn new(sock: UdpSocket, seed: u64) -> Self {
        Self {
            sock,
            rng: SplitMix64(seed),
            xid: (seed as u32) | 1,
            clients: Vec::new(),
            acked: HashMap::new(),
            violations: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Keeps the server busy until `stop`: new clients, renewals, re-discoveries.
    fn churn(&mut self, stop: &AtomicBool) {
        let mut new_clients = 0;
        let limit = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && Instant::now() < limit {
            let roll = self.rng.next() % 10;
            if self.clients.is_empty()
                || (roll < 3 && new_clients < NEW_PER_CYCLE && self.clients.len() < MAX_CLIENTS)
            {
                let n = self.clients.len();
                let mac = [0x02, 0xc7, 0x00, 0x00, (n >> 8) as u8, n as u8];
                self.clients.push(mac);
                new_clients += 1;
                self.acquire(mac, 1, Duration::from_millis(150));
                continue;
            }
            let mac = self.clients[(self.rng.next() % self.clients.len() as u64) as usize];
            match (roll % 2, self.acked.get(&mac).copied()) {
                (0, Some((ip, _))) => {
                    // Renewal, INIT-REBOOT style (broadcast reply; the client has no address).
                    self.exchange(
                        mac,
                        MessageType::Request,
                        Some(ip),
                        None,
                        1,
                        Duration::from_millis(150),
                    );
                }
                _ => {
                    self.acquire(mac, 1, Duration::from_millis(150));
                }
            }
        }
    }

    /// Every acknowledged client asks again; each must get its address back. Returns how many
    /// were checked.
    fn verify(&mut self, when: &str) -> usize {
        let now = unix_now();
        let mut due: Vec<([u8; 6], Ipv4Addr)> = self
            .acked
            .iter()
            .filter(|(_, (_, exp))| *exp > now + 5)
            .map(|(mac, (ip, _))| (*mac, *ip))
            .collect();
        due.sort_unstable();
        for (mac, ip) in &due {
            match self.acquire(*mac, 5, Duration::from_millis(400)) {
                Some(got) if got == *ip => {}
                Some(got) => self.violations.push(format!(
                    "{when}: {} was acknowledged {ip} but now got {got}",
                    fmt_mac(mac)
                )),
                None => self.violations.push(format!(
                    "{when}: {} (lease {ip}) got no address back",
                    fmt_mac(mac)
                )),
            }
        }
        due.len()
    }

    fn assert_clean(&self, log: &str) {
        assert!(
            self.violations.is_empty(),
            "{} violations:\n{}\n--- server log ---\n{log}",
            self.violations.len(),
            self.violations.join("\n")
        );
    }

    /// DISCOVER, OFFER, REQUEST (selecting), ACK: the address acknowledged.
    fn acquire(&mut self, mac: [u8; 6], tries: u32, wait: Duration) -> Option<Ipv4Addr> {
        let offer = self.exchange(mac, MessageType::Discover, None, None, tries, wait)?;
        if offer.kind != MessageType::Offer {
            return None;
        }
        let ack = self.exchange(
            mac,
            MessageType::Request,
            Some(offer.ip),
            Some(SERVER),
            tries,
            wait,
        )?;
        (ack.kind == MessageType::Ack).then_some(ack.ip)
    }

    /// Sends one message (up to `tries` times) and waits for its reply; checks and records it.
    fn exchange(
        &mut self,
        mac: [u8; 6],
        kind: MessageType,
        requested: Option<Ipv4Addr>,
        server_id: Option<Ipv4Addr>,
        tries: u32,
        wait: Duration,
    ) -> Option<Reply> {
        for _ in 0..tries {
            self.xid = self.xid.wrapping_add(1);
            let xid = self.xid;
            let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
            r.message_type = Some(kind);
            r.flags = Flags::BROADCAST;
            r.requested_ip = requested;
            r.server_identifier = server_id;
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
            let _ = self
                .sock
                .send_to(&buf, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67));
            if let Some(reply) = self.wait_reply(xid, mac, wait) {
                self.observe(mac, kind, requested, reply);
                return Some(reply);
            }
        }
        self.stats.unanswered += 1;
        None
    }

    fn wait_reply(&self, xid: u32, mac: [u8; 6], wait: Duration) -> Option<Reply> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            let Ok((len, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(packet) = Packet::new_checked(&buf[..len]) else {
                continue;
            };
            let Ok(repr) = Repr::parse(&packet) else {
                continue;
            };
            if repr.op != Op::Reply
                || repr.transaction_id != xid
                || repr.client_hw_addr.mac() != Some(mac)
            {
                continue; // a late reply to an earlier try
            }
            return Some(Reply {
                kind: repr.message_type?,
                ip: repr.your_ip,
                lease_secs: repr.lease_time.unwrap_or(0),
            });
        }
        None
    }

    /// Checks a reply against every acknowledged lease, then records an ACK.
    fn observe(
        &mut self,
        mac: [u8; 6],
        sent: MessageType,
        requested: Option<Ipv4Addr>,
        reply: Reply,
    ) {
        let now = unix_now();
        let mine = self.acked.get(&mac).filter(|(_, exp)| *exp > now).copied();
        match reply.kind {
            MessageType::Offer | MessageType::Ack => {
                if reply.kind == MessageType::Offer {
                    self.stats.offers += 1;
                } else {
                    self.stats.acks += 1;
                }
                if let Some((ip, _)) = mine
                    && ip != reply.ip
                {
                    self.violations.push(format!(
                        "{} holds {ip} but was {:?} {}",
                        fmt_mac(&mac),
                        reply.kind,
                        reply.ip
                    ));
                }
                if let Some((other, _)) = self
                    .acked
                    .iter()
                    .find(|(m, (ip, exp))| **m != mac && *ip == reply.ip && *exp > now)
                {
                    self.violations.push(format!(
                        "{} was {:?} {}, which {} holds",
                        fmt_mac(&mac),
                        reply.kind,
                        reply.ip,
                        fmt_mac(other)
                    ));
                }
                if reply.kind == MessageType::Ack {
                    // Rounded down: the server rounds its expiry up.
                    let expires = now + u64::from(reply.lease_secs).saturating_sub(2);
                    self.acked.insert(mac, (reply.ip, expires));
                }
            }
            MessageType::Nak => {
                self.stats.naks += 1;
                if sent == MessageType::Request
                    && let (Some((ip, _)), Some(asked)) = (mine, requested)
                    && ip == asked
                {
                    self.violations.push(format!(
                        "{} was NAKed its acknowledged lease {ip}",
                        fmt_mac(&mac)
                    ));
                }
            }
            _ => {}
        }
    }
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    pocketpxe::sys::netif::format_mac(mac)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The address ledger of namespace `ns` (`/run/pocketpxe/netns-INODE/addresses.state`).
fn ledger_of(ns: &Netns) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let ino = std::fs::metadata(format!("/run/netns/{}", ns.name))
        .unwrap()
        .ino();
    std::path::PathBuf::from(format!("/run/pocketpxe/netns-{ino}/addresses.state"))
}

/// How many times `cidr` is on `dev`.
fn count_addr(ns: &Netns, dev: &str, cidr: &str) -> usize {
    ns.addrs(dev)
        .split_whitespace()
        .filter(|w| *w == cidr)
        .count()
}

/// `--address` after `kill -9`: the next start with the same `--address` takes the leftover
/// over (one address, not two), and its SIGTERM removes it and the record. Another pocketpxe
/// in the same namespace leaves a live run's address alone.
#[test]
fn kill9_then_same_address_is_taken_over_and_removed_on_sigterm() {
    const T: &str = "kill9_then_same_address_is_taken_over_and_removed_on_sigterm";
    if !netns_available(T) {
        return;
    }
    const CIDR: &str = "192.168.242.1/24";
    let lab = Lab::new("hostile-crash-addr");
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    let ledger = ledger_of(&lab.srv);

    let mut first = lab.serve(&["--user", "nobody", "--address", CIDR]);
    let pid = first.pid();
    assert_eq!(count_addr(&lab.srv, "eth1", CIDR), 1);
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert!(
        text.contains(&format!("eth1 {CIDR} {pid} ")),
        "{}: {text}",
        ledger.display()
    );
    first.child.kill().unwrap(); // SIGKILL by PID
    let _ = first.child.wait();
    drop(first);
    assert_eq!(count_addr(&lab.srv, "eth1", CIDR), 1, "left behind");

    let mut second = lab.serve(&["--user", "nobody", "--address", CIDR]);
    assert!(
        second.log().contains("taken over"),
        "no takeover logged:\n{}",
        second.log()
    );
    assert_eq!(
        count_addr(&lab.srv, "eth1", CIDR),
        1,
        "one address after the restart"
    );
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert!(
        text.contains(&format!("eth1 {CIDR} {} ", second.pid()))
            && !text.contains(&format!(" {pid} ")),
        "the record now names the new PID: {text}"
    );

    // A second pocketpxe in the namespace (another interface) leaves the live run's address.
    let side = Netns::new("side");
    veth(&lab.srv, "eth2", &side, "eth0");
    lab.srv.ip(&["addr", "add", "10.88.0.1/24", "dev", "eth2"]);
    let side_leases = lab.tmp.join("side.leases");
    let mut other = ServeProc::start(
        &lab.srv,
        &[
            "--interface",
            "eth2",
            "--root",
            lab.root.to_str().unwrap(),
            "--leases",
            side_leases.to_str().unwrap(),
            "--dhcp-port",
            "1067",
            "--tftp-port",
            "1069",
            "--user",
            "nobody",
        ],
    );
    assert_eq!(
        count_addr(&lab.srv, "eth1", CIDR),
        1,
        "a live run's address"
    );
    assert!(other.stop().success(), "{}", other.log());
    assert_eq!(
        count_addr(&lab.srv, "eth1", CIDR),
        1,
        "a live run's address"
    );

    assert!(second.stop().success(), "SIGTERM:\n{}", second.log());
    assert_eq!(
        count_addr(&lab.srv, "eth1", CIDR),
        0,
        "SIGTERM (as the dropped user) removes the address:\n{}",
        second.log()
    );
    assert!(
        !ledger.exists(),
        "the record is removed on exit: {:?}",
        std::fs::read_to_string(&ledger)
    );
}

/// `--address` after `kill -9`, restarted without it: the leftover is removed before the
/// server picks its address (it serves on the interface's own address instead).
#[test]
fn kill9_then_restart_without_address_removes_the_leftover() {
    const T: &str = "kill9_then_restart_without_address_removes_the_leftover";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("hostile-crash-noaddr");
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let ledger = ledger_of(&lab.srv);
    let mut first = lab.serve(&["--user", "nobody", "--address", "10.77.0.1/24"]);
    assert_eq!(count_addr(&lab.srv, "eth1", "10.77.0.1/24"), 1);
    first.child.kill().unwrap();
    let _ = first.child.wait();
    drop(first);
    assert_eq!(count_addr(&lab.srv, "eth1", "10.77.0.1/24"), 1);
    assert!(ledger.exists());

    let mut second = lab.serve(&["--user", "nobody"]);
    let log = second.log();
    assert!(
        log.contains("removed an address left by a killed pocketpxe"),
        "{log}"
    );
    assert!(log.contains("server=192.168.242.1/24"), "{log}");
    assert_eq!(count_addr(&lab.srv, "eth1", "10.77.0.1/24"), 0, "leftover");
    assert!(!ledger.exists(), "record of the killed run");
    assert!(second.stop().success(), "{}", second.log());
    assert_eq!(
        count_addr(&lab.srv, "eth1", "192.168.242.1/24"),
        1,
        "not ours: stays"
    );
}

/// A record left by a run in a namespace that was deleted since (its inode, and so its state
/// directory, reused by this one) names an interface that is another one now (another MAC):
/// it is dropped, and the address this namespace's owner put there stays.
#[test]
fn stale_record_from_a_reused_namespace_inode_touches_nothing() {
    const T: &str = "stale_record_from_a_reused_namespace_inode_touches_nothing";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("hostile-crash-stale");
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let ledger = ledger_of(&lab.srv);
    std::fs::create_dir_all(ledger.parent().unwrap()).unwrap();
    // pid 1 is not pocketpxe: a dead run's record, of another eth1 (MAC 02:…:99).
    std::fs::write(&ledger, "eth1 192.168.242.1/24 1 02:00:00:00:00:99\n").unwrap();
    let mut server = lab.serve(&["--user", "nobody"]);
    assert!(
        server.log().contains("dropped a stale address record"), // debug level; the lab logs debug
        "{}",
        server.log()
    );
    assert_eq!(count_addr(&lab.srv, "eth1", "192.168.242.1/24"), 1);
    assert!(!ledger.exists(), "the stale record is dropped");
    assert!(server.stop().success(), "{}", server.log());
    assert_eq!(count_addr(&lab.srv, "eth1", "192.168.242.1/24"), 1);
}
