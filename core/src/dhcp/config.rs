//! Server configuration: mode, pools, reservations, link capabilities (RFC 2131 §4.3).

use core::net::Ipv4Addr;
use core::time::Duration;

use super::{BootRule, IgnoreReason};
use crate::wire::dhcp::Repr;
use crate::wire::dhcp_option::OptionBytes;

/// Server configuration. All borrowed data lives as long as the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DhcpConfig<'a> {
    /// Our address: the server identifier (option 54) and default next server.
    pub server_ip: Ipv4Addr,
    /// The mask of our directly attached subnet (option 1 for local clients).
    pub subnet_mask: Ipv4Addr,
    /// Address-giving or proxy.
    pub mode: Mode<'a>,
    /// The boot table; see [`choose`](super::choose).
    pub boot: &'a [BootRule<'a>],
    /// Fixed addresses by MAC (authoritative mode).
    pub reservations: &'a [Reservation],
    /// What the driver can send.
    pub link: LinkCaps,
    /// The TFTP server put in `siaddr` (default: `server_ip`); a rule's `next_server` wins.
    pub tftp_server: Option<Ipv4Addr>,
    /// Put in the BOOTP `sname` field and option 66, if set.
    pub server_name: Option<&'a str>,
    /// How long an offered address stays reserved for the client (RFC 2131 §4.3.1). Default
    /// 60 s.
    pub offer_hold: Duration,
    /// How long a declined address stays unused (RFC 2131 §4.3.3). Default 10 min.
    pub decline_hold: Duration,
    /// The port of an HTTP server that serves the same files as TFTP, if one runs.
    ///
    /// A plain boot path becomes `http://SERVER[:PORT]/PATH` (SERVER is the rule's next
    /// server) for UEFI HTTP boot clients always, on port 80 when this is `None` (they can
    /// load nothing else, UEFI 2.x §24.7), and for clients running iPXE when it is `Some`
    /// (iPXE speaks HTTP; the relative paths in its script then resolve to HTTP too).
    pub http_port: Option<u16>,
}

impl<'a> DhcpConfig<'a> {
    /// A configuration with an empty boot table, no reservations, broadcast-only replies and
    /// the default hold times.
    pub const fn new(server_ip: Ipv4Addr, subnet_mask: Ipv4Addr, mode: Mode<'a>) -> Self {
        Self {
            server_ip,
            subnet_mask,
            mode,
            boot: &[],
            reservations: &[],
            link: LinkCaps {
                unicast_to_mac: false,
            },
            tftp_server: None,
            server_name: None,
            offer_hold: Duration::from_secs(60),
            decline_hold: Duration::from_secs(600),
            http_port: None,
        }
    }
}

/// An infinite lease: option 51 is `0xffffffff` seconds, which RFC 2131 §3.3 reads as
/// infinite. The server keeps the binding for that long (136 years).
pub const INFINITE_LEASE: Duration = Duration::from_secs(0xffff_ffff);

/// Whether this server gives out addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode<'a> {
    /// A full DHCP server for `pool` (RFC 2131 §4.3).
    Authoritative {
        /// Addresses to lease on our own subnet.
        pool: Pool,
        /// Lease time (option 51); T1 and T2 (58, 59) are 1/2 and 7/8 of it (RFC 2131 §4.4.5).
        /// [`INFINITE_LEASE`] or longer: an infinite lease (`0xffffffff`, RFC 2131 §3.3),
        /// sent without T1 and T2.
        lease_time: Duration,
        /// Option 3.
        router: Option<Ipv4Addr>,
        /// Option 6 (up to 63 addresses are sent).
        dns: &'a [Ipv4Addr],
        /// Option 28.
        broadcast: Option<Ipv4Addr>,
        /// Pools for clients behind relay agents, chosen by `giaddr`'s subnet, or by the link
        /// selection sub-option of option 82 when the relay sends one (RFC 3527 §3).
        relay_subnets: &'a [RelaySubnet<'a>],
    },
    /// proxyDHCP: boot information only, `yiaddr` 0 (PXE spec 2.1 §2.2.5, docs/protocol.md §2).
    Proxy,
}

/// An inclusive range of addresses to lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pool {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address (inclusive).
    pub end: Ipv4Addr,
}

impl Pool {
    /// Whether `ip` lies in the pool.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.start)..=u32::from(self.end)).contains(&u32::from(ip))
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        (u32::from(self.start)..=u32::from(self.end)).map(Ipv4Addr::from)
    }
}

/// A subnet reached through a relay agent (RFC 2131 §4.3.1: the server picks the address from
/// `giaddr`'s subnet; RFC 3527: or from the subnet the relay names in option 82 sub-option 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RelaySubnet<'a> {
    /// Addresses to lease there; the subnet is `pool.start` under `subnet_mask`.
    pub pool: Pool,
    /// Option 1 for clients there.
    pub subnet_mask: Ipv4Addr,
    /// Option 3 for clients there. `None`: the relay's `giaddr` when it lies in this subnet
    /// (the relay agent's address on the client's link, normally its router), else no option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 6 for clients there; empty: the server's own `dns`.
    pub dns: &'a [Ipv4Addr],
    /// The lease time there; `None`: the server's own `lease_time`.
    pub lease_time: Option<Duration>,
    /// The boot table for clients there; empty: the server's own
    /// [`boot`](DhcpConfig::boot). It replaces that table whole (per-MAC rules included).
    pub boot: &'a [BootRule<'a>],
}

impl RelaySubnet<'_> {
    /// A subnet with `pool` under `subnet_mask`, the relay as router, the server's DNS servers,
    /// lease time and boot table.
    pub const fn new(pool: Pool, subnet_mask: Ipv4Addr) -> Self {
        Self {
            pool,
            subnet_mask,
            router: None,
            dns: &[],
            lease_time: None,
            boot: &[],
        }
    }
}

/// Sub-option 5 of option 82, link selection (RFC 3527 §3): the subnet the client sits on,
/// when it differs from `giaddr`'s. `None` if absent, malformed or not 4 bytes long.
pub fn link_selection(relay_agent_info: OptionBytes<'_>) -> Option<Ipv4Addr> {
    let mut bytes = relay_agent_info.bytes();
    // Sub-options are code, length, data (RFC 3046 §2.0); bounded by the option's length.
    while let (Some(code), Some(len)) = (bytes.next(), bytes.next()) {
        if code == LINK_SELECTION && len == 4 {
            let mut addr = [0u8; 4];
            for b in &mut addr {
                *b = bytes.next()?;
            }
            return Some(Ipv4Addr::from(addr));
        }
        for _ in 0..len {
            bytes.next()?;
        }
    }
    None
}

/// A fixed address for one MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reservation {
    /// The client.
    pub mac: [u8; 6],
    /// Its address (need not lie in a pool, but must lie in the client's subnet).
    pub ip: Ipv4Addr,
}

/// What the driver's link layer can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkCaps {
    /// The driver can send IP unicast to a MAC without ARP ([`crate::net::Destination::UnicastToMac`]).
    pub unicast_to_mac: bool,
}

/// The link selection sub-option of option 82 (RFC 3527 §3).
const LINK_SELECTION: u8 = 5;

/// The subnet a client sits on.
#[derive(Clone, Copy)]
pub(super) struct Subnet<'a> {
    pub(super) pool: Pool,
    pub(super) mask: Ipv4Addr,
    pub(super) router: Option<Ipv4Addr>,
    pub(super) broadcast: Option<Ipv4Addr>,
    pub(super) dns: &'a [Ipv4Addr],
    pub(super) lease_time: Duration,
    pub(super) boot: &'a [BootRule<'a>],
}

impl Subnet<'_> {
    pub(super) fn holds(&self, ip: Ipv4Addr) -> bool {
        same_net(ip, self.pool.start, self.mask)
    }
}

impl<'a> DhcpConfig<'a> {
    /// Whether `mac` may hold `ip` on `subnet`: its reservation, or a pool address that is not
    /// ours and not reserved for someone else.
    pub(super) fn allowed(&self, mac: [u8; 6], ip: Ipv4Addr, subnet: &Subnet<'_>) -> bool {
        let mut reserved = self.reservations.iter().filter(|r| r.ip == ip);
        if reserved.clone().any(|r| r.mac == mac) {
            return subnet.holds(ip);
        }
        subnet.pool.contains(ip)
            && reserved.next().is_none()
            && ip != self.server_ip
            && Some(ip) != self.tftp_server
            && !ip.is_unspecified()
            && !ip.is_broadcast()
    }

    /// The subnet of a client: ours, or the relay's (RFC 2131 §4.3.1): the one holding the
    /// link selection address of option 82 if the relay sent one (RFC 3527 §3), else the one
    /// holding `giaddr`.
    pub(super) fn subnet_for(&self, req: &Repr<'_>) -> Result<Subnet<'a>, IgnoreReason> {
        let Mode::Authoritative {
            pool,
            lease_time,
            router,
            dns,
            broadcast,
            relay_subnets,
        } = self.mode
        else {
            return Err(IgnoreReason::UnexpectedMessage);
        };
        let giaddr = req.relay_agent_ip;
        let link = match req.relay_agent_info.and_then(link_selection) {
            Some(link) if !giaddr.is_unspecified() => link,
            _ => giaddr,
        };
        if link.is_unspecified() || same_net(link, self.server_ip, self.subnet_mask) {
            return Ok(Subnet {
                pool,
                mask: self.subnet_mask,
                router,
                broadcast,
                dns,
                lease_time,
                boot: self.boot,
            });
        }
        relay_subnets
            .iter()
            .find(|r| same_net(link, r.pool.start, r.subnet_mask))
            .map(|r| Subnet {
                pool: r.pool,
                mask: r.subnet_mask,
                router: r
                    .router
                    .or_else(|| same_net(giaddr, r.pool.start, r.subnet_mask).then_some(giaddr)),
                broadcast: None,
                dns: if r.dns.is_empty() { dns } else { r.dns },
                lease_time: r.lease_time.unwrap_or(lease_time),
                boot: if r.boot.is_empty() { self.boot } else { r.boot },
            })
            .ok_or(IgnoreReason::NoSubnetForRelay)
    }
}

pub(super) fn same_net(a: Ipv4Addr, b: Ipv4Addr, mask: Ipv4Addr) -> bool {
    let m = u32::from(mask);
    u32::from(a) & m == u32::from(b) & m
}
