//! The reference drive loop: the run-loop contract of the crate docs, written once for tests,
//! fuzz targets and benches (feature `_test-util`). Each function is one turn of a driver: a
//! `handle*` call, its reply sent, then [`flush`]: every transfer in the readiness queue
//! drained through `poll_transmit`, then every event drained. What a real driver would put on
//! the wire or in its log goes to `out` as an [`Output`].

use core::net::SocketAddrV4;

use super::{Handled, RequestOutcome, TftpEvent, TftpServer, TransferId};
use crate::net::{InsufficientSize, Received};
use crate::storage::FileStore;
use crate::time::Instant;

/// What a turn of the loop hands to the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output<'b> {
    /// A datagram to send.
    Send {
        /// The socket it leaves from: the listener (`None`) or transfer `id`'s own port.
        from: Option<TransferId>,
        /// Where it goes.
        dst: SocketAddrV4,
        /// Its bytes.
        bytes: &'b [u8],
    },
    /// An event to log; the transfer's socket is closed.
    Event(TftpEvent),
}

/// The most datagrams taken from one transfer per turn: far above a window (at most 65 535
/// blocks) plus an ERROR, so only a `poll_transmit` that never ends hits it.
pub const MAX_PER_TRANSFER: usize = 65_537;

/// A datagram on the listener: [`TftpServer::handle_request`], its ERROR sent if refused,
/// then [`flush`].
///
/// # Errors
/// [`InsufficientSize`] when `tx` is too small for a reply or a block.
pub fn request<'r, H: Copy, S: FileStore<Handle = H>>(
    server: &mut TftpServer<'_, H>,
    now: Instant,
    rx: &Received<'r>,
    store: &mut S,
    tx: &mut [u8],
    mut out: impl FnMut(Output<'_>),
) -> Result<RequestOutcome<'r>, InsufficientSize> {
    let outcome = server.handle_request(now, rx, store, tx)?;
    if let RequestOutcome::Rejected { transmit, .. } = outcome {
        out(Output::Send {
            from: None,
            dst: transmit.dst,
            bytes: &tx[..transmit.len],
        });
    }
    flush(server, now, store, tx, out)?;
    Ok(outcome)
}

/// A datagram on transfer `id`'s port: [`TftpServer::handle`], then [`flush`].
///
/// # Errors
/// [`InsufficientSize`] when `tx` is too small for a block.
pub fn datagram<H: Copy, S: FileStore<Handle = H>>(
    server: &mut TftpServer<'_, H>,
    now: Instant,
    id: TransferId,
    rx: &Received<'_>,
    store: &mut S,
    tx: &mut [u8],
    out: impl FnMut(Output<'_>),
) -> Result<Handled, InsufficientSize> {
    let handled = server.handle(now, id, rx);
    flush(server, now, store, tx, out)?;
    Ok(handled)
}

/// Time passed: [`TftpServer::handle_timeout`] if the deadline is due, then [`flush`].
/// Returns the next deadline, until which the driver sleeps (or until the next datagram).
///
/// # Errors
/// [`InsufficientSize`] when `tx` is too small for a block.
pub fn timeout<H: Copy, S: FileStore<Handle = H>>(
    server: &mut TftpServer<'_, H>,
    now: Instant,
    store: &mut S,
    tx: &mut [u8],
    out: impl FnMut(Output<'_>),
) -> Result<Option<Instant>, InsufficientSize> {
    if server.poll_timeout().is_some_and(|at| at <= now) {
        server.handle_timeout(now);
    }
    flush(server, now, store, tx, out)?;
    Ok(server.poll_timeout())
}

/// Steps 2 and 3 of the contract: every transfer in the readiness queue drained through
/// [`TftpServer::poll_transmit`], then every event. Returns the number of datagrams sent.
///
/// # Errors
/// [`InsufficientSize`] when `tx` is too small for a block; the transfer stays queued.
pub fn flush<H: Copy, S: FileStore<Handle = H>>(
    server: &mut TftpServer<'_, H>,
    now: Instant,
    store: &mut S,
    tx: &mut [u8],
    mut out: impl FnMut(Output<'_>),
) -> Result<usize, InsufficientSize> {
    let mut sent = 0;
    'ready: while let Some(id) = server.poll_ready() {
        let mut from_this = 0;
        while let Some(t) = server.poll_transmit(now, id, store, tx)? {
            out(Output::Send {
                from: Some(id),
                dst: t.dst,
                bytes: &tx[..t.len],
            });
            sent += 1;
            from_this += 1;
            if from_this == MAX_PER_TRANSFER {
                // A poll_transmit that does not end: leave it queued rather than loop forever.
                break 'ready;
            }
        }
    }
    while let Some(event) = server.poll_event(store) {
        out(Output::Event(event));
    }
    Ok(sent)
}
