//! Command-line interface: `pocketpxe <subcommand> [flags]`.

mod duration;
mod fetch;
pub mod generate;
mod http;
mod serve;
mod status;
mod tftp;

pub use duration::{INFINITE_LEASE, parse_duration, parse_duration_or_zero, parse_lease_time};
pub use fetch::{FetchArgs, FetchDebianArgs, FetchLiveArgs, FetchSource, SignatureArgs};
pub use http::HttpArgs;
pub use serve::{
    AddrRange, BootArg, BootMacArg, OnOff, Optional, RelaySubnetArg, ReserveArg, ServeArgs,
    ServeMode, Via,
};
pub(crate) use serve::{RPI_PER_MAC, boot_file};
pub use status::StatusArgs;
pub use tftp::{TftpArgs, TftpTuning};

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Parses the command line like `Cli::try_parse_from`, and notes which `serve` flags were
/// given on it ([`ServeArgs::explicit`]): those override the config file.
///
/// # Errors
/// clap's error for a bad command line.
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut matches = Cli::command().try_get_matches_from(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Serve(args), Some((_, sub))) = (&mut cli.command, matches.remove_subcommand())
    {
        args.explicit = sub
            .ids()
            .filter(|id| {
                sub.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
            })
            .map(|id| id.as_str().to_owned())
            .collect();
    }
    Ok(cli)
}

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
    #[command(after_help = TFTP_EXAMPLES)]
    Tftp(TftpArgs),
    /// Boot machines on one or more interfaces: DHCP (or proxyDHCP) plus TFTP.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Check a config file without binding or touching anything; print what it would serve.
    CheckConfig(CheckConfigArgs),
    /// Load-test a server: many concurrent clients from one process.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Download, verify and unpack a network installer, and write its boot menus.
    #[command(after_help = FETCH_EXAMPLES)]
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

const SERVE_EXAMPLES: &str = "\
Examples:
  Boot machines on a lab switch at eth1, handing out addresses (BIOS and UEFI):
    pocketpxe serve --interface eth1 --address 192.168.242.1/24 --root /srv/tftp \\
      --boot bios=pxelinux.0 --boot efi-x64=bootnetx64.efi
  Next to an existing DHCP server (proxyDHCP), with Debian's installer fetched on first start:
    pocketpxe serve --interface eth0 --mode proxy --root /srv/tftp --debian bookworm
  Everything from a config file (several interfaces, reservations; see docs/config.md):
    pocketpxe serve --config /etc/pocketpxe/pocketpxe.toml
  One machine gets its own boot file and a fixed address, leases for a day:
    pocketpxe serve --interface eth1 --root /srv/tftp --lease-time 1d \\
      --boot-mac 52:54:00:12:34:56=test.0 --reserve 52:54:00:12:34:56=192.168.242.50";

const TFTP_EXAMPLES: &str = "\
Examples:
  Serve /srv/tftp on port 69 of every interface:
    pocketpxe tftp --root /srv/tftp
  An unprivileged port on loopback, JSON logs:
    pocketpxe tftp --root ./boot --listen 127.0.0.1:6969 --log-format json";

const FETCH_EXAMPLES: &str = "\
Examples:
  Debian bookworm for amd64 into /srv/tftp, then print the serve command that boots it:
    pocketpxe fetch debian
  trixie for arm64 with a serial console, into another root:
    pocketpxe fetch debian --dist trixie --arch arm64 --console ttyS0,115200 --root /srv/arm";

/// Flags of `pocketpxe check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The config file [default: /etc/pocketpxe/pocketpxe.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What `pocketpxe bench` can load.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Many concurrent TFTP downloads against any TFTP server; prints throughput, latency
    /// percentiles, retransmissions, failures and corrupt downloads.
    Tftp(crate::bench::BenchTftpArgs),
}

/// The help heading of the logging flags, which every subcommand lists last.
const LOGGING: &str = "Logging";

/// Logging flags, shared by all subcommands.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// More logging (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, help_heading = LOGGING, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (warnings and errors only).
    #[arg(short, long, global = true, help_heading = LOGGING, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format (docs/logging.md).
    #[arg(long, global = true, help_heading = LOGGING, value_name = "FORMAT", value_enum,
          default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Timestamp, level, target, fields (under journald: priority prefix, no timestamp).
    #[value(alias = "full", alias = "compact")]
    Text,
    /// One JSON object per line: timestamp, level, target, fields.
    Json,
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
    fn log_formats_and_their_old_names() {
        let format = |name: &str| {
            Cli::try_parse_from(["pocketpxe", "tftp", "--root", "/", "--log-format", name])
                .map(|cli| cli.log.log_format)
                .map_err(|e| e.kind())
        };
        assert_eq!(format("text"), Ok(LogFormat::Text));
        assert_eq!(format("full"), Ok(LogFormat::Text));
        assert_eq!(format("compact"), Ok(LogFormat::Text));
        assert_eq!(format("json"), Ok(LogFormat::Json));
        assert!(format("xml").is_err());
        let cli = Cli::try_parse_from(["pocketpxe", "tftp", "--root", "/"]).unwrap();
        assert_eq!(cli.log.log_format, LogFormat::Text);
    }

    /// Every example in the help parses (continued lines joined).
    #[test]
    fn help_examples_parse() {
        let mut count = 0;
        for examples in [SERVE_EXAMPLES, TFTP_EXAMPLES, FETCH_EXAMPLES] {
            let joined = examples.replace("\\\n", " ");
            for line in joined.lines().map(str::trim) {
                if let Some(rest) = line.strip_prefix("pocketpxe ") {
                    let argv = std::iter::once("pocketpxe").chain(rest.split_whitespace());
                    if let Err(e) = Cli::try_parse_from(argv) {
                        panic!("{line}: {e}");
                    }
                    count += 1;
                }
            }
        }
        assert_eq!(count, 8);
        let mut cli = Cli::command();
        // Global flags reach the subcommands when the command is built.
        cli.build();
        let help = cli
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        let logging = help.find("\nLogging:\n").expect("a Logging heading");
        let flags = help.split("\nExamples:\n").next().unwrap_or_default();
        let last_heading = flags
            .lines()
            .rfind(|l| l.ends_with(':') && !l.starts_with(' '));
        assert_eq!(last_heading, Some("Logging:"), "{help}");
        assert!(help[..logging].contains("\nDHCP (dhcp mode):\n"), "{help}");
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
