//! A read-only TFTP server (RFC 1350, 2347, 2348, 2349, 7440) as a sans-IO state machine.
//!
//! A listener ([`TftpServer::handle_request`], datagrams on port 69) plus per-transfer machines
//! (datagrams on each transfer's own port, its TID), after quinn's Endpoint/Connection split.
//! Transfers live in caller-provided [`Slot`]s: a fixed number on a board, many on a host.
//!
//! Behaviour, by RFC:
//! - RFC 1350: a new TID per transfer; a packet from a stranger gets ERROR 5 and does not
//!   disturb the transfer; a block shorter than `blksize` (possibly empty) ends it. Write
//!   requests are refused with ERROR 2 (the server is read-only).
//! - RFC 1123 §4.2.3.1: DATA is retransmitted **only on timeout**, never because of a duplicate
//!   ACK (Sorcerer's Apprentice), with a bounded number of retries; then the transfer is dropped.
//! - RFC 2347: the OACK names only options asked for and accepted; the client confirms with
//!   ACK 0 or refuses with an ERROR (OVMF does so after a `tsize` probe: reported as
//!   [`FailReason::Aborted`] with `during_negotiation`).
//! - RFC 2348 `blksize` (clamped to [`TftpConfig::max_blksize`]), RFC 2349 `timeout` and `tsize`,
//!   RFC 7440 `windowsize` (clamped to [`TftpConfig::max_windowsize`]; on a timeout or an ACK in
//!   the middle of a window the server rewinds to the block after that ACK).
//! - Block numbers roll over from 65535 to 0 (the de facto convention); inside, blocks are u64.
//! - A repeated identical request from the same client address and port does not start a
//!   second transfer; a different request from that port replaces the old transfer.

pub mod client;
#[cfg(feature = "_test-util")]
pub mod drive;
mod event;
mod options;
mod outcome;
mod slots;
mod transfer;

pub use client::{ClientConfig, ClientError, ClientInput, ClientStats, TftpClient};
pub use event::{EventLine, Outcome, RefusedLine, TftpEvent, TransferInfo, TransferStats};
pub use options::{Acked, Negotiated, OACK_OPTIONS_MAX_LEN};
pub use outcome::{FailReason, Handled, IgnoreReason, RejectReason, Request, RequestOutcome};

use core::fmt;
use core::net::SocketAddrV4;
use core::time::Duration;

use managed::ManagedSlice;

use crate::net::{InsufficientSize, Received, UnicastTransmit};
use crate::storage::{FileStore, OpenError, SafePath};
use crate::time::Instant;
pub use crate::wire::tftp::WireText;
use crate::wire::tftp::{ErrorCode, Mode, Opcode, Packet, Repr};
use slots::{Links, SlotIndex};
use transfer::{Transfer, emit_error, request_hash};

/// Server limits and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TftpConfig {
    /// The largest `blksize` granted (RFC 2348). 1468 fits an Ethernet MTU of 1500.
    pub max_blksize: u16,
    /// The largest `windowsize` granted (RFC 7440).
    pub max_windowsize: u16,
    /// Retransmission timeout when the client does not ask for one (RFC 2349).
    pub timeout: Duration,
    /// Retransmissions of one packet before the transfer is dropped.
    pub max_retries: u8,
    /// Whether to negotiate options at all (RFC 2347). Off serves plain RFC 1350, for clients
    /// that break on OACKs.
    pub options: bool,
}

impl Default for TftpConfig {
    fn default() -> Self {
        Self {
            max_blksize: 1468,
            max_windowsize: 64,
            timeout: Duration::from_secs(1),
            max_retries: 5,
            options: true,
        }
    }
}

/// Identifies one transfer. The generation keeps a stale id from reaching a reused slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferId {
    slot: u16,
    generation: u16,
}

impl TransferId {
    /// The slot index (stable while the transfer lives; reused afterwards).
    pub const fn index(&self) -> usize {
        self.slot as usize
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

/// Storage for one transfer, provided by the caller.
#[derive(Debug, Clone)]
pub struct Slot<H> {
    generation: u16,
    transfer: Option<Transfer<H>>,
    links: Links,
}

impl<H> Slot<H> {
    /// An unused slot.
    pub const EMPTY: Self = Self {
        generation: 0,
        transfer: None,
        links: Links::NONE,
    };
}

impl<H> Default for Slot<H> {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// The TFTP server: a listener plus transfers in caller-provided slots.
#[derive(Debug)]
pub struct TftpServer<'a, H> {
    cfg: TftpConfig,
    slots: ManagedSlice<'a, Slot<H>>,
    /// A lower bound of every slot's deadline (may be early; see `poll_timeout`).
    next_deadline: Option<Instant>,
    /// Free slots, closed transfers waiting for `poll_event`, live transfers by peer and IP.
    index: SlotIndex,
    /// Live transfers (closed ones included until reported).
    live: usize,
    /// Live transfers one client IP may hold at most (`None`: no limit).
    max_per_client: Option<u16>,
}

impl<'a, H: Copy> TftpServer<'a, H> {
    /// A server with `slots` for concurrent transfers (at most 65 535 are used). Setting up
    /// takes one pass over the slots; after that, no operation but
    /// [`TftpServer::handle_timeout`] and [`TftpServer::active`] visits every slot.
    pub fn new(cfg: TftpConfig, slots: impl Into<ManagedSlice<'a, Slot<H>>>) -> Self {
        let mut slots = slots.into();
        let index = SlotIndex::new(&mut slots);
        Self {
            cfg,
            slots,
            next_deadline: None,
            index,
            live: 0,
            max_per_client: None,
        }
    }

    /// Limits the transfers one client IP address (any port) may run at once; a request beyond
    /// it is refused with [`RejectReason::ClientBusy`] (ERROR 0), so that one host flooding
    /// requests from many ports cannot take every slot. `None` (the default) means no limit,
    /// e.g. for a load test from one address. A limit of 0 is treated as 1.
    pub fn set_max_transfers_per_client(&mut self, max: Option<u16>) {
        self.max_per_client = max.map(|m| m.max(1));
    }

    /// The per-client limit set by [`TftpServer::set_max_transfers_per_client`].
    pub const fn max_transfers_per_client(&self) -> Option<u16> {
        self.max_per_client
    }

    /// The configuration.
    pub const fn config(&self) -> &TftpConfig {
        &self.cfg
    }

    /// A datagram on the listener port (RRQ/WRQ). The outcome borrows the request's name and
    /// options from `rx`.
    ///
    /// # Errors
    /// [`InsufficientSize`] when `tx` cannot hold the ERROR reply; nothing changed then.
    pub fn handle_request<'r, S: FileStore<Handle = H>>(
        &mut self,
        now: Instant,
        rx: &Received<'r>,
        store: &mut S,
        tx: &mut [u8],
    ) -> Result<RequestOutcome<'r>, InsufficientSize> {
        // Every answer must fit before anything changes (STYLE.md R2).
        if tx.len() < MAX_REJECT_LEN {
            return Err(InsufficientSize {
                required: MAX_REJECT_LEN,
            });
        }
        let is_request = Packet::new_checked(rx.payload)
            .is_ok_and(|p| matches!(p.opcode(), Opcode::Rrq | Opcode::Wrq));
        let repr = match Repr::parse_bytes(rx.payload) {
            Ok(repr) => repr,
            Err(e) if is_request => return reject(rx.src, RejectReason::Malformed(e), None, tx),
            Err(e) => return Ok(RequestOutcome::Ignored(IgnoreReason::Malformed(e))),
        };
        let (filename, mode, options) = match repr {
            Repr::ReadRequest {
                filename,
                mode,
                options,
            } => (filename, mode, options),
            Repr::WriteRequest {
                filename, options, ..
            } => {
                let request = Request {
                    filename: WireText(filename),
                    options,
                };
                return reject(rx.src, RejectReason::ReadOnly, Some(request), tx);
            }
            _ => return Ok(RequestOutcome::Ignored(IgnoreReason::NotARequest)),
        };
        let request = Some(Request {
            filename: WireText(filename),
            options,
        });
        let hash = request_hash(rx.payload);
        if let Some(index) = self.index.find_peer(&self.slots, rx.src) {
            let transfer = self.slots[index]
                .transfer
                .as_mut()
                .expect("invariant: find_peer returns occupied slots");
            if transfer.request_hash == hash {
                return Ok(RequestOutcome::Ignored(IgnoreReason::DuplicateRequest));
            }
            transfer.close(now, Some(FailReason::Superseded));
            self.settle(index, Change::closed_now());
        }
        let refuse = |reason, tx: &mut [u8]| reject(rx.src, reason, request, tx);
        if Mode::from_bytes(mode) != Mode::Octet {
            return refuse(RejectReason::UnsupportedMode, tx);
        }
        let path = match SafePath::parse(filename) {
            Ok(path) => path,
            Err(e) => return refuse(RejectReason::BadPath(e), tx),
        };
        if let Some(max) = self.max_per_client
            && self.index.count_ip(&self.slots, *rx.src.ip()) >= usize::from(max)
        {
            return refuse(RejectReason::ClientBusy, tx);
        }
        let Some(index) = self.index.peek_free() else {
            return refuse(RejectReason::Busy, tx);
        };
        let opened = match store.open(path) {
            Ok(opened) => opened,
            Err(OpenError::NotFound) => return refuse(RejectReason::NotFound, tx),
            Err(OpenError::Denied) => return refuse(RejectReason::Denied, tx),
            Err(OpenError::Io(_)) => return refuse(RejectReason::Io, tx),
        };
        let negotiated = Negotiated::negotiate(&self.cfg, options, opened.size);
        let slot = &mut self.slots[index];
        slot.transfer = Some(Transfer::new(
            now,
            rx.src,
            hash,
            opened.handle,
            opened.size,
            negotiated,
        ));
        let generation = slot.generation;
        self.index.occupy(&mut self.slots, index, rx.src);
        self.index.mark_ready(&mut self.slots, index);
        self.live += 1;
        debug!("tftp: transfer {} for {}", index, rx.src);
        Ok(RequestOutcome::Accepted {
            id: TransferId {
                slot: index as u16,
                generation,
            },
            path,
            options,
        })
    }

    /// A datagram on transfer `id`'s own port. When it leaves something to send, the transfer
    /// joins the readiness queue ([`TftpServer::poll_ready`]).
    pub fn handle(&mut self, now: Instant, id: TransferId, rx: &Received<'_>) -> Handled {
        let Some(transfer) = self.transfer_mut(id) else {
            return Handled::Ignored(IgnoreReason::UnknownTransfer);
        };
        let was_closed = transfer.is_closed();
        let result = transfer.handle(now, rx.src, rx.payload);
        let has_output = result.is_ok() || transfer.stranger.is_some();
        let change = Change::of(transfer, was_closed, has_output);
        self.settle(id.index(), change);
        match result {
            Ok(()) => Handled::Accepted,
            Err(reason) => Handled::Ignored(reason),
        }
    }

    /// The next datagram transfer `id` wants sent, written into `tx`. Call until `None`, which
    /// also takes the transfer out of the readiness queue ([`TftpServer::poll_ready`]).
    /// DATA needs `tx.len() >= 4 + blksize` (at most `4 + max_blksize`).
    ///
    /// # Errors
    /// [`InsufficientSize`] when `tx` is too small; nothing changed then.
    #[inline(always)]
    pub fn poll_transmit<S: FileStore<Handle = H>>(
        &mut self,
        now: Instant,
        id: TransferId,
        store: &mut S,
        tx: &mut [u8],
    ) -> Result<Option<UnicastTransmit>, InsufficientSize> {
        let Some(transfer) = self.transfer_mut(id) else {
            return Ok(None);
        };
        let was_closed = transfer.is_closed();
        let transmit = transfer.poll_transmit(now, store, tx)?;
        let deadline = transfer.deadline;
        if transfer.is_closed() && !was_closed {
            self.index.push_closed(&mut self.slots, id.index());
            self.index.unmark_ready(&mut self.slots, id.index());
        }
        // A live transfer drained to `None` stays queued: `poll_ready` drops it unless something
        // new arrived for it by then, which spares the DATA path two queue updates per window.
        self.note_deadline(deadline);
        Ok(transmit)
    }

    /// The next transfer with something to send: drain [`TftpServer::poll_transmit`] for it.
    ///
    /// This is the readiness queue, kept inside the slots: a transfer joins it when it is
    /// accepted, when a datagram or a timeout leaves it something to send, and when it is
    /// aborted. Each call returns the first transfer that has something to send and moves it
    /// to the end, so a driver that stops before `None` (a full socket) meets the others before
    /// it comes round again; transfers found with nothing to send (drained since they joined)
    /// leave the queue on the way. O(1) amortized: each leaves at most once per joining.
    #[inline]
    pub fn poll_ready(&mut self) -> Option<TransferId> {
        loop {
            let index = self.index.first_ready()?;
            let slot = &self.slots[index];
            if slot.transfer.as_ref().is_some_and(Transfer::has_output) {
                let generation = slot.generation;
                self.index.rotate_ready(&mut self.slots);
                return Some(TransferId {
                    slot: index as u16,
                    generation,
                });
            }
            self.index.unmark_ready(&mut self.slots, index);
        }
    }

    /// The earliest deadline of any transfer. O(1); it may be earlier than needed, in which case
    /// [`TftpServer::handle_timeout`] does nothing but recompute it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline
    }

    /// Deadlines up to `now` passed: schedule retransmissions or drop transfers. Afterwards,
    /// drain [`TftpServer::poll_ready`]: only the transfers that have something to send now
    /// are in it.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_deadline.is_none_or(|d| d > now) {
            return;
        }
        let max_retries = self.cfg.max_retries;
        let mut next: Option<Instant> = None;
        for index in 0..self.slots.len() {
            let Some(transfer) = self.slots[index].transfer.as_mut() else {
                continue;
            };
            let due = transfer.deadline.is_some_and(|d| d <= now);
            let was_closed = transfer.is_closed();
            transfer.handle_timeout(now, max_retries);
            if let Some(d) = transfer.deadline {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
            let change = Change::of(transfer, was_closed, due);
            self.settle(index, change);
        }
        self.next_deadline = next;
    }

    /// The ids of live transfers.
    pub fn active(&self) -> impl Iterator<Item = TransferId> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.transfer.as_ref().map(|_| TransferId {
                slot: index as u16,
                generation: slot.generation,
            })
        })
    }

    /// How many transfers are live (including ended ones not yet reported).
    pub const fn live(&self) -> usize {
        self.live
    }

    /// The next fact for the driver. A reported transfer's file is closed in `store` and its
    /// slot freed: drop its socket.
    pub fn poll_event<S: FileStore<Handle = H>>(&mut self, store: &mut S) -> Option<TftpEvent> {
        let index = self.index.pop_closed(&mut self.slots)?;
        let slot = &mut self.slots[index];
        let transfer = slot
            .transfer
            .take()
            .expect("invariant: closed slots hold their transfer until reported");
        let id = TransferId {
            slot: index as u16,
            generation: slot.generation,
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.index.unmark_ready(&mut self.slots, index);
        self.index.release(&mut self.slots, index, transfer.peer);
        self.live -= 1;
        store.close(transfer.file);
        let stats = transfer.stats;
        Some(match transfer.phase {
            transfer::Phase::Closed(Some(reason)) => TftpEvent::Failed { id, reason, stats },
            _ => TftpEvent::Finished { id, stats },
        })
    }

    /// A snapshot of transfer `id`, if it is live.
    pub fn transfer(&self, id: TransferId) -> Option<TransferInfo> {
        let slot = self.slots.get(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.transfer.as_ref().map(|t| TransferInfo {
            peer: t.peer,
            size: t.size,
            options: t.options(),
            timeout: t.timeout(),
            stats: t.stats,
        })
    }

    /// Ends transfer `id` early with an ERROR 0 carrying `message` (e.g. on shutdown); the
    /// transfer joins the readiness queue to send it.
    pub fn abort(&mut self, id: TransferId, message: &'static str) {
        if let Some(transfer) = self.transfer_mut(id)
            && !transfer.is_closed()
        {
            transfer.abort(ErrorCode::Undefined, message, FailReason::ServerAborted);
            self.index.mark_ready(&mut self.slots, id.index());
        }
    }

    fn transfer_mut(&mut self, id: TransferId) -> Option<&mut Transfer<H>> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.transfer.as_mut()
    }

    /// Files slot `index` after its transfer changed, as the caller saw it afterwards: on the
    /// closed stack if it closed just now, in the readiness queue if it is live and
    /// `has_output`; its deadline into the server's.
    #[inline]
    fn settle(&mut self, index: usize, change: Change) {
        if change.closed {
            self.index.unmark_ready(&mut self.slots, index);
            if !change.was_closed {
                self.index.push_closed(&mut self.slots, index);
            }
        } else if change.has_output {
            self.index.mark_ready(&mut self.slots, index);
        }
        self.note_deadline(change.deadline);
    }

    fn note_deadline(&mut self, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            self.next_deadline = Some(self.next_deadline.map_or(d, |n| n.min(d)));
        }
    }
}

/// How a transfer changed in one call, for [`TftpServer::settle`].
#[derive(Debug, Clone, Copy)]
struct Change {
    was_closed: bool,
    closed: bool,
    has_output: bool,
    deadline: Option<Instant>,
}

impl Change {
    fn of<H: Copy>(transfer: &Transfer<H>, was_closed: bool, has_output: bool) -> Self {
        Self {
            was_closed,
            closed: transfer.is_closed(),
            has_output,
            deadline: transfer.deadline,
        }
    }

    /// A live transfer that has just closed (its deadline is gone).
    const fn closed_now() -> Self {
        Self {
            was_closed: false,
            closed: true,
            has_output: false,
            deadline: None,
        }
    }
}

/// The longest ERROR the listener sends: header, the longest message, NUL.
const MAX_REJECT_LEN: usize = 4 + RejectReason::Busy.message().len() + 1;

/// Writes the ERROR for `reason` to `peer`.
fn reject<'r>(
    peer: SocketAddrV4,
    reason: RejectReason,
    request: Option<Request<'r>>,
    tx: &mut [u8],
) -> Result<RequestOutcome<'r>, InsufficientSize> {
    let len = emit_error(reason.code(), reason.message(), tx)?;
    Ok(RequestOutcome::Rejected {
        transmit: UnicastTransmit { dst: peer, len },
        reason,
        request,
    })
}
