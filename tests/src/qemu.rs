//! QEMU command lines for the two PXE clients the tests boot.
//!
//! Always TCG: under KVM the 2019 iPXE ROM hangs (FIRMWARE.md). QEMU runs inside the LAN
//! namespace (`ip netns exec`), where its tap is.
//! * [`Firmware::Bios`]: SeaBIOS with iPXE's e1000 ROM (`ipxe-qemu`). iPXE's own messages go
//!   to the (absent) screen only; the serial log starts with pxelinux.
//! * [`Firmware::Uefi`]: OVMF with virtio-net and **no option ROM** (`romfile=`): without that,
//!   QEMU's virtio-net ROM (iPXE for EFI) would boot instead of EDK2's own PXE.
//! * [`Firmware::UefiHttp`]: the same with PXE over IPv4 and IPv6 switched off through OVMF's
//!   fw_cfg knobs, so the first network boot option is EDK2's native HTTP boot over IPv4.
//! * [`Firmware::UefiArm64`]: `qemu-system-aarch64`, machine `virt` with a Cortex-A57, AAVMF
//!   (EDK2 for ARM) with its own PXE on virtio-net (no option ROM, as for OVMF); the serial
//!   console is the machine's PL011 (`ttyAMA0` to Linux).

use std::path::{Path, PathBuf};

use crate::gate::{AAVMF, OVMF, QEMU, QEMU_AARCH64};
use crate::netns::Netns;
use crate::process::Proc;
use crate::serial::Console;

/// Which firmware the VM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS + iPXE ROM on an e1000.
    Bios,
    /// OVMF (EDK2) with its own PXE on virtio-net.
    Uefi,
    /// OVMF booting over HTTP (UEFI HTTP boot, vendor class `HTTPClient`): no PXE.
    UefiHttp,
    /// An arm64 `virt` machine: AAVMF with its own PXE on virtio-net (client architecture 11).
    UefiArm64,
}

impl Firmware {
    /// The QEMU program for this firmware's machine.
    pub fn qemu(self) -> &'static str {
        match self {
            Self::UefiArm64 => QEMU_AARCH64,
            Self::Bios | Self::Uefi | Self::UefiHttp => QEMU,
        }
    }
}

/// One VM to boot from the network.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Firmware and NIC.
    pub firmware: Firmware,
    /// The tap in the LAN namespace ([`crate::netns::Lab::add_tap`]).
    pub tap: String,
    /// The NIC's MAC address.
    pub mac: String,
    /// Guest memory in MiB (the installer wants more than 512 to stay out of low-memory mode).
    pub memory_mib: u32,
    /// Where the serial console goes.
    pub serial: PathBuf,
    /// A raw disk image on IDE, after the network in the boot order (`None`: no disk).
    pub disk: Option<PathBuf>,
}

impl Vm {
    /// A VM with 1 GiB, MAC `52:54:00:e2:e2:<n>`, serial console at `serial`.
    pub fn new(firmware: Firmware, tap: &str, n: u8, serial: &Path) -> Self {
        Self {
            firmware,
            tap: tap.to_owned(),
            mac: format!("52:54:00:e2:e2:{n:02x}"),
            memory_mib: 1024,
            serial: serial.to_owned(),
            disk: None,
        }
    }

    /// The same VM with the raw image `disk` as its hard disk.
    #[must_use]
    pub fn with_disk(mut self, disk: &Path) -> Self {
        self.disk = Some(disk.to_owned());
        self
    }

    /// QEMU's arguments.
    pub fn args(&self) -> Vec<String> {
        let machine: &[&str] = match self.firmware {
            Firmware::UefiArm64 => &["-M", "virt", "-cpu", "cortex-a57"],
            Firmware::Bios | Firmware::Uefi | Firmware::UefiHttp => &["-M", "pc"],
        };
        let mut args: Vec<String> = machine
            .iter()
            .chain(&[
                "-accel",
                "tcg",
                "-smp",
                "1",
                "-display",
                "none",
                "-monitor",
                "none",
                "-parallel",
                "none",
                "-no-reboot",
            ])
            .map(|s| (*s).to_owned())
            .collect();
        if self.firmware != Firmware::UefiArm64 {
            // SeaBIOS and OVMF take the boot order from QEMU; AAVMF without disks boots
            // from the network by itself, and `virt` has no `-boot` order to give it.
            args.extend(["-boot".to_owned(), "n".to_owned()]);
        }
        args.push("-m".into());
        args.push(self.memory_mib.to_string());
        args.push("-serial".into());
        args.push(format!("file:{}", self.serial.display()));
        if let Some(disk) = &self.disk {
            args.push("-drive".into());
            args.push(format!("file={},format=raw,if=ide", disk.display()));
        }
        args.push("-netdev".into());
        args.push(format!(
            "tap,id=net0,ifname={},script=no,downscript=no",
            self.tap
        ));
        match self.firmware {
            Firmware::Bios => {
                args.push("-device".into());
                args.push(format!("e1000,netdev=net0,mac={}", self.mac));
            }
            Firmware::UefiArm64 => {
                args.push("-bios".into());
                args.push(AAVMF.into());
                args.push("-device".into());
                args.push(format!(
                    "virtio-net-pci,netdev=net0,mac={},romfile=",
                    self.mac
                ));
            }
            Firmware::Uefi | Firmware::UefiHttp => {
                if self.firmware == Firmware::UefiHttp {
                    for knob in ["IPv4PXESupport", "IPv6PXESupport"] {
                        args.push("-fw_cfg".into());
                        args.push(format!("name=opt/org.tianocore/{knob},string=n"));
                    }
                }
                args.push("-bios".into());
                args.push(OVMF.into());
                args.push("-device".into());
                args.push(format!(
                    "virtio-net-pci,netdev=net0,mac={},romfile=",
                    self.mac
                ));
            }
        }
        args
    }

    /// Starts QEMU inside `ns`; its own stderr goes to `<serial>.qemu.log`.
    ///
    /// # Errors
    /// When QEMU cannot be started.
    pub fn start(&self, ns: &Netns) -> crate::Result<(Proc, Console)> {
        let _ = std::fs::remove_file(&self.serial);
        let mut cmd = ns.command(self.firmware.qemu());
        cmd.args(self.args());
        let log = self.serial.with_extension("qemu.log");
        let name = match self.firmware {
            Firmware::Bios => "qemu (BIOS)",
            Firmware::Uefi => "qemu (UEFI)",
            Firmware::UefiHttp => "qemu (UEFI HTTP boot)",
            Firmware::UefiArm64 => "qemu (arm64 UEFI)",
        };
        let proc = Proc::spawn(name, cmd, &log)?;
        Ok((proc, Console::new(&self.serial)))
    }
}
