//! Scenario 2: a UEFI client (OVMF, EDK2's own PXE on virtio-net) boots shim
//! (`bootnetx64.efi`), shim fetches GRUB, GRUB fetches its config, the installer kernel and
//! initrd, and the installer shows its first dialog on the serial console.

use std::time::{Duration, Instant};

use pocketpxe_tests::netns::Lab;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{TftpRoot, marker};
use pocketpxe_tests::{begin, gate, secs, server};

/// Measured: see docs/testing.md, "End-to-end tests"; generous for a busy 2-core machine.
const FIRST_SCREEN: Duration = Duration::from_secs(360);

#[test]
fn uefi_shim_grub_debian_installer_first_screen() {
    let Some(_lock) = begin(
        "uefi_shim_grub_debian_installer_first_screen",
        &gate::vm_needs(&[gate::UEFI]),
    ) else {
        return;
    };
    let dir = TempDir::new("uefi").unwrap();
    let root = TftpRoot::debian_installer().unwrap();
    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let _server = server::start_boot_server(&lab.server, root.path(), dir.path()).unwrap();

    let start = Instant::now();
    let (mut vm, console) = Vm::new(Firmware::Uefi, &tap, 2, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    let kernel = console
        .wait_for(&mut vm, marker::KERNEL, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    console
        .wait_for(&mut vm, marker::INSTALLER_FIRST_SCREEN, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    pocketpxe_tests::report(&format!(
        "UEFI: kernel after {}, installer's first screen after {}",
        secs(kernel),
        secs(start.elapsed())
    ));
}
