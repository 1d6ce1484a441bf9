//! Where a reply goes: RFC 2131 §4.1, implemented once.

use core::net::{Ipv4Addr, SocketAddrV4};

use super::{LinkCaps, PXE_PORT};
use crate::net::{Destination, Received};
use crate::wire::dhcp::{Flags, Repr};

/// DHCP server port (RFC 2131 §4.1).
pub(crate) const SERVER_PORT: u16 = 67;
/// DHCP client port (RFC 2131 §4.1).
pub(crate) const CLIENT_PORT: u16 = 68;

/// Picks the destination of a reply to `req`, checking in this order (RFC 2131 §4.1):
/// a request that arrived on port 4011 is answered to its source (PXE spec 2.1 §2.2.1);
/// `giaddr` set → the relay on port 67; a NAK → broadcast; `ciaddr` set → unicast to it;
/// the broadcast bit → broadcast; else unicast to `yiaddr` at `chaddr` if the driver can do
/// that (`link.unicast_to_mac`), else broadcast.
pub(crate) fn route(
    rx: &Received<'_>,
    req: &Repr<'_>,
    nak: bool,
    your_ip: Ipv4Addr,
    mac: [u8; 6],
    link: LinkCaps,
) -> Destination {
    if rx.dst.port() == PXE_PORT {
        Destination::Unicast(rx.src)
    } else if !req.relay_agent_ip.is_unspecified() {
        Destination::Unicast(SocketAddrV4::new(req.relay_agent_ip, SERVER_PORT))
    } else if nak {
        Destination::Broadcast { port: CLIENT_PORT }
    } else if !req.client_ip.is_unspecified() {
        Destination::Unicast(SocketAddrV4::new(req.client_ip, CLIENT_PORT))
    } else if req.flags.contains(Flags::BROADCAST)
        || !link.unicast_to_mac
        || your_ip.is_unspecified()
    {
        Destination::Broadcast { port: CLIENT_PORT }
    } else {
        Destination::UnicastToMac {
            ip: your_ip,
            mac,
            port: CLIENT_PORT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dhcp::{HwAddr, Op};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const YI: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    fn rx(port: u16) -> Received<'static> {
        Received {
            src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 68),
            dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, port),
            payload: &[],
        }
    }

    #[test]
    fn rfc2131_4_1_order() {
        let caps = LinkCaps {
            unicast_to_mac: true,
        };
        let mut req = Repr::new(Op::Request, 1, HwAddr::ethernet(MAC));
        assert_eq!(
            route(&rx(67), &req, false, YI, MAC, caps),
            Destination::UnicastToMac {
                ip: YI,
                mac: MAC,
                port: 68
            }
        );
        let no_arp = LinkCaps {
            unicast_to_mac: false,
        };
        assert_eq!(
            route(&rx(67), &req, false, YI, MAC, no_arp),
            Destination::Broadcast { port: 68 }
        );
        // Proxy replies have no yiaddr: broadcast.
        assert_eq!(
            route(&rx(67), &req, false, Ipv4Addr::UNSPECIFIED, MAC, caps),
            Destination::Broadcast { port: 68 }
        );
        req.flags = Flags::BROADCAST;
        assert_eq!(
            route(&rx(67), &req, false, YI, MAC, caps),
            Destination::Broadcast { port: 68 }
        );
        req.client_ip = Ipv4Addr::new(10, 0, 0, 7);
        assert_eq!(
            route(&rx(67), &req, false, YI, MAC, caps),
            Destination::Unicast(SocketAddrV4::new(req.client_ip, 68))
        );
        // NAK beats ciaddr.
        assert_eq!(
            route(&rx(67), &req, true, YI, MAC, caps),
            Destination::Broadcast { port: 68 }
        );
        // giaddr beats NAK.
        req.relay_agent_ip = Ipv4Addr::new(10, 1, 0, 1);
        assert_eq!(
            route(&rx(67), &req, true, YI, MAC, caps),
            Destination::Unicast(SocketAddrV4::new(req.relay_agent_ip, 67))
        );
        // Port 4011 beats everything: answer the source.
        assert_eq!(
            route(&rx(PXE_PORT), &req, false, YI, MAC, caps),
            Destination::Unicast(rx(0).src)
        );
    }
}
