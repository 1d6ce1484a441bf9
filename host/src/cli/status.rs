//! Flags of `pocketpxe status`.

use clap::Args;
use std::path::PathBuf;

/// Flags of `pocketpxe status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The daemon's status socket (`serve --status-socket`). Default: every daemon of this
    /// network namespace (/run/pocketpxe/netns-INODE/status-*.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the daemon's JSON as it sends it (one document per line and daemon).
    #[arg(long)]
    pub json: bool,
}
