//! What the server tells its driver about a datagram: [`RequestOutcome`] on the listener,
//! [`Handled`] on a transfer's port, and why something was refused, ignored or failed.

use core::fmt;

#[cfg(doc)]
use super::TftpServer;
use super::{TransferId, WireText};
use crate::net::UnicastTransmit;
use crate::storage::{PathError, SafePath};
use crate::wire::tftp::{ErrorCode, Options};

/// What became of a datagram on the listener port. It borrows the names and options from the
/// request's bytes, so that the driver can log them without parsing the datagram again.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestOutcome<'a> {
    /// A new transfer: open its socket, then drain [`TftpServer::poll_transmit`] for it.
    Accepted {
        /// The transfer.
        id: TransferId,
        /// The file, as validated and opened.
        path: SafePath<'a>,
        /// The options the client asked for (RFC 2347); what was granted is in
        /// [`TftpServer::transfer`].
        options: Options<'a>,
    },
    /// Refused: send the ERROR in `tx[..transmit.len]` from the listener socket.
    Rejected {
        /// The ERROR packet.
        transmit: UnicastTransmit,
        /// Why.
        reason: RejectReason,
        /// The request, when it parsed as one.
        request: Option<Request<'a>>,
    },
    /// Dropped without an answer.
    Ignored(IgnoreReason),
}

/// A read or write request as it parsed (RFC 1350 §5), for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// The file name as sent: not validated, so shown through [`WireText`].
    pub filename: WireText<'a>,
    /// The options asked for (RFC 2347).
    pub options: Options<'a>,
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

impl RejectReason {
    /// A stable lowercase name for metrics and machine-read logs, e.g. `not_found`.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Denied => "denied",
            Self::BadPath(_) => "bad_path",
            Self::ReadOnly => "read_only",
            Self::UnsupportedMode => "unsupported_mode",
            Self::Malformed(_) => "malformed",
            Self::Busy => "busy",
            Self::ClientBusy => "client_busy",
            Self::Io => "io",
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

impl FailReason {
    /// A stable lowercase name for metrics and machine-read logs, e.g. `timed_out`.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::TimedOut => "timed_out",
            Self::Aborted { .. } => "client_aborted",
            Self::ReadError => "read_error",
            Self::FileChanged => "file_changed",
            Self::Superseded => "superseded",
            Self::ServerAborted => "server_aborted",
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_names(labels: &[&str]) {
        for (i, label) in labels.iter().enumerate() {
            assert!(
                !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
            assert!(!labels[i + 1..].contains(label), "{label} twice");
        }
    }

    #[test]
    fn labels_are_distinct_lowercase_names() {
        let fail = [
            FailReason::TimedOut,
            FailReason::Aborted {
                code: ErrorCode::DiskFull,
                during_negotiation: false,
            },
            FailReason::ReadError,
            FailReason::FileChanged,
            FailReason::Superseded,
            FailReason::ServerAborted,
        ];
        assert_names(&fail.map(|r| r.label()));
        let reject = [
            RejectReason::NotFound,
            RejectReason::Denied,
            RejectReason::BadPath(PathError::Nul),
            RejectReason::ReadOnly,
            RejectReason::UnsupportedMode,
            RejectReason::Malformed(crate::wire::Error::Truncated),
            RejectReason::Busy,
            RejectReason::ClientBusy,
            RejectReason::Io,
        ];
        assert_names(&reject.map(|r| r.label()));
        assert_eq!(FailReason::TimedOut.label(), "timed_out");
        assert_eq!(RejectReason::NotFound.label(), "not_found");
    }
}
