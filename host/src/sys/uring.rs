//! io_uring for the TFTP transfer sockets (Linux 6.0 or later): one ring per TFTP loop.
//!
//! - every transfer socket has one multishot `IORING_OP_RECVMSG` armed, which takes its
//!   buffers from a provided-buffer ring shared by all sockets, so an ACK costs no system call;
//! - sends are `IORING_OP_SENDMSG` entries (a window of equal-sized DATA blocks as one UDP GSO
//!   message), copied into storage the ring owns until their completion arrives, and submitted
//!   together with [`Uring::submit`], once per turn of the loop;
//! - completions are read from shared memory by [`Uring::drain`]; the ring's descriptor becomes
//!   readable when completions are waiting, so the caller waits for it with its reactor.
//!
//! [`Uring::new`] fails when the kernel refuses io_uring (`kernel.io_uring_disabled`, a seccomp
//! profile answering `EPERM` or `ENOSYS`, a kernel without provided-buffer rings); the caller
//! then keeps its readiness (epoll) path.
//!
//! The `unsafe` here is kept to the places where the kernel reads or writes memory owned by
//! this module; the rest of the daemon uses only the safe API.

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// Provided receive buffers (a power of two, at most 32 768).
const RECV_BUFFERS: u16 = 1024;
/// Bytes of datagram kept per receive (longer ones arrive cut, as with `recvmmsg`).
pub const RECV_PAYLOAD: usize = 2048;
/// Each receive buffer: the kernel's `io_uring_recvmsg_out` header (four u32), the source
/// address, then the payload.
const RECV_BUF_LEN: usize = 16 + size_of::<libc::sockaddr_in>() + RECV_PAYLOAD;
/// The buffer group id of the provided receive buffers.
const BUF_GROUP: u16 = 0;
/// Submission queue entries; completions get four times as many.
const SQ_ENTRIES: u32 = 1024;
/// Sends in flight at most (each holds a copy of its datagrams until its completion).
const SENDS_MAX: usize = 8192;

/// What `user_data` of an entry says: the top two bits give the kind.
const KIND_SHIFT: u32 = 62;
const KIND_RECV: u64 = 0;
const KIND_SEND: u64 = 1;
const KIND_CANCEL: u64 = 2;
const VALUE_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// One ring with its provided receive buffers and its send storage.
pub struct Uring {
    ring: IoUring,
    bufs: BufRing,
    /// The `msghdr` every multishot receive was armed with (the kernel reads its name and
    /// control lengths); boxed so its address stays fixed.
    recv_msg: Box<libc::msghdr>,
    /// Boxed: the kernel holds pointers into a slot until its completion, so a slot must not
    /// move when the vector grows.
    #[allow(clippy::vec_box)]
    sends: Vec<Box<SendSlot>>,
    free_sends: Vec<usize>,
    /// Entries pushed since the last submit.
    unsubmitted: usize,
}

/// What [`Uring::drain`] found, copied out so that the buffers go back to the kernel at once.
#[derive(Default)]
pub struct Inbox {
    data: Vec<u8>,
    received: Vec<(u64, Option<SocketAddrV4>, usize, usize)>,
    /// Tokens whose multishot receive stopped and must be armed again.
    pub rearm: Vec<u64>,
    /// Tokens whose receive failed for good, with the error.
    pub recv_failed: Vec<(u64, io::Error)>,
    /// Failed sends: the token, whether it was a GSO send, and the error.
    pub send_failed: Vec<(u64, bool, io::Error)>,
}

impl Inbox {
    /// Datagrams received: the socket's token, the IPv4 source (`None` for another family) and
    /// the bytes (cut at [`RECV_PAYLOAD`]), in the order they completed.
    pub fn received(&self) -> impl Iterator<Item = (u64, Option<SocketAddrV4>, &[u8])> {
        self.received
            .iter()
            .map(|&(token, src, start, len)| (token, src, &self.data[start..start + len]))
    }

    fn clear(&mut self) {
        self.data.clear();
        self.received.clear();
        self.rearm.clear();
        self.recv_failed.clear();
        self.send_failed.clear();
    }
}

impl Uring {
    /// Sets up a ring and registers its provided receive buffers.
    ///
    /// # Errors
    /// The kernel's refusal: `EPERM` (`kernel.io_uring_disabled`, a seccomp profile), `ENOSYS`
    /// (no io_uring), `EINVAL` (an older kernel), `ENOMEM` (locked-memory limit).
    pub fn new() -> io::Result<Self> {
        if forced_off() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "disabled by POCKETPXE_IO_URING=off",
            ));
        }
        let ring = IoUring::builder()
            .setup_cqsize(SQ_ENTRIES * 4)
            .build(SQ_ENTRIES)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for code in [
            opcode::RecvMsgMulti::CODE,
            opcode::SendMsg::CODE,
            opcode::AsyncCancel::CODE,
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_uring opcode {code} not supported"),
                ));
            }
        }
        let bufs = BufRing::new(&ring)?;
        // SAFETY: all-zero is a valid msghdr.
        let mut recv_msg: Box<libc::msghdr> = Box::new(unsafe { zeroed() });
        recv_msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        Ok(Self {
            ring,
            bufs,
            recv_msg,
            sends: Vec::new(),
            free_sends: Vec::new(),
            unsubmitted: 0,
        })
    }

    /// Arms a multishot receive on `socket`; its datagrams come out of [`Uring::drain`] under
    /// `token` (below 2^62). It stays armed until [`Uring::cancel`], also after the caller
    /// closes its descriptor.
    ///
    /// # Errors
    /// The kernel's error if the submission queue was full and could not be submitted.
    pub fn arm_recv(&mut self, socket: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let entry = opcode::RecvMsgMulti::new(
            types::Fd(socket.as_raw_fd()),
            &raw const *self.recv_msg,
            BUF_GROUP,
        )
        .build()
        .user_data(KIND_RECV << KIND_SHIFT | token & VALUE_MASK);
        self.push(&entry)
    }

    /// Stops the receive armed under `token`. Call [`Uring::submit`] before closing the
    /// socket's descriptor if other entries for it are pending.
    ///
    /// # Errors
    /// As [`Uring::arm_recv`].
    pub fn cancel(&mut self, token: u64) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(KIND_RECV << KIND_SHIFT | token & VALUE_MASK)
            .build()
            .user_data(KIND_CANCEL << KIND_SHIFT);
        self.push(&entry)
    }

    /// Queues `bytes` to be sent from `socket` to `dst`: as one datagram, or with `segment`
    /// as UDP GSO datagrams of that size (the last may be shorter). The bytes are copied; a
    /// failure comes back from [`Uring::drain`] under `token`.
    ///
    /// # Errors
    /// `WouldBlock` when `SENDS_MAX` sends are in flight; the kernel's error if the
    /// submission queue was full and could not be submitted.
    pub fn send(
        &mut self,
        socket: BorrowedFd<'_>,
        dst: SocketAddrV4,
        bytes: &[u8],
        segment: Option<u16>,
        token: u64,
    ) -> io::Result<()> {
        let index = match self.free_sends.pop() {
            Some(index) => index,
            None if self.sends.len() < SENDS_MAX => {
                self.sends.push(SendSlot::new());
                self.sends.len() - 1
            }
            None => return Err(io::ErrorKind::WouldBlock.into()),
        };
        let slot = &mut self.sends[index];
        slot.fill(dst, bytes, segment, token);
        let entry = opcode::SendMsg::new(types::Fd(socket.as_raw_fd()), &raw const slot.msg)
            .build()
            .user_data(KIND_SEND << KIND_SHIFT | index as u64);
        let pushed = self.push(&entry);
        if pushed.is_err() {
            self.free_sends.push(index);
        }
        pushed
    }

    /// Hands every queued entry to the kernel (one `io_uring_enter`; none if nothing is queued).
    ///
    /// # Errors
    /// The kernel's error (`EBUSY`/`EAGAIN`: completions must be drained first).
    pub fn submit(&mut self) -> io::Result<()> {
        if self.unsubmitted == 0 {
            return Ok(());
        }
        match self.ring.submit() {
            Ok(n) => {
                self.unsubmitted = self.unsubmitted.saturating_sub(n);
                Ok(())
            }
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Registers the ring's descriptor with tokio's reactor, which then reports it readable
    /// when completions are waiting.
    ///
    /// # Errors
    /// The reactor's error.
    pub fn into_async(self) -> io::Result<tokio::io::unix::AsyncFd<Self>> {
        // SAFETY: `Uring` owns the ring's descriptor, which stays open and the same for as long
        // as the `AsyncFd` owns the `Uring`.
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(self, tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)
    }

    /// Whether completions are waiting.
    pub fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty()
    }

    /// Reads every waiting completion into `inbox` (cleared first) and gives the receive
    /// buffers back to the kernel.
    pub fn drain(&mut self, inbox: &mut Inbox) {
        inbox.clear();
        let mut returned = 0u16;
        for cqe in self.ring.completion() {
            let user_data = cqe.user_data();
            let value = user_data & VALUE_MASK;
            let result = cqe.result();
            let flags = cqe.flags();
            match user_data >> KIND_SHIFT {
                KIND_RECV => {
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        if result >= 0 {
                            let len = usize::try_from(result).unwrap_or(0).min(RECV_BUF_LEN);
                            let buf = &self.bufs.buffer(bid)[..len];
                            if let Ok(out) = types::RecvMsgOut::parse(buf, &self.recv_msg) {
                                let src = source(out.name_data());
                                let start = inbox.data.len();
                                inbox.data.extend_from_slice(out.payload_data());
                                inbox
                                    .received
                                    .push((value, src, start, out.payload_data().len()));
                            }
                        }
                        self.bufs.give_back(bid, returned);
                        returned = returned.wrapping_add(1);
                    }
                    if !cqueue::more(flags) {
                        match result {
                            r if r >= 0 || r == -libc::ENOBUFS => inbox.rearm.push(value),
                            r if r == -libc::ECANCELED => {}
                            r => inbox
                                .recv_failed
                                .push((value, io::Error::from_raw_os_error(-r))),
                        }
                    }
                }
                KIND_SEND => {
                    let index = usize::try_from(value).unwrap_or(usize::MAX);
                    if let Some(slot) = self.sends.get(index) {
                        if result < 0 {
                            inbox.send_failed.push((
                                slot.token,
                                slot.segment.is_some(),
                                io::Error::from_raw_os_error(-result),
                            ));
                        }
                        self.free_sends.push(index);
                    }
                }
                _ => {} // a cancellation's own completion
            }
        }
        self.bufs.publish(returned);
    }

    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        if self.ring.submission().is_full() {
            self.ring.submit()?;
            self.unsubmitted = 0;
        }
        // SAFETY: every pointer in the entries this module builds stays valid until the
        // entry's completion: `recv_msg` and the provided buffers live as long as the ring
        // (their owner, `Self`, drops the ring first: see `Drop`), and a send's slot is handed
        // out again only after its completion was read.
        unsafe { self.ring.submission().push(entry) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.unsubmitted += 1;
        Ok(())
    }
}

// SAFETY: the raw pointers inside (the receive `msghdr`, the send slots' messages, the
// provided-buffer ring) point only into memory this `Uring` owns and frees, and the ring is not
// tied to a thread (no `IORING_SETUP_SINGLE_ISSUER`), so the whole may move to another thread.
// It is not `Sync`: every use takes `&mut self`.
unsafe impl Send for Uring {}

impl AsRawFd for Uring {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Closing the ring cancels its requests; the kernel waits for them before the ring's
        // memory is released, but the buffers and send slots it may still write to or read from
        // are ours: release the ring (and so every request) before they are freed.
        let _ = self.ring.submitter().unregister_buf_ring(BUF_GROUP);
        // Replaced by a tiny ring so that the real one is closed now, before the fields drop.
        if let Ok(tiny) = IoUring::new(1) {
            drop(std::mem::replace(&mut self.ring, tiny));
        }
    }
}

/// The IPv4 source in a receive's name field.
fn source(name: &[u8]) -> Option<SocketAddrV4> {
    if name.len() < size_of::<libc::sockaddr_in>() {
        return None;
    }
    let family = u16::from_ne_bytes([name[0], name[1]]);
    if family != libc::AF_INET as u16 {
        return None;
    }
    let port = u16::from_be_bytes([name[2], name[3]]);
    let ip = Ipv4Addr::new(name[4], name[5], name[6], name[7]);
    Some(SocketAddrV4::new(ip, port))
}

/// `POCKETPXE_IO_URING=off`: keep the epoll path although io_uring would work.
fn forced_off() -> bool {
    std::env::var_os("POCKETPXE_IO_URING").is_some_and(|v| v == "off" || v == "0")
}

/// Storage of one send: the bytes, the destination and the message the kernel reads.
struct SendSlot {
    buf: Vec<u8>,
    addr: libc::sockaddr_in,
    iov: libc::iovec,
    /// u64 storage keeps the control buffer aligned for `cmsghdr`.
    control: [u64; 4],
    msg: libc::msghdr,
    segment: Option<u16>,
    token: u64,
}

impl SendSlot {
    fn new() -> Box<Self> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let (addr, iov, msg) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Box::new(Self {
            buf: Vec::new(),
            addr,
            iov,
            control: [0; 4],
            msg,
            segment: None,
            token: 0,
        })
    }

    /// Points the message at this slot's own fields (the slot is boxed: they do not move).
    fn fill(&mut self, dst: SocketAddrV4, bytes: &[u8], segment: Option<u16>, token: u64) {
        self.buf.clear();
        self.buf.extend_from_slice(bytes);
        self.addr.sin_family = libc::AF_INET as libc::sa_family_t;
        self.addr.sin_port = dst.port().to_be();
        self.addr.sin_addr.s_addr = u32::from(*dst.ip()).to_be();
        self.iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        self.msg.msg_name = (&raw mut self.addr).cast();
        self.msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        self.msg.msg_iov = &raw mut self.iov;
        self.msg.msg_iovlen = 1;
        self.msg.msg_control = std::ptr::null_mut();
        self.msg.msg_controllen = 0;
        self.segment = segment;
        self.token = token;
        if let Some(segment) = segment {
            // SAFETY: CMSG_SPACE is a pure computation.
            let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
            debug_assert!(space <= size_of::<[u64; 4]>());
            self.msg.msg_control = self.control.as_mut_ptr().cast();
            self.msg.msg_controllen = space as _;
            // SAFETY: `msg_control` points to `space` (≤ 32) writable, aligned bytes of
            // `control`, enough for one cmsghdr carrying a u16, so CMSG_FIRSTHDR is non-null
            // and CMSG_DATA is in bounds.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&raw const self.msg);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
            }
        }
    }
}

/// `UDP_SEGMENT` from `<linux/udp.h>`.
const UDP_SEGMENT: libc::c_int = 103;

/// The provided-buffer ring: [`RECV_BUFFERS`] entries shared with the kernel, and the buffers
/// they point to.
struct BufRing {
    entries: NonNull<types::BufRingEntry>,
    layout: Layout,
    data: Box<[u8]>,
    /// The tail as last published.
    tail: u16,
}

impl BufRing {
    fn new(ring: &IoUring) -> io::Result<Self> {
        let layout = Layout::from_size_align(
            usize::from(RECV_BUFFERS) * size_of::<types::BufRingEntry>(),
            4096,
        )
        .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size.
        let entries = NonNull::new(unsafe { alloc_zeroed(layout) })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?
            .cast::<types::BufRingEntry>();
        let mut bufs = Self {
            entries,
            layout,
            data: vec![0; usize::from(RECV_BUFFERS) * RECV_BUF_LEN].into_boxed_slice(),
            tail: 0,
        };
        for bid in 0..RECV_BUFFERS {
            bufs.give_back(bid, bid);
        }
        bufs.publish(RECV_BUFFERS);
        // SAFETY: `entries` is page-aligned memory for RECV_BUFFERS entries that lives until
        // `BufRing` drops, which `Uring`'s `Drop` does only after unregistering the group and
        // closing the ring.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries.as_ptr() as u64,
                RECV_BUFFERS,
                BUF_GROUP,
                0,
            )
        }?;
        Ok(bufs)
    }

    /// The bytes of buffer `bid` (an id the kernel handed back).
    fn buffer(&self, bid: u16) -> &[u8] {
        let start = usize::from(bid % RECV_BUFFERS) * RECV_BUF_LEN;
        &self.data[start..start + RECV_BUF_LEN]
    }

    /// Puts buffer `bid` at position `offset` past the published tail (visible to the kernel
    /// after [`BufRing::publish`]).
    fn give_back(&mut self, bid: u16, offset: u16) {
        let bid = bid % RECV_BUFFERS;
        let slot = usize::from(self.tail.wrapping_add(offset) & (RECV_BUFFERS - 1));
        let addr = self.data[usize::from(bid) * RECV_BUF_LEN..].as_ptr() as u64;
        // SAFETY: `slot` < RECV_BUFFERS, the number of entries allocated; the kernel reads only
        // entries between its head and the published tail, and this one is past the tail.
        let entry = unsafe { &mut *self.entries.as_ptr().add(slot) };
        entry.set_addr(addr);
        entry.set_len(RECV_BUF_LEN as u32);
        entry.set_bid(bid);
    }

    /// Makes `count` entries given back since the last call visible to the kernel.
    fn publish(&mut self, count: u16) {
        if count == 0 {
            return;
        }
        self.tail = self.tail.wrapping_add(count);
        // SAFETY: the tail is the u16 in the first entry's reserved field, inside the
        // allocation and aligned; the kernel reads it concurrently, hence the atomic store.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries.as_ptr()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; the ring no longer uses it (see
        // `Uring`'s `Drop`).
        unsafe { dealloc(self.entries.as_ptr().cast(), self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    fn ring_or_skip() -> Option<Uring> {
        match Uring::new() {
            Ok(ring) => Some(ring),
            Err(err) if std::env::var_os("CI").is_some_and(|v| v == "true") => {
                panic!("io_uring unavailable in CI: {err}")
            }
            Err(err) => {
                eprintln!("SKIP: io_uring unavailable: {err}");
                None
            }
        }
    }

    fn drain_for(ring: &mut Uring, inbox: &mut Inbox, wait: Duration) -> Vec<(u64, Vec<u8>)> {
        let mut got = Vec::new();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            ring.submit().unwrap();
            ring.drain(inbox);
            got.extend(inbox.received().map(|(t, _, b)| (t, b.to_vec())));
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    }

    #[test]
    fn multishot_receives_and_sends_round_trip() {
        let Some(mut ring) = ring_or_skip() else {
            return;
        };
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let std::net::SocketAddr::V4(a_addr) = a.local_addr().unwrap() else {
            unreachable!()
        };
        let std::net::SocketAddr::V4(b_addr) = b.local_addr().unwrap() else {
            unreachable!()
        };
        ring.arm_recv(a.as_fd(), 7).unwrap();
        ring.submit().unwrap();
        // More datagrams than provided buffers: the receive must be re-armed on the way.
        let total = usize::from(RECV_BUFFERS) + 100;
        let mut inbox = Inbox::default();
        let mut got = Vec::new();
        for i in 0..total {
            b.send_to(&(i as u32).to_be_bytes(), a_addr).unwrap();
            if i % 64 == 63 {
                ring.drain(&mut inbox);
                got.extend(inbox.received().map(|(t, s, p)| (t, s, p.to_vec())));
                for token in inbox.rearm.clone() {
                    ring.arm_recv(a.as_fd(), token).unwrap();
                }
                ring.submit().unwrap();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < total && Instant::now() < deadline {
            ring.drain(&mut inbox);
            got.extend(inbox.received().map(|(t, s, p)| (t, s, p.to_vec())));
            for token in inbox.rearm.clone() {
                ring.arm_recv(a.as_fd(), token).unwrap();
            }
            ring.submit().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got.len(), total);
        for (i, (token, src, payload)) in got.iter().enumerate() {
            assert_eq!(*token, 7);
            assert_eq!(*src, Some(b_addr));
            assert_eq!(payload.as_slice(), &(i as u32).to_be_bytes());
        }

        // A lone send and a GSO send of 2500 bytes in 1000-byte segments.
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        ring.send(a.as_fd(), b_addr, b"lone", None, 7).unwrap();
        ring.send(a.as_fd(), b_addr, &data, Some(1000), 7).unwrap();
        ring.submit().unwrap();
        let mut rx = [0u8; 4096];
        let n = b.recv(&mut rx).unwrap();
        assert_eq!(&rx[..n], b"lone");
        for expect in [&data[..1000], &data[1000..2000], &data[2000..]] {
            let n = b.recv(&mut rx).unwrap();
            assert_eq!(&rx[..n], expect);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while ring.free_sends.len() < ring.sends.len() && Instant::now() < deadline {
            ring.drain(&mut inbox);
            assert!(inbox.send_failed.is_empty());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            ring.free_sends.len(),
            ring.sends.len(),
            "send slots come back"
        );

        // Cancelled: nothing more arrives under the token and it is not re-armed.
        ring.cancel(7).unwrap();
        ring.submit().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        ring.drain(&mut inbox);
        assert!(inbox.rearm.is_empty());
        b.send_to(b"late", a_addr).unwrap();
        assert!(drain_for(&mut ring, &mut inbox, Duration::from_millis(200)).is_empty());
    }
}
