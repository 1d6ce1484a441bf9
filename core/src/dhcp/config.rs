//! Server configuration: mode, pools, reservations, link capabilities (RFC 2131 §4.3).

use core::net::Ipv4Addr;
use core::time::Duration;

use super::{BootRule, IgnoreReason};

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
        /// Pools for clients behind relay agents, chosen by `giaddr`'s subnet.
        relay_subnets: &'a [RelaySubnet],
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
/// `giaddr`'s subnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RelaySubnet {
    /// Addresses to lease there; the subnet is `pool.start` under `subnet_mask`.
    pub pool: Pool,
    /// Option 1 for clients there.
    pub subnet_mask: Ipv4Addr,
    /// Option 3 for clients there.
    pub router: Option<Ipv4Addr>,
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

/// The subnet a client sits on.
#[derive(Clone, Copy)]
pub(super) struct Subnet {
    pub(super) pool: Pool,
    pub(super) mask: Ipv4Addr,
    pub(super) router: Option<Ipv4Addr>,
    pub(super) broadcast: Option<Ipv4Addr>,
}

impl Subnet {
    pub(super) fn holds(&self, ip: Ipv4Addr) -> bool {
        same_net(ip, self.pool.start, self.mask)
    }
}

impl DhcpConfig<'_> {
    /// Whether `mac` may hold `ip` on `subnet`: its reservation, or a pool address that is not
    /// ours and not reserved for someone else.
    pub(super) fn allowed(&self, mac: [u8; 6], ip: Ipv4Addr, subnet: &Subnet) -> bool {
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

    /// The subnet of a client: ours, or the relay's (RFC 2131 §4.3.1).
    pub(super) fn subnet_for(&self, giaddr: Ipv4Addr) -> Result<Subnet, IgnoreReason> {
        let Mode::Authoritative {
            pool,
            router,
            broadcast,
            relay_subnets,
            ..
        } = self.mode
        else {
            return Err(IgnoreReason::UnexpectedMessage);
        };
        if giaddr.is_unspecified() || same_net(giaddr, self.server_ip, self.subnet_mask) {
            return Ok(Subnet {
                pool,
                mask: self.subnet_mask,
                router,
                broadcast,
            });
        }
        relay_subnets
            .iter()
            .find(|r| same_net(giaddr, r.pool.start, r.subnet_mask))
            .map(|r| Subnet {
                pool: r.pool,
                mask: r.subnet_mask,
                router: r.router,
                broadcast: None,
            })
            .ok_or(IgnoreReason::NoSubnetForRelay)
    }

    pub(super) fn lease_time(&self) -> Duration {
        match self.mode {
            Mode::Authoritative { lease_time, .. } => lease_time,
            Mode::Proxy => Duration::ZERO,
        }
    }
}

pub(super) fn same_net(a: Ipv4Addr, b: Ipv4Addr, mask: Ipv4Addr) -> bool {
    let m = u32::from(mask);
    u32::from(a) & m == u32::from(b) & m
}
