//! Scenario: the fast path through iPXE, kernel and initrd over HTTP, to the Debian installer's
//! first screen.
//!
//! * BIOS: the NIC ROM is iPXE (SeaBIOS + QEMU's e1000 ROM); it identifies as iPXE and gets the
//!   URL of the iPXE script at once.
//! * UEFI: EDK2's own PXE (OVMF, virtio-net) gets `snponly.efi` over TFTP; iPXE then asks again
//!   as iPXE and gets the script's URL.
//! * UEFI HTTP boot: OVMF with PXE switched off boots natively over HTTP (vendor class
//!   `HTTPClient`, arch 16): it gets the URL of `snponly.efi` and option 60 `HTTPClient`, loads
//!   iPXE over HTTP, and iPXE goes on as above. Nothing crosses TFTP. Also behind a proxy:
//!   a separate dnsmasq gives the address, pocketpxe's proxy offer the URL (UEFI 2.x §24.7).
//!
//! The script loads kernel and initrd by relative URIs, resolved against its own URL, so over
//! HTTP. The server's router advertisement ("no router", on by default in dhcp mode) spares
//! iPXE its wait for IPv6 routers. HTTP is `serve`'s own server (port 80 of the interface,
//! the same root): the boot rules are plain paths, which HTTP boot and iPXE clients get as
//! `http://SERVER/PATH`.

// The helper below is test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pocketpxe_tests::netns::{BRIDGE, Lab};
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::{self, Serve};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{CONSOLE, INITRD, KERNEL, PXELINUX, SNPONLY, TftpRoot, marker};
use pocketpxe_tests::{begin, gate, secs};

/// The iPXE script, relative to the root.
const SCRIPT: &str = "debian-installer/amd64/boot.ipxe";
const FIRST_SCREEN: Duration = Duration::from_secs(360);

#[test]
fn bios_ipxe_http_debian_installer_first_screen() {
    let Some(_lock) = begin(
        "bios_ipxe_http_debian_installer_first_screen",
        &needs(gate::BIOS),
    ) else {
        return;
    };
    boot_via_ipxe_over_http(Firmware::Bios, false);
}

#[test]
fn uefi_ipxe_http_debian_installer_first_screen() {
    let Some(_lock) = begin(
        "uefi_ipxe_http_debian_installer_first_screen",
        &needs(gate::UEFI),
    ) else {
        return;
    };
    boot_via_ipxe_over_http(Firmware::Uefi, false);
}

#[test]
fn uefi_http_boot_ipxe_http_debian_installer_first_screen() {
    let Some(_lock) = begin(
        "uefi_http_boot_ipxe_http_debian_installer_first_screen",
        &needs(gate::UEFI),
    ) else {
        return;
    };
    boot_via_ipxe_over_http(Firmware::UefiHttp, false);
}

#[test]
fn proxy_uefi_http_boot_ipxe_http_debian_installer_first_screen() {
    let mut needs = needs(gate::UEFI);
    needs.push(gate::Need::Program("dnsmasq"));
    let Some(_lock) = begin(
        "proxy_uefi_http_boot_ipxe_http_debian_installer_first_screen",
        &needs,
    ) else {
        return;
    };
    boot_via_ipxe_over_http(Firmware::UefiHttp, true);
}

fn needs(firmware: &'static [gate::Need]) -> Vec<gate::Need> {
    let mut needs = gate::vm_needs(&[firmware]);
    needs.extend([
        gate::Need::File(gate::SNPONLY_EFI),
        gate::Need::Program("unshare"),
    ]);
    needs
}

fn boot_via_ipxe_over_http(firmware: Firmware, proxy: bool) {
    let dir = TempDir::new("ipxe-http").unwrap();
    let root = TftpRoot::debian_installer().unwrap();
    // snponly.efi (and a TFTP script this scenario does not use).
    root.add_ipxe().unwrap();
    root.write(
        SCRIPT,
        format!(
            "#!ipxe\necho {}\nkernel /{KERNEL} initrd=initrd.gz {CONSOLE} ---\n\
             initrd --name initrd.gz /{INITRD}\nboot\n",
            marker::IPXE_SCRIPT
        )
        .as_bytes(),
    )
    .unwrap();
    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();

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
    let server_log = dir.join("pocketpxe.log");
    let mut serve = Serve::new(root.path(), dir.path());
    if proxy {
        serve = serve.proxy();
    }
    let _server = serve
        .boot("bios", PXELINUX)
        .boot("efi-x64", SNPONLY)
        .boot("efi-x64-http", SNPONLY)
        .boot("ipxe", SCRIPT)
        .start(&lab.server, &server_log)
        .unwrap();

    let start = Instant::now();
    let n = match firmware {
        Firmware::Bios => 6,
        Firmware::Uefi => 7,
        Firmware::UefiHttp if proxy => 9,
        Firmware::UefiHttp => 8,
        Firmware::UefiArm64 => panic!("Debian's iPXE is x86 only"),
    };
    let (mut vm, console) = Vm::new(firmware, &tap, n, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    let kernel = console
        .wait_for(&mut vm, marker::KERNEL, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    console
        .wait_for(&mut vm, marker::INSTALLER_FIRST_SCREEN, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    let first_screen = start.elapsed();

    let serial = console.text();
    if firmware != Firmware::Bios {
        assert!(
            serial.contains(marker::IPXE_SCRIPT),
            "the UEFI client should have run the iPXE script"
        );
    }
    // Script, kernel and initrd came over HTTP, complete; TFTP served none of them.
    let server_text = std::fs::read_to_string(&server_log).unwrap();
    let served_over_http = |path: &str| {
        server_text.lines().any(|l| {
            l.contains("HTTP transfer ended")
                && l.contains(&format!("file={path} "))
                && l.contains("status=200")
                && l.contains("outcome=done")
        })
    };
    for path in [SCRIPT, KERNEL, INITRD] {
        assert!(
            served_over_http(path),
            "no complete HTTP download of /{path}:\n{server_text}"
        );
    }
    if firmware == Firmware::UefiHttp {
        assert!(serial.contains("HTTP Boot"), "no HTTP boot on the console");
        assert!(
            served_over_http(SNPONLY),
            "iPXE did not come over HTTP:\n{server_text}"
        );
        assert!(
            !server_text
                .lines()
                .any(|l| l.contains("transfer ended") && !l.contains("HTTP transfer ended")),
            "something crossed TFTP:\n{server_text}"
        );
    }
    assert!(
        !server_text
            .lines()
            .any(|l| l.contains("pocketpxe::serve::tftp") && l.contains(&format!("file={KERNEL}"))),
        "the kernel went over TFTP:\n{server_text}"
    );
    // Proxy mode leaves router advertisements to the network's router.
    assert_eq!(
        server_text.contains("router advertisements on"),
        !proxy,
        "{server_text}"
    );
    pocketpxe_tests::report(&format!(
        "{firmware:?}{} via iPXE + HTTP: kernel after {}, installer's first screen after {}",
        if proxy { " behind a proxy" } else { "" },
        secs(kernel),
        secs(first_screen)
    ));
}
