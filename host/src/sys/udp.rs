//! UDP sockets bound to one interface, and who holds a port when binding fails.
//!
//! `serve` answers on one interface only: its sockets listen on `0.0.0.0:PORT` with
//! `SO_BINDTODEVICE`, so that limited broadcasts (DHCP) arrive and leave there and nowhere else.
//! On Linux, two sockets on the same port only conflict if their devices overlap, so a server on
//! `eth1` can coexist with another DHCP server bound to `eth0`.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};

/// How to set up a socket before binding it.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindOptions<'a> {
    /// `SO_BINDTODEVICE`: receive and send on this interface only.
    pub device: Option<&'a str>,
    /// `SO_BROADCAST`: may send to 255.255.255.255.
    pub broadcast: bool,
    /// `SO_REUSEADDR`: share the port with other sockets that also set it.
    pub reuse_addr: bool,
    /// `SO_RCVBUF` in bytes (the kernel caps it at `net.core.rmem_max`); `None` keeps the
    /// default.
    pub recv_buffer: Option<usize>,
}

/// Why [`bind`] failed: which step, so that the caller can name the privilege it needs.
#[derive(Debug)]
pub enum BindStep {
    /// Creating the socket or setting a plain option.
    Socket(io::Error),
    /// `SO_BINDTODEVICE`.
    Device(io::Error),
    /// `bind(2)`.
    Bind(io::Error),
}

impl BindStep {
    /// The OS error.
    pub fn error(&self) -> &io::Error {
        match self {
            Self::Socket(e) | Self::Device(e) | Self::Bind(e) => e,
        }
    }

    /// The OS error, taken out.
    pub fn into_error(self) -> io::Error {
        match self {
            Self::Socket(e) | Self::Device(e) | Self::Bind(e) => e,
        }
    }
}

/// A non-blocking tokio UDP socket bound to `addr` with `opts`. Must be called inside a tokio
/// runtime.
///
/// # Errors
/// The failing step and its OS error.
pub fn bind(addr: SocketAddrV4, opts: BindOptions<'_>) -> Result<tokio::net::UdpSocket, BindStep> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(BindStep::Socket)?;
    if let Some(device) = opts.device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(BindStep::Device)?;
    }
    if opts.broadcast {
        socket.set_broadcast(true).map_err(BindStep::Socket)?;
    }
    if opts.reuse_addr {
        socket.set_reuse_address(true).map_err(BindStep::Socket)?;
    }
    if let Some(bytes) = opts.recv_buffer {
        socket
            .set_recv_buffer_size(bytes)
            .map_err(BindStep::Socket)?;
    }
    socket.set_nonblocking(true).map_err(BindStep::Socket)?;
    socket
        .bind(&SocketAddr::V4(addr).into())
        .map_err(BindStep::Bind)?;
    tokio::net::UdpSocket::from_std(socket.into()).map_err(BindStep::Socket)
}

/// Whether a socket error is passing (ICMP errors reported on the next call, a full buffer, an
/// interface going down): the loop logs it and goes on instead of stopping.
pub fn transient(err: &io::Error) -> bool {
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
                | rustix::io::Errno::NETDOWN
        )
    )
}

/// Who holds UDP `port` in this network namespace, e.g. `dnsmasq (pid 812)`, from
/// `/proc/net/udp` and the `/proc/PID/fd` links to its socket inode. `None` if nobody visible
/// does (another namespace, or no permission to look).
pub fn port_owner(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    owners_of(&socket_inodes(&table, port))
}

/// The processes holding any of the socket `inodes`, e.g. `dnsmasq (pid 812)`, from the
/// `/proc/PID/fd` links. `None` if nobody visible does.
pub(crate) fn owners_of(inodes: &[u64]) -> Option<String> {
    if inodes.is_empty() {
        return None;
    }
    let mut owners = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                let target = target.to_string_lossy();
                inodes
                    .iter()
                    .any(|inode| target == format!("socket:[{inode}]"))
            })
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            owners.push(format!("{} (pid {pid})", comm.trim()));
        }
    }
    (!owners.is_empty()).then(|| owners.join(", "))
}

/// A socket on one interface could not be set up; the message names the service, port,
/// interface and, where it can, the cause and who holds the port.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {service} on port {port} of {iface}: {detail}")]
pub struct ListenError {
    /// `DHCP`, `proxyDHCP`, `TFTP`...
    pub service: &'static str,
    /// The UDP port.
    pub port: u16,
    /// The interface.
    pub iface: String,
    /// The OS error and advice.
    pub detail: String,
}

impl ListenError {
    /// Describes a failed [`bind`] of `0.0.0.0:port` on `iface`.
    pub fn new(service: &'static str, port: u16, iface: &str, step: BindStep) -> Self {
        Self::describe(service, port, iface, step, port_owner)
    }

    /// Describes a failed TCP listen (`crate::sys::tcp::listen`) on `port` of `iface`.
    pub fn new_tcp(service: &'static str, port: u16, iface: &str, step: BindStep) -> Self {
        Self::describe(service, port, iface, step, crate::sys::tcp::port_owner)
    }

    fn describe(
        service: &'static str,
        port: u16,
        iface: &str,
        step: BindStep,
        owner: fn(u16) -> Option<String>,
    ) -> Self {
        let detail = match &step {
            BindStep::Bind(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let owner = owner(port).map(|o| format!(" by {o}")).unwrap_or_default();
                format!(
                    "port {port} is already in use{owner} (stop that server, or serve another \
                     interface)"
                )
            }
            BindStep::Bind(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                format!("{e} (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
            }
            BindStep::Device(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                format!("SO_BINDTODEVICE: {e} (needs root or CAP_NET_RAW)")
            }
            BindStep::Device(e) => format!("SO_BINDTODEVICE: {e}"),
            BindStep::Bind(e) | BindStep::Socket(e) => e.to_string(),
        };
        Self {
            service,
            port,
            iface: iface.to_owned(),
            detail,
        }
    }
}

/// Socket inodes bound to local `port` in a `/proc/net/udp` (or `/proc/net/tcp`) table.
pub(crate) fn socket_inodes(table: &str, port: u16) -> Vec<u64> {
    let wanted = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            (local.ends_with(&wanted) && inode != 0).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_udp_is_parsed() {
        // From a machine running dnsmasq (DHCP on 0.0.0.0:67) and a resolver on 127.0.0.53:53.
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  221: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 31337 2 0000000000000000 0\n\
  735: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 2222 2 0000000000000000 0\n";
        assert_eq!(socket_inodes(table, 67), [31337]);
        assert_eq!(socket_inodes(table, 53), [2222]);
        assert_eq!(socket_inodes(table, 69), Vec::<u64>::new());
        assert_eq!(
            socket_inodes("garbage\nmore garbage", 67),
            Vec::<u64>::new()
        );
    }

    #[tokio::test]
    async fn owner_of_our_own_port_is_us() {
        let socket = bind(
            SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0),
            BindOptions::default(),
        )
        .unwrap();
        let port = socket.local_addr().unwrap().port();
        let owner = port_owner(port).expect("our socket is visible");
        assert!(
            owner.contains(&format!("pid {}", std::process::id())),
            "{owner}"
        );
    }
}
