//! Leases in PostgreSQL and replicas that share them, with a real PostgreSQL (a throwaway
//! cluster, `pg_support`) and a real relay (ISC `dhcrelay`).
//!
//! * One server: the database decides (a row another server wrote wins; the client is NAKed
//!   and offered another address), no DHCPACK while the database is down, recovery after.
//! * Two replicas behind one `dhcrelay`, a storm of 500 clients (distinct MACs): one replica
//!   is killed (SIGKILL) and PostgreSQL restarted mid-storm; every client ends up with a
//!   distinct address, every ACK is in the database.
//!
//! ```text
//!  srv1: eth1 192.168.61.1/24 ── up1 192.168.61.2/24  rtr (dhcrelay to both)
//!  srv2: eth1 192.168.62.1/24 ── up2 192.168.62.2/24      c1 10.9.0.1/22 ── eth0  cli
//! ```
//!
//! Network safety: namespaces this test creates, PostgreSQL on a unix socket only; every
//! process is stopped by its PID; every wait and loop is bounded.

#![allow(clippy::unwrap_used)]

mod common;
mod pg_support;
mod serve_support;

use common::TempDir;
use pg_support::{Postgres, have_postgres};
use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A port of its own for this test's cluster (only a socket file name: no TCP).
fn pg_port() -> u16 {
    40_000 + (std::process::id() % 20_000) as u16
}

/// What a reply said.
#[derive(Debug, Clone, Copy)]
struct Reply {
    kind: MessageType,
    your_ip: Ipv4Addr,
    server: Option<Ipv4Addr>,
    mac: [u8; 6],
    xid: u32,
}

/// A client message: DISCOVER, or REQUEST for `ip` from `server` (SELECTING).
fn message(
    kind: MessageType,
    mac: [u8; 6],
    xid: u32,
    ask: Option<(Ipv4Addr, Ipv4Addr)>,
) -> Vec<u8> {
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.flags.set(Flags::BROADCAST, true);
    r.requested_ip = ask.map(|a| a.0);
    r.server_identifier = ask.map(|a| a.1);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}

fn parse(bytes: &[u8]) -> Option<Reply> {
    let packet = Packet::new_checked(bytes).ok()?;
    let r = Repr::parse(&packet).ok()?;
    (r.op == Op::Reply).then_some(())?;
    Some(Reply {
        kind: r.message_type?,
        your_ip: r.your_ip,
        server: r.server_identifier,
        mac: r.client_hw_addr.mac()?,
        xid: r.transaction_id,
    })
}

/// Sends `msg` and waits up to `wait` for a reply to `xid`, retransmitting every 400 ms.
fn ask(socket: &UdpSocket, msg: &[u8], xid: u32, wait: Duration) -> Option<Reply> {
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    let mut sent = None::<Instant>;
    while start.elapsed() < wait {
        if sent.is_none_or(|at| at.elapsed() > Duration::from_millis(400)) {
            socket.send_to(msg, "255.255.255.255:67").unwrap();
            sent = Some(Instant::now());
        }
        if let Ok(len) = socket.recv(&mut buf)
            && let Some(reply) = parse(&buf[..len]).filter(|r| r.xid == xid)
        {
            return Some(reply);
        }
    }
    None
}

#[test]
fn the_lease_database_decides_and_no_ack_leaves_while_it_is_down() {
    let test = "serve_replicas::database";
    if !netns_available(test) || !have_postgres(test) {
        return;
    }
    let lab = Lab::new("pg-one");
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let pg_tmp = TempDir::new("pg-one-db");
    let pg = Postgres::start(&pg_tmp, pg_port());
    let url = pg.url();
    let args = [
        "--interface",
        "eth1",
        "--root",
        lab.root.to_str().unwrap(),
        "--leases",
        &url,
        "--range",
        "192.168.242.100-192.168.242.103",
    ];
    // The first start creates the schema.
    let first = ServeProc::start(&lab.srv, &args);
    first.wait_log("lease database connected", Duration::from_secs(10));
    drop(first);
    // Another server's lease, in the database before this one starts.
    assert!(
        pg.psql(
            "INSERT INTO pocketpxe_leases (ip, mac, expires, server) VALUES \
             ('192.168.242.100', '52:54:00:00:00:99', extract(epoch from now())::bigint + 600, 'other')"
        )
        .is_some()
    );
    let server = ServeProc::start(&lab.srv, &args);
    server.wait_log("leases loaded", Duration::from_secs(10));

    let pg = Arc::new(std::sync::Mutex::new(pg));
    let pg2 = pg.clone();
    lab.cli.run(move || {
            let socket = client_socket("eth0", "0.0.0.0:68".parse().unwrap());
            let mac = [0x52, 0x54, 0, 0, 0, 1];
            let server_id = Ipv4Addr::new(192, 168, 242, 1);
            // The address the other server holds is not offered.
            let offer = ask(&socket, &message(MessageType::Discover, mac, 1, None), 1,
                Duration::from_secs(5)).expect("offer");
            assert_eq!(offer.kind, MessageType::Offer);
            assert_eq!(offer.your_ip, Ipv4Addr::new(192, 168, 242, 101));
            // Another server binds the offered address first: no ACK for it; the client's
            // next REQUEST is NAKed, and it is offered another address.
            let pg = pg2.lock().unwrap();
            assert!(pg.psql("INSERT INTO pocketpxe_leases (ip, mac, expires, server) VALUES \
                ('192.168.242.101', '52:54:00:00:00:98', extract(epoch from now())::bigint + 600, 'other')").is_some());
            let req = message(MessageType::Request, mac, 2, Some((offer.your_ip, server_id)));
            let reply = ask(&socket, &req, 2, Duration::from_secs(5)).expect("a NAK");
            assert_eq!(reply.kind, MessageType::Nak, "{reply:?}");
            let offer = ask(&socket, &message(MessageType::Discover, mac, 3, None), 3,
                Duration::from_secs(5)).expect("offer");
            assert_eq!(offer.your_ip, Ipv4Addr::new(192, 168, 242, 102));
            let req = message(MessageType::Request, mac, 4, Some((offer.your_ip, server_id)));
            let ack = ask(&socket, &req, 4, Duration::from_secs(5)).expect("ack");
            assert_eq!(ack.kind, MessageType::Ack);
            assert_eq!(
                pg.psql("SELECT mac FROM pocketpxe_leases WHERE ip = '192.168.242.102'").unwrap().trim(),
                "52:54:00:00:00:01",
                "the ACKed lease is in the database"
            );
            drop(pg);
            // The database goes away: offers still leave, ACKs do not.
            pg2.lock().unwrap().stop();
            let mac2 = [0x52, 0x54, 0, 0, 0, 2];
            let offer = ask(&socket, &message(MessageType::Discover, mac2, 5, None), 5,
                Duration::from_secs(5)).expect("offer while the database is down");
            let req = message(MessageType::Request, mac2, 6, Some((offer.your_ip, server_id)));
            assert!(
                ask(&socket, &req, 6, Duration::from_secs(3)).is_none(),
                "no ACK may leave while the database is down"
            );
            // It comes back: the client's retransmission is acknowledged, durably.
            pg2.lock().unwrap().run();
            let ack = ask(&socket, &req, 6, Duration::from_secs(10)).expect("ack after recovery");
            assert_eq!(ack.kind, MessageType::Ack);
            assert_eq!(ack.your_ip, offer.your_ip);
            let pg = pg2.lock().unwrap();
            assert_eq!(
                pg.psql(&format!("SELECT mac FROM pocketpxe_leases WHERE ip = '{}'", ack.your_ip))
                    .unwrap()
                    .trim(),
                "52:54:00:00:00:02"
            );
    });
    let log = server.log();
    assert!(
        log.contains("lease database unreachable") && log.contains(".s.PGSQL."),
        "the outage is logged with the database's socket:\n{log}"
    );
    assert!(log.contains("lease database reachable again"), "{log}");
    assert!(
        log.contains("address bound by another server first"),
        "{log}"
    );

    // A server started while the database is down starts all the same, and acknowledges
    // once the database is back: a client rebooting (INIT-REBOOT) keeps its address.
    drop(server);
    pg.lock().unwrap().stop();
    let server = ServeProc::start(&lab.srv, &args);
    server.wait_log("lease database unreachable", Duration::from_secs(10));
    pg.lock().unwrap().run();
    let ack = lab.cli.run(move || {
        let socket = client_socket("eth0", "0.0.0.0:68".parse().unwrap());
        let mut r = Repr::new(Op::Request, 7, HwAddr::ethernet([0x52, 0x54, 0, 0, 0, 1]));
        r.message_type = Some(MessageType::Request);
        r.flags.set(Flags::BROADCAST, true);
        r.requested_ip = Some(Ipv4Addr::new(192, 168, 242, 102));
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        ask(&socket, &buf, 7, Duration::from_secs(15))
    });
    let ack =
        ack.unwrap_or_else(|| panic!("no reply after the database came back:\n{}", server.log()));
    assert_eq!(ack.kind, MessageType::Ack, "{ack:?}");
    assert_eq!(ack.your_ip, Ipv4Addr::new(192, 168, 242, 102));
    assert!(server.log().contains("lease database reachable again"));
}

/// The storm's lab: two replicas, a relay in front of both, clients behind it.
struct ReplicaLab {
    srv: [Netns; 2],
    rtr: Netns,
    cli: Netns,
    tmp: TempDir,
    root: std::path::PathBuf,
}

impl ReplicaLab {
    fn new() -> Self {
        let srv = [Netns::new("srv1"), Netns::new("srv2")];
        let rtr = Netns::new("rtr");
        let cli = Netns::new("cli");
        for (i, s) in srv.iter().enumerate() {
            let up = format!("up{}", i + 1);
            veth(s, "eth1", &rtr, &up);
            s.ip(&[
                "addr",
                "add",
                &format!("192.168.6{}.1/24", i + 1),
                "dev",
                "eth1",
            ]);
            s.ip(&[
                "route",
                "add",
                "10.9.0.0/22",
                "via",
                &format!("192.168.6{}.2", i + 1),
            ]);
            rtr.ip(&[
                "addr",
                "add",
                &format!("192.168.6{}.2/24", i + 1),
                "dev",
                &up,
            ]);
        }
        veth(&rtr, "c1", &cli, "eth0");
        rtr.ip(&["addr", "add", "10.9.0.1/22", "dev", "c1"]);
        let out = rtr
            .command("sysctl")
            .args(["-q", "-w", "net.ipv4.ip_forward=1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let tmp = TempDir::new("serve-replicas");
        let root = tmp.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("pxelinux.0"), PXELINUX).unwrap();
        Self {
            srv,
            rtr,
            cli,
            tmp,
            root,
        }
    }

    /// dhcrelay: clients on c1, both replicas upstream.
    fn relay(&self) -> Proc {
        let mut cmd = self.rtr.command("dhcrelay");
        cmd.args(["-4", "-d", "-iu", "up1", "-iu", "up2", "-id", "c1", "-pf"])
            .arg(self.tmp.join("dhcrelay.pid"))
            .args(["192.168.61.1", "192.168.62.1"]);
        let mut relay = Proc::spawn("dhcrelay", cmd);
        relay.wait_log("Sending on", Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(300));
        relay
    }

    /// Replica `i` (0 or 1), sharing the pool of 10.9.0.0/22 through `url`.
    fn replica(&self, i: usize, url: &str) -> ServeProc {
        ServeProc::start(
            &self.srv[i],
            &[
                "--interface",
                "eth1",
                "--root",
                self.root.to_str().unwrap(),
                "--leases",
                url,
                "--relay-subnet",
                "10.9.0.0/22=10.9.0.10-10.9.3.200",
            ],
        )
    }
}

/// How many clients the storm runs.
const CLIENTS: usize = 500;

/// One client's state in the storm.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    Discovering {
        xid: u32,
        since: Instant,
        tries: u32,
    },
    Requesting {
        xid: u32,
        ip: Ipv4Addr,
        server: Ipv4Addr,
        since: Instant,
        tries: u32,
    },
    Bound {
        ip: Ipv4Addr,
        server: Ipv4Addr,
        at: Instant,
    },
}

#[test]
fn two_replicas_behind_dhcrelay_share_the_pool_through_a_sigkill_and_a_database_restart() {
    let test = "serve_replicas::storm";
    if !netns_available(test)
        || !have_postgres(test)
        || !have_tool(test, "dhcrelay", "isc-dhcp-relay")
    {
        return;
    }
    let lab = ReplicaLab::new();
    let pg_tmp = TempDir::new("serve-replicas-db");
    let pg = Arc::new(std::sync::Mutex::new(Postgres::start(&pg_tmp, pg_port())));
    let url = pg.lock().unwrap().url();
    let _relay = lab.relay();
    let mut first = lab.replica(0, &url);
    let second = lab.replica(1, &url);
    let ids = [
        Ipv4Addr::new(192, 168, 61, 1),
        Ipv4Addr::new(192, 168, 62, 1),
    ];

    let acks = Arc::new(AtomicUsize::new(0));
    let seen = acks.clone();
    let storm = lab.cli.spawn(move || storm(&seen));
    // Mid-storm: one replica dies without a word, then the database restarts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::Relaxed) < CLIENTS / 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed_at = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &first.pid().to_string()])
        .status();
    let _ = first.child.wait();
    while acks.load(Ordering::Relaxed) < CLIENTS / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let restarted_at = {
        let mut pg = pg.lock().unwrap();
        pg.stop();
        std::thread::sleep(Duration::from_secs(2));
        pg.run();
        Instant::now()
    };
    let clients = storm.join().unwrap();

    // Every client holds an ACK, each a distinct address.
    let bound: Vec<([u8; 6], Ipv4Addr, Ipv4Addr, Instant)> = clients
        .iter()
        .filter_map(|(mac, phase)| match phase {
            Phase::Bound { ip, server, at } => Some((*mac, *ip, *server, *at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        bound.len(),
        CLIENTS,
        "clients without a lease: {:?}\n--- survivor log tail ---\n{}",
        clients
            .iter()
            .filter(|(_, p)| !matches!(p, Phase::Bound { .. }))
            .take(10)
            .collect::<Vec<_>>(),
        tail(&second.log(), 60)
    );
    let distinct: HashSet<Ipv4Addr> = bound.iter().map(|b| b.1).collect();
    assert_eq!(
        distinct.len(),
        CLIENTS,
        "an address was given to two clients"
    );
    // After the kill, only the survivor acknowledged.
    let late: Vec<_> = bound
        .iter()
        .filter(|b| b.3 > killed_at + Duration::from_millis(100))
        .collect();
    assert!(!late.is_empty(), "no client was served after the kill");
    assert!(
        late.iter().all(|b| b.2 == ids[1]),
        "only the survivor answers after the kill"
    );
    assert!(
        bound.iter().any(|b| b.2 == ids[0]),
        "the killed replica served clients before"
    );
    let after_restart = bound.iter().filter(|b| b.3 > restarted_at).count();
    let log = second.log();
    eprintln!(
        "{test}: {} ACKs from the killed replica, {} from the survivor ({} after the kill, {} \
         after the database restart); survivor withheld {} ACKs while the database was down \
         and {} for addresses bound by the other replica first",
        bound.iter().filter(|b| b.2 == ids[0]).count(),
        bound.iter().filter(|b| b.2 == ids[1]).count(),
        late.len(),
        after_restart,
        log.matches("reply withheld").count(),
        log.matches("address bound by another server first").count(),
    );
    assert!(
        after_restart > 0,
        "no client was served after the database restart"
    );
    // Every ACK is in the database: none was lost to the kill or to the restart.
    let rows = pg
        .lock()
        .unwrap()
        .psql("SELECT host(ip), mac FROM pocketpxe_leases")
        .unwrap();
    let in_db: HashMap<Ipv4Addr, String> = rows
        .lines()
        .filter_map(|line| {
            let (ip, mac) = line.split_once('|')?;
            Some((ip.parse().ok()?, mac.to_owned()))
        })
        .collect();
    for (mac, ip, _, _) in &bound {
        let mac = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            in_db.get(ip),
            Some(&mac),
            "ACK of {ip} to {mac} not in the database"
        );
    }
    let log = second.log();
    assert!(
        log.contains("lease database unreachable"),
        "{}",
        tail(&log, 40)
    );
    assert!(
        log.contains("lease database reachable again"),
        "{}",
        tail(&log, 40)
    );
}

/// The last `n` lines of `log`.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs [`CLIENTS`] clients (MACs 02:00:00:00:HI:LO) through DISCOVER, OFFER, REQUEST, ACK
/// behind the relay, starting 100 per second; a client retransmits every 500 ms, goes back to
/// DISCOVER after a NAK or 4 unanswered REQUESTs. Counts ACKs in `acks`; returns each client's
/// final state after all are bound or 90 s.
fn storm(acks: &AtomicUsize) -> Vec<([u8; 6], Phase)> {
    let socket = client_socket("eth0", "0.0.0.0:68".parse().unwrap());
    socket
        .set_read_timeout(Some(Duration::from_millis(2)))
        .unwrap();
    let macs: Vec<[u8; 6]> = (0..CLIENTS)
        .map(|i| [2, 0, 0, 0, (i >> 8) as u8, i as u8])
        .collect();
    let index: HashMap<[u8; 6], usize> = macs.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut phase = vec![Phase::Idle; CLIENTS];
    let mut next_xid = 1u32;
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    let mut xid = || {
        next_xid += 1;
        next_xid
    };
    while start.elapsed() < Duration::from_secs(90) {
        let now = Instant::now();
        let started = ((now - start).as_millis() as usize / 10 + 1).min(CLIENTS);
        for i in 0..started {
            let mac = macs[i];
            match phase[i] {
                Phase::Idle => {
                    let x = xid();
                    socket
                        .send_to(
                            &message(MessageType::Discover, mac, x, None),
                            "255.255.255.255:67",
                        )
                        .unwrap();
                    phase[i] = Phase::Discovering {
                        xid: x,
                        since: now,
                        tries: 1,
                    };
                }
                Phase::Discovering {
                    xid: x,
                    since,
                    tries,
                } if now - since > Duration::from_millis(500) => {
                    socket
                        .send_to(
                            &message(MessageType::Discover, mac, x, None),
                            "255.255.255.255:67",
                        )
                        .unwrap();
                    phase[i] = Phase::Discovering {
                        xid: x,
                        since: now,
                        tries: tries + 1,
                    };
                }
                Phase::Requesting {
                    xid: x,
                    ip,
                    server,
                    since,
                    tries,
                } if now - since > Duration::from_millis(500) => {
                    if tries >= 4 {
                        phase[i] = Phase::Idle;
                    } else {
                        let msg = message(MessageType::Request, mac, x, Some((ip, server)));
                        socket.send_to(&msg, "255.255.255.255:67").unwrap();
                        phase[i] = Phase::Requesting {
                            xid: x,
                            ip,
                            server,
                            since: now,
                            tries: tries + 1,
                        };
                    }
                }
                _ => {}
            }
        }
        // Replies.
        for _ in 0..256 {
            let Ok(len) = socket.recv(&mut buf) else {
                break;
            };
            let Some(reply) = parse(&buf[..len]) else {
                continue;
            };
            let Some(&i) = index.get(&reply.mac) else {
                continue;
            };
            match (phase[i], reply.kind) {
                (Phase::Discovering { xid: x, .. }, MessageType::Offer) if x == reply.xid => {
                    let Some(server) = reply.server else { continue };
                    let x = xid();
                    let msg = message(
                        MessageType::Request,
                        macs[i],
                        x,
                        Some((reply.your_ip, server)),
                    );
                    socket.send_to(&msg, "255.255.255.255:67").unwrap();
                    phase[i] = Phase::Requesting {
                        xid: x,
                        ip: reply.your_ip,
                        server,
                        since: Instant::now(),
                        tries: 1,
                    };
                }
                (
                    Phase::Requesting {
                        xid: x, ip, server, ..
                    },
                    MessageType::Ack,
                ) if x == reply.xid => {
                    assert_eq!(reply.your_ip, ip, "ACK for another address than requested");
                    phase[i] = Phase::Bound {
                        ip,
                        server,
                        at: Instant::now(),
                    };
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                (Phase::Requesting { xid: x, .. }, MessageType::Nak) if x == reply.xid => {
                    phase[i] = Phase::Idle;
                }
                _ => {}
            }
        }
        if started == CLIENTS && phase.iter().all(|p| matches!(p, Phase::Bound { .. })) {
            break;
        }
    }
    macs.into_iter().zip(phase).collect()
}

/// A PXE client message (BIOS, UNDI) with `ciaddr`.
fn pxe_message(kind: MessageType, mac: [u8; 6], xid: u32, ciaddr: Ipv4Addr) -> Vec<u8> {
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.flags.set(Flags::BROADCAST, ciaddr.is_unspecified());
    r.client_ip = ciaddr;
    r.vendor_class_id = Some(OptionBytes::new(b"PXEClient:Arch:00000:UNDI:002001"));
    r.client_arch = Some(OptionBytes::new(&[0, 0]));
    r.client_uuid = Some(OptionBytes::new(&[0u8; 17]));
    r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 43, 54, 60, 66, 67, 97]));
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}

/// (server identifier, yiaddr, siaddr, boot file) of each reply to `xid` in `replies`.
fn offers_in(replies: &[Vec<u8>], xid: u32) -> Vec<(Option<Ipv4Addr>, Ipv4Addr, Ipv4Addr, String)> {
    replies
        .iter()
        .filter_map(|bytes| {
            let packet = Packet::new_checked(&bytes[..]).ok()?;
            let r = Repr::parse(&packet).ok()?;
            (r.op == Op::Reply && r.transaction_id == xid).then(|| {
                let file = String::from_utf8_lossy(r.boot_file).into_owned();
                (r.server_identifier, r.your_ip, r.server_ip, file)
            })
        })
        .collect()
}

/// Proxy mode shares nothing: two proxyDHCP replicas next to dnsmasq on one segment each
/// offer the boot file with themselves as the boot server, answer the port-4011 request and
/// serve the file over TFTP; with one replica killed, the other alone boots the client.
#[test]
fn two_proxy_replicas_side_by_side_each_boot_the_client() {
    let test = "serve_replicas::proxy";
    if !netns_available(test)
        || !have_tool(test, "busybox", "busybox-static")
        || !have_tool(test, "dnsmasq", "dnsmasq-base")
    {
        return;
    }
    let sw = Netns::new("sw");
    let cli = Netns::new("cli");
    let dns = Netns::new("dns");
    let srv = [Netns::new("px1"), Netns::new("px2")];
    sw.ip(&["link", "add", "br0", "type", "bridge"]);
    sw.ip(&["link", "set", "br0", "up"]);
    for (port, ns) in [
        ("p-cli", &cli),
        ("p-dns", &dns),
        ("p-px1", &srv[0]),
        ("p-px2", &srv[1]),
    ] {
        veth(&sw, port, ns, "eth0");
        sw.ip(&["link", "set", port, "master", "br0"]);
    }
    dns.ip(&["addr", "add", "10.77.0.254/24", "dev", "eth0"]);
    let tmp = TempDir::new("serve-proxy-replicas");
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("pxelinux.0"), PXELINUX).unwrap();
    let _dnsmasq = dnsmasq_address_server(&dns, &tmp.path);
    let ids = [Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 2)];
    let mut replicas: Vec<ServeProc> = srv
        .iter()
        .zip(ids)
        .map(|(ns, id)| {
            ServeProc::start(
                ns,
                &[
                    "--interface",
                    "eth0",
                    "--mode",
                    "proxy",
                    "--address",
                    &format!("{id}/24"),
                    "--root",
                    root.to_str().unwrap(),
                    "--boot",
                    "bios=pxelinux.0",
                ],
            )
        })
        .collect();

    let mac = [0x52, 0x54, 0x00, 0xa5, 0x00, 0x07];
    // Every reply to a PXE DISCOVER with transaction `xid`.
    let discover = |xid: u32| {
        let replies = cli.run(move || {
            let sock = client_socket("eth0", "0.0.0.0:68".parse().unwrap());
            let msg = pxe_message(MessageType::Discover, mac, xid, Ipv4Addr::UNSPECIFIED);
            sock.send_to(&msg, (Ipv4Addr::BROADCAST, 67)).unwrap();
            collect(&sock, Duration::from_secs(2))
        });
        offers_in(&replies, xid)
    };
    // The boot server `id` answers the client's port-4011 request with the boot file, and
    // serves it over TFTP.
    let boot_from = |id: Ipv4Addr, ciaddr: Ipv4Addr, xid: u32| {
        let replies = cli.run(move || {
            let sock = client_socket("eth0", "0.0.0.0:4011".parse().unwrap());
            sock.send_to(
                &pxe_message(MessageType::Request, mac, xid, ciaddr),
                (id, 4011),
            )
            .unwrap();
            collect(&sock, Duration::from_secs(2))
        });
        let acks = offers_in(&replies, xid);
        assert_eq!(acks.len(), 1, "one ACK from the boot server {id}: {acks:?}");
        assert_eq!((acks[0].2, acks[0].3.as_str()), (id, "pxelinux.0"));
        let to = tmp.join(&format!("got-{xid}"));
        let out = busybox_tftp_get(&cli, "pxelinux.0", &to, &id.to_string());
        assert!(out.status.success(), "TFTP from {id}: {out:?}");
        assert_eq!(std::fs::read(&to).unwrap(), PXELINUX, "the file from {id}");
    };
    let offers = discover(0x100);
    let address = offers
        .iter()
        .find(|o| o.0 == Some(Ipv4Addr::new(10, 77, 0, 254)))
        .unwrap_or_else(|| panic!("no address offer: {offers:?}"))
        .1;
    for id in ids {
        let proxy = offers
            .iter()
            .find(|o| o.0 == Some(id))
            .unwrap_or_else(|| panic!("no proxy offer from {id}: {offers:?}"));
        assert_eq!(proxy.1, Ipv4Addr::UNSPECIFIED, "a proxy gives no address");
        assert_eq!(proxy.2, id, "each replica names itself as the boot server");
        assert_eq!(proxy.3, "pxelinux.0");
    }
    cli.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"]);
    // The client may pick either replica: both boot it.
    boot_from(ids[0], address, 0x200);
    boot_from(ids[1], address, 0x201);
    // One replica dies: the other alone offers, and boots the client.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &replicas[0].pid().to_string()])
        .status();
    let _ = replicas[0].child.wait();
    let offers = discover(0x300);
    let proxies: Vec<_> = offers.iter().filter(|o| o.1.is_unspecified()).collect();
    assert_eq!(proxies.len(), 1, "{offers:?}");
    assert_eq!(proxies[0].0, Some(ids[1]));
    boot_from(ids[1], address, 0x301);
    replicas.clear();
}
