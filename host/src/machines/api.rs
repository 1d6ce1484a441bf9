//! The control API (`serve --control ADDR`): machine records, leases and boot events over
//! HTTP/1.1 with JSON.
//!
//! | Request | Answer |
//! | --- | --- |
//! | `GET /v1/machines` | every record in force, with `source` and `installed` |
//! | `GET /v1/machines/MAC` | one record (404 if none) |
//! | `PUT /v1/machines/MAC` | creates (201) or replaces (200) the API record |
//! | `PATCH /v1/machines/MAC` | changes the fields given (`null` clears one; `installed`: true/false) |
//! | `DELETE /v1/machines/MAC` | removes the API record and its installed mark (204) |
//! | `POST /v1/machines/MAC/installed` (or `GET`) | marks the install done |
//! | `DELETE /v1/machines/MAC/installed` | clears the mark: the machine installs again |
//! | `GET /v1/leases` | the leases of every interface in dhcp mode |
//! | `GET /v1/events` | server-sent events: record changes and finished boots with their timelines |
//!
//! A bad body is a 400 whose JSON names the field; a change is written to the state file
//! before the answer, and a failed write changes nothing (500). With a token file, every
//! request needs `Authorization: Bearer TOKEN`; `serve` refuses a non-loopback address
//! without one.

use super::{ChangeError, FieldError, MachineSpec, Machines};
use crate::serve::lease_file::LeaseFile;
use crate::sys::netif::{format_mac, parse_mac};
use crate::sys::shutdown::Shutdown;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Why the control API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The address cannot be listened on.
    #[error("cannot listen for the control API on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: io::Error,
    },
    /// The token file is unusable, or missing where it is required.
    #[error("{0}")]
    Token(String),
}

/// The control API, bound and ready to serve.
#[derive(Debug)]
pub struct ControlServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    machines: Machines,
    token: Option<String>,
    leases: Vec<(String, PathBuf)>,
}

impl ControlServer {
    /// Binds `addr` for `machines`. `token_file` holds the bearer token (required unless
    /// `addr` is a loopback address). `leases` are the lease files, by interface, that
    /// `GET /v1/leases` reads. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ControlError`] naming the address or the file.
    pub fn bind(
        addr: SocketAddr,
        token_file: Option<&std::path::Path>,
        machines: Machines,
        leases: Vec<(String, PathBuf)>,
    ) -> Result<Self, ControlError> {
        let token = match token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ControlError::Token(format!("control token file {}: {e}", path.display()))
                })?;
                let token = text.trim().to_owned();
                if token.len() < 16 || token.contains(char::is_whitespace) {
                    return Err(ControlError::Token(format!(
                        "control token file {}: the token must be one word of at least 16 characters",
                        path.display()
                    )));
                }
                Some(token)
            }
            None if addr.ip().is_loopback() => None,
            None => {
                return Err(ControlError::Token(format!(
                    "control API on {addr} is reachable from the network: give control-token FILE \
                     (a bearer token), or listen on a loopback address such as 127.0.0.1:{}",
                    addr.port()
                )));
            }
        };
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            })
            .map_err(|error| ControlError::Bind { addr, error })?;
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                machines,
                token,
                leases,
            }),
        })
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` fires.
    pub async fn run(self, mut shutdown: Shutdown) {
        tracing::info!(listen = ?self.local_addr().ok(), auth = self.shared.token.is_some(),
            "control API ready: /v1/machines, /v1/leases, /v1/events");
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.requested() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                accepted = self.listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let shared = self.shared.clone();
            let stop = shutdown.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    let stop = stop.clone();
                    async move { Ok::<_, Infallible>(shared.respond(req, stop).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = connection.await;
                drop(slot);
            });
        }
        connections.shutdown().await;
    }
}

impl Shared {
    async fn respond(&self, req: Request<Incoming>, stop: Shutdown) -> Response<ApiBody> {
        if let Some(token) = &self.token {
            let given = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes())) {
                let mut r = error(StatusCode::UNAUTHORIZED, None, "a bearer token is required");
                r.headers_mut()
                    .insert("www-authenticate", HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        let method = req.method().clone();
        let path = req.uri().path().trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        match (method.clone(), segments.as_slice()) {
            (Method::GET, ["v1", "machines"]) => ok(StatusCode::OK, &json!(self.machines.list())),
            (Method::GET, ["v1", "leases"]) => self.leases(),
            (Method::GET, ["v1", "events"]) => self.events(stop),
            (_, ["v1", "machines", mac, rest @ ..]) => {
                let Some(mac) = parse_mac(mac) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        Some("mac"),
                        &format!("'{mac}' is not a MAC address, e.g. 52:54:00:12:34:56"),
                    );
                };
                match rest {
                    [] => self.machine(method, mac, req).await,
                    ["installed"] => self.installed(&method, mac),
                    _ => error(StatusCode::NOT_FOUND, None, "no such resource"),
                }
            }
            (_, ["v1", "machines" | "leases" | "events"]) => error(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "method not allowed here",
            ),
            _ => error(
                StatusCode::NOT_FOUND,
                None,
                "no such resource: see /v1/machines, /v1/leases, /v1/events",
            ),
        }
    }

    async fn machine(
        &self,
        method: Method,
        mac: [u8; 6],
        req: Request<Incoming>,
    ) -> Response<ApiBody> {
        let m = &self.machines;
        match method {
            Method::GET => match m.get(mac) {
                Some(view) => ok(StatusCode::OK, &json!(view)),
                None => not_found(mac),
            },
            Method::PUT => {
                let body = match read_json(req).await {
                    Ok(body) => body,
                    Err(r) => return r,
                };
                let spec = match MachineSpec::from_json(Some(mac), &body) {
                    Ok(spec) => spec,
                    Err(e) => return field_error(&e),
                };
                match m.put(spec) {
                    Ok(created) => {
                        let status = if created {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        };
                        ok(status, &json!(m.get(mac)))
                    }
                    Err(e) => change_error(&e),
                }
            }
            Method::PATCH => {
                let body = match read_json(req).await {
                    Ok(body) => body,
                    Err(r) => return r,
                };
                match m.patch(mac, &body) {
                    Ok(view) => ok(StatusCode::OK, &json!(view)),
                    Err(e) => change_error(&e),
                }
            }
            Method::DELETE => match m.delete(mac) {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => change_error(&e),
            },
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "GET, PUT, PATCH or DELETE",
            ),
        }
    }

    fn installed(&self, method: &Method, mac: [u8; 6]) -> Response<ApiBody> {
        let m = &self.machines;
        let result = match *method {
            Method::GET | Method::POST | Method::PUT => m.mark_installed(mac).map(|_| ()),
            Method::DELETE => m.patch(mac, &json!({"installed": false})).map(|_| ()),
            _ => return error(StatusCode::METHOD_NOT_ALLOWED, None, "POST, GET or DELETE"),
        };
        match result {
            Ok(()) => ok(StatusCode::OK, &json!(m.get(mac))),
            Err(e) => change_error(&e),
        }
    }

    fn leases(&self) -> Response<ApiBody> {
        let mut all = Vec::new();
        for (iface, path) in &self.leases {
            match LeaseFile::new(path.clone()).load() {
                Ok(leases) => all.extend(leases.into_iter().map(|l| {
                    json!({
                        "interface": iface,
                        "mac": format_mac(&l.mac),
                        "ip": l.ip,
                        "expires": l.expires_unix,
                    })
                })),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()),
            }
        }
        ok(StatusCode::OK, &Value::Array(all))
    }

    fn events(&self, stop: Shutdown) -> Response<ApiBody> {
        let mut events = self.machines.subscribe();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let mut stop = stop;
            // A comment first: the client sees the stream open at once.
            if tx
                .send(Bytes::from_static(b": pocketpxe events\n\n"))
                .await
                .is_err()
            {
                return;
            }
            loop {
                let event = tokio::select! {
                    () = stop.requested() => return,
                    () = tx.closed() => return,
                    event = events.recv() => event,
                };
                let text = match event {
                    Ok(text) => text,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        Arc::from(json!({"type": "lagged", "missed": n}).to_string())
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let kind = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| "event".to_owned());
                let frame = format!("event: {kind}\ndata: {text}\n\n");
                if tx.send(Bytes::from(frame)).await.is_err() {
                    return;
                }
            }
        });
        let mut r = Response::new(ApiBody::Stream(rx));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }
}

/// A response body: JSON at once, or an event stream.
#[derive(Debug)]
pub enum ApiBody {
    /// The whole body.
    Full(Full<Bytes>),
    /// Server-sent events as they come.
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(full) => Pin::new(full).poll_frame(cx),
            Self::Stream(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(full) => full.is_end_stream(),
            Self::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            // Exact: hyper sends a Content-Length.
            Self::Full(full) => full.size_hint(),
            Self::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

async fn read_json(req: Request<Incoming>) -> Result<Value, Response<ApiBody>> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("body"),
                "at most 64 KiB of JSON",
            )
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("body"),
            &format!("not JSON: {e}"),
        )
    })
}

fn ok(status: StatusCode, value: &Value) -> Response<ApiBody> {
    let mut text = value.to_string();
    text.push('\n');
    let mut r = Response::new(ApiBody::Full(Full::new(Bytes::from(text))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn empty(status: StatusCode) -> Response<ApiBody> {
    let mut r = Response::new(ApiBody::Full(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r
}

fn error(status: StatusCode, field: Option<&str>, message: &str) -> Response<ApiBody> {
    let mut body = json!({"error": message});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    ok(status, &body)
}

fn field_error(e: &FieldError) -> Response<ApiBody> {
    error(StatusCode::BAD_REQUEST, Some(&e.field), &e.to_string())
}

fn not_found(mac: [u8; 6]) -> Response<ApiBody> {
    error(
        StatusCode::NOT_FOUND,
        None,
        &format!("no machine {}", format_mac(&mac)),
    )
}

fn change_error(e: &ChangeError) -> Response<ApiBody> {
    match e {
        ChangeError::Field(f) => field_error(f),
        ChangeError::NotFound(_) => error(StatusCode::NOT_FOUND, None, &e.to_string()),
        ChangeError::ConfigOnly(_) => error(StatusCode::CONFLICT, None, &e.to_string()),
        ChangeError::State(_) => {
            tracing::error!(error = %e, "control API: change not saved");
            error(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// Time for a client to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body.
const MAX_BODY: usize = 64 << 10;
