//! What the server reports about transfers, and the text both drivers log for it: transfer
//! counters, end-of-transfer events and their one-line forms, behind [`Display`] and
//! `defmt::Format` alike.
//!
//! [`Display`]: fmt::Display

use core::fmt;
use core::net::SocketAddrV4;
use core::time::Duration;

use super::{FailReason, Negotiated, RejectReason, TransferId};
use crate::time::Instant;
use crate::wire::tftp::WireText;

/// Counters for one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferStats {
    /// When the request arrived.
    pub started: Instant,
    /// When the transfer ended (equal to `started` while it runs).
    pub ended: Instant,
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

impl TransferStats {
    /// From the request to the end of the transfer.
    pub fn elapsed(&self) -> Duration {
        self.ended.saturating_duration_since(self.started)
    }

    /// [`TransferStats::elapsed`] in whole milliseconds.
    pub const fn elapsed_millis(&self) -> u64 {
        self.ended
            .total_millis()
            .saturating_sub(self.started.total_millis())
    }
}

impl fmt::Display for TransferStats {
    /// `N bytes in M ms (B blocks, R retransmitted)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes in {} ms ({} blocks, {} retransmitted)",
            self.bytes,
            self.elapsed_millis(),
            self.blocks_sent,
            self.retransmits
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for TransferStats {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "{=u64} bytes in {=u64} ms ({=u64} blocks, {=u64} retransmitted)",
            self.bytes,
            self.ended
                .total_millis()
                .saturating_sub(self.started.total_millis()),
            self.blocks_sent,
            self.retransmits
        );
    }
}

/// How a transfer ended, as both drivers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The whole file was delivered.
    Done,
    /// The client ended after the OACK of a `tsize` probe (RFC 2349; OVMF): a normal end.
    SizeProbe,
    /// Any other early end.
    Failed(FailReason),
}

impl Outcome {
    /// The verb of the event's log line: `done`, `size probe` or `failed`.
    pub const fn verb(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::SizeProbe => "size probe",
            Self::Failed(_) => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    /// `ok`, `size probe (client ended after OACK)`, or the failure's reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done => f.write_str("ok"),
            Self::SizeProbe => f.write_str("size probe (client ended after OACK)"),
            Self::Failed(reason) => reason.fmt(f),
        }
    }
}

impl TftpEvent {
    /// Which transfer it is about.
    pub const fn id(&self) -> TransferId {
        match self {
            Self::Finished { id, .. } | Self::Failed { id, .. } => *id,
        }
    }

    /// The transfer's counters at its end.
    pub const fn stats(&self) -> &TransferStats {
        match self {
            Self::Finished { stats, .. } | Self::Failed { stats, .. } => stats,
        }
    }

    /// How it ended.
    pub const fn outcome(&self) -> Outcome {
        match *self {
            Self::Finished { .. } => Outcome::Done,
            Self::Failed { reason, .. } if reason.is_size_probe() => Outcome::SizeProbe,
            Self::Failed { reason, .. } => Outcome::Failed(reason),
        }
    }

    /// The event as one log line about the file `name`: `tftp: done NAME 1024 bytes in 3 ms
    /// (2 blocks, 0 retransmitted)`, `tftp: size probe NAME`, or
    /// `tftp: failed NAME: REASON 0 bytes in …`.
    pub const fn line<'n>(&self, name: &'n str) -> EventLine<'n> {
        EventLine { event: *self, name }
    }
}

/// A [`TftpEvent`] as one log line, from [`TftpEvent::line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLine<'n> {
    event: TftpEvent,
    name: &'n str,
}

impl fmt::Display for EventLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, stats) = (self.name, self.event.stats());
        match self.event.outcome() {
            Outcome::Done => write!(f, "tftp: done {name} {stats}"),
            Outcome::SizeProbe => write!(f, "tftp: size probe {name}"),
            Outcome::Failed(reason) => write!(f, "tftp: failed {name}: {reason} {stats}"),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for EventLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        let (name, stats) = (self.name, self.event.stats());
        match self.event.outcome() {
            Outcome::Done => defmt::write!(f, "tftp: done {=str} {}", name, stats),
            Outcome::SizeProbe => defmt::write!(f, "tftp: size probe {=str}", name),
            Outcome::Failed(reason) => {
                defmt::write!(f, "tftp: failed {=str}: {} {}", name, reason, stats)
            }
        }
    }
}

/// A refused request as one log line: `tftp: refused NAME to PEER: REASON`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedLine<'a> {
    /// The file asked for.
    pub name: WireText<'a>,
    /// Who asked.
    pub peer: SocketAddrV4,
    /// Why it was refused.
    pub reason: RejectReason,
}

impl fmt::Display for RefusedLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { name, peer, reason } = self;
        // The address and port apart, as `SocketAddrV4` shows them: its own `Display` (which
        // handles width and alignment through a buffer) costs a small board 560 bytes of flash.
        let (ip, port) = (peer.ip(), peer.port());
        write!(f, "tftp: refused {name} to {ip}:{port}: {reason}")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RefusedLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "tftp: refused {} to {}: {}",
            self.name,
            self.peer,
            self.reason
        );
    }
}
