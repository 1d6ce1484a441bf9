//! End-to-end harness for pocketpxe: real PXE firmware under QEMU boots from a server running
//! inside network namespaces that the test builds itself.
//!
//! The pieces, each a guard that cleans up on drop (also when a test panics):
//! * [`gate`]: decides whether a VM test can run here (root, `/dev/net/tun`, QEMU, firmware
//!   files); skips loudly on a developer machine and fails when `CI=true`.
//! * [`lock`]: a file lock that runs VM tests one at a time across threads and test binaries.
//! * [`netns`]: network namespaces, and [`netns::Lab`], the topology every scenario uses:
//!   a server namespace, a LAN namespace with a bridge, a veth between them, and taps for VMs.
//! * [`process`]: child processes stopped by the PID we started, never by name.
//! * [`qemu`]: QEMU command lines for a SeaBIOS + iPXE client, an OVMF (EDK2 PXE) client and
//!   an arm64 `virt` machine with AAVMF (EDK2 for ARM).
//! * [`serial`]: waits for text on a VM's serial console, with a timeout that reports the tail.
//! * [`tftp_root`]: a TFTP root built from the installed Debian netboot tree, with serial
//!   consoles configured for pxelinux, GRUB and iPXE.
//! * [`initramfs`]: cpio "newc" archives written in Rust: a busybox initramfs, and extraction of
//!   kernel modules from the Debian installer's initrd.
//! * [`diskless`]: a served root, a client initramfs that mounts it over HTTP or NFS, and
//!   NFS-Ganesha.
//! * [`server`]: how to start `pocketpxe serve` and dnsmasq.
//! * [`mirror`]: a signed Debian mirror on disk, for `serve --debian`.
//!
//! Nothing here touches the machine's own interfaces: every address, bridge, veth and tap lives
//! in a namespace that a [`netns::Lab`] created, and is gone when the lab is dropped.

pub mod diskless;
pub mod gate;
pub mod initramfs;
pub mod lock;
pub mod mirror;
pub mod netns;
pub mod process;
pub mod qemu;
pub mod serial;
pub mod server;
pub mod tempdir;
pub mod tftp_root;

use std::time::Duration;

/// Result type of the harness: errors are human-readable reports (a test panics with them).
pub type Result<T, E = String> = core::result::Result<T, E>;

/// Everything a VM scenario holds while it runs: the lock and the gate's verdict.
///
/// Returns `None` when the test must be skipped (the gate already said why).
///
/// # Panics
/// When `CI=true` and something the test needs is missing.
pub fn begin(test: &str, needs: &[gate::Need]) -> Option<lock::VmLock> {
    if !gate::ready(test, needs) {
        return None;
    }
    let lock = lock::VmLock::acquire();
    netns::remove_stale();
    eprintln!("{test}: starting");
    Some(lock)
}

/// Writes a line to the real stderr, past the test harness's output capture, so that skips and
/// boot timings show up in `cargo test` output (and CI logs) even for passing tests.
pub fn report(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Formats a duration as seconds with one decimal, for timing lines.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
