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
mod options;
mod slots;
mod transfer;

pub use client::{ClientConfig, ClientError, ClientInput, ClientStats, TftpClient};
pub use options::{Acked, Negotiated, OACK_OPTIONS_MAX_LEN};

use core::fmt;
use core::net::SocketAddrV4;
use core::time::Duration;

use managed::ManagedSlice;

use crate::net::{Destination, InsufficientSize, Received, Transmit};
use crate::storage::{FileStore, OpenError, PathError, SafePath};
use crate::time::Instant;
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

/// What became of a datagram on the listener port.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestOutcome {
    /// A new transfer: open its socket, then drain [`TftpServer::poll_transmit`] for it.
    Accepted(TransferId),
    /// Refused: send the ERROR in `tx[..transmit.len]` from the listener socket.
    Rejected {
        /// The ERROR packet.
        transmit: Transmit,
        /// Why.
        reason: RejectReason,
    },
    /// Dropped without an answer.
    Ignored(IgnoreReason),
}

/// Why a request was refused with an ERROR packet.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RejectReason {
    /// The file does not exist (ERROR 1).
    NotFound,
    /// The store refused it: outside the root, not a regular file, unreadable (ERROR 2).
    Denied,
    /// The name is not acceptable (ERROR 2).
    BadPath(PathError),
    /// A write request: the server is read-only (ERROR 2).
    ReadOnly,
    /// A mode other than `octet` (ERROR 4).
    UnsupportedMode,
    /// The request does not parse (ERROR 4).
    Malformed(crate::wire::Error),
    /// Every transfer slot is taken (ERROR 0).
    Busy,
    /// This client address already runs as many transfers as
    /// [`TftpServer::set_max_transfers_per_client`] allows (ERROR 0).
    ClientBusy,
    /// The store failed to open the file (ERROR 0).
    Io,
}

impl RejectReason {
    /// The TFTP error code sent to the client.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::FileNotFound,
            Self::Denied | Self::BadPath(_) | Self::ReadOnly => ErrorCode::AccessViolation,
            Self::UnsupportedMode | Self::Malformed(_) => ErrorCode::IllegalOperation,
            Self::Busy | Self::ClientBusy | Self::Io => ErrorCode::Undefined,
        }
    }

    /// The message sent to the client: fixed text, never a host path.
    pub const fn message(&self) -> &'static str {
        match self {
            Self::NotFound => "file not found",
            Self::Denied => "access denied",
            Self::BadPath(PathError::Empty) => "empty file name",
            Self::BadPath(PathError::ParentComponent) => "'..' is not allowed in file names",
            Self::BadPath(PathError::Nul) => "NUL is not allowed in file names",
            Self::BadPath(PathError::NotUtf8) => "file names must be UTF-8",
            Self::BadPath(PathError::TooLong) => "file name too long",
            Self::ReadOnly => "server is read-only",
            Self::UnsupportedMode => "only octet mode is supported",
            Self::Malformed(_) => "malformed request",
            Self::Busy => "server busy: all transfer slots in use, retry later",
            Self::ClientBusy => "too many transfers from your address, retry later",
            Self::Io => "cannot open file",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Why a datagram was dropped without an answer (STYLE.md R6).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IgnoreReason {
    /// It does not parse.
    Malformed(crate::wire::Error),
    /// Not a request, on the listener port.
    NotARequest,
    /// The same request again from the same client port while its transfer runs.
    DuplicateRequest,
    /// The transfer id is stale or was never issued.
    UnknownTransfer,
    /// From an address that is not the transfer's peer (it is owed ERROR 5).
    UnknownTransferId,
    /// An ACK for a block already acknowledged (RFC 1123 §4.2.3.1: no resend).
    DuplicateAck,
    /// An ACK for a block not sent yet, or in the wrong phase.
    UnexpectedAck,
    /// A packet type a read transfer does not expect.
    UnexpectedPacket,
    /// The transfer is already over.
    TransferClosed,
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed packet: {e}"),
            Self::NotARequest => f.write_str("not a request"),
            Self::DuplicateRequest => f.write_str("repeated request"),
            Self::UnknownTransfer => f.write_str("unknown transfer"),
            Self::UnknownTransferId => f.write_str("packet from a foreign TID"),
            Self::DuplicateAck => f.write_str("duplicate ACK"),
            Self::UnexpectedAck => f.write_str("unexpected ACK"),
            Self::UnexpectedPacket => f.write_str("unexpected packet"),
            Self::TransferClosed => f.write_str("transfer already closed"),
        }
    }
}

/// What became of a datagram on a transfer's port.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Handled {
    /// It moved the transfer on; drain [`TftpServer::poll_transmit`].
    Accepted,
    /// Dropped (a stranger's packet still queues ERROR 5: drain `poll_transmit`).
    Ignored(IgnoreReason),
}

/// Why a transfer ended without delivering the whole file.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailReason {
    /// No answer after every retry.
    TimedOut,
    /// The client sent an ERROR. With `during_negotiation` and code 8 this is the normal end of
    /// a `tsize` probe (OVMF), not a failure worth a warning.
    Aborted {
        /// The client's error code.
        code: ErrorCode,
        /// Whether it came in answer to the OACK.
        during_negotiation: bool,
    },
    /// The store failed to read (ERROR 0 sent).
    ReadError,
    /// The file's size changed during the transfer (ERROR 0 sent).
    FileChanged,
    /// The same client port asked for something else.
    Superseded,
    /// The driver ended it with [`TftpServer::abort`] (ERROR 0 sent).
    ServerAborted,
}

impl FailReason {
    /// Whether this is a normal way for a client to end (a `tsize` probe's ERROR 8).
    pub const fn is_size_probe(&self) -> bool {
        matches!(
            self,
            Self::Aborted {
                code: ErrorCode::OptionNegotiation,
                during_negotiation: true
            }
        )
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("timed out"),
            Self::Aborted {
                code,
                during_negotiation: true,
            } => write!(f, "client ended after the OACK ({code})"),
            Self::Aborted { code, .. } => write!(f, "client aborted ({code})"),
            Self::ReadError => f.write_str("read error"),
            Self::FileChanged => f.write_str("file changed during the transfer"),
            Self::Superseded => f.write_str("superseded by a new request from the same port"),
            Self::ServerAborted => f.write_str("aborted by the server"),
        }
    }
}

/// Counters for one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferStats {
    /// When the request arrived.
    pub started: Instant,
    /// File bytes acknowledged by the client.
    pub bytes: u64,
    /// DATA packets sent, retransmissions included.
    pub blocks_sent: u64,
    /// DATA packets sent again after a timeout or a gap.
    pub retransmits: u64,
    /// Timeouts that fired.
    pub timeouts: u32,
    /// Duplicate ACKs ignored.
    pub duplicate_acks: u32,
    /// ACKs inside a window that was already sent (the client saw a gap): each rewinds to the
    /// block after it (RFC 7440 §4), so at most `windowsize` retransmissions follow from one.
    pub gaps: u32,
}

/// A fact for the driver. Both variants mean the transfer is over: close its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TftpEvent {
    /// The client acknowledged the last block.
    Finished {
        /// Which transfer.
        id: TransferId,
        /// Its counters.
        stats: TransferStats,
    },
    /// The transfer ended early.
    Failed {
        /// Which transfer.
        id: TransferId,
        /// Why.
        reason: FailReason,
        /// Its counters.
        stats: TransferStats,
    },
}

/// A snapshot of a live transfer, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferInfo {
    /// The client's TID.
    pub peer: SocketAddrV4,
    /// The file's size, if known.
    pub size: Option<u64>,
    /// The negotiated options (and which were acknowledged).
    pub options: Negotiated,
    /// The retransmission timeout in force.
    pub timeout: Duration,
    /// Counters so far.
    pub stats: TransferStats,
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

    /// A datagram on the listener port (RRQ/WRQ).
    ///
    /// # Errors
    /// [`InsufficientSize`] when `tx` cannot hold the ERROR reply; nothing changed then.
    pub fn handle_request<S: FileStore<Handle = H>>(
        &mut self,
        now: Instant,
        rx: &Received<'_>,
        store: &mut S,
        tx: &mut [u8],
    ) -> Result<RequestOutcome, InsufficientSize> {
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
            Err(e) if is_request => return reject(rx.src, RejectReason::Malformed(e), tx),
            Err(e) => return Ok(RequestOutcome::Ignored(IgnoreReason::Malformed(e))),
        };
        let (filename, mode, options) = match repr {
            Repr::ReadRequest {
                filename,
                mode,
                options,
            } => (filename, mode, options),
            Repr::WriteRequest { .. } => return reject(rx.src, RejectReason::ReadOnly, tx),
            _ => return Ok(RequestOutcome::Ignored(IgnoreReason::NotARequest)),
        };
        let hash = request_hash(rx.payload);
        if let Some(index) = self.index.find_peer(&self.slots, rx.src) {
            let transfer = self.slots[index]
                .transfer
                .as_mut()
                .expect("invariant: find_peer returns occupied slots");
            if transfer.request_hash == hash {
                return Ok(RequestOutcome::Ignored(IgnoreReason::DuplicateRequest));
            }
            transfer.close(Some(FailReason::Superseded));
            self.index.push_closed(&mut self.slots, index);
        }
        if Mode::from_bytes(mode) != Mode::Octet {
            return reject(rx.src, RejectReason::UnsupportedMode, tx);
        }
        let path = match SafePath::parse(filename) {
            Ok(path) => path,
            Err(e) => return reject(rx.src, RejectReason::BadPath(e), tx),
        };
        if let Some(max) = self.max_per_client
            && self.index.count_ip(&self.slots, *rx.src.ip()) >= usize::from(max)
        {
            return reject(rx.src, RejectReason::ClientBusy, tx);
        }
        let Some(index) = self.index.peek_free() else {
            return reject(rx.src, RejectReason::Busy, tx);
        };
        let opened = match store.open(path) {
            Ok(opened) => opened,
            Err(OpenError::NotFound) => return reject(rx.src, RejectReason::NotFound, tx),
            Err(OpenError::Denied) => return reject(rx.src, RejectReason::Denied, tx),
            Err(OpenError::Io(_)) => return reject(rx.src, RejectReason::Io, tx),
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
        self.live += 1;
        debug!("tftp: transfer {} for {}", index, rx.src);
        Ok(RequestOutcome::Accepted(TransferId {
            slot: index as u16,
            generation,
        }))
    }

    /// A datagram on transfer `id`'s own port.
    pub fn handle(&mut self, now: Instant, id: TransferId, rx: &Received<'_>) -> Handled {
        let Some(transfer) = self.transfer_mut(id) else {
            return Handled::Ignored(IgnoreReason::UnknownTransfer);
        };
        let was_closed = transfer.is_closed();
        let result = transfer.handle(now, rx.src, rx.payload);
        let deadline = transfer.deadline;
        if transfer.is_closed() && !was_closed {
            self.index.push_closed(&mut self.slots, id.index());
        }
        self.note_deadline(deadline);
        match result {
            Ok(()) => Handled::Accepted,
            Err(reason) => Handled::Ignored(reason),
        }
    }

    /// The next datagram transfer `id` wants sent, written into `tx`. Call until `None`.
    /// DATA needs `tx.len() >= 4 + blksize` (at most `4 + max_blksize`).
    ///
    /// # Errors
    /// [`InsufficientSize`] when `tx` is too small; nothing changed then.
    pub fn poll_transmit<S: FileStore<Handle = H>>(
        &mut self,
        now: Instant,
        id: TransferId,
        store: &mut S,
        tx: &mut [u8],
    ) -> Result<Option<Transmit>, InsufficientSize> {
        let Some(transfer) = self.transfer_mut(id) else {
            return Ok(None);
        };
        let was_closed = transfer.is_closed();
        let transmit = transfer.poll_transmit(now, store, tx)?;
        let deadline = transfer.deadline;
        if transfer.is_closed() && !was_closed {
            self.index.push_closed(&mut self.slots, id.index());
        }
        self.note_deadline(deadline);
        Ok(transmit)
    }

    /// The earliest deadline of any transfer. O(1); it may be earlier than needed, in which case
    /// [`TftpServer::handle_timeout`] does nothing but recompute it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline
    }

    /// Deadlines up to `now` passed: schedule retransmissions or drop transfers. Afterwards,
    /// drain [`TftpServer::poll_transmit`] for every [`TftpServer::active`] transfer.
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
            let was_closed = transfer.is_closed();
            transfer.handle_timeout(now, max_retries);
            if let Some(d) = transfer.deadline {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
            if transfer.is_closed() && !was_closed {
                self.index.push_closed(&mut self.slots, index);
            }
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

    /// Ends transfer `id` early with an ERROR 0 carrying `message` (e.g. on shutdown).
    pub fn abort(&mut self, id: TransferId, message: &'static str) {
        if let Some(transfer) = self.transfer_mut(id)
            && !transfer.is_closed()
        {
            transfer.abort(ErrorCode::Undefined, message, FailReason::ServerAborted);
        }
    }

    fn transfer_mut(&mut self, id: TransferId) -> Option<&mut Transfer<H>> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation {
            return None;
        }
        slot.transfer.as_mut()
    }

    fn note_deadline(&mut self, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            self.next_deadline = Some(self.next_deadline.map_or(d, |n| n.min(d)));
        }
    }
}

/// The longest ERROR the listener sends: header, the longest message, NUL.
const MAX_REJECT_LEN: usize = 4 + RejectReason::Busy.message().len() + 1;

/// Writes the ERROR for `reason` to `peer`.
fn reject(
    peer: SocketAddrV4,
    reason: RejectReason,
    tx: &mut [u8],
) -> Result<RequestOutcome, InsufficientSize> {
    let len = emit_error(reason.code(), reason.message(), tx)?;
    Ok(RequestOutcome::Rejected {
        transmit: Transmit {
            dst: Destination::Unicast(peer),
            len,
        },
        reason,
    })
}
