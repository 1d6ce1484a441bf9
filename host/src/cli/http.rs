//! Flags of `pocketpxe http`.

use clap::Args;
use std::net::SocketAddrV4;
use std::path::PathBuf;

/// Flags of `pocketpxe http`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Directory to serve, read-only. Nothing outside it is reachable, not even via symlinks.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// IPv4 address and TCP port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:80")]
    pub listen: SocketAddrV4,
    /// On shutdown, how long responses under way may take to finish, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub grace: u64,
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn defaults_and_flags() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Http(args)) => Ok(args),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let args = parse(&["pocketpxe", "http", "--root", "/srv"]).unwrap();
        assert_eq!(args.listen.to_string(), "0.0.0.0:80");
        assert_eq!((args.root.to_str(), args.grace), (Some("/srv"), 5));
        let args = parse(&[
            "pocketpxe",
            "http",
            "--root",
            "/srv",
            "--listen",
            "127.0.0.1:8080",
            "--grace",
            "0",
        ])
        .unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.grace, 0);
        assert!(parse(&["pocketpxe", "http"]).is_err());
        assert!(parse(&["pocketpxe", "http", "--root", "/", "--listen", "[::1]:80"]).is_err());
    }
}
