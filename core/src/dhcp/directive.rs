//! Per-client decisions a driver takes before the server answers: machine records.
//!
//! The configuration ([`DhcpConfig`](super::DhcpConfig)) is the same for every client. A driver
//! that keeps records of single machines (an operator's list, a provisioning API) looks the
//! client's MAC up (`chaddr`, [`client_mac`]) and hands the server a [`Directive`] with the
//! datagram ([`DhcpServer::handle_for`](super::DhcpServer::handle_for)): ignore this client,
//! give it this address and host name, boot it with these rules or with none. Nothing is
//! stored: the next request gets the directive the driver looks up then.

use core::net::Ipv4Addr;

use super::BootRule;
use crate::wire::dhcp::{HwAddr, Packet};

/// What the driver decided for the client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Directive<'d> {
    /// Answer as the configuration says.
    #[default]
    Default,
    /// Answer nothing, on any port ([`IgnoreReason::Directed`](super::IgnoreReason::Directed)):
    /// to this client the server is not there.
    Ignore,
    /// Answer with this machine's settings.
    Machine(Machine<'d>),
}

/// One machine's settings, each overriding the configuration for this client only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Machine<'d> {
    /// Its fixed address (authoritative mode), offered first and acknowledged as a
    /// [`Reservation`](super::Reservation)'s is, if it lies in the client's subnet. Unlike a
    /// reservation, other clients are not kept off it: the driver keeps it out of the pool.
    pub address: Option<Ipv4Addr>,
    /// Option 12 in authoritative replies (RFC 2132 §3.14).
    pub hostname: Option<&'d str>,
    /// The boot rules for this client instead of the boot table; `Some(&[])` sends no boot
    /// information at all: a PXE client's firmware then moves on to its next boot device
    /// (in proxy mode and on port 4011, no reply; with an address, a lease without a file).
    /// `None`: the boot table.
    pub boot: Option<&'d [BootRule<'d>]>,
}

/// The client MAC (`chaddr`) of a DHCP datagram, for the driver's lookup; `None` if the
/// datagram is too short or not Ethernet (the server ignores those anyway).
pub fn client_mac(payload: &[u8]) -> Option<[u8; 6]> {
    let packet = Packet::new_checked(payload).ok()?;
    let hlen = usize::from(packet.hardware_len());
    HwAddr::new(packet.hardware_type(), packet.client_hw_addr().get(..hlen)?)?.mac()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{ClientClass, DhcpServer, IgnoreReason, LeaseSlot, PXE_PORT, Reservation};
    use super::*;

    fn send_for(s: &mut DhcpServer<'_>, r: &Repr<'_>, port: u16, d: Directive<'_>) -> Out {
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(client_mac(&buf), r.client_hw_addr.mac());
        let rx = Received {
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            dst: SocketAddrV4::new(SERVER, port),
            payload: &buf,
        };
        let mut tx = vec![0u8; 1500];
        let outcome = s.handle_for(Instant::ZERO, &rx, &mut tx, d).unwrap();
        Out { outcome, bytes: tx }
    }

    #[test]
    fn ignore_answers_nothing_on_any_port_or_mode() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let discover = msg(MessageType::Discover, MAC, Some(7));
        let out = send_for(&mut s, &discover, 67, Directive::Ignore);
        assert_eq!(out.outcome.ignore_reason(), Some(IgnoreReason::Directed));
        assert_eq!(s.poll_timeout(), None, "no offer held");
        let out = send_for(
            &mut s,
            &request(MAC, ip(88), Some(7)),
            PXE_PORT,
            Directive::Ignore,
        );
        assert_eq!(out.outcome.ignore_reason(), Some(IgnoreReason::Directed));
        let mut p = DhcpServer::new(proxy(), &mut [][..]);
        let out = send_for(&mut p, &discover, 67, Directive::Ignore);
        assert_eq!(out.outcome.ignore_reason(), Some(IgnoreReason::Directed));
        // Another client, or the same one without the directive, is answered.
        send_for(&mut p, &discover, 67, Directive::Default).reply();
        send_for(
            &mut s,
            &msg(MessageType::Discover, MAC2, Some(7)),
            67,
            Directive::Ignore,
        );
    }

    #[test]
    fn machine_rules_replace_the_table_and_empty_rules_boot_nothing() {
        let rules = [
            BootRule::new(ClientClass::EfiX64, "ipxe.efi"),
            BootRule::new(ClientClass::Ipxe, "http://192.168.242.1/machines/a.ipxe"),
        ];
        let mine = Directive::Machine(Machine {
            boot: Some(&rules),
            ..Machine::default()
        });
        let none = Directive::Machine(Machine {
            boot: Some(&[]),
            ..Machine::default()
        });
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let discover = msg(MessageType::Discover, MAC, Some(7));
        let (_, offer) = send_for(&mut s, &discover, 67, mine).reply();
        assert_eq!(offer.boot_file, b"ipxe.efi");
        let mut ipxe = discover;
        ipxe.user_class = Some(OptionBytes::new(b"iPXE"));
        let (_, offer) = send_for(&mut s, &ipxe, 67, mine).reply();
        assert_eq!(offer.boot_file, b"http://192.168.242.1/machines/a.ipxe");
        // No boot: an address, no file, no PXE identity.
        let (_, offer) = send_for(&mut s, &discover, 67, none).reply();
        assert_eq!((offer.your_ip, offer.boot_file), (ip(88), &b""[..]));
        assert_eq!(offer.vendor_class_id, None);
        // The table again without the directive.
        let (_, offer) = send_for(&mut s, &discover, 67, Directive::Default).reply();
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        // Proxy mode and port 4011: no boot, no reply.
        let mut p = DhcpServer::new(proxy(), &mut [][..]);
        let out = send_for(&mut p, &discover, 67, none);
        assert_eq!(out.outcome.ignore_reason(), Some(IgnoreReason::NoBootRule));
        let (_, offer) = send_for(&mut p, &discover, 67, mine).reply();
        assert_eq!(offer.boot_file, b"ipxe.efi");
        let out = send_for(&mut p, &request(MAC, ip(88), Some(7)), PXE_PORT, none);
        assert_eq!(out.outcome.ignore_reason(), Some(IgnoreReason::NoBootRule));
    }

    #[test]
    fn machine_address_and_hostname() {
        let d = Directive::Machine(Machine {
            address: Some(ip(20)),
            hostname: Some("node-1"),
            boot: None,
        });
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let (_, offer) = send_for(&mut s, &msg(MessageType::Discover, MAC, None), 67, d).reply();
        assert_eq!(offer.your_ip, ip(20), "outside the pool, still offered");
        assert_eq!(
            offer.host_name.map(|h| h.bytes().collect::<Vec<_>>()),
            Some(b"node-1".to_vec())
        );
        let (_, ack) = send_for(&mut s, &request(MAC, ip(20), None), 67, d).reply();
        assert_eq!(
            (ack.message_type, ack.your_ip),
            (Some(MessageType::Ack), ip(20))
        );
        // Without the directive the address is not this client's: NAK.
        let mut s2slots = [LeaseSlot::EMPTY; 4];
        let mut s2 = DhcpServer::new(auth(88, 99), &mut s2slots[..]);
        let (_, nak) =
            send_for(&mut s2, &request(MAC, ip(20), None), 67, Directive::Default).reply();
        assert_eq!(nak.message_type, Some(MessageType::Nak));
        // An address outside the client's subnet is not offered: the pool is.
        let far = Directive::Machine(Machine {
            address: Some(Ipv4Addr::new(10, 9, 9, 9)),
            ..Machine::default()
        });
        let (_, offer) =
            send_for(&mut s2, &msg(MessageType::Discover, MAC2, None), 67, far).reply();
        assert_eq!(offer.your_ip, ip(88));
        // The machine's address wins over a reservation of the same MAC.
        let res = [Reservation {
            mac: MAC,
            ip: ip(30),
        }];
        let mut cfg = auth(88, 99);
        cfg.reservations = &res;
        let mut s3slots = [LeaseSlot::EMPTY; 4];
        let mut s3 = DhcpServer::new(cfg, &mut s3slots[..]);
        let (_, offer) = send_for(&mut s3, &msg(MessageType::Discover, MAC, None), 67, d).reply();
        assert_eq!(offer.your_ip, ip(20));
    }
}
