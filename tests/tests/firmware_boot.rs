//! The pocket boot server: the firmware (`firmware/`, board `mps2`) runs in
//! `qemu-system-arm -M mps2-an386` on a tap with its LAN9118, serving DHCP and TFTP from a
//! boot image that this test builds from a directory with `mkbootimg` and QEMU places in PSRAM.
//! Then, on the same bridge:
//! 1. a TFTP client starts downloading the kernel and is killed mid-transfer (the board must
//!    time the transfer out and go on serving);
//! 2. an OVMF client (EDK2's own PXE) gets a lease and downloads `bootx64.efi` (after its
//!    `tsize` probe, with `windowsize`);
//! 3. a SeaBIOS + iPXE client gets a lease, loads pxelinux, the Debian installer's kernel and a
//!    busybox initramfs, and prints a marker on its serial console.
//!
//! Both firmware images must be built first: `scripts/test` runs `cargo build --release` in
//! `firmware/` and `firmware/bootimg/`.

// Setup helpers outside `#[test]`: a failed step is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pocketpxe_tests::gate::{self, Need};
use pocketpxe_tests::netns::{Lab, SERVER_IF};
use pocketpxe_tests::process::{Proc, run};
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::serial::{Console, tail};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::{begin, initramfs::CpioWriter, report, secs};

const TEST: &str = "firmware_board_boots_bios_linux_and_uefi";
const FIRMWARE_ELF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../firmware/target/thumbv7em-none-eabihf/release/mps2"
);
const QEMU_ARM: &str = "qemu-system-arm";
const PXELINUX: &str = "/usr/lib/PXELINUX/pxelinux.0";
const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
const KERNEL: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux";
const SHIM: &str =
    "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/bootnetx64.efi";
/// The board's address and the test client's (config.rs in the firmware).
const BOARD_IP: &str = "10.77.0.1";
const CLIENT_CIDR: &str = "10.77.0.254/24";
const MARKER: &str = "POCKETPXE-FIRMWARE-BOOT-OK";

/// Measured ~50 s from power-on to the marker on 2 busy cores; generous for a loaded CI.
const BIOS_BOOT: Duration = Duration::from_secs(300);
/// Measured ~16 s to the end of the download.
const UEFI_DOWNLOAD: Duration = Duration::from_secs(180);
/// 1 s timeout, 5 retries in the core, plus slack.
const VANISHED_TIMEOUT: Duration = Duration::from_secs(40);

#[test]
fn firmware_board_boots_bios_linux_and_uefi() {
    let needs = gate::vm_needs(&[
        gate::BIOS,
        gate::UEFI,
        &[
            Need::Program(QEMU_ARM),
            Need::File(FIRMWARE_ELF),
            Need::File(PXELINUX),
            Need::File(LDLINUX),
            Need::File(gate::BUSYBOX),
        ],
    ]);
    let Some(mkbootimg) = mkbootimg() else {
        let why = "firmware/bootimg's mkbootimg is not built (scripts/test builds it)";
        assert!(!gate::in_ci(), "{TEST}: cannot run in CI: {why}");
        report(&format!("SKIP {TEST}: {why}"));
        return;
    };
    let Some(_lock) = begin(TEST, &needs) else {
        return;
    };

    let dir = TempDir::new("firmware").unwrap();
    let image = build_boot_image(&dir, &mkbootimg);
    let mut lab = Lab::new(false).unwrap();
    lab.server
        .ip(&["addr", "add", CLIENT_CIDR, "dev", SERVER_IF])
        .unwrap();
    let board_tap = lab.add_tap().unwrap();
    let bios_tap = lab.add_tap().unwrap();
    let uefi_tap = lab.add_tap().unwrap();

    // The board.
    let uart = dir.join("board-uart.log");
    let mut cmd = lab.lan.command(QEMU_ARM);
    cmd.args(["-M", "mps2-an386", "-display", "none", "-monitor", "none"])
        .args(["-kernel", FIRMWARE_ELF])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-device")
        .arg(format!(
            "loader,file={},addr=0x21000000,force-raw=on",
            image.display()
        ))
        .arg("-nic")
        .arg(format!(
            "tap,ifname={board_tap},script=no,downscript=no,model=lan9118,mac=02:00:00:77:00:02"
        ))
        .arg("-serial")
        .arg(format!("file:{}", uart.display()));
    // stdout carries defmt frames over semihosting (decode with `defmt-print -e mps2`).
    let mut board = Proc::spawn("qemu (mps2 board)", cmd, &dir.join("board-defmt.bin")).unwrap();
    let console = Console::new(&uart);
    let start = Instant::now();
    expect(
        &console,
        &mut board,
        "pocketpxe: ready",
        Duration::from_secs(30),
    );
    assert!(
        console.text().contains("8 boot files"),
        "the board did not find the boot image:\n{}",
        console.text()
    );

    // 1. A client that vanishes mid-transfer.
    let mut cmd = lab.server.command(gate::BUSYBOX);
    cmd.args(["tftp", "-g", "-r", "linux", "-l", "/dev/null", BOARD_IP]);
    let mut vanishing = Proc::spawn("busybox tftp", cmd, &dir.join("tftp.log")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        vanishing.exited().is_none(),
        "busybox tftp ended before it was killed: {}",
        vanishing.log_text()
    );
    vanishing.kill();
    let vanished_at = Instant::now();

    // 2. and 3. Two PXE clients at once.
    let (mut uefi, _uefi_console) = Vm::new(Firmware::Uefi, &uefi_tap, 0x21, &dir.join("uefi.log"))
        .start(&lab.lan)
        .unwrap();
    let (mut bios, bios_console) = Vm::new(Firmware::Bios, &bios_tap, 0x20, &dir.join("bios.log"))
        .start(&lab.lan)
        .unwrap();
    let clients_at = Instant::now();

    expect(
        &console,
        &mut board,
        "tftp: failed linux: timed out",
        VANISHED_TIMEOUT.saturating_sub(vanished_at.elapsed()),
    );
    let vanished = vanished_at.elapsed();

    expect(
        &console,
        &mut board,
        "tftp: done bootx64.efi",
        UEFI_DOWNLOAD.saturating_sub(clients_at.elapsed()),
    );
    let uefi_done = clients_at.elapsed();
    uefi.kill();

    bios_console
        .wait_for(&mut bios, MARKER, BIOS_BOOT)
        .unwrap_or_else(|e| panic!("{e}\n--- board UART ---\n{}", tail(&console.text(), 40)));
    let bios_done = clients_at.elapsed();

    let log = console.text();
    for line in [
        "dhcp: lease 10.77.0.",
        "tftp: done pxelinux.0",
        "tftp: done ldlinux.c32",
        "tftp: done pxelinux.cfg/default",
        "tftp: done linux 8",
        "tftp: done initrd",
    ] {
        assert!(log.contains(line), "board log lacks {line:?}:\n{log}");
    }
    assert!(
        board.exited().is_none(),
        "the board stopped:\n{}",
        tail(&log, 40)
    );
    report(&format!(
        "firmware board: vanished transfer timed out after {}, UEFI download done after {}, \
         BIOS Linux booted after {} ({} since the board started)\n{}",
        secs(vanished),
        secs(uefi_done),
        secs(bios_done),
        secs(start.elapsed()),
        transfer_lines(&log)
    ));
}

/// Builds the boot directory (pxelinux, its config, the Debian installer kernel, a busybox
/// initramfs, shim as `bootx64.efi` and two files for the vanishing client) and turns it into
/// an image with `mkbootimg`.
fn build_boot_image(dir: &TempDir, mkbootimg: &Path) -> PathBuf {
    let root = dir.join("root");
    let cfg = root.join("pxelinux.cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    for (from, to) in [
        (PXELINUX, "pxelinux.0"),
        (LDLINUX, "ldlinux.c32"),
        (KERNEL, "linux"),
        (SHIM, "bootx64.efi"),
    ] {
        std::fs::copy(from, root.join(to)).unwrap_or_else(|e| panic!("copy {from}: {e}"));
    }
    std::fs::write(
        cfg.join("default"),
        "DEFAULT linux\nLABEL linux\n  KERNEL linux\n  INITRD initrd\n  \
         APPEND console=ttyS0 rdinit=/init quiet\n",
    )
    .unwrap();
    std::fs::write(root.join("initrd"), busybox_initramfs()).unwrap();
    // Small extras: a nested name and an empty file.
    std::fs::create_dir_all(root.join("extra/nested")).unwrap();
    std::fs::write(root.join("extra/nested/hello.txt"), "hello\n").unwrap();
    std::fs::write(root.join("extra/empty"), "").unwrap();

    let image = dir.join("boot.img");
    let mut cmd = Command::new(mkbootimg);
    cmd.arg(&root).arg(&image);
    run(cmd, Duration::from_secs(60)).unwrap();
    let len = std::fs::metadata(&image).unwrap().len();
    assert!(
        len <= 16 * 1024 * 1024,
        "boot image of {len} bytes exceeds the 16 MiB PSRAM"
    );
    image
}

/// An uncompressed initramfs: static busybox and an `/init` that prints [`MARKER`] on the
/// console and powers off.
fn busybox_initramfs() -> Vec<u8> {
    let busybox = std::fs::read(gate::BUSYBOX).unwrap();
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs dev /dev\necho {MARKER}\n\
         /bin/busybox poweroff -f\n"
    );
    let mut cpio = CpioWriter::new();
    cpio.dir("bin")
        .dir("dev")
        .dir("proc")
        .char_dev("dev/console", 5, 1)
        .file("bin/busybox", 0o755, &busybox)
        .file("init", 0o755, init.as_bytes());
    cpio.finish()
}

/// `firmware/target/<host>/release/mkbootimg`, if built.
fn mkbootimg() -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/target");
    std::fs::read_dir(target)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("release/mkbootimg"))
        .find(|p| p.is_file())
}

/// Waits for `needle` on the board's UART; panics with the UART's tail otherwise.
fn expect(console: &Console, board: &mut Proc, needle: &str, timeout: Duration) {
    console
        .wait_for(board, needle, timeout)
        .unwrap_or_else(|e| panic!("board: {e}"));
}

/// The board's TFTP result lines, for the report.
fn transfer_lines(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("tftp: done") || l.contains("tftp: failed") || l.contains("dhcp:"))
        .collect::<Vec<_>>()
        .join("\n")
}
