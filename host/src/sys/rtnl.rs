//! A small synchronous rtnetlink client (`NETLINK_ROUTE`, see `rtnetlink(7)`): the interface
//! facts `serve` needs, asked of the kernel itself.
//!
//! A netlink socket belongs to the network namespace its creator runs in when it is created,
//! so every answer here is about *this process's* namespace, however the process got into it
//! (`ip netns exec`, `nsenter --net`, systemd's `NetworkNamespacePath=`, a `setns` of its
//! own). `/sys/class/net` instead shows the namespace of whoever mounted `/sys`, which after a
//! bare `setns` is another one.
//!
//! Each call opens its own socket, sends one request and reads the answer; reads time out
//! after [`REPLY_TIMEOUT`], so no call can hang. Messages are built and parsed by the
//! `netlink-packet-route` crate.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::sys::netif::Ipv4Cidr;

/// One network interface as the kernel describes it (`RTM_NEWLINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its index (`ifindex`).
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up (`IFF_RUNNING`): up and with a carrier.
    pub running: bool,
    /// Its hardware address, when it has an Ethernet-sized one (loopback's is all zeroes;
    /// tunnels have none).
    pub mac: Option<[u8; 6]>,
}

/// How long to wait for each reply datagram before giving up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The interface called `name`; `None` if there is none (or the name cannot be one).
///
/// # Errors
/// The socket or the kernel failed for another reason than a missing interface.
pub fn link_by_name(name: &str) -> io::Result<Option<Link>> {
    if !valid_ifname(name) {
        return Ok(None);
    }
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    get_link(msg)
}

/// The interface with index `index`; `None` if there is none.
///
/// # Errors
/// The socket or the kernel failed for another reason than a missing interface.
pub fn link_by_index(index: u32) -> io::Result<Option<Link>> {
    // The kernel's `ifi_index` is a positive `int`.
    if index == 0 || i32::try_from(index).is_err() {
        return Ok(None);
    }
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    get_link(msg)
}

/// The IPv4 addresses of the interface with index `index`, in the kernel's order (primary
/// addresses first).
///
/// # Errors
/// The socket or the kernel failed.
pub fn ipv4_addresses(index: u32) -> io::Result<Vec<Ipv4Cidr>> {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    let replies = request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
    Ok(addresses_of(index, &replies))
}

/// Adds `cidr` to the interface with index `index`, as `ip addr add CIDR dev IFACE` does.
///
/// # Errors
/// The kernel's refusal, e.g. `EPERM` without `CAP_NET_ADMIN`, `EEXIST` if it is there.
pub fn add_ipv4_address(index: u32, cidr: Ipv4Cidr) -> io::Result<()> {
    let msg = address_message(index, cidr);
    request(
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    )
    .map(drop)
}

/// Removes `cidr` from the interface with index `index`, as `ip addr del CIDR dev IFACE` does.
///
/// # Errors
/// The kernel's refusal, e.g. `EPERM`, or `EADDRNOTAVAIL` if the address is not there.
pub fn del_ipv4_address(index: u32, cidr: Ipv4Cidr) -> io::Result<()> {
    let msg = address_message(index, cidr);
    request(RouteNetlinkMessage::DelAddress(msg), NLM_F_ACK).map(drop)
}

/// What a `RTM_NEWLINK` message says about its interface.
pub fn link_from_message(msg: &LinkMessage) -> Link {
    let mut name = String::new();
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Address(bytes) => mac = <[u8; 6]>::try_from(bytes.as_slice()).ok(),
            _ => {}
        }
    }
    Link {
        index: msg.header.index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up),
        running: msg.header.flags.contains(LinkFlags::Running),
        mac,
    }
}

/// The IPv4 addresses of interface `index` among `RTM_NEWADDR` replies. The address is
/// `IFA_LOCAL` (on a point-to-point link `IFA_ADDRESS` is the peer), else `IFA_ADDRESS`.
pub fn addresses_of(index: u32, replies: &[RouteNetlinkMessage]) -> Vec<Ipv4Cidr> {
    replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(msg)
                if msg.header.index == index && msg.header.family == AddressFamily::Inet =>
            {
                let v4 = |ip: &IpAddr| match ip {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                };
                let local = msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => v4(ip),
                    _ => None,
                });
                let address = msg.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => v4(ip),
                    _ => None,
                });
                let addr = local.or(address)?;
                (msg.header.prefix_len <= 32).then_some(Ipv4Cidr {
                    addr,
                    prefix: msg.header.prefix_len,
                })
            }
            _ => None,
        })
        .collect()
}

/// Whether the kernel could accept `name` as an interface name (`dev_valid_name`): 1 to 15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// Appends the messages of one reply datagram to `replies`; `Ok(true)` once the reply is
/// complete (`NLMSG_DONE`, or an `NLMSG_ERROR` of code 0, i.e. the acknowledgement). Messages
/// of another sequence number are skipped.
///
/// # Errors
/// An `NLMSG_ERROR`, or an `NLMSG_DONE` with an error code (as that OS error); a dump
/// interrupted by a concurrent change (`NLM_F_DUMP_INTR`, as [`io::ErrorKind::Interrupted`]);
/// a datagram that does not parse.
pub fn parse_datagram(
    datagram: &[u8],
    sequence: u32,
    replies: &mut Vec<RouteNetlinkMessage>,
) -> io::Result<bool> {
    let mut rest = datagram;
    while !rest.is_empty() {
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(rest)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        // Messages are aligned to 4 bytes (NLMSG_ALIGN).
        let len = (msg.header.length as usize).next_multiple_of(4);
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "rtnetlink message of length 0",
            ));
        }
        rest = rest.get(len..).unwrap_or_default();
        if msg.header.sequence_number != sequence {
            continue;
        }
        if msg.header.flags & NLM_F_DUMP_INTR != 0 {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "rtnetlink dump interrupted by a concurrent change",
            ));
        }
        match msg.payload {
            NetlinkPayload::Done(done) if done.code < 0 => {
                return Err(io::Error::from_raw_os_error(done.code.saturating_neg()));
            }
            NetlinkPayload::Done(_) => return Ok(true),
            NetlinkPayload::Error(err) => match err.code {
                None => return Ok(true),
                Some(_) => return Err(err.to_io()),
            },
            NetlinkPayload::InnerMessage(inner) => replies.push(inner),
            _ => {}
        }
    }
    Ok(false)
}

/// `RTM_GETLINK` for one interface: `ENODEV` means there is none.
fn get_link(msg: LinkMessage) -> io::Result<Option<Link>> {
    match request(RouteNetlinkMessage::GetLink(msg), 0) {
        Ok(replies) => Ok(replies.iter().find_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(link_from_message(link)),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The message that names `cidr` on interface `index`, as `ip addr` builds it: `IFA_LOCAL`
/// and `IFA_ADDRESS` both the address.
fn address_message(index: u32, cidr: Ipv4Cidr) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = cidr.prefix;
    msg.header.index = index;
    msg.attributes
        .push(AddressAttribute::Local(IpAddr::V4(cidr.addr)));
    msg.attributes
        .push(AddressAttribute::Address(IpAddr::V4(cidr.addr)));
    msg
}

/// Sends `payload` with `NLM_F_REQUEST | flags` and collects the replies: until `NLMSG_DONE`
/// for a dump, until the acknowledgement or the one answer otherwise. A dump that a concurrent
/// change interrupted (`NLM_F_DUMP_INTR`) is asked again, a few times at most.
fn request(payload: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut attempt = 1;
    loop {
        match request_once(payload.clone(), flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && attempt < DUMP_ATTEMPTS => {
                attempt += 1;
            }
            done => return done,
        }
    }
}

fn request_once(payload: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket2::SockRef::from(&socket).set_read_timeout(Some(REPLY_TIMEOUT))?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = SEQUENCE;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let multi = flags & NLM_F_DUMP == NLM_F_DUMP || flags & NLM_F_ACK != 0;
    let mut replies = Vec::new();
    // Bounded: a dump of this namespace's links or addresses is far smaller.
    for _ in 0..MAX_DATAGRAMS {
        let (datagram, _) = socket.recv_from_full().map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                io::Error::new(io::ErrorKind::TimedOut, "no rtnetlink reply in time")
            } else {
                e
            }
        })?;
        if parse_datagram(&datagram, SEQUENCE, &mut replies)? || !multi && !replies.is_empty() {
            return Ok(replies);
        }
    }
    Err(io::Error::other(format!(
        "rtnetlink reply longer than {MAX_DATAGRAMS} datagrams"
    )))
}

/// `IFNAMSIZ`: interface names are shorter.
const IFNAMSIZ: usize = 16;
/// Our requests' sequence number: one request per socket, so any fixed value identifies it.
const SEQUENCE: u32 = 1;
/// At most this many tries of a dump that concurrent changes interrupt.
const DUMP_ATTEMPTS: u32 = 3;
/// At most this many datagrams per reply.
const MAX_DATAGRAMS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage, NLM_F_MULTIPART};
    use std::net::Ipv4Addr;
    use std::num::NonZeroI32;

    fn datagram(messages: Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)>) -> Vec<u8> {
        datagram_with_flags(0, messages)
    }

    fn datagram_with_flags(
        flags: u16,
        messages: Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, payload) in messages {
            let mut header = NetlinkHeader::default();
            header.sequence_number = seq;
            header.flags = flags;
            let mut packet = NetlinkMessage::new(header, payload);
            packet.finalize();
            let mut buf = vec![0; packet.buffer_len()];
            packet.serialize(&mut buf);
            buf.resize(buf.len().next_multiple_of(4), 0);
            out.extend(buf);
        }
        out
    }

    fn link(index: u32, name: &str, flags: LinkFlags, mac: &[u8]) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = flags;
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg
    }

    fn address(index: u32, prefix: u8, attrs: Vec<AddressAttribute>) -> RouteNetlinkMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.index = index;
        msg.header.prefix_len = prefix;
        msg.attributes = attrs;
        RouteNetlinkMessage::NewAddress(msg)
    }

    #[test]
    fn link_facts_are_read() {
        let msg = link(
            7,
            "eth1",
            LinkFlags::Up | LinkFlags::Running | LinkFlags::Broadcast,
            &[0x52, 0x54, 0, 0xa5, 0, 1],
        );
        assert_eq!(
            link_from_message(&msg),
            Link {
                index: 7,
                name: "eth1".into(),
                up: true,
                running: true,
                mac: Some([0x52, 0x54, 0, 0xa5, 0, 1]),
            }
        );
        let down = link_from_message(&link(3, "tun0", LinkFlags::empty(), &[]));
        assert!(!down.up && !down.running);
        assert_eq!(down.mac, None, "no Ethernet-sized address");
        let up_no_carrier = link_from_message(&link(4, "br0", LinkFlags::Up, &[0; 6]));
        assert!(up_no_carrier.up && !up_no_carrier.running);
    }

    #[test]
    fn addresses_of_one_interface() {
        let a = |o: [u8; 4]| IpAddr::V4(Ipv4Addr::from(o));
        let replies = vec![
            address(
                2,
                24,
                vec![
                    AddressAttribute::Address(a([10, 0, 0, 5])),
                    AddressAttribute::Local(a([10, 0, 0, 5])),
                ],
            ),
            // Another interface.
            address(3, 8, vec![AddressAttribute::Local(a([10, 9, 9, 9]))]),
            // Point-to-point: IFA_ADDRESS is the peer, IFA_LOCAL ours.
            address(
                2,
                32,
                vec![
                    AddressAttribute::Address(a([192, 0, 2, 1])),
                    AddressAttribute::Local(a([192, 0, 2, 2])),
                ],
            ),
            // Only IFA_ADDRESS.
            address(2, 16, vec![AddressAttribute::Address(a([172, 16, 0, 1]))]),
            // Nothing usable, or a bad prefix: skipped.
            address(2, 24, vec![]),
            address(2, 40, vec![AddressAttribute::Local(a([10, 1, 1, 1]))]),
        ];
        assert_eq!(
            addresses_of(2, &replies),
            [
                "10.0.0.5/24".parse().unwrap(),
                "192.0.2.2/32".parse().unwrap(),
                "172.16.0.1/16".parse().unwrap(),
            ]
        );
        assert!(addresses_of(9, &replies).is_empty());
    }

    #[test]
    fn interface_names() {
        for good in ["eth0", "lo", "a", "enp0s31f6", "veth-0123456789"] {
            assert!(valid_ifname(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "eth0:1",
            "a b",
            "veth-01234567890",
            "x\n",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn datagrams_are_split_and_errors_surface() {
        let l = |i| {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link(
                i,
                "x",
                LinkFlags::Up,
                &[0; 6],
            )))
        };
        // Two answers, one of another request (skipped), no end yet.
        let mut replies = Vec::new();
        let d = datagram(vec![(1, l(1)), (9, l(9)), (1, l(2))]);
        assert!(!parse_datagram(&d, 1, &mut replies).unwrap());
        assert_eq!(replies.len(), 2);
        // The end of a dump.
        let d = datagram(vec![
            (1, l(3)),
            (1, NetlinkPayload::Done(DoneMessage::default())),
        ]);
        assert!(parse_datagram(&d, 1, &mut replies).unwrap());
        assert_eq!(replies.len(), 3);
        // An acknowledgement: error code 0.
        let ack = ErrorMessage::default();
        let d = datagram(vec![(1, NetlinkPayload::Error(ack))]);
        assert!(parse_datagram(&d, 1, &mut Vec::new()).unwrap());
        // A refusal: the errno comes back as the OS error.
        let mut nodev = ErrorMessage::default();
        nodev.code = NonZeroI32::new(-libc::ENODEV);
        let d = datagram(vec![(1, NetlinkPayload::Error(nodev))]);
        let err = parse_datagram(&d, 1, &mut Vec::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        // A dump that failed: NLMSG_DONE with an error code.
        let mut failed = DoneMessage::default();
        failed.code = -libc::EBUSY;
        let d = datagram(vec![(1, NetlinkPayload::Done(failed))]);
        let err = parse_datagram(&d, 1, &mut Vec::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
        // A dump a concurrent change interrupted: to be asked again.
        let d = datagram_with_flags(NLM_F_DUMP_INTR | NLM_F_MULTIPART, vec![(1, l(4))]);
        let err = parse_datagram(&d, 1, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        // Garbage: an error, never a panic.
        for junk in [&[1u8, 2, 3][..], &[0; 16], &[0xff; 40]] {
            assert!(parse_datagram(junk, 1, &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn loopback_from_the_kernel() {
        let lo = link_by_name("lo").unwrap().expect("lo exists");
        assert_eq!(lo.name, "lo");
        assert!(lo.up);
        assert_eq!(lo.mac, Some([0; 6]));
        assert_eq!(link_by_index(lo.index).unwrap(), Some(lo.clone()));
        let addrs = ipv4_addresses(lo.index).unwrap();
        assert!(addrs.contains(&"127.0.0.1/8".parse().unwrap()), "{addrs:?}");
        assert_eq!(link_by_name("nonexistent0").unwrap(), None);
        assert_eq!(link_by_name("../etc").unwrap(), None);
        assert_eq!(link_by_index(0x7fff_fff0).unwrap(), None);
        assert_eq!(link_by_index(u32::MAX).unwrap(), None);
    }
}
