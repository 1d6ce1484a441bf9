//! `pocketpxe`: the command-line entry point. Parses flags, sets up logging, runs a task.

use anyhow::Context as _;
use pocketpxe::cli::{BenchCommand, Command, HttpArgs, TftpArgs};
use pocketpxe::serve::tftp::TftpService;
use pocketpxe::sys::shutdown::Signals;
use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match pocketpxe::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    pocketpxe::logging::init(&cli.log);
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
        Command::CheckConfig(args) => check_config(&args),
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
    use pocketpxe::config::{DEFAULT_PATH, resolve};
    let resolved = resolve(&args, std::path::Path::new(DEFAULT_PATH))?;
    if let Some(file) = &resolved.file {
        tracing::info!(config = %file.display(), interfaces = resolved.interfaces.len(),
            "config file read");
    }
    // Everything is checked and bound before the signal handlers go in and "ready" is logged.
    let serve = pocketpxe::serve::Serve::prepare_all(&resolved.interfaces)?;
    let signals = Signals::install().context("cannot install signal handlers")?;
    let (trigger, shutdown) = pocketpxe::sys::shutdown::channel();
    let (reload_tx, reloads) = tokio::sync::mpsc::channel(1);
    let signals = tokio::spawn(signals.trigger_on_signal(trigger, Some(reload_tx)));
    // A reload reads the same config file again with the same flags over it (flags alone:
    // nothing changes, but it is checked).
    let reloader = pocketpxe::config::reloader(&args, resolved.file, resolved.interfaces);
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

/// `check-config`: the file resolved as `serve` would, without a flag; one line per interface.
fn check_config(args: &pocketpxe::cli::CheckConfigArgs) -> anyhow::Result<()> {
    use pocketpxe::cli::Command;
    use pocketpxe::config::{DEFAULT_PATH, describe, resolve};
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_PATH));
    let path_arg = path.as_os_str().to_owned();
    let cli = pocketpxe::cli::parse_from([
        "pocketpxe".into(),
        "serve".into(),
        "--config".into(),
        path_arg,
    ])
    .context("cannot build the default serve flags")?;
    let Command::Serve(serve) = cli.command else {
        anyhow::bail!("cannot build the default serve flags");
    };
    let resolved = resolve(&serve, std::path::Path::new(DEFAULT_PATH))?;
    let mut out = std::io::stdout().lock();
    for iface in &resolved.interfaces {
        let root = iface.tftp_root();
        if !root.is_dir() {
            tracing::warn!(
                "interface {}: the TFTP root {} is not a directory here (serve will refuse to start without it)",
                iface.iface(),
                root.display()
            );
        }
        let _ = writeln!(out, "{}", describe(iface));
    }
    let _ = writeln!(
        out,
        "{}: ok ({} interface{})",
        path.display(),
        resolved.interfaces.len(),
        if resolved.interfaces.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    Ok(())
}

fn fetch(args: pocketpxe::cli::FetchArgs) -> anyhow::Result<()> {
    use pocketpxe::cli::FetchSource;
    use pocketpxe::fetch::menus::{Arch, MenuWrite};
    use pocketpxe::fetch::{FetchAction, FetchMode, FetchRequest};
    let args = match args.source {
        FetchSource::Debian(args) => args,
        FetchSource::Live(args) => return fetch_live(args),
    };
    for arch in args.arch.as_slice() {
        let req = FetchRequest {
            dist: args.dist.clone(),
            arch: *arch,
            mirror: args.mirror.clone(),
            root: args.root.clone(),
            console: args.console.clone(),
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
                MenuWrite::Unchanged => {
                    tracing::debug!("boot menu {} is up to date", path.display())
                }
                MenuWrite::KeptHandEdited => tracing::warn!(
                    "left boot menu {} alone: it was edited by hand (no pocketpxe marker line); delete it to get a generated one",
                    path.display()
                ),
            }
        }
    }
    if args.arch.contains(Arch::Amd64) {
        let package = std::path::Path::new(pocketpxe::fetch::ipxe::PACKAGE_DIR);
        pocketpxe::fetch::ipxe::log_install(
            &args.root,
            &pocketpxe::fetch::ipxe::install_ipxe(&args.root, package)?,
        );
    }
    // The result goes to stdout (the log is on stderr): how to boot what was fetched.
    let _ = writeln!(
        std::io::stdout(),
        "To boot it (IFACE: the interface facing the machines):\n  {}",
        pocketpxe::fetch::serve_command(&args.root, args.arch.as_slice(), args.tftp_server)
    );
    Ok(())
}

fn fetch_live(args: pocketpxe::cli::FetchLiveArgs) -> anyhow::Result<()> {
    use pocketpxe::fetch::live::{LiveRequest, fetch_live, serve_flags};
    let req = LiveRequest {
        url: args.url,
        name: args.name,
        root: args.root,
        dest: args.dest,
        verification: pocketpxe::fetch::Verification::from_flags(
            args.keyring,
            args.no_verify_signature,
        ),
    };
    let report = fetch_live(&req)?;
    for (file, sha256, bytes) in &report.files {
        if *bytes == 0 {
            tracing::info!(%sha256, "{}: already there and verified", file);
        } else {
            tracing::info!(%sha256, bytes, "{}: downloaded and verified", file);
        }
    }
    tracing::info!(set = report.set, verified = report.verified, root = %req.root.display(),
        "live set ready");
    let dest = req.dest.trim_matches('/');
    let _ = writeln!(
        std::io::stdout(),
        "To boot it diskless (IFACE: the interface facing the machines):\n  pocketpxe serve \
         --interface IFACE --root {} {}",
        req.root.display(),
        serve_flags(dest)
    );
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

/// Prints a command-line error as clap renders it (with its suggestions and the usage line;
/// colours only on a terminal), or help and version on stdout, and gives clap's exit code.
fn usage_error(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// One error line on stderr (under journald with the error priority, `<3>`); a closed stderr
/// loses it, nothing more (`eprintln!` would panic).
fn report(line: std::fmt::Arguments<'_>) {
    let prefix = if pocketpxe::logging::under_journald() {
        "<3>"
    } else {
        ""
    };
    let _ = writeln!(std::io::stderr(), "{prefix}{line}");
}
