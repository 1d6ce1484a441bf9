//! The TFTP task: tokio sockets around the core's [`TftpServer`].
//!
//! One loop owns the server and the [`FsStore`]. Requests arrive on the listener; every
//! accepted transfer gets its own UDP socket (its TID, RFC 1350 §4) bound to the listener's
//! IP and port 0. The loop follows the core's driver contract: after each `handle*` it sends the
//! reply, drains `poll_transmit`, drains `poll_event`, then sleeps until `poll_timeout` or the
//! next datagram.
//!
//! The data path is built for many clients at once and few system calls per block:
//! - every transfer socket is registered with tokio's reactor under a waker of its own, which
//!   queues the transfer's id for the loop when the socket becomes readable; the loop then
//!   reads that socket directly (no reader task, no channel, no allocation per datagram);
//! - `recvmmsg(2)` reads every queued ACK at once, and a short batch proves the queue empty, so
//!   no extra call is spent on `EAGAIN`;
//! - everything the core wants sent for a transfer is written back to back into one buffer
//!   and sent together: a window of equal-sized DATA blocks (the last may be shorter) with one
//!   UDP GSO `sendmsg(2)`, other runs with `sendmmsg(2)`, a lone datagram with `sendto(2)`;
//! - one timer, moved only when the core's earliest deadline moves.
//!
//! Per block in lock-step that is one `epoll_wait` (tokio's), one `recvmmsg` and one `sendto`;
//! with a window of W blocks, the same three calls per W blocks.
//!
//! With the `io-uring` feature the transfer sockets go through one io_uring instead (see
//! `sys::uring`): a multishot receive per socket fed from a shared provided-buffer
//! ring, the sends of a turn queued and submitted together with one `io_uring_enter` at the end
//! of the turn, and the ring's descriptor waited for with the reactor. Per block in lock-step
//! that is one `epoll_wait` and one `io_uring_enter`. If the kernel refuses io_uring (disabled
//! by `kernel.io_uring_disabled`, a seccomp profile, an old kernel), or `POCKETPXE_IO_URING=off`
//! is set, one line is logged and the epoll path runs.
//!
//! On shutdown the listener stops being read, running transfers may finish until the grace
//! deadline, then the rest are dropped.
//!
//! `serve` binds the listener itself on one interface (`0.0.0.0:69` with `SO_BINDTODEVICE`) and
//! sets [`TftpService::bind_transfers`], so that transfer sockets answer from the server's
//! address on that interface too; with [`TftpService::with_client_book`] transfer logs name the
//! client's MAC address as DHCP learned it.

use crate::fs_store::{FileHandle, FsStore, RootError};
use crate::metrics::TftpMetrics;
use crate::serve::dhcp::ClientBook;
use crate::serve::timeline::BootWatch;
use crate::sys::clock::{Clock, sleep_until};
use crate::sys::shutdown::Shutdown;
use crate::sys::udp::transient;
use crate::sys::udp_batch::{self, RecvBatch};
use pocketpxe_core::tftp::WireText;
use pocketpxe_core::tftp::{
    FailReason, Handled, Outcome, RequestOutcome, Slot, TftpConfig, TftpServer, TransferId,
    TransferStats,
};
use pocketpxe_core::timeline::TransferEnd;
use pocketpxe_core::{Received, UnicastTransmit};
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::ReadBuf;
use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;

/// What the TFTP task needs to run.
#[derive(Debug, Clone)]
pub struct TftpTaskConfig {
    /// Directory served read-only.
    pub root: PathBuf,
    /// Address and port of the request listener (normally port 69).
    pub listen: SocketAddrV4,
    /// Concurrent transfers at most; further requests are refused by the core.
    pub max_transfers: u16,
    /// Protocol settings handed to the core.
    pub core: TftpConfig,
    /// How long running transfers may go on after shutdown was requested.
    pub grace: Duration,
}

/// Why the TFTP task could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TftpTaskError {
    /// The root directory is unusable.
    #[error(transparent)]
    Root(#[from] RootError),
    /// The listener could not be bound.
    #[error("cannot listen for TFTP on {addr}: {error}{hint}")]
    Bind {
        /// The address asked for.
        addr: SocketAddrV4,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
        /// Advice on the usual causes, may be empty.
        hint: &'static str,
    },
    /// The listener failed while running.
    #[error("TFTP listener {addr}: {error}")]
    Listener {
        /// The listener's address.
        addr: SocketAddrV4,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
}

/// A TFTP server ready to run: root opened, listener bound.
#[derive(Debug)]
pub struct TftpService {
    cfg: TftpTaskConfig,
    store: FsStore,
    listener: UdpSocket,
    local: SocketAddrV4,
    transfer_ip: Ipv4Addr,
    device: Option<String>,
    clients: Option<ClientBook>,
    max_per_client: Option<u16>,
    watch: Option<BootWatch>,
    metrics: Option<TftpMetrics>,
}

impl TftpService {
    /// Opens the root and binds the listener, so that configuration errors surface before
    /// anything runs. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`TftpTaskError::Root`] or [`TftpTaskError::Bind`], naming the path or address.
    pub fn bind(cfg: TftpTaskConfig) -> Result<Self, TftpTaskError> {
        let store = FsStore::open_root(&cfg.root)?;
        let listener = std::net::UdpSocket::bind(cfg.listen)
            .and_then(|socket| {
                socket.set_nonblocking(true)?;
                UdpSocket::from_std(socket)
            })
            .map_err(|error| bind_error(cfg.listen, error))?;
        Self::with_parts(cfg, store, listener)
    }

    /// The file store it serves from.
    pub fn store(&self) -> &FsStore {
        &self.store
    }

    /// Builds a service from an opened store and a listener the caller bound itself (for
    /// example on one interface). `cfg.root` and `cfg.listen` are then used for logs only.
    ///
    /// # Errors
    /// [`TftpTaskError::Listener`] if the listener's address cannot be read or is not IPv4.
    pub fn with_parts(
        cfg: TftpTaskConfig,
        store: FsStore,
        listener: UdpSocket,
    ) -> Result<Self, TftpTaskError> {
        let local = match listener.local_addr() {
            Ok(SocketAddr::V4(local)) => local,
            Ok(SocketAddr::V6(_)) => {
                return Err(TftpTaskError::Listener {
                    addr: cfg.listen,
                    error: io::Error::new(io::ErrorKind::Unsupported, "not an IPv4 socket"),
                });
            }
            Err(error) => {
                return Err(TftpTaskError::Listener {
                    addr: cfg.listen,
                    error,
                });
            }
        };
        Ok(Self {
            cfg,
            store,
            listener,
            local,
            transfer_ip: *local.ip(),
            device: None,
            clients: None,
            max_per_client: None,
            watch: None,
            metrics: None,
        })
    }

    /// Counts transfers (at their start and end, never per block) in `metrics`.
    pub fn with_metrics(mut self, metrics: TftpMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Binds each transfer's socket to `ip` (port 0) and, if set, to interface `device`
    /// (`SO_BINDTODEVICE`), instead of the listener's address. Use it when the listener is
    /// bound to `0.0.0.0` on one interface: the client then sees its DATA come from the address
    /// it sent the request to, over the same interface.
    pub fn bind_transfers(mut self, ip: Ipv4Addr, device: Option<String>) -> Self {
        self.transfer_ip = ip;
        self.device = device;
        self
    }

    /// At most `max` concurrent transfers per client IP address (`None`: no limit); see
    /// `TftpServer::set_max_transfers_per_client`.
    pub fn max_transfers_per_client(mut self, max: Option<u16>) -> Self {
        self.max_per_client = max;
        self
    }

    /// Names clients in transfer logs by the MAC address `book` holds for their IP.
    pub fn with_client_book(mut self, book: ClientBook) -> Self {
        self.clients = Some(book);
        self
    }

    /// Feeds every request and transfer end to the boot timeline `watch`.
    pub fn with_boot_watch(mut self, watch: BootWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// The listener's actual address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Serves until `shutdown` fires and the running transfers are done (or the grace period
    /// is over).
    ///
    /// # Errors
    /// [`TftpTaskError::Listener`] if the listener socket fails for good.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), TftpTaskError> {
        let Self {
            cfg,
            mut store,
            listener,
            local,
            transfer_ip,
            device,
            clients,
            max_per_client,
            watch,
            metrics,
        } = self;
        // One socket per transfer.
        crate::sys::fd_limit::raise_to(
            u64::from(cfg.max_transfers) + crate::sys::fd_limit::RESERVED,
            "--max-transfers",
        );
        tracing::info!(
            listen = %local,
            root = %store.root().display(),
            max_transfers = cfg.max_transfers,
            max_blksize = cfg.core.max_blksize,
            max_windowsize = cfg.core.max_windowsize,
            options = cfg.core.options,
            "TFTP server ready"
        );
        let mut slots = vec![Slot::<FileHandle>::default(); usize::from(cfg.max_transfers)];
        let mut server = TftpServer::new(cfg.core, &mut slots[..]);
        server.set_max_transfers_per_client(max_per_client);
        let mut driver = Driver {
            ring: RingIo::setup(),
            server,
            store: &mut store,
            clock: Clock::new(),
            listener,
            local,
            transfer_ip,
            device,
            clients,
            metrics,
            transfers: Vec::new(),
            running: 0,
            ready: Arc::new(ReadyQueue::default()),
            ready_ids: VecDeque::new(),
            tx: vec![0; TX_BUF_LEN],
            out: Vec::new(),
            rx: RecvBatch::new(),
            watch,
        };
        let result = driver.run(shutdown, cfg.grace).await;
        driver.abort_all();
        result
    }
}

/// Binds and runs a TFTP server until `shutdown` fires: [`TftpService::bind`] then
/// [`TftpService::run`].
///
/// # Errors
/// As [`TftpService::bind`] and [`TftpService::run`].
pub async fn run_tftp(cfg: TftpTaskConfig, shutdown: Shutdown) -> Result<(), TftpTaskError> {
    TftpService::bind(cfg)?.run(shutdown).await
}

/// The loop's state, borrowed from [`TftpService::run`].
struct Driver<'a> {
    /// The io_uring of the transfer sockets, when in use.
    ring: RingIo,
    server: TftpServer<'a, FileHandle>,
    store: &'a mut FsStore,
    clock: Clock,
    listener: UdpSocket,
    local: SocketAddrV4,
    transfer_ip: Ipv4Addr,
    device: Option<String>,
    clients: Option<ClientBook>,
    metrics: Option<TftpMetrics>,
    /// Indexed by [`TransferId::index`]; the entry's own id tells stale ids apart.
    transfers: Vec<Option<Transfer>>,
    running: usize,
    /// Transfer sockets whose readiness changed, filled by their wakers.
    ready: Arc<ReadyQueue>,
    /// Ids taken from `ready` and not served yet, oldest first (their `queued` flag stays set).
    ready_ids: VecDeque<TransferId>,
    /// Transmit buffer: the datagrams of one flush, back to back.
    tx: Vec<u8>,
    /// Scratch: `(destination, start, length)` of each datagram in `tx`.
    out: Vec<(SocketAddrV4, usize, usize)>,
    rx: RecvBatch,
    /// The boot timeline, fed every request and transfer end.
    watch: Option<BootWatch>,
}

/// The host side of one transfer: its socket (its TID), its waker and what to log at the end.
struct Transfer {
    id: TransferId,
    socket: TransferSocket,
    /// Queues `id` on the driver's [`ReadyQueue`] when the socket becomes readable.
    waker: Waker,
    wake: Arc<SocketWake>,
    local: SocketAddrV4,
    /// Whether UDP GSO still works on this socket's route (cleared after a refusal).
    gso: bool,
    log: TransferLog,
}

/// A transfer's socket, read and written either through the reactor or through the io_uring.
enum TransferSocket {
    Reactor(AsyncFd<std::net::UdpSocket>),
    #[cfg(feature = "io-uring")]
    Ring {
        socket: std::net::UdpSocket,
        /// Names the socket's completions: its slot index in the low 16 bits, a sequence
        /// number above, so that a late completion of an ended transfer finds nothing.
        token: u64,
    },
}

/// The io_uring of the transfer sockets (the `io-uring` feature), or nothing: then every
/// transfer socket goes through the reactor.
#[derive(Default)]
struct RingIo {
    #[cfg(feature = "io-uring")]
    ring: Option<AsyncFd<crate::sys::uring::Uring>>,
    #[cfg(feature = "io-uring")]
    inbox: crate::sys::uring::Inbox,
    /// Transfers that received something this turn, to be flushed.
    #[cfg(feature = "io-uring")]
    touched: Vec<TransferId>,
    #[cfg(feature = "io-uring")]
    sequence: u64,
}

struct TransferLog {
    peer: SocketAddrV4,
    mac: Option<String>,
    file: String,
    asked: String,
    granted: String,
    size: Option<u64>,
    /// The block size in force (RFC 2348).
    blksize: u16,
}

/// Transfer ids whose sockets may have datagrams, and the driver task to wake for them.
///
/// Instead of one reader task per transfer forwarding datagrams over a channel, every transfer
/// socket is registered with tokio's reactor and polled with a waker of its own
/// ([`SocketWake`]): a readiness event puts its id here and wakes the driver, which then reads
/// that socket directly into its scratch buffer. No task, no channel, no per-datagram
/// allocation.
#[derive(Default)]
struct ReadyQueue {
    inner: Mutex<ReadyInner>,
}

#[derive(Default)]
struct ReadyInner {
    ids: Vec<TransferId>,
    driver: Option<Waker>,
}

/// The waker of one transfer socket.
struct SocketWake {
    id: TransferId,
    /// Set while `id` sits in the queue, so that it is queued once.
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl ReadyQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadyInner> {
        // The critical sections cannot panic; a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until some id is queued or `out` holds some already, then appends the queued ids
    /// to `out`, in the order they were queued.
    fn poll_take(&self, cx: &mut Context<'_>, out: &mut VecDeque<TransferId>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.ids.is_empty() && out.is_empty() {
            if !inner
                .driver
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                inner.driver = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        out.extend(inner.ids.drain(..));
        Poll::Ready(())
    }
}

impl Wake for SocketWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let driver = {
            let mut inner = self.queue.lock();
            inner.ids.push(self.id);
            inner.driver.take()
        };
        if let Some(driver) = driver {
            driver.wake();
        }
    }
}

impl Driver<'_> {
    async fn run(&mut self, mut shutdown: Shutdown, grace: Duration) -> Result<(), TftpTaskError> {
        let mut rx_buf = vec![0u8; RX_BUF_LEN];
        let mut accepting = true;
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        // Made once: a new one per turn would join and leave the shutdown signal's waiters.
        let shutdown = shutdown.requested();
        tokio::pin!(shutdown);
        // One timer, moved only when the core's deadline comes earlier than the timer's: in
        // lock-step every ACK moves the deadline later, and the timer then rings once per
        // timeout period (the core finds nothing due and the timer is set again) instead of
        // being moved per block.
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut timer_at: Option<pocketpxe_core::Instant> = None;
        loop {
            if !accepting && self.running == 0 {
                tracing::info!("TFTP server stopped");
                return Ok(());
            }
            if let Some(at) = self.server.poll_timeout()
                && timer_at.is_none_or(|armed| at < armed)
            {
                timer.as_mut().reset(self.clock.deadline(at));
                timer_at = Some(at);
            }
            let ready = self.ready.clone();
            let mut ready_ids = std::mem::take(&mut self.ready_ids);
            // Unbiased: a flood of requests must not starve running transfers, nor the reverse.
            tokio::select! {
                () = &mut shutdown, if accepting => {
                    accepting = false;
                    grace_deadline = Some(tokio::time::Instant::now() + grace);
                    tracing::info!(
                        running = self.running,
                        grace_secs = grace.as_secs_f32(),
                        "shutdown requested: no new TFTP requests, letting running transfers finish"
                    );
                }
                () = sleep_until(grace_deadline), if grace_deadline.is_some() => {
                    tracing::warn!(
                        aborted = self.running,
                        "grace period over: aborting unfinished TFTP transfers"
                    );
                    self.abort_running().await;
                    return Ok(());
                }
                // Polled in place: the socket keeps one waker, no waiter joins and leaves a list.
                received = std::future::poll_fn(|cx| {
                    let mut buf = ReadBuf::new(&mut rx_buf);
                    self.listener
                        .poll_recv_from(cx, &mut buf)
                        .map_ok(|src| (buf.filled().len(), src))
                }), if accepting => {
                    match received {
                        Ok((len, SocketAddr::V4(src))) => {
                            self.on_request(src, &rx_buf[..len]).await;
                            // A boot storm queues many requests at once: take the queued ones
                            // now, before the socket buffer overflows.
                            for _ in 1..REQUESTS_PER_TURN {
                                match self.listener.try_recv_from(&mut rx_buf) {
                                    Ok((len, SocketAddr::V4(src))) => {
                                        self.on_request(src, &rx_buf[..len]).await;
                                    }
                                    Ok(_) => {}
                                    Err(_) => break,
                                }
                            }
                        }
                        Ok((_, SocketAddr::V6(src))) => {
                            tracing::debug!(client = %src, "ignored: IPv6 source");
                        }
                        Err(err) if transient(&err) => {
                            tracing::debug!(error = %err, "listener receive error (ignored)");
                        }
                        Err(error) => {
                            return Err(TftpTaskError::Listener { addr: self.local, error });
                        }
                    }
                }
                () = std::future::poll_fn(|cx| ready.poll_take(cx, &mut ready_ids)) => {
                    // Each socket poll spends a unit of tokio's cooperative budget. Once it is
                    // spent, the rest wait in order for the next turn, after the task yielded:
                    // polled now, they would be put off through tokio's LIFO list of deferred
                    // wakers, so that a few sockets would wait for seconds in a boot storm.
                    while let Some(&id) = ready_ids.front() {
                        if !tokio::task::coop::has_budget_remaining() {
                            break;
                        }
                        ready_ids.pop_front();
                        self.on_readable(id).await;
                    }
                    if !ready_ids.is_empty() {
                        tokio::task::yield_now().await;
                    }
                }
                () = &mut timer, if timer_at.is_some() => {
                    // Re-arm next turn even if the core reports the same deadline again.
                    timer_at = None;
                    self.on_timeout().await;
                }
                () = std::future::poll_fn(|cx| self.ring.poll_completions(cx)),
                    if self.ring.enabled() => {
                    self.on_completions().await;
                }
            }
            self.ready_ids = ready_ids;
            self.drain_events();
            // Everything this turn queued for the kernel, in one system call.
            self.ring.submit();
        }
    }

    /// A datagram on the listener: a new request.
    async fn on_request(&mut self, src: SocketAddrV4, payload: &[u8]) {
        let now = self.clock.now();
        let rx = Received {
            src,
            dst: self.local,
            payload,
        };
        let outcome = self
            .server
            .handle_request(now, &rx, &mut *self.store, &mut self.tx);
        match outcome {
            Ok(RequestOutcome::Accepted { id, path, options }) => {
                if let Some(metrics) = &self.metrics {
                    metrics.started();
                }
                let file = WireText(path.as_sent().as_bytes()).to_string();
                self.start_transfer(id, src, file, options.to_string())
                    .await;
            }
            Ok(RequestOutcome::Rejected {
                transmit,
                reason,
                request,
            }) => {
                // Without a parsed request there is no file name; no options asked: no field.
                let (file, asked) = request.map_or((None, None), |r| {
                    let asked = r.options.to_string();
                    (
                        Some(r.filename.to_string()),
                        (!asked.is_empty()).then_some(asked),
                    )
                });
                if let Some(metrics) = &self.metrics {
                    metrics.refused(&reason);
                }
                let mac = self.mac_of(src);
                tracing::info!(client = %src, mac = mac.as_deref(), file = file.as_deref(),
                    asked = asked.as_deref(), reason = %reason, "request refused");
                if let (Some(watch), Some(file)) = (&self.watch, file.as_deref()) {
                    watch.file_refused(src, file, reason);
                }
                send(&self.listener, &self.tx, transmit).await;
            }
            Ok(RequestOutcome::Ignored(reason)) => {
                tracing::debug!(client = %src, reason = %reason, "request ignored");
            }
            Err(err) => {
                tracing::error!(client = %src, error = %err, "bug: transmit buffer too small");
            }
        }
    }

    async fn start_transfer(
        &mut self,
        id: TransferId,
        peer: SocketAddrV4,
        file: String,
        asked: String,
    ) {
        let info = self.server.transfer(id);
        let log = TransferLog {
            peer,
            mac: self.mac_of(peer),
            file,
            asked,
            granted: info
                .as_ref()
                .map(|info| info.options.to_string())
                .unwrap_or_default(),
            size: info.and_then(|info| info.size),
            blksize: info.map_or(512, |info| info.options.blksize),
        };
        let bind_to = SocketAddrV4::new(self.transfer_ip, 0);
        let socket = match open_transfer_socket(bind_to, self.device.as_deref())
            .and_then(|socket| self.ring.adopt(socket, id))
        {
            Ok(socket) => socket,
            Err(err) => {
                tracing::error!(client = %peer, file = %log.file, error = %err,
                    "cannot open a socket for the transfer");
                // The ERROR goes out from the listener (see `send_out`).
                self.server.abort(id, "server out of resources");
                self.flush(id).await;
                return;
            }
        };
        let local = match socket.local_addr() {
            Ok(SocketAddr::V4(local)) => local,
            _ => bind_to,
        };
        tracing::debug!(client = %peer, mac = log.mac.as_deref(), file = %log.file,
            asked = non_empty(&log.asked), granted = non_empty(&log.granted), tid = local.port(),
            "transfer started");
        if let Some(watch) = &self.watch {
            watch.file_request(peer, &log.file, log.size);
        }
        let wake = Arc::new(SocketWake {
            id,
            queued: AtomicBool::new(false),
            queue: self.ready.clone(),
        });
        let waker = Waker::from(wake.clone());
        if matches!(socket, TransferSocket::Reactor(_)) {
            // Queue it once so that its waker gets registered with the reactor.
            waker.wake_by_ref();
        }
        let index = id.index();
        if self.transfers.len() <= index {
            self.transfers.resize_with(index + 1, || None);
        }
        if self.transfers[index]
            .replace(Transfer {
                id,
                socket,
                waker,
                wake,
                local,
                gso: true,
                log,
            })
            .is_none()
        {
            self.running += 1;
        }
        self.flush(id).await;
    }

    fn transfer(&self, id: TransferId) -> Option<&Transfer> {
        lookup(&self.transfers, id)
    }

    /// Transfer `id`'s socket may be readable: read every queued datagram (a batch per call),
    /// hand each to the core, then send what the core wants sent.
    async fn on_readable(&mut self, id: TransferId) {
        let Some(transfer) = self.transfer(id) else {
            return; // ended while queued
        };
        transfer.wake.queued.store(false, Ordering::Release);
        for _ in 0..MAX_BATCHES_PER_TURN {
            let Some(transfer) = lookup(&self.transfers, id) else {
                return;
            };
            let local = transfer.local;
            #[cfg_attr(not(feature = "io-uring"), allow(irrefutable_let_patterns))]
            let TransferSocket::Reactor(socket) = &transfer.socket else {
                return; // read through the io_uring
            };
            // The `Context` must not live across an await (it is neither Send nor Sync).
            let polled = socket.poll_read_ready(&mut Context::from_waker(&transfer.waker));
            let received = match polled {
                Poll::Pending => return, // the waker is registered
                Poll::Ready(Err(err)) => {
                    tracing::warn!(client = %transfer.log.peer, error = %err,
                        "transfer socket failed");
                    return;
                }
                Poll::Ready(Ok(mut guard)) => {
                    match udp_batch::recv_batch(guard.get_inner().as_fd(), &mut self.rx) {
                        Ok(n) => {
                            // A short batch emptied the queue: no need to learn it from EAGAIN.
                            if n < udp_batch::RECV_BATCH {
                                guard.clear_ready();
                            }
                            n
                        }
                        Err(err) => {
                            if err.kind() != io::ErrorKind::WouldBlock {
                                tracing::debug!(error = %err, "transfer socket receive error");
                            }
                            guard.clear_ready();
                            continue;
                        }
                    }
                }
            };
            let now = self.clock.now();
            for i in 0..received {
                let Some((Some(src), payload)) = self.rx.get(i) else {
                    continue; // not IPv4
                };
                let rx = Received {
                    src,
                    dst: local,
                    payload,
                };
                if let Handled::Ignored(reason) = self.server.handle(now, id, &rx) {
                    tracing::trace!(client = %src, reason = %reason, "datagram ignored");
                }
            }
            self.flush(id).await;
        }
        // Still busy after several batches: let the other sockets have a turn first.
        if let Some(transfer) = self.transfer(id) {
            transfer.waker.wake_by_ref();
        }
    }

    async fn on_timeout(&mut self) {
        self.server.handle_timeout(self.clock.now());
        // Only the transfers that have something to send now (a retransmission, an ERROR).
        while let Some(id) = self.server.poll_ready() {
            self.flush(id).await;
        }
    }

    /// Sends everything the core has queued for transfer `id`: the datagrams are written back
    /// to back into `tx`, then sent with as few system calls as possible (see `send_out`).
    async fn flush(&mut self, id: TransferId) {
        let room = TX_PACKET_MAX;
        let mut used = 0;
        self.out.clear();
        let now = self.clock.now();
        loop {
            if self.tx.len() - used < room || self.out.len() >= udp_batch::GSO_MAX_SEGMENTS {
                self.send_out(id).await;
                used = 0;
            }
            match self
                .server
                .poll_transmit(now, id, &mut *self.store, &mut self.tx[used..])
            {
                Ok(Some(transmit)) => {
                    self.out.push((transmit.dst, used, transmit.len));
                    used += transmit.len;
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::error!(error = %err, "bug: transmit buffer too small");
                    break;
                }
            }
        }
        self.send_out(id).await;
    }

    /// Sends the datagrams listed in `out` (in `tx`) from transfer `id`'s socket: a run of
    /// equal-sized datagrams to one peer (a window of DATA; the last may be shorter) with one
    /// GSO `sendmsg`, anything else with `sendmmsg`, a single one with `sendto`.
    async fn send_out(&mut self, id: TransferId) {
        if self.out.is_empty() {
            return;
        }
        let index = id.index();
        let Some(Some(transfer)) = self
            .transfers
            .get_mut(index)
            .map(|t| t.as_mut().filter(|t| t.id == id))
        else {
            // A transfer without a socket of its own can only be sending its ERROR.
            for &(dst, start, len) in &self.out {
                let transmit = UnicastTransmit { dst, len };
                send(&self.listener, &self.tx[start..], transmit).await;
            }
            self.out.clear();
            return;
        };
        #[cfg_attr(
            not(feature = "io-uring"),
            allow(clippy::infallible_destructuring_match)
        )]
        let socket = match &transfer.socket {
            TransferSocket::Reactor(socket) => socket,
            #[cfg(feature = "io-uring")]
            TransferSocket::Ring { socket, token } => {
                self.ring
                    .send(socket, *token, transfer.gso, &self.out, &self.tx);
                self.out.clear();
                return;
            }
        };
        let mut next = 0;
        while next < self.out.len() {
            let (dst, start, len) = self.out[next];
            let (end, bytes) = gso_run(&self.out, next);
            if end - next > 1 && transfer.gso {
                let segment = u16::try_from(len).unwrap_or(u16::MAX);
                let result = send_retrying(socket, |socket| {
                    udp_batch::send_gso(
                        socket.as_fd(),
                        dst,
                        &self.tx[start..start + bytes],
                        segment,
                    )
                })
                .await;
                match result {
                    Ok(_) => {
                        next = end;
                        continue;
                    }
                    Err(err) => {
                        // Refused (segment over the path MTU, a device without checksum
                        // offload, an old kernel): datagram by datagram from now on.
                        tracing::debug!(client = %dst, error = %err,
                            "UDP GSO refused; sending datagrams one by one");
                        transfer.gso = false;
                    }
                }
            }
            let mut packets: [(SocketAddrV4, &[u8]); udp_batch::GSO_MAX_SEGMENTS] =
                [(dst, &[]); udp_batch::GSO_MAX_SEGMENTS];
            let count = (self.out.len() - next).min(udp_batch::GSO_MAX_SEGMENTS);
            for (slot, &(to, from, len)) in packets.iter_mut().zip(&self.out[next..next + count]) {
                *slot = (to, &self.tx[from..from + len]);
            }
            let result = if count == 1 {
                send_retrying(socket, |socket| socket.send_to(packets[0].1, dst))
                    .await
                    .map(|_| 1)
            } else {
                send_retrying(socket, |socket| {
                    udp_batch::send_many(socket.as_fd(), &packets[..count])
                })
                .await
            };
            match result {
                Ok(sent) => next += sent.max(1),
                Err(err) => {
                    // Left to the core's retransmission, as a lost datagram would be.
                    tracing::debug!(client = %dst, error = %err, "send failed");
                    next += 1;
                }
            }
        }
        self.out.clear();
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.server.poll_event(&mut *self.store) {
            if let Some(metrics) = &self.metrics {
                metrics.ended(event.stats(), event.outcome());
            }
            if let Some(transfer) = self.end_transfer(event.id()) {
                log_end(&transfer.log, event.stats(), event.outcome());
                if let Some(watch) = &self.watch {
                    let log = &transfer.log;
                    watch.file_end(log.peer, &log.file, TransferEnd::new(&event, log.blksize));
                }
            }
        }
    }

    /// Ends every transfer now (grace period over): ERROR 0 to each client.
    async fn abort_running(&mut self) {
        let ids: Vec<TransferId> = self.transfers.iter().flatten().map(|t| t.id).collect();
        for &id in &ids {
            self.server.abort(id, "server shutting down");
            self.flush(id).await;
        }
        self.drain_events();
    }

    fn end_transfer(&mut self, id: TransferId) -> Option<Transfer> {
        self.transfer(id)?;
        let transfer = self.transfers.get_mut(id.index())?.take()?;
        self.running -= 1;
        self.ring.forget(&transfer.socket);
        Some(transfer)
    }

    /// The client's MAC address, if DHCP handed out its IP (for logs).
    fn mac_of(&self, peer: SocketAddrV4) -> Option<String> {
        self.clients.as_ref()?.mac_of(*peer.ip())
    }

    fn abort_all(&mut self) {
        self.transfers.clear();
        self.running = 0;
    }
}

/// Transfer `id`, unless it ended (its slot is empty or holds a newer transfer).
fn lookup(transfers: &[Option<Transfer>], id: TransferId) -> Option<&Transfer> {
    transfers.get(id.index())?.as_ref().filter(|t| t.id == id)
}

/// Runs the non-blocking send `op` on `socket`; when the socket buffer is full, waits (at most
/// [`SEND_WAIT`]) until it is writable and tries again.
async fn send_retrying<T>(
    socket: &AsyncFd<std::net::UdpSocket>,
    mut op: impl FnMut(&std::net::UdpSocket) -> io::Result<T>,
) -> io::Result<T> {
    let deadline = tokio::time::Instant::now() + SEND_WAIT;
    loop {
        match op(socket.get_ref()) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                match tokio::time::timeout_at(deadline, socket.writable()).await {
                    Ok(Ok(mut guard)) => guard.clear_ready(),
                    Ok(Err(err)) => return Err(err),
                    Err(_) => return Err(err),
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Logs the end of a transfer: one line with everything an operator needs.
fn log_end(log: &TransferLog, stats: &TransferStats, outcome: Outcome) {
    let elapsed = stats.elapsed();
    let secs = elapsed.as_secs_f64();
    let rate_kib_s = if secs > 0.0 {
        stats.bytes as f64 / 1024.0 / secs
    } else {
        0.0
    };
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    macro_rules! end {
        ($level:ident) => {
            tracing::$level!(
                client = %log.peer,
                mac = log.mac.as_deref(),
                file = %log.file,
                asked = non_empty(&log.asked),
                granted = non_empty(&log.granted),
                size = log.size,
                bytes = stats.bytes,
                duration_ms,
                rate_kib_s = format_args!("{rate_kib_s:.1}"),
                retransmits = stats.retransmits,
                timeouts = stats.timeouts,
                duplicate_acks = stats.duplicate_acks,
                gaps = stats.gaps,
                outcome = %outcome,
                "transfer ended"
            )
        };
    }
    match outcome {
        Outcome::Done | Outcome::Failed(FailReason::Aborted { .. } | FailReason::Superseded) => {
            end!(info);
        }
        Outcome::SizeProbe => end!(debug),
        Outcome::Failed(_) => end!(warn),
    }
}

/// `text`, or no field at all when it is empty (no options asked or granted).
fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// A non-blocking UDP socket for one transfer.
fn open_transfer_socket(addr: SocketAddrV4, device: Option<&str>) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(device) = device {
        socket.bind_device(Some(device.as_bytes()))?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    Ok(socket)
}

/// A transfer socket registered with tokio's reactor.
fn register_transfer_socket(socket: socket2::Socket) -> io::Result<TransferSocket> {
    // SAFETY: the std socket owns its descriptor, which stays open and the same for as long as
    // the `AsyncFd` owns the socket.
    unsafe { AsyncFd::register(std::net::UdpSocket::from(socket)) }
        .map(TransferSocket::Reactor)
        .map_err(io::Error::from)
}

/// The longest run of datagrams in `out` from `next` that one GSO send can carry: same peer,
/// same size but maybe the last, within the kernel's limits. Returns the end of the run and
/// its bytes.
fn gso_run(out: &[(SocketAddrV4, usize, usize)], next: usize) -> (usize, usize) {
    let (dst, _, len) = out[next];
    let mut end = next + 1;
    let mut bytes = len;
    while end < out.len()
        && end - next < udp_batch::GSO_MAX_SEGMENTS
        && out[end].0 == dst
        && out[end - 1].2 == len
        && out[end].2 <= len
        && bytes + out[end].2 <= udp_batch::GSO_MAX_BYTES
    {
        bytes += out[end].2;
        end += 1;
    }
    (end, bytes)
}

impl TransferSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Reactor(socket) => socket.get_ref().local_addr(),
            #[cfg(feature = "io-uring")]
            Self::Ring { socket, .. } => socket.local_addr(),
        }
    }
}

/// Sends `tx[..transmit.len]` from `socket`. UDP send errors are logged and otherwise left to
/// the core's retransmission.
async fn send(socket: &UdpSocket, tx: &[u8], transmit: UnicastTransmit) {
    let dst = transmit.dst;
    let Some(bytes) = tx.get(..transmit.len) else {
        tracing::error!(len = transmit.len, "bug: transmit longer than the buffer");
        return;
    };
    if let Err(err) = socket.send_to(bytes, dst).await {
        tracing::debug!(client = %dst, error = %err, "send failed");
    }
}

fn bind_error(addr: SocketAddrV4, error: io::Error) -> TftpTaskError {
    let hint = match error.kind() {
        io::ErrorKind::AddrInUse => " (another TFTP server is already listening there)",
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        io::ErrorKind::AddrNotAvailable => " (no local interface has this address)",
        _ => "",
    };
    TftpTaskError::Bind { addr, error, hint }
}

#[cfg(not(feature = "io-uring"))]
impl RingIo {
    fn setup() -> Self {
        Self::default()
    }

    fn enabled(&self) -> bool {
        false
    }

    fn poll_completions(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }

    fn adopt(&mut self, socket: socket2::Socket, _id: TransferId) -> io::Result<TransferSocket> {
        register_transfer_socket(socket)
    }

    fn forget(&mut self, _socket: &TransferSocket) {}

    fn submit(&mut self) {}
}

#[cfg(not(feature = "io-uring"))]
impl Driver<'_> {
    async fn on_completions(&mut self) {}
}

#[cfg(feature = "io-uring")]
impl RingIo {
    /// Sets up the ring; if the kernel refuses, says so once and leaves the reactor path on.
    fn setup() -> Self {
        let ring = crate::sys::uring::Uring::new().and_then(crate::sys::uring::Uring::into_async);
        let ring = match ring {
            Ok(ring) => {
                tracing::debug!("TFTP transfer sockets on io_uring");
                Some(ring)
            }
            Err(err) => {
                tracing::info!(error = %err, "io_uring unavailable: TFTP transfer sockets use epoll");
                None
            }
        };
        Self {
            ring,
            ..Self::default()
        }
    }

    fn enabled(&self) -> bool {
        self.ring.is_some()
    }

    /// Ready when completions wait in the ring.
    fn poll_completions(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(ring) = self.ring.as_mut() else {
            return Poll::Pending;
        };
        loop {
            match ring.poll_read_ready_mut(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => {
                    tracing::error!(error = %err, "io_uring descriptor failed");
                    return Poll::Pending;
                }
                Poll::Ready(Ok(mut guard)) => {
                    if guard.get_inner_mut().has_completions() {
                        // Readiness kept: checked again (in memory) next turn.
                        return Poll::Ready(());
                    }
                    guard.clear_ready();
                }
            }
        }
    }

    /// Takes a new transfer socket into the ring (its receive armed, submitted with the
    /// turn), or registers it with the reactor when there is no ring.
    fn adopt(&mut self, socket: socket2::Socket, id: TransferId) -> io::Result<TransferSocket> {
        let Some(ring) = self.ring.as_mut() else {
            return register_transfer_socket(socket);
        };
        self.sequence += 1;
        let token = (self.sequence << 16) | (id.index() as u64 & 0xFFFF);
        let socket = std::net::UdpSocket::from(socket);
        ring.get_mut().arm_recv(socket.as_fd(), token)?;
        Ok(TransferSocket::Ring { socket, token })
    }

    /// A transfer socket is about to close: its receive is cancelled, and whatever is queued
    /// for it is submitted now, while its descriptor still names it.
    fn forget(&mut self, socket: &TransferSocket) {
        let (Some(ring), TransferSocket::Ring { token, .. }) = (self.ring.as_mut(), socket) else {
            return;
        };
        let ring = ring.get_mut();
        if let Err(err) = ring.cancel(*token).and_then(|()| ring.submit()) {
            tracing::warn!(error = %err, "io_uring cancel failed");
        }
    }

    fn submit(&mut self) {
        if let Some(ring) = self.ring.as_mut()
            && let Err(err) = ring.get_mut().submit()
        {
            tracing::warn!(error = %err, "io_uring submit failed");
        }
    }

    /// Queues the datagrams listed in `out` (in `tx`) on transfer socket `socket`: a run of
    /// equal-sized datagrams to one peer as one GSO send (if `gso`), the others one by one.
    fn send(
        &mut self,
        socket: &std::net::UdpSocket,
        token: u64,
        gso: bool,
        out: &[(SocketAddrV4, usize, usize)],
        tx: &[u8],
    ) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let ring = ring.get_mut();
        let mut next = 0;
        while next < out.len() {
            let (dst, start, len) = out[next];
            let (end, bytes) = if gso {
                gso_run(out, next)
            } else {
                (next + 1, len)
            };
            let segment = (end - next > 1).then(|| u16::try_from(len).unwrap_or(u16::MAX));
            if let Err(err) = ring.send(
                socket.as_fd(),
                dst,
                &tx[start..start + bytes],
                segment,
                token,
            ) {
                // Left to the core's retransmission, as a lost datagram would be.
                tracing::debug!(client = %dst, error = %err, "send failed");
            }
            next = end;
        }
    }
}

#[cfg(feature = "io-uring")]
impl Driver<'_> {
    /// Completions wait in the ring: hand every received datagram to the core, re-arm the
    /// receives that stopped, then send what the core wants sent for each transfer touched.
    async fn on_completions(&mut self) {
        let Some(ring) = self.ring.ring.as_mut() else {
            return;
        };
        ring.get_mut().drain(&mut self.ring.inbox);
        let inbox = &self.ring.inbox;
        let touched = &mut self.ring.touched;
        touched.clear();
        let now = self.clock.now();
        for (token, src, payload) in inbox.received() {
            let Some(transfer) = ring_lookup(&self.transfers, token) else {
                continue; // ended meanwhile
            };
            let Some(src) = src else {
                continue; // not IPv4
            };
            let id = transfer.id;
            let rx = Received {
                src,
                dst: transfer.local,
                payload,
            };
            if let Handled::Ignored(reason) = self.server.handle(now, id, &rx) {
                tracing::trace!(client = %src, reason = %reason, "datagram ignored");
            }
            if touched.last() != Some(&id) {
                touched.push(id);
            }
        }
        for &token in &inbox.rearm {
            if let Some(Transfer {
                socket: TransferSocket::Ring { socket, .. },
                ..
            }) = ring_lookup(&self.transfers, token)
                && let Err(err) = ring.get_mut().arm_recv(socket.as_fd(), token)
            {
                tracing::warn!(error = %err, "cannot re-arm a transfer receive");
            }
        }
        for (token, error) in &inbox.recv_failed {
            if let Some(transfer) = ring_lookup(&self.transfers, *token) {
                tracing::warn!(client = %transfer.log.peer, error = %error,
                    "transfer socket failed");
            }
        }
        for (token, was_gso, error) in &inbox.send_failed {
            let index = (*token & 0xFFFF) as usize;
            if let Some(Some(transfer)) = self.transfers.get_mut(index)
                && matches!(transfer.socket, TransferSocket::Ring { token: t, .. } if t == *token)
            {
                tracing::debug!(client = %transfer.log.peer, error = %error, "send failed");
                if *was_gso {
                    // As on the reactor path: datagram by datagram from now on; the lost
                    // window is left to the core's retransmission.
                    transfer.gso = false;
                }
            }
        }
        let mut touched = std::mem::take(&mut self.ring.touched);
        touched.sort_unstable_by_key(|id| id.index());
        touched.dedup();
        for &id in &touched {
            self.flush(id).await;
        }
        self.ring.touched = touched;
    }
}

/// The transfer whose ring socket carries `token`, unless it ended.
#[cfg(feature = "io-uring")]
fn ring_lookup(transfers: &[Option<Transfer>], token: u64) -> Option<&Transfer> {
    let index = usize::try_from(token & 0xFFFF).ok()?;
    transfers
        .get(index)?
        .as_ref()
        .filter(|t| matches!(t.socket, TransferSocket::Ring { token: own, .. } if own == token))
}

/// Listener receive buffer: large enough to see over-long requests whole.
const RX_BUF_LEN: usize = 65_536;
/// The largest datagram the core writes: 4-byte header plus the largest block (RFC 2348: 65464).
const TX_PACKET_MAX: usize = 65_536;
/// Transmit buffer: one GSO send's worth of datagrams plus room for the largest one.
const TX_BUF_LEN: usize = udp_batch::GSO_MAX_BYTES + TX_PACKET_MAX;
/// Requests taken from the listener in one turn at most.
const REQUESTS_PER_TURN: usize = 64;
/// Receive batches read from one transfer socket before the others get a turn.
const MAX_BATCHES_PER_TURN: usize = 8;
/// How long a send may wait for room in a full socket buffer before the datagrams are left to
/// the core's retransmission.
const SEND_WAIT: Duration = Duration::from_millis(200);
