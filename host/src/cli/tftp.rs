//! Flags of `pocketpxe tftp`, and the TFTP tuning that `pocketpxe serve` shares.

use crate::serve::tftp::TftpTaskConfig;
use clap::Args;
use pocketpxe_core::tftp::TftpConfig;
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
    /// Concurrent transfers one client IP address may run; further requests from it are
    /// refused (ERROR 0), so one host cannot take every slot. 0: no limit (load tests).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_transfers_per_client: u16,
    /// Transfer limits, negotiation and timing.
    #[command(flatten)]
    pub tuning: TftpTuning,
}

/// The help heading of the TFTP tuning flags.
const TUNING: &str = "TFTP tuning";

/// TFTP tuning flags, the same for `pocketpxe tftp` and `pocketpxe serve`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TftpTuning {
    /// Maximum number of concurrent TFTP transfers; requests beyond it are refused.
    #[arg(long, help_heading = TUNING, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_transfers: u16,
    /// Largest block size granted (RFC 2348, 8-65464). 1468 fits an Ethernet MTU of 1500.
    #[arg(long, help_heading = TUNING, value_name = "BYTES", default_value_t = 1468,
          value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub max_blksize: u16,
    /// Largest window size granted (RFC 7440, 1-65535).
    #[arg(long, help_heading = TUNING, value_name = "BLOCKS", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_windowsize: u16,
    /// Retransmission timeout when the client does not ask for one (RFC 2349: whole seconds,
    /// 1s to 255s).
    #[arg(long, help_heading = TUNING, value_name = "TIME", default_value = "1s",
          value_parser = parse_rfc2349_timeout)]
    pub timeout: u8,
    /// Retransmissions of one packet before a transfer is given up.
    #[arg(long, help_heading = TUNING, value_name = "N", default_value_t = 5)]
    pub retries: u8,
    /// Ignore all RFC 2347 options (plain RFC 1350), for clients that break on them.
    #[arg(long, help_heading = TUNING)]
    pub no_options: bool,
    /// On shutdown, how long running transfers may take to finish (0: abort them at once).
    #[arg(long, help_heading = TUNING, value_name = "TIME", default_value = "5s",
          value_parser = super::parse_duration_or_zero)]
    pub grace: Duration,
}

impl TftpTuning {
    /// The core's protocol settings: the one place they are built from the flags.
    pub fn core_config(&self) -> TftpConfig {
        TftpConfig {
            max_blksize: self.max_blksize,
            max_windowsize: self.max_windowsize,
            timeout: Duration::from_secs(u64::from(self.timeout)),
            max_retries: self.retries,
            options: !self.no_options,
        }
    }

    /// The TFTP task's configuration for serving `root` with a listener on `listen`.
    pub fn task_config(&self, root: PathBuf, listen: SocketAddrV4) -> TftpTaskConfig {
        TftpTaskConfig {
            root,
            listen,
            max_transfers: self.max_transfers,
            core: self.core_config(),
            grace: self.grace(),
        }
    }

    /// The shutdown grace period.
    pub fn grace(&self) -> Duration {
        self.grace
    }
}

/// `--timeout`: a time in whole seconds from 1 to 255, as RFC 2349 sends it.
fn parse_rfc2349_timeout(s: &str) -> Result<u8, String> {
    let time = super::parse_duration(s)?;
    match u8::try_from(time.as_secs()) {
        Ok(secs) if secs >= 1 && time.subsec_nanos() == 0 => Ok(secs),
        _ => Err(format!(
            "'{s}': the TFTP timeout is whole seconds from 1s to 255s (RFC 2349)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser as _;
    use pocketpxe_core::tftp::TftpConfig;
    use std::time::Duration;

    const TUNED: [&str; 13] = [
        "--max-transfers",
        "7",
        "--max-blksize",
        "512",
        "--max-windowsize",
        "8",
        "--timeout",
        "3",
        "--retries",
        "2",
        "--no-options",
        "--grace",
        "9s",
    ];

    fn tuning(argv: &[&str]) -> super::TftpTuning {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Tftp(args) => args.tuning,
            Command::Serve(args) => args.tftp,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_core_defaults() {
        let tftp = tuning(&["pocketpxe", "tftp", "--root", "/srv"]);
        let serve = tuning(&["pocketpxe", "serve", "--interface", "e", "--root", "/srv"]);
        assert_eq!(tftp, serve);
        assert_eq!(tftp.core_config(), TftpConfig::default());
        assert_eq!(tftp.max_transfers, 1024);
        assert_eq!(tftp.grace(), Duration::from_secs(5));
    }

    #[test]
    fn flags_reach_the_core_config_from_both_commands() {
        let want = TftpConfig {
            max_blksize: 512,
            max_windowsize: 8,
            timeout: Duration::from_secs(3),
            max_retries: 2,
            options: false,
        };
        let mut tftp = vec!["pocketpxe", "tftp", "--root", "/srv"];
        tftp.extend(TUNED);
        let mut serve = vec!["pocketpxe", "serve", "--interface", "e", "--root", "/srv"];
        serve.extend(TUNED);
        for argv in [tftp, serve] {
            let tuning = tuning(&argv);
            assert_eq!(tuning.core_config(), want, "{argv:?}");
            let listen = "127.0.0.1:6969".parse().unwrap();
            let task = tuning.task_config("/srv".into(), listen);
            assert_eq!(task.core, want);
            assert_eq!(task.max_transfers, 7);
            assert_eq!(task.grace, Duration::from_secs(9));
            assert_eq!((task.root.to_str(), task.listen), (Some("/srv"), listen));
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for (flag, bad) in [
            ("--max-transfers", "0"),
            ("--max-blksize", "7"),
            ("--max-blksize", "65465"),
            ("--max-windowsize", "0"),
            ("--timeout", "0"),
            ("--timeout", "256"),
            ("--timeout", "1500ms"),
            ("--timeout", "infinite"),
            ("--grace", "infinite"),
            ("--retries", "256"),
        ] {
            for mut argv in [
                vec!["pocketpxe", "tftp", "--root", "/srv"],
                vec!["pocketpxe", "serve", "--interface", "e", "--root", "/srv"],
            ] {
                argv.extend([flag, bad]);
                let err = Cli::try_parse_from(&argv).unwrap_err().to_string();
                assert!(err.contains(flag), "{argv:?}: {err}");
            }
        }
    }
}
