//! Scenario 4: proxyDHCP. A separate dnsmasq on the LAN (192.168.242.254) hands out addresses
//! and no boot options; `pocketpxe serve --mode proxy` adds only the boot information.
//!
//! * BIOS: the iPXE ROM identifies as iPXE (option 77), so it gets the iPXE script, which
//!   loads the installer kernel and initrd from the boot server.
//! * UEFI: EDK2's PXE gets `snponly.efi` (iPXE over the firmware's network driver) instead of
//!   shim, because GRUB behind a proxy takes its TFTP server from the address-giving server's
//!   ACK and fails (docs/protocol.md §2). iPXE honours the proxy, asks again as iPXE, gets the
//!   script, and the script loads kernel and initrd by relative URIs from where it came from.
//!
//! "Booted to the kernel" means the kernel found its initramfs and runs `/init`: both files
//! arrived intact.

// The helper below is test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pocketpxe_tests::netns::{BRIDGE, Lab};
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::{self, Serve};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{IPXE_SCRIPT, PXELINUX, SNPONLY, TftpRoot, marker};
use pocketpxe_tests::{begin, gate, secs};

/// The address-giving server's pool, apart from anything pocketpxe would use.
const DHCP_START: &str = "192.168.242.200";
const DHCP_END: &str = "192.168.242.220";
const KERNEL_RUNS_INIT: Duration = Duration::from_secs(300);

#[test]
fn proxy_bios_client_boots_kernel() {
    let Some(_lock) = begin("proxy_bios_client_boots_kernel", &needs(gate::BIOS)) else {
        return;
    };
    boot_behind_proxy(Firmware::Bios);
}

#[test]
fn proxy_uefi_client_boots_kernel_via_ipxe() {
    let Some(_lock) = begin(
        "proxy_uefi_client_boots_kernel_via_ipxe",
        &needs(gate::UEFI),
    ) else {
        return;
    };
    boot_behind_proxy(Firmware::Uefi);
}

fn needs(firmware: &'static [gate::Need]) -> Vec<gate::Need> {
    let mut needs = gate::vm_needs(&[firmware]);
    needs.extend([
        gate::Need::File(gate::SNPONLY_EFI),
        gate::Need::Program("dnsmasq"),
        gate::Need::Program("unshare"),
    ]);
    needs
}

fn boot_behind_proxy(firmware: Firmware) {
    let dir = TempDir::new("proxy").unwrap();
    let root = TftpRoot::debian_installer().unwrap();
    root.add_ipxe().unwrap();
    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();

    // The LAN's own DHCP server: addresses only.
    lab.add_lan_address("192.168.242.254/24").unwrap();
    let _dhcp = server::start_dnsmasq(
        &lab.lan,
        &server::dnsmasq_address_only(BRIDGE, DHCP_START, DHCP_END),
        &dir.join("dnsmasq-dhcp.log"),
    )
    .unwrap();

    // No dnsmasq reference here: the scenario is about pocketpxe's proxy behaviour.
    let _proxy = Serve::new(root.path(), dir.path())
        .proxy()
        .boot("bios", PXELINUX)
        .boot("efi-x64", SNPONLY)
        .boot("ipxe", IPXE_SCRIPT)
        .start(&lab.server, &dir.join("pocketpxe.log"))
        .unwrap();

    let start = Instant::now();
    let n = if firmware == Firmware::Bios { 4 } else { 5 };
    let (mut vm, console) = Vm::new(firmware, &tap, n, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    let took = console
        .wait_for(&mut vm, marker::INIT, KERNEL_RUNS_INIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = console.text();
    // The address must come from the LAN's server, the boot files from the proxy.
    let lease = text
        .lines()
        .find(|l| l.contains("192.168.242.2"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    pocketpxe_tests::report(&format!(
        "proxy {firmware:?}: kernel runs /init after {} (wall {}); {lease}",
        secs(took),
        secs(start.elapsed())
    ));
    if firmware == Firmware::Uefi {
        assert!(
            text.contains(marker::IPXE_SCRIPT),
            "the UEFI client should have run the iPXE script"
        );
    }
}
