//! Command-line interface: `pocketpxe <subcommand> [flags]`.

mod fetch;
mod serve;
mod tftp;

pub use fetch::{FetchArgs, FetchDebianArgs, FetchSource, SignatureArgs};
pub use serve::{
    AddrRange, BootArg, BootMacArg, Optional, ReserveArg, ServeArgs, ServeMode, parse_duration,
};
pub use tftp::{TftpArgs, TftpTuning};

use clap::{Args, Parser, Subcommand};

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
    Serve(ServeArgs),
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
        assert_eq!(args.tuning.max_blksize, 1468);
        assert!(
            Cli::try_parse_from(["pocketpxe", "tftp", "--root", "x", "--max-blksize", "7"])
                .is_err()
        );
    }
}
