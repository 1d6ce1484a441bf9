//! Flags of `pocketpxe fetch`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `pocketpxe fetch`: what to fetch.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The installer.
    #[command(subcommand)]
    pub source: FetchSource,
}

/// Installers `pocketpxe fetch` knows.
#[derive(Debug, Subcommand)]
pub enum FetchSource {
    /// Debian's netboot installer (netboot.tar.gz, verified through the mirror's signed
    /// InRelease and SHA256SUMS), plus BIOS (pxelinux), UEFI (GRUB) and iPXE (boot.ipxe) boot
    /// menus; for amd64 also iPXE itself from Debian's ipxe package, when installed (Debian
    /// ships no arm64 iPXE).
    Debian(FetchDebianArgs),
    /// A live netboot set for diskless machines (kernel, initrd and squashfs root, e.g. one of
    /// Debian's live images), verified through its signed SHA256SUMS, into DEST under the root;
    /// prints the `serve` flags that boot it. See docs/diskless.md.
    Live(FetchLiveArgs),
}

/// Flags of `pocketpxe fetch live`.
#[derive(Debug, Args)]
pub struct FetchLiveArgs {
    /// The directory URL (http:// or https://) holding SHA256SUMS, SHA256SUMS.sign and the
    /// set's files (names ending in vmlinuz, initrd.img and squashfs).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Which set, when the directory holds several: the name before those endings, e.g.
    /// debian-live-12.9.0-amd64-standard.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The boot root (created if missing).
    #[arg(
        long,
        visible_alias = "tftp-root",
        value_name = "DIR",
        default_value = "/srv/tftp"
    )]
    pub root: PathBuf,
    /// The directory under the root for vmlinuz, initrd.img and filesystem.squashfs.
    #[arg(long, value_name = "DIR", default_value = "live")]
    pub dest: String,
    /// OpenPGP keyring (binary or armored) to verify SHA256SUMS.sign with [default: Debian's
    /// keyring, /usr/share/keyrings/debian-role-keys.* and debian-keyring.*, from the
    /// debian-keyring package, which holds the Debian CD signing key].
    #[arg(long, value_name = "FILE", conflicts_with = "no_verify_signature")]
    pub keyring: Option<PathBuf>,
    /// Do not verify SHA256SUMS.sign: trust SHA256SUMS as the server sends it (a warning is
    /// logged).
    #[arg(long)]
    pub no_verify_signature: bool,
}

/// Flags of `pocketpxe fetch debian`.
#[derive(Debug, Args)]
pub struct FetchDebianArgs {
    /// Debian release, e.g. bookworm or trixie.
    #[arg(long, value_name = "DIST", default_value = "bookworm")]
    pub dist: String,
    /// Architectures, comma-separated: amd64 (BIOS and UEFI) and arm64 (UEFI only). Each
    /// lands in debian-installer/ARCH/ of the same root.
    #[arg(long, value_name = "ARCH[,ARCH]", default_value = "amd64")]
    pub arch: crate::fetch::menus::ArchList,
    /// Debian mirror, http:// or https://.
    #[arg(long, value_name = "URL", default_value = crate::fetch::DEFAULT_MIRROR)]
    pub mirror: String,
    /// The TFTP root to unpack into (created if missing).
    #[arg(
        long,
        visible_alias = "tftp-root",
        value_name = "DIR",
        default_value = "/srv/tftp"
    )]
    pub root: PathBuf,
    /// Serial console for headless machines in the boot menus, e.g. ttyS0 or ttyS0,115200.
    #[arg(long, value_name = "TTY[,BAUD]")]
    pub console: Option<crate::fetch::menus::SerialConsole>,
    /// Name this TFTP server's address in GRUB's paths, for UEFI clients behind another DHCP
    /// server (proxyDHCP), whose GRUB would otherwise ask that server for the kernel.
    #[arg(long, value_name = "IPV4")]
    pub tftp_server: Option<std::net::Ipv4Addr>,
    /// Signature checking of the mirror's InRelease.
    #[command(flatten)]
    pub signature: SignatureArgs,
}

/// How the mirror's `dists/DIST/InRelease` is verified.
#[derive(Debug, Clone, Args)]
pub struct SignatureArgs {
    /// OpenPGP keyring (binary or armored) to verify the mirror's InRelease with, for a private
    /// mirror signed with its own key [default: Debian's archive keyring,
    /// /usr/share/keyrings/debian-archive-keyring.pgp or .gpg, from the debian-archive-keyring
    /// package].
    #[arg(long, value_name = "FILE", conflicts_with = "no_verify_signature")]
    pub keyring: Option<PathBuf>,
    /// Do not verify the mirror's InRelease signature: trust SHA256SUMS as the mirror sends it
    /// (a warning is logged). Only for mirrors that publish no signed InRelease.
    #[arg(long)]
    pub no_verify_signature: bool,
}

impl SignatureArgs {
    /// The fetch's [`crate::fetch::Verification`].
    pub fn verification(&self) -> crate::fetch::Verification {
        crate::fetch::Verification::from_flags(self.keyring.clone(), self.no_verify_signature)
    }
}
