//! File bodies sent with `sendfile(2)` underneath hyper.
//!
//! hyper writes a response body from the `Bytes` frames the body yields and owns the socket,
//! so a body cannot ask for `sendfile` itself. Instead a file body yields *placeholder* frames:
//! slices of `PLACEHOLDER`, a static region no other code points into, each as long as the
//! file span it stands for, and queues that span (file, offset, length) as a [`Job`] on its
//! connection's [`Jobs`]. The connection's socket is a [`SendfileStream`]: when hyper hands it
//! a slice that lies in `PLACEHOLDER`, it sends the front job's bytes with `sendfile` (file
//! to socket inside the kernel) instead of the slice, and reports them written; every other
//! slice (headers, short bodies) it writes as usual. hyper keeps the order of frames and
//! advances its buffers by what the socket reports, so jobs and placeholder slices stay in
//! step; a placeholder without its job is an error (the connection closes), never zeros on the
//! wire.
//!
//! This relies on hyper queueing body frames instead of copying them into its own buffer: the
//! server sets `writev(true)` (hyper's "queue" write strategy), and [`SendfileStream`] reports
//! vectored writes.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes one placeholder frame stands for at most.
pub const FRAME: usize = 4 << 20;

/// Never written to the wire: the address range that marks a frame as a placeholder.
static PLACEHOLDER: [u8; FRAME] = [0; FRAME];

/// A placeholder frame for `len` bytes (at most [`FRAME`]).
pub fn placeholder(len: usize) -> hyper::body::Bytes {
    hyper::body::Bytes::from_static(&PLACEHOLDER[..len.min(FRAME)])
}

/// One file span a placeholder frame stands for.
pub struct Job {
    /// The file, shared with its body (and whatever it reports to when dropped).
    pub file: Arc<dyn AsFile>,
    /// Next byte to send.
    pub offset: u64,
    /// Bytes left.
    pub left: usize,
}

/// What a [`Job`] sends from, and learns how much was sent.
pub trait AsFile: Send + Sync {
    /// The open file.
    fn file(&self) -> &File;
    /// `bytes` more of it reached the socket.
    fn sent(&self, bytes: u64);
}

/// The jobs of one connection, in the order of their placeholder frames.
#[derive(Clone, Default)]
pub struct Jobs(Arc<Mutex<VecDeque<Job>>>);

impl Jobs {
    /// Queues a span; its placeholder frame must be the next one the body yields.
    pub fn push(&self, job: Job) {
        self.lock().push_back(job);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's socket that turns placeholder slices into `sendfile` calls.
pub struct SendfileStream {
    tcp: TcpStream,
    jobs: Jobs,
}

impl SendfileStream {
    /// Wraps `tcp`; placeholders are served from `jobs`.
    pub fn new(tcp: TcpStream, jobs: Jobs) -> Self {
        Self { tcp, jobs }
    }

    /// Sends up to `len` bytes of the front job (its placeholder slice is `len` long).
    fn poll_sendfile(&self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let mut jobs = self.jobs.lock();
            let Some(job) = jobs.front_mut() else {
                return Poll::Ready(Err(io::Error::other(
                    "a placeholder frame without its file span",
                )));
            };
            if len > job.left {
                return Poll::Ready(Err(io::Error::other(
                    "a placeholder frame longer than its file span",
                )));
            }
            let mut offset = job.offset;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.tcp, job.file.file(), Some(&mut offset), len)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while being sent",
                    )));
                }
                Ok(n) => {
                    job.offset += n as u64;
                    job.left -= n;
                    job.file.sent(n as u64);
                    if job.left == 0 {
                        jobs.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

/// Whether `slice` lies in [`PLACEHOLDER`].
fn is_placeholder(slice: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = slice.as_ptr() as usize;
    !slice.is_empty() && at >= start && at < start + FRAME
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if is_placeholder(buf) {
            return this.poll_sendfile(cx, buf.len());
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match bufs.iter().position(|b| is_placeholder(b)) {
            // A placeholder first: its file bytes.
            Some(0) => this.poll_sendfile(cx, bufs[0].len()),
            // Plain slices first: those, up to the placeholder.
            Some(at) => Pin::new(&mut this.tcp).poll_write_vectored(cx, &bufs[..at]),
            None => Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised_and_nothing_else() {
        let frame = placeholder(10);
        assert!(is_placeholder(&frame));
        assert!(is_placeholder(&frame[5..]));
        assert!(is_placeholder(&placeholder(FRAME)[FRAME - 1..]));
        assert_eq!(placeholder(FRAME + 5).len(), FRAME);
        assert!(!is_placeholder(&[0u8; 10]));
        assert!(!is_placeholder(&frame[..0]));
        let copy = frame.to_vec();
        assert!(!is_placeholder(&copy));
    }
}
