//! Network interfaces: what `serve` needs to know about one, and the address it may add.
//!
//! Facts (existence, flags, MAC, IPv4 addresses) are asked of the kernel over rtnetlink
//! ([`crate::sys::rtnl`]), and addresses are added and removed the same way, so they are
//! those of the network namespace this process runs in, however it entered it (`ip netns
//! exec`, or a bare `setns` such as `nsenter --net` or systemd's `NetworkNamespacePath=`,
//! after which `/sys/class/net` still shows another namespace). No `ip` program is needed.
//! An address this process added is removed again when its [`AddedAddress`] guard is
//! dropped.
//!
//! A `kill -9` skips that guard, so every added address is first recorded in an
//! [`AddressLedger`] (`/run/pocketpxe/netns-INODE/addresses.state`, one per network namespace,
//! like NAT's state) with the PID that added it. The next start ([`AddressLedger::recover`])
//! treats a record of a dead PID as a leftover of ours: it takes the address over when the
//! same `--address` is asked for again (and removes it on its own exit), and removes it
//! otherwise. Records of a live pocketpxe are left alone.

use std::fmt;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::sys::rtnl;

/// An IPv4 address with its prefix length, e.g. `192.168.242.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The subnet mask, e.g. 255.255.255.0 for /24.
    pub fn mask(&self) -> Ipv4Addr {
        let bits = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        Ipv4Addr::from(bits)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.mask()))
    }

    /// The subnet's broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !u32::from(self.mask()))
    }

    /// Whether `ip` lies in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.mask()) == u32::from(self.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not ADDRESS/PREFIX, e.g. 192.168.242.1/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("'{prefix}' is not a prefix length 0..=32"))?;
        Ok(Self { addr, prefix })
    }
}

/// What we know about a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name, e.g. `eth1`.
    pub name: String,
    /// Its index in this network namespace.
    pub index: u32,
    /// Its hardware address.
    pub mac: [u8; 6],
    /// Whether it is administratively up (IFF_UP).
    pub up: bool,
    /// Its IPv4 addresses.
    pub addrs: Vec<Ipv4Cidr>,
}

/// Why an interface cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetIfError {
    /// No interface of that name.
    #[error("interface {0} does not exist (see `ip link`)")]
    Missing(String),
    /// The interface is down.
    #[error("interface {0} is down (bring it up with `ip link set {0} up`)")]
    Down(String),
    /// The interface has no IPv4 address and none was given.
    #[error("interface {0} has no IPv4 address: give one with --address, e.g. 192.168.242.1/24")]
    NoAddress(String),
    /// `--wait-interface`: the interface was not ready in time.
    #[error("interface {iface} {lacking} after waiting {}s (--wait-interface)", waited.as_secs_f64())]
    NotReady {
        /// The interface.
        iface: String,
        /// What it still lacked, e.g. `did not appear`.
        lacking: &'static str,
        /// How long was waited.
        waited: Duration,
    },
    /// The kernel refused or failed a request about the interface.
    #[error("interface {iface}: {action}: {error}")]
    Netlink {
        /// The interface.
        iface: String,
        /// What was asked, e.g. `adding 10.0.0.1/24`.
        action: String,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
    /// The address state file could not be read or written.
    #[error("address state file {path}: {error}")]
    State {
        /// The file.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
}

impl Interface {
    /// Reads interface `name`.
    ///
    /// # Errors
    /// [`NetIfError::Missing`] if there is no such interface in this process's network
    /// namespace, [`NetIfError::Netlink`] if the kernel cannot be asked.
    pub fn lookup(name: &str) -> Result<Self, NetIfError> {
        let failed = |action: &str, source| NetIfError::Netlink {
            iface: name.to_owned(),
            action: action.to_owned(),
            error: source,
        };
        let link = rtnl::link_by_name(name)
            .map_err(|e| failed("reading its link", e))?
            .ok_or_else(|| NetIfError::Missing(name.to_owned()))?;
        let addrs =
            rtnl::ipv4_addresses(link.index).map_err(|e| failed("reading its addresses", e))?;
        Ok(Self {
            name: name.to_owned(),
            index: link.index,
            mac: link.mac.unwrap_or([0; 6]),
            up: link.up,
            addrs,
        })
    }

    /// The interface, checked to be up.
    ///
    /// # Errors
    /// As [`Interface::lookup`], plus [`NetIfError::Down`].
    pub fn lookup_up(name: &str) -> Result<Self, NetIfError> {
        let iface = Self::lookup(name)?;
        if !iface.up {
            return Err(NetIfError::Down(name.to_owned()));
        }
        Ok(iface)
    }

    /// Waits up to `limit` for interface `name` to exist and be up, and with `need_address`
    /// to hold an IPv4 address too, asking the kernel every 100 ms: for interfaces that appear
    /// after the daemon starts (a veth handed into a container, a USB adapter, a bridge made by
    /// another service).
    ///
    /// # Errors
    /// [`NetIfError::NotReady`] naming the interface and what it still lacked after `limit`;
    /// [`NetIfError::Netlink`] at once if the kernel cannot be asked.
    pub fn wait_up(name: &str, limit: Duration, need_address: bool) -> Result<Self, NetIfError> {
        let start = Instant::now();
        loop {
            let lacking = match Self::lookup(name) {
                Ok(iface) if !iface.up => "is still down",
                Ok(iface) if need_address && iface.addrs.is_empty() => {
                    "still has no IPv4 address (or give --address)"
                }
                Ok(iface) => return Ok(iface),
                Err(NetIfError::Missing(_)) => "did not appear",
                Err(e) => return Err(e),
            };
            let waited = start.elapsed();
            if waited >= limit {
                return Err(NetIfError::NotReady {
                    iface: name.to_owned(),
                    lacking,
                    waited: limit,
                });
            }
            std::thread::sleep(WAIT_POLL.min(limit - waited));
        }
    }

    /// Adds `cidr` unless the interface already holds that address. The returned guard removes
    /// it again when dropped; `None` means it was already there and stays. Not recorded for
    /// a restart after `kill -9`: see [`Interface::ensure_address_recorded`].
    ///
    /// # Errors
    /// [`NetIfError::Netlink`] if adding fails (e.g. without CAP_NET_ADMIN).
    pub fn ensure_address(&mut self, cidr: Ipv4Cidr) -> Result<Option<AddedAddress>, NetIfError> {
        if self.has(cidr) {
            return Ok(None);
        }
        self.add(cidr)?;
        self.addrs.push(cidr);
        Ok(Some(AddedAddress {
            iface: self.name.clone(),
            cidr,
            ledger: None,
        }))
    }

    /// As [`Interface::ensure_address`], with the address recorded in `ledger` (before it is
    /// added) so that the next start can undo it after a `kill -9`. `take_over`: a killed
    /// pocketpxe added this very address ([`Recovered::taken_over`]); if it is still there it
    /// becomes ours, and the guard removes it on exit.
    ///
    /// A ledger that cannot be written costs only the crash cleanup: a warning, and the
    /// address is added anyway (a clean exit still removes it).
    ///
    /// # Errors
    /// [`NetIfError::Netlink`] if adding fails; the record is withdrawn then.
    pub fn ensure_address_recorded(
        &mut self,
        cidr: Ipv4Cidr,
        ledger: &AddressLedger,
        take_over: bool,
    ) -> Result<Option<AddedAddress>, NetIfError> {
        let present = self.has(cidr);
        if present && !take_over {
            return Ok(None);
        }
        let record = AddressRecord {
            iface: self.name.clone(),
            cidr,
            pid: std::process::id(),
            mac: self.mac,
        };
        let (ledger, unrecorded) = match ledger.record(&record) {
            Ok(()) => (Some((ledger.clone(), record.clone())), None),
            Err(e) => (None, Some(e)),
        };
        if !present {
            if let Err(e) = self.add(cidr) {
                if let Some((ledger, record)) = &ledger
                    && let Err(e) = ledger.forget(record)
                {
                    tracing::warn!("{e}");
                }
                return Err(e);
            }
            self.addrs.push(cidr);
        }
        if let Some(e) = unrecorded {
            // Only now: when adding fails, that error alone is the message.
            tracing::warn!(iface = %self.name, addr = %cidr,
                "{e}: the address is not recorded, so it stays behind if pocketpxe is killed");
        }
        Ok(Some(AddedAddress {
            iface: self.name.clone(),
            cidr,
            ledger,
        }))
    }

    /// Whether the interface holds `cidr`'s address.
    fn has(&self, cidr: Ipv4Cidr) -> bool {
        self.addrs.iter().any(|a| a.addr == cidr.addr)
    }

    /// Adds `cidr` (`ip addr add CIDR dev IFACE`).
    fn add(&self, cidr: Ipv4Cidr) -> Result<(), NetIfError> {
        rtnl::add_ipv4_address(self.index, cidr).map_err(|source| NetIfError::Netlink {
            iface: self.name.clone(),
            action: format!("adding {cidr}"),
            error: source,
        })
    }
}

/// An address this process added; dropping the guard removes it (and its ledger record).
#[derive(Debug)]
pub struct AddedAddress {
    iface: String,
    cidr: Ipv4Cidr,
    /// Where it is recorded, and how.
    ledger: Option<(AddressLedger, AddressRecord)>,
}

impl AddedAddress {
    /// The address added.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.cidr
    }
}

impl Drop for AddedAddress {
    fn drop(&mut self) {
        match remove_address(&self.iface, self.cidr) {
            Ok(_) => {
                tracing::info!(iface = %self.iface, addr = %self.cidr, "removed the address we added");
            }
            Err(e) => {
                tracing::warn!(iface = %self.iface, addr = %self.cidr,
                    "could not remove the address we added: {e}; the next pocketpxe start removes it");
                // The record stays, so that the next start finds it.
                return;
            }
        }
        if let Some((ledger, record)) = &self.ledger
            && let Err(e) = ledger.forget(record)
        {
            tracing::warn!(iface = %self.iface, addr = %self.cidr, "{e}");
        }
    }
}

/// One address a pocketpxe added: a line `IFACE CIDR PID MAC` of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    /// The interface.
    pub iface: String,
    /// The address.
    pub cidr: Ipv4Cidr,
    /// The process that added it.
    pub pid: u32,
    /// The interface's hardware address then. A record whose interface is gone or has another
    /// MAC now is stale and touches nothing: a deleted namespace's inode, and so its state
    /// directory, can be reused by a new namespace with interfaces of the same names.
    pub mac: [u8; 6],
}

/// What [`AddressLedger::recover`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Leftovers of killed runs that were removed from their interfaces (or were gone).
    pub removed: Vec<AddressRecord>,
    /// A killed run's record of the very address this start asks for: the caller takes it
    /// over with [`Interface::ensure_address_recorded`].
    pub taken_over: Option<AddressRecord>,
    /// Leftovers that could not be removed (they stay recorded for the next start), with why.
    pub failed: Vec<(AddressRecord, String)>,
    /// Records of dead runs whose interface is gone or has another MAC: dropped, nothing
    /// touched.
    pub stale: Vec<AddressRecord>,
}

/// The addresses pocketpxe processes added in this network namespace (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressLedger {
    path: PathBuf,
}

impl AddressLedger {
    /// The ledger for the network namespace this process runs in:
    /// `/run/pocketpxe/netns-INODE/addresses.state`.
    pub fn for_this_namespace() -> Self {
        Self::in_dir(&crate::sys::nat::default_state_dir())
    }

    /// The ledger `addresses.state` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(ADDRESS_STATE_FILE),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record; a missing file means none. Lines that do not parse are skipped with a
    /// warning.
    ///
    /// # Errors
    /// [`NetIfError::State`] if the file exists but cannot be read.
    pub fn records(&self) -> Result<Vec<AddressRecord>, NetIfError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.error(source)),
        };
        Ok(parse_ledger(&text, &self.path))
    }

    /// Undoes what killed runs left: every record of a dead PID is a leftover address of ours.
    /// The one on `iface` equal to `wanted` (the `--address` of this start) stays recorded
    /// and is reported in [`Recovered::taken_over`]; every other is removed from its
    /// interface, then from the file. Records of live pocketpxe processes are left alone.
    ///
    /// # Errors
    /// [`NetIfError::State`] if the file cannot be read or rewritten.
    pub fn recover(&self, iface: &str, wanted: Option<Ipv4Cidr>) -> Result<Recovered, NetIfError> {
        let records = self.records()?;
        if records.is_empty() {
            return Ok(Recovered::default());
        }
        let mut done = Recovered::default();
        let mut keep = Vec::new();
        for record in records {
            if crate::sys::nat::owner_alive(record.pid) {
                keep.push(record);
                continue;
            }
            let current = match Interface::lookup(&record.iface) {
                Ok(current) if current.mac == record.mac => current,
                Ok(_) | Err(NetIfError::Missing(_)) => {
                    done.stale.push(record);
                    continue;
                }
                Err(e) => {
                    done.failed.push((record.clone(), e.to_string()));
                    keep.push(record);
                    continue;
                }
            };
            if record.iface == iface && Some(record.cidr) == wanted && done.taken_over.is_none() {
                done.taken_over = Some(record.clone());
                keep.push(record);
            } else if !current.addrs.contains(&record.cidr) {
                done.removed.push(record);
            } else {
                match remove_address(&record.iface, record.cidr) {
                    Ok(()) => done.removed.push(record),
                    Err(e) => {
                        done.failed.push((record.clone(), e.to_string()));
                        keep.push(record);
                    }
                }
            }
        }
        if !done.removed.is_empty() || !done.stale.is_empty() {
            self.write(&keep)?;
        }
        Ok(done)
    }

    /// Adds `record`, replacing a record of the same interface and address.
    fn record(&self, record: &AddressRecord) -> Result<(), NetIfError> {
        let mut records = self.records()?;
        records.retain(|r| !(r.iface == record.iface && r.cidr.addr == record.cidr.addr));
        records.push(record.clone());
        self.write(&records)
    }

    /// Removes `record` (same interface, address and PID); the file goes when it is empty.
    fn forget(&self, record: &AddressRecord) -> Result<(), NetIfError> {
        let mut records = self.records()?;
        let before = records.len();
        records.retain(|r| r != record);
        if records.len() == before {
            return Ok(());
        }
        self.write(&records)
    }

    /// Replaces the file atomically (temporary file, fsync, rename); removes it when empty.
    fn write(&self, records: &[AddressRecord]) -> Result<(), NetIfError> {
        if records.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.error(e)),
                _ => Ok(()),
            };
        }
        let mut text = String::from(
            "# pocketpxe: addresses added (IFACE CIDR PID MAC); a killed run's are removed by the next start\n",
        );
        for r in records {
            text.push_str(&format!(
                "{} {} {} {}\n",
                r.iface,
                r.cidr,
                r.pid,
                format_mac(&r.mac)
            ));
        }
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // A stale temporary file may belong to root while we run as the service user.
            let _ = std::fs::remove_file(&tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.error(e)
        })
    }

    fn error(&self, source: io::Error) -> NetIfError {
        NetIfError::State {
            path: self.path.clone(),
            error: source,
        }
    }
}

/// The host's upstream DNS resolvers that booted machines can reach through NAT: the IPv4
/// `nameserver`s of `/etc/resolv.conf`, or of systemd-resolved's upstream list
/// (`/run/systemd/resolve/resolv.conf`) when the former names only a local stub (127.0.0.53).
/// Loopback addresses are left out: they mean nothing to another machine. At most three.
pub fn upstream_resolvers() -> Vec<Ipv4Addr> {
    ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"]
        .iter()
        .map(|path| parse_resolv_conf(&std::fs::read_to_string(path).unwrap_or_default()))
        .find(|found| !found.is_empty())
        .unwrap_or_default()
}

/// The usable IPv4 `nameserver` lines of a resolv.conf text (not loopback, not unspecified).
pub fn parse_resolv_conf(text: &str) -> Vec<Ipv4Addr> {
    let mut found: Vec<Ipv4Addr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            words.next()?.parse::<Ipv4Addr>().ok()
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    found.dedup();
    found.truncate(3);
    found
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`, the form the core's [`Mac`] shows, so that
/// the host and the firmware log clients alike.
///
/// [`Mac`]: pocketpxe_core::Mac
pub fn format_mac(mac: &[u8; 6]) -> String {
    pocketpxe_core::Mac(*mac).to_string()
}

/// Removes `cidr` from `iface` (`ip addr del CIDR dev IFACE`); an address that is already
/// gone, or whose interface is gone, counts as removed.
fn remove_address(iface: &str, cidr: Ipv4Cidr) -> Result<(), NetIfError> {
    let failed = |source| NetIfError::Netlink {
        iface: iface.to_owned(),
        action: format!("removing {cidr}"),
        error: source,
    };
    let Some(link) = rtnl::link_by_name(iface).map_err(failed)? else {
        return Ok(());
    };
    match rtnl::del_ipv4_address(link.index, cidr) {
        Err(e) if e.raw_os_error() != Some(libc::EADDRNOTAVAIL) => Err(failed(e)),
        _ => Ok(()),
    }
}

/// The records of a ledger text; bad lines are skipped with a warning naming `path`.
fn parse_ledger(text: &str, path: &Path) -> Vec<AddressRecord> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let fields = [words.next(), words.next(), words.next(), words.next()];
            let parsed = match (fields, words.next()) {
                ([Some(iface), Some(cidr), Some(pid), Some(mac)], None) => {
                    match (cidr.parse::<Ipv4Cidr>(), pid.parse::<u32>(), parse_mac(mac)) {
                        (Ok(cidr), Ok(pid), Some(mac)) => Some(AddressRecord {
                            iface: iface.to_owned(),
                            cidr,
                            pid,
                            mac,
                        }),
                        _ => None,
                    }
                }
                _ => None,
            };
            if parsed.is_none() {
                tracing::warn!(file = %path.display(), line, "address state: line skipped (expected IFACE CIDR PID MAC)");
            }
            parsed
        })
        .collect()
}

const ADDRESS_STATE_FILE: &str = "addresses.state";

/// How often [`Interface::wait_up`] asks the kernel.
const WAIT_POLL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_arithmetic() {
        let c: Ipv4Cidr = "192.168.242.1/24".parse().unwrap();
        assert_eq!(c.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network(), Ipv4Addr::new(192, 168, 242, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(192, 168, 242, 255));
        assert!(c.contains(Ipv4Addr::new(192, 168, 242, 99)));
        assert!(!c.contains(Ipv4Addr::new(192, 168, 243, 1)));
        assert_eq!(c.to_string(), "192.168.242.1/24");
        let all: Ipv4Cidr = "10.1.2.3/0".parse().unwrap();
        assert_eq!(all.mask(), Ipv4Addr::UNSPECIFIED);
        assert!("10.0.0.1".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.1/33".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0/24".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn resolv_conf() {
        let text = "# generated\nsearch lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n\
                    nameserver ::1\nnameserver 9.9.9.9 # comment\noptions edns0\n\
                    nameserver 1.1.1.1\nnameserver 8.8.8.8\n";
        assert_eq!(
            parse_resolv_conf(text),
            [
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(9, 9, 9, 9),
                Ipv4Addr::new(1, 1, 1, 1)
            ]
        );
        assert!(parse_resolv_conf("nameserver 127.0.0.53\n").is_empty());
        assert!(parse_resolv_conf("").is_empty());
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("52:54:00:a5:00:01"),
            Some([0x52, 0x54, 0, 0xa5, 0, 1])
        );
        assert_eq!(
            parse_mac("52-54-00-A5-00-01"),
            Some([0x52, 0x54, 0, 0xa5, 0, 1])
        );
        assert_eq!(parse_mac("52:54:00:a5:00"), None);
        assert_eq!(parse_mac("52:54:00:a5:00:01:02"), None);
        assert_eq!(
            format_mac(&[0x52, 0x54, 0, 0xa5, 0, 1]),
            "52:54:00:a5:00:01"
        );
    }

    #[test]
    fn ledger_records_recovers_and_forgets() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ledger = AddressLedger::in_dir(&dir);
        assert_eq!(ledger.records().unwrap(), vec![]);
        assert_eq!(ledger.recover("lo", None).unwrap(), Recovered::default());
        let cidr: Ipv4Cidr = "192.168.242.1/24".parse().unwrap();
        let other: Ipv4Cidr = "10.0.0.1/8".parse().unwrap();
        // Dead PIDs (pid 1 runs another program). `lo` (MAC 0) holds neither address, so
        // recovering removes nothing from it.
        let dead = |iface: &str, cidr: Ipv4Cidr, mac: [u8; 6]| AddressRecord {
            iface: iface.into(),
            cidr,
            pid: 1,
            mac,
        };
        let mine = AddressRecord {
            iface: "nonexistent1".into(),
            cidr,
            pid: std::process::id(),
            mac: [2, 0, 0, 0, 0, 1],
        };
        ledger.record(&dead("lo", cidr, [0; 6])).unwrap();
        ledger.record(&dead("lo", other, [0; 6])).unwrap();
        ledger.record(&mine).unwrap();
        // Stale: the interface is gone, or it is another one (another MAC) now.
        ledger.record(&dead("nonexistent0", other, [0; 6])).unwrap();
        ledger
            .record(&dead(
                "lo",
                "10.1.0.1/16".parse().unwrap(),
                [2, 0, 0, 0, 0, 2],
            ))
            .unwrap();
        assert_eq!(ledger.records().unwrap().len(), 5);
        // Re-recording the same interface and address replaces the line.
        ledger.record(&dead("lo", cidr, [0; 6])).unwrap();
        assert_eq!(ledger.records().unwrap().len(), 5);

        let done = ledger.recover("lo", Some(cidr)).unwrap();
        assert_eq!(done.taken_over, Some(dead("lo", cidr, [0; 6])));
        assert_eq!(done.removed, vec![dead("lo", other, [0; 6])]);
        assert_eq!(done.stale.len(), 2, "{done:?}");
        assert!(done.failed.is_empty());
        // The live record and the taken-over one stay.
        assert_eq!(
            ledger.records().unwrap(),
            vec![mine.clone(), dead("lo", cidr, [0; 6])]
        );
        // Not asked for again: removed.
        let done = ledger.recover("lo", None).unwrap();
        assert_eq!(done.removed, vec![dead("lo", cidr, [0; 6])]);
        assert_eq!(ledger.records().unwrap(), vec![mine.clone()]);
        ledger.forget(&mine).unwrap();
        assert!(!ledger.path().exists(), "an empty ledger is removed");
        // Hostile content: skipped line by line, never a panic.
        std::fs::write(
            ledger.path(),
            "eth0\n\u{0}\u{ff} x y z\neth0 1.2.3.4/33 5 02:00:00:00:00:01\n\
             eth0 1.2.3.4/24 x 02:00:00:00:00:01\neth0 1.2.3.4/24 5 zz\n\
             eth1 10.0.0.1/24 7 02:00:00:00:00:01 8\n\
             eth1 10.0.0.1/24 4000000 02:00:00:00:00:01\n",
        )
        .unwrap();
        assert_eq!(ledger.records().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn loopback_is_found_and_missing_is_named() {
        let lo = Interface::lookup("lo").unwrap();
        assert!(lo.up);
        assert!(lo.addrs.iter().any(|a| a.addr == Ipv4Addr::LOCALHOST));
        let err = Interface::lookup("nonexistent0").unwrap_err().to_string();
        assert!(err.contains("nonexistent0"), "{err}");
        assert!(Interface::lookup("../etc").is_err());
    }
}
