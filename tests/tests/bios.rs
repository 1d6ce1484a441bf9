//! Scenario 1: a BIOS client (SeaBIOS + iPXE ROM on an e1000) boots pxelinux from the server,
//! then the Debian installer's kernel and initrd, and the installer shows its first dialog on
//! the serial console.

use std::time::{Duration, Instant};

use pocketpxe_tests::netns::Lab;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{TftpRoot, marker};
use pocketpxe_tests::{begin, gate, secs, server};

/// Measured: ~75 s on 2 busy cores (DHCP ~20 s incl. iPXE's IPv6 wait, 49 MB of TFTP, the
/// kernel and the installer's start under TCG).
const FIRST_SCREEN: Duration = Duration::from_secs(300);

#[test]
fn bios_pxelinux_debian_installer_first_screen() {
    let Some(_lock) = begin(
        "bios_pxelinux_debian_installer_first_screen",
        &gate::vm_needs(&[gate::BIOS]),
    ) else {
        return;
    };
    let dir = TempDir::new("bios").unwrap();
    let root = TftpRoot::debian_installer().unwrap();
    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let _server = server::start_boot_server(&lab.server, root.path(), dir.path()).unwrap();

    let start = Instant::now();
    let (mut vm, console) = Vm::new(Firmware::Bios, &tap, 1, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    let kernel = console
        .wait_for(&mut vm, marker::KERNEL, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    console
        .wait_for(&mut vm, marker::INSTALLER_FIRST_SCREEN, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    pocketpxe_tests::report(&format!(
        "BIOS: kernel after {}, installer's first screen after {}",
        secs(kernel),
        secs(start.elapsed())
    ));
}
