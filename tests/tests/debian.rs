//! The README's first command: `pocketpxe serve --debian bookworm --console ttyS0,115200 --nat`
//! on an empty root. The server fetches the netboot tarball from a mirror (here a busybox
//! httpd in the upstream namespace, serving a `netboot.tar.gz` the test packs from the installed
//! netboot tree, with its SHA256SUMS and an InRelease that a key the test makes with GnuPG signs,
//! handed to the server with `--keyring`), verifies and unpacks it, writes its own boot menus with a
//! serial console, and a BIOS client boots to the installer's first screen through the default
//! `--via auto` chain: QEMU's BIOS ROM is iPXE, which runs the generated `boot.ipxe`.
//!
//! The same with `--via ipxe` and a UEFI client: `serve --debian` copies `snponly.efi` from
//! Debian's `ipxe` package into the root, EDK2's PXE loads it, and iPXE runs the generated
//! `boot.ipxe` menu, whose default entry boots the installer. And behind a proxy (a separate
//! dnsmasq gives the addresses): plain `serve --debian --mode proxy` chains UEFI through iPXE by
//! itself, since Debian's GRUB would ask the other server for its files.

// The helper below is test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pocketpxe_tests::mirror::DebianMirror;
use pocketpxe_tests::netns::{BRIDGE, Lab, UPLINK_IF, UPSTREAM_IP};
use pocketpxe_tests::process::Proc;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::{self, Serve};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::marker;
use pocketpxe_tests::{begin, gate, secs};

const FIRST_SCREEN: Duration = Duration::from_secs(300);

#[test]
fn serve_debian_fetches_and_boots_bios_installer() {
    serve_debian_boots(
        "serve_debian_fetches_and_boots_bios_installer",
        Firmware::Bios,
        &["--nat", "--uplink", UPLINK_IF],
        false,
    );
}

#[test]
fn serve_debian_via_ipxe_boots_uefi_installer() {
    serve_debian_boots(
        "serve_debian_via_ipxe_boots_uefi_installer",
        Firmware::Uefi,
        &["--via", "ipxe"],
        false,
    );
}

#[test]
fn serve_debian_in_proxy_mode_boots_uefi_installer() {
    serve_debian_boots(
        "serve_debian_in_proxy_mode_boots_uefi_installer",
        Firmware::Uefi,
        &[],
        true,
    );
}

fn serve_debian_boots(test: &str, firmware: Firmware, flags: &[&str], proxy: bool) {
    let mut needs = gate::vm_needs(&[if firmware == Firmware::Bios {
        gate::BIOS
    } else {
        gate::UEFI
    }]);
    if firmware != Firmware::Bios {
        needs.push(gate::Need::File(gate::SNPONLY_EFI));
    }
    if proxy {
        needs.push(gate::Need::Program("dnsmasq"));
    }
    needs.extend([
        gate::Need::File(gate::BUSYBOX),
        gate::Need::Program("tar"),
        gate::Need::Program("sha256sum"),
        gate::Need::Program("unshare"),
        gate::Need::Program("gpg"),
        gate::Need::Program("gpgconf"),
    ]);
    let Some(_lock) = begin(test, &needs) else {
        return;
    };
    let dir = TempDir::new("debian").unwrap();
    let mirror = DebianMirror::build(dir.path(), "bookworm", &[("amd64", gate::DEBIAN_NETBOOT)])
        .unwrap_or_else(|e| panic!("{e}"));
    let keyring = mirror.keyring.clone();
    let mirror = mirror.root;

    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let upstream = lab.add_upstream().unwrap();
    let mut httpd = upstream.command(gate::BUSYBOX);
    httpd.args(["httpd", "-f", "-p", &format!("{UPSTREAM_IP}:80"), "-h"]);
    httpd.arg(&mirror);
    let _httpd = Proc::spawn("busybox httpd", httpd, &dir.join("httpd.log")).unwrap();

    // Behind a proxy: the LAN's own DHCP server gives addresses only.
    let _dhcp = proxy.then(|| {
        lab.add_lan_address("192.168.242.254/24").unwrap();
        server::start_dnsmasq(
            &lab.lan,
            &server::dnsmasq_address_only(BRIDGE, "192.168.242.200", "192.168.242.220"),
            &dir.join("dnsmasq-dhcp.log"),
        )
        .unwrap()
    });
    let root = dir.join("tftproot");
    let mirror_url = format!("http://{UPSTREAM_IP}");
    let fetch_start = Instant::now();
    let mut serve = Serve::new(&root, dir.path())
        .flags(&[
            "--debian",
            "bookworm",
            "--mirror",
            &mirror_url,
            "--keyring",
            keyring.to_str().unwrap(),
            "--console",
            "ttyS0,115200",
        ])
        .flags(flags);
    if proxy {
        serve = serve.proxy();
    }
    // Fetching, verifying and unpacking ~50 MB happens before the server is ready.
    serve.ready_timeout = Duration::from_secs(240);
    let _server = serve
        .start(&lab.server, &dir.join("pocketpxe.log"))
        .unwrap();
    let fetched = fetch_start.elapsed();

    let start = Instant::now();
    let n = match (firmware, proxy) {
        (Firmware::Bios, _) => 6,
        (_, false) => 0x0a,
        (_, true) => 0x0b,
    };
    let (mut vm, console) = Vm::new(firmware, &tap, n, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    console
        .wait_for(&mut vm, marker::INSTALLER_FIRST_SCREEN, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    if firmware == Firmware::Bios {
        // `--via auto`: the ROM's iPXE ran the generated script, not pxelinux.
        let log = std::fs::read_to_string(dir.join("pocketpxe.log")).unwrap();
        assert!(
            log.contains("boot.ipxe") && !log.contains("file=pxelinux.0"),
            "{log}"
        );
    } else {
        // The chain went through the copied iPXE and the generated menu.
        let log = std::fs::read_to_string(dir.join("pocketpxe.log")).unwrap();
        assert!(
            log.contains("file=ipxe/snponly.efi") && log.contains("boot.ipxe"),
            "{log}"
        );
        assert!(
            console
                .text()
                .contains("pocketpxe: Debian bookworm installer"),
            "the generated iPXE menu did not show"
        );
    }
    pocketpxe_tests::report(&format!(
        "serve --debian {flags:?}{} ({firmware:?}): fetched and ready after {}, installer's first \
         screen after {}",
        if proxy { " --mode proxy" } else { "" },
        secs(fetched),
        secs(took)
    ));
}
