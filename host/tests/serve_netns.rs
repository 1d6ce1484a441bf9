//! `pocketpxe serve` against real DHCP clients, in network namespaces the tests create.
//!
//! Each test builds its own namespaces and veth pairs (see `serve_support`) and never touches
//! the machine's interfaces. They need root and `ip netns`: without them they are skipped with
//! a `SKIP:` line, except under `CI=true`, where they fail. Clients: busybox udhcpc, ISC
//! dhclient, dnsmasq as the address-giving server next to proxy mode, and a hand-made PXE client
//! built with the core's DHCP wire emitter.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::{TempDir, opcode, rrq, run_bounded};
use pocketpxe_core::wire::dhcp::{Flags, HwAddr, MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

/// busybox udhcpc gets an address from the default range with router and DNS = the server;
/// the lease is in the lease file; TFTP serves the boot file to it; the log tells the client's
/// story under its MAC; `--address` is removed again on SIGTERM.
#[test]
fn udhcpc_lease_then_tftp_then_clean_exit() {
    const T: &str = "udhcpc_lease_then_tftp_then_clean_exit";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("serve-udhcpc");
    assert!(!lab.srv.addrs("eth1").contains("192.168.242.1"));
    let mut server = lab.serve(&["--address", "192.168.242.1/24"]);
    assert!(lab.srv.addrs("eth1").contains("192.168.242.1/24"));

    // The host name (option 12) is logged with the client's messages.
    let (env, out) = udhcpc_with(
        &lab.cli,
        "eth0",
        &lab.tmp.path,
        &["-x", "hostname:lab-client"],
    );
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}"));
    let ip: Ipv4Addr = env["ip"].parse().unwrap();
    assert!(
        (2..=99).contains(&ip.octets()[3]) && ip.octets()[..3] == [192, 168, 242],
        "{ip}"
    );
    assert_eq!(env["router"], "192.168.242.1");
    assert_eq!(env["dns"].trim(), "192.168.242.1");
    assert_eq!(env["serverid"], "192.168.242.1");
    assert_eq!(env["subnet"], "255.255.255.0");
    assert_eq!(env["lease"], "3600");

    let mac = mac_of(&lab.cli, "eth0");
    let leases = std::fs::read_to_string(lab.leases()).unwrap();
    assert!(
        leases.contains(&format!("{mac} {ip} ")),
        "lease file:\n{leases}"
    );

    // TFTP from the leased address.
    lab.cli
        .ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let got = lab.tmp.join("got-pxelinux.0");
    let out = busybox_tftp_get(&lab.cli, "pxelinux.0", &got, "192.168.242.1");
    assert!(out.status.success(), "busybox tftp: {out:?}");
    assert_eq!(std::fs::read(&got).unwrap(), PXELINUX);

    // One story under one MAC: DISCOVER/OFFER, REQUEST/ACK, then the transfer.
    server.wait_log("transfer ended", Duration::from_secs(5));
    let log = server.log();
    let story: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("mac={mac}")))
        .collect();
    assert!(
        story.iter().any(|l| l.contains("request=DISCOVER")
            && l.contains("reply=OFFER")
            && l.contains(&format!("ip={ip}"))
            && l.contains("hostname=lab-client")
            && l.contains("vendor=\"udhcp")),
        "{log}"
    );
    assert!(
        story.iter().any(|l| l.contains("request=REQUEST")
            && l.contains("reply=ACK")
            && l.contains("hostname=lab-client")),
        "{log}"
    );
    // Values as an operator reads them: no Rust `Option`s or struct/enum Debug output.
    for artefact in ["Some(", "None", "{ ", "=\"\""] {
        assert!(!log.contains(artefact), "{artefact:?} in the log:\n{log}");
    }
    assert!(
        story.iter().any(|l| l.contains("transfer ended")
            && l.contains("file=pxelinux.0")
            && l.contains("outcome=ok")),
        "{log}"
    );

    let status = server.stop();
    assert!(status.success(), "{status}; log:\n{}", server.log());
    assert!(
        !lab.srv.addrs("eth1").contains("192.168.242.1"),
        "address not removed: {}",
        lab.srv.addrs("eth1")
    );
}

/// The TFTP tuning flags reach the server `serve` runs: an RRQ asking for more than
/// `--max-blksize` and `--max-windowsize` is granted the caps, the OACK is retransmitted after
/// `--timeout` seconds, and with `--no-options` the same RRQ gets plain DATA.
#[test]
fn serve_applies_the_tftp_tuning_flags() {
    const T: &str = "serve_applies_the_tftp_tuning_flags";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("serve-tuning");
    lab.cli
        .ip(&["addr", "add", "192.168.242.50/24", "dev", "eth0"]);
    // The first reply to an RRQ asking for big blocks and windows, and how long until the
    // server sent it again (unacknowledged).
    let ask = |flags: &[&str]| {
        let mut args = vec!["--address", "192.168.242.1/24", "--grace", "0"];
        args.extend_from_slice(flags);
        let mut server = lab.serve(&args);
        let (first, again) = lab.cli.run(|| {
            let socket = client_socket("eth0", "192.168.242.50:0".parse().unwrap());
            socket
                .set_read_timeout(Some(Duration::from_secs(6)))
                .unwrap();
            let request = rrq(b"pxelinux.0", &[("blksize", "1468"), ("windowsize", "16")]);
            socket.send_to(&request, "192.168.242.1:69").unwrap();
            let mut buf = [0u8; 2048];
            let len = socket.recv(&mut buf).expect("no reply to the RRQ");
            let sent = Instant::now();
            let first = buf[..len].to_vec();
            let again = socket.recv(&mut buf).ok().map(|_| sent.elapsed());
            (first, again)
        });
        let status = server.stop();
        assert!(status.success(), "{status}; log:\n{}", server.log());
        (first, again)
    };

    let (oack, again) = ask(&[
        "--max-blksize",
        "512",
        "--max-windowsize",
        "4",
        "--timeout",
        "2",
    ]);
    assert_eq!(opcode(&oack), 6, "not an OACK: {oack:?}");
    let options = String::from_utf8_lossy(&oack[2..]).replace('\0', " ");
    assert_eq!(options.trim(), "blksize 512 windowsize 4", "{oack:?}");
    let again = again.expect("the OACK was not retransmitted");
    assert!(
        again >= Duration::from_millis(1500),
        "retransmitted after {again:?}"
    );

    let (data, _) = ask(&["--no-options"]);
    assert_eq!(opcode(&data), 3, "not DATA: {data:?}");
    assert_eq!(&data[4..], PXELINUX);
}

/// ISC dhclient gets a lease with router and DNS.
#[test]
fn dhclient_gets_a_lease() {
    const T: &str = "dhclient_gets_a_lease";
    if !netns_available(T) || !have_tool(T, "dhclient", "isc-dhcp-client") {
        return;
    }
    let lab = Lab::new("serve-dhclient");
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let server = lab.serve(&["--lease-time", "10m"]);
    let dir = &lab.tmp.path;
    let out = dir.join("dhclient.env");
    let script = env_script(dir, "dhclient.sh", "BOUND", &out);
    let conf = dir.join("dhclient.conf");
    std::fs::write(
        &conf,
        "timeout 20;\nretry 1;\nrequest subnet-mask, broadcast-address, routers, domain-name-servers;\n",
    )
    .unwrap();
    let mut cmd = lab.cli.command("dhclient");
    cmd.args(["-d", "-1", "-v", "-cf"])
        .arg(&conf)
        .arg("-lf")
        .arg(dir.join("dhclient.leases"))
        .arg("-pf")
        .arg(dir.join("dhclient.pid"))
        .arg("-sf")
        .arg(&script)
        .arg("eth0");
    let client = Proc::spawn("dhclient", cmd);
    let start = Instant::now();
    while !out.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dhclient got no lease within 30 s:\n{}\n--- server ---\n{}",
            client.log(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(client);
    let env = parse_env(&std::fs::read_to_string(&out).unwrap());
    let ip: Ipv4Addr = env["new_ip_address"].parse().unwrap();
    assert_eq!(ip.octets()[..3], [192, 168, 242], "{env:?}");
    assert_eq!(env["new_routers"], "192.168.242.1", "{env:?}");
    assert_eq!(env["new_domain_name_servers"], "192.168.242.1", "{env:?}");
    assert_eq!(env["new_subnet_mask"], "255.255.255.0", "{env:?}");
    assert_eq!(env["new_dhcp_lease_time"], "600", "{env:?}");
    let leases = std::fs::read_to_string(lab.leases()).unwrap();
    assert!(leases.contains(&format!(" {ip} ")), "{leases}");
}

/// A restarted server keeps its leases: the client keeps its address, and another client does
/// not get it, although it is the first address of the range.
#[test]
fn restart_keeps_leases() {
    const T: &str = "restart_keeps_leases";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("serve-restart");
    let (m1, m2) = ("02:00:00:00:aa:01", "02:00:00:00:aa:02");
    set_mac(&lab.cli, "eth0", m1);
    let mut server = lab.serve(&["--address", "192.168.242.1/24"]);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let first = env.unwrap_or_else(|| panic!("no lease: {out:?}"))["ip"].clone();
    assert_eq!(first, "192.168.242.2", "first address of the default range");
    assert!(server.stop().success());
    let leases = std::fs::read_to_string(lab.leases()).unwrap();
    assert!(leases.contains(&format!("{m1} {first} ")), "{leases}");

    let server = lab.serve(&["--address", "192.168.242.1/24"]);
    server.wait_log("restored=1", Duration::from_secs(5));
    set_mac(&lab.cli, "eth0", m2);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let other = env.unwrap_or_else(|| panic!("no lease: {out:?}"))["ip"].clone();
    assert_ne!(
        other, first,
        "a restored lease was handed to another client"
    );
    set_mac(&lab.cli, "eth0", m1);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let again = env.unwrap_or_else(|| panic!("no lease: {out:?}"))["ip"].clone();
    assert_eq!(again, first);
    let leases = std::fs::read_to_string(lab.leases()).unwrap();
    assert!(leases.contains(&format!("{m1} {first} ")), "{leases}");
    assert!(leases.contains(&format!("{m2} {other} ")), "{leases}");
}

/// `--lease-time infinite`: option 51 is 0xffffffff, the lease file keeps the lease with an
/// expiry more than a century ahead, and a restarted server restores it for its client.
#[test]
fn an_infinite_lease_is_all_ones_and_survives_a_restart() {
    const T: &str = "an_infinite_lease_is_all_ones_and_survives_a_restart";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("serve-infinite");
    let (m1, m2) = ("02:00:00:00:bb:01", "02:00:00:00:bb:02");
    set_mac(&lab.cli, "eth0", m1);
    let flags = ["--address", "192.168.242.1/24", "--lease-time", "infinite"];
    let mut server = lab.serve(&flags);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let env = env.unwrap_or_else(|| panic!("no lease: {out:?}"));
    assert_eq!(env["lease"], "4294967295", "{env:?}");
    let first = env["ip"].clone();
    assert!(server.stop().success());
    let leases = std::fs::read_to_string(lab.leases()).unwrap();
    let line = leases
        .lines()
        .find(|l| l.starts_with(&format!("{m1} {first} ")))
        .unwrap_or_else(|| panic!("{leases}"));
    let expires: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires > now + 100 * 365 * 86_400, "{line}");

    let server = lab.serve(&flags);
    server.wait_log("restored=1", Duration::from_secs(5));
    // Restored, so another client does not get the address.
    set_mac(&lab.cli, "eth0", m2);
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let other = env.unwrap_or_else(|| panic!("no lease: {out:?}"))["ip"].clone();
    assert_ne!(
        other, first,
        "a restored infinite lease was handed out again"
    );
}

/// Only the served interface is answered: a client on another interface of the same
/// namespace, whose subnet the server also has an address in, gets nothing.
#[test]
fn other_interfaces_are_not_answered() {
    const T: &str = "other_interfaces_are_not_answered";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("serve-iface");
    let other = Netns::new("oth");
    veth(&lab.srv, "eth2", &other, "eth0");
    lab.srv.ip(&["addr", "add", "10.99.0.1/24", "dev", "eth2"]);
    let server = lab.serve(&["--address", "192.168.242.1/24"]);
    let (env, _) = udhcpc(&other, "eth0", &lab.tmp.path);
    assert!(env.is_none(), "client on eth2 got a lease: {env:?}");
    let stranger = mac_of(&other, "eth0");
    assert!(!server.log().contains(&stranger), "{}", server.log());
    // The served side still works.
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    assert!(env.is_some(), "{out:?}");
}

/// proxyDHCP next to dnsmasq on a bridge: plain clients get their address from dnsmasq and
/// nothing from pocketpxe; a PXE client gets dnsmasq's address offer and pocketpxe's boot offer
/// (yiaddr 0, option 60 PXEClient, boot file); a UEFI client's REQUEST to port 4011 gets an ACK.
#[test]
fn proxy_next_to_dnsmasq() {
    const T: &str = "proxy_next_to_dnsmasq";
    if !netns_available(T)
        || !have_tool(T, "busybox", "busybox-static")
        || !have_tool(T, "dnsmasq", "dnsmasq-base")
    {
        return;
    }
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    let dns = Netns::new("dns");
    srv.ip(&["link", "add", "br0", "type", "bridge"]);
    srv.ip(&["link", "set", "br0", "up"]);
    veth(&srv, "p-cli", &cli, "eth0");
    veth(&srv, "p-dns", &dns, "eth0");
    srv.ip(&["link", "set", "p-cli", "master", "br0"]);
    srv.ip(&["link", "set", "p-dns", "master", "br0"]);
    dns.ip(&["addr", "add", "10.77.0.254/24", "dev", "eth0"]);
    let tmp = TempDir::new("serve-proxy");
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("pxelinux.0"), PXELINUX).unwrap();

    let dnsmasq = dnsmasq_address_server(&dns, &tmp.path);

    let server = ServeProc::start(
        &srv,
        &[
            "--interface",
            "br0",
            "--mode",
            "proxy",
            "--address",
            "10.77.0.1/24",
            "--root",
            root.to_str().unwrap(),
            "--boot",
            "bios=pxelinux.0",
            "--boot",
            "efi-x64=bootx64.efi",
        ],
    );

    // A plain client: the address comes from dnsmasq, pocketpxe stays quiet.
    let (env, out) = udhcpc(&cli, "eth0", &tmp.path);
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}"));
    assert_eq!(env["serverid"], "10.77.0.254");
    assert!(!env.contains_key("boot_file"), "{env:?}");
    let plain_mac = mac_of(&cli, "eth0");

    // A BIOS PXE client: two offers.
    let mac = [0x52, 0x54, 0x00, 0xa5, 0x00, 0x01];
    let offers = cli.run(move || {
        let sock = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
        let discover = pxe_message(
            MessageType::Discover,
            mac,
            0x1234,
            0,
            b"PXEClient:Arch:00000:UNDI:002001",
            Ipv4Addr::UNSPECIFIED,
        );
        sock.send_to(&discover, (Ipv4Addr::BROADCAST, 67)).unwrap();
        collect(&sock, Duration::from_secs(3))
    });
    let offers: Vec<Repr<'_>> = offers
        .iter()
        .filter_map(|b| parse_reply(b, 0x1234))
        .collect();
    let from_dnsmasq = offers
        .iter()
        .find(|o| o.server_identifier == Some(Ipv4Addr::new(10, 77, 0, 254)))
        .unwrap_or_else(|| panic!("no offer from dnsmasq: {offers:?}\n{}", dnsmasq.log()));
    assert_eq!(from_dnsmasq.your_ip.octets()[..3], [10, 77, 0]);
    let proxy = offers
        .iter()
        .find(|o| o.server_identifier == Some(Ipv4Addr::new(10, 77, 0, 1)))
        .unwrap_or_else(|| panic!("no proxy offer: {offers:?}\n{}", server.log()));
    assert_eq!(proxy.message_type, Some(MessageType::Offer));
    assert_eq!(proxy.your_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(proxy.server_ip, Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(proxy.boot_file, b"pxelinux.0");
    assert!(
        proxy
            .vendor_class_id
            .is_some_and(|v| v.bytes().eq(b"PXEClient".iter().copied())),
        "{proxy:?}"
    );
    assert!(proxy.vendor_specific.is_some(), "BIOS gets option 43");
    assert_eq!(proxy.lease_time, None);

    // A UEFI client, with dnsmasq's address, asks the boot server on port 4011.
    let ip = from_dnsmasq.your_ip;
    cli.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let acks = cli.run(move || {
        let sock = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4011));
        let request = pxe_message(
            MessageType::Request,
            mac,
            0x5678,
            7,
            b"PXEClient:Arch:00007:UNDI:003000",
            ip,
        );
        sock.send_to(&request, (Ipv4Addr::new(10, 77, 0, 1), 4011))
            .unwrap();
        collect(&sock, Duration::from_secs(2))
    });
    let acks: Vec<Repr<'_>> = acks.iter().filter_map(|b| parse_reply(b, 0x5678)).collect();
    assert_eq!(acks.len(), 1, "{acks:?}\n{}", server.log());
    let ack = &acks[0];
    assert_eq!(ack.message_type, Some(MessageType::Ack));
    assert_eq!(ack.boot_file, b"bootx64.efi");
    assert_eq!(ack.server_ip, Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(ack.client_ip, ip);

    // The story: the PXE client's offer and ACK are logged; the plain client only at debug.
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("mac=52:54:00:a5:00:01")
            && l.contains("class=bios")
            && l.contains("reply=OFFER")
            && l.contains("boot_file=pxelinux.0")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("mac=52:54:00:a5:00:01")
            && l.contains("port=4011")
            && l.contains("class=efi-x64")
            && l.contains("reply=ACK")),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains(&plain_mac) && l.contains(" INFO ")),
        "{log}"
    );
}

/// Configuration problems: one line naming the cause, non-zero exit, nothing left behind.
#[test]
fn errors_are_one_clear_line() {
    const T: &str = "errors_are_one_clear_line";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("serve-errors");
    let root = lab.root.to_str().unwrap();
    let leases = lab.leases();
    let leases = leases.to_str().unwrap();
    let base = |iface: &'static str| vec!["--interface", iface, "--root", root, "--leases", leases];

    // Missing interface.
    let (code, err) = lab.serve_fails(&lab.srv, &base("nope0"));
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &["nope0", "does not exist"]);

    // Interface down.
    lab.srv.ip(&["link", "set", "eth1", "down"]);
    let (code, err) = lab.serve_fails(&lab.srv, &base("eth1"));
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &["eth1", "is down"]);
    lab.srv.ip(&["link", "set", "eth1", "up"]);

    // No address and none given.
    let (code, err) = lab.serve_fails(&lab.srv, &base("eth1"));
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &["eth1", "no IPv4 address", "--address"]);

    // Range outside the subnet; the address added for it is removed again.
    let mut args = base("eth1");
    args.extend([
        "--address",
        "192.168.242.1/24",
        "--range",
        "10.0.0.2-10.0.0.9",
    ]);
    let (code, err) = lab.serve_fails(&lab.srv, &args);
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(
        &err,
        &["10.0.0.2-10.0.0.9", "outside", "eth1", "192.168.242.0/24"],
    );
    assert!(!lab.srv.addrs("eth1").contains("192.168.242.1"));

    // Proxy mode refuses dhcp-only flags.
    let (code, err) = lab.serve_fails(
        &lab.srv,
        &[
            "--interface",
            "eth1",
            "--root",
            root,
            "--mode",
            "proxy",
            "--range",
            "10.0.0.2-10.0.0.9",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &["--range", "dhcp"]);

    // Port 67 taken by another pocketpxe on the same interface: named with its PID.
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let mut first = lab.serve(&[]);
    let (code, err) = lab.serve_fails(&lab.srv, &base("eth1"));
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(
        &err,
        &[
            "port 67",
            "eth1",
            "in use",
            &format!("pocketpxe (pid {})", first.pid()),
        ],
    );
    assert!(first.stop().success());

    // ... and by dnsmasq.
    if have_tool(T, "dnsmasq", "dnsmasq-base") {
        let mut cmd = lab.srv.command("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=eth1",
            "--bind-interfaces",
            "--dhcp-range=192.168.242.100,192.168.242.150,1h",
            "--user=root",
            "--log-facility=-",
        ])
        .arg(format!(
            "--dhcp-leasefile={}",
            lab.tmp.join("dnsmasq.leases").display()
        ))
        .arg(format!(
            "--pid-file={}",
            lab.tmp.join("dnsmasq.pid").display()
        ));
        let mut dnsmasq = Proc::spawn("dnsmasq", cmd);
        dnsmasq.wait_log("DHCP, IP range", Duration::from_secs(10));
        let (code, err) = lab.serve_fails(&lab.srv, &base("eth1"));
        assert_eq!(code, Some(1), "{err}");
        assert_one_line(
            &err,
            &[
                "port 67",
                "eth1",
                "in use",
                &format!("dnsmasq (pid {})", dnsmasq.child.id()),
            ],
        );
    }

    // Unprivileged: no port 67, no `ip addr add`.
    if Command::new("setpriv").arg("--version").output().is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let bin = lab.tmp.join("pocketpxe");
        std::fs::copy(env!("CARGO_BIN_EXE_pocketpxe"), &bin).unwrap();
        for dir in [&lab.tmp.path, &lab.root] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // A lease directory of its own: the lease file is checked before the address is added.
        let nobody_dir = lab.tmp.join("nobody");
        std::fs::create_dir(&nobody_dir).unwrap();
        std::os::unix::fs::chown(&nobody_dir, Some(65534), Some(65534)).unwrap();
        let nobody_leases = nobody_dir.join("leases");
        let as_nobody_with = |leases: &std::path::Path, extra: &[&str]| {
            let out = run_bounded(
                lab.srv
                    .command("setpriv")
                    .args([
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        "--inh-caps=-all",
                    ])
                    .arg(&bin)
                    .args(["serve", "--interface", "eth1", "--root", root, "--leases"])
                    .arg(leases)
                    .args(extra)
                    .env("NO_COLOR", "1"),
                Duration::from_secs(20),
            );
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let as_nobody = |extra: &[&str]| as_nobody_with(&nobody_leases, extra);
        let (code, err) = as_nobody(&[]);
        assert_eq!(code, Some(1), "{err}");
        assert_one_line(&err, &["port 67", "eth1", "CAP_NET_BIND_SERVICE"]);
        // Started as an unprivileged user (as with capabilities instead of root), a lease
        // directory it cannot write is refused before anything changes on the interface.
        let locked = lab.tmp.join("locked-leases");
        let (code, err) = as_nobody_with(
            &locked,
            &[
                "--address",
                "10.1.0.1/24",
                "--dhcp-port",
                "6767",
                "--tftp-port",
                "6969",
                "--http-port",
                "6980",
            ],
        );
        assert_eq!(code, Some(1), "{err}");
        assert_one_line(
            &err,
            &[
                &format!(
                    "lease file {} cannot be written by user nobody",
                    locked.display()
                ),
                &format!("make {} writable by nobody", lab.tmp.path.display()),
            ],
        );
        assert!(!lab.srv.addrs("eth1").contains("10.1.0.1"));
        // On unprivileged ports, `ip addr add` is what fails.
        let (code, err) = as_nobody(&[
            "--address",
            "10.1.0.1/24",
            "--dhcp-port",
            "6767",
            "--tftp-port",
            "6969",
            "--http-port",
            "6980",
        ]);
        assert_eq!(code, Some(1), "{err}");
        assert_one_line(&err, &["10.1.0.1/24", "eth1", "CAP_NET_ADMIN"]);
    } else {
        eprintln!("SKIP: {T}: unprivileged cases need setpriv (util-linux)");
    }
}

/// Exactly one line on stderr, containing every `needle`.
fn assert_one_line(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing in {:?}",
            lines[0]
        );
    }
}

/// Many clients at once: DISCOVERs queued while the server is stopped (so that it reads them
/// many per receive call) are all offered an address, the REQUESTs queued likewise are all
/// acknowledged with distinct addresses, and every acknowledged lease is in the lease file.
#[test]
fn a_burst_of_clients_is_answered_and_saved() {
    const T: &str = "a_burst_of_clients_is_answered_and_saved";
    const CLIENTS: u32 = 200;
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("serve-burst");
    let server = lab.serve(&[
        "--address",
        "192.168.242.1/24",
        "--range",
        "192.168.242.10-192.168.242.250",
    ]);
    let pid = server.pid();
    let mac = |n: u32| [0x52, 0x54, 0x00, 0xb0, (n >> 8) as u8, n as u8];
    // Sends `messages` while the server is stopped, resumes it, and collects the replies.
    let burst = |messages: Vec<Vec<u8>>| {
        lab.cli.run(move || {
            let sock = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
            socket2::SockRef::from(&sock)
                .set_recv_buffer_size(4 << 20)
                .unwrap();
            signal(pid, "-STOP");
            for message in &messages {
                sock.send_to(message, (Ipv4Addr::BROADCAST, 67)).unwrap();
            }
            signal(pid, "-CONT");
            collect(&sock, Duration::from_secs(3))
        })
    };
    let discovers = (0..CLIENTS)
        .map(|n| dhcp_message(MessageType::Discover, mac(n), 0x0b00_0000 + n, None))
        .collect();
    let offers = burst(discovers);
    let offered: Vec<Ipv4Addr> = (0..CLIENTS)
        .map(|n| {
            let offer = offers
                .iter()
                .find_map(|b| parse_reply(b, 0x0b00_0000 + n))
                .unwrap_or_else(|| panic!("no offer for client {n}:\n{}", server.log()));
            assert_eq!(offer.message_type, Some(MessageType::Offer));
            offer.your_ip
        })
        .collect();

    let requests = (0..CLIENTS)
        .map(|n| {
            let ip = offered[n as usize];
            dhcp_message(MessageType::Request, mac(n), 0x0c00_0000 + n, Some(ip))
        })
        .collect();
    let acks = burst(requests);
    let mut acked: Vec<Ipv4Addr> = (0..CLIENTS)
        .map(|n| {
            let ack = acks
                .iter()
                .find_map(|b| parse_reply(b, 0x0c00_0000 + n))
                .unwrap_or_else(|| panic!("no ACK for client {n}:\n{}", server.log()));
            assert_eq!(ack.message_type, Some(MessageType::Ack));
            assert_eq!(ack.your_ip, offered[n as usize]);
            ack.your_ip
        })
        .collect();
    let saved = std::fs::read_to_string(lab.leases()).unwrap();
    for n in 0..CLIENTS {
        let m = mac(n);
        let line = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} {} ",
            m[0], m[1], m[2], m[3], m[4], m[5], acked[n as usize]
        );
        assert!(
            saved.contains(&line),
            "{line:?} not in the lease file:\n{saved}"
        );
    }
    acked.sort();
    acked.dedup();
    assert_eq!(acked.len(), CLIENTS as usize, "addresses given twice");
}

/// `kill SIGNAL PID`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A plain client's DISCOVER, or its REQUEST for `requested` from 192.168.242.1 (broadcast
/// flag set).
fn dhcp_message(kind: MessageType, mac: [u8; 6], xid: u32, requested: Option<Ipv4Addr>) -> Vec<u8> {
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.flags.set(Flags::BROADCAST, true);
    r.requested_ip = requested;
    r.server_identifier = requested.map(|_| SERVER);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}

/// A PXE client message like iPXE/EDK2 send (options 60, 93, 97, 55, 57; broadcast flag).
fn pxe_message(
    kind: MessageType,
    mac: [u8; 6],
    xid: u32,
    arch: u16,
    vendor: &'static [u8],
    ciaddr: Ipv4Addr,
) -> Vec<u8> {
    let arch = arch.to_be_bytes();
    let uuid = [0u8; 17];
    let mut r = Repr::new(Op::Request, xid, HwAddr::ethernet(mac));
    r.message_type = Some(kind);
    r.flags.set(Flags::BROADCAST, ciaddr.is_unspecified());
    r.client_ip = ciaddr;
    r.vendor_class_id = Some(OptionBytes::new(vendor));
    r.client_arch = Some(OptionBytes::new(&arch));
    r.client_uuid = Some(OptionBytes::new(&uuid));
    r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 43, 54, 60, 66, 67, 97]));
    r.max_message_size = Some(1472);
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    buf
}

/// A BOOTREPLY for transaction `xid`, parsed.
fn parse_reply(bytes: &[u8], xid: u32) -> Option<Repr<'_>> {
    let packet = Packet::new_checked(bytes).ok()?;
    let repr = Repr::parse(&packet).ok()?;
    (repr.op == Op::Reply && repr.transaction_id == xid).then_some(repr)
}

/// Durable before announced: while the lease file cannot be written, no DHCPACK goes out (the
/// client gets offers only); once it can, the next attempt is acknowledged and stored.
#[test]
fn no_ack_without_a_saved_lease() {
    const T: &str = "no_ack_without_a_saved_lease";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("serve-durable");
    let dir = lab.tmp.join("state");
    std::fs::create_dir(&dir).unwrap();
    let leases = dir.join("leases");
    let server = ServeProc::start(
        &lab.srv,
        &[
            "--interface",
            "eth1",
            "--root",
            lab.root.to_str().unwrap(),
            "--address",
            "192.168.242.1/24",
            "--leases",
            leases.to_str().unwrap(),
        ],
    );
    // Replace the directory by a file: saving must fail.
    let moved = lab.tmp.join("state.away");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let (env, _) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    assert!(env.is_none(), "ACK without a saved lease: {env:?}");
    let log = server.log();
    assert!(log.contains("reply=OFFER"), "{log}");
    assert!(!log.contains("reply=ACK"), "{log}");
    assert!(log.contains("reply withheld"), "{log}");
    assert!(
        log.contains(leases.to_str().unwrap()),
        "error names the file:\n{log}"
    );

    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&moved, &dir).unwrap();
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let ip =
        env.unwrap_or_else(|| panic!("no lease once the file is writable: {out:?}"))["ip"].clone();
    let saved = std::fs::read_to_string(&leases).unwrap();
    assert!(saved.contains(&format!(" {ip} ")), "{saved}");
}
