//! The TFTP task: tokio sockets around the core's [`TftpServer`].
//!
//! One loop owns the server and the [`FsStore`]. Requests arrive on the listener; every
//! accepted transfer gets its own UDP socket (its TID, RFC 1350 §4) bound to the listener's
//! IP and port 0, read by a small reader task that forwards datagrams to the loop over a
//! channel. The loop follows the core's driver contract: after each `handle*` it sends the
//! reply, drains `poll_transmit`, drains `poll_event`, then sleeps until `poll_timeout` or the
//! next datagram.
//!
//! On shutdown the listener stops being read, running transfers may finish until the grace
//! deadline, then the rest are dropped.
//!
//! `serve` binds the listener itself on one interface (`0.0.0.0:69` with `SO_BINDTODEVICE`) and
//! sets [`TftpService::bind_transfers`], so that transfer sockets answer from the server's
//! address on that interface too; with [`TftpService::with_client_book`] transfer logs name the
//! client's MAC address as DHCP learned it.

use crate::clock::Clock;
use crate::dhcp_task::ClientBook;
use crate::fs_store::{FileHandle, FsStore, RootError};
use crate::shutdown::Shutdown;
use pocketpxe_core::tftp::{
    FailReason, Handled, RequestOutcome, Slot, TftpConfig, TftpEvent, TftpServer, TransferId,
    TransferInfo, TransferStats,
};
use pocketpxe_core::wire::tftp::Repr as TftpRepr;
use pocketpxe_core::{Destination, Received, Transmit};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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
        })
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
        } = self;
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
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let mut driver = Driver {
            server,
            store: &mut store,
            clock: Clock::new(),
            listener,
            local,
            transfer_ip,
            device,
            clients,
            transfers: HashMap::new(),
            inbound_tx,
            tx: vec![0; TX_BUF_LEN],
        };
        let result = driver.run(shutdown, inbound_rx, cfg.grace).await;
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
    server: TftpServer<'a, FileHandle>,
    store: &'a mut FsStore,
    clock: Clock,
    listener: UdpSocket,
    local: SocketAddrV4,
    transfer_ip: Ipv4Addr,
    device: Option<String>,
    clients: Option<ClientBook>,
    transfers: HashMap<TransferId, Transfer>,
    inbound_tx: mpsc::Sender<Inbound>,
    tx: Vec<u8>,
}

/// The host side of one transfer: its socket, its reader task and what to log at the end.
struct Transfer {
    socket: Arc<UdpSocket>,
    local: SocketAddrV4,
    reader: JoinHandle<()>,
    log: TransferLog,
}

struct TransferLog {
    peer: SocketAddrV4,
    mac: Option<String>,
    file: String,
    asked: String,
    granted: String,
    size: Option<u64>,
    started: tokio::time::Instant,
}

/// A datagram read from a transfer socket.
struct Inbound {
    id: TransferId,
    src: SocketAddrV4,
    payload: Box<[u8]>,
}

impl Driver<'_> {
    async fn run(
        &mut self,
        mut shutdown: Shutdown,
        mut inbound: mpsc::Receiver<Inbound>,
        grace: Duration,
    ) -> Result<(), TftpTaskError> {
        let mut rx_buf = vec![0u8; RX_BUF_LEN];
        let mut accepting = true;
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        loop {
            if !accepting && self.transfers.is_empty() {
                tracing::info!("TFTP server stopped");
                return Ok(());
            }
            let timer = self.server.poll_timeout().map(|at| self.clock.deadline(at));
            // Unbiased: a flood of requests must not starve running transfers, nor the reverse.
            tokio::select! {
                () = shutdown.requested(), if accepting => {
                    accepting = false;
                    grace_deadline = Some(tokio::time::Instant::now() + grace);
                    tracing::info!(
                        running = self.transfers.len(),
                        grace_secs = grace.as_secs_f32(),
                        "shutdown requested: no new TFTP requests, letting running transfers finish"
                    );
                }
                () = sleep_until(grace_deadline), if grace_deadline.is_some() => {
                    tracing::warn!(
                        aborted = self.transfers.len(),
                        "grace period over: aborting unfinished TFTP transfers"
                    );
                    self.abort_running().await;
                    return Ok(());
                }
                received = self.listener.recv_from(&mut rx_buf), if accepting => {
                    match received {
                        Ok((len, SocketAddr::V4(src))) => {
                            self.on_request(src, &rx_buf[..len]).await;
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
                Some(msg) = inbound.recv() => self.on_transfer_datagram(msg).await,
                () = sleep_until(timer), if timer.is_some() => self.on_timeout().await,
            }
            self.drain_events();
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
            Ok(RequestOutcome::Accepted(id)) => self.start_transfer(id, src, payload).await,
            Ok(RequestOutcome::Rejected { transmit, reason }) => {
                let (file, asked) = describe_request(payload);
                let mac = self.mac_of(src);
                tracing::info!(client = %src, mac = mac.as_deref(), file = %file, asked = %asked,
                    reason = ?reason, "request refused");
                send(&self.listener, &self.tx, transmit).await;
            }
            Ok(RequestOutcome::Ignored(reason)) => {
                tracing::debug!(client = %src, reason = ?reason, "request ignored");
            }
            Err(err) => {
                tracing::error!(client = %src, error = %err, "bug: transmit buffer too small");
            }
        }
    }

    async fn start_transfer(&mut self, id: TransferId, peer: SocketAddrV4, payload: &[u8]) {
        let (file, asked) = describe_request(payload);
        let info = self.server.transfer(id);
        let log = TransferLog {
            peer,
            mac: self.mac_of(peer),
            file,
            asked,
            granted: info.as_ref().map(describe_granted).unwrap_or_default(),
            size: info.and_then(|info| info.size),
            started: tokio::time::Instant::now(),
        };
        let bind_to = SocketAddrV4::new(self.transfer_ip, 0);
        let socket = match bind_transfer_socket(bind_to, self.device.as_deref()) {
            Ok(socket) => Arc::new(socket),
            Err(err) => {
                tracing::error!(client = %peer, file = %log.file, error = %err,
                    "cannot open a socket for the transfer");
                // The ERROR goes out from the listener (see `flush`).
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
            asked = %log.asked, granted = %log.granted, tid = local.port(), "transfer started");
        let reader = tokio::spawn(read_transfer(id, socket.clone(), self.inbound_tx.clone()));
        self.transfers.insert(
            id,
            Transfer {
                socket,
                local,
                reader,
                log,
            },
        );
        self.flush(id).await;
    }

    /// A datagram on a transfer socket.
    async fn on_transfer_datagram(&mut self, msg: Inbound) {
        let Some(transfer) = self.transfers.get(&msg.id) else {
            return; // the transfer ended while this datagram was queued
        };
        let rx = Received {
            src: msg.src,
            dst: transfer.local,
            payload: &msg.payload,
        };
        match self.server.handle(self.clock.now(), msg.id, &rx) {
            Handled::Accepted => {}
            Handled::Ignored(reason) => {
                tracing::trace!(client = %msg.src, reason = ?reason, "datagram ignored");
            }
        }
        self.flush(msg.id).await;
    }

    async fn on_timeout(&mut self) {
        self.server.handle_timeout(self.clock.now());
        let ids: Vec<TransferId> = self.server.active().collect();
        for id in ids {
            self.flush(id).await;
        }
    }

    /// Sends everything the core has queued for transfer `id`.
    async fn flush(&mut self, id: TransferId) {
        loop {
            let now = self.clock.now();
            match self
                .server
                .poll_transmit(now, id, &mut *self.store, &mut self.tx)
            {
                Ok(Some(transmit)) => {
                    // A transfer without a socket of its own can only be sending its ERROR.
                    let socket = self
                        .transfers
                        .get(&id)
                        .map_or(&self.listener, |t| &*t.socket);
                    send(socket, &self.tx, transmit).await;
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::error!(error = %err, "bug: transmit buffer too small");
                    return;
                }
            }
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.server.poll_event(&mut *self.store) {
            let (id, stats, failure) = match event {
                TftpEvent::Finished { id, stats } => (id, stats, None),
                TftpEvent::Failed { id, reason, stats } => (id, stats, Some(reason)),
            };
            if let Some(transfer) = self.end_transfer(id) {
                log_end(&transfer.log, &stats, failure);
            }
        }
    }

    /// Ends every transfer now (grace period over): ERROR 0 to each client.
    async fn abort_running(&mut self) {
        let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
        for &id in &ids {
            self.server.abort(id, "server shutting down");
            self.flush(id).await;
        }
        self.drain_events();
    }

    fn end_transfer(&mut self, id: TransferId) -> Option<Transfer> {
        let transfer = self.transfers.remove(&id)?;
        transfer.reader.abort();
        Some(transfer)
    }

    /// The client's MAC address, if DHCP handed out its IP (for logs).
    fn mac_of(&self, peer: SocketAddrV4) -> Option<String> {
        self.clients.as_ref()?.mac_of(*peer.ip())
    }

    fn abort_all(&mut self) {
        for (_, transfer) in self.transfers.drain() {
            transfer.reader.abort();
        }
    }
}

/// Logs the end of a transfer: one line with everything an operator needs.
fn log_end(log: &TransferLog, stats: &TransferStats, failure: Option<FailReason>) {
    let elapsed = log.started.elapsed();
    let secs = elapsed.as_secs_f64();
    let rate_kib_s = if secs > 0.0 {
        stats.bytes as f64 / 1024.0 / secs
    } else {
        0.0
    };
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    macro_rules! end {
        ($level:ident, $outcome:expr) => {
            tracing::$level!(
                client = %log.peer,
                mac = log.mac.as_deref(),
                file = %log.file,
                asked = %log.asked,
                granted = %log.granted,
                size = log.size,
                bytes = stats.bytes,
                duration_ms,
                rate_kib_s = format_args!("{rate_kib_s:.1}"),
                retransmits = stats.retransmits,
                timeouts = stats.timeouts,
                duplicate_acks = stats.duplicate_acks,
                gaps = stats.gaps,
                outcome = %$outcome,
                "transfer ended"
            )
        };
    }
    match failure {
        None => end!(info, "ok"),
        Some(reason) if reason.is_size_probe() => {
            end!(debug, "size probe (client ended after OACK)")
        }
        Some(reason @ (FailReason::Aborted { .. } | FailReason::Superseded)) => end!(info, reason),
        Some(reason) => end!(warn, reason),
    }
}

/// Reads datagrams from one transfer socket until aborted or the loop is gone.
async fn read_transfer(id: TransferId, socket: Arc<UdpSocket>, out: mpsc::Sender<Inbound>) {
    let mut buf = vec![0u8; TRANSFER_RX_BUF_LEN];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, SocketAddr::V4(src))) => {
                let msg = Inbound {
                    id,
                    src,
                    payload: buf[..len].into(),
                };
                if out.send(msg).await.is_err() {
                    return;
                }
            }
            Ok((_, SocketAddr::V6(_))) => {}
            Err(err) => {
                tracing::debug!(error = %err, "transfer socket receive error");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn bind_transfer_socket(addr: SocketAddrV4, device: Option<&str>) -> io::Result<UdpSocket> {
    let opts = crate::udp::BindOptions {
        device,
        ..Default::default()
    };
    crate::udp::bind(addr, opts).map_err(crate::udp::BindStep::into_error)
}

/// The options a transfer runs with, for logs: acknowledged ones as `name=value`.
fn describe_granted(info: &TransferInfo) -> String {
    let o = &info.options;
    let mut out = String::new();
    let mut push = |name: &str, value: &dyn std::fmt::Display| {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{name}={value}");
    };
    if o.acked.blksize {
        push("blksize", &o.blksize);
    }
    if o.acked.windowsize {
        push("windowsize", &o.windowsize);
    }
    if o.acked.timeout {
        push("timeout", &o.timeout.as_secs());
    }
    if o.acked.tsize
        && let Some(tsize) = o.tsize
    {
        push("tsize", &tsize);
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

/// Sends `tx[..transmit.len]` from `socket`. UDP send errors are logged and otherwise left to
/// the core's retransmission.
async fn send(socket: &UdpSocket, tx: &[u8], transmit: Transmit) {
    let Destination::Unicast(dst) = transmit.dst else {
        tracing::error!(dst = ?transmit.dst, "bug: TFTP asked for a non-unicast destination");
        return;
    };
    let Some(bytes) = tx.get(..transmit.len) else {
        tracing::error!(len = transmit.len, "bug: transmit longer than the buffer");
        return;
    };
    if let Err(err) = socket.send_to(bytes, dst).await {
        tracing::debug!(client = %dst, error = %err, "send failed");
    }
}

/// File name and options of a request, for logs (lossy UTF-8, control characters escaped).
fn describe_request(payload: &[u8]) -> (String, String) {
    match TftpRepr::parse_bytes(payload) {
        Ok(
            TftpRepr::ReadRequest {
                filename, options, ..
            }
            | TftpRepr::WriteRequest {
                filename, options, ..
            },
        ) => {
            let mut asked = String::new();
            for (name, value) in options.iter() {
                if !asked.is_empty() {
                    asked.push(' ');
                }
                let _ = write!(asked, "{}={}", printable(name), printable(value));
            }
            (printable(filename), asked)
        }
        _ => (String::from("?"), String::new()),
    }
}

fn printable(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).escape_debug().to_string()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        rustix::io::Errno::from_io_error(err),
        Some(
            rustix::io::Errno::HOSTUNREACH
                | rustix::io::Errno::NETUNREACH
                | rustix::io::Errno::NOBUFS
        )
    )
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

/// Datagrams queued from transfer sockets to the loop.
const INBOUND_QUEUE: usize = 4096;
/// Listener receive buffer: large enough to see over-long requests whole.
const RX_BUF_LEN: usize = 65_536;
/// Transfer sockets only carry ACKs and ERRORs from clients.
const TRANSFER_RX_BUF_LEN: usize = 4096;
/// Transmit buffer: 4-byte header plus the largest block (RFC 2348: 65464).
const TX_BUF_LEN: usize = 65_536;
