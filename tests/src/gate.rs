//! Whether a VM test can run on this machine.
//!
//! A test that cannot run prints `SKIP <test>: <reasons>` to stderr and returns. In CI
//! (`CI=true`) a missing requirement is a failure instead: the CI machine is set up by
//! `scripts/setup`, so something missing there is a bug in the setup.

use std::path::Path;

/// One requirement of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective UID 0 (namespaces, taps, nftables).
    Root,
    /// `/dev/net/tun` (QEMU's tap backend).
    Tun,
    /// A program on `PATH`.
    Program(&'static str),
    /// A file that must exist (firmware, boot files).
    File(&'static str),
    /// The Debian kernel package matching the netboot kernel (its NFS, squashfs, loop and
    /// overlay modules), in [`crate::diskless::MODULES_DEB_DIR`].
    KernelModules,
}

/// QEMU for x86_64.
pub const QEMU: &str = "qemu-system-x86_64";
/// OVMF, the UEFI firmware for QEMU (`ovmf`).
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
/// iPXE's PXE ROM for QEMU's e1000 (`ipxe-qemu`), loaded by SeaBIOS.
pub const PXE_E1000_ROM: &str = "/usr/lib/ipxe/qemu/pxe-e1000.rom";
/// iPXE for UEFI using the firmware's network driver (`ipxe`).
pub const SNPONLY_EFI: &str = "/usr/lib/ipxe/snponly.efi";
/// The Debian 12 netboot tree (`debian-installer-12-netboot-amd64`).
pub const DEBIAN_NETBOOT: &str = "/usr/lib/debian-installer/images/12/amd64/text";
/// QEMU for aarch64 (`qemu-system-arm`).
pub const QEMU_AARCH64: &str = "qemu-system-aarch64";
/// EDK2 for QEMU's arm64 `virt` machine (AAVMF, `qemu-efi-aarch64`), as one image for `-bios`.
pub const AAVMF: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";
/// The Debian 12 arm64 netboot tree (`debian-installer-12-netboot-arm64`, Architecture: all).
pub const DEBIAN_NETBOOT_ARM64: &str = "/usr/lib/debian-installer/images/12/arm64/text";
/// Static busybox (`busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// What every VM test needs.
pub const VM_BASE: &[Need] = &[
    Need::Root,
    Need::Tun,
    Need::Program(QEMU),
    Need::Program("ip"),
    Need::File("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux"),
    Need::File("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz"),
];
/// A SeaBIOS + iPXE client booting pxelinux.
pub const BIOS: &[Need] = &[
    Need::File(PXE_E1000_ROM),
    Need::File("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/pxelinux.0"),
];
/// An OVMF client booting shim and GRUB.
pub const UEFI: &[Need] = &[
    Need::File(OVMF),
    Need::File(
        "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/bootnetx64.efi",
    ),
];

/// An arm64 `virt` machine with AAVMF booting the arm64 shim and GRUB.
pub const ARM64_UEFI: &[Need] = &[
    Need::Program(QEMU_AARCH64),
    Need::File(AAVMF),
    Need::File(
        "/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64/bootnetaa64.efi",
    ),
    Need::File("/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64/linux"),
    Need::File("/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64/initrd.gz"),
];

/// Checks `needs` (build the list with [`vm_needs`]).
///
/// Returns `true` when the test can run. Otherwise prints `SKIP` and returns `false`, or panics
/// when the environment variable `CI` is `true`.
///
/// # Panics
/// In CI, when a requirement is missing.
pub fn ready(test: &str, needs: &[Need]) -> bool {
    let missing: Vec<String> = needs.iter().filter_map(|n| check(*n)).collect();
    if missing.is_empty() {
        return true;
    }
    let reasons = missing.join("; ");
    if in_ci() {
        panic!("{test}: cannot run in CI: {reasons} (scripts/setup should have provided it)");
    }
    crate::report(&format!("SKIP {test}: {reasons}"));
    false
}

/// Whether we run in CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The full requirement list for a scenario: [`VM_BASE`] plus `extra` lists.
pub fn vm_needs(extra: &[&[Need]]) -> Vec<Need> {
    let mut all = VM_BASE.to_vec();
    for list in extra {
        all.extend_from_slice(list);
    }
    all
}

/// Whether `program` is an executable file in one of `PATH`'s directories.
pub fn on_path(program: &str) -> bool {
    find_program(program).is_some()
}

/// The full path of `program` found on `PATH`, if any.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn check(need: Need) -> Option<String> {
    match need {
        Need::Root => (!rustix::process::geteuid().is_root()).then(|| "not root".to_owned()),
        Need::Tun => (!Path::new("/dev/net/tun").exists()).then(|| "no /dev/net/tun".to_owned()),
        Need::Program(p) => (!on_path(p)).then(|| format!("program {p} not found")),
        Need::File(f) => (!Path::new(f).exists()).then(|| format!("{f} missing")),
        Need::KernelModules => crate::diskless::modules_deb().err(),
    }
}
