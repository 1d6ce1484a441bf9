//! NAT for booted machines (docs/protocol.md §4): IPv4 forwarding plus a masquerade rule for the
//! client subnet out of the uplink, undone when pocketpxe stops.
//!
//! Everything pocketpxe adds lives in one nftables table of its own, `table ip pocketpxe`, made
//! and removed with the `nft` command; no other table, chain or rule is read or touched. Before
//! anything changes, a state file (`/run/pocketpxe/netns-INODE/nat.state`, one per network
//! namespace) records our PID and the original `net.ipv4.ip_forward`. [`NatGuard`]'s drop deletes the table, puts forwarding back and removes
//! the state file. After a `kill -9` the state file survives, so the next start
//! ([`Nat::cleanup_leftovers`], also run by [`Nat::enable`]) restores the value from *before* the
//! killed run, not the `1` that run left behind, and replaces the table rather than stacking a
//! second one.

use std::fs;
use std::io;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sys::netif::{Ipv4Cidr, format_mac};

/// The nftables table pocketpxe owns (family `ip`).
pub const TABLE: &str = "pocketpxe";

/// Where the state file lives by default.
pub const DEFAULT_STATE_DIR: &str = "/run/pocketpxe";

/// Entry points; see the module docs.
#[derive(Debug)]
pub struct Nat;

/// Where NAT state lives and which network namespace to act in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatOptions {
    /// Directory of `nat.state`.
    pub state_dir: PathBuf,
    /// Run `nft`/`sysctl` inside this named network namespace (`ip netns exec NS …`); `None`
    /// for the namespace pocketpxe runs in. For tests.
    pub netns: Option<String>,
}

impl Default for NatOptions {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            netns: None,
        }
    }
}

/// The state directory for the network namespace this process runs in:
/// `/run/pocketpxe/netns-INODE` (the inode of `/proc/self/ns/net`). `/run` is shared by every
/// namespace, while the nftables table and `ip_forward` that the state describes belong to one:
/// a run killed in one namespace must not be "undone" in another.
pub fn default_state_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    match fs::metadata("/proc/self/ns/net") {
        Ok(meta) => PathBuf::from(DEFAULT_STATE_DIR).join(format!("netns-{}", meta.ino())),
        Err(_) => PathBuf::from(DEFAULT_STATE_DIR),
    }
}

/// Why NAT could not be set up or undone. Every variant names the interface, command or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatError {
    /// The uplink name is unusable or the interface does not exist.
    #[error("uplink {name}: {reason}")]
    Uplink {
        /// The interface name given.
        name: String,
        /// Why.
        reason: String,
    },
    /// No default route to pick the uplink from.
    #[error("/proc/net/route has no default route: name the uplink with --uplink IFACE")]
    NoDefaultRoute,
    /// A command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// What it said.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
    /// Another live pocketpxe manages NAT here.
    #[error("another pocketpxe (pid {pid}) has NAT enabled (state file {state}); stop it first")]
    AlreadyActive {
        /// Its PID.
        pid: u32,
        /// The state file.
        state: PathBuf,
    },
}

/// What [`Nat::cleanup_leftovers`] undid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// The `ip pocketpxe` table was there and was deleted.
    pub table_removed: bool,
    /// `net.ipv4.ip_forward` was put back to this value.
    pub forwarding_restored: Option<String>,
    /// A state file of a killed run was found (and removed).
    pub state_found: bool,
}

impl Leftovers {
    /// Whether anything was left behind.
    pub fn any(&self) -> bool {
        self.table_removed || self.forwarding_restored.is_some() || self.state_found
    }
}

impl Nat {
    /// Enables forwarding and masquerades `subnet` out of `uplink` (see [`Nat::enable_with`]).
    ///
    /// # Errors
    /// See [`Nat::enable_with`].
    pub fn enable(subnet: Ipv4Cidr, uplink: &str) -> Result<NatGuard, NatError> {
        Self::enable_with(&NatOptions::default(), subnet, uplink)
    }

    /// Cleans up after a killed run (see [`Nat::cleanup_leftovers_with`]).
    ///
    /// # Errors
    /// See [`Nat::cleanup_leftovers_with`].
    pub fn cleanup_leftovers() -> Result<Leftovers, NatError> {
        Self::cleanup_leftovers_with(&NatOptions::default())
    }

    /// Enables IPv4 forwarding and masquerading of `subnet`'s network out of `uplink`, after
    /// cleaning up a killed run's leftovers. Dropping the guard undoes both.
    ///
    /// # Errors
    /// A bad or missing uplink, another live pocketpxe with NAT, `nft` missing or failing, or
    /// the state file or forwarding setting not writable. Nothing stays changed on error.
    pub fn enable_with(
        opts: &NatOptions,
        subnet: Ipv4Cidr,
        uplink: &str,
    ) -> Result<NatGuard, NatError> {
        check_uplink_name(uplink)?;
        let run = Runner {
            netns: opts.netns.clone(),
        };
        check_uplink_exists(&run, uplink)?;
        let leftovers = Self::cleanup_leftovers_with(opts)?;
        if leftovers.any() {
            tracing::info!(
                ?leftovers,
                "cleaned up NAT left behind by a killed pocketpxe"
            );
        }
        let network = Ipv4Cidr {
            addr: subnet.network(),
            prefix: subnet.prefix,
        };
        let original = run.read_forwarding()?;
        let state = State {
            pid: std::process::id(),
            ip_forward: original.clone(),
            subnet: network.to_string(),
            uplink: uplink.to_owned(),
            uplink_mac: if opts.netns.is_none() {
                interface_mac(uplink).unwrap_or_default()
            } else {
                String::new()
            },
        };
        let state_path = opts.state_dir.join(STATE_FILE);
        state.write(&state_path)?;
        let guard = NatGuard {
            run,
            state_path,
            original,
            subnet: network,
            uplink: uplink.to_owned(),
            active: true,
        };
        // From here on, dropping `guard` on an error undoes whatever was done.
        guard.run.nft_script(&ruleset(network, uplink))?;
        if guard.original != "1" {
            guard.run.write_forwarding("1")?;
        }
        tracing::info!(subnet = %network, uplink, "NAT enabled: forwarding on, masquerading in nftables table ip {TABLE}");
        Ok(guard)
    }

    /// Undoes what a killed pocketpxe left: deletes the `ip pocketpxe` table and, if its state
    /// file is there, restores `net.ipv4.ip_forward` to the value recorded before that run.
    /// Without a state file the forwarding setting is left as it is.
    ///
    /// # Errors
    /// [`NatError::AlreadyActive`] when the state file belongs to a live pocketpxe (nothing is
    /// touched then), or a failing `nft`/file operation.
    pub fn cleanup_leftovers_with(opts: &NatOptions) -> Result<Leftovers, NatError> {
        let run = Runner {
            netns: opts.netns.clone(),
        };
        let state_path = opts.state_dir.join(STATE_FILE);
        let state = State::read(&state_path)?;
        if let Some(state) = &state
            && owner_alive(state.pid)
        {
            return Err(NatError::AlreadyActive {
                pid: state.pid,
                state: state_path,
            });
        }
        // A state of another namespace that reused this one's inode: forget it, touch nothing
        // it describes (a leftover table of our own name is still removed below).
        let state = match state {
            Some(s) if opts.netns.is_none() && s.is_foreign(interface_mac(&s.uplink)) => {
                tracing::debug!(
                    file = %state_path.display(),
                    uplink = %s.uplink,
                    "NAT state of another network namespace (its uplink is gone or changed); ignored"
                );
                remove_state(&state_path)?;
                None
            }
            other => other,
        };
        let mut done = Leftovers {
            state_found: state.is_some(),
            ..Leftovers::default()
        };
        done.table_removed = run.delete_table()?;
        if let Some(state) = &state {
            if state.ip_forward != "1" && run.read_forwarding()? == "1" {
                run.write_forwarding(&state.ip_forward)?;
                done.forwarding_restored = Some(state.ip_forward.clone());
            }
            remove_state(&state_path)?;
        } else if done.table_removed {
            tracing::warn!(
                "removed a leftover nftables table ip {TABLE} without a state file; net.ipv4.ip_forward left as it is"
            );
        }
        Ok(done)
    }
}

/// NAT that is on; dropping it (or [`NatGuard::disable`]) turns it off again.
#[derive(Debug)]
pub struct NatGuard {
    run: Runner,
    state_path: PathBuf,
    original: String,
    subnet: Ipv4Cidr,
    uplink: String,
    active: bool,
}

impl NatGuard {
    /// The masqueraded network, e.g. `192.168.242.0/24`.
    pub fn subnet(&self) -> Ipv4Cidr {
        self.subnet
    }

    /// The uplink interface.
    pub fn uplink(&self) -> &str {
        &self.uplink
    }

    /// The `net.ipv4.ip_forward` value found before enabling.
    pub fn original_forwarding(&self) -> &str {
        &self.original
    }

    /// Deletes the table, restores forwarding and removes the state file.
    ///
    /// # Errors
    /// The first step that failed; the state file then stays, so the next start retries.
    pub fn disable(mut self) -> Result<(), NatError> {
        self.undo()
    }

    fn undo(&mut self) -> Result<(), NatError> {
        if !self.active {
            return Ok(());
        }
        self.run.delete_table()?;
        if self.original != "1" && self.run.read_forwarding()? == "1" {
            self.run.write_forwarding(&self.original)?;
        }
        remove_state(&self.state_path)?;
        self.active = false;
        tracing::info!(
            "NAT disabled: table ip {TABLE} deleted, net.ipv4.ip_forward back to {}",
            self.original
        );
        Ok(())
    }
}

impl Drop for NatGuard {
    fn drop(&mut self) {
        if let Err(e) = self.undo() {
            tracing::warn!(
                "could not undo NAT: {e}; the next pocketpxe start cleans up (state file {})",
                self.state_path.display()
            );
        }
    }
}

/// The interface holding the default route, from `/proc/net/route`.
///
/// # Errors
/// [`NatError::NoDefaultRoute`], or the file cannot be read.
pub fn default_uplink() -> Result<String, NatError> {
    let path = Path::new("/proc/net/route");
    let text = fs::read_to_string(path).map_err(|source| NatError::Io {
        path: path.to_owned(),
        error: source,
    })?;
    parse_default_route(&text).ok_or(NatError::NoDefaultRoute)
}

/// The interface of the lowest-metric default route in `/proc/net/route` text.
pub fn parse_default_route(text: &str) -> Option<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, flags, metric, mask) =
                (f.first()?, f.get(1)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let flags = u32::from_str_radix(flags, 16).ok()?;
            let up = flags & RTF_UP != 0;
            (up && *dest == "00000000" && *mask == "00000000").then(|| {
                (
                    metric.parse::<u32>().unwrap_or(u32::MAX),
                    (*iface).to_owned(),
                )
            })
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, iface)| iface)
}

/// The nft script that (re)creates our table: the `table; delete table; table {…}` idiom replaces
/// it atomically, so a restart never stacks a second copy.
pub fn ruleset(subnet: Ipv4Cidr, uplink: &str) -> String {
    let network = Ipv4Cidr {
        addr: subnet.network(),
        prefix: subnet.prefix,
    };
    format!(
        "table ip {TABLE}\n\
         delete table ip {TABLE}\n\
         table ip {TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {network} oifname \"{uplink}\" masquerade comment \"pocketpxe NAT for booted machines\"\n\
         \t}}\n\
         }}\n"
    )
}

/// Runs commands, inside a network namespace if one is set.
#[derive(Debug, Clone)]
struct Runner {
    netns: Option<String>,
}

impl Runner {
    fn command(&self, program: &str, args: &[&str]) -> (Command, String) {
        let mut line = Vec::new();
        let mut cmd = match &self.netns {
            Some(ns) => {
                line.extend(["ip", "netns", "exec", ns.as_str()]);
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, program]);
                cmd
            }
            None => Command::new(program),
        };
        cmd.args(args);
        line.push(program);
        line.extend(args);
        (cmd, line.join(" "))
    }

    fn output(&self, program: &str, args: &[&str]) -> Result<String, NatError> {
        self.output_with_input(program, args, None)
    }

    fn output_with_input(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, NatError> {
        let (mut cmd, line) = self.command(program, args);
        let failed = |detail: String| NatError::Command {
            command: line.clone(),
            detail,
        };
        let mut child = cmd
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                failed(if e.kind() == io::ErrorKind::NotFound {
                    format!(
                        "{program} not found (apt-get install {})",
                        package_of(program)
                    )
                } else {
                    e.to_string()
                })
            })?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| failed(format!("writing its input: {e}")))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let detail = stderr.trim();
            return Err(failed(if detail.is_empty() {
                output.status.to_string()
            } else {
                detail.lines().next().unwrap_or(detail).to_owned()
            }));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn nft_script(&self, script: &str) -> Result<(), NatError> {
        self.output_with_input("nft", &["-f", "-"], Some(script))
            .map(drop)
    }

    /// Deletes our table; `false` if it was not there.
    fn delete_table(&self) -> Result<bool, NatError> {
        match self.output("nft", &["list", "table", "ip", TABLE]) {
            Ok(_) => {}
            Err(NatError::Command { detail, .. })
                if detail.contains("No such file or directory") =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        self.output("nft", &["delete", "table", "ip", TABLE])?;
        Ok(true)
    }

    fn read_forwarding(&self) -> Result<String, NatError> {
        match &self.netns {
            None => fs::read_to_string(FORWARDING)
                .map(|s| s.trim().to_owned())
                .map_err(|source| NatError::Io {
                    path: PathBuf::from(FORWARDING),
                    error: source,
                }),
            Some(_) => Ok(self
                .output("sysctl", &["-n", "net.ipv4.ip_forward"])?
                .trim()
                .to_owned()),
        }
    }

    fn write_forwarding(&self, value: &str) -> Result<(), NatError> {
        match &self.netns {
            None => fs::write(FORWARDING, format!("{value}\n")).map_err(|source| NatError::Io {
                path: PathBuf::from(FORWARDING),
                error: source,
            }),
            Some(_) => self
                .output(
                    "sysctl",
                    &["-q", "-w", &format!("net.ipv4.ip_forward={value}")],
                )
                .map(drop),
        }
    }
}

/// `nat.state`: who enabled NAT and what forwarding was before.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    pid: u32,
    ip_forward: String,
    subnet: String,
    uplink: String,
    /// The uplink's MAC when NAT was enabled (empty when unknown, e.g. in tests acting in
    /// another namespace). A deleted namespace's inode, and so its state directory, is reused
    /// by later namespaces: a state whose uplink is gone or has another MAC is not ours.
    uplink_mac: String,
}

impl State {
    /// Whether this state describes another namespace: it names an uplink MAC, and the uplink
    /// here (`current_mac`) is missing or has another one.
    fn is_foreign(&self, current_mac: Option<String>) -> bool {
        !self.uplink_mac.is_empty() && current_mac.as_deref() != Some(self.uplink_mac.as_str())
    }

    fn read(path: &Path) -> Result<Option<Self>, NatError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(NatError::Io {
                    path: path.to_owned(),
                    error: source,
                });
            }
        };
        let mut state = Self {
            pid: 0,
            ip_forward: String::new(),
            subnet: String::new(),
            uplink: String::new(),
            uplink_mac: String::new(),
        };
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            match key {
                "pid" => state.pid = value.trim().parse().unwrap_or(0),
                "ip_forward" => state.ip_forward = value.trim().to_owned(),
                "subnet" => state.subnet = value.trim().to_owned(),
                "uplink" => state.uplink = value.trim().to_owned(),
                "uplink_mac" => state.uplink_mac = value.trim().to_owned(),
                _ => {}
            }
        }
        if !matches!(state.ip_forward.as_str(), "0" | "1") {
            // Unknown original: restoring anything would be a guess. Keep forwarding as it is.
            tracing::warn!(
                file = %path.display(),
                "NAT state file has no valid ip_forward value; forwarding will be left as it is"
            );
            state.ip_forward = "1".to_owned();
        }
        Ok(Some(state))
    }

    fn write(&self, path: &Path) -> Result<(), NatError> {
        let io_err = |source| NatError::Io {
            path: path.to_owned(),
            error: source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let text = format!(
            "# pocketpxe NAT state: removed on a clean exit; if pocketpxe was killed, its next start undoes the NAT\npid {}\nip_forward {}\nsubnet {}\nuplink {}\nuplink_mac {}\n",
            self.pid, self.ip_forward, self.subnet, self.uplink, self.uplink_mac
        );
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = fs::File::create(&tmp).map_err(io_err)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)
    }
}

/// The MAC address of `iface` in this process's network namespace, over rtnetlink; empty for
/// an interface without one (e.g. a tunnel).
fn interface_mac(iface: &str) -> Option<String> {
    let link = crate::sys::rtnl::link_by_name(iface).ok()??;
    Some(link.mac.map(|mac| format_mac(&mac)).unwrap_or_default())
}

/// Fails unless the uplink exists: asked over rtnetlink in this process's network namespace,
/// or with `ip link show` inside [`NatOptions::netns`].
fn check_uplink_exists(run: &Runner, uplink: &str) -> Result<(), NatError> {
    let missing = |reason: String| NatError::Uplink {
        name: uplink.to_owned(),
        reason,
    };
    if run.netns.is_some() {
        return run
            .output("ip", &["link", "show", "dev", uplink])
            .map(drop)
            .map_err(|e| {
                missing(match e {
                    NatError::Command { detail, .. } => detail,
                    other => other.to_string(),
                })
            });
    }
    match crate::sys::rtnl::link_by_name(uplink) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(missing(
            "no such interface in this network namespace (see `ip link`)".into(),
        )),
        Err(e) => Err(missing(format!("cannot read it over rtnetlink: {e}"))),
    }
}

fn remove_state(path: &Path) -> Result<(), NatError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NatError::Io {
            path: path.to_owned(),
            error: source,
        }),
    }
}

/// Whether `pid` is a live process running the same program as we are (a recycled PID running
/// something else does not count). Our own PID counts: NAT is already on in this process.
pub(crate) fn owner_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let comm = |p: &str| fs::read_to_string(format!("/proc/{p}/comm")).ok();
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

fn check_uplink_name(name: &str) -> Result<(), NatError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(NatError::Uplink {
            name: name.to_owned(),
            reason: "not a valid interface name".into(),
        })
    }
}

fn package_of(program: &str) -> &'static str {
    match program {
        "nft" => "nftables",
        "sysctl" => "procps",
        _ => "iproute2",
    }
}

const STATE_FILE: &str = "nat.state";
const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";
const RTF_UP: u32 = 0x1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_text() {
        let subnet: Ipv4Cidr = "192.168.242.1/24".parse().unwrap();
        assert_eq!(
            ruleset(subnet, "eth0"),
            "table ip pocketpxe\n\
             delete table ip pocketpxe\n\
             table ip pocketpxe {\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr 192.168.242.0/24 oifname \"eth0\" masquerade comment \"pocketpxe NAT for booted machines\"\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn default_route_is_found() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth1\t00F2A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
                    eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    down0\t00000000\t0101A8C0\t0002\t0\t0\t1\t00000000\t0\t0\t0\n";
        assert_eq!(parse_default_route(text).as_deref(), Some("eth0"));
        let none = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth1\t00F2A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_default_route(none), None);
        assert_eq!(parse_default_route(""), None);
        assert_eq!(parse_default_route("garbage\nx y\n"), None);
    }

    #[test]
    fn uplink_names() {
        assert!(check_uplink_name("eth0").is_ok());
        assert!(check_uplink_name("enp0s31f6").is_ok());
        assert!(check_uplink_name("br-lan.10").is_ok());
        assert!(check_uplink_name("").is_err());
        assert!(check_uplink_name("a\"; flush ruleset").is_err());
        assert!(check_uplink_name("sixteen-chars-xx").is_err());
    }

    #[test]
    fn state_round_trip_and_liveness() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-natstate-{}", std::process::id()));
        let path = dir.join("nat.state");
        let state = State {
            pid: 4_000_000,
            ip_forward: "0".into(),
            subnet: "10.0.0.0/24".into(),
            uplink: "eth0".into(),
            uplink_mac: "02:00:00:00:00:01".into(),
        };
        state.write(&path).unwrap();
        assert_eq!(State::read(&path).unwrap(), Some(state.clone()));
        // Ours only while the uplink is there with the recorded MAC; no MAC recorded: ours.
        assert!(!state.is_foreign(Some("02:00:00:00:00:01".into())));
        assert!(state.is_foreign(Some("02:00:00:00:00:02".into())));
        assert!(state.is_foreign(None));
        let unknown = State {
            uplink_mac: String::new(),
            ..state
        };
        assert!(!unknown.is_foreign(None));
        fs::write(&path, "pid 12\nip_forward banana\n").unwrap();
        assert_eq!(State::read(&path).unwrap().unwrap().ip_forward, "1");
        remove_state(&path).unwrap();
        assert_eq!(State::read(&path).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
        assert!(owner_alive(std::process::id()));
        assert!(!owner_alive(0));
        assert!(!owner_alive(1), "pid 1 runs another program");
    }
}
