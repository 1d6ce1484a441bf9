//! Command-line interface: `pocketpxe <subcommand> [flags]`.

mod fetch;
pub mod generate;
mod http;
mod serve;
mod status;
mod tftp;

pub use fetch::{FetchArgs, FetchDebianArgs, FetchSource, SignatureArgs};
pub use http::HttpArgs;
pub use serve::{
    AddrRange, BootArg, BootMacArg, Optional, ReserveArg, ServeArgs, ServeMode, parse_duration,
};
pub use status::StatusArgs;
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
    /// Show what a running `serve` is doing: interfaces, pools, transfers and recent boots.
    Status(StatusArgs),
    /// Print the manual page, or write one per command into a directory.
    Man(generate::ManArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(generate::CompletionsArgs),
    /// Serve a directory read-only over HTTP/1.1 (GET, HEAD, byte ranges).
    Http(HttpArgs),
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

    #[test]
    fn wait_interface_takes_an_optional_timeout() {
        let wait = |extra: &[&str]| {
            let mut argv = vec!["pocketpxe", "serve", "--interface", "e", "--root", "/"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Serve(args)) => Ok(args.wait_interface),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.kind()),
            }
        };
        use std::time::Duration;
        assert_eq!(wait(&[]), Ok(None));
        assert_eq!(
            wait(&["--wait-interface"]),
            Ok(Some(Duration::from_secs(60)))
        );
        assert_eq!(
            wait(&["--wait-interface=5m"]),
            Ok(Some(Duration::from_secs(300)))
        );
        // Without `=`, the next word is not taken as the timeout.
        assert!(wait(&["--wait-interface", "5m"]).is_err());
        assert!(wait(&["--wait-interface=soon"]).is_err());
    }

    #[test]
    fn man_pages_and_completions_come_from_the_cli() {
        let mut page = Vec::new();
        generate::write_man_page(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(".TH pocketpxe 1"), "{page}");
        assert!(page.contains("serve"), "{page}");
        let dir = std::env::temp_dir().join(format!("pocketpxe-man-{}", std::process::id()));
        generate::write_man_pages(&dir).unwrap();
        let serve = std::fs::read_to_string(dir.join("pocketpxe-serve.1")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(serve.contains("wait\\-interface"), "{serve}");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            generate::write_completions(shell, &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(
                script.contains("wait-interface") && script.contains("pocketpxe"),
                "{shell}: {script}"
            );
        }
    }
}
