//! # pocketpxe (host)
//!
//! The daemon half of pocketpxe: tokio sockets, files and signals around the sans-IO
//! `pocketpxe-core` state machines. The binary (`main.rs`) only parses the command line and
//! calls into this library, so that `pocketpxe serve` can reuse the same tasks.
//!
//! * [`bench`](mod@bench): `pocketpxe bench tftp`, the load tool (the core's TFTP client, many at once).
//! * [`tftp_task`]: [`run_tftp`] / [`TftpService`], the TFTP server.
//! * [`fs_store`]: [`FsStore`], the core's `FileStore` over a directory confined by
//!   `openat2(2)`.
//! * [`shutdown`]: a cooperative shutdown trigger and the OS signals that pull it.
//! * [`clock`]: host time to core time.
//! * [`netif`]: network interfaces: addresses, flags, the address `serve` may add.
//! * [`lease_file`]: DHCP leases persisted by atomic replace.
//! * [`fetch`]: `pocketpxe fetch debian`: download, verify and safely unpack Debian's netboot
//!   installer; [`menus`]: its BIOS and UEFI boot menus.
//! * [`nat`]: IPv4 forwarding and masquerading for booted machines, undone on exit.
//! * [`serve`]: `pocketpxe serve`, DHCP/proxyDHCP plus TFTP on one interface.
//! * [`dhcp_task`]: the DHCP task around the core's `DhcpServer`, durable leases, client logs.
//! * [`udp`]: sockets bound to one interface, and who holds a taken port.
//! * [`privdrop`]: after setup, `serve` runs as an unprivileged user.
//! * [`udp_batch`]: `recvmmsg`, `sendmmsg` and UDP GSO for the TFTP data path.
//! * [`fd_limit`]: the open-file limit, raised for one socket per transfer.

#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("pocketpxe (host) needs Linux: file access is confined with openat2(2)");

pub mod bench;
pub mod cli;
pub mod fetch;
pub mod fs_store;
pub mod serve;
pub mod sys;

pub use fs_store::{FileHandle, FsStore, RootError};
pub use serve::tftp::{TftpService, TftpTaskConfig, TftpTaskError, run_tftp};
pub use sys::shutdown::{Shutdown, ShutdownTrigger};
