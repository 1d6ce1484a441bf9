//! `pocketpxe`: the command-line entry point. Parses flags, sets up logging, runs a task.

use anyhow::Context as _;
use clap::Parser as _;
use pocketpxe::cli::{BenchCommand, Cli, Command, HttpArgs, LogArgs, LogFormat, TftpArgs};
use pocketpxe::serve::tftp::TftpService;
use pocketpxe::sys::shutdown::Signals;
use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    init_logging(&cli.log);
    // One thread for the daemons (their loops are single-threaded by design); the load tool
    // may ask for more.
    let threads = match &cli.command {
        Command::Bench(BenchCommand::Tftp(args)) => usize::from(args.threads),
        _ => 1,
    };
    let mut builder = if threads > 1 {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            report(format_args!("error: cannot start the async runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Tftp(args) => runtime.block_on(tftp(args)),
        Command::Http(args) => runtime.block_on(http(args)),
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Bench(BenchCommand::Tftp(args)) => runtime.block_on(bench_tftp(args)),
        Command::Fetch(args) => fetch(args),
        Command::Status(args) => status(&args),
        Command::Man(args) => man(&args),
        Command::Completions(args) => {
            pocketpxe::cli::generate::write_completions(args.shell, &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(format_args!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn bench_tftp(args: pocketpxe::bench::BenchTftpArgs) -> anyhow::Result<()> {
    let json = args.json;
    let summary = pocketpxe::bench::run_bench_tftp(args).await?;
    let text = if json {
        summary.to_json()
    } else {
        summary.to_text()
    };
    // Like the log: a closed stdout costs the output, not the process.
    let _ = writeln!(std::io::stdout(), "{text}");
    if summary.failed + summary.corrupt > 0 {
        anyhow::bail!(
            "{} failed and {} corrupt downloads",
            summary.failed,
            summary.corrupt
        );
    }
    Ok(())
}

async fn tftp(args: TftpArgs) -> anyhow::Result<()> {
    let cfg = args.tuning.task_config(args.root.clone(), args.listen);
    let per_client = (args.max_transfers_per_client > 0).then_some(args.max_transfers_per_client);
    let service = TftpService::bind(cfg)?.max_transfers_per_client(per_client);
    let signals = Signals::install().context("cannot install signal handlers")?;
    let (trigger, shutdown) = pocketpxe::sys::shutdown::channel();
    let signals = tokio::spawn(signals.trigger_on_signal(trigger, None));
    let result = service.run(shutdown).await.context("TFTP server failed");
    signals.abort();
    result
}

async fn http(args: HttpArgs) -> anyhow::Result<()> {
    let service = pocketpxe::serve::http::HttpService::bind(&args.root, args.listen)?
        .grace(std::time::Duration::from_secs(args.grace));
    let signals = Signals::install().context("cannot install signal handlers")?;
    let (trigger, shutdown) = pocketpxe::sys::shutdown::channel();
    let signals = tokio::spawn(signals.trigger_on_signal(trigger, None));
    let result = service.run(shutdown).await.context("HTTP server failed");
    signals.abort();
    result
}

async fn serve(args: pocketpxe::cli::ServeArgs) -> anyhow::Result<()> {
    // Everything is checked and bound before the signal handlers go in and "ready" is logged.
    let serve = pocketpxe::serve::Serve::prepare(&args)?;
    let signals = Signals::install().context("cannot install signal handlers")?;
    let (trigger, shutdown) = pocketpxe::sys::shutdown::channel();
    let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    let signals = tokio::spawn(signals.trigger_on_signal(trigger, Some(reload_tx)));
    // Flags only: a reload reads the same flags again (nothing changes, but it is checked).
    let reloader: pocketpxe::serve::reload::Reloader =
        Box::new(move || Ok(pocketpxe::serve::flag_rules(&args)));
    let result = serve.run(shutdown, reloads, reloader).await;
    signals.abort();
    Ok(result?)
}

fn status(args: &pocketpxe::cli::StatusArgs) -> anyhow::Result<()> {
    use pocketpxe::serve::status;
    let sockets = match &args.socket {
        Some(path) => vec![path.clone()],
        None => status::default_sockets()?,
    };
    let mut out = std::io::stdout().lock();
    for path in sockets {
        let report = status::query(&path)?;
        let text = if args.json {
            serde_json::to_string(&report)?
        } else {
            status::render(&report)
        };
        let _ = writeln!(out, "{}", text.trim_end());
    }
    Ok(())
}

fn fetch(args: pocketpxe::cli::FetchArgs) -> anyhow::Result<()> {
    use pocketpxe::cli::FetchSource;
    use pocketpxe::fetch::menus::MenuWrite;
    use pocketpxe::fetch::{FetchAction, FetchMode, FetchRequest};
    let FetchSource::Debian(args) = args.source;
    let req = FetchRequest {
        dist: args.dist,
        arch: args.arch,
        mirror: args.mirror,
        root: args.root,
        console: args.console,
        tftp_server: args.tftp_server,
        mode: FetchMode::Check,
        verification: args.signature.verification(),
    };
    let report = pocketpxe::fetch::fetch_debian(&req)?;
    let what = format!("debian {} {}", req.dist, req.arch);
    match report.action {
        FetchAction::AlreadyPresent => tracing::info!(
            sha256 = %report.sha256,
            "{what}: already fetched and verified in {}, nothing to download",
            req.root.display()
        ),
        FetchAction::Downloaded { bytes } => tracing::info!(
            sha256 = %report.sha256,
            bytes,
            "{what}: verified and unpacked into {}",
            req.root.display()
        ),
    }
    for (file, outcome) in &report.menus {
        let path = req.root.join(file);
        match outcome {
            MenuWrite::Created => tracing::info!("wrote boot menu {}", path.display()),
            MenuWrite::Replaced => tracing::info!("updated boot menu {}", path.display()),
            MenuWrite::Unchanged => tracing::debug!("boot menu {} is up to date", path.display()),
            MenuWrite::KeptHandEdited => tracing::warn!(
                "left boot menu {} alone: it was edited by hand (no pocketpxe marker line); delete it to get a generated one",
                path.display()
            ),
        }
    }
    Ok(())
}

fn man(args: &pocketpxe::cli::generate::ManArgs) -> anyhow::Result<()> {
    use pocketpxe::cli::generate::{write_man_page, write_man_pages};
    match &args.dir {
        Some(dir) => write_man_pages(dir)
            .with_context(|| format!("cannot write the manual pages into {}", dir.display())),
        None => write_man_page(&mut std::io::stdout()).context("cannot write the manual page"),
    }
}

/// Prints a command-line error as one line (help and version go to stdout as usual).
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's first paragraph, on one line (it lists missing arguments on lines of their own).
    let rendered = err.render().to_string();
    let line = rendered
        .lines()
        .skip_while(|line| line.trim().is_empty())
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let line = if line.is_empty() {
        "error: invalid command line"
    } else {
        &line
    };
    report(format_args!("{line} (see pocketpxe --help)"));
    ExitCode::from(2)
}

/// One line on stderr; a closed stderr loses it, nothing more (`eprintln!` would panic).
fn report(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn init_logging(args: &LogArgs) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(args.default_filter()));
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| LogWriter)
        // Its report of a failed write would go to the same stderr, through `eprintln!`.
        .log_internal_errors(false);
    match args.log_format {
        LogFormat::Full => builder.init(),
        LogFormat::Compact => builder.compact().init(),
    }
}

/// The log's stderr, where a failed write is dropped: once stderr is a pipe whose reader is
/// gone (`pocketpxe serve ... 2>&1 | head -1`), writes fail with `EPIPE` (SIGPIPE is ignored),
/// and the daemon must go on serving, and clean up when it stops, without its log.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
