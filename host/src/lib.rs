//! # pocketpxe (host)
//!
//! The daemon half of pocketpxe: tokio sockets, files and signals around the sans-IO
//! `pocketpxe-core` state machines. The binary (`main.rs`) only parses the command line and
//! calls into this library, so that `pocketpxe serve` can reuse the same tasks.
//!
//! Modules by role:
//!
//! * [`cli`]: the command line (clap types), one file per subcommand; [`cli::TftpTuning`]
//!   is the TFTP tuning shared by `tftp` and `serve`, and builds the core's `TftpConfig`.
//! * [`serve`]: `pocketpxe serve`, DHCP/proxyDHCP, TFTP and HTTP on one interface, and its tasks:
//!   * [`serve::dhcp`]: the DHCP task around the core's `DhcpServer`, durable leases, client logs;
//!   * [`serve::tftp`]: [`run_tftp`] / [`TftpService`], the TFTP server (also `pocketpxe tftp`);
//!   * [`serve::http`]: [`serve::http::HttpService`], the HTTP server (also `pocketpxe http`);
//!   * [`serve::lease_file`]: DHCP leases persisted by atomic replace.
//! * [`fetch`]: `pocketpxe fetch debian`: download, verify and safely unpack Debian's netboot
//!   installer, and [`fetch::menus`], its BIOS and UEFI boot menus.
//! * [`sys`]: the operating system beneath:
//!   * [`sys::netif`]: network interfaces: addresses, flags, the address `serve` may add;
//!   * [`sys::rtnl`]: interface facts over rtnetlink, in this process's namespace;
//!   * [`sys::nat`]: IPv4 forwarding and masquerading for booted machines, undone on exit;
//!   * [`sys::udp`]: sockets bound to one interface, and who holds a taken port;
//!   * [`sys::tcp`]: TCP listeners, and who holds a taken TCP port;
//!   * [`sys::udp_batch`]: `recvmmsg`, `sendmmsg` and UDP GSO for the TFTP data path and DHCP;
//!   * [`sys::privdrop`]: after setup, `serve` runs as an unprivileged user;
//!   * [`sys::fd_limit`]: the open-file limit, raised for one socket per transfer;
//!   * [`sys::shutdown`]: a cooperative shutdown trigger and the OS signals that pull it;
//!   * [`sys::clock`]: host time to core time.
//! * [`machines`]: per-machine boot control: records, policies, the control API, the
//!   pixiecore-style API client.
//! * [`logging`]: the log's formats (text, compact, JSON) and journald priorities.
//! * [`metrics`]: `serve --metrics`: Prometheus metrics of the DHCP and TFTP tasks, served over
//!   HTTP at `/metrics`.
//! * [`fs_store`]: [`FsStore`], the core's `FileStore` over a directory confined by
//!   `openat2(2)`.
//! * [`bench`](mod@bench): `pocketpxe bench tftp`, the load tool (the core's TFTP client, many at
//!   once).

#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("pocketpxe (host) needs Linux: file access is confined with openat2(2)");

pub mod bench;
pub mod cli;
pub mod config;
pub mod diskless;
pub mod fetch;
pub mod fs_store;
pub mod logging;
pub mod machines;
pub mod metrics;
pub mod serve;
pub mod sys;

pub use fs_store::{FileHandle, FsStore, RootError};
pub use serve::tftp::{TftpService, TftpTaskConfig, TftpTaskError, run_tftp};
pub use sys::shutdown::{Shutdown, ShutdownTrigger};
