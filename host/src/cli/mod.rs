//! Command-line interface: `pocketpxe <subcommand> [flags]`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

/// pocketpxe: a small PXE boot server.
#[derive(Debug, Parser)]
#[command(name = "pocketpxe", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per run: the size of `ServeArgs` does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve a directory read-only over TFTP (RFC 1350, options RFC 2347-2349, 7440).
    Tftp(TftpArgs),
    /// Boot machines on one interface: DHCP (or proxyDHCP) plus TFTP.
    Serve(crate::serve::ServeArgs),
    /// Load-test a server: many concurrent clients from one process.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Download, verify and unpack a network installer, and write its boot menus.
    Fetch(FetchArgs),
}

/// What `pocketpxe bench` can load.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Many concurrent TFTP downloads against any TFTP server; prints throughput, latency
    /// percentiles, retransmissions, failures and corrupt downloads.
    Tftp(crate::bench::BenchTftpArgs),
}

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
    /// Debian's netboot installer (netboot.tar.gz, checked against the mirror's SHA256SUMS),
    /// plus BIOS (pxelinux) and UEFI (GRUB) boot menus.
    Debian(FetchDebianArgs),
}

/// Flags of `pocketpxe fetch debian`.
#[derive(Debug, Args)]
pub struct FetchDebianArgs {
    /// Debian release, e.g. bookworm or trixie.
    #[arg(long, value_name = "DIST", default_value = "bookworm")]
    pub dist: String,
    /// Architecture: amd64 (BIOS and UEFI) or arm64 (UEFI only).
    #[arg(long, value_name = "ARCH", default_value = "amd64")]
    pub arch: crate::fetch::menus::Arch,
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
}

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

/// Logging flags, shared by all subcommands.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// More logging (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (warnings and errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Full)]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Timestamp, level, target, fields.
    Full,
    /// Shorter lines.
    Compact,
}

impl LogArgs {
    /// The default `tracing` filter directive for these flags.
    pub fn default_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "warn",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        }
    }
}

impl TftpArgs {
    /// The shutdown grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["pocketpxe", "tftp", "--root", "/srv/tftp"]).unwrap();
        let Command::Tftp(args) = cli.command else {
            panic!("not parsed as tftp")
        };
        assert_eq!(args.listen.to_string(), "0.0.0.0:69");
        assert_eq!(args.max_blksize, 1468);
        assert!(
            Cli::try_parse_from(["pocketpxe", "tftp", "--root", "x", "--max-blksize", "7"])
                .is_err()
        );
    }
}
