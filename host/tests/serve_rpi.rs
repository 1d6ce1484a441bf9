//! Raspberry Pi clients against `pocketpxe serve --boot rpi=DIR`, in network namespaces the
//! tests create: the Pi DHCPDISCOVERs of `testdata/rpi/` (built from the Raspberry Pi
//! documentation, no real Pi) sent raw from a client namespace, then the TFTP requests a Pi 4's
//! bootloader makes, in its order, fetched with curl (docs/raspberry-pi.md).
//!
//! They need root, `ip netns` and curl: without them they are skipped with a `SKIP:` line,
//! except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::run_bounded;
use pocketpxe_core::wire::dhcp::{MessageType, Op, Packet, Repr};
use pocketpxe_core::wire::dhcp_option::OptionBytes;
use serve_support::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

/// The option 43 a Pi's bootloader needs (docs/raspberry-pi.md §1).
const OPTION_43: &[u8] = b"\x06\x01\x03\x0a\x04\x00PXE\x09\x17\x00\x00\x14Raspberry Pi Boot   \xff";

/// The bytes of `testdata/rpi/NAME`: hex pairs, `#` to the end of a line is a comment.
fn vector(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/rpi")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (missing from the checkout?)", path.display()));
    let hex: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(str::split_whitespace)
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Sends `packet` from `cli`'s eth0, port 68, to the broadcast address; every BOOTREPLY of its
/// transaction within 3 s, parsed.
fn exchange(lab: &Lab, packet: Vec<u8>) -> Vec<Vec<u8>> {
    let xid = u32::from_be_bytes(packet[4..8].try_into().unwrap());
    let got = lab.cli.run(move || {
        let sock = client_socket("eth0", SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68));
        sock.send_to(&packet, (Ipv4Addr::BROADCAST, 67)).unwrap();
        collect(&sock, Duration::from_secs(3))
    });
    got.into_iter()
        .filter(|b| {
            let r = Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap();
            r.op == Op::Reply && r.transaction_id == xid
        })
        .collect()
}

/// `path` from the server over TFTP with curl in `cli`, as the Pi asks (`blksize` 1024); `None`
/// if the transfer fails (file not found).
fn fetch(lab: &Lab, path: &str) -> Option<Vec<u8>> {
    let out = lab.tmp.join("fetched");
    let _ = std::fs::remove_file(&out);
    let done = run_bounded(
        lab.cli
            .command("curl")
            .args(["-s", "--path-as-is", "--max-time", "10"])
            .args(["--tftp-blksize", "1024", "-o"])
            .arg(&out)
            .arg(format!("tftp://192.168.242.1/{path}")),
        Duration::from_secs(15),
    );
    done.status.success().then(|| std::fs::read(&out).unwrap())
}

fn parse(bytes: &[u8]) -> Repr<'_> {
    Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}

/// What every answer to a Pi carries.
fn assert_pi_boot(reply: &Repr<'_>, server: Ipv4Addr, what: &str) {
    assert_eq!(reply.server_ip, server, "{what}: siaddr");
    assert_eq!(reply.boot_file, b"bootcode.bin", "{what}: file");
    assert_eq!(
        reply.vendor_class_id,
        Some(OptionBytes::new(b"PXEClient")),
        "{what}: option 60"
    );
    assert_eq!(
        reply.vendor_specific,
        Some(OptionBytes::new(OPTION_43)),
        "{what}: option 43"
    );
}

/// A Pi boot directory: the shared files, and a complete per-serial set for the Pi 4 of
/// `pi4-discover.hex` (serial 9ffefdef). Every file's content names its path.
fn populate(root: &Path) {
    for file in [
        "bootcode.bin",
        "start4.elf",
        "fixup4.dat",
        "config.txt",
        "cmdline.txt",
        "kernel8.img",
        "bcm2711-rpi-4-b.dtb",
        "overlays/overlay_map.dtb",
        "9ffefdef/start4.elf",
        "9ffefdef/fixup4.dat",
        "9ffefdef/config.txt",
        "9ffefdef/cmdline.txt",
        "9ffefdef/kernel8.img",
        "9ffefdef/bcm2711-rpi-4-b.dtb",
        "9ffefdef/overlays/overlay_map.dtb",
    ] {
        let path = root.join("rpi").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Big enough for several blocks of 1024 bytes, the bootloader's blksize.
        let body = format!("rpi/{file}\n").repeat(300);
        std::fs::write(path, body).unwrap();
    }
}

/// dhcp mode: the Pi 3B's DISCOVER is answered with option 43 and its lease is in the lease
/// file at OFFER time (its ROM never sends DHCPREQUEST); the Pi 4's and 5's offers bind nothing
/// until their REQUEST is acknowledged.
#[test]
fn pis_in_dhcp_mode() {
    const T: &str = "pis_in_dhcp_mode";
    if !netns_available(T) || !have_tool(T, "curl", "curl") {
        return;
    }
    let lab = Lab::new("serve-rpi-dhcp");
    populate(&lab.root);
    let mut server = lab.serve(&[
        "--address",
        "192.168.242.1/24",
        "--boot",
        "bios=pxelinux.0",
        "--boot",
        "rpi=rpi",
    ]);

    let replies = exchange(&lab, vector("pi3b-discover.hex"));
    assert_eq!(replies.len(), 1, "{replies:?}\n{}", server.log());
    let offer = parse(&replies[0]);
    assert_eq!(offer.message_type, Some(MessageType::Offer));
    assert_pi_boot(&offer, SERVER, "pi 3b");
    let leases = std::fs::read_to_string(lab.leases()).unwrap_or_default();
    assert!(
        leases.contains(&format!("b8:27:eb:28:f6:6d {} ", offer.your_ip)),
        "the Pi 3B's lease is stored with its offer; lease file:\n{leases}"
    );
    // It fetches bootcode.bin from its offered address, and the log knows whose address it is.
    lab.cli.ip(&[
        "addr",
        "add",
        &format!("{}/24", offer.your_ip),
        "dev",
        "eth0",
    ]);
    let want = "rpi/bootcode.bin\n".repeat(300).into_bytes();
    assert_eq!(fetch(&lab, "bootcode.bin"), Some(want));
    assert_eq!(fetch(&lab, "bootsig.bin"), None);
    server.wait_log("transfer ended", Duration::from_secs(5));
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("transfer ended")
            && l.contains("file=bootcode.bin")
            && l.contains("mac=b8:27:eb:28:f6:6d")),
        "{log}"
    );
    lab.cli.ip(&[
        "addr",
        "del",
        &format!("{}/24", offer.your_ip),
        "dev",
        "eth0",
    ]);

    for (name, mac) in [
        ("pi4-discover.hex", "dc:a6:32:01:36:c2"),
        ("pi5-discover.hex", "d8:3a:dd:e8:27:1e"),
    ] {
        let discover = vector(name);
        let replies = exchange(&lab, discover.clone());
        assert_eq!(replies.len(), 1, "{name}: {replies:?}\n{}", server.log());
        let offer = parse(&replies[0]);
        assert_eq!(offer.message_type, Some(MessageType::Offer), "{name}");
        assert_pi_boot(&offer, SERVER, name);
        let leases = std::fs::read_to_string(lab.leases()).unwrap_or_default();
        assert!(
            !leases.contains(mac),
            "{name}: bound by an offer:\n{leases}"
        );

        let mut request = parse(&discover);
        request.message_type = Some(MessageType::Request);
        request.requested_ip = Some(offer.your_ip);
        request.server_identifier = Some(SERVER);
        let mut bytes = vec![0u8; request.buffer_len()];
        request
            .emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        let replies = exchange(&lab, bytes);
        assert_eq!(replies.len(), 1, "{name}: {replies:?}\n{}", server.log());
        let ack = parse(&replies[0]);
        assert_eq!(ack.message_type, Some(MessageType::Ack), "{name}");
        assert_eq!(ack.your_ip, offer.your_ip, "{name}");
        assert_pi_boot(&ack, SERVER, name);
        let leases = std::fs::read_to_string(lab.leases()).unwrap();
        assert!(
            leases.contains(&format!("{mac} {} ", ack.your_ip)),
            "{name}: lease file:\n{leases}"
        );
    }

    let log = server.log();
    for mac in [
        "b8:27:eb:28:f6:6d",
        "dc:a6:32:01:36:c2",
        "d8:3a:dd:e8:27:1e",
    ] {
        assert!(
            log.lines().any(|l| l.contains(&format!("mac={mac}"))
                && l.contains("class=rpi")
                && l.contains("reply=OFFER")),
            "{mac}:\n{log}"
        );
    }
    assert!(server.stop().success());
}

/// proxy mode: every Pi gets option 43 and no address; the Pi 4 then fetches its files over
/// TFTP in the bootloader's order (docs/raspberry-pi.md §2), first with its per-serial
/// directory (TFTP_PREFIX=0), then as a Pi whose per-MAC directory (TFTP_PREFIX=2) does not
/// exist, so the bootloader falls back to the top.
#[test]
fn pis_in_proxy_mode_and_a_pi4_tftp_sequence() {
    const T: &str = "pis_in_proxy_mode_and_a_pi4_tftp_sequence";
    if !netns_available(T) || !have_tool(T, "curl", "curl") {
        return;
    }
    let lab = Lab::new("serve-rpi-proxy");
    populate(&lab.root);
    let mut server = lab.serve(&[
        "--mode",
        "proxy",
        "--address",
        "192.168.242.1/24",
        "--boot",
        "rpi=rpi/",
    ]);
    for name in ["pi3b-discover.hex", "pi4-discover.hex", "pi5-discover.hex"] {
        let replies = exchange(&lab, vector(name));
        assert_eq!(replies.len(), 1, "{name}: {replies:?}\n{}", server.log());
        let offer = parse(&replies[0]);
        assert_eq!(offer.message_type, Some(MessageType::Offer), "{name}");
        assert_eq!(offer.your_ip, Ipv4Addr::UNSPECIFIED, "{name}");
        assert_pi_boot(&offer, SERVER, name);
    }

    // The Pi has its address from another server; TFTP from it.
    lab.cli
        .ip(&["addr", "add", "192.168.242.60/24", "dev", "eth0"]);
    let fetch = |path: &str| fetch(&lab, path);
    let expect = |path: &str, from: Option<&str>| {
        let got = fetch(path);
        let want = from.map(|f| format!("rpi/{f}\n").repeat(300).into_bytes());
        assert!(
            got == want,
            "{path}: got {:?}, expected {from:?}\n{}",
            got.map(|g| String::from_utf8_lossy(&g[..g.len().min(40)]).into_owned()),
            server.log()
        );
    };
    // TFTP_PREFIX=0: the serial's directory exists, so the prefix stays (the sequence of
    // raspberrypi/rpi-eeprom issue 74 and 87's logs).
    for (path, from) in [
        ("9ffefdef/start4.elf", Some("9ffefdef/start4.elf")),
        ("9ffefdef/config.txt", Some("9ffefdef/config.txt")),
        ("9ffefdef/recover4.elf", None),
        ("9ffefdef/recovery.elf", None),
        ("9ffefdef/start4.elf", Some("9ffefdef/start4.elf")),
        ("9ffefdef/fixup4.dat", Some("9ffefdef/fixup4.dat")),
        ("9ffefdef/config.txt", Some("9ffefdef/config.txt")),
        ("9ffefdef/cmdline.txt", Some("9ffefdef/cmdline.txt")),
        (
            "9ffefdef/bcm2711-rpi-4-b.dtb",
            Some("9ffefdef/bcm2711-rpi-4-b.dtb"),
        ),
        (
            "9ffefdef/overlays/overlay_map.dtb",
            Some("9ffefdef/overlays/overlay_map.dtb"),
        ),
        ("9ffefdef/kernel8.img", Some("9ffefdef/kernel8.img")),
    ] {
        expect(path, from);
    }
    // TFTP_PREFIX=2 without a directory for this MAC: neither start4.elf nor start.elf there,
    // so the bootloader drops the prefix and reads the shared files.
    for (path, from) in [
        ("dc-a6-32-01-36-c2/start4.elf", None),
        ("dc-a6-32-01-36-c2/start.elf", None),
        ("config.txt", Some("config.txt")),
        ("recover4.elf", None),
        ("recovery.elf", None),
        ("start4.elf", Some("start4.elf")),
        ("fixup4.dat", Some("fixup4.dat")),
        ("config.txt", Some("config.txt")),
        ("cmdline.txt", Some("cmdline.txt")),
        ("bcm2711-rpi-4-b.dtb", Some("bcm2711-rpi-4-b.dtb")),
        ("overlays/overlay_map.dtb", Some("overlays/overlay_map.dtb")),
        ("kernel8.img", Some("kernel8.img")),
    ] {
        expect(path, from);
    }
    // The rest of the root is served as before, and the Pi directory stays inside the root.
    assert_eq!(fetch("pxelinux.0").as_deref(), Some(PXELINUX));
    assert_eq!(fetch("../pxelinux.0"), None);
    assert!(server.stop().success());
}
