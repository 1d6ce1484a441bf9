//! DHCP server with PXE extensions, sans-IO (RFC 2131, RFC 2132, RFC 4578, PXE spec 2.1).
//!
//! [`DhcpServer`] answers DHCP on port 67 in one of two [`Mode`]s, and PXE boot-server requests
//! on port 4011 in both:
//! * **Authoritative**: hands out addresses from a [`Pool`] (plus static [`Reservation`]s) and
//!   adds boot information for PXE/HTTP boot clients.
//! * **Proxy** (proxyDHCP, PXE spec 2.1 §2.2.5): another server hands out addresses; this one
//!   only answers PXE clients, with `yiaddr` 0 and the boot file.
//!
//! ## Driver contract for leases (durable before ACK)
//! Every lease change is reported as a [`DhcpEvent`], queued *before* [`DhcpServer::handle`]
//! returns the reply that announces it. A driver that persists leases therefore does, after
//! each `handle`:
//! 1. drain [`DhcpServer::poll_event`] and write each event durably;
//! 2. only then send the reply (a DHCPACK must never reach a client for a lease the driver has
//!    not stored);
//! 3. sleep until [`DhcpServer::poll_timeout`] and call [`DhcpServer::handle_timeout`].
//!
//! This is the crate's general run loop with steps 1 and 3 swapped, which is allowed for DHCP
//! because `handle` has no `poll_transmit` queue: its one reply is returned directly. On start,
//! the driver feeds stored leases back with [`DhcpServer::restore`].
//!
//! If the driver stops draining events and the queue fills, requests that would change a lease
//! are ignored ([`IgnoreReason::EventQueueFull`]) rather than acknowledged unreported; the
//! client retransmits.

use core::fmt::{self, Write as _};
use core::net::Ipv4Addr;
use core::time::Duration;

use managed::ManagedSlice;

use crate::net::{InsufficientSize, Received, Transmit};
use crate::time::Instant;
use crate::wire;
use crate::wire::dhcp::{MessageType, Op, Packet, Repr};
use crate::wire::dhcp_option::{AddrList, OptionBytes, OptionIter};

mod boot;
mod lease;
mod lease_table;
mod reply;

pub use boot::{
    BootChoice, BootRule, ClientClass, ClientInfo, ProxyStrategy, UnknownClass, choose,
};
pub use lease::{Lease, LeaseSlot};

use lease::{Entry, State};
use lease_table::LeaseTable;

/// The PXE boot server port (PXE spec 2.1 §2.2.1).
pub const PXE_PORT: u16 = 4011;

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
    /// The boot table; see [`choose`].
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
        }
    }
}

/// Whether this server gives out addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode<'a> {
    /// A full DHCP server for `pool` (RFC 2131 §4.3).
    Authoritative {
        /// Addresses to lease on our own subnet.
        pool: Pool,
        /// Lease time (option 51); T1 and T2 (58, 59) are 1/2 and 7/8 of it (RFC 2131 §4.4.5).
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
    /// proxyDHCP: boot information only, `yiaddr` 0 (PXE spec 2.1 §2.2.5, PROTOCOL.md §2).
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

/// The result of [`DhcpServer::handle`].
#[must_use = "a Reply must be sent and an Ignored reason should be logged"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DhcpOutcome {
    /// Send `tx[..len]` to the destination (after draining events, see the module docs).
    Reply(Transmit),
    /// The message was processed and the protocol wants no reply (DHCPDECLINE, DHCPRELEASE).
    Handled,
    /// The message was dropped, for this reason.
    Ignored(IgnoreReason),
}

/// Why a message got no reply.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IgnoreReason {
    /// The bytes are not a DHCP message.
    Malformed(wire::Error),
    /// `op` is BOOTREPLY: another server's answer.
    NotBootRequest,
    /// `htype`/`hlen` is not Ethernet.
    UnsupportedHardware,
    /// No option 53: plain BOOTP, which pocketpxe does not serve.
    NotDhcp,
    /// Option 53 holds a value RFC 2132 §9.6 does not define.
    UnknownMessageType {
        /// The value.
        code: u8,
    },
    /// A message type a server does not answer here (e.g. DHCPOFFER from a client, INFORM to a
    /// proxy).
    UnexpectedMessage,
    /// The client chose another server (option 54, RFC 2131 §4.3.2); our offer was withdrawn.
    OtherServerId,
    /// A proxy got a DHCPREQUEST on port 67 not addressed to it: the real server answers.
    NotAddressedToUs,
    /// No free address in the pool.
    PoolExhausted,
    /// Every lease slot is in use.
    LeaseTableFull,
    /// Not a PXE or HTTP boot client (proxy mode and port 4011 only serve those).
    NotPxeClient,
    /// A boot client for which the boot table has no rule (proxy mode, port 4011).
    NoBootRule,
    /// The boot file (or URL) does not fit the 128-byte BOOTP `file` field with its NUL.
    BootFileTooLong,
    /// `giaddr` lies in no configured subnet.
    NoSubnetForRelay,
    /// DECLINE/RELEASE for an address this client does not hold.
    UnknownLease,
    /// A DHCPREQUEST/DECLINE without the address it is about (options 50 / `ciaddr`).
    MissingAddress,
    /// The reply does not fit the client's maximum message size (option 57 or 576).
    ReplyTooLarge,
    /// Events were not drained; a lease change would go unreported.
    EventQueueFull,
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed DHCP message: {e}"),
            Self::NotBootRequest => f.write_str("not a BOOTREQUEST"),
            Self::UnsupportedHardware => f.write_str("hardware type is not Ethernet"),
            Self::NotDhcp => f.write_str("plain BOOTP (no message type) is not served"),
            Self::UnknownMessageType { code } => write!(f, "unknown DHCP message type {code}"),
            Self::UnexpectedMessage => f.write_str("message type not expected here"),
            Self::OtherServerId => f.write_str("client chose another DHCP server"),
            Self::NotAddressedToUs => f.write_str("request is for the address-giving server"),
            Self::PoolExhausted => f.write_str("address pool exhausted"),
            Self::LeaseTableFull => f.write_str("lease table full"),
            Self::NotPxeClient => f.write_str("not a PXE/HTTP boot client"),
            Self::NoBootRule => f.write_str("no boot rule for this client"),
            Self::BootFileTooLong => f.write_str("boot file name longer than 127 bytes"),
            Self::NoSubnetForRelay => f.write_str("relay address in no configured subnet"),
            Self::UnknownLease => f.write_str("client holds no such lease"),
            Self::MissingAddress => f.write_str("request names no address"),
            Self::ReplyTooLarge => f.write_str("reply exceeds the client's maximum message size"),
            Self::EventQueueFull => f.write_str("lease events not drained"),
        }
    }
}

impl core::error::Error for IgnoreReason {}

/// A lease change the driver should persist (see the module docs for the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DhcpEvent {
    /// A new binding, acknowledged by the DHCPACK `handle` just returned.
    LeaseGranted(Lease),
    /// An existing binding extended (renewal, rebinding, or re-request), acknowledged likewise.
    LeaseRenewed(Lease),
    /// The client released its lease (RFC 2131 §4.3.4).
    LeaseReleased(Lease),
    /// The client declined the address as in use (RFC 2131 §4.3.3); it stays unused until
    /// `expires_at`. Any lease on it is gone.
    LeaseDeclined(Lease),
    /// The lease ran out.
    LeaseExpired(Lease),
}

/// The DHCP/proxyDHCP/PXE boot server.
#[derive(Debug)]
pub struct DhcpServer<'a> {
    cfg: DhcpConfig<'a>,
    slots: LeaseTable<'a>,
    events: EventQueue,
}

impl<'a> DhcpServer<'a> {
    /// A server with `cfg` and a lease table over `leases` (whose length bounds the number of
    /// clients with an offer or a lease at once). Slots are cleared.
    pub fn new(cfg: DhcpConfig<'a>, leases: impl Into<ManagedSlice<'a, LeaseSlot>>) -> Self {
        let pool = match cfg.mode {
            Mode::Authoritative { pool, .. } => Some(pool),
            Mode::Proxy => None,
        };
        Self {
            cfg,
            slots: LeaseTable::new(leases.into(), pool),
            events: EventQueue::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DhcpConfig<'a> {
        &self.cfg
    }

    /// Handles one datagram that arrived on port 67 or 4011 (`rx.dst.port()` tells which) and
    /// writes the reply, if any, into `tx`.
    ///
    /// Lease changes are queued as events before this returns (see the module docs).
    ///
    /// # Errors
    /// [`InsufficientSize`] if `tx` cannot hold the reply; nothing changed then.
    pub fn handle(
        &mut self,
        now: Instant,
        rx: &Received<'_>,
        tx: &mut [u8],
    ) -> Result<DhcpOutcome, InsufficientSize> {
        // Keep one event slot free for this message's own lease change.
        self.expire(now, 1);
        let req = match Packet::new_checked(rx.payload).and_then(|p| Repr::parse(&p)) {
            Ok(req) => req,
            Err(e) => return Ok(DhcpOutcome::Ignored(IgnoreReason::Malformed(e))),
        };
        if req.op != Op::Request {
            return ignored(IgnoreReason::NotBootRequest);
        }
        let Some(mac) = req.client_hw_addr.mac() else {
            return ignored(IgnoreReason::UnsupportedHardware);
        };
        let Some(msg) = req.message_type else {
            return ignored(IgnoreReason::NotDhcp);
        };
        if let MessageType::Unknown(code) = msg {
            return ignored(IgnoreReason::UnknownMessageType { code });
        }
        let ctx = Ctx {
            now,
            rx,
            req: &req,
            mac,
            msg,
            info: ClientInfo::classify(&req),
        };
        trace!("dhcp: {:?} from {:?}", msg, mac);
        let mut scratch = Scratch::new();
        let plan = if rx.dst.port() == PXE_PORT {
            self.boot_server(&ctx, &mut scratch)
        } else {
            match self.cfg.mode {
                Mode::Proxy => self.proxy(&ctx, &mut scratch),
                Mode::Authoritative { .. } => self.authoritative(&ctx, &mut scratch),
            }
        };
        match plan {
            Ok(plan) => self.finish(&ctx, plan, tx),
            Err(reason) => ignored(reason),
        }
    }

    /// The next lease, offer or quarantine expiry, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        lease::next_expiry(&self.slots)
    }

    /// Expires leases, offers and quarantined addresses due at `now`. Spurious calls are no-ops.
    /// Expired leases are reported as [`DhcpEvent::LeaseExpired`]; if the event queue is full,
    /// the rest wait for the next call (and `poll_timeout` stays in the past).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now, 0);
    }

    /// The next lease change to persist.
    pub fn poll_event(&mut self) -> Option<DhcpEvent> {
        self.events.pop()
    }

    /// The current leases (bound addresses; offers and declined addresses are not listed).
    pub fn leases(&self) -> impl Iterator<Item = &Lease> + '_ {
        self.slots.iter().filter_map(LeaseSlot::lease)
    }

    /// Puts a stored lease back into the table (on start, before handling traffic). Its
    /// `expires_at` must be in this run's clock domain; a lease already past is reported as
    /// expired at the next `handle_timeout`.
    ///
    /// # Errors
    /// [`RestoreError::Conflict`] if another MAC holds the address,
    /// [`RestoreError::TableFull`] if no slot is free.
    pub fn restore(&mut self, lease: Lease) -> Result<(), RestoreError> {
        let entry = Entry {
            lease,
            state: State::Bound,
        };
        let slot = match lease::holder(&self.slots, lease.ip) {
            Some((i, held)) if held.lease.mac == lease.mac => i,
            Some(_) => return Err(RestoreError::Conflict),
            None => lease::free_slot(&self.slots).ok_or(RestoreError::TableFull)?,
        };
        self.set(slot, Some(entry));
        Ok(())
    }
}

/// Why [`DhcpServer::restore`] refused a lease.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// Another MAC already holds the address.
    Conflict,
    /// Every slot is in use.
    TableFull,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict => f.write_str("address already leased to another client"),
            Self::TableFull => f.write_str("lease table full"),
        }
    }
}

impl core::error::Error for RestoreError {}

/// One request being handled.
struct Ctx<'r, 'p> {
    now: Instant,
    rx: &'r Received<'p>,
    req: &'r Repr<'p>,
    mac: [u8; 6],
    msg: MessageType,
    info: ClientInfo,
}

/// The decided answer: a reply to emit and the table change to commit if it goes out.
struct Plan<'r> {
    reply: Option<Repr<'r>>,
    nak: bool,
    commit: Commit,
}

/// A table change, applied only once the reply is known to fit (STYLE.md R2).
#[derive(Clone, Copy)]
enum Commit {
    Nothing,
    Set {
        slot: usize,
        entry: Option<Entry>,
        event: Option<DhcpEvent>,
    },
}

/// Bytes a reply borrows that are built per request.
struct Scratch {
    url: [u8; 128],
    server_name: [u8; 16],
    vendor: [u8; 8],
}

impl Scratch {
    fn new() -> Self {
        Self {
            url: [0; 128],
            server_name: [0; 16],
            vendor: [0; 8],
        }
    }
}

/// The subnet a client sits on.
#[derive(Clone, Copy)]
struct Subnet {
    pool: Pool,
    mask: Ipv4Addr,
    router: Option<Ipv4Addr>,
    broadcast: Option<Ipv4Addr>,
}

impl Subnet {
    fn holds(&self, ip: Ipv4Addr) -> bool {
        same_net(ip, self.pool.start, self.mask)
    }
}

impl<'a> DhcpServer<'a> {
    /// Port 4011: the PXE boot server answers a DHCPREQUEST with a DHCPACK carrying the boot
    /// file, to the request's source (PXE spec 2.1 §2.2.1, PROTOCOL.md §2 strategy A).
    fn boot_server<'r>(
        &self,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<Plan<'r>, IgnoreReason>
    where
        'a: 'r,
    {
        if !matches!(ctx.msg, MessageType::Request | MessageType::Inform) {
            return Err(IgnoreReason::UnexpectedMessage);
        }
        if !ctx.info.is_boot_client() {
            return Err(IgnoreReason::NotPxeClient);
        }
        let choice = choose(self.cfg.boot, &ctx.info, ctx.mac).ok_or(IgnoreReason::NoBootRule)?;
        let mut reply = self.base(ctx.req, MessageType::Ack);
        reply.client_ip = ctx.req.client_ip;
        let (url, name, vendor) = (
            &mut scratch.url,
            &mut scratch.server_name,
            &mut scratch.vendor,
        );
        self.add_boot(&mut reply, ctx, &choice, url, name)?;
        add_pxe_identity(&mut reply, ctx.req, &choice);
        // Echo the boot item (PXE_BOOT_ITEM, sub-option 71) the client asked for.
        if let Some(item) = boot_item(ctx.req) {
            vendor.copy_from_slice(&[71, 4, item[0], item[1], item[2], item[3], 255, 0]);
            reply.vendor_specific = vendor.get(..7).map(OptionBytes::new);
        }
        Ok(Plan {
            reply: Some(reply),
            nak: false,
            commit: Commit::Nothing,
        })
    }

    /// proxyDHCP on port 67 (PXE spec 2.1 §2.2.5).
    fn proxy<'r>(
        &self,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<Plan<'r>, IgnoreReason>
    where
        'a: 'r,
    {
        if !ctx.info.is_boot_client() {
            return Err(IgnoreReason::NotPxeClient);
        }
        let kind = match ctx.msg {
            MessageType::Discover => MessageType::Offer,
            // Only a request that chose us (option 54) gets a proxy ACK; the address-giving
            // server answers the others, and PXE clients then come to port 4011 (BINL) or use
            // the file from our offer (option 43).
            MessageType::Request => match ctx.req.server_identifier {
                Some(id) if id == self.cfg.server_ip => MessageType::Ack,
                Some(_) => return Err(IgnoreReason::OtherServerId),
                None => return Err(IgnoreReason::NotAddressedToUs),
            },
            _ => return Err(IgnoreReason::UnexpectedMessage),
        };
        let choice = choose(self.cfg.boot, &ctx.info, ctx.mac).ok_or(IgnoreReason::NoBootRule)?;
        let mut reply = self.base(ctx.req, kind);
        self.add_boot(
            &mut reply,
            ctx,
            &choice,
            &mut scratch.url,
            &mut scratch.server_name,
        )?;
        add_pxe_identity(&mut reply, ctx.req, &choice);
        if choice.proxy_strategy() == ProxyStrategy::Option43 {
            reply.vendor_specific = Some(OptionBytes::new(&DISCOVERY_CONTROL_BOOT_FILE));
        }
        Ok(Plan {
            reply: Some(reply),
            nak: false,
            commit: Commit::Nothing,
        })
    }

    /// Authoritative DHCP (RFC 2131 §4.3).
    fn authoritative<'r>(
        &mut self,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<Plan<'r>, IgnoreReason>
    where
        'a: 'r,
    {
        let subnet = self.subnet_for(ctx.req.relay_agent_ip)?;
        let (commit, reply) = match ctx.msg {
            MessageType::Discover => {
                let (slot, entry) = self.pick_address(ctx, &subnet)?;
                let mut reply = self.base(ctx.req, MessageType::Offer);
                reply.your_ip = entry.lease.ip;
                let hold_until = ctx.now + self.cfg.offer_hold;
                let commit = match entry.state {
                    // Offering a client its own lease does not shorten it.
                    State::Bound if entry.lease.expires_at >= hold_until => Commit::Nothing,
                    // ...but holds it at least as long as any offer (RFC 2131 §4.3.1).
                    State::Bound => Commit::Set {
                        slot,
                        entry: Some(Entry {
                            lease: Lease {
                                expires_at: hold_until,
                                ..entry.lease
                            },
                            state: State::Bound,
                        }),
                        event: None,
                    },
                    _ => Commit::Set {
                        slot,
                        entry: Some(Entry {
                            lease: Lease {
                                mac: ctx.mac,
                                ip: entry.lease.ip,
                                expires_at: hold_until,
                            },
                            state: State::Offered,
                        }),
                        event: None,
                    },
                };
                (commit, reply)
            }
            MessageType::Request => match self.request(ctx, &subnet)? {
                Some(commit) => {
                    let Commit::Set {
                        entry: Some(entry), ..
                    } = commit
                    else {
                        unreachable!("invariant: request() binds or NAKs")
                    };
                    let mut reply = self.base(ctx.req, MessageType::Ack);
                    reply.client_ip = ctx.req.client_ip;
                    reply.your_ip = entry.lease.ip;
                    (commit, reply)
                }
                None => {
                    let mut nak = self.base(ctx.req, MessageType::Nak);
                    nak.message = Some(OptionBytes::new(b"requested address not available"));
                    return Ok(Plan {
                        reply: Some(nak),
                        nak: true,
                        commit: Commit::Nothing,
                    });
                }
            },
            MessageType::Decline | MessageType::Release => {
                return self.decline_or_release(ctx).map(|commit| Plan {
                    reply: None,
                    nak: false,
                    commit,
                });
            }
            MessageType::Inform => {
                // RFC 2131 §4.3.5: configuration only, no yiaddr, no lease time.
                let mut reply = self.base(ctx.req, MessageType::Ack);
                reply.client_ip = ctx.req.client_ip;
                self.add_subnet(&mut reply, &subnet, false);
                self.add_boot_if_client(&mut reply, ctx, scratch)?;
                return Ok(Plan {
                    reply: Some(reply),
                    nak: false,
                    commit: Commit::Nothing,
                });
            }
            _ => return Err(IgnoreReason::UnexpectedMessage),
        };
        let mut reply = reply;
        self.add_subnet(&mut reply, &subnet, true);
        self.add_boot_if_client(&mut reply, ctx, scratch)?;
        Ok(Plan {
            reply: Some(reply),
            nak: false,
            commit,
        })
    }

    /// DHCPREQUEST in authoritative mode (RFC 2131 §4.3.2): `Some(bind)` to ACK, `None` to NAK.
    fn request(
        &mut self,
        ctx: &Ctx<'_, '_>,
        subnet: &Subnet,
    ) -> Result<Option<Commit>, IgnoreReason> {
        let req = ctx.req;
        let ciaddr = Some(req.client_ip).filter(|ip| !ip.is_unspecified());
        let ip = match req.server_identifier {
            // SELECTING.
            Some(id) if id != self.cfg.server_ip => {
                self.withdraw_offer(ctx.mac);
                return Err(IgnoreReason::OtherServerId);
            }
            Some(_) => req.requested_ip.or(ciaddr),
            // INIT-REBOOT names the address in option 50; RENEWING/REBINDING in ciaddr.
            None => req.requested_ip.or(ciaddr),
        }
        .ok_or(IgnoreReason::MissingAddress)?;

        let expires_at = ctx.now + self.lease_time();
        let lease = Lease {
            mac: ctx.mac,
            ip,
            expires_at,
        };
        let bound = Entry {
            lease,
            state: State::Bound,
        };
        if let Some((slot, held)) = lease::of_client(&self.slots, ctx.mac, |l| l == ip) {
            let event = if held.state == State::Bound {
                DhcpEvent::LeaseRenewed(lease)
            } else {
                DhcpEvent::LeaseGranted(lease)
            };
            return Ok(Some(Commit::Set {
                slot,
                entry: Some(bound),
                event: Some(event),
            }));
        }
        // No record of this binding. Being authoritative for the pool, grant a free address
        // that this client may have (e.g. after a lost lease database); NAK anything else.
        if self.allowed(ctx.mac, ip, subnet) && lease::holder(&self.slots, ip).is_none() {
            // One binding per client: an older offer or lease of this MAC moves to the new
            // address instead of staying bound beside it (found by fuzz/dhcp_server_seq).
            let slot = match lease::of_client(&self.slots, ctx.mac, |_| true) {
                Some((slot, _)) => slot,
                None => lease::free_slot(&self.slots).ok_or(IgnoreReason::LeaseTableFull)?,
            };
            return Ok(Some(Commit::Set {
                slot,
                entry: Some(bound),
                event: Some(DhcpEvent::LeaseGranted(lease)),
            }));
        }
        Ok(None)
    }

    /// DHCPDECLINE (RFC 2131 §4.3.3) and DHCPRELEASE (§4.3.4).
    fn decline_or_release(&mut self, ctx: &Ctx<'_, '_>) -> Result<Commit, IgnoreReason> {
        let req = ctx.req;
        if req
            .server_identifier
            .is_some_and(|id| id != self.cfg.server_ip)
        {
            return Err(IgnoreReason::OtherServerId);
        }
        let ip = if ctx.msg == MessageType::Decline {
            req.requested_ip
        } else {
            Some(req.client_ip).filter(|ip| !ip.is_unspecified())
        }
        .ok_or(IgnoreReason::MissingAddress)?;
        let (slot, held) = lease::of_client(&self.slots, ctx.mac, |l| l == ip)
            .ok_or(IgnoreReason::UnknownLease)?;
        Ok(if ctx.msg == MessageType::Decline {
            let lease = Lease {
                expires_at: ctx.now + self.cfg.decline_hold,
                ..held.lease
            };
            Commit::Set {
                slot,
                entry: Some(Entry {
                    lease,
                    state: State::Declined,
                }),
                event: Some(DhcpEvent::LeaseDeclined(lease)),
            }
        } else {
            Commit::Set {
                slot,
                entry: None,
                event: (held.state == State::Bound).then_some(DhcpEvent::LeaseReleased(held.lease)),
            }
        })
    }

    /// Chooses the address to offer: the client's current offer or lease, its reservation,
    /// the address it asks for (option 50), or the first free one (RFC 2131 §4.3.1).
    fn pick_address(
        &self,
        ctx: &Ctx<'_, '_>,
        subnet: &Subnet,
    ) -> Result<(usize, Entry), IgnoreReason> {
        let mac = ctx.mac;
        if let Some(found) = lease::of_client(&self.slots, mac, |ip| self.allowed(mac, ip, subnet))
        {
            return Ok(found);
        }
        let free = |ip: &Ipv4Addr| {
            self.allowed(mac, *ip, subnet) && lease::holder(&self.slots, *ip).is_none()
        };
        let reserved = self
            .cfg
            .reservations
            .iter()
            .find(|r| r.mac == mac)
            .map(|r| r.ip);
        let ip = reserved
            .filter(free)
            .or(ctx.req.requested_ip.filter(free))
            .or_else(|| {
                lease::first_free(&self.slots, &subnet.pool, |ip| {
                    self.allowed(mac, ip, subnet)
                })
            })
            .ok_or(IgnoreReason::PoolExhausted)?;
        let slot = lease::free_slot(&self.slots).ok_or(IgnoreReason::LeaseTableFull)?;
        Ok((
            slot,
            Entry {
                lease: Lease {
                    mac,
                    ip,
                    expires_at: ctx.now,
                },
                state: State::Offered,
            },
        ))
    }

    /// Whether `mac` may hold `ip` on `subnet`: its reservation, or a pool address that is not
    /// ours and not reserved for someone else.
    fn allowed(&self, mac: [u8; 6], ip: Ipv4Addr, subnet: &Subnet) -> bool {
        let mut reserved = self.cfg.reservations.iter().filter(|r| r.ip == ip);
        if reserved.clone().any(|r| r.mac == mac) {
            return subnet.holds(ip);
        }
        subnet.pool.contains(ip)
            && reserved.next().is_none()
            && ip != self.cfg.server_ip
            && Some(ip) != self.cfg.tftp_server
            && !ip.is_unspecified()
            && !ip.is_broadcast()
    }

    /// The subnet of a client: ours, or the relay's (RFC 2131 §4.3.1).
    fn subnet_for(&self, giaddr: Ipv4Addr) -> Result<Subnet, IgnoreReason> {
        let Mode::Authoritative {
            pool,
            router,
            broadcast,
            relay_subnets,
            ..
        } = self.cfg.mode
        else {
            return Err(IgnoreReason::UnexpectedMessage);
        };
        if giaddr.is_unspecified() || same_net(giaddr, self.cfg.server_ip, self.cfg.subnet_mask) {
            return Ok(Subnet {
                pool,
                mask: self.cfg.subnet_mask,
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

    fn lease_time(&self) -> Duration {
        match self.cfg.mode {
            Mode::Authoritative { lease_time, .. } => lease_time,
            Mode::Proxy => Duration::ZERO,
        }
    }

    /// A reply skeleton (RFC 2131 §4.3.1 table 3): xid, flags, giaddr, chaddr copied; 53, 54.
    fn base<'r>(&self, req: &Repr<'_>, kind: MessageType) -> Repr<'r> {
        let mut reply = Repr::new(Op::Reply, req.transaction_id, req.client_hw_addr);
        reply.broadcast = req.broadcast;
        reply.relay_agent_ip = req.relay_agent_ip;
        reply.message_type = Some(kind);
        reply.server_identifier = Some(self.cfg.server_ip);
        reply
    }

    /// Options 1, 3, 6, 28 and (for a lease) 51, 58, 59.
    fn add_subnet(&self, reply: &mut Repr<'a>, subnet: &Subnet, lease: bool) {
        let Mode::Authoritative { dns, .. } = self.cfg.mode else {
            return;
        };
        reply.subnet_mask = Some(subnet.mask);
        reply.router = subnet.router;
        reply.broadcast_address = subnet.broadcast;
        reply.dns_servers = (!dns.is_empty()).then_some(AddrList::Addrs(dns));
        if lease {
            let secs = u32::try_from(self.lease_time().as_secs()).unwrap_or(u32::MAX);
            reply.lease_time = Some(secs);
            reply.renewal_time = Some(secs / 2);
            reply.rebinding_time = Some((u64::from(secs) * 7 / 8) as u32);
        }
    }

    /// Boot information for PXE/HTTP clients that have a rule; plain leases for everyone else.
    fn add_boot_if_client<'r>(
        &self,
        reply: &mut Repr<'r>,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<(), IgnoreReason>
    where
        'a: 'r,
    {
        if !ctx.info.is_boot_client() {
            return Ok(());
        }
        let Some(choice) = choose(self.cfg.boot, &ctx.info, ctx.mac) else {
            return Ok(());
        };
        self.add_boot(
            reply,
            ctx,
            &choice,
            &mut scratch.url,
            &mut scratch.server_name,
        )?;
        if choice.class.is_http() {
            reply.vendor_class_id = Some(OptionBytes::new(b"HTTPClient"));
        }
        reply.client_uuid = ctx.req.client_uuid;
        Ok(())
    }

    /// `siaddr`, `file`, `sname` in the BOOTP header, plus 66/67 when asked (PROTOCOL.md §2).
    fn add_boot<'r>(
        &self,
        reply: &mut Repr<'r>,
        ctx: &Ctx<'_, 'r>,
        choice: &BootChoice<'a>,
        url: &'r mut [u8; 128],
        name_buf: &'r mut [u8; 16],
    ) -> Result<(), IgnoreReason>
    where
        'a: 'r,
    {
        let next_server = choice
            .rule
            .next_server
            .or(self.cfg.tftp_server)
            .unwrap_or(self.cfg.server_ip);
        let file: &'r [u8] = if choice.class.is_http() && !is_url(choice.rule.file) {
            let path = choice.rule.file.trim_start_matches('/');
            let mut w = BufWriter { buf: url, len: 0 };
            w.write_str("http://")
                .and_then(|()| write_ipv4(&mut w, next_server))
                .and_then(|()| w.write_str("/"))
                .and_then(|()| w.write_str(path))
                .map_err(|_| IgnoreReason::BootFileTooLong)?;
            let len = w.len;
            url.get(..len).ok_or(IgnoreReason::BootFileTooLong)?
        } else {
            choice.rule.file.as_bytes()
        };
        // The `file` field holds 128 bytes including the NUL (PROTOCOL.md §2).
        if file.len() > 127 {
            return Err(IgnoreReason::BootFileTooLong);
        }
        reply.server_ip = next_server;
        reply.boot_file = file;
        let sname: &'r [u8] = self.cfg.server_name.map_or(&[], str::as_bytes);
        reply.server_name = sname.get(..63).unwrap_or(sname);
        if ctx.req.requested(wire::dhcp_option::code::BOOTFILE_NAME) {
            reply.bootfile_name = Some(OptionBytes::new(file));
        }
        if ctx.req.requested(wire::dhcp_option::code::TFTP_SERVER_NAME) {
            let name: &'r [u8] = if sname.is_empty() {
                let mut w = BufWriter {
                    buf: name_buf,
                    len: 0,
                };
                write_ipv4(&mut w, next_server).map_err(|_| IgnoreReason::BootFileTooLong)?;
                let len = w.len;
                name_buf.get(..len).unwrap_or(&[])
            } else {
                sname
            };
            reply.tftp_server_name = Some(OptionBytes::new(name));
        }
        Ok(())
    }

    /// Emits the plan's reply (if it fits), then commits its table change.
    fn finish(
        &mut self,
        ctx: &Ctx<'_, '_>,
        plan: Plan<'_>,
        tx: &mut [u8],
    ) -> Result<DhcpOutcome, InsufficientSize> {
        let has_event = matches!(plan.commit, Commit::Set { event: Some(_), .. });
        if has_event && self.events.is_full() {
            return ignored(IgnoreReason::EventQueueFull);
        }
        let Some(mut reply) = plan.reply else {
            self.commit(plan.commit);
            return Ok(DhcpOutcome::Handled);
        };
        let limit = max_reply_len(ctx.req);
        // Shed what the BOOTP header already carries, then DNS, before giving up.
        if reply.buffer_len() > limit {
            reply.bootfile_name = None;
            reply.tftp_server_name = None;
        }
        if reply.buffer_len() > limit {
            reply.dns_servers = None;
        }
        let len = reply.buffer_len();
        if len > limit {
            return ignored(IgnoreReason::ReplyTooLarge);
        }
        let Some(buf) = tx.get_mut(..len) else {
            return Err(InsufficientSize { required: len });
        };
        if let Err(e) = reply.emit(&mut Packet::new_unchecked(buf)) {
            // Lengths were checked above; only a bad configuration gets here.
            return ignored(IgnoreReason::Malformed(e));
        }
        self.commit(plan.commit);
        let dst = reply::route(
            ctx.rx,
            ctx.req,
            plan.nak,
            reply.your_ip,
            ctx.mac,
            self.cfg.link,
        );
        debug!("dhcp: {:?} to {:?}", reply.message_type, dst);
        Ok(DhcpOutcome::Reply(Transmit { dst, len }))
    }

    fn commit(&mut self, commit: Commit) {
        if let Commit::Set { slot, entry, event } = commit {
            if let Some(Entry {
                lease,
                state: State::Bound,
            }) = entry
            {
                // A client holds one binding per subnet: drop its other pending offers.
                self.slots.remove_offers(lease.mac, Some(slot));
            }
            self.set(slot, entry);
            if let Some(event) = event {
                self.events.push(event);
            }
        }
    }

    fn set(&mut self, slot: usize, entry: Option<Entry>) {
        self.slots.set(slot, entry);
    }

    /// RFC 2131 §4.3.2: a client that chose another server frees our offer.
    fn withdraw_offer(&mut self, mac: [u8; 6]) {
        self.slots.remove_offers(mac, None);
    }

    /// Clears entries due at `now`, earliest first, reporting expired leases while more than
    /// `reserve` event slots are free (a lease that cannot be reported stops the clearing).
    fn expire(&mut self, now: Instant, reserve: usize) {
        let events = &mut self.events;
        self.slots.expire(now, |entry| {
            if entry.state != State::Bound {
                return true;
            }
            if events.room() <= reserve {
                return false;
            }
            events.push(DhcpEvent::LeaseExpired(entry.lease));
            true
        });
    }
}

fn ignored(reason: IgnoreReason) -> Result<DhcpOutcome, InsufficientSize> {
    Ok(DhcpOutcome::Ignored(reason))
}

/// Options 60 (`PXEClient`/`HTTPClient`) and 97 (echoed) that make a reply a PXE reply
/// (PXE spec 2.1 §2.2.5; RFC 4578 §2.3).
fn add_pxe_identity<'r>(reply: &mut Repr<'r>, req: &Repr<'r>, choice: &BootChoice<'_>) {
    reply.vendor_class_id = Some(OptionBytes::new(if choice.class.is_http() {
        b"HTTPClient"
    } else {
        b"PXEClient"
    }));
    reply.client_uuid = req.client_uuid;
}

/// Sub-option 71 (PXE_BOOT_ITEM) of a request's option 43 (PXE spec 2.1 §2.4.1.1).
fn boot_item(req: &Repr<'_>) -> Option<[u8; 4]> {
    let mut buf = [0u8; 255];
    let encapsulated = req.vendor_specific?.copy_into(&mut buf).ok()?;
    OptionIter::new(encapsulated)
        .map_while(Result::ok)
        .find(|o| o.code == 71)
        .and_then(|o| o.data.try_into().ok())
}

/// The largest reply the client accepts, as a UDP payload: option 57 (at least 576, RFC 2132
/// §9.10) or 576 (RFC 2131 §2), read conservatively as the IP datagram size, so minus the IP and
/// UDP headers (28 bytes).
fn max_reply_len(req: &Repr<'_>) -> usize {
    let ip_datagram = req
        .max_message_size
        .map_or(576, |m| usize::from(m).max(576));
    ip_datagram - 28
}

fn same_net(a: Ipv4Addr, b: Ipv4Addr, mask: Ipv4Addr) -> bool {
    let m = u32::from(mask);
    u32::from(a) & m == u32::from(b) & m
}

fn is_url(file: &str) -> bool {
    file.starts_with("http://") || file.starts_with("https://")
}

/// `core::fmt::Write` into a fixed buffer.
struct BufWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// Writes `ip` as a dotted quad without `core::fmt`'s machinery, which costs kilobytes of
/// flash on the smallest boards (the firmware otherwise links no formatting code).
fn write_ipv4(w: &mut BufWriter<'_>, ip: Ipv4Addr) -> fmt::Result {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            w.write_str(".")?;
        }
        let digits = [
            b'0' + octet / 100,
            b'0' + octet / 10 % 10,
            b'0' + octet % 10,
        ];
        let skip = match octet {
            100.. => 0,
            10.. => 1,
            _ => 2,
        };
        w.write_str(core::str::from_utf8(&digits[skip..]).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

impl fmt::Write for BufWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Pending events: a fixed ring, no allocation.
#[derive(Debug)]
struct EventQueue {
    ring: [Option<DhcpEvent>; EVENT_CAPACITY],
    head: usize,
    len: usize,
}

impl EventQueue {
    const fn new() -> Self {
        Self {
            ring: [None; EVENT_CAPACITY],
            head: 0,
            len: 0,
        }
    }

    fn room(&self) -> usize {
        EVENT_CAPACITY - self.len
    }

    fn is_full(&self) -> bool {
        self.len == EVENT_CAPACITY
    }

    fn push(&mut self, event: DhcpEvent) {
        debug_assert!(!self.is_full(), "invariant: callers check room first");
        if self.is_full() {
            return;
        }
        let at = (self.head + self.len) % EVENT_CAPACITY;
        self.ring[at] = Some(event);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<DhcpEvent> {
        if self.len == 0 {
            return None;
        }
        let event = self.ring[self.head].take();
        self.head = (self.head + 1) % EVENT_CAPACITY;
        self.len -= 1;
        event
    }
}

/// Option 43 for the proxy "boot the file in the offer" strategy: PXE_DISCOVERY_CONTROL (6) = 8,
/// then End (PXE spec 2.1 §2.4.1.1).
const DISCOVERY_CONTROL_BOOT_FILE: [u8; 4] = [6, 1, 8, 255];

/// Pending events at most; see [`IgnoreReason::EventQueueFull`].
const EVENT_CAPACITY: usize = 8;

#[cfg(test)]
mod tests {
    use core::net::SocketAddrV4;

    use super::*;
    use crate::net::Destination;
    use crate::wire::dhcp::HwAddr;

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 242, 1);
    const MASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
    const MAC: [u8; 6] = [0x52, 0x54, 0, 0xa5, 0, 1];
    const MAC2: [u8; 6] = [0x52, 0x54, 0, 0xa5, 0, 2];
    const DNS: [Ipv4Addr; 1] = [Ipv4Addr::new(9, 9, 9, 9)];
    const BOOT: [BootRule<'static>; 4] = [
        BootRule::new(ClientClass::Bios, "pxelinux.0"),
        BootRule::new(ClientClass::EfiX64, "debian-installer/amd64/bootnetx64.efi"),
        BootRule::new(ClientClass::EfiX64Http, "boot/x64.efi"),
        BootRule::new(ClientClass::Ipxe, "boot.ipxe"),
    ];

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 242, last)
    }

    fn auth(start: u8, end: u8) -> DhcpConfig<'static> {
        let mut cfg = DhcpConfig::new(
            SERVER,
            MASK,
            Mode::Authoritative {
                pool: Pool {
                    start: ip(start),
                    end: ip(end),
                },
                lease_time: Duration::from_secs(3600),
                router: Some(SERVER),
                dns: &DNS,
                broadcast: Some(ip(255)),
                relay_subnets: &[],
            },
        );
        cfg.boot = &BOOT;
        cfg
    }

    fn proxy() -> DhcpConfig<'static> {
        let mut cfg = DhcpConfig::new(SERVER, MASK, Mode::Proxy);
        cfg.boot = &BOOT;
        cfg
    }

    /// A client message; `pxe` adds the options of the OVMF client in captures/uefi-dhcp.pcap.
    fn msg(kind: MessageType, mac: [u8; 6], pxe: Option<u8>) -> Repr<'static> {
        let mut r = Repr::new(Op::Request, 0x1234, HwAddr::ethernet(mac));
        r.message_type = Some(kind);
        r.parameter_request_list = Some(OptionBytes::new(&[1, 3, 6, 43, 60, 66, 67]));
        if let Some(arch) = pxe {
            r.vendor_class_id = Some(OptionBytes::new(b"PXEClient:Arch:00007:UNDI:003000"));
            r.client_arch = Some(OptionBytes::new(if arch == 7 { &[0, 7] } else { &[0, 0] }));
            r.client_uuid = Some(OptionBytes::new(&[0; 17]));
        }
        r
    }

    struct Out {
        outcome: DhcpOutcome,
        bytes: Vec<u8>,
    }

    impl Out {
        /// The decoded reply (its bytes leaked: test only).
        fn reply(&self) -> (Destination, Repr<'static>) {
            let DhcpOutcome::Reply(t) = self.outcome else {
                panic!("expected a reply, got {:?}", self.outcome)
            };
            let bytes: &'static [u8] = self.bytes[..t.len].to_vec().leak();
            let p = Packet::new_checked(bytes).unwrap();
            (t.dst, Repr::parse(&p).unwrap())
        }
    }

    fn send_to(server: &mut DhcpServer<'_>, now: u64, r: &Repr<'_>, port: u16) -> Out {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let rx = Received {
            src: SocketAddrV4::new(r.client_ip, if port == PXE_PORT { PXE_PORT } else { 68 }),
            dst: SocketAddrV4::new(
                if port == PXE_PORT {
                    SERVER
                } else {
                    Ipv4Addr::BROADCAST
                },
                port,
            ),
            payload: &buf,
        };
        let mut tx = vec![0u8; 1500];
        let outcome = server
            .handle(Instant::from_millis(now), &rx, &mut tx)
            .unwrap();
        Out { outcome, bytes: tx }
    }

    fn send(server: &mut DhcpServer<'_>, now: u64, r: &Repr<'_>) -> Out {
        send_to(server, now, r, 67)
    }

    fn request(mac: [u8; 6], yiaddr: Ipv4Addr, pxe: Option<u8>) -> Repr<'static> {
        let mut r = msg(MessageType::Request, mac, pxe);
        r.server_identifier = Some(SERVER);
        r.requested_ip = Some(yiaddr);
        r
    }

    #[test]
    fn discover_offer_request_ack_with_event_before_reply() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let out = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(7)));
        let (dst, offer) = out.reply();
        assert_eq!(dst, Destination::Broadcast { port: 68 });
        assert_eq!(offer.message_type, Some(MessageType::Offer));
        assert_eq!(offer.your_ip, ip(88));
        assert_eq!(offer.server_identifier, Some(SERVER));
        assert_eq!(offer.server_ip, SERVER);
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        assert_eq!(offer.bootfile_name, Some(OptionBytes::new(offer.boot_file)));
        assert_eq!(
            offer.tftp_server_name,
            Some(OptionBytes::new(b"192.168.242.1"))
        );
        assert_eq!(offer.lease_time, Some(3600));
        assert_eq!(offer.renewal_time, Some(1800));
        assert_eq!(offer.rebinding_time, Some(3150));
        assert_eq!(offer.subnet_mask, Some(MASK));
        assert_eq!(offer.router, Some(SERVER));
        assert_eq!(offer.broadcast_address, Some(ip(255)));
        assert_eq!(offer.dns_servers, Some(AddrList::Addrs(&DNS)));
        assert_eq!(offer.vendor_class_id, None, "no 60 outside proxy mode");
        assert_eq!(s.poll_event(), None, "an offer is not a lease");
        assert_eq!(s.leases().count(), 0);

        let out = send(&mut s, 100, &request(MAC, ip(88), Some(7)));
        let (_, ack) = out.reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, ip(88));
        let lease = Lease {
            mac: MAC,
            ip: ip(88),
            expires_at: Instant::from_millis(3_600_100),
        };
        // The event is queued by the time the reply is returned.
        assert_eq!(s.poll_event(), Some(DhcpEvent::LeaseGranted(lease)));
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), [lease]);
        assert_eq!(s.poll_timeout(), Some(lease.expires_at));
    }

    #[test]
    fn request_for_other_server_frees_offer() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 88), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        // The only address is held by the offer.
        assert_eq!(
            send(&mut s, 1, &msg(MessageType::Discover, MAC2, None)).outcome,
            DhcpOutcome::Ignored(IgnoreReason::PoolExhausted)
        );
        let mut r = request(MAC, ip(88), None);
        r.server_identifier = Some(ip(254));
        assert_eq!(
            send(&mut s, 2, &r).outcome,
            DhcpOutcome::Ignored(IgnoreReason::OtherServerId)
        );
        // Freed: the other client gets it now.
        let (_, offer) = send(&mut s, 3, &msg(MessageType::Discover, MAC2, None)).reply();
        assert_eq!(offer.your_ip, ip(88));
    }

    #[test]
    fn nak_for_foreign_or_taken_address() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        s.restore(Lease {
            mac: MAC2,
            ip: ip(90),
            expires_at: Instant::from_millis(1_000_000),
        })
        .unwrap();
        for wanted in [Ipv4Addr::new(10, 0, 0, 5), ip(90), SERVER] {
            let mut r = msg(MessageType::Request, MAC, None);
            r.requested_ip = Some(wanted); // INIT-REBOOT
            r.client_ip = Ipv4Addr::UNSPECIFIED;
            let (dst, nak) = send(&mut s, 0, &r).reply();
            assert_eq!(nak.message_type, Some(MessageType::Nak), "{wanted}");
            assert_eq!(nak.your_ip, Ipv4Addr::UNSPECIFIED);
            assert_eq!(nak.lease_time, None);
            assert_eq!(dst, Destination::Broadcast { port: 68 });
        }
        assert_eq!(s.poll_event(), None);
        // INIT-REBOOT for a free pool address without a record: granted (authoritative).
        let mut r = msg(MessageType::Request, MAC, None);
        r.requested_ip = Some(ip(95));
        assert_eq!(
            send(&mut s, 0, &r).reply().1.message_type,
            Some(MessageType::Ack)
        );
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseGranted(l)) if l.ip == ip(95)));
    }

    #[test]
    fn renew_by_ciaddr_is_unicast_and_reported() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        let _ = send(&mut s, 0, &request(MAC, ip(88), None)).reply();
        let _ = s.poll_event();
        let mut renew = msg(MessageType::Request, MAC, None);
        renew.client_ip = ip(88);
        let (dst, ack) = send(&mut s, 1_800_000, &renew).reply();
        assert_eq!(dst, Destination::Unicast(SocketAddrV4::new(ip(88), 68)));
        assert_eq!(ack.client_ip, ip(88));
        assert_eq!(ack.your_ip, ip(88));
        assert!(matches!(
            s.poll_event(),
            Some(DhcpEvent::LeaseRenewed(l)) if l.expires_at == Instant::from_millis(5_400_000)
        ));
    }

    #[test]
    fn decline_quarantines_and_release_frees() {
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(auth(88, 89), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        let _ = send(&mut s, 0, &request(MAC, ip(88), None)).reply();
        let _ = s.poll_event();
        let mut decline = msg(MessageType::Decline, MAC, None);
        decline.server_identifier = Some(SERVER);
        decline.requested_ip = Some(ip(88));
        assert_eq!(send(&mut s, 10, &decline).outcome, DhcpOutcome::Handled);
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseDeclined(l)) if l.ip == ip(88)));
        assert_eq!(s.leases().count(), 0);
        // .88 is quarantined: the next client gets .89, then the pool is empty.
        let (_, offer) = send(&mut s, 20, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(89));
        assert_eq!(
            send(&mut s, 20, &msg(MessageType::Discover, MAC2, None)).outcome,
            DhcpOutcome::Ignored(IgnoreReason::PoolExhausted)
        );
        let _ = send(&mut s, 30, &request(MAC, ip(89), None)).reply();
        let _ = s.poll_event();
        let mut release = msg(MessageType::Release, MAC, None);
        release.client_ip = ip(89);
        assert_eq!(send(&mut s, 40, &release).outcome, DhcpOutcome::Handled);
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseReleased(l)) if l.ip == ip(89)));
        // Release of something not held.
        assert_eq!(
            send(&mut s, 41, &release).outcome,
            DhcpOutcome::Ignored(IgnoreReason::UnknownLease)
        );
        // The quarantine ends after decline_hold.
        s.handle_timeout(Instant::from_millis(10 + 600_000));
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.poll_event(), None, "quarantine end is not a lease event");
    }

    #[test]
    fn inform_gets_config_without_lease() {
        let mut slots = [LeaseSlot::EMPTY; 2];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let mut inform = msg(MessageType::Inform, MAC, None);
        inform.client_ip = ip(20);
        let (dst, ack) = send(&mut s, 0, &inform).reply();
        assert_eq!(dst, Destination::Unicast(SocketAddrV4::new(ip(20), 68)));
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(ack.lease_time, None);
        assert_eq!(ack.subnet_mask, Some(MASK));
        assert_eq!(ack.boot_file, b"", "not a PXE client");
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn expiry_is_driven_by_now() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let _ = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(60_000)));
        s.handle_timeout(Instant::from_millis(59_999));
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(60_000)));
        s.handle_timeout(Instant::from_millis(60_000));
        assert_eq!(s.poll_timeout(), None, "offer withdrawn");
        let _ = send(&mut s, 70_000, &request(MAC, ip(88), None)).reply();
        let _ = s.poll_event();
        s.handle_timeout(Instant::from_millis(70_000 + 3_600_000));
        assert!(matches!(s.poll_event(), Some(DhcpEvent::LeaseExpired(l)) if l.ip == ip(88)));
        assert_eq!(s.leases().count(), 0);
    }

    #[test]
    fn reservation_and_exclusions() {
        let res = [Reservation {
            mac: MAC2,
            ip: ip(200),
        }];
        let mut cfg = auth(1, 3);
        cfg.reservations = &res;
        let mut slots = [LeaseSlot::EMPTY; 8];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC2, None)).reply();
        assert_eq!(offer.your_ip, ip(200));
        // .1 is the server itself: never offered.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(2));
    }

    #[test]
    fn insufficient_tx_changes_nothing() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let r = msg(MessageType::Discover, MAC, Some(7));
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let rx = Received {
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
            payload: &buf,
        };
        let err = s.handle(Instant::ZERO, &rx, &mut [0u8; 100]).unwrap_err();
        assert!(err.required > 300);
        assert_eq!(s.poll_timeout(), None, "no offer recorded");
        let mut tx = vec![0u8; err.required];
        assert!(matches!(
            s.handle(Instant::ZERO, &rx, &mut tx),
            Ok(DhcpOutcome::Reply(t)) if t.len == err.required
        ));
    }

    #[test]
    fn event_queue_full_blocks_acks() {
        let mut slots = [LeaseSlot::EMPTY; 32];
        let mut s = DhcpServer::new(auth(10, 99), &mut slots[..]);
        for i in 0..EVENT_CAPACITY as u8 {
            let mac = [2, 0, 0, 0, 0, i];
            let mut r = msg(MessageType::Request, mac, None);
            r.requested_ip = Some(ip(10 + i));
            assert!(matches!(send(&mut s, 0, &r).outcome, DhcpOutcome::Reply(_)));
        }
        let mut r = msg(MessageType::Request, MAC, None);
        r.requested_ip = Some(ip(50));
        assert_eq!(
            send(&mut s, 0, &r).outcome,
            DhcpOutcome::Ignored(IgnoreReason::EventQueueFull)
        );
        while s.poll_event().is_some() {}
        assert!(matches!(send(&mut s, 0, &r).outcome, DhcpOutcome::Reply(_)));
    }

    #[test]
    fn relay_uses_giaddr_subnet_and_port_67() {
        let relays = [RelaySubnet {
            pool: Pool {
                start: Ipv4Addr::new(10, 9, 0, 100),
                end: Ipv4Addr::new(10, 9, 0, 110),
            },
            subnet_mask: MASK,
            router: Some(Ipv4Addr::new(10, 9, 0, 1)),
        }];
        let mut cfg = auth(88, 99);
        if let Mode::Authoritative { relay_subnets, .. } = &mut cfg.mode {
            *relay_subnets = &relays;
        }
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let mut r = msg(MessageType::Discover, MAC, None);
        r.relay_agent_ip = Ipv4Addr::new(10, 9, 0, 1);
        let (dst, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(r.relay_agent_ip, 67))
        );
        assert_eq!(offer.your_ip, Ipv4Addr::new(10, 9, 0, 100));
        assert_eq!(offer.relay_agent_ip, r.relay_agent_ip);
        assert_eq!(offer.router, Some(Ipv4Addr::new(10, 9, 0, 1)));
        r.relay_agent_ip = Ipv4Addr::new(10, 8, 0, 1);
        assert_eq!(
            send(&mut s, 0, &r).outcome,
            DhcpOutcome::Ignored(IgnoreReason::NoSubnetForRelay)
        );
    }

    #[test]
    fn proxy_strategies_and_port_4011() {
        let mut s = DhcpServer::new(proxy(), &mut [][..]);
        // EFI: BINL, no option 43.
        let (dst, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(7))).reply();
        assert_eq!(dst, Destination::Broadcast { port: 68 });
        assert_eq!(offer.your_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(offer.message_type, Some(MessageType::Offer));
        assert_eq!(offer.vendor_class_id, Some(OptionBytes::new(b"PXEClient")));
        assert_eq!(offer.client_uuid, Some(OptionBytes::new(&[0; 17])));
        assert_eq!(offer.vendor_specific, None);
        assert_eq!(offer.lease_time, None);
        assert_eq!(offer.server_ip, SERVER);
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        // BIOS: option 43 {6: 8}.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(0))).reply();
        assert_eq!(
            offer.vendor_specific,
            Some(OptionBytes::new(&[6, 1, 8, 255]))
        );
        assert_eq!(offer.boot_file, b"pxelinux.0");
        // Non-PXE clients are not ours to answer.
        assert_eq!(
            send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).outcome,
            DhcpOutcome::Ignored(IgnoreReason::NotPxeClient)
        );
        // REQUEST to the real server: ignored.
        let mut r = request(MAC, ip(127), Some(7));
        r.server_identifier = Some(ip(254));
        assert_eq!(
            send(&mut s, 0, &r).outcome,
            DhcpOutcome::Ignored(IgnoreReason::OtherServerId)
        );
        // Port 4011: ACK to the source, with the boot item echoed.
        let mut r = msg(MessageType::Request, MAC, Some(7));
        r.client_ip = ip(127);
        r.vendor_specific = Some(OptionBytes::new(&[71, 4, 0x80, 0, 0, 0, 255]));
        let (dst, ack) = send_to(&mut s, 0, &r, PXE_PORT).reply();
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(ip(127), PXE_PORT))
        );
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(ack.client_ip, ip(127));
        assert_eq!(ack.server_identifier, Some(SERVER));
        assert_eq!(ack.vendor_class_id, Some(OptionBytes::new(b"PXEClient")));
        assert_eq!(ack.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        assert_eq!(
            ack.vendor_specific,
            Some(OptionBytes::new(&[71, 4, 0x80, 0, 0, 0, 255]))
        );
    }

    #[test]
    fn ipxe_gets_script_and_http_gets_url() {
        let mut s = DhcpServer::new(proxy(), &mut [][..]);
        let mut r = msg(MessageType::Discover, MAC, Some(0));
        r.user_class = Some(OptionBytes::new(b"iPXE"));
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"boot.ipxe");
        let mut r = msg(MessageType::Discover, MAC, None);
        r.vendor_class_id = Some(OptionBytes::new(b"HTTPClient:Arch:00016:UNDI:003001"));
        r.client_arch = Some(OptionBytes::new(&[0, 16]));
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.vendor_class_id, Some(OptionBytes::new(b"HTTPClient")));
        assert_eq!(offer.boot_file, b"http://192.168.242.1/boot/x64.efi");
        assert_eq!(offer.bootfile_name, Some(OptionBytes::new(offer.boot_file)));
    }

    #[test]
    fn reply_respects_576_without_option_57() {
        let dns = [Ipv4Addr::new(1, 2, 3, 4); 63];
        let mut cfg = auth(88, 99);
        if let Mode::Authoritative { dns: d, .. } = &mut cfg.mode {
            *d = &dns;
        }
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let out = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(7)));
        let DhcpOutcome::Reply(t) = out.outcome else {
            panic!()
        };
        assert!(t.len <= 576 - 28, "{}", t.len);
        let (_, offer) = out.reply();
        assert_eq!(offer.dns_servers, None, "shed to fit");
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        let mut big = msg(MessageType::Discover, MAC, Some(7));
        big.max_message_size = Some(1500);
        let (_, offer) = send(&mut s, 0, &big).reply();
        assert_eq!(offer.dns_servers.map(|d| d.byte_len()), Some(252));
    }

    #[test]
    fn garbage_is_ignored_with_reason() {
        let mut s = DhcpServer::new(proxy(), &mut [][..]);
        let rx = Received {
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
            payload: &[1, 2, 3],
        };
        assert_eq!(
            s.handle(Instant::ZERO, &rx, &mut [0; 600]),
            Ok(DhcpOutcome::Ignored(IgnoreReason::Malformed(
                wire::Error::Truncated
            )))
        );
        let mut reply = msg(MessageType::Offer, MAC, Some(7));
        reply.op = Op::Reply;
        assert_eq!(
            send(&mut s, 0, &reply).outcome,
            DhcpOutcome::Ignored(IgnoreReason::NotBootRequest)
        );
        let mut bootp = msg(MessageType::Discover, MAC, Some(7));
        bootp.message_type = None;
        assert_eq!(
            send(&mut s, 0, &bootp).outcome,
            DhcpOutcome::Ignored(IgnoreReason::NotDhcp)
        );
        let unknown = msg(MessageType::Unknown(42), MAC, Some(7));
        assert_eq!(
            send(&mut s, 0, &unknown).outcome,
            DhcpOutcome::Ignored(IgnoreReason::UnknownMessageType { code: 42 })
        );
    }

    #[test]
    fn restore_rejects_conflicts() {
        let mut slots = [LeaseSlot::EMPTY; 1];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let lease = Lease {
            mac: MAC,
            ip: ip(90),
            expires_at: Instant::from_millis(5000),
        };
        s.restore(lease).unwrap();
        s.restore(lease).unwrap();
        assert_eq!(
            s.restore(Lease { mac: MAC2, ..lease }),
            Err(RestoreError::Conflict)
        );
        assert_eq!(
            s.restore(Lease {
                ip: ip(91),
                ..lease
            }),
            Err(RestoreError::TableFull)
        );
        // A restored lease is the client's: DISCOVER offers it again.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, None)).reply();
        assert_eq!(offer.your_ip, ip(90));
    }
}
