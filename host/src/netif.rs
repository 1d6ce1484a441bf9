//! Network interfaces: what `serve` needs to know about one, and the address it may add.
//!
//! Facts come from `/sys/class/net/IFACE/` (existence, flags, MAC) and iproute2 (`ip -4 -o
//! addr show`), which every Debian/Ubuntu system has; addresses are added and removed with
//! `ip addr add|del`. An address this process added is removed again when its
//! [`AddedAddress`] guard is dropped, and a restart after a crash finds the address already
//! present and does not add it twice.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;

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
    /// Running `ip` failed.
    #[error("`{command}` failed: {detail}")]
    Ip {
        /// The command line.
        command: String,
        /// What it said.
        detail: String,
    },
}

impl Interface {
    /// Reads interface `name`.
    ///
    /// # Errors
    /// [`NetIfError::Missing`] if there is no such interface, [`NetIfError::Ip`] if `ip` fails.
    pub fn lookup(name: &str) -> Result<Self, NetIfError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(NetIfError::Missing(name.to_owned()));
        }
        let sys = PathBuf::from("/sys/class/net").join(name);
        if !sys.exists() {
            return Err(NetIfError::Missing(name.to_owned()));
        }
        let flags = std::fs::read_to_string(sys.join("flags")).unwrap_or_default();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        let mac = std::fs::read_to_string(sys.join("address"))
            .ok()
            .and_then(|s| parse_mac(s.trim()))
            .unwrap_or([0; 6]);
        let output = ip(&["-4", "-o", "addr", "show", "dev", name])?;
        Ok(Self {
            name: name.to_owned(),
            mac,
            up: flags & IFF_UP != 0,
            addrs: parse_ip_addr_show(&output),
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

    /// Adds `cidr` unless the interface already holds that address. The returned guard removes
    /// it again when dropped; `None` means it was already there and stays.
    ///
    /// # Errors
    /// [`NetIfError::Ip`] if `ip addr add` fails (e.g. without CAP_NET_ADMIN).
    pub fn ensure_address(&mut self, cidr: Ipv4Cidr) -> Result<Option<AddedAddress>, NetIfError> {
        if self.addrs.iter().any(|a| a.addr == cidr.addr) {
            return Ok(None);
        }
        ip(&["addr", "add", &cidr.to_string(), "dev", &self.name])?;
        self.addrs.push(cidr);
        Ok(Some(AddedAddress {
            iface: self.name.clone(),
            cidr,
        }))
    }
}

/// An address this process added; dropping the guard removes it.
#[derive(Debug)]
pub struct AddedAddress {
    iface: String,
    cidr: Ipv4Cidr,
}

impl AddedAddress {
    /// The address added.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.cidr
    }
}

impl Drop for AddedAddress {
    fn drop(&mut self) {
        match ip(&["addr", "del", &self.cidr.to_string(), "dev", &self.iface]) {
            Ok(_) => {
                tracing::info!(iface = %self.iface, addr = %self.cidr, "removed the address we added")
            }
            Err(e) => {
                tracing::warn!(iface = %self.iface, addr = %self.cidr, "could not remove the address we added: {e}")
            }
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

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

fn ip(args: &[&str]) -> Result<String, NetIfError> {
    let command = format!("ip {}", args.join(" "));
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetIfError::Ip {
            command: command.clone(),
            detail: format!("{e} (is iproute2 installed?)"),
        })?;
    if !output.status.success() {
        return Err(NetIfError::Ip {
            command,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Parses `ip -4 -o addr show` output: `2: eth0    inet 10.0.0.5/24 brd … scope global eth0`.
fn parse_ip_addr_show(output: &str) -> Vec<Ipv4Cidr> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.parse().ok()
        })
        .collect()
}

const IFF_UP: u32 = 0x1;

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
    fn ip_output_is_parsed() {
        let out = "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                   2: eth0    inet 192.168.242.1/24 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            parse_ip_addr_show(out),
            [
                "10.0.0.5/24".parse().unwrap(),
                "192.168.242.1/24".parse().unwrap()
            ]
        );
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
    fn loopback_is_found_and_missing_is_named() {
        let lo = Interface::lookup("lo").unwrap();
        assert!(lo.up);
        assert!(lo.addrs.iter().any(|a| a.addr == Ipv4Addr::LOCALHOST));
        let err = Interface::lookup("nonexistent0").unwrap_err().to_string();
        assert!(err.contains("nonexistent0"), "{err}");
        assert!(Interface::lookup("../etc").is_err());
    }
}
