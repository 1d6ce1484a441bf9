//! IPv6 router advertisements that say "no router here" on the served interface.
//!
//! Clients such as iPXE configure IPv4 and IPv6 together and, on a link where nobody answers
//! their router solicitations, wait about 13 s before they boot anything. This task answers
//! every solicitation (RFC 4861 §6.2.6) with the advertisement the core builds
//! ([`RouterAdvertisement::no_router`]: router lifetime 0, no prefix information, M and O
//! clear), so no client takes this server as its IPv6 router, an address or a DHCPv6 hint from
//! it, and sends one unsolicited advertisement when it starts.
//!
//! The socket is a raw ICMPv6 socket bound to the interface (made while still privileged:
//! it needs CAP_NET_RAW), joined to the all-routers group, sending with hop limit 255. The
//! kernel drops solicitations with a bad checksum or a hop limit below 255 (`IPV6_MINHOPCOUNT`)
//! before they arrive; the core checks the rest. Replies go to the soliciting address, or to
//! all nodes when it is unspecified, at most one such multicast per 3 s
//! (`MIN_DELAY_BETWEEN_RAS`, RFC 4861 §10); the advertisement's source is the interface's
//! link-local address (RFC 4861 §6.1.2), which the kernel also picks for these destinations.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use pocketpxe_core::wire::ndisc::{
    ALL_NODES, ALL_ROUTERS, HOP_LIMIT, RouterAdvertisement, RouterSolicitation,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::sys::shutdown::Shutdown;

/// The router advertisement task of one interface.
#[derive(Debug)]
pub struct RouterAdvertiser {
    socket: AsyncFd<Socket>,
    interface: String,
    index: u32,
    mac: [u8; 6],
}

impl RouterAdvertiser {
    /// Opens the raw ICMPv6 socket on `interface` (index `index`, MAC `mac`).
    ///
    /// # Errors
    /// The failing step, e.g. without CAP_NET_RAW or when the kernel has IPv6 disabled.
    pub fn bind(interface: &str, index: u32, mac: [u8; 6]) -> io::Result<Self> {
        let step = |what: &'static str| {
            move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(step("raw ICMPv6 socket (needs CAP_NET_RAW)"))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(step("binding to the interface"))?;
        socket
            .join_multicast_v6(&ALL_ROUTERS, index)
            .map_err(step("joining ff02::2"))?;
        socket
            .set_multicast_if_v6(index)
            .map_err(step("multicast interface"))?;
        socket
            .set_multicast_hops_v6(u32::from(HOP_LIMIT))
            .map_err(step("multicast hop limit"))?;
        socket
            .set_unicast_hops_v6(u32::from(HOP_LIMIT))
            .map_err(step("unicast hop limit"))?;
        socket
            .set_multicast_loop_v6(false)
            .map_err(step("multicast loop"))?;
        set_min_hop_count(&socket).map_err(step("minimum hop count"))?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            // SAFETY: the socket owns its descriptor, which stays open and the same for as
            // long as the `AsyncFd` owns the socket.
            socket: unsafe { AsyncFd::register(socket) }?,
            interface: interface.to_owned(),
            index,
            mac,
        })
    }

    /// Advertises once, then answers solicitations until `shutdown` fires. Send failures are
    /// logged (an interface without a usable link-local address yet is retried at the next
    /// solicitation or start-up attempt), never fatal.
    ///
    /// # Errors
    /// Receiving failed for a reason other than an interrupted or empty read.
    pub async fn run(self, mut shutdown: Shutdown) -> io::Result<()> {
        tracing::info!(interface = %self.interface,
            "router advertisements on (lifetime 0, no prefix: clients stop waiting for IPv6 routers)");
        let mut pacing = Pacing::default();
        // At start, and again while the link-local address is still tentative (DAD, ~1 s).
        let mut startup = STARTUP_TRIES.iter().copied();
        let mut next_startup = Some(tokio::time::Instant::now());
        let mut buf = vec![MaybeUninit::<u8>::uninit(); RX_BUF_LEN];
        loop {
            let wake = next_startup
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                () = shutdown.requested() => return Ok(()),
                () = tokio::time::sleep_until(wake), if next_startup.is_some() => {
                    let sent = self.advertise(SocketAddrV6::new(ALL_NODES, 0, 0, self.index));
                    next_startup = if sent {
                        pacing.multicast_sent(Instant::now());
                        None
                    } else {
                        startup.next().map(|d| tokio::time::Instant::now() + d)
                    };
                }
                ready = self.socket.readable() => {
                    let mut guard = ready?;
                    match guard.try_io(|s| s.get_ref().recv_from(&mut buf)) {
                        Ok(Ok((len, from))) => {
                            let bytes: Vec<u8> = buf[..len]
                                .iter()
                                .map(|b| assume_received(*b))
                                .collect();
                            self.solicited(&bytes, &from, &mut pacing);
                        }
                        Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_would_block) => {}
                    }
                }
            }
        }
    }

    /// Answers one received ICMPv6 message if it is a valid router solicitation.
    fn solicited(&self, bytes: &[u8], from: &SockAddr, pacing: &mut Pacing) {
        let Some(src) = from.as_socket_ipv6() else {
            return;
        };
        // The kernel delivers what arrived for ff02::2 (joined) or for our own addresses; the
        // checksum covers the destination, so try both that a solicitation may have.
        let link_local = link_local_of(self.index).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let parsed = RouterSolicitation::parse(bytes, *src.ip(), ALL_ROUTERS)
            .or_else(|_| RouterSolicitation::parse(bytes, *src.ip(), link_local));
        let rs = match parsed {
            Ok(rs) => rs,
            Err(pocketpxe_core::WireError::UnknownOpcode { .. }) => return,
            Err(e) => {
                tracing::debug!(interface = %self.interface, from = %src.ip(), error = %e,
                    "router solicitation dropped");
                return;
            }
        };
        let now = Instant::now();
        let dst = if src.ip().is_unspecified() {
            if !pacing.multicast_allowed(now) {
                return;
            }
            SocketAddrV6::new(ALL_NODES, 0, 0, self.index)
        } else {
            if !pacing.unicast_allowed(now) {
                return;
            }
            SocketAddrV6::new(*src.ip(), 0, 0, self.index)
        };
        tracing::debug!(interface = %self.interface, from = %src.ip(),
            mac = ?rs.source_link_addr.map(|m| crate::sys::netif::format_mac(&m)),
            to = %dst.ip(), "router solicitation answered");
        if self.advertise(dst) && dst.ip() == &ALL_NODES {
            pacing.multicast_sent(now);
        }
    }

    /// Sends the advertisement to `dst`; whether it went out.
    fn advertise(&self, dst: SocketAddrV6) -> bool {
        let Some(src) = link_local_of(self.index) else {
            tracing::debug!(interface = %self.interface,
                "no usable IPv6 link-local address yet: router advertisement not sent");
            return false;
        };
        let ra = RouterAdvertisement::no_router(self.mac);
        let mut out = [0u8; 64];
        let Ok(len) = ra.emit(src, *dst.ip(), &mut out) else {
            tracing::error!("bug: router advertisement longer than its buffer");
            return false;
        };
        match self.socket.get_ref().send_to(&out[..len], &dst.into()) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(interface = %self.interface, to = %dst.ip(), error = %e,
                    "router advertisement not sent");
                false
            }
        }
    }
}

/// The interface's link-local address that is ready for use (not tentative, not failed DAD),
/// from `/proc/net/if_inet6`.
pub fn link_local_of(index: u32) -> Option<Ipv6Addr> {
    let table = std::fs::read_to_string("/proc/net/if_inet6").ok()?;
    parse_if_inet6(&table, index)
}

/// Reads `/proc/net/if_inet6` lines: address (32 hex digits), index, prefix length, scope,
/// flags (all hex), name.
fn parse_if_inet6(table: &str, index: u32) -> Option<Ipv6Addr> {
    table.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let addr = fields.next()?;
        let hex = |f: Option<&str>| f.and_then(|f| u32::from_str_radix(f, 16).ok());
        let (idx, _prefix, scope, flags) = (
            hex(fields.next())?,
            fields.next(),
            hex(fields.next())?,
            hex(fields.next())?,
        );
        let usable = idx == index && scope == SCOPE_LINK && flags & (TENTATIVE | DAD_FAILED) == 0;
        if !usable || addr.len() != 32 {
            return None;
        }
        u128::from_str_radix(addr, 16).ok().map(Ipv6Addr::from)
    })
}

/// Rate limits: multicast advertisements at most one per `MIN_DELAY_BETWEEN_RAS` (RFC 4861
/// §10), unicast replies at most `UNICAST_PER_SECOND` a second (a flood of solicitations must
/// not become a flood of advertisements).
#[derive(Debug, Default)]
struct Pacing {
    last_multicast: Option<Instant>,
    window_start: Option<Instant>,
    in_window: u32,
}

impl Pacing {
    fn multicast_allowed(&self, now: Instant) -> bool {
        self.last_multicast
            .is_none_or(|t| now.duration_since(t) >= MIN_DELAY_BETWEEN_RAS)
    }

    fn multicast_sent(&mut self, now: Instant) {
        self.last_multicast = Some(now);
    }

    fn unicast_allowed(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {
                self.in_window += 1;
                self.in_window <= UNICAST_PER_SECOND
            }
            _ => {
                self.window_start = Some(now);
                self.in_window = 1;
                true
            }
        }
    }
}

/// Drops arriving packets whose hop limit is below 255 (RFC 4861 §6.1.1: such a solicitation
/// crossed a router). Linux's `IPV6_MINHOPCOUNT`.
fn set_min_hop_count(socket: &Socket) -> io::Result<()> {
    let value: libc::c_int = libc::c_int::from(HOP_LIMIT);
    // SAFETY: `value` is a live c_int and its size is passed with it; the descriptor is open.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_MINHOPCOUNT,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A received byte; `recv_from` wrote it.
fn assume_received(b: MaybeUninit<u8>) -> u8 {
    // SAFETY: only called on the `len` bytes `recv_from` reported as written.
    unsafe { b.assume_init() }
}

/// Waits between start-up attempts while the link-local address is not usable yet.
const STARTUP_TRIES: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
/// RFC 4861 §10 `MIN_DELAY_BETWEEN_RAS`.
const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
const UNICAST_PER_SECOND: u32 = 50;
const RX_BUF_LEN: usize = 1500;
/// `IFA_F_TENTATIVE` and `IFA_F_DADFAILED` (linux/if_addr.h), scope `link` (`RT_SCOPE_LINK` as
/// /proc prints IPv6 scopes: `IPV6_ADDR_LINKLOCAL` 0x20).
const TENTATIVE: u32 = 0x40;
const DAD_FAILED: u32 = 0x08;
const SCOPE_LINK: u32 = 0x20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_inet6_lines() {
        let table = "\
00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000505400fffe123456 03 40 20 80     eth1
fe800000000000000000000000000abc 04 40 20 40     eth2
20010db8000000000000000000000001 04 40 00 80     eth2
fe800000000000000000000000000def 04 40 20 80     eth2
";
        assert_eq!(
            parse_if_inet6(table, 3),
            Some("fe80::5054:ff:fe12:3456".parse().unwrap())
        );
        // Tentative and global addresses are skipped.
        assert_eq!(parse_if_inet6(table, 4), Some("fe80::def".parse().unwrap()));
        assert_eq!(parse_if_inet6(table, 1), None);
        assert_eq!(parse_if_inet6("garbage\n\n01 02", 1), None);
    }

    #[test]
    fn pacing_limits_multicast_and_unicast() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        assert!(p.multicast_allowed(t0));
        p.multicast_sent(t0);
        assert!(!p.multicast_allowed(t0 + Duration::from_secs(2)));
        assert!(p.multicast_allowed(t0 + Duration::from_secs(3)));
        let allowed = (0..100).filter(|_| p.unicast_allowed(t0)).count();
        assert_eq!(allowed, UNICAST_PER_SECOND as usize);
        assert!(p.unicast_allowed(t0 + Duration::from_secs(1)));
    }
}
