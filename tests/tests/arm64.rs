//! An arm64 UEFI machine boots Debian's arm64 installer from `serve --debian bookworm --arch
//! amd64,arm64`: the server fetches both installers into one root from a mirror (a busybox httpd
//! in the upstream namespace serving tarballs the test packs from the installed
//! debian-installer-12-netboot-amd64 and -arm64 trees, with an InRelease signed by the test's
//! own key), and a QEMU `virt` machine (Cortex-A57, TCG) with AAVMF, EDK2's PXE on virtio-net,
//! asks as architecture 11. It gets the arm64 shim `bootnetaa64.efi`, which loads `grubaa64.efi`;
//! that GRUB reads the generated arm64 `grub.cfg` (serial console `ttyAMA0`), loads the arm64
//! kernel and initrd over TFTP, and the installer draws its first dialog on the serial console.

use std::time::{Duration, Instant};

use pocketpxe_tests::mirror::DebianMirror;
use pocketpxe_tests::netns::{Lab, UPSTREAM_IP};
use pocketpxe_tests::process::Proc;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::Serve;
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::marker;
use pocketpxe_tests::{begin, gate, secs};

/// From power-on to the installer's first dialog under TCG on a busy 2-core machine (measured:
/// docs/testing.md, "End-to-end tests").
const FIRST_SCREEN: Duration = Duration::from_secs(480);

#[test]
fn serve_debian_arm64_uefi_installer_first_screen() {
    let test = "serve_debian_arm64_uefi_installer_first_screen";
    let mut needs = gate::vm_needs(&[gate::ARM64_UEFI]);
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
    let dir = TempDir::new("arm64").unwrap();
    let mirror = DebianMirror::build(
        dir.path(),
        "bookworm",
        &[
            ("amd64", gate::DEBIAN_NETBOOT),
            ("arm64", gate::DEBIAN_NETBOOT_ARM64),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let upstream = lab.add_upstream().unwrap();
    let mut httpd = upstream.command(gate::BUSYBOX);
    httpd.args(["httpd", "-f", "-p", &format!("{UPSTREAM_IP}:80"), "-h"]);
    httpd.arg(&mirror.root);
    let _httpd = Proc::spawn("busybox httpd", httpd, &dir.join("httpd.log")).unwrap();

    let root = dir.join("tftproot");
    let fetch_start = Instant::now();
    let mut serve = Serve::new(&root, dir.path()).flags(&[
        "--debian",
        "bookworm",
        "--arch",
        "amd64,arm64",
        "--mirror",
        &format!("http://{UPSTREAM_IP}"),
        "--keyring",
        mirror.keyring.to_str().unwrap(),
        "--console",
        "ttyAMA0,115200",
    ]);
    // Fetching, verifying and unpacking two installers (~130 MB) comes before ready.
    serve.ready_timeout = Duration::from_secs(300);
    let server = serve
        .start(&lab.server, &dir.join("pocketpxe.log"))
        .unwrap();
    let fetched = fetch_start.elapsed();
    for arch in ["amd64", "arm64"] {
        assert!(
            root.join(format!(".pocketpxe-debian-{arch}.stamp"))
                .is_file(),
            "{arch} not fetched"
        );
    }

    let start = Instant::now();
    let (mut vm, console) = Vm::new(Firmware::UefiArm64, &tap, 0x64, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    // The menu's default entry boots with `quiet`: no kernel messages, the installer's dialog
    // is the first thing Linux writes to ttyAMA0.
    console
        .wait_for(&mut vm, marker::INSTALLER_FIRST_SCREEN, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    // The arm64 path all the way: architecture 11's class and loader, arm64's GRUB menu,
    // kernel and initrd, and nothing of amd64's.
    let log = server.log_text();
    for want in [
        "class=efi-arm64",
        "file=debian-installer/arm64/bootnetaa64.efi",
        "debian-installer/arm64/grubaa64.efi",
        "debian-installer/arm64/grub/grub.cfg",
        "debian-installer/arm64/linux",
        "debian-installer/arm64/initrd.gz",
    ] {
        assert!(log.contains(want), "{want} not in the server's log:\n{log}");
    }
    assert!(
        !log.contains("debian-installer/amd64/"),
        "the arm64 machine asked for amd64 files:\n{log}"
    );
    // GRUB read the generated menu: its title is on the console.
    assert!(
        console.text().contains("Install Debian bookworm"),
        "the generated arm64 GRUB menu did not show"
    );
    pocketpxe_tests::report(&format!(
        "serve --debian --arch amd64,arm64 (arm64 UEFI, TCG): fetched and ready after {}, \
         installer's first screen after {}",
        secs(fetched),
        secs(took)
    ));
}
