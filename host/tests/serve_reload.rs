//! `pocketpxe serve` reloads on SIGHUP (`systemctl reload`, `ExecReload=` in
//! `dist/pocketpxe@.service`): the process keeps running, tells `NOTIFY_SOCKET`
//! `RELOADING=1` (with `MONOTONIC_USEC=`) and then `READY=1`, keeps every lease, and a TFTP
//! transfer running across the reload completes. And the running DHCP task, given new rules,
//! uses them at once while keeping its leases.
//!
//! Runs `serve` in network namespaces it creates (see `serve_support`); needs root, `ip netns`
//! and busybox: without them it is skipped with a `SKIP:` line, except under `CI=true`, where it
//! fails. `POCKETPXE_BIN` runs it against another binary.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::{ack, random_bytes, rrq, wait_child};
use pocketpxe::serve::dhcp::{
    BootSpec, DhcpModeConfig, DhcpService, DhcpTaskConfig, LeaseStore, RuleChange,
};
use pocketpxe::serve::lease_file::LeaseFile;
use pocketpxe_core::dhcp::{ClientClass, Pool, Reservation};
use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = "192.168.242.1";

#[test]
fn sighup_reloads_keeping_leases_and_transfers() {
    const T: &str = "sighup_reloads_keeping_leases_and_transfers";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("reload");
    lab.cli
        .ip(&["addr", "add", "192.168.242.50/24", "dev", "eth0"]);
    // 100 blocks of 512 bytes and a short last one.
    let big = random_bytes(100 * 512 + 100, 13);
    std::fs::write(lab.root.join("big.bin"), &big).unwrap();
    let notify = NotifySocket::new(&lab.tmp.path);
    let args = lab.lab_args(&["--address", "192.168.242.1/24", "--user", "root"]);
    let mut cmd = lab.srv.command(pocketpxe_bin());
    cmd.arg("serve")
        .args(&args)
        .env("NOTIFY_SOCKET", &notify.path)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    let mut server = Proc::spawn("pocketpxe serve", cmd);
    let ready = notify
        .recv(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no READY=1 within 20 s:\n{}", server.log()));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    // Two clients get leases: .2 and .3.
    let first_mac = mac_of(&lab.cli, "eth0");
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let first = env.unwrap_or_else(|| panic!("no lease: {out:?}\n{}", server.log()))["ip"].clone();
    set_mac(&lab.cli, "eth0", "52:54:00:aa:bb:02");
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let second = env.unwrap_or_else(|| panic!("no lease: {out:?}\n{}", server.log()))["ip"].clone();
    assert_ne!(first, second);

    // A TFTP transfer is started: ten blocks in, it waits across the reload.
    let socket = lab.cli.run(|| {
        let socket = client_socket("eth0", "192.168.242.50:0".parse().unwrap());
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        socket
            .send_to(&rrq(b"big.bin", &[]), format!("{SERVER}:69"))
            .unwrap();
        socket
    });
    let mut transfer = Transfer::default();
    while transfer.received.len() < 10 * 512 {
        assert!(transfer.step(&socket), "transfer ended early");
    }

    send_signal("HUP", server.child.id());
    let reloading = notify
        .recv(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no notice after SIGHUP:\n{}", server.log()));
    let lines: Vec<&str> = reloading.lines().collect();
    assert!(lines.contains(&"RELOADING=1"), "{reloading:?}");
    let usec: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    let ready = notify
        .recv(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no READY=1 after RELOADING=1:\n{}", server.log()));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(!ready.contains("STOPPING"), "{ready:?}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "serve exited on SIGHUP:\n{}",
        server.log()
    );

    // The transfer goes on to the end, intact.
    let start = Instant::now();
    while !transfer.done {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "transfer stalled after the reload:\n{}",
            server.log()
        );
        assert!(
            transfer.step(&socket),
            "transfer failed after the reload:\n{}",
            server.log()
        );
    }
    assert!(transfer.received == big, "transfer corrupted");

    // Both clients keep their addresses (a lost lease table would give the second client .2).
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    assert_eq!(
        env.expect("no lease after the reload")["ip"],
        second,
        "{out:?}"
    );
    set_mac(&lab.cli, "eth0", &first_mac);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    assert_eq!(
        env.expect("no lease after the reload")["ip"],
        first,
        "{out:?}"
    );

    let log = server.log();
    assert!(
        log.contains("reloaded: nothing changed") && log.contains("interface=eth1"),
        "{log}"
    );
    assert!(!log.contains("reload refused"), "{log}");
    assert!(!log.contains("stopping"), "{log}");

    // SIGTERM still stops it cleanly.
    send_signal("TERM", server.child.id());
    let stopping = notify
        .recv(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no STOPPING=1 after SIGTERM:\n{}", server.log()));
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = wait_child(&mut server.child, Duration::from_secs(15)).expect("no exit");
    assert!(status.success(), "{status}:\n{}", server.log());
}

/// New rules handed to a running DHCP task are used for the very next request: a changed boot
/// file, a new reservation; the lease granted before stays, and a new client gets the next
/// free address.
#[test]
fn a_running_dhcp_task_applies_new_rules_keeping_leases() {
    const T: &str = "a_running_dhcp_task_applies_new_rules_keeping_leases";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("reload-task");
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let bios = |file: &str| BootSpec {
        class: ClientClass::Bios,
        mac: None,
        file: file.into(),
    };
    let ip = |last| Ipv4Addr::new(192, 168, 242, last);
    let cfg = DhcpTaskConfig {
        interface: "eth1".into(),
        server: "192.168.242.1/24".parse().unwrap(),
        mode: DhcpModeConfig::Authoritative {
            pool: Pool {
                start: ip(10),
                end: ip(20),
            },
            lease_time: Duration::from_secs(600),
            router: None,
            dns: Vec::new(),
        },
        boot: vec![bios("old.0")],
        reservations: Vec::new(),
        leases: Some(LeaseStore::File(LeaseFile::new(lab.leases()))),
        port: 67,
        http_port: None,
        relay_subnets: Vec::new(),
    };
    let (runtime, rules, trigger, task) = lab.srv.run(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let service = runtime.block_on(async { DhcpService::bind(cfg) }).unwrap();
        let rules = service.rule_sender();
        let (trigger, shutdown) = pocketpxe::sys::shutdown::channel();
        let task = runtime.spawn(service.run(shutdown));
        (runtime, rules, trigger, task)
    });
    let client = lab
        .cli
        .run(|| client_socket("eth0", "0.0.0.0:68".parse().unwrap()));
    let (a, b, c) = (
        [2, 0, 0, 0, 0, 0xa],
        [2, 0, 0, 0, 0, 0xb],
        [2, 0, 0, 0, 0, 0xc],
    );

    let (yiaddr, file) = exchange(&client, MessageType::Discover, a, None);
    assert_eq!((yiaddr, file.as_str()), (ip(10), "old.0"));
    let (yiaddr, _) = exchange(&client, MessageType::Request, a, Some(ip(10)));
    assert_eq!(yiaddr, ip(10), "no ACK");

    let change = runtime
        .block_on(rules.apply(
            vec![bios("new.0")],
            vec![Reservation { mac: c, ip: ip(15) }],
        ))
        .expect("the task is gone");
    assert_eq!(
        change,
        RuleChange {
            boot_before: 1,
            boot_after: 1,
            boot_changed: true,
            reservations_added: 1,
            reservations_removed: 0,
        }
    );
    // A new client b gets the next free address (.10 stays a's), a keeps .10 and gets the new
    // file, c its reservation.
    assert_eq!(exchange(&client, MessageType::Discover, b, None).0, ip(11));
    assert_eq!(
        exchange(&client, MessageType::Discover, a, None),
        (ip(10), "new.0".to_owned())
    );
    assert_eq!(exchange(&client, MessageType::Discover, c, None).0, ip(15));
    // The lease file still holds a's lease.
    let stored = LeaseFile::new(lab.leases()).load().unwrap();
    assert!(
        stored.iter().any(|r| r.mac == a && r.ip == ip(10)),
        "{stored:?}"
    );

    trigger.trigger();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await })
        .expect("the task did not stop")
        .unwrap()
        .unwrap();
}

/// Sends a PXE BIOS client's DISCOVER or REQUEST (for `requested`) from `mac` and returns the
/// reply's `yiaddr` and boot file.
fn exchange(
    socket: &UdpSocket,
    kind: MessageType,
    mac: [u8; 6],
    requested: Option<Ipv4Addr>,
) -> (Ipv4Addr, String) {
    let xid = u32::from(mac[5]) << 8 | u32::from(u8::from(kind));
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.flags.set(Flags::BROADCAST, true);
    r.vendor_class_id = Some(OptionBytes::new(b"PXEClient:Arch:00000:UNDI:002001"));
    r.client_arch = Some(OptionBytes::new(&[0, 0]));
    r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 43, 54, 60, 66, 67]));
    r.requested_ip = requested;
    r.server_identifier = requested.map(|_| Ipv4Addr::new(192, 168, 242, 1));
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    for _ in 0..5 {
        socket.send_to(&buf, "255.255.255.255:67").unwrap();
        let start = Instant::now();
        let mut rx = [0u8; 1500];
        while start.elapsed() < Duration::from_secs(1) {
            let Ok(len) = socket.recv(&mut rx) else {
                continue;
            };
            let Ok(packet) = Packet::new_checked(&rx[..len]) else {
                continue;
            };
            let Ok(reply) = Repr::parse(&packet) else {
                continue;
            };
            if reply.op == Op::Reply && reply.transaction_id == xid {
                let file = String::from_utf8_lossy(reply.boot_file).into_owned();
                return (reply.your_ip, file);
            }
        }
    }
    panic!("no reply to {kind:?} from {mac:02x?}");
}

/// A lockstep TFTP download (RFC 1350) that the test drives one datagram at a time.
#[derive(Default)]
struct Transfer {
    received: Vec<u8>,
    next_block: u16,
    done: bool,
}

impl Transfer {
    /// Takes one datagram: a new DATA block is kept and acknowledged, a repeated one
    /// acknowledged again. False on a timeout or an ERROR.
    fn step(&mut self, socket: &UdpSocket) -> bool {
        if self.next_block == 0 {
            self.next_block = 1;
        }
        let mut buf = [0u8; 600];
        let Ok((len, from)) = socket.recv_from(&mut buf) else {
            return false;
        };
        let packet = &buf[..len];
        if len < 4 || packet[..2] != [0, 3] {
            return false;
        }
        let block = u16::from_be_bytes([packet[2], packet[3]]);
        if block == self.next_block {
            self.received.extend_from_slice(&packet[4..]);
            self.next_block = self.next_block.wrapping_add(1);
            self.done = len < 4 + 512;
        }
        socket.send_to(&ack(block), from).unwrap();
        true
    }
}

/// `kill -SIGNAL pid`.
fn send_signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
