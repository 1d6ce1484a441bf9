//! The HTTP task: the boot root served read-only over HTTP/1.1 with hyper.
//!
//! GET and HEAD of regular files under the root, with `Content-Length`, a `Content-Type` by
//! extension, `Last-Modified` and `If-Modified-Since` (304), one byte range per request
//! (`Accept-Ranges: bytes`; 206, or 416 with `Content-Range: bytes */LEN`) and keep-alive.
//! Nothing else: no directory listing, no index file, no other method (405), and error bodies
//! that are the status line's words, never a path or an OS error.
//!
//! Confinement is the TFTP root's: the request path is percent-decoded and checked once
//! ([`request::decode_path`]: no `.`/`..` segment, encoded `/`, `\`, NUL, non-UTF-8 or overlong
//! name, each a 400), and the file is then opened through [`FsStore::open_detached`], where
//! `openat2(RESOLVE_BENEATH)` refuses any path or symlink that would leave the root (403).
//!
//! File bodies go from the page cache to the socket with `sendfile(2)`, underneath hyper (see
//! [`zero_copy`]): no byte of a file passes through this process's memory.
//!
//! Each response to a file ends in one log line like a TFTP transfer's (client, MAC if DHCP
//! knows it, file, status, bytes, duration, rate); refusals are logged as TFTP's are. With a
//! [`BootWatch`], whole-file GETs and missing files feed the boot timeline as TFTP transfers
//! do. On shutdown the listener closes, idle connections close, and responses under way may
//! finish until the grace period ends; then their connections are dropped.

pub mod request;
pub mod zero_copy;

use crate::fs_store::{FsStore, RootError};
use crate::machines::Machines;
use crate::serve::dhcp::ClientBook;
use crate::serve::timeline::BootWatch;
use crate::sys::shutdown::Shutdown;
use crate::sys::udp::BindStep;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use pocketpxe_core::{OpenError, SafePath};
use request::Span;
use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use zero_copy::{AsFile, Job, Jobs, SendfileStream};

/// Why the HTTP task could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpTaskError {
    /// The root directory is unusable.
    #[error(transparent)]
    Root(#[from] RootError),
    /// The listener could not be set up.
    #[error("cannot listen for HTTP on {addr}: {detail}")]
    Bind {
        /// The address asked for.
        addr: SocketAddrV4,
        /// The OS error and advice.
        detail: String,
    },
    /// The listener failed while running.
    #[error("HTTP listener {addr}: {error}")]
    Listener {
        /// The listener's address.
        addr: SocketAddr,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
}

/// An HTTP server ready to run: root opened, listener bound.
#[derive(Debug)]
pub struct HttpService {
    store: FsStore,
    listener: std::net::TcpListener,
    local: SocketAddr,
    clients: Option<ClientBook>,
    watch: Option<BootWatch>,
    grace: Duration,
    machines: Option<Machines>,
}

impl HttpService {
    /// Opens `root` and listens on `listen` (any interface), so that configuration errors
    /// surface before anything runs.
    ///
    /// # Errors
    /// [`HttpTaskError::Root`] or [`HttpTaskError::Bind`], naming the path or address (and,
    /// for a taken port, who holds it).
    pub fn bind(root: &Path, listen: SocketAddrV4) -> Result<Self, HttpTaskError> {
        let store = FsStore::open_root(root)?;
        let listener =
            crate::sys::tcp::listen(listen, None).map_err(|step| bind_error(listen, step))?;
        Self::with_parts(store, listener)
    }

    /// Builds a service from an opened store and a listener the caller bound itself (for
    /// example with `crate::sys::tcp::listen` on one interface).
    ///
    /// # Errors
    /// [`HttpTaskError::Listener`] if the listener's address cannot be read.
    pub fn with_parts(
        store: FsStore,
        listener: std::net::TcpListener,
    ) -> Result<Self, HttpTaskError> {
        let local = listener
            .local_addr()
            .map_err(|error| HttpTaskError::Listener {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                error,
            })?;
        Ok(Self {
            store,
            listener,
            local,
            clients: None,
            watch: None,
            grace: Duration::from_secs(5),
            machines: None,
        })
    }

    /// Serves the machines' generated iPXE scripts and their install-done callback under
    /// `/pocketpxe/machines/MAC/` (see [`crate::machines`]).
    pub fn with_machines(mut self, machines: Machines) -> Self {
        self.machines = Some(machines);
        self
    }

    /// Names clients in logs by the MAC address `book` holds for their IP.
    pub fn with_client_book(mut self, book: ClientBook) -> Self {
        self.clients = Some(book);
        self
    }

    /// Feeds whole-file downloads and missing files to the boot timeline `watch`.
    pub fn with_boot_watch(mut self, watch: BootWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// How long responses under way may go on after shutdown was requested (default 5 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The listener's address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The file store it serves from.
    pub fn store(&self) -> &FsStore {
        &self.store
    }

    /// Serves until `shutdown` fires and the responses under way are done (or the grace
    /// period is over). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`HttpTaskError::Listener`] if the listener fails for good.
    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), HttpTaskError> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let Self {
            store,
            listener,
            local,
            clients,
            watch,
            grace,
            machines,
        } = self;
        let listener_error = |error| HttpTaskError::Listener { addr: local, error };
        let listener = tokio::net::TcpListener::from_std(listener).map_err(listener_error)?;
        tracing::info!(listen = %local, root = %store.root().display(), "HTTP server ready");
        let files = Arc::new(Files {
            store,
            clients,
            watch,
            machines,
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .keep_alive(true)
            // Body frames are queued, never copied: `zero_copy` depends on it.
            .writev(true)
            .header_read_timeout(HEADER_TIMEOUT);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        let result = loop {
            tokio::select! {
                () = shutdown.requested() => break Ok(()),
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(err) if accept_transient(&err) => {
                            tracing::warn!(error = %err, "cannot accept an HTTP connection");
                            // Out of descriptors: give running responses time to end.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                        Err(err) => break Err(listener_error(err)),
                    };
                    let _ = stream.set_nodelay(true);
                    let peer = match peer {
                        SocketAddr::V4(peer) => peer,
                        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
                            Some(ip) => SocketAddrV4::new(ip, v6.port()),
                            None => continue,
                        },
                    };
                    let files = files.clone();
                    let jobs = Jobs::default();
                    let stream = SendfileStream::new(stream, jobs.clone());
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let response = files.respond(&req, peer, &jobs);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let connection =
                        graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    connections.spawn(async move {
                        if let Err(err) = connection.await {
                            tracing::debug!(client = %peer, error = %err, "HTTP connection ended");
                        }
                    });
                }
            }
        };
        drop(listener);
        let open = connections.len();
        if open > 0 {
            tracing::info!(
                connections = open,
                grace_secs = grace.as_secs_f32(),
                "HTTP listener closed: letting responses under way finish"
            );
        }
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                connections = connections.len(),
                "grace period over: closing unfinished HTTP connections"
            );
        }
        connections.shutdown().await;
        tracing::info!("HTTP server stopped");
        result
    }
}

/// What every connection shares: the store and where to report.
struct Files {
    store: FsStore,
    clients: Option<ClientBook>,
    watch: Option<BootWatch>,
    machines: Option<Machines>,
}

impl Files {
    fn respond(&self, req: &Request<Incoming>, peer: SocketAddrV4, jobs: &Jobs) -> Response<Body> {
        let started = Instant::now();
        let raw = req.uri().path();
        let refuse = |status: StatusCode, why: &dyn std::fmt::Display| {
            tracing::info!(client = %peer, mac = self.mac_of(peer).as_deref(),
                method = %req.method(), path = %printable(raw), status = status.as_u16(),
                reason = %why, "HTTP request refused");
            text(status)
        };
        if let Some(machines) = &self.machines
            && let Some((mac, what)) = crate::machines::parse_http_path(raw)
        {
            return self.machine(req.method(), peer, machines, mac, what);
        }
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut response = refuse(StatusCode::METHOD_NOT_ALLOWED, &"not GET or HEAD");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return response;
            }
        };
        let name = match request::decode_path(raw) {
            Ok(Some(name)) => name,
            Ok(None) => return refuse(StatusCode::NOT_FOUND, &"the root (no listing)"),
            Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
        };
        let safe = match SafePath::parse(name.as_bytes()) {
            Ok(safe) => safe,
            Err(why) => {
                return refuse(StatusCode::BAD_REQUEST, &why);
            }
        };
        let (file, meta) = match self.store.open_detached(safe) {
            Ok(opened) => opened,
            Err(err) => {
                let (status, reason) = match err {
                    OpenError::NotFound => (
                        StatusCode::NOT_FOUND,
                        pocketpxe_core::tftp::RejectReason::NotFound,
                    ),
                    OpenError::Denied => (
                        StatusCode::FORBIDDEN,
                        pocketpxe_core::tftp::RejectReason::Denied,
                    ),
                    OpenError::Io(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        pocketpxe_core::tftp::RejectReason::Io,
                    ),
                };
                if let Some(watch) = &self.watch {
                    watch.file_refused(peer, &name, reason);
                }
                return refuse(status, &reason);
            }
        };
        let len = meta.len();
        let modified = meta.modified().ok();
        let last_modified = modified.map(httpdate::fmt_http_date);
        let headers = req.headers();
        if let (Some(modified), Some(since)) = (modified, headers.get(header::IF_MODIFIED_SINCE))
            && request::not_modified_since(modified, since.as_bytes())
        {
            let mut response = empty(StatusCode::NOT_MODIFIED);
            set_file_headers(&mut response, &name, last_modified.as_deref());
            self.log_short(peer, req.method(), &name, StatusCode::NOT_MODIFIED, started);
            return response;
        }
        let range_allowed = match (headers.get(header::IF_RANGE), &last_modified) {
            (None, _) => true,
            (Some(value), Some(lm)) => request::if_range_matches(value.as_bytes(), lm),
            (Some(_), None) => false,
        };
        let span = match headers.get(header::RANGE) {
            Some(value) if range_allowed => request::parse_range(value.as_bytes(), len),
            _ => Span::Full,
        };
        let (status, start, end) = match span {
            Span::Full => (StatusCode::OK, 0, len),
            Span::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
            Span::Unsatisfiable => {
                let mut response = text(StatusCode::RANGE_NOT_SATISFIABLE);
                response.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{len}")),
                );
                set_file_headers(&mut response, &name, last_modified.as_deref());
                self.log_short(peer, req.method(), &name, response.status(), started);
                return response;
            }
        };
        let body = if head {
            self.log_short(peer, req.method(), &name, status, started);
            Body::empty()
        } else {
            let whole = status == StatusCode::OK;
            let watch = self.watch.clone().filter(|_| whole);
            if let Some(watch) = &watch {
                watch.file_request(peer, &name, Some(len));
            }
            let transfer = Transfer {
                file,
                sent: AtomicU64::new(0),
                wanted: end - start,
                log: SentLog {
                    peer,
                    mac: self.mac_of(peer),
                    file: name.clone(),
                    status,
                    size: len,
                    start,
                    started,
                    watch,
                },
            };
            Body::file(Arc::new(transfer), start, end, jobs.clone())
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
        if status == StatusCode::PARTIAL_CONTENT {
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{}/{len}", end - 1)),
            );
        }
        set_file_headers(&mut response, &name, last_modified.as_deref());
        response
    }

    /// `/pocketpxe/machines/MAC/boot.ipxe` (the generated script) and
    /// `/pocketpxe/machines/MAC/installed` (the install-done callback, GET or POST: busybox
    /// and Debian's `wget` send either). The callback is refused from an address DHCP gave
    /// another machine.
    fn machine(
        &self,
        method: &Method,
        peer: SocketAddrV4,
        machines: &Machines,
        mac: [u8; 6],
        what: &str,
    ) -> Response<Body> {
        let mac_text = crate::sys::netif::format_mac(&mac);
        let (status, body) = match (what, method) {
            ("boot.ipxe", &Method::GET | &Method::HEAD) => match machines.script(mac) {
                Some(script) => (StatusCode::OK, script),
                None => (
                    StatusCode::NOT_FOUND,
                    "no script for this machine\n".to_owned(),
                ),
            },
            ("installed", &Method::GET | &Method::POST) => {
                let holder = self.clients.as_ref().and_then(|b| b.mac_bytes(*peer.ip()));
                match holder {
                    Some(other) if other != mac => (
                        StatusCode::FORBIDDEN,
                        "this address belongs to another machine\n".to_owned(),
                    ),
                    _ => match machines.mark_installed(mac) {
                        Ok(_) => (StatusCode::OK, "ok\n".to_owned()),
                        Err(crate::machines::ChangeError::NotFound(_)) => (
                            StatusCode::NOT_FOUND,
                            "no record of this machine\n".to_owned(),
                        ),
                        Err(e) => {
                            tracing::error!(mac = %mac_text, error = %e, "install-done mark not saved");
                            (StatusCode::INTERNAL_SERVER_ERROR, "not saved\n".to_owned())
                        }
                    },
                }
            }
            ("boot.ipxe" | "installed", _) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".to_owned(),
            ),
            _ => (StatusCode::NOT_FOUND, "Not Found\n".to_owned()),
        };
        tracing::info!(client = %peer, mac = %mac_text, method = %method, what,
            status = status.as_u16(), "HTTP machine request");
        let len = body.len();
        // The script is part of the machine's boot: on its timeline like a file.
        if let (Some(watch), StatusCode::OK, &Method::GET, "boot.ipxe") =
            (&self.watch, status, method, what)
        {
            let name = format!(
                "{}{}/boot.ipxe",
                crate::machines::HTTP_PREFIX,
                crate::machines::url_mac(&mac)
            );
            watch.file_request(peer, &name, Some(len as u64));
            watch.file_end(
                peer,
                &name,
                pocketpxe_core::timeline::TransferEnd {
                    outcome: pocketpxe_core::tftp::Outcome::Done,
                    bytes: len as u64,
                    duration: Duration::ZERO,
                    blksize: TIMELINE_BLKSIZE,
                },
            );
        }
        let mut response = Response::new(Body {
            kind: Kind::Text((method != Method::HEAD).then(|| Bytes::from(body))),
        });
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    fn mac_of(&self, peer: SocketAddrV4) -> Option<String> {
        self.clients.as_ref()?.mac_of(*peer.ip())
    }

    /// A response without a file body (HEAD, 304, 416): logged at once, at debug level.
    fn log_short(
        &self,
        peer: SocketAddrV4,
        method: &Method,
        file: &str,
        status: StatusCode,
        started: Instant,
    ) {
        tracing::debug!(client = %peer, mac = self.mac_of(peer).as_deref(), method = %method,
            file, status = status.as_u16(), duration_us = started.elapsed().as_micros() as u64,
            "HTTP response");
    }
}

/// The body of a response: empty, a short text, or a span of a file.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Text(Option<Bytes>),
    File(FileBody),
}

struct FileBody {
    transfer: Arc<Transfer>,
    /// Next byte to queue, and the end (exclusive).
    pos: u64,
    end: u64,
    jobs: Jobs,
}

/// One file response: its file, how much of it reached the socket, and what to log when the
/// body and every queued span are gone (all sent, or the connection closed).
struct Transfer {
    file: File,
    sent: AtomicU64,
    wanted: u64,
    log: SentLog,
}

/// What the end-of-response log line and the timeline need.
struct SentLog {
    peer: SocketAddrV4,
    mac: Option<String>,
    file: String,
    status: StatusCode,
    size: u64,
    start: u64,
    started: Instant,
    /// Set for whole-file GETs with a boot timeline.
    watch: Option<BootWatch>,
}

impl Body {
    fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    fn file(transfer: Arc<Transfer>, start: u64, end: u64, jobs: Jobs) -> Self {
        Self {
            kind: Kind::File(FileBody {
                transfer,
                pos: start,
                end,
                jobs,
            }),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            Kind::File(body) => Poll::Ready(body.next_frame().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Text(text) => text.is_none(),
            Kind::File(body) => body.pos >= body.end,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Text(text) => SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64)),
            Kind::File(body) => SizeHint::with_exact(body.end - body.pos),
        }
    }
}

impl FileBody {
    /// The placeholder frame for the next span, queued for `sendfile`; `None` at the end.
    fn next_frame(&mut self) -> Option<Bytes> {
        let left = self.end.checked_sub(self.pos).filter(|&n| n > 0)?;
        let len = usize::try_from(left).map_or(zero_copy::FRAME, |n| n.min(zero_copy::FRAME));
        self.jobs.push(Job {
            file: self.transfer.clone(),
            offset: self.pos,
            left: len,
        });
        self.pos += len as u64;
        Some(zero_copy::placeholder(len))
    }
}

impl AsFile for Transfer {
    fn file(&self) -> &File {
        &self.file
    }

    fn sent(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Drop for Transfer {
    /// Once every byte is sent or the connection is gone: one log line either way.
    fn drop(&mut self) {
        let log = &self.log;
        let bytes = self.sent.load(Ordering::Relaxed);
        let done = bytes >= self.wanted;
        let elapsed = log.started.elapsed();
        let secs = elapsed.as_secs_f64();
        let rate_kib_s = if secs > 0.0 {
            bytes as f64 / 1024.0 / secs
        } else {
            0.0
        };
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        macro_rules! end {
            ($level:ident, $outcome:expr) => {
                tracing::$level!(client = %log.peer, mac = log.mac.as_deref(), file = %log.file,
                    status = log.status.as_u16(), size = log.size, offset = log.start, bytes,
                    duration_ms, rate_kib_s = format_args!("{rate_kib_s:.1}"),
                    outcome = $outcome, "HTTP transfer ended")
            };
        }
        if done {
            end!(info, "done");
        } else {
            end!(warn, "connection closed before the end");
        }
        if let Some(watch) = &log.watch {
            use pocketpxe_core::tftp::{FailReason, Outcome};
            let outcome = if done {
                Outcome::Done
            } else {
                Outcome::Failed(FailReason::Aborted {
                    code: pocketpxe_core::wire::tftp::ErrorCode::Undefined,
                    during_negotiation: false,
                })
            };
            watch.file_end(
                log.peer,
                &log.file,
                pocketpxe_core::timeline::TransferEnd {
                    outcome,
                    bytes,
                    duration: elapsed,
                    blksize: TIMELINE_BLKSIZE,
                },
            );
        }
    }
}

/// A response whose body is its status line's words: nothing about the request.
fn text(status: StatusCode) -> Response<Body> {
    let words = format!("{}\n", status.canonical_reason().unwrap_or("Error"));
    let mut response = Response::new(Body {
        kind: Kind::Text(Some(Bytes::from(words))),
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// `Content-Type`, `Last-Modified` and `Accept-Ranges` of a file response.
fn set_file_headers(response: &mut Response<Body>, name: &str, last_modified: Option<&str>) {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(request::content_type(name)),
        );
    }
    if let Some(lm) = last_modified {
        headers.insert(header::LAST_MODIFIED, header_value(lm));
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

/// A header value from text this module formats (ASCII digits, dates).
fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The request path for a log line: at most 200 characters, control characters escaped.
fn printable(raw: &str) -> String {
    raw.chars().take(200).flat_map(char::escape_debug).collect()
}

/// Whether an `accept(2)` error is passing: out of descriptors or memory, or a connection
/// that went away before it was accepted.
fn accept_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        rustix::io::Errno::from_io_error(err),
        Some(
            rustix::io::Errno::MFILE
                | rustix::io::Errno::NFILE
                | rustix::io::Errno::NOBUFS
                | rustix::io::Errno::NOMEM
                | rustix::io::Errno::PROTO
                | rustix::io::Errno::PERM
        )
    )
}

fn bind_error(addr: SocketAddrV4, step: BindStep) -> HttpTaskError {
    let detail = match &step {
        BindStep::Bind(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let owner = crate::sys::tcp::port_owner(addr.port())
                .map(|o| format!(" by {o}"))
                .unwrap_or_default();
            format!("port {} is already in use{owner}", addr.port())
        }
        BindStep::Bind(e) if e.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 => {
            format!("{e} (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
        }
        BindStep::Bind(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            format!("{e} (no local interface has this address)")
        }
        other => other.error().to_string(),
    };
    HttpTaskError::Bind { addr, detail }
}

/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The "block size" an HTTP download reports to the boot timeline (which counts TFTP blocks):
/// a TCP segment's payload on Ethernet.
const TIMELINE_BLKSIZE: u16 = 1460;
