//! Flags of `pocketpxe tftp`.

use clap::Args;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `pocketpxe tftp`.
#[derive(Debug, Args)]
pub struct TftpArgs {
    /// Directory to serve, read-only. Nothing outside it is reachable, not even via symlinks.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// IPv4 address and UDP port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:69")]
    pub listen: SocketAddrV4,
    /// Maximum number of concurrent transfers; requests beyond it are refused.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_transfers: u16,
    /// Concurrent transfers one client IP address may run; further requests from it are
    /// refused (ERROR 0), so one host cannot take every slot. 0: no limit (load tests).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_transfers_per_client: u16,
    /// Largest block size granted (RFC 2348, 8-65464). 1468 fits an Ethernet MTU of 1500.
    #[arg(long, value_name = "BYTES", default_value_t = 1468,
          value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub max_blksize: u16,
    /// Largest window size granted (RFC 7440, 1-65535).
    #[arg(long, value_name = "BLOCKS", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_windowsize: u16,
    /// Retransmission timeout in seconds when the client does not ask for one (RFC 2349, 1-255).
    #[arg(long, value_name = "SECS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..))]
    pub timeout: u8,
    /// Retransmissions of one packet before a transfer is given up.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u8,
    /// Ignore all RFC 2347 options (plain RFC 1350), for clients that break on them.
    #[arg(long)]
    pub no_options: bool,
    /// On shutdown, how long running transfers may take to finish, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub grace: u64,
}

impl TftpArgs {
    /// The shutdown grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace)
    }
}
