//! The HTTP endpoint of `--metrics`: `GET /metrics` answers the scrape (HTTP/1.1, hyper).
//!
//! Bounded like every other input of the daemon: at most [`MAX_CONNECTIONS`] connections at
//! once (more are closed at once), each given [`HEADER_TIMEOUT`] to send its request head and
//! [`CONNECTION_LIMIT`] in all.

use super::Metrics;
use crate::sys::shutdown::Shutdown;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Why the metrics endpoint cannot listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for metrics on {addr}: {error}{hint}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The OS error (part of the message, so not a `source()`).
    pub error: io::Error,
    /// Advice on the usual causes, may be empty.
    pub hint: &'static str,
}

/// The metrics endpoint, bound and ready to serve.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    metrics: Metrics,
}

impl MetricsServer {
    /// Binds `addr` (TCP) for `metrics`; call it before dropping root, since `addr` may name a
    /// port below 1024. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`MetricsError`] naming the address.
    pub fn bind(addr: SocketAddr, metrics: Metrics) -> Result<Self, MetricsError> {
        let error = |error: io::Error| {
            let hint = match error.kind() {
                io::ErrorKind::AddrInUse => " (another program listens there)",
                io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
                    " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                }
                io::ErrorKind::AddrNotAvailable => " (no local interface has this address)",
                _ => "",
            };
            MetricsError { addr, error, hint }
        };
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|listener| {
                listener.set_nonblocking(true)?;
                TcpListener::from_std(listener)
            })
            .map_err(error)?;
        Ok(Self { listener, metrics })
    }

    /// The address it listens on (useful with port 0).
    ///
    /// # Errors
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics it serves.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves scrapes until `shutdown` fires.
    pub async fn run(self, mut shutdown: Shutdown) {
        let addr = self.local_addr().ok();
        tracing::info!(listen = ?addr, "metrics endpoint ready: /metrics");
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                () = shutdown.requested() => return,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of descriptors, or a connection reset before it was taken: try
                    // again a little later rather than spin.
                    tracing::debug!(error = %err, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!("metrics: too many connections, one closed");
                continue;
            };
            let metrics = self.metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIMIT, connection).await;
                drop(slot);
            });
        }
    }
}

/// `GET /metrics`: the scrape; `GET /`: where to look; anything else: 404 or 405.
fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            (StatusCode::OK, OPENMETRICS, metrics.encode())
        }
        (&Method::GET | &Method::HEAD, "/") => (
            StatusCode::OK,
            PLAIN,
            "pocketpxe: metrics at /metrics\n".to_owned(),
        ),
        (_, "/metrics" | "/") => (
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "only GET and HEAD\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: try /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";
/// Scrapes served at once; Prometheus needs one.
const MAX_CONNECTIONS: usize = 16;
/// Time for a client to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time one connection may stay open, keep-alive included.
const CONNECTION_LIMIT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    async fn get(addr: SocketAddr, request: &str) -> String {
        let request = request.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_scrape_and_refuses_the_rest() {
        let metrics = Metrics::new();
        metrics.boot_completed("bios", 5.0);
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), metrics).unwrap();
        let addr = server.local_addr().unwrap();
        let (trigger, shutdown) = crate::sys::shutdown::channel();
        let task = tokio::spawn(server.run(shutdown));
        let close = "Host: t\r\nConnection: close\r\n\r\n";
        let answer = get(addr, &format!("GET /metrics HTTP/1.1\r\n{close}")).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{answer}"
        );
        assert!(
            answer.contains("pocketpxe_boot_duration_seconds_count{class=\"bios\"} 1\n"),
            "{answer}"
        );
        assert!(answer.ends_with("# EOF\n"), "{answer}");
        let answer = get(addr, &format!("GET /other HTTP/1.1\r\n{close}")).await;
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
        let answer = get(
            addr,
            &format!("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n{close}"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(answer.contains("allow: GET, HEAD"), "{answer}");
        // A second listener on the same address: one line naming it.
        let err = MetricsServer::bind(addr, Metrics::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot listen for metrics on {addr}: "))
                && err.contains("another program listens there")
                && !err.contains('\n'),
            "{err}"
        );
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stops on shutdown")
            .unwrap();
    }
}
