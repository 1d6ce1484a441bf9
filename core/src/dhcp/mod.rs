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
//! A driver whose lease store is shared with other servers (replicas in one database) lets
//! the store decide: when the store refuses a lease because another server bound the address
//! first, the driver withholds the ACK and tells the server with [`DhcpServer::learn`]; the
//! client's next DHCPREQUEST is NAKed and it is offered another address (RFC 2131 §4.3.2).
//!
//! If the driver stops draining events and the queue fills, requests that would change a lease
//! are ignored ([`IgnoreReason::EventQueueFull`]) rather than acknowledged unreported; the
//! client retransmits.
//!
//! ## Logging
//! Every [`DhcpOutcome`] of a message with a MAC address and a message type carries a
//! [`Summary`] (client, class, host name, address, boot file, reply type), so a driver logs an
//! exchange without parsing the datagram again. [`Summary`] and [`DhcpEvent`] implement
//! `Display` (and `defmt::Format` with the `defmt` feature).
//!
//! ## Layout
//! `config` (what the server is told), `outcome` and `summary` (what it answers), `event` (lease
//! changes and their queue), `authoritative` (RFC 2131 §4.3), `pxe` (proxyDHCP, the port-4011
//! boot server and boot information), `boot` (client classes and the boot table), `lease` (the
//! lease table: every lookup, allocation and expiry), `reply` (where a reply goes, §4.1).

use core::fmt;

use managed::ManagedSlice;

use crate::net::{InsufficientSize, Received, Transmit};
use crate::time::Instant;
use crate::wire::dhcp::{MessageType, Op, Packet, Repr};

mod authoritative;
mod boot;
mod config;
mod directive;
mod event;
mod lease;
mod lease_table;
mod outcome;
mod pxe;
mod reply;
mod summary;
#[cfg(test)]
mod test_util;

pub use boot::{
    BootChoice, BootRule, ClientClass, ClientInfo, ProxyStrategy, UnknownClass, choose,
};
pub use config::{
    DhcpConfig, INFINITE_LEASE, LinkCaps, Mode, Pool, RelaySubnet, Reservation, link_selection,
};
pub use directive::{Directive, Machine, client_mac};
pub use event::DhcpEvent;
pub use lease::{Lease, LeaseSlot};
pub use outcome::{DhcpOutcome, IgnoreReason};
pub use summary::{BOOT_FILE_MAX, HOSTNAME_MAX, Summary, VENDOR_CLASS_MAX};

use event::EventQueue;
use lease::{Entry, State};
use lease_table::LeaseTable;

/// The PXE boot server port (PXE spec 2.1 §2.2.1).
pub const PXE_PORT: u16 = 4011;

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
        Self {
            slots: LeaseTable::new(leases.into(), pool_of(&cfg)),
            cfg,
            events: EventQueue::new(),
        }
    }

    /// A server with `cfg` over `leases` as a previous server left them: every lease, offer and
    /// declined address they hold stays, under the new configuration (a configuration reload
    /// without a restart: drop the old server, then resume over the same slots). Events the old
    /// server had queued are not carried over: drain [`DhcpServer::poll_event`] first.
    ///
    /// Entries are not checked against `cfg`, exactly as [`DhcpServer::restore`] does not check
    /// them: a client keeps a lease on an address `cfg` now reserves for another client, and
    /// renews it, until it releases it or lets it expire; the other client is offered a pool
    /// address meanwhile, and its reserved one once that is free and it asks anew.
    pub fn resume(cfg: DhcpConfig<'a>, leases: impl Into<ManagedSlice<'a, LeaseSlot>>) -> Self {
        Self {
            slots: LeaseTable::resume(leases.into(), pool_of(&cfg)),
            cfg,
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
        self.handle_for(now, rx, tx, Directive::Default)
    }

    /// [`DhcpServer::handle`] with the driver's [`Directive`] for the datagram's client (looked
    /// up by [`client_mac`]).
    ///
    /// # Errors
    /// [`InsufficientSize`] if `tx` cannot hold the reply; nothing changed then.
    pub fn handle_for<'p>(
        &mut self,
        now: Instant,
        rx: &Received<'p>,
        tx: &mut [u8],
        directive: Directive<'p>,
    ) -> Result<DhcpOutcome, InsufficientSize> {
        // Keep one event slot free for this message's own lease change.
        self.expire(now, 1);
        let req = match Packet::new_checked(rx.payload).and_then(|p| Repr::parse(&p)) {
            Ok(req) => req,
            Err(e) => return ignored(IgnoreReason::Malformed(e)),
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
        let machine = match directive {
            Directive::Machine(machine) => machine,
            Directive::Default | Directive::Ignore => Machine::default(),
        };
        let ctx = Ctx {
            now,
            rx,
            req: &req,
            mac,
            msg,
            info: ClientInfo::classify(&req),
            machine,
        };
        if let MessageType::Unknown(code) = msg {
            return ctx.ignored(IgnoreReason::UnknownMessageType { code });
        }
        if directive == Directive::Ignore {
            return ctx.ignored(IgnoreReason::Directed);
        }
        trace!("dhcp: {} from {}", msg, crate::net::Mac(mac));
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
            Err(reason) => ctx.ignored(reason),
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
        self.slots.set(slot, Some(entry));
        Ok(())
    }
}

impl DhcpServer<'_> {
    /// Learns a lease from a lease store this server shares with other servers (replicas
    /// serving the same pools): `lease.ip` is bound to `lease.mac` until `lease.expires_at`.
    /// Call it for the store's leases on start, and whenever the store refuses a binding of
    /// this server because another server bound the address first.
    ///
    /// The store decides: whatever this table held on the address gives way (an offer: the
    /// client is offered another address when it asks again; a lease the store refused: the
    /// client's next DHCPREQUEST for it is NAKed and it starts over, RFC 2131 §4.3.2; a
    /// declined or held address), and so does any other offer or lease of the same client (one
    /// binding per client). A lease of the same client on the same address keeps the later of
    /// the two expiries. The learned lease is a lease here like a restored one: this
    /// server renews it when the client asks (the store is shared). No event is queued: the
    /// store already holds the lease.
    ///
    /// # Errors
    /// [`RestoreError::TableFull`] if the address is not in the table and no slot is free.
    pub fn learn(&mut self, lease: Lease) -> Result<(), RestoreError> {
        let mut lease = lease;
        let slot = match lease::holder(&self.slots, lease.ip) {
            Some((i, held)) => {
                // The client's own lease here, perhaps just renewed: the later expiry stands.
                if held.state == State::Bound && held.lease.mac == lease.mac {
                    lease.expires_at = lease.expires_at.max(held.lease.expires_at);
                }
                i
            }
            None => match self.slots.find_client(lease.mac, |_, _| true) {
                Some((i, _)) => i,
                None => lease::free_slot(&self.slots).ok_or(RestoreError::TableFull)?,
            },
        };
        self.slots.set(
            slot,
            Some(Entry {
                lease,
                state: State::Bound,
            }),
        );
        // Any other entry of the client's (bounded: one per pass, at most one per slot).
        for _ in 0..self.slots.len() {
            let Some((other, _)) = self.slots.find_client(lease.mac, |i, e| {
                i != slot && matches!(e.state, State::Offered | State::Bound | State::Elsewhere)
            }) else {
                break;
            };
            self.slots.set(other, None);
        }
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

/// The pool the lease table's free-address search is built for.
fn pool_of(cfg: &DhcpConfig<'_>) -> Option<Pool> {
    match cfg.mode {
        Mode::Authoritative { pool, .. } => Some(pool),
        Mode::Proxy => None,
    }
}

/// One request being handled.
pub(super) struct Ctx<'r, 'p> {
    now: Instant,
    rx: &'r Received<'p>,
    req: &'r Repr<'p>,
    mac: [u8; 6],
    msg: MessageType,
    info: ClientInfo,
    /// The driver's settings for this client ([`Directive::Machine`]; empty otherwise).
    machine: Machine<'p>,
}

/// The decided answer: a reply to emit and the table change to commit if it goes out.
pub(super) struct Plan<'r> {
    reply: Option<Repr<'r>>,
    nak: bool,
    commit: Commit,
}

/// A table change, applied only once the reply is known to fit (STYLE.md R2).
#[derive(Clone, Copy)]
pub(super) enum Commit {
    Nothing,
    Set {
        slot: usize,
        entry: Option<Entry>,
        event: Option<DhcpEvent>,
    },
}

/// Bytes a reply borrows that are built per request.
pub(super) struct Scratch {
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

impl<'a> DhcpServer<'a> {
    /// A reply skeleton (RFC 2131 §4.3.1 table 3): xid, flags, giaddr, chaddr copied; 53, 54;
    /// option 82 echoed whole (RFC 3046 §2.2).
    ///
    /// Never inlined: each of its six callers would get its own copy of the whole `Repr`
    /// initialisation (about 700 bytes of firmware for nothing).
    #[inline(never)]
    pub(super) fn base<'r>(&self, req: &Repr<'r>, kind: MessageType) -> Repr<'r> {
        let mut reply = Repr::new(Op::Reply, req.transaction_id, req.client_hw_addr);
        reply.flags = req.flags;
        reply.relay_agent_ip = req.relay_agent_ip;
        reply.relay_agent_info = req.relay_agent_info;
        reply.message_type = Some(kind);
        reply.server_identifier = Some(self.cfg.server_ip);
        reply
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
            return ctx.ignored(IgnoreReason::EventQueueFull);
        }
        let Some(mut reply) = plan.reply else {
            self.commit(plan.commit);
            return Ok(DhcpOutcome::Handled {
                summary: Summary::new(ctx.req, ctx.mac, ctx.msg, &ctx.info, None),
            });
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
            return ctx.ignored(IgnoreReason::ReplyTooLarge);
        }
        let Some(buf) = tx.get_mut(..len) else {
            return Err(InsufficientSize { required: len });
        };
        if let Err(e) = reply.emit(&mut Packet::new_unchecked(buf)) {
            // Lengths were checked above; only a bad configuration gets here.
            return ctx.ignored(IgnoreReason::Malformed(e));
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
        #[cfg(any(feature = "log", feature = "defmt"))]
        if let Some(kind) = reply.message_type {
            debug!("dhcp: {} to {}", kind, dst);
        }
        Ok(DhcpOutcome::Reply {
            transmit: Transmit { dst, len },
            summary: Summary::new(ctx.req, ctx.mac, ctx.msg, &ctx.info, Some(&reply)),
        })
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
            self.slots.set(slot, entry);
            if let Some(event) = event {
                self.events.push(event);
            }
        }
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
    Ok(DhcpOutcome::Ignored {
        reason,
        summary: None,
    })
}

impl Ctx<'_, '_> {
    /// Drops the request for `reason`.
    fn ignored(&self, reason: IgnoreReason) -> Result<DhcpOutcome, InsufficientSize> {
        Ok(DhcpOutcome::Ignored {
            reason,
            summary: Some(Summary::new(self.req, self.mac, self.msg, &self.info, None)),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::event::EVENT_CAPACITY;
    use super::test_util::*;
    use super::*;
    use crate::wire;

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
            Ok(DhcpOutcome::Reply { transmit, .. }) if transmit.len == err.required
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
            assert!(matches!(
                send(&mut s, 0, &r).outcome,
                DhcpOutcome::Reply { .. }
            ));
        }
        let mut r = msg(MessageType::Request, MAC, None);
        r.requested_ip = Some(ip(50));
        assert_eq!(
            send(&mut s, 0, &r).outcome.ignore_reason(),
            Some(IgnoreReason::EventQueueFull)
        );
        while s.poll_event().is_some() {}
        assert!(matches!(
            send(&mut s, 0, &r).outcome,
            DhcpOutcome::Reply { .. }
        ));
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
        let Some(t) = out.outcome.transmit() else {
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
            Ok(DhcpOutcome::Ignored {
                reason: IgnoreReason::Malformed(wire::Error::Truncated),
                summary: None
            })
        );
        let mut reply = msg(MessageType::Offer, MAC, Some(7));
        reply.op = Op::Reply;
        assert_eq!(
            send(&mut s, 0, &reply).outcome.ignore_reason(),
            Some(IgnoreReason::NotBootRequest)
        );
        let mut bootp = msg(MessageType::Discover, MAC, Some(7));
        bootp.message_type = None;
        assert_eq!(
            send(&mut s, 0, &bootp).outcome.ignore_reason(),
            Some(IgnoreReason::NotDhcp)
        );
        let unknown = msg(MessageType::Unknown(42), MAC, Some(7));
        assert_eq!(
            send(&mut s, 0, &unknown).outcome.ignore_reason(),
            Some(IgnoreReason::UnknownMessageType { code: 42 })
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

    #[test]
    fn resume_keeps_leases_and_offers_under_new_rules() {
        let mac = |n| [0x52, 0x54, 0, 0xa5, 0, n];
        let mut slots = [LeaseSlot::EMPTY; 16];
        let before: Vec<Lease> = {
            let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
            send(&mut s, 0, &msg(MessageType::Discover, mac(1), Some(0)));
            send(&mut s, 10, &request(mac(1), ip(88), Some(0))).reply();
            let (_, offer) = send(&mut s, 20, &msg(MessageType::Discover, mac(2), None)).reply();
            assert_eq!(offer.your_ip, ip(89));
            send(&mut s, 30, &msg(MessageType::Discover, mac(3), None));
            send(&mut s, 40, &request(mac(3), ip(90), None)).reply();
            while s.poll_event().is_some() {}
            let before: Vec<Lease> = s.leases().copied().collect();
            assert_eq!(before.len(), 2);
            before
        };

        // The new rules: another BIOS file; mac 4 reserved .95; mac 5 reserved .90, which mac 3
        // holds.
        let boot = [BootRule::new(ClientClass::Bios, "new.0")];
        let reservations = [
            Reservation {
                mac: mac(4),
                ip: ip(95),
            },
            Reservation {
                mac: mac(5),
                ip: ip(90),
            },
        ];
        let mut cfg = auth(88, 99);
        cfg.boot = &boot;
        cfg.reservations = &reservations;
        let mut s = DhcpServer::resume(cfg, &mut slots[..]);
        assert_eq!(s.leases().copied().collect::<Vec<_>>(), before);
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(20 + 60_000)));
        // The offer to mac 2 is still held: a new client gets the next free address.
        let (_, offer) = send(&mut s, 50, &msg(MessageType::Discover, mac(6), None)).reply();
        assert_eq!(offer.your_ip, ip(91));
        let (_, ack) = send(&mut s, 60, &request(mac(2), ip(89), None)).reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        // The leased client keeps its address and gets the new boot file.
        let (_, offer) = send(&mut s, 70, &msg(MessageType::Discover, mac(1), Some(0))).reply();
        assert_eq!(offer.your_ip, ip(88));
        assert_eq!(offer.boot_file, b"new.0");
        // The new reservation is honoured.
        let (_, offer) = send(&mut s, 80, &msg(MessageType::Discover, mac(4), None)).reply();
        assert_eq!(offer.your_ip, ip(95));
        // A lease on an address now reserved for another client is honoured until it ends: its
        // holder renews it; the reserved client is offered a pool address meanwhile.
        let (_, ack) = send(&mut s, 90, &request(mac(3), ip(90), None)).reply();
        assert_eq!(
            (ack.message_type, ack.your_ip),
            (Some(MessageType::Ack), ip(90))
        );
        let (_, offer) = send(&mut s, 100, &msg(MessageType::Discover, mac(5), None)).reply();
        assert_eq!(offer.your_ip, ip(92));
        // Once it is released (and the pool offer has lapsed), the reserved client gets it.
        let mut release = msg(MessageType::Release, mac(3), None);
        release.client_ip = ip(90);
        release.server_identifier = Some(SERVER);
        send(&mut s, 110, &release);
        let (_, offer) = send(&mut s, 120, &msg(MessageType::Discover, mac(5), None)).reply();
        assert_eq!(offer.your_ip, ip(92), "its pending offer stands");
        let later = 120 + 60_000 + 1;
        let (_, offer) = send(&mut s, later, &msg(MessageType::Discover, mac(5), None)).reply();
        assert_eq!(offer.your_ip, ip(90));
    }
}
