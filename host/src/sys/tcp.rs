//! TCP listeners, optionally bound to one interface, and who holds a taken TCP port.

use crate::sys::udp::{BindStep, owners_of, socket_inodes};
use std::net::{SocketAddr, SocketAddrV4};

/// A non-blocking TCP listener on `addr` with `SO_REUSEADDR` (a restart does not wait for the
/// previous run's connections in TIME-WAIT) and, with `device`, `SO_BINDTODEVICE`.
///
/// # Errors
/// The failing step and its OS error.
pub fn listen(addr: SocketAddrV4, device: Option<&str>) -> Result<std::net::TcpListener, BindStep> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket =
        Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(BindStep::Socket)?;
    if let Some(device) = device {
        socket
            .bind_device(Some(device.as_bytes()))
            .map_err(BindStep::Device)?;
    }
    socket.set_reuse_address(true).map_err(BindStep::Socket)?;
    socket.set_nonblocking(true).map_err(BindStep::Socket)?;
    socket
        .bind(&SocketAddr::V4(addr).into())
        .map_err(BindStep::Bind)?;
    socket.listen(BACKLOG).map_err(BindStep::Bind)?;
    Ok(socket.into())
}

/// Who holds TCP `port` in this network namespace, e.g. `nginx (pid 812)`, from
/// `/proc/net/tcp` and the `/proc/PID/fd` links to its socket inode. `None` if nobody visible
/// does (another namespace, or no permission to look).
pub fn port_owner(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    owners_of(&socket_inodes(&table, port))
}

/// Pending connections the kernel queues before `accept`: a boot storm connects at once.
const BACKLOG: i32 = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_taken_port_names_its_holder() {
        let first = listen(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), None).unwrap();
        let port = first.local_addr().unwrap().port();
        let owner = port_owner(port).expect("our listener is visible");
        assert!(
            owner.contains(&format!("pid {}", std::process::id())),
            "{owner}"
        );
        let step = listen(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), None).unwrap_err();
        let err = crate::sys::udp::ListenError::new_tcp("HTTP", port, "lo", step).to_string();
        assert!(
            err.contains(&format!("port {port} is already in use by"))
                && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
}
