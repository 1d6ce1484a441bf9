//! The driver loop: smoltcp's `Interface` and UDP sockets around the core's DHCP and TFTP
//! servers. Thin by design (STYLE.md principle 5): it moves datagrams, time and file bytes
//! across the sans-IO boundary, and logs the core's events.
//!
//! One loop owns everything. Each turn:
//! 1. `iface.poll` (frames in, queued datagrams out), then the servers' `handle_timeout`;
//! 2. every readable socket is fed to the core: :67 to [`DhcpServer::handle`], :69 to
//!    [`TftpServer::handle_request`], each transfer's own port to [`TftpServer::handle`];
//! 3. the transfers in the core's readiness queue ([`TftpServer::poll_ready`]), and only those,
//!    have their `poll_transmit` drained into their sockets, at most [`TFTP_TX_PACKETS`]
//!    datagrams per turn and only into an empty socket buffer, so a datagram the core produced
//!    always fits (it never has to be dropped or copied aside);
//! 4. events are logged and ended transfers' sockets closed;
//! 5. if nothing was queued, sleep until the earliest of `iface.poll_at`, the servers'
//!    `poll_timeout`, or the next frame.
//!
//! Memory is static and sized at compile time: [`LEASES`] leases, [`SLOTS`] concurrent
//! transfers at blksize up to [`MAX_BLKSIZE`].

use core::fmt;
use core::net::{Ipv4Addr, SocketAddrV4};

use embedded_storage::ReadStorage;
use pocketpxe_core::dhcp::{DhcpConfig, DhcpEvent, DhcpOutcome, DhcpServer, LeaseSlot, Mode};
use pocketpxe_core::tftp::{
    EventLine, RefusedLine, RequestOutcome, Slot, TftpConfig, TftpServer, TransferId,
};
use pocketpxe_core::{Destination, Instant, Mac, Received};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata, UdpMetadata};
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint};
use static_cell::ConstStaticCell;

use crate::clock;
use crate::config;
use crate::flash_store::{FileRef, FlashStore};

/// Concurrent TFTP transfers.
pub const SLOTS: usize = 8;
/// DHCP lease table size.
pub const LEASES: usize = 8;
/// Largest TFTP block granted: an Ethernet MTU of 1500 minus IP, UDP and TFTP headers.
pub const MAX_BLKSIZE: u16 = 1468;
/// Largest window granted (RFC 7440); OVMF asks for 4.
pub const MAX_WINDOWSIZE: u16 = 4;
/// Datagrams queued per transfer socket per loop turn.
pub const TFTP_TX_PACKETS: usize = 2;

/// What the board provides to the loop.
pub trait Platform {
    /// The Ethernet device.
    type Device: Device;
    /// The device.
    fn device(&mut self) -> &mut Self::Device;
    /// Sleeps until `deadline` or until a frame may have arrived, whichever is first. May
    /// return early.
    fn idle(&mut self, deadline: Instant);
    /// Reports a key event (the board logs it as text on a UART, or through defmt).
    fn event(&mut self, event: Event<'_>);
}

/// A key event of the boot server, for the board to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Serving.
    Ready {
        /// Our address.
        ip: Ipv4Addr,
        /// Our MAC address.
        mac: [u8; 6],
        /// Boot files in the store.
        files: u32,
        /// Their total size.
        bytes: u64,
    },
    /// A lease changed.
    Dhcp(DhcpEvent),
    /// A TFTP request was refused with an ERROR (pxelinux probes several missing files).
    TftpRefused(RefusedLine<'a>),
    /// A transfer ended: delivered, a size probe (the normal end of OVMF's `tsize` probe), or
    /// failed.
    Tftp(EventLine<'a>),
}

/// Serves DHCP and TFTP forever.
pub fn run<P: Platform, F: ReadStorage + Clone>(
    platform: &mut P,
    mac: [u8; 6],
    store: &mut FlashStore<F>,
) -> ! {
    let mem = MEM.take();
    let meta = META.take();
    let now = clock::now();

    let mut iface_cfg = Config::new(EthernetAddress(mac).into());
    iface_cfg.random_seed =
        u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5a, 0xa5]);
    let mut iface = Interface::new(iface_cfg, platform.device(), clock::to_smoltcp(now));
    iface.update_ip_addrs(|addrs| {
        // Capacity is at least one address.
        let _ = addrs.push(IpCidr::new(
            IpAddress::Ipv4(config::SERVER_IP),
            config::PREFIX_LEN,
        ));
    });

    let mut sockets = SocketSet::new(&mut SOCKETS.take()[..]);
    let dhcp_handle = sockets.add(udp::Socket::new(
        PacketBuffer::new(&mut meta.dhcp_rx[..], &mut mem.dhcp_rx[..]),
        PacketBuffer::new(&mut meta.dhcp_tx[..], &mut mem.dhcp_tx[..]),
    ));
    let tftp_handle = sockets.add(udp::Socket::new(
        PacketBuffer::new(&mut meta.tftp_rx[..], &mut mem.tftp_rx[..]),
        PacketBuffer::new(&mut meta.tftp_tx[..], &mut mem.tftp_tx[..]),
    ));
    let mut transfers = [Transfer::IDLE; SLOTS];
    let xfer_meta = meta.xfer_rx.iter_mut().zip(meta.xfer_tx.iter_mut());
    let xfer_mem = mem.xfer_rx.iter_mut().zip(mem.xfer_tx.iter_mut());
    for (t, ((mrx, mtx), (prx, ptx))) in transfers.iter_mut().zip(xfer_meta.zip(xfer_mem)) {
        t.handle = Some(sockets.add(udp::Socket::new(
            PacketBuffer::new(&mut mrx[..], &mut prx[..]),
            PacketBuffer::new(&mut mtx[..], &mut ptx[..]),
        )));
    }
    let bind = |s: &mut SocketSet<'_>, h, port| s.get_mut::<udp::Socket>(h).bind(port);
    if bind(&mut sockets, dhcp_handle, DHCP_PORT).is_err()
        || bind(&mut sockets, tftp_handle, TFTP_PORT).is_err()
    {
        panic!("invariant: fresh sockets bind to free ports");
    }

    let mut dhcp_cfg = DhcpConfig::new(
        config::SERVER_IP,
        prefix_mask(config::PREFIX_LEN),
        Mode::Authoritative {
            pool: config::POOL,
            lease_time: config::LEASE_TIME,
            router: None,
            dns: &[],
            broadcast: None,
            relay_subnets: &[],
        },
    );
    dhcp_cfg.boot = &config::BOOT_RULES;
    let mut dhcp = DhcpServer::new(dhcp_cfg, &mut LEASE_TABLE.take()[..]);
    let tftp_cfg = TftpConfig {
        max_blksize: MAX_BLKSIZE,
        max_windowsize: MAX_WINDOWSIZE,
        ..TftpConfig::default()
    };
    let mut tftp = TftpServer::new(tftp_cfg, &mut TFTP_SLOTS.take()[..]);

    let mut driver = Driver {
        tx: &mut mem.scratch,
        next_port: EPHEMERAL_FIRST,
        transfers,
    };
    platform.event(Event::Ready {
        ip: config::SERVER_IP,
        mac,
        files: store.files(),
        bytes: store.bytes(),
    });

    loop {
        let now = clock::now();
        let snow = clock::to_smoltcp(now);
        iface.poll(snow, platform.device(), &mut sockets);
        dhcp.handle_timeout(now);
        tftp.handle_timeout(now);

        let mut busy = driver.serve_dhcp(now, &mut dhcp, &mut sockets, dhcp_handle, platform);
        busy |= driver.serve_requests(now, &mut tftp, store, &mut sockets, tftp_handle, platform);
        busy |= driver.serve_transfers(now, &mut tftp, store, &mut sockets);
        driver.drain_events(&mut tftp, store, &mut sockets, platform);
        if busy {
            continue;
        }

        let mut deadline = now + IDLE_MAX;
        let iface_at = iface
            .poll_at(snow, &sockets)
            .map(|t| Instant::from_millis(u64::try_from(t.total_millis()).unwrap_or(0)));
        for at in [iface_at, dhcp.poll_timeout(), tftp.poll_timeout()]
            .into_iter()
            .flatten()
        {
            deadline = deadline.min(at);
        }
        if deadline > now {
            platform.idle(deadline);
        }
    }
}

/// Per-slot driver state: the transfer's socket, its id, and the file name (for logs).
struct Transfer {
    handle: Option<SocketHandle>,
    id: Option<TransferId>,
    port: u16,
    name: [u8; NAME_MAX],
    name_len: usize,
}

impl Transfer {
    const IDLE: Self = Self {
        handle: None,
        id: None,
        port: 0,
        name: [0; NAME_MAX],
        name_len: 0,
    };

    fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// Keeps `name` for the end-of-transfer log, cut to [`NAME_MAX`] bytes on a character
    /// boundary.
    fn set_name(&mut self, name: &str) {
        let mut len = name.len().min(NAME_MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        self.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        self.name_len = len;
    }

    fn socket(&self) -> SocketHandle {
        self.handle
            .expect("invariant: every slot gets a socket at start")
    }
}

struct Driver<'a> {
    tx: &'a mut [u8; MAX_DATAGRAM],
    next_port: u16,
    transfers: [Transfer; SLOTS],
}

impl Driver<'_> {
    /// Answers DHCP on :67, one request per turn (its reply must fit the emptied socket).
    ///
    /// Kept out of [`run`]: the DHCP exchange inlined into the loop makes the loop's stack
    /// frame large, and every spill costs extra instructions (thumbv6m reaches only 1 KiB of
    /// it from `sp` directly).
    #[inline(never)]
    fn serve_dhcp<P: Platform>(
        &mut self,
        now: Instant,
        dhcp: &mut DhcpServer<'_>,
        sockets: &mut SocketSet<'_>,
        handle: SocketHandle,
        platform: &mut P,
    ) -> bool {
        let socket = sockets.get_mut::<udp::Socket>(handle);
        if socket.send_queue() != 0 || !socket.can_recv() {
            return socket.can_recv();
        }
        let Ok((payload, meta)) = socket.recv() else {
            return false;
        };
        let rx = received(payload, &meta, DHCP_PORT);
        let outcome = dhcp.handle(now, &rx, &mut self.tx[..]);
        while let Some(event) = dhcp.poll_event() {
            platform.event(Event::Dhcp(event));
        }
        match outcome {
            Ok(DhcpOutcome::Reply {
                transmit: t,
                summary,
            }) => {
                defmt::debug!("dhcp: {}", summary);
                let socket = sockets.get_mut::<udp::Socket>(handle);
                if socket
                    .send_slice(&self.tx[..t.len], endpoint(t.dst))
                    .is_err()
                {
                    defmt::warn!("dhcp: reply of {} bytes does not fit the socket", t.len);
                }
            }
            Ok(DhcpOutcome::Handled { summary }) => defmt::debug!("dhcp: {}", summary),
            Ok(DhcpOutcome::Ignored { reason, .. }) => defmt::debug!("dhcp: ignored: {}", reason),
            Err(e) => defmt::warn!("dhcp: {}", e),
        }
        true
    }

    /// Takes TFTP requests on :69, one per turn (an ERROR reply must fit the emptied socket).
    fn serve_requests<P: Platform, F: ReadStorage + Clone>(
        &mut self,
        now: Instant,
        tftp: &mut TftpServer<'_, FileRef>,
        store: &mut FlashStore<F>,
        sockets: &mut SocketSet<'_>,
        handle: SocketHandle,
        platform: &mut P,
    ) -> bool {
        let socket = sockets.get_mut::<udp::Socket>(handle);
        if socket.send_queue() != 0 || !socket.can_recv() {
            return socket.can_recv();
        }
        let Ok((payload, meta)) = socket.recv() else {
            return false;
        };
        let rx = received(payload, &meta, TFTP_PORT);
        let peer = rx.src;
        match tftp.handle_request(now, &rx, store, &mut self.tx[..]) {
            Ok(RequestOutcome::Accepted { id, path, .. }) => {
                let port = self.ephemeral_port();
                let slot = &mut self.transfers[id.index()];
                slot.id = Some(id);
                slot.port = port;
                slot.set_name(path.as_sent());
                let socket = sockets.get_mut::<udp::Socket>(slot.socket());
                socket.close();
                if socket.bind(port).is_err() {
                    tftp.abort(id, "no socket");
                }
                defmt::debug!("tftp: transfer {} from {} on port {}", id, peer, port);
            }
            Ok(RequestOutcome::Rejected {
                transmit,
                reason,
                request,
            }) => {
                platform.event(Event::TftpRefused(RefusedLine {
                    name: request.map(|r| r.filename).unwrap_or_default(),
                    peer,
                    reason,
                }));
                let socket = sockets.get_mut::<udp::Socket>(handle);
                let _ = socket.send_slice(&self.tx[..transmit.len], unicast(transmit.dst));
            }
            Ok(RequestOutcome::Ignored(reason)) => defmt::debug!("tftp: ignored: {}", reason),
            Err(e) => defmt::warn!("tftp: {}", e),
        }
        true
    }

    /// Feeds each transfer its datagrams, then queues what the transfers in the core's
    /// readiness queue want sent.
    fn serve_transfers<F: ReadStorage + Clone>(
        &mut self,
        now: Instant,
        tftp: &mut TftpServer<'_, FileRef>,
        store: &mut FlashStore<F>,
        sockets: &mut SocketSet<'_>,
    ) -> bool {
        for slot in self.transfers.iter() {
            let Some(id) = slot.id else { continue };
            let socket = sockets.get_mut::<udp::Socket>(slot.socket());
            while let Ok((payload, meta)) = socket.recv() {
                let rx = received(payload, &meta, slot.port);
                let _ = tftp.handle(now, id, &rx);
            }
        }
        let mut busy = false;
        // At most one visit per transfer and turn: one left with output (its socket is full,
        // or it has more than TFTP_TX_PACKETS to send) stays queued for the next turn.
        for _ in 0..SLOTS {
            let Some(id) = tftp.poll_ready() else { break };
            let Some(slot) = self.transfers.get(id.index()).filter(|s| s.id == Some(id)) else {
                continue;
            };
            let socket = sockets.get_mut::<udp::Socket>(slot.socket());
            if socket.send_queue() != 0 {
                continue;
            }
            for _ in 0..TFTP_TX_PACKETS {
                match tftp.poll_transmit(now, id, store, &mut self.tx[..]) {
                    Ok(Some(t)) => {
                        busy = true;
                        if socket
                            .send_slice(&self.tx[..t.len], unicast(t.dst))
                            .is_err()
                        {
                            // Cannot happen (the buffer holds TFTP_TX_PACKETS datagrams of
                            // MAX_DATAGRAM from empty); the core resends on timeout.
                            defmt::warn!("tftp: {} datagram dropped", id);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        defmt::error!("tftp: {}: {}", id, e);
                        tftp.abort(id, "internal error");
                        break;
                    }
                }
            }
        }
        busy
    }

    /// Logs finished and failed transfers and closes their sockets.
    fn drain_events<P: Platform, F: ReadStorage + Clone>(
        &mut self,
        tftp: &mut TftpServer<'_, FileRef>,
        store: &mut FlashStore<F>,
        sockets: &mut SocketSet<'_>,
        platform: &mut P,
    ) {
        while let Some(event) = tftp.poll_event(store) {
            let Some(slot) = self.transfers.get_mut(event.id().index()) else {
                continue;
            };
            platform.event(Event::Tftp(event.line(slot.name())));
            sockets.get_mut::<udp::Socket>(slot.socket()).close();
            slot.id = None;
        }
    }

    /// A port for a new transfer (RFC 1350 TID): cycles through the ephemeral range, skipping
    /// ports still in use, so a late packet for an old transfer does not reach a new one.
    fn ephemeral_port(&mut self) -> u16 {
        loop {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self
                .transfers
                .iter()
                .any(|t| t.id.is_some() && t.port == port)
            {
                return port;
            }
        }
    }
}

/// Every buffer, zero-initialised so that it lands in `.bss` (FIRMWARE.md's `.data` trap).
struct Buffers {
    dhcp_rx: [u8; 2048],
    dhcp_tx: [u8; MAX_DATAGRAM],
    tftp_rx: [u8; 1024],
    tftp_tx: [u8; 512],
    xfer_rx: [[u8; 256]; SLOTS],
    xfer_tx: [[u8; MAX_DATAGRAM * TFTP_TX_PACKETS]; SLOTS],
    scratch: [u8; MAX_DATAGRAM],
}

type Meta = PacketMetadata;

/// Packet metadata (not all-zero, so kept apart from the big buffers).
struct Metas {
    dhcp_rx: [Meta; 4],
    dhcp_tx: [Meta; 1],
    tftp_rx: [Meta; 4],
    tftp_tx: [Meta; 1],
    xfer_rx: [[Meta; 4]; SLOTS],
    xfer_tx: [[Meta; TFTP_TX_PACKETS]; SLOTS],
}

static MEM: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    dhcp_rx: [0; 2048],
    dhcp_tx: [0; MAX_DATAGRAM],
    tftp_rx: [0; 1024],
    tftp_tx: [0; 512],
    xfer_rx: [[0; 256]; SLOTS],
    xfer_tx: [[0; MAX_DATAGRAM * TFTP_TX_PACKETS]; SLOTS],
    scratch: [0; MAX_DATAGRAM],
});
static META: ConstStaticCell<Metas> = ConstStaticCell::new(Metas {
    dhcp_rx: [Meta::EMPTY; 4],
    dhcp_tx: [Meta::EMPTY; 1],
    tftp_rx: [Meta::EMPTY; 4],
    tftp_tx: [Meta::EMPTY; 1],
    xfer_rx: [[Meta::EMPTY; 4]; SLOTS],
    xfer_tx: [[Meta::EMPTY; TFTP_TX_PACKETS]; SLOTS],
});
static SOCKETS: ConstStaticCell<[SocketStorage<'static>; 2 + SLOTS]> =
    ConstStaticCell::new([SocketStorage::EMPTY; 2 + SLOTS]);
static LEASE_TABLE: ConstStaticCell<[LeaseSlot; LEASES]> =
    ConstStaticCell::new([LeaseSlot::EMPTY; LEASES]);
static TFTP_SLOTS: ConstStaticCell<[Slot<FileRef>; SLOTS]> =
    ConstStaticCell::new([Slot::EMPTY; SLOTS]);

/// The core's view of a datagram (smoltcp is built IPv4-only).
fn received<'a>(payload: &'a [u8], meta: &UdpMetadata, port: u16) -> Received<'a> {
    let IpAddress::Ipv4(src) = meta.endpoint.addr;
    let dst = match meta.local_address {
        Some(IpAddress::Ipv4(local)) => local,
        None => config::SERVER_IP,
    };
    Received {
        src: SocketAddrV4::new(src, meta.endpoint.port),
        dst: SocketAddrV4::new(dst, port),
        payload,
    }
}

/// Where smoltcp should send a TFTP datagram (always unicast, to the peer's TID).
fn unicast(dst: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(*dst.ip()), dst.port())
}

/// Where smoltcp should send a core [`Destination`]. smoltcp cannot send to a MAC without
/// ARP, so the DHCP config says `unicast_to_mac: false` and the core never asks for it; if it
/// did, a broadcast reaches the client too (RFC 2131 §4.1).
fn endpoint(dst: Destination) -> IpEndpoint {
    match dst {
        Destination::Unicast(sa) => IpEndpoint::new(IpAddress::Ipv4(*sa.ip()), sa.port()),
        Destination::Broadcast { port } | Destination::UnicastToMac { port, .. } => {
            IpEndpoint::new(IpAddress::Ipv4(Ipv4Addr::BROADCAST), port)
        }
    }
}

fn prefix_mask(len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0))
}

impl fmt::Display for Event<'_> {
    /// One line of text, as the mps2 board writes to its UART (the e2e test reads it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Ready {
                ip,
                mac,
                files,
                bytes,
            } => write!(
                f,
                "pocketpxe: ready on {ip} ({}), {files} boot files ({bytes} bytes), pool {}-{}",
                Mac(mac),
                config::POOL.start,
                config::POOL.end
            ),
            Self::Dhcp(event) => write!(f, "dhcp: {event}"),
            Self::TftpRefused(line) => line.fmt(f),
            Self::Tftp(line) => line.fmt(f),
        }
    }
}

impl defmt::Format for Event<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            Self::Ready {
                ip,
                mac,
                files,
                bytes,
            } => defmt::write!(
                f,
                "ready on {} ({}), {} boot files ({} bytes)",
                ip,
                Mac(mac),
                files,
                bytes
            ),
            Self::Dhcp(event) => defmt::write!(f, "dhcp: {}", event),
            Self::TftpRefused(line) => line.format(f),
            Self::Tftp(line) => line.format(f),
        }
    }
}

const DHCP_PORT: u16 = 67;
const TFTP_PORT: u16 = 69;
/// A UDP payload at Ethernet MTU 1500: TFTP DATA at [`MAX_BLKSIZE`], or any DHCP reply.
const MAX_DATAGRAM: usize = 4 + MAX_BLKSIZE as usize;
const EPHEMERAL_FIRST: u16 = 49152;
/// Longest file name kept for logs.
const NAME_MAX: usize = 56;
/// Longest sleep without a deadline (the loop re-checks everything then).
const IDLE_MAX: core::time::Duration = core::time::Duration::from_millis(500);
