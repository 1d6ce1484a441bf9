//! Network namespaces and the lab topology.
//!
//! ```text
//!   upstream ns (optional)        server ns                       LAN ns
//!   ┌───────────────────┐        ┌──────────────────────┐        ┌──────────────────────────┐
//!   │ eth0 10.99.0.2/24 ├─veth───┤ wan0 10.99.0.1/24    │        │ br0 ── lan0 (veth end)   │
//!   │ (no route back to │        │ lan0 192.168.242.1/24├─veth───┤     ── tap0, tap1 (QEMU) │
//!   │  192.168.242.0/24)│        │ pocketpxe / dnsmasq  │        │ (.254: the proxy test's  │
//!   └───────────────────┘        └──────────────────────┘        │  own DHCP server)        │
//!                                                                └──────────────────────────┘
//! ```
//! Namespaces are named `ppxe-e2e-<pid>-<n>-<role>`. Dropping a [`Netns`] deletes it, which
//! destroys the veths, the bridge and the taps inside it (stop the processes inside first: a
//! process keeps its namespace alive). [`remove_stale`] deletes namespaces left by test
//! processes that no longer exist (a test run killed with SIGKILL cannot clean up).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::run;

/// The server's interface towards the LAN (in the server namespace).
pub const SERVER_IF: &str = "lan0";
/// The server's address on the LAN.
pub const SERVER_IP: &str = "192.168.242.1";
/// The LAN prefix length.
pub const PREFIX: u8 = 24;
/// The bridge in the LAN namespace.
pub const BRIDGE: &str = "br0";
/// The server's uplink interface (in the server namespace), when there is an upstream.
pub const UPLINK_IF: &str = "wan0";
/// The server's uplink address.
pub const UPLINK_IP: &str = "10.99.0.1";
/// The upstream host's address; it has no route to the LAN.
pub const UPSTREAM_IP: &str = "10.99.0.2";

const PREFIX_NAME: &str = "ppxe-e2e-";
const NETNS_DIR: &str = "/run/netns";
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` and brings its loopback up.
    ///
    /// # Errors
    /// When `ip netns add` fails.
    pub fn create(name: &str) -> crate::Result<Self> {
        ip(&["netns", "add", name])?;
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> args…`.
    ///
    /// # Errors
    /// When the command fails; the report includes its stderr.
    pub fn ip(&self, args: &[&str]) -> crate::Result<String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`, which execs the
    /// program in place: the child's PID is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs a short command inside the namespace and returns its stdout.
    ///
    /// # Errors
    /// When it fails or takes longer than `timeout`.
    pub fn run(&self, program: &str, args: &[&str], timeout: Duration) -> crate::Result<String> {
        let mut cmd = self.command(program);
        cmd.args(args);
        run(cmd, timeout)
    }

    /// Sets a sysctl inside the namespace (`net.*` sysctls are per namespace).
    ///
    /// # Errors
    /// When `sysctl` fails.
    pub fn sysctl(&self, key: &str, value: &str) -> crate::Result<()> {
        self.run(
            "sysctl",
            &["-q", "-w", &format!("{key}={value}")],
            IP_TIMEOUT,
        )
        .map(drop)
    }

    /// The IPv4 addresses (CIDR) configured on `iface`.
    ///
    /// # Errors
    /// When `ip addr` fails.
    pub fn addresses(&self, iface: &str) -> crate::Result<Vec<String>> {
        let out = self.ip(&["-4", "-o", "addr", "show", "dev", iface])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.position(|w| w == "inet")?;
                it.next().map(str::to_owned)
            })
            .collect())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// The topology of one scenario (see the module docs). Drop it after the processes in it.
#[derive(Debug)]
pub struct Lab {
    /// Where the boot server runs.
    pub server: Netns,
    /// The bridge and the VMs' taps; QEMU runs here.
    pub lan: Netns,
    /// The "internet" behind the server, when [`Lab::add_upstream`] was called.
    pub upstream: Option<Netns>,
    taps: u32,
}

impl Lab {
    /// Builds the server and LAN namespaces, the bridge and the veth between them, and gives
    /// the server [`SERVER_IP`] on [`SERVER_IF`] unless `server_address` is false (for a server
    /// that adds its address itself).
    ///
    /// # Errors
    /// When an `ip` command fails; whatever was built is torn down again.
    pub fn new(server_address: bool) -> crate::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let base = format!(
            "{PREFIX_NAME}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let server = Netns::create(&format!("{base}-srv"))?;
        let lan = Netns::create(&format!("{base}-lan"))?;
        let lab = Self {
            server,
            lan,
            upstream: None,
            taps: 0,
        };
        lab.lan.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        // No STP delay: QEMU's firmware sends DHCP within seconds of the link coming up.
        lab.lan.ip(&[
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        lab.lan.ip(&["link", "set", BRIDGE, "up"])?;
        lab.lan.ip(&[
            "link",
            "add",
            SERVER_IF,
            "type",
            "veth",
            "peer",
            "name",
            SERVER_IF,
            "netns",
            lab.server.name(),
        ])?;
        lab.lan
            .ip(&["link", "set", SERVER_IF, "master", BRIDGE, "up"])?;
        if server_address {
            lab.server.ip(&[
                "addr",
                "add",
                &format!("{SERVER_IP}/{PREFIX}"),
                "dev",
                SERVER_IF,
            ])?;
        }
        lab.server.ip(&["link", "set", SERVER_IF, "up"])?;
        Ok(lab)
    }

    /// Adds a tap to the bridge for one VM and returns its name (`tap0`, `tap1`, …).
    ///
    /// # Errors
    /// When an `ip` command fails.
    pub fn add_tap(&mut self) -> crate::Result<String> {
        let name = format!("tap{}", self.taps);
        self.taps += 1;
        self.lan
            .ip(&["tuntap", "add", "dev", &name, "mode", "tap"])?;
        self.lan
            .ip(&["link", "set", &name, "master", BRIDGE, "up"])?;
        Ok(name)
    }

    /// Gives the bridge an address, for a second server on the LAN (the proxy test's DHCP
    /// server).
    ///
    /// # Errors
    /// When `ip addr add` fails.
    pub fn add_lan_address(&self, cidr: &str) -> crate::Result<()> {
        self.lan.ip(&["addr", "add", cidr, "dev", BRIDGE]).map(drop)
    }

    /// Adds the upstream namespace: [`UPLINK_IF`] = [`UPLINK_IP`] in the server namespace,
    /// `eth0` = [`UPSTREAM_IP`] upstream, and no route from upstream back to the LAN. Returns
    /// the upstream namespace.
    ///
    /// # Errors
    /// When an `ip` command fails.
    pub fn add_upstream(&mut self) -> crate::Result<&Netns> {
        let name = self.server.name().replace("-srv", "-up");
        let up = Netns::create(&name)?;
        up.ip(&[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            UPLINK_IF,
            "netns",
            self.server.name(),
        ])?;
        up.ip(&["addr", "add", &format!("{UPSTREAM_IP}/24"), "dev", "eth0"])?;
        up.ip(&["link", "set", "eth0", "up"])?;
        self.server
            .ip(&["addr", "add", &format!("{UPLINK_IP}/24"), "dev", UPLINK_IF])?;
        self.server.ip(&["link", "set", UPLINK_IF, "up"])?;
        Ok(self.upstream.insert(up))
    }
}

/// Deletes `ppxe-e2e-<pid>-…` namespaces whose creating process no longer exists.
pub fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX_NAME) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing stale namespace {name} (its test process {pid} is gone)");
            if let Err(e) = ip(&["netns", "del", &name]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Runs `ip args…`.
///
/// # Errors
/// When `ip` fails; the report includes its stderr.
pub fn ip(args: &[&str]) -> crate::Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run(cmd, IP_TIMEOUT)
}
