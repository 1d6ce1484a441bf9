//! One read transfer: the per-TID state machine (RFC 1350 §2, RFC 2347, RFC 7440).

use core::net::SocketAddrV4;
use core::time::Duration;

use super::options::{Negotiated, OACK_OPTIONS_MAX_LEN};
use super::{FailReason, IgnoreReason, TransferStats};
use crate::net::{InsufficientSize, UnicastTransmit};
use crate::storage::FileStore;
use crate::time::Instant;
use crate::wire::tftp::{self as wire, ErrorCode, HEADER_LEN, Repr};

/// A read transfer in progress.
#[derive(Debug, Clone)]
pub(crate) struct Transfer<H> {
    /// The client's address and port: its TID.
    pub(crate) peer: SocketAddrV4,
    /// A hash of the request that started it, to spot repeated identical requests.
    pub(crate) request_hash: u32,
    pub(crate) file: H,
    /// The file's size when the store knows it.
    pub(crate) size: Option<u64>,
    pub(crate) opts: Negotiated,
    pub(crate) phase: Phase,
    /// When the transfer next needs attention (retransmission or giving up).
    pub(crate) deadline: Option<Instant>,
    /// A stranger that sent us a packet and is owed ERROR 5 (RFC 1350 §4).
    pub(crate) stranger: Option<SocketAddrV4>,
    /// The last block, once known (from the size or from a short read).
    pub(crate) last_block: Option<u64>,
    /// The highest block sent so far.
    pub(crate) highest_sent: u64,
    pub(crate) stats: TransferStats,
}

/// Where a transfer stands (STYLE.md R4: each variant owns exactly its data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The OACK is due (`sent == false`) or sent and waiting for ACK 0 (RFC 2347 §2).
    Negotiating { sent: bool, retries: u8 },
    /// DATA flows. `acked`: the highest block acknowledged (0 before any); `next`: the next
    /// block to send. Blocks are absolute (u64); the wire carries them modulo 65536.
    Sending { acked: u64, next: u64, retries: u8 },
    /// An ERROR to the peer is due; then the transfer ends with `reason`.
    Aborting {
        code: ErrorCode,
        message: &'static str,
        reason: FailReason,
    },
    /// Over; waiting for `poll_event` to report it and free the slot.
    Closed(Option<FailReason>),
}

impl<H: Copy> Transfer<H> {
    pub(crate) fn new(
        now: Instant,
        peer: SocketAddrV4,
        request_hash: u32,
        file: H,
        size: Option<u64>,
        opts: Negotiated,
    ) -> Self {
        let phase = if !opts.acked.is_empty() {
            Phase::Negotiating {
                sent: false,
                retries: 0,
            }
        } else {
            Phase::Sending {
                acked: 0,
                next: 1,
                retries: 0,
            }
        };
        let blksize = u64::from(opts.blksize);
        Self {
            peer,
            request_hash,
            file,
            size,
            opts,
            phase,
            deadline: None,
            stranger: None,
            // RFC 1350 §6: the block shorter than blksize (possibly empty) ends the transfer.
            last_block: size.map(|s| s / blksize + 1),
            highest_sent: 0,
            stats: TransferStats {
                started: now,
                ..TransferStats::default()
            },
        }
    }

    /// Whether the transfer is over and only waits to be reported.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Whether [`Transfer::poll_transmit`] would return a datagram now.
    pub(crate) fn has_output(&self) -> bool {
        self.stranger.is_some()
            || match self.phase {
                Phase::Negotiating { sent, .. } => !sent,
                Phase::Sending { acked, next, .. } => {
                    next <= acked + u64::from(self.opts.windowsize)
                        && self.last_block.is_none_or(|last| next <= last)
                }
                Phase::Aborting { .. } => true,
                Phase::Closed(_) => false,
            }
    }

    /// A datagram from the transfer's own port.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), IgnoreReason> {
        let repr = Repr::parse_bytes(payload).map_err(IgnoreReason::Malformed)?;
        if src != self.peer {
            // RFC 1350 §4: answer a stranger with ERROR 5, leave the transfer alone. An ERROR
            // is never answered (RFC 1350 §7), which also prevents error loops.
            if !matches!(repr, Repr::Error { .. }) {
                self.stranger = Some(src);
            }
            return Err(IgnoreReason::UnknownTransferId);
        }
        if self.is_closed() {
            return Err(IgnoreReason::TransferClosed);
        }
        match repr {
            Repr::Ack { block } => self.handle_ack(now, block),
            Repr::Error { code, .. } => {
                let during_negotiation = matches!(self.phase, Phase::Negotiating { .. });
                self.close(
                    now,
                    Some(FailReason::Aborted {
                        code,
                        during_negotiation,
                    }),
                );
                Ok(())
            }
            _ => Err(IgnoreReason::UnexpectedPacket),
        }
    }

    /// The deadline passed: retransmit (RFC 1123 §4.2.3.1: only on timeout) or give up.
    pub(crate) fn handle_timeout(&mut self, now: Instant, max_retries: u8) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.stats.timeouts += 1;
        let exhausted = match self.phase {
            Phase::Negotiating { retries, .. } | Phase::Sending { retries, .. } => {
                retries >= max_retries
            }
            Phase::Aborting { .. } | Phase::Closed(_) => false,
        };
        if exhausted {
            self.close(now, Some(FailReason::TimedOut));
            return;
        }
        match &mut self.phase {
            Phase::Negotiating { sent, retries } => {
                *sent = false;
                *retries += 1;
                self.deadline = Some(now + self.opts.timeout);
            }
            Phase::Sending {
                acked,
                next,
                retries,
            } => {
                // RFC 7440 §4: resend from the block after the last acknowledged one.
                *next = *acked + 1;
                *retries += 1;
                self.deadline = Some(now + self.opts.timeout);
            }
            Phase::Aborting { .. } | Phase::Closed(_) => self.deadline = None,
        }
    }

    /// The next datagram to send, if any, written into `tx`. Inlined into its one caller so
    /// that the result is not returned through memory: read back whole, the narrow stores of
    /// the address stall store forwarding for longer than a 512-byte block takes to copy.
    #[inline(always)]
    pub(crate) fn poll_transmit<S: FileStore<Handle = H>>(
        &mut self,
        now: Instant,
        store: &mut S,
        tx: &mut [u8],
    ) -> Result<Option<UnicastTransmit>, InsufficientSize> {
        if let Some(stranger) = self.stranger {
            let len = emit_error(ErrorCode::UnknownTransferId, "unknown transfer ID", tx)?;
            self.stranger = None;
            return Ok(Some(UnicastTransmit { dst: stranger, len }));
        }
        let peer = self.peer;
        let to_peer = |len| Ok(Some(UnicastTransmit { dst: peer, len }));
        match self.phase {
            Phase::Negotiating { sent: false, .. } => {
                let required = 2 + OACK_OPTIONS_MAX_LEN;
                let out = tx
                    .get_mut(..required)
                    .ok_or(InsufficientSize { required })?;
                out[..2].copy_from_slice(&wire::Opcode::Oack.code().to_be_bytes());
                // Not `expect`: its message would format the error with `Debug`, which costs a
                // small board's flash the whole `Debug` machinery.
                let Ok(options_len) = self.opts.write_oack_options(&mut out[2..]) else {
                    panic!("invariant: OACK_OPTIONS_MAX_LEN bounds every OACK");
                };
                let len = 2 + options_len;
                if let Phase::Negotiating { sent, .. } = &mut self.phase {
                    *sent = true;
                }
                self.deadline = Some(now + self.opts.timeout);
                to_peer(len)
            }
            Phase::Sending { acked, next, .. } => {
                let window_end = acked + u64::from(self.opts.windowsize);
                if next > window_end || self.last_block.is_some_and(|last| next > last) {
                    return Ok(None);
                }
                self.emit_data(now, next, store, tx).map(Some)
            }
            Phase::Aborting {
                code,
                message,
                reason,
            } => {
                let len = emit_error(code, message, tx)?;
                self.close(now, Some(reason));
                to_peer(len)
            }
            Phase::Negotiating { sent: true, .. } | Phase::Closed(_) => Ok(None),
        }
    }

    fn handle_ack(&mut self, now: Instant, block: u16) -> Result<(), IgnoreReason> {
        let blksize = u64::from(self.opts.blksize);
        let size = self.size;
        match &mut self.phase {
            Phase::Negotiating { .. } if block == 0 => {
                // RFC 2347 §2: ACK 0 confirms the OACK.
                self.phase = Phase::Sending {
                    acked: 0,
                    next: 1,
                    retries: 0,
                };
                self.deadline = Some(now + self.opts.timeout);
                Ok(())
            }
            Phase::Sending {
                acked,
                next,
                retries,
            } => {
                // Map the 16-bit wire block to the absolute block in acked..=highest_sent.
                let delta = u64::from(block.wrapping_sub(*acked as u16));
                if delta == 0 {
                    // RFC 1123 §4.2.3.1: a duplicate ACK never triggers a resend.
                    self.stats.duplicate_acks += 1;
                    return Err(IgnoreReason::DuplicateAck);
                }
                let absolute = *acked + delta;
                if absolute > self.highest_sent {
                    return Err(IgnoreReason::UnexpectedAck);
                }
                if absolute < self.highest_sent && self.last_block != Some(absolute) {
                    self.stats.gaps += 1;
                }
                *acked = absolute;
                *retries = 0;
                self.stats.bytes = size.map_or(absolute * blksize, |s| s.min(absolute * blksize));
                if self.last_block == Some(absolute) {
                    self.close(now, None);
                } else {
                    // At a window's end this moves on; in the middle of one (a gap the client
                    // saw) it rewinds to the block after the ACK (RFC 7440 §4).
                    *next = absolute + 1;
                    self.deadline = Some(now + self.opts.timeout);
                }
                Ok(())
            }
            _ => Err(IgnoreReason::UnexpectedAck),
        }
    }

    #[inline(always)]
    fn emit_data<S: FileStore<Handle = H>>(
        &mut self,
        now: Instant,
        block: u64,
        store: &mut S,
        tx: &mut [u8],
    ) -> Result<UnicastTransmit, InsufficientSize> {
        let blksize = usize::from(self.opts.blksize);
        let required = HEADER_LEN + blksize;
        let out = tx
            .get_mut(..required)
            .ok_or(InsufficientSize { required })?;
        let offset = (block - 1) * u64::from(self.opts.blksize);
        // With a known size, read exactly what belongs in this block: a different count means
        // the file changed under us. Without one, a short read marks the last block.
        let want = match self.size {
            Some(size) => size.saturating_sub(offset).min(blksize as u64) as usize,
            None => blksize,
        };
        let (header, payload) = out.split_at_mut(HEADER_LEN);
        let got = match store.read_at(self.file, offset, &mut payload[..want]) {
            Ok(got) if self.size.is_none() || got == want => got,
            Ok(_) => {
                return self.abort_now(
                    now,
                    FailReason::FileChanged,
                    "file changed while sent",
                    out,
                );
            }
            Err(_) => return self.abort_now(now, FailReason::ReadError, "read error", out),
        };
        let got = got.min(want);
        if got < blksize {
            self.last_block = Some(block);
            // Without a known size the short read tells it; later re-reads use it.
            self.size.get_or_insert(offset + got as u64);
        }
        wire::emit_data_header(block as u16, header)
            .expect("invariant: header is HEADER_LEN bytes");
        if block <= self.highest_sent {
            self.stats.retransmits += 1;
        } else {
            self.highest_sent = block;
        }
        self.stats.blocks_sent += 1;
        if let Phase::Sending { next, .. } = &mut self.phase {
            *next = block + 1;
        }
        self.deadline = Some(now + self.opts.timeout);
        Ok(UnicastTransmit {
            dst: self.peer,
            len: HEADER_LEN + got,
        })
    }

    /// Ends the transfer with an ERROR written into `out` right away.
    fn abort_now(
        &mut self,
        now: Instant,
        reason: FailReason,
        message: &'static str,
        out: &mut [u8],
    ) -> Result<UnicastTransmit, InsufficientSize> {
        let len = emit_error(ErrorCode::Undefined, message, out)?;
        self.close(now, Some(reason));
        Ok(UnicastTransmit {
            dst: self.peer,
            len,
        })
    }

    /// Ends the transfer at `now`: `None` for success.
    pub(crate) fn close(&mut self, now: Instant, failure: Option<FailReason>) {
        self.phase = Phase::Closed(failure);
        self.stats.ended = now;
        self.deadline = None;
        self.stranger = None;
    }

    /// Schedules an ERROR to the peer, then the end of the transfer.
    pub(crate) fn abort(&mut self, code: ErrorCode, message: &'static str, reason: FailReason) {
        self.phase = Phase::Aborting {
            code,
            message,
            reason,
        };
        self.deadline = None;
    }

    /// The negotiated timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.opts.timeout
    }

    /// The options this transfer acknowledged.
    pub(crate) fn options(&self) -> Negotiated {
        self.opts
    }
}

/// Writes an ERROR packet (RFC 1350 §5) into `tx`.
pub(crate) fn emit_error(
    code: ErrorCode,
    message: &str,
    tx: &mut [u8],
) -> Result<usize, InsufficientSize> {
    let repr = Repr::Error {
        code,
        message: message.as_bytes(),
    };
    let required = repr.buffer_len();
    repr.emit(tx).map_err(|_| InsufficientSize { required })
}

/// A hash of a request's bytes.
pub(crate) fn request_hash(payload: &[u8]) -> u32 {
    // FNV-1a: cheap and good enough to tell two requests from one client port apart.
    payload.iter().fold(0x811c_9dc5u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
