//! TFTP roots built from the installed Debian netboot tree.
//!
//! The tree is copied with its symlinks (`pxelinux.0 -> debian-installer/amd64/pxelinux.0`,
//! `pxelinux.cfg -> debian-installer/amd64/pxelinux.cfg`, …): they point inside the root and a
//! server must follow them. Large files are hard-linked when the temp dir is on the same file
//! system, else copied. The boot menus are replaced by ones that boot straight away and put
//! every stage on the serial console (`ttyS0`, 115200 baud), where the test reads it.

use std::fs;
use std::os::unix::fs as unix_fs;
use std::path::Path;

use crate::gate::{DEBIAN_NETBOOT, SNPONLY_EFI};
use crate::tempdir::TempDir;

/// pxelinux, as BIOS clients ask for it (a symlink in the root).
pub const PXELINUX: &str = "pxelinux.0";
/// shim, signed, the first stage for x64 UEFI clients.
pub const SHIM: &str = "debian-installer/amd64/bootnetx64.efi";
/// The installer kernel.
pub const KERNEL: &str = "debian-installer/amd64/linux";
/// The installer initrd (~40 MB).
pub const INITRD: &str = "debian-installer/amd64/initrd.gz";
/// iPXE for UEFI over the firmware's network stack (SNP), for UEFI behind a proxyDHCP.
pub const SNPONLY: &str = "ipxe/snponly.efi";
/// The iPXE script handed to clients that already run iPXE.
pub const IPXE_SCRIPT: &str = "ipxe/boot.ipxe";
/// The NAT probe initramfs.
pub const PROBE_INITRD: &str = "test/initrd-busybox";

/// Serial console markers.
pub mod marker {
    /// The Debian installer's first dialog ("`[!!] Select a language`"), as newt draws it on the
    /// serial console.
    pub const INSTALLER_FIRST_SCREEN: &str =
        "Choose the language to be used for the installation process";
    /// The kernel started (its first console line).
    pub const KERNEL: &str = "Linux version";
    /// The kernel found its initramfs and starts `/init`: kernel and initrd both arrived.
    pub const INIT: &str = "Run /init as init process";
    /// The iPXE script ran (it echoes this).
    pub const IPXE_SCRIPT: &str = "pocketpxe-e2e: iPXE script";
}

/// The kernel command line's console settings.
pub const CONSOLE: &str = "console=ttyS0,115200";

/// A TFTP root in a temp dir, removed on drop.
#[derive(Debug)]
pub struct TftpRoot {
    dir: TempDir,
}

impl TftpRoot {
    /// The Debian netboot tree with serial-console boot menus for pxelinux and GRUB that start
    /// the installer without a prompt.
    ///
    /// # Errors
    /// When the tree cannot be read or the copy written.
    pub fn debian_installer() -> crate::Result<Self> {
        let dir = TempDir::new("tftproot")?;
        copy_tree(Path::new(DEBIAN_NETBOOT), dir.path())?;
        let root = Self { dir };
        root.set_pxelinux_default(KERNEL, INITRD, "")?;
        root.set_grub_cfg(KERNEL, INITRD, "")?;
        Ok(root)
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` (creating directories), replacing a symlink there instead of following it.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, rel: &str, data: &[u8]) -> crate::Result<()> {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
        }
        if path.symlink_metadata().is_ok() {
            fs::remove_file(&path).map_err(|e| format!("rm {}: {e}", path.display()))?;
        }
        fs::write(&path, data).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// pxelinux boots `kernel` with `initrd` and `append` right away, console on ttyS0.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn set_pxelinux_default(
        &self,
        kernel: &str,
        initrd: &str,
        append: &str,
    ) -> crate::Result<()> {
        // pxelinux.cfg is a symlink into debian-installer/amd64/; write through the real path
        // so the symlinked directory stays (the server must follow it).
        self.write(
            "debian-installer/amd64/pxelinux.cfg/default",
            format!(
                "SERIAL 0 115200\nDEFAULT e2e\nPROMPT 0\nTIMEOUT 0\nLABEL e2e\n  KERNEL {kernel}\n  \
                 APPEND initrd={initrd} {CONSOLE} {append} ---\n"
            )
            .as_bytes(),
        )
    }

    /// GRUB (after shim) boots `kernel` with `initrd` after one second, console on serial.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn set_grub_cfg(&self, kernel: &str, initrd: &str, append: &str) -> crate::Result<()> {
        self.write(
            "debian-installer/amd64/grub/grub.cfg",
            format!(
                "serial --unit=0 --speed=115200\nterminal_input serial console\n\
                 terminal_output serial console\nset timeout=1\nset default=0\n\
                 menuentry 'e2e' {{\n  linux /{kernel} {CONSOLE} {append} ---\n  \
                 initrd /{initrd}\n}}\n"
            )
            .as_bytes(),
        )
    }

    /// Adds iPXE for UEFI ([`SNPONLY`]) and the script ([`IPXE_SCRIPT`]) that boots the
    /// installer kernel and initrd by TFTP from the server the script came from.
    ///
    /// Paths in the script are relative URIs, resolved against the script's own
    /// `tftp://<server>/ipxe/boot.ipxe`, so they reach the boot server also behind a
    /// proxyDHCP. `${next-server}` would be wrong there: iPXE fetches the boot file from the
    /// proxy's next-server, but the setting `${next-server}` in a script is the address-giving
    /// server's `siaddr` (dnsmasq puts its own address there; seen in the proxy scenario).
    ///
    /// # Errors
    /// When `snponly.efi` is missing or the files cannot be written.
    pub fn add_ipxe(&self) -> crate::Result<()> {
        let efi = fs::read(SNPONLY_EFI).map_err(|e| format!("{SNPONLY_EFI}: {e}"))?;
        self.write(SNPONLY, &efi)?;
        self.write(
            IPXE_SCRIPT,
            format!(
                "#!ipxe\necho {} from ${{next-server}} (platform ${{platform}})\n\
                 kernel /{KERNEL} initrd=initrd.gz {CONSOLE} ---\n\
                 initrd --name initrd.gz /{INITRD}\nboot\n",
                marker::IPXE_SCRIPT
            )
            .as_bytes(),
        )
    }
}

/// Copies `src` into `dst`: directories recreated, symlinks recreated as they are, files
/// hard-linked or copied.
fn copy_tree(src: &Path, dst: &Path) -> crate::Result<()> {
    let entries = fs::read_dir(src).map_err(|e| format!("read {}: {e}", src.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("read {}: {e}", src.display()))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| format!("stat {}: {e}", from.display()))?;
        if kind.is_symlink() {
            let target = fs::read_link(&from).map_err(|e| format!("{}: {e}", from.display()))?;
            unix_fs::symlink(&target, &to).map_err(|e| format!("{}: {e}", to.display()))?;
        } else if kind.is_dir() {
            fs::create_dir(&to).map_err(|e| format!("mkdir {}: {e}", to.display()))?;
            copy_tree(&from, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(|e| format!("cp {}: {e}", from.display()))?;
        }
    }
    Ok(())
}
