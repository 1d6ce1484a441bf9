//! Batched UDP system calls for the TFTP data path and the DHCP server: `recvmmsg(2)` to read
//! every queued ACK or DHCP request with one call (and learn that the queue is empty without a
//! second one), UDP GSO (`UDP_SEGMENT`, Linux 4.18) to send a whole window of equal-sized DATA
//! blocks with one `sendmsg(2)`, and `sendmmsg(2)` for anything else (a batch of DHCP
//! replies). The DHCP server and the load tool (`bench`) read with [`recv_slots`].
//!
//! These are thin, bounds-checked wrappers; every `unsafe` block builds the kernel's structures
//! over buffers borrowed for the duration of the call only.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Datagrams read by one [`recv_batch`] call at most.
pub const RECV_BATCH: usize = 8;
/// Bytes kept of each received datagram (transfer sockets only carry ACKs and ERRORs).
pub const RECV_SLOT: usize = 2048;
/// Segments in one GSO send at most (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Bytes in one GSO send at most: the largest UDP payload of an IPv4 datagram.
pub const GSO_MAX_BYTES: usize = 65_507;
/// Datagrams read by one [`recv_slots`] call at most.
pub const RECV_SLOTS_MAX: usize = 64;

/// Storage for the datagrams of one [`recv_batch`] call.
pub struct RecvBatch {
    data: Box<[u8]>,
    lens: [usize; RECV_BATCH],
    srcs: [Option<SocketAddrV4>; RECV_BATCH],
    /// Longer than [`RECV_SLOT`] (kept cut: transfer sockets pass it on as it is).
    cut: [bool; RECV_BATCH],
}

impl RecvBatch {
    /// Empty storage for [`RECV_BATCH`] datagrams of up to [`RECV_SLOT`] bytes.
    pub fn new() -> Self {
        Self {
            data: vec![0; RECV_BATCH * RECV_SLOT].into_boxed_slice(),
            lens: [0; RECV_BATCH],
            srcs: [None; RECV_BATCH],
            cut: [false; RECV_BATCH],
        }
    }

    /// Datagram `i` of the last call: its IPv4 source (`None` for another family) and bytes
    /// (cut at [`RECV_SLOT`]).
    pub fn get(&self, i: usize) -> Option<(Option<SocketAddrV4>, &[u8])> {
        let len = *self.lens.get(i)?;
        let start = i * RECV_SLOT;
        Some((
            self.srcs[i],
            self.data.get(start..start + len.min(RECV_SLOT))?,
        ))
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads up to [`RECV_BATCH`] queued datagrams without blocking. A count below
/// [`RECV_BATCH`] means the socket's queue was empty when the call returned.
///
/// # Errors
/// The OS error; `WouldBlock` when nothing is queued.
pub fn recv_batch(fd: BorrowedFd<'_>, batch: &mut RecvBatch) -> io::Result<usize> {
    recv_into::<RECV_BATCH>(
        fd,
        &mut batch.data,
        RECV_SLOT,
        &mut batch.lens,
        &mut batch.srcs,
        &mut batch.cut,
    )
}

/// Sends `buf` to `dst` as datagrams of `segment` bytes each (the last may be shorter) with one
/// GSO `sendmsg(2)`.
///
/// # Errors
/// The OS error. `EINVAL` or `EIO` mean this route or device cannot segment (for example a
/// segment larger than the path MTU): send the datagrams one by one instead.
pub fn send_gso(
    fd: BorrowedFd<'_>,
    dst: SocketAddrV4,
    buf: &[u8],
    segment: u16,
) -> io::Result<usize> {
    let addr = sockaddr(dst);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // u64 storage keeps the control buffer aligned for `cmsghdr`.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= size_of::<[u64; 4]>());
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw const addr).cast_mut().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg.msg_control` points to `space` (≤ 32) writable, aligned bytes, enough for one
    // cmsghdr carrying a u16, so CMSG_FIRSTHDR is non-null and CMSG_DATA is in bounds.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
    // SAFETY: `msg` points to `addr`, `iov` (over `buf`) and `control`, all alive for the call.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Sends each `(dst, bytes)` as one datagram with `sendmmsg(2)` (at most 64 per call).
///
/// # Errors
/// The OS error if not even the first datagram was sent; otherwise the number sent.
pub fn send_many(fd: BorrowedFd<'_>, packets: &[(SocketAddrV4, &[u8])]) -> io::Result<usize> {
    const MAX: usize = 64;
    let count = packets.len().min(MAX);
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut addrs: [libc::sockaddr_in; MAX] = unsafe { zeroed() };
    let mut iovecs: [libc::iovec; MAX] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; MAX] = unsafe { zeroed() };
    for (i, (dst, bytes)) in packets.iter().take(count).enumerate() {
        addrs[i] = sockaddr(*dst);
        iovecs[i] = libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        };
        msgs[i].msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msgs[i].msg_hdr.msg_iov = &raw mut iovecs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `count` entries of `msgs` point into `addrs`, `iovecs` and the
    // borrowed packets, all alive for the call; the kernel only reads the payloads.
    let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), count as libc::c_uint, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Storage for the datagrams of one [`recv_slots`] call: up to [`RECV_SLOTS_MAX`] datagrams of
/// a size the caller chooses (a TFTP client reading DATA: 4 + blksize).
pub struct RecvSlots {
    data: Box<[u8]>,
    slot: usize,
    lens: Box<[usize]>,
    srcs: Box<[Option<SocketAddrV4>]>,
    cut: Box<[bool]>,
}

impl RecvSlots {
    /// Storage for `count` datagrams (1 to [`RECV_SLOTS_MAX`]) of up to `slot` bytes each (at
    /// least 1).
    pub fn new(count: usize, slot: usize) -> Self {
        let count = count.clamp(1, RECV_SLOTS_MAX);
        let slot = slot.max(1);
        Self {
            data: vec![0; count * slot].into_boxed_slice(),
            slot,
            lens: vec![0; count].into_boxed_slice(),
            srcs: vec![None; count].into_boxed_slice(),
            cut: vec![false; count].into_boxed_slice(),
        }
    }

    /// Datagrams one call can read.
    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// Datagram `i` of the last call: its IPv4 source (`None` for another family) and bytes.
    /// `None` when `i` is beyond the storage or the datagram was longer than a slot (the
    /// kernel cut it, so its bytes are not the datagram).
    pub fn get(&self, i: usize) -> Option<(Option<SocketAddrV4>, &[u8])> {
        if *self.cut.get(i)? {
            return None;
        }
        let start = i * self.slot;
        Some((
            self.srcs[i],
            self.data.get(start..start + self.lens[i].min(self.slot))?,
        ))
    }
}

/// Reads up to as many queued datagrams as `slots` holds without blocking, with one
/// `recvmmsg(2)`. A count below that capacity means the socket's queue was empty when the call
/// returned.
///
/// # Errors
/// The OS error; `WouldBlock` when nothing is queued.
pub fn recv_slots(fd: BorrowedFd<'_>, slots: &mut RecvSlots) -> io::Result<usize> {
    recv_into::<RECV_SLOTS_MAX>(
        fd,
        &mut slots.data,
        slots.slot,
        &mut slots.lens,
        &mut slots.srcs,
        &mut slots.cut,
    )
}

/// One `recvmmsg(2)` (non-blocking) into at most `N` slots of `slot` bytes of `data` (and no
/// more than `lens`, `srcs` and `cut` hold): each datagram's length (at most `slot`), IPv4
/// source and whether the kernel cut it.
fn recv_into<const N: usize>(
    fd: BorrowedFd<'_>,
    data: &mut [u8],
    slot: usize,
    lens: &mut [usize],
    srcs: &mut [Option<SocketAddrV4>],
    cut: &mut [bool],
) -> io::Result<usize> {
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut addrs: [libc::sockaddr_in; N] = unsafe { zeroed() };
    let mut iovecs: [libc::iovec; N] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; N] = unsafe { zeroed() };
    let count = N.min(lens.len()).min(srcs.len()).min(cut.len());
    let mut ready = 0;
    for (i, chunk) in data.chunks_exact_mut(slot.max(1)).take(count).enumerate() {
        iovecs[i] = libc::iovec {
            iov_base: chunk.as_mut_ptr().cast(),
            iov_len: chunk.len(),
        };
        msgs[i].msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msgs[i].msg_hdr.msg_iov = &raw mut iovecs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        ready += 1;
    }
    // SAFETY: the first `ready` entries of `msgs` point into `addrs`, `iovecs` and `data`,
    // which outlive the call; the lengths given are those of the buffers.
    let n = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            ready as libc::c_uint,
            // An int in glibc's prototype, an unsigned int in musl's (the static build).
            libc::MSG_DONTWAIT as _,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (n as usize).min(ready);
    for i in 0..n {
        lens[i] = (msgs[i].msg_len as usize).min(slot);
        cut[i] = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        srcs[i] = (addrs[i].sin_family == libc::AF_INET as libc::sa_family_t
            && msgs[i].msg_hdr.msg_namelen as usize >= size_of::<libc::sockaddr_in>())
        .then(|| {
            SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(addrs[i].sin_addr.s_addr)),
                u16::from_be(addrs[i].sin_port),
            )
        });
    }
    Ok(n)
}

/// Waits with `poll(2)` until `fd` has a datagram to read or `timeout` has passed; whether
/// it has one.
///
/// # Errors
/// The OS error (`Interrupted` when a signal came first).
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd, alive for the call.
    let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n > 0)
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: all-zero is a valid sockaddr_in.
    let mut out: libc::sockaddr_in = unsafe { zeroed() };
    out.sin_family = libc::AF_INET as libc::sa_family_t;
    out.sin_port = addr.port().to_be();
    out.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    out
}

/// `UDP_SEGMENT` from `<linux/udp.h>` (not exported by `libc` for glibc targets).
const UDP_SEGMENT: libc::c_int = 103;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    fn pair() -> (UdpSocket, UdpSocket, SocketAddrV4) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let std::net::SocketAddr::V4(to) = b.local_addr().unwrap() else {
            unreachable!()
        };
        (a, b, to)
    }

    #[test]
    fn gso_splits_into_segments_with_a_short_last_one() {
        let (a, b, to) = pair();
        let buf: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        assert_eq!(send_gso(a.as_fd(), to, &buf, 1000).unwrap(), 2500);
        let mut rx = [0u8; 4096];
        for expect in [&buf[..1000], &buf[1000..2000], &buf[2000..]] {
            let n = b.recv(&mut rx).unwrap();
            assert_eq!(&rx[..n], expect);
        }
    }

    #[test]
    fn many_and_batch_receive_round_trip() {
        let (a, b, to) = pair();
        let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let packets: Vec<(SocketAddrV4, &[u8])> =
            payloads.iter().map(|p| (to, p.as_slice())).collect();
        assert_eq!(send_many(a.as_fd(), &packets).unwrap(), 10);
        // Give loopback delivery a moment; it is synchronous in practice.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut batch = RecvBatch::new();
        let n = recv_batch(b.as_fd(), &mut batch).unwrap();
        assert_eq!(n, RECV_BATCH);
        let src = a.local_addr().unwrap();
        for (i, payload) in payloads.iter().enumerate().take(n) {
            let (from, bytes) = batch.get(i).unwrap();
            assert_eq!(from.map(std::net::SocketAddr::V4), Some(src));
            assert_eq!(bytes, payload.as_slice());
        }
        assert_eq!(recv_batch(b.as_fd(), &mut batch).unwrap(), 2);
        let err = recv_batch(b.as_fd(), &mut batch).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn slots_receive_whole_datagrams_and_flag_cut_ones() {
        let (a, b, to) = pair();
        let payloads: Vec<Vec<u8>> = [1472, 100, 1473, 1]
            .iter()
            .enumerate()
            .map(|(i, &len)| vec![i as u8; len])
            .collect();
        let packets: Vec<(SocketAddrV4, &[u8])> =
            payloads.iter().map(|p| (to, p.as_slice())).collect();
        assert_eq!(send_many(a.as_fd(), &packets).unwrap(), 4);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut slots = RecvSlots::new(16, 1472);
        assert_eq!(recv_slots(b.as_fd(), &mut slots).unwrap(), 4);
        let src = a.local_addr().unwrap();
        for i in [0, 1, 3] {
            let (from, bytes) = slots.get(i).unwrap();
            assert_eq!(from.map(std::net::SocketAddr::V4), Some(src));
            assert_eq!(bytes, payloads[i].as_slice());
        }
        assert!(
            slots.get(2).is_none(),
            "a datagram longer than its slot is not handed out"
        );
        assert!(slots.get(16).is_none());
        let err = recv_slots(b.as_fd(), &mut slots).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
