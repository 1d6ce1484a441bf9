//! The servers the scenarios run: `pocketpxe serve`, and dnsmasq (the reference the harness
//! was validated against, and the proxy scenario's address-giving DHCP server).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::netns::{Netns, SERVER_IF};
use crate::process::Proc;

/// Addresses the servers lease on the LAN.
pub const POOL_START: &str = "192.168.242.100";
/// Last address of the pool.
pub const POOL_END: &str = "192.168.242.150";

/// How long a server may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The `pocketpxe` binary of this workspace, built if needed.
///
/// `POCKETPXE_BIN` overrides. Otherwise the binary sits in this test binary's profile directory
/// (`target/<profile>/pocketpxe`, also with `CARGO_TARGET_DIR`). When it is missing or older
/// than any source of `host/` or `core/` (so not after `cargo test --workspace`, which builds it
/// for host's own tests), `cargo build -p pocketpxe` runs once first; `cargo test` has released
/// its build lock by the time tests run.
///
/// # Errors
/// When the binary cannot be built or found.
pub fn pocketpxe_bin() -> crate::Result<PathBuf> {
    static BIN: OnceLock<crate::Result<PathBuf>> = OnceLock::new();
    BIN.get_or_init(locate_and_build).clone()
}

fn locate_and_build() -> crate::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("POCKETPXE_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let bin = profile_dir.join("pocketpxe");
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| format!("no target dir above {}", profile_dir.display()))?;
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| "no workspace dir".to_owned())?;
    if is_fresh(&bin, workspace) {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--quiet", "-p", "pocketpxe", "--bin", "pocketpxe"])
        .arg("--target-dir")
        .arg(target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    match crate::process::run(cmd, Duration::from_secs(900)) {
        Ok(_) => {}
        Err(e) if bin.exists() => {
            eprintln!(
                "warning: could not rebuild pocketpxe, using {}: {e}",
                bin.display()
            );
        }
        Err(e) => return Err(format!("building pocketpxe failed: {e}")),
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} missing after cargo build", bin.display()))
    }
}

/// Whether `bin` exists and is newer than every file the pocketpxe binary is built from.
fn is_fresh(bin: &Path, workspace: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let sources = ["host", "core", "Cargo.lock", "Cargo.toml"].map(|p| workspace.join(p));
    sources
        .iter()
        .all(|p| newest(p).is_some_and(|newest| newest <= built))
}

/// The newest modification time under `path` (a file or a directory tree; `target` excluded).
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = path.metadata().ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if entry.file_name() == "target" {
                continue;
            }
            newest = newest.max(newest_or_epoch(&entry.path()));
        }
    }
    Some(newest)
}

fn newest_or_epoch(path: &Path) -> std::time::SystemTime {
    newest(path).unwrap_or(std::time::UNIX_EPOCH)
}

/// `pocketpxe serve` on the lab's [`SERVER_IF`].
#[derive(Debug, Clone)]
pub struct Serve {
    /// The TFTP root.
    pub root: PathBuf,
    /// `dhcp` (authoritative, default) or `proxy`.
    pub mode: &'static str,
    /// `CLASS=PATH` boot rules.
    pub boot: Vec<String>,
    /// The lease file (dhcp mode).
    pub leases: PathBuf,
    /// Any further flags (`--nat`, `--uplink wan0`, `--address …`).
    pub extra: Vec<String>,
    /// Mounted over `/run/pocketpxe` for the server (see [`Serve::start`]).
    pub run_dir: PathBuf,
    /// How long the server may take to become ready (longer with `--debian`, which fetches).
    pub ready_timeout: Duration,
}

impl Serve {
    /// Authoritative DHCP + TFTP from `root`, pool [`POOL_START`]-[`POOL_END`]; the lease
    /// file and pocketpxe's `/run/pocketpxe` state live in `dir`.
    pub fn new(root: &Path, dir: &Path) -> Self {
        Self {
            root: root.to_owned(),
            mode: "dhcp",
            boot: Vec::new(),
            leases: dir.join("leases"),
            extra: Vec::new(),
            run_dir: dir.join("run-pocketpxe"),
            ready_timeout: READY_TIMEOUT,
        }
    }

    /// proxyDHCP mode.
    pub fn proxy(mut self) -> Self {
        self.mode = "proxy";
        self
    }

    /// Adds flags.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.extra.extend(flags.iter().map(|f| (*f).to_owned()));
        self
    }

    /// Adds a `--boot CLASS=PATH` rule.
    pub fn boot(mut self, class: &str, path: &str) -> Self {
        self.boot.push(format!("{class}={path}"));
        self
    }

    /// The command-line arguments after the binary.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "serve".to_owned(),
            "--interface".into(),
            SERVER_IF.into(),
            "--root".into(),
            self.root.display().to_string(),
            "--mode".into(),
            self.mode.into(),
        ];
        if self.mode == "dhcp" {
            args.push("--range".into());
            args.push(format!("{POOL_START}-{POOL_END}"));
            args.push("--leases".into());
            args.push(self.leases.display().to_string());
        }
        for b in &self.boot {
            args.push("--boot".into());
            args.push(b.clone());
        }
        args.extend(self.extra.iter().cloned());
        // The tests run as root and keep their state in their own directories: serve as root
        // unless a test names a user (by default `serve` drops to the user `pocketpxe`).
        if !self.extra.iter().any(|a| a.starts_with("--user")) {
            args.push("--user".into());
            args.push("root".into());
        }
        args
    }

    /// Starts the server in `ns`, logging to `log`, and waits until DHCP and TFTP say they are
    /// ready.
    ///
    /// pocketpxe keeps NAT state in `/run/pocketpxe`, a path every network namespace shares,
    /// while the nftables table and `ip_forward` it records belong to one namespace. So the
    /// server runs in a private mount namespace with a tmpfs on `/run` and [`Serve::run_dir`]
    /// bound on `/run/pocketpxe`: a test's state never reaches the machine's `/run`, and a
    /// restart in the same test sees what the previous run left. The PID stays the server's
    /// (`ip netns exec`, `unshare` and `sh` all exec in place).
    ///
    /// # Errors
    /// When it cannot be built or started, or does not get ready (the report has its log).
    pub fn start(&self, ns: &Netns, log: &Path) -> crate::Result<Proc> {
        let bin = pocketpxe_bin()?;
        std::fs::create_dir_all(&self.run_dir)
            .map_err(|e| format!("mkdir {}: {e}", self.run_dir.display()))?;
        let mut cmd = ns.command("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs e2e-run /run && mkdir /run/pocketpxe && \
             mount --bind \"$0\" /run/pocketpxe && exec \"$@\"",
        ])
        .arg(&self.run_dir)
        .arg(&bin)
        .args(self.args())
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
        let mut proc = Proc::spawn("pocketpxe serve", cmd, log)?;
        proc.wait_for_log("DHCP server ready", self.ready_timeout)?;
        proc.wait_for_log("TFTP server ready", self.ready_timeout)?;
        Ok(proc)
    }
}

/// dnsmasq as a complete boot server (DHCP + TFTP), the way the captures were recorded:
/// BIOS clients get pxelinux, x64 UEFI clients (arch 7 or 9) get shim.
pub fn dnsmasq_boot_server(root: &Path) -> Vec<String> {
    let mut args = dnsmasq_common();
    args.extend([
        format!("--dhcp-range={POOL_START},{POOL_END},1h"),
        "--enable-tftp".into(),
        format!("--tftp-root={}", root.display()),
        "--dhcp-match=set:efi64,option:client-arch,7".into(),
        "--dhcp-match=set:efi64,option:client-arch,9".into(),
        // shim needs the boot file in the BOOTP header's `file` field, not only option 67.
        "--dhcp-no-override".into(),
        format!("--dhcp-boot=tag:efi64,{}", crate::tftp_root::SHIM),
        format!("--dhcp-boot=tag:!efi64,{}", crate::tftp_root::PXELINUX),
    ]);
    args
}

/// dnsmasq handing out addresses only (no boot options, no TFTP): the "existing DHCP server"
/// of the proxy scenario. Runs on the LAN bridge.
pub fn dnsmasq_address_only(interface: &str, start: &str, end: &str) -> Vec<String> {
    let mut args = dnsmasq_common();
    if let Some(i) = args.iter().position(|a| a.starts_with("--interface=")) {
        args[i] = format!("--interface={interface}");
    }
    args.push(format!("--dhcp-range={start},{end},1h"));
    args
}

/// Starts dnsmasq with `args` in `ns` and waits for it to bind.
///
/// # Errors
/// When it cannot be started or exits early (the report has its log).
pub fn start_dnsmasq(ns: &Netns, args: &[String], log: &Path) -> crate::Result<Proc> {
    let mut cmd = ns.command("dnsmasq");
    cmd.args(args);
    let mut proc = Proc::spawn("dnsmasq", cmd, log)?;
    proc.wait_for_log("DHCP, ", READY_TIMEOUT)?;
    Ok(proc)
}

fn dnsmasq_common() -> Vec<String> {
    [
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        "--pid-file",
        "--leasefile-ro",
        "--log-dhcp",
        "--no-ping",
        "--bind-interfaces",
        "--dhcp-authoritative",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("--interface={SERVER_IF}")])
    .collect()
}

/// Which implementation serves the scenario: `POCKETPXE_E2E_SERVER=dnsmasq` switches the boot
/// server of the BIOS, UEFI and NAT scenarios to dnsmasq, the reference the harness was
/// validated against (to tell a harness problem from a pocketpxe one). The proxy and fault
/// scenarios test pocketpxe's own behaviour and always run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// `pocketpxe serve` (the default).
    Pocketpxe,
    /// dnsmasq.
    Dnsmasq,
}

impl Impl {
    /// From `POCKETPXE_E2E_SERVER` (`pocketpxe` when unset).
    ///
    /// # Panics
    /// On an unknown value.
    pub fn from_env() -> Self {
        match std::env::var("POCKETPXE_E2E_SERVER").as_deref() {
            Err(_) | Ok("" | "pocketpxe") => Self::Pocketpxe,
            Ok("dnsmasq") => Self::Dnsmasq,
            Ok(other) => panic!("POCKETPXE_E2E_SERVER={other}: expected pocketpxe or dnsmasq"),
        }
    }
}

/// Starts a full boot server (DHCP + TFTP, BIOS → pxelinux, x64 UEFI → shim) from `root` in
/// `ns`, with the implementation chosen by [`Impl::from_env`]; logs and leases go to `dir`.
///
/// # Errors
/// When the server does not start.
pub fn start_boot_server(ns: &Netns, root: &Path, dir: &Path) -> crate::Result<Proc> {
    match Impl::from_env() {
        Impl::Dnsmasq => start_dnsmasq(ns, &dnsmasq_boot_server(root), &dir.join("dnsmasq.log")),
        Impl::Pocketpxe => Serve::new(root, dir)
            .boot("bios", crate::tftp_root::PXELINUX)
            .boot("efi-x64", crate::tftp_root::SHIM)
            .start(ns, &dir.join("pocketpxe.log")),
    }
}
