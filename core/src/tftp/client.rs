//! A TFTP read client (RFC 1350, 2347, 2348, 2349, 7440) as a sans-IO state machine: for the
//! load tool (`pocketpxe bench tftp`) and for tests that need a client under exact control.
//!
//! One [`TftpClient`] downloads one file. Received DATA is handed back to the caller as a
//! slice of the datagram ([`ClientInput::Data`]), so nothing is copied.

use core::net::SocketAddrV4;
use core::time::Duration;

use crate::net::{InsufficientSize, Received, UnicastTransmit};
use crate::time::Instant;
use crate::wire::tftp::{DEFAULT_BLKSIZE, ErrorCode, OptionWriter, Options, Repr, parse_decimal};

/// What the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientConfig {
    /// `blksize` to ask for (RFC 2348), or none.
    pub blksize: Option<u16>,
    /// `windowsize` to ask for (RFC 7440), or none.
    pub windowsize: Option<u16>,
    /// Whether to ask for `tsize` (RFC 2349).
    pub tsize: bool,
    /// Retransmission timeout.
    pub timeout: Duration,
    /// Retransmissions before giving up.
    pub max_retries: u8,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            blksize: None,
            windowsize: None,
            tsize: false,
            timeout: Duration::from_secs(1),
            max_retries: 5,
        }
    }
}

/// Why a download failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientError {
    /// The server sent an ERROR.
    Server(ErrorCode),
    /// No answer after every retry.
    TimedOut,
    /// The server acknowledged an option with a value we did not allow (RFC 2347 §2).
    BadOack,
}

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Server(code) => write!(f, "server sent {code}"),
            Self::TimedOut => f.write_str("timed out"),
            Self::BadOack => f.write_str("server acknowledged options we did not ask for"),
        }
    }
}

impl core::error::Error for ClientError {}

/// What a datagram meant to the client.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInput<'r> {
    /// New file bytes at `offset`, in order; `data` borrows the datagram.
    Data {
        /// Where they go in the file.
        offset: u64,
        /// The bytes.
        data: &'r [u8],
    },
    /// The server's OACK was taken.
    Negotiated,
    /// The download ended (see [`TftpClient::outcome`]).
    Ended,
    /// Nothing new: a duplicate, a stranger, a malformed packet.
    Ignored,
}

/// Counters for one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientStats {
    /// File bytes received in order.
    pub bytes: u64,
    /// Packets sent again after a timeout.
    pub retransmits: u32,
    /// DATA packets that were duplicates or out of order.
    pub out_of_order: u32,
}

/// One download.
#[derive(Debug, Clone)]
pub struct TftpClient<'a> {
    cfg: ClientConfig,
    server: SocketAddrV4,
    filename: &'a [u8],
    phase: Phase,
    /// The server's TID, once it answered.
    peer: Option<SocketAddrV4>,
    /// An ACK (wire block) owed to the server.
    ack_due: Option<u16>,
    /// A stranger owed ERROR 5.
    stranger: Option<SocketAddrV4>,
    deadline: Option<Instant>,
    blksize: u16,
    windowsize: u16,
    tsize: Option<u64>,
    /// The last block's wire number, once received: re-acknowledged if it comes again.
    final_block: Option<u16>,
    stats: ClientStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The RRQ is due (`sent == false`) or waits for its answer.
    Requesting { sent: bool, retries: u8 },
    /// Receiving; `next` is the next absolute block expected. `nacked`: a gap or repeat was
    /// already answered with an ACK since the last in-order block.
    Receiving {
        next: u64,
        since_ack: u16,
        retries: u8,
        nacked: bool,
    },
    /// Over: `None` for success.
    Ended(Option<ClientError>),
}

impl<'a> TftpClient<'a> {
    /// A client that will read `filename` from `server` (normally port 69). A NUL in
    /// `filename` ends it (names are NUL-terminated on the wire).
    pub fn new(cfg: ClientConfig, server: SocketAddrV4, filename: &'a [u8]) -> Self {
        let filename = filename
            .iter()
            .position(|&b| b == 0)
            .map_or(filename, |nul| &filename[..nul]);
        Self {
            cfg,
            server,
            filename,
            phase: Phase::Requesting {
                sent: false,
                retries: 0,
            },
            peer: None,
            ack_due: None,
            stranger: None,
            deadline: None,
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            tsize: None,
            final_block: None,
            stats: ClientStats::default(),
        }
    }

    /// A datagram from the network.
    pub fn handle<'r>(&mut self, now: Instant, rx: &Received<'r>) -> ClientInput<'r> {
        let Ok(repr) = Repr::parse_bytes(rx.payload) else {
            return ClientInput::Ignored;
        };
        match self.peer {
            // RFC 1350 §4: the first answer must come from the server's address; its port
            // becomes the transfer's TID.
            None if rx.src.ip() != self.server.ip() => return ClientInput::Ignored,
            Some(peer) if rx.src != peer => {
                if !matches!(repr, Repr::Error { .. }) {
                    self.stranger = Some(rx.src);
                }
                return ClientInput::Ignored;
            }
            _ => {}
        }
        if let Phase::Ended(result) = self.phase {
            // Dally (RFC 1350 §6): our final ACK may have been lost.
            if let (None, Repr::Data { block, .. }) = (result, repr)
                && Some(block) == self.final_block
            {
                self.ack_due = Some(block);
            }
            return ClientInput::Ignored;
        }
        match repr {
            Repr::Error { code, .. } => {
                self.end(Some(ClientError::Server(code)));
                ClientInput::Ended
            }
            Repr::OptionAck { options } => {
                if !matches!(self.phase, Phase::Requesting { .. }) {
                    return ClientInput::Ignored;
                }
                if !self.take_oack(options) {
                    self.end(Some(ClientError::BadOack));
                    return ClientInput::Ended;
                }
                self.peer = Some(rx.src);
                self.phase = Phase::Receiving {
                    next: 1,
                    since_ack: 0,
                    retries: 0,
                    nacked: false,
                };
                // RFC 2347 §2: ACK 0 confirms the OACK.
                self.ack_due = Some(0);
                self.deadline = Some(now + self.cfg.timeout);
                ClientInput::Negotiated
            }
            Repr::Data { block, data } => self.on_data(now, rx.src, block, data),
            _ => ClientInput::Ignored,
        }
    }

    /// The next datagram to send, written into `tx` (RRQ, ACK or ERROR 5).
    ///
    /// # Errors
    /// [`InsufficientSize`] if `tx` is too small (512 bytes always suffice).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        tx: &mut [u8],
    ) -> Result<Option<UnicastTransmit>, InsufficientSize> {
        if let Some(stranger) = self.stranger {
            let repr = Repr::Error {
                code: ErrorCode::UnknownTransferId,
                message: b"unknown transfer ID",
            };
            let len = emit(&repr, tx)?;
            self.stranger = None;
            return Ok(Some(UnicastTransmit { dst: stranger, len }));
        }
        if let Phase::Requesting { sent: false, .. } = self.phase {
            let len = self.emit_request(tx)?;
            if let Phase::Requesting { sent, .. } = &mut self.phase {
                *sent = true;
            }
            self.deadline = Some(now + self.cfg.timeout);
            return Ok(Some(UnicastTransmit {
                dst: self.server,
                len,
            }));
        }
        let (Some(block), Some(peer)) = (self.ack_due, self.peer) else {
            return Ok(None);
        };
        let len = emit(&Repr::Ack { block }, tx)?;
        self.ack_due = None;
        Ok(Some(UnicastTransmit { dst: peer, len }))
    }

    /// When the client next needs [`TftpClient::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The deadline passed: resend the RRQ or the last ACK, or give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        let exhausted = match self.phase {
            Phase::Requesting { retries, .. } | Phase::Receiving { retries, .. } => {
                retries >= self.cfg.max_retries
            }
            Phase::Ended(_) => {
                self.deadline = None;
                return;
            }
        };
        if exhausted {
            self.end(Some(ClientError::TimedOut));
            return;
        }
        match &mut self.phase {
            Phase::Requesting { sent, retries } => {
                *sent = false;
                *retries += 1;
            }
            Phase::Receiving {
                next,
                since_ack,
                retries,
                ..
            } => {
                // Acknowledge what we have; the server rewinds to the block after it.
                self.ack_due = Some((*next - 1) as u16);
                *since_ack = 0;
                *retries += 1;
            }
            Phase::Ended(_) => {}
        }
        self.stats.retransmits += 1;
        self.deadline = Some(now + self.cfg.timeout);
    }

    /// `None` while running; then `Ok(bytes)` or the error.
    pub fn outcome(&self) -> Option<Result<u64, ClientError>> {
        match self.phase {
            Phase::Ended(None) => Some(Ok(self.stats.bytes)),
            Phase::Ended(Some(e)) => Some(Err(e)),
            _ => None,
        }
    }

    /// The size the server announced with `tsize`, if any.
    pub fn tsize(&self) -> Option<u64> {
        self.tsize
    }

    /// The block size in force.
    pub fn blksize(&self) -> u16 {
        self.blksize
    }

    /// The window size in force.
    pub fn windowsize(&self) -> u16 {
        self.windowsize
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    fn on_data<'r>(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        block: u16,
        data: &'r [u8],
    ) -> ClientInput<'r> {
        if let Phase::Requesting { .. } = self.phase {
            // No OACK: plain RFC 1350 with the defaults, even if options were asked.
            self.peer = Some(src);
            self.phase = Phase::Receiving {
                next: 1,
                since_ack: 0,
                retries: 0,
                nacked: false,
            };
        }
        let blksize = usize::from(self.blksize);
        let Phase::Receiving {
            next,
            since_ack,
            retries,
            nacked,
        } = &mut self.phase
        else {
            return ClientInput::Ignored;
        };
        if data.len() > blksize {
            return ClientInput::Ignored;
        }
        if block != *next as u16 {
            self.stats.out_of_order += 1;
            // A repeat (our ACK was lost) or a gap: acknowledge what we have, once (RFC 7440 §4).
            if !*nacked {
                *nacked = true;
                *since_ack = 0;
                self.ack_due = Some((*next - 1) as u16);
            }
            return ClientInput::Ignored;
        }
        let offset = (*next - 1) * blksize as u64;
        *next += 1;
        *since_ack += 1;
        *retries = 0;
        *nacked = false;
        self.stats.bytes += data.len() as u64;
        if data.len() < blksize {
            // RFC 1350 §6: the short block is the last one.
            self.ack_due = Some(block);
            self.final_block = Some(block);
            self.end(None);
        } else {
            if *since_ack >= self.windowsize {
                self.ack_due = Some(block);
                *since_ack = 0;
            }
            self.deadline = Some(now + self.cfg.timeout);
        }
        ClientInput::Data { offset, data }
    }

    /// Takes the server's OACK; false if it holds anything we did not ask for or allow.
    fn take_oack(&mut self, options: Options<'_>) -> bool {
        for (name, value) in options.iter() {
            let Some(value) = parse_decimal(value) else {
                return false;
            };
            if name.eq_ignore_ascii_case(b"blksize") {
                match self.cfg.blksize {
                    Some(asked) if (8..=u64::from(asked)).contains(&value) => {
                        self.blksize = value as u16;
                    }
                    _ => return false,
                }
            } else if name.eq_ignore_ascii_case(b"windowsize") {
                match self.cfg.windowsize {
                    Some(asked) if (1..=u64::from(asked)).contains(&value) => {
                        self.windowsize = value as u16;
                    }
                    _ => return false,
                }
            } else if name.eq_ignore_ascii_case(b"tsize") && self.cfg.tsize {
                self.tsize = Some(value);
            } else {
                return false;
            }
        }
        true
    }

    fn emit_request(&self, tx: &mut [u8]) -> Result<usize, InsufficientSize> {
        let mut options = [0u8; 64];
        let mut writer = OptionWriter::new(&mut options);
        let mut push = |name: &str, value: u64| {
            writer
                .push_u64(name, value)
                .expect("invariant: three options fit in 64 bytes");
        };
        if let Some(b) = self.cfg.blksize {
            push("blksize", u64::from(b));
        }
        if let Some(w) = self.cfg.windowsize {
            push("windowsize", u64::from(w));
        }
        if self.cfg.tsize {
            push("tsize", 0);
        }
        let len = writer.len();
        let repr = Repr::ReadRequest {
            filename: self.filename,
            mode: b"octet",
            options: Options::new_checked(&options[..len])
                .expect("invariant: OptionWriter writes pairs"),
        };
        emit(&repr, tx)
    }

    fn end(&mut self, error: Option<ClientError>) {
        self.phase = Phase::Ended(error);
        self.deadline = None;
        if error.is_some() {
            self.ack_due = None;
        }
    }
}

fn emit(repr: &Repr<'_>, tx: &mut [u8]) -> Result<usize, InsufficientSize> {
    let required = repr.buffer_len();
    repr.emit(tx).map_err(|_| InsufficientSize { required })
}
