//! What the pocket boot server hands out. Compile-time constants: change them here and rebuild.

use core::net::Ipv4Addr;
use core::time::Duration;

use pocketpxe_core::dhcp::{BootRule, ClientClass, Pool};

/// The board's own address (DHCP server identifier, TFTP server).
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// Prefix length of the served subnet.
pub const PREFIX_LEN: u8 = 24;
/// Addresses handed out. Its size matches the lease table ([`crate::net::LEASES`]).
pub const POOL: Pool = Pool {
    start: Ipv4Addr::new(10, 77, 0, 100),
    end: Ipv4Addr::new(10, 77, 0, 107),
};
/// Lease time (option 51).
pub const LEASE_TIME: Duration = Duration::from_secs(3600);
/// Boot file by client architecture. A client already running iPXE gets its architecture's
/// file too (no `ipxe` rule), which suits pxelinux; add an `ipxe` rule to chainload a script.
pub const BOOT_RULES: [BootRule<'static>; 4] = [
    BootRule::new(ClientClass::Bios, "pxelinux.0"),
    BootRule::new(ClientClass::EfiX64, "bootx64.efi"),
    BootRule::new(ClientClass::EfiIa32, "bootia32.efi"),
    BootRule::new(ClientClass::EfiArm64, "bootaa64.efi"),
];
