//! The boot timeline of `pocketpxe serve`, in network namespaces the tests create: a boot
//! record after a real DHCP lease and TFTP download, each diagnosis pattern driven with crafted
//! DHCP and TFTP datagrams, and `pocketpxe status` against the running daemon.
//!
//! They need root and `ip netns` (see `serve_support`); without them they are skipped with a
//! `SKIP:` line, except under `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::{ack, opcode, rrq, run_bounded};
use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The log lines of target `pocketpxe::boot` that contain every needle.
fn boot_lines(log: &str, needles: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("pocketpxe::boot"))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// Waits until exactly one boot line holds every needle; returns it.
fn wait_boot_line(server: &ServeProc, needles: &[&str]) -> String {
    let start = std::time::Instant::now();
    loop {
        let found = boot_lines(&server.log(), needles);
        if !found.is_empty() {
            assert_eq!(found.len(), 1, "once only: {found:#?}");
            return found[0].clone();
        }
        assert!(
            start.elapsed() < LIMIT,
            "no boot line with {needles:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// udhcpc takes a lease, busybox tftp fetches the boot file: after the quiet period one INFO
/// line tells the boot (MAC, address, the file with its size); no diagnosis. `pocketpxe
/// status` then shows the pool's use and that boot, from the running daemon.
#[test]
fn a_lease_and_a_download_make_one_boot_record_and_status_shows_it() {
    const T: &str = "a_lease_and_a_download_make_one_boot_record_and_status_shows_it";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("timeline-boot");
    let socket = lab.tmp.join("status.sock");
    let socket_arg = socket.display().to_string();
    let server = lab.serve(&[
        "--address",
        "192.168.242.1/24",
        "--boot-quiet",
        "2s",
        "--status-socket",
        &socket_arg,
    ]);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}"));
    let ip = env["ip"].clone();
    let mac = mac_of(&lab.cli, "eth0");
    lab.cli
        .ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let got = lab.tmp.join("got");
    let out = busybox_tftp_get(&lab.cli, "pxelinux.0", &got, "192.168.242.1");
    assert!(out.status.success(), "{out:?}");

    let line = wait_boot_line(&server, &["boot booted"]);
    println!("{line}");
    let size = PXELINUX.len();
    for needle in [
        " INFO ".to_owned(),
        format!("mac={mac} "),
        format!("ip={ip} "),
        format!("files=1 bytes={size} "),
        format!("list=\"pxelinux.0 {size} bytes "),
    ] {
        assert!(line.contains(&needle), "{needle:?} not in {line}");
    }
    assert!(
        !server.log().contains(" WARN pocketpxe::boot"),
        "{}",
        server.log()
    );

    // The daemon's own view, as JSON and as text.
    let status = |json: bool| {
        let mut cmd = std::process::Command::new(pocketpxe_bin());
        cmd.args(["status", "--socket", &socket_arg]);
        if json {
            cmd.arg("--json");
        }
        let out = run_bounded(&mut cmd, Duration::from_secs(10));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let report: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    let iface = &report["interfaces"][0];
    assert_eq!(iface["name"], "eth1");
    assert_eq!(iface["mode"], "dhcp");
    assert_eq!(iface["pool"]["size"], 98, "{report:#}");
    assert_eq!(iface["pool"]["used"], 1, "{report:#}");
    assert_eq!(iface["pool"]["free"], 97, "{report:#}");
    let boot = &report["recent_boots"][0];
    assert_eq!(boot["outcome"], "booted", "{report:#}");
    assert_eq!(boot["mac"], mac.as_str());
    assert_eq!(boot["ip"], ip.as_str());
    assert_eq!(boot["files"][0]["path"], "pxelinux.0");
    assert_eq!(boot["files"][0]["bytes"], size);
    assert_eq!(report["transfers"].as_array().map(Vec::len), Some(0));
    let text = status(false);
    println!("{text}");
    assert!(
        text.contains("pool 192.168.242.2-192.168.242.99: 98 addresses, 1 used, 97 free"),
        "{text}"
    );
    assert!(text.contains(&format!("booted {mac} {ip}")), "{text}");
}

/// Crafted datagrams show each pattern of an address-giving server once: a UEFI ARM client
/// with no boot rule, DISCOVERs without a REQUEST, TFTP from an address never offered, a
/// missing file (with the nearest existing name), and transfers that keep stopping at the same
/// block.
#[test]
fn crafted_clients_raise_each_diagnosis_once() {
    const T: &str = "crafted_clients_raise_each_diagnosis_once";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("timeline-diag");
    std::fs::write(lab.root.join("big.bin"), vec![7u8; 4096]).unwrap();
    let server = lab.serve(&["--address", "192.168.242.1/24", "--boot-quiet", "2s"]);
    lab.cli
        .ip(&["addr", "add", "192.168.242.150/24", "dev", "eth0"]);
    lab.cli
        .ip(&["addr", "add", "192.168.242.151/24", "dev", "eth0"]);

    // (b) arch 11 (UEFI ARM64): only bios has a rule.
    let arm = [0x52, 0x54, 0x00, 0xa5, 0x00, 0x0b];
    // (e) a BIOS client that never requests.
    let shy = [0x52, 0x54, 0x00, 0xa5, 0x00, 0x0e];
    lab.cli.run(move || {
        let sock = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
        let discover = pxe_message(MessageType::Discover, arm, 0x0b0b, 11, None);
        sock.send_to(&discover, (Ipv4Addr::BROADCAST, 67)).unwrap();
        for xid in 0..3 {
            let discover = pxe_message(MessageType::Discover, shy, 0x0e00 + xid, 0, None);
            sock.send_to(&discover, (Ipv4Addr::BROADCAST, 67)).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let line = wait_boot_line(&server, &["no boot rule"]);
    assert!(
        line.contains(
            "no boot rule for the client's class mac=52:54:00:a5:00:0b class=efi-arm64 \
             ip=192.168.242.2: add a boot file for the class with --boot efi-arm64=FILE"
        ),
        "{line}"
    );
    assert!(line.contains(" WARN "), "{line}");
    let line = wait_boot_line(&server, &["DISCOVERs never followed by a REQUEST"]);
    assert!(
        line.contains(
            "mac=52:54:00:a5:00:0e class=bios ip=192.168.242.3 discovers=3: another DHCP server"
        ),
        "{line}"
    );

    // (f) and (c): a client this server gave no address asks for a mistyped file.
    lab.cli.run(|| {
        let sock = UdpSocket::bind("192.168.242.150:0").unwrap();
        sock.send_to(&rrq(b"pxelinux.O", &[]), "192.168.242.1:69")
            .unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 600];
        let len = sock.recv(&mut buf).expect("an ERROR");
        assert_eq!(opcode(&buf[..len]), 5, "{:?}", &buf[..len]);
    });
    let line = wait_boot_line(&server, &["never offered", "ip=192.168.242.150"]);
    assert!(
        line.contains(
            "TFTP request from an address this server never offered ip=192.168.242.150 \
             path=pxelinux.O: another DHCP server points clients at this TFTP server"
        ),
        "{line}"
    );
    // At the end of its boot (nothing fetched after the missing file).
    let line = wait_boot_line(&server, &["WARN pocketpxe::boot: file not found"]);
    assert!(
        line.contains(
            "file not found ip=192.168.242.150 path=pxelinux.O: the path is relative to \
             --root"
        ),
        "{line}"
    );
    assert!(
        line.ends_with("(nearest existing name: \"pxelinux.0\")"),
        "{line}"
    );
    let line = wait_boot_line(&server, &["boot failed", "ip=192.168.242.150"]);
    assert!(
        line.contains("boot failed (file not found) ip=192.168.242.150"),
        "{line}"
    );

    // (d) three transfers that end after block 1 (the client gives up with an ERROR).
    lab.cli.run(|| {
        let sock = UdpSocket::bind("192.168.242.151:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            sock.send_to(&rrq(b"big.bin", &[]), "192.168.242.1:69")
                .unwrap();
            let (len, tid) = sock.recv_from(&mut buf).expect("DATA 1");
            assert_eq!((opcode(&buf[..len]), len), (3, 516));
            sock.send_to(&ack(1), tid).unwrap();
            let (len, _) = sock.recv_from(&mut buf).expect("DATA 2");
            assert_eq!(opcode(&buf[..len]), 3);
            sock.send_to(b"\x00\x05\x00\x00gave up\x00", tid).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let line = wait_boot_line(&server, &["same block"]);
    assert!(
        line.contains(
            "transfers keep stopping at the same block ip=192.168.242.151 path=big.bin \
             block=1 blksize=512 failures=3: large blocks get lost"
        ),
        "{line}"
    );
    // Each pattern once.
    let log = server.log();
    assert_eq!(boot_lines(&log, &[" WARN "]).len(), 6, "{log}");
}

/// proxyDHCP: a client that takes the DHCP server's address after the proxy offer and then
/// starts over, never asking port 4011, is diagnosed once.
#[test]
fn a_client_ignoring_the_proxy_offer_is_diagnosed() {
    const T: &str = "a_client_ignoring_the_proxy_offer_is_diagnosed";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("timeline-proxy");
    let server = lab.serve(&[
        "--mode",
        "proxy",
        "--address",
        "192.168.242.1/24",
        "--boot-quiet",
        "2s",
    ]);
    let mac = [0x52, 0x54, 0x00, 0xa5, 0x00, 0x0a];
    let offers = lab.cli.run(move || {
        let sock = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
        let discover = pxe_message(MessageType::Discover, mac, 0x0a01, 0, None);
        sock.send_to(&discover, (Ipv4Addr::BROADCAST, 67)).unwrap();
        let offers = collect(&sock, Duration::from_secs(1));
        // The REQUEST to the address-giving server (not us), then a new DISCOVER.
        let request = pxe_message(
            MessageType::Request,
            mac,
            0x0a01,
            0,
            Some(Ipv4Addr::new(192, 168, 242, 254)),
        );
        sock.send_to(&request, (Ipv4Addr::BROADCAST, 67)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for xid in 0..2 {
            let discover = pxe_message(MessageType::Discover, mac, 0x0a02 + xid, 0, None);
            sock.send_to(&discover, (Ipv4Addr::BROADCAST, 67)).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        offers.len()
    });
    assert!(offers >= 1, "no proxy offer:\n{}", server.log());
    let line = wait_boot_line(&server, &["ignored the proxy offer"]);
    assert!(
        line.contains(
            "client ignored the proxy offer mac=52:54:00:a5:00:0a class=bios \
             ip=192.168.242.77 discovers=1: the client took its address from the DHCP server \
             but never asked this server on UDP port 4011"
        ),
        "{line}"
    );
    let line = wait_boot_line(&server, &["boot failed", "mac=52:54:00:a5:00:0a"]);
    assert!(line.contains("boot failed (proxy offer ignored)"), "{line}");
}

/// A PXE client message (options 60, 93, 97, 55, 57; broadcast flag); a REQUEST names the
/// chosen server (54) and asks for 192.168.242.77 (50).
fn pxe_message(
    kind: MessageType,
    mac: [u8; 6],
    xid: u32,
    arch: u16,
    server: Option<Ipv4Addr>,
) -> Vec<u8> {
    let arch_bytes = arch.to_be_bytes();
    let uuid = [0u8; 17];
    let vendor = format!("PXEClient:Arch:{arch:05}:UNDI:002001");
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.flags.set(Flags::BROADCAST, true);
    r.vendor_class_id = Some(OptionBytes::new(vendor.as_bytes()));
    r.client_arch = Some(OptionBytes::new(&arch_bytes));
    r.client_uuid = Some(OptionBytes::new(&uuid));
    r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 43, 54, 60, 66, 67, 97]));
    r.max_message_size = Some(1472);
    if let Some(server) = server {
        r.server_identifier = Some(server);
        r.requested_ip = Some(Ipv4Addr::new(192, 168, 242, 77));
    }
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}
