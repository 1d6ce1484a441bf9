//! `pocketpxe man` and `pocketpxe completions`: manual pages and shell completions, generated
//! from the same clap definitions that parse the command line, so they cannot drift from it.

use clap::{Args, CommandFactory as _};
use std::io;
use std::path::{Path, PathBuf};

/// Flags of `pocketpxe man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write one page per command (`pocketpxe.1`, `pocketpxe-serve.1`, …) into this
    /// directory instead of printing `pocketpxe.1` to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Flags of `pocketpxe completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the page of the top-level command (roff, section 1) to `out`.
///
/// # Errors
/// A failed write.
pub fn write_man_page(out: &mut dyn io::Write) -> io::Result<()> {
    clap_mangen::Man::new(super::Cli::command()).render(out)
}

/// Writes `pocketpxe.1` and one `pocketpxe-SUBCOMMAND.1` per subcommand into `dir` (created
/// if missing).
///
/// # Errors
/// A failed create or write.
pub fn write_man_pages(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(super::Cli::command(), dir)
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn io::Write) {
    clap_complete::generate(shell, &mut super::Cli::command(), "pocketpxe", out);
}
