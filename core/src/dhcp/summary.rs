//! [`Summary`]: what the server read from a client message and what it answered, so a driver
//! can log an exchange without parsing the datagram again.

use core::fmt;
use core::net::Ipv4Addr;

use super::{ClientClass, ClientInfo};
use crate::net::Mac;
use crate::wire::dhcp::{MessageType, Repr};
use crate::wire::dhcp_option::OptionBytes;

/// Bytes of option 12 (host name) kept in a [`Summary`]; longer names are cut.
pub const HOSTNAME_MAX: usize = 64;
/// Bytes of option 60 (vendor class) kept in a [`Summary`]; longer values are cut.
pub const VENDOR_CLASS_MAX: usize = 48;
/// Bytes of a boot file kept in a [`Summary`]: the whole BOOTP `file` field.
pub const BOOT_FILE_MAX: usize = 128;

/// One client message as the server saw it, and its reply if any. Carried by every
/// [`DhcpOutcome`](super::DhcpOutcome) of a message with a MAC address and a message type.
///
/// Text fields are the client's bytes as text: every byte other than printable ASCII becomes
/// `?` (host names and vendor classes are ASCII, RFC 2132 §3.14, §9.13), and anything past the
/// field's capacity is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The client's message type (option 53).
    pub request: MessageType,
    /// The reply's message type: OFFER, ACK or NAK; `None` if nothing was sent.
    pub reply: Option<MessageType>,
    /// The client's hardware address (`chaddr`).
    pub mac: Mac,
    /// The class the boot table sees: [`ClientClass::Ipxe`] for a client running iPXE, else
    /// the class of its architecture (option 93); `None` for a client that is neither.
    pub class: Option<ClientClass>,
    /// Option 60, as sent.
    pub vendor_class: Option<heapless::String<VENDOR_CLASS_MAX>>,
    /// Option 12, the client's host name (RFC 2132 §3.14).
    pub hostname: Option<heapless::String<HOSTNAME_MAX>>,
    /// The address the message is about: option 50, else `ciaddr`.
    pub requested_ip: Option<Ipv4Addr>,
    /// The reply's `yiaddr`: the address offered or acknowledged.
    pub your_ip: Option<Ipv4Addr>,
    /// The reply's `ciaddr` (renewals, DHCPINFORM, the port-4011 boot server).
    pub client_ip: Option<Ipv4Addr>,
    /// The reply's `siaddr`: the server to fetch the boot file from.
    pub next_server: Option<Ipv4Addr>,
    /// The reply's boot file (`file`): a path on the TFTP server, or a URL for HTTP boot.
    pub boot_file: Option<heapless::String<BOOT_FILE_MAX>>,
}

impl Summary {
    /// The address the reply gives or confirms: `yiaddr`, else `ciaddr`.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.your_ip.or(self.client_ip)
    }

    /// Whether the reply is a DHCPACK that binds [`address`](Self::address) to the client.
    pub fn is_ack(&self) -> bool {
        self.reply == Some(MessageType::Ack)
    }

    /// The summary of `req` from `mac` (message type `request`, classified as `info`) and of
    /// its `reply`, if one is sent.
    pub(super) fn new(
        req: &Repr<'_>,
        mac: [u8; 6],
        request: MessageType,
        info: &ClientInfo,
        reply: Option<&Repr<'_>>,
    ) -> Self {
        let mut summary = Self {
            request,
            reply: None,
            mac: Mac(mac),
            class: if info.ipxe {
                Some(ClientClass::Ipxe)
            } else {
                info.arch_class
            },
            vendor_class: None,
            hostname: None,
            requested_ip: req.requested_ip.or(nonzero(req.client_ip)),
            your_ip: None,
            client_ip: None,
            next_server: None,
            boot_file: None,
        };
        if let Some(value) = &req.vendor_class_id {
            summary.vendor_class = Some(heapless::String::new());
            if let Some(out) = &mut summary.vendor_class {
                text(value.parts(), out.as_mut_view());
            }
        }
        if let Some(value) = &req.host_name {
            summary.hostname = Some(heapless::String::new());
            if let Some(out) = &mut summary.hostname {
                text(value.parts(), out.as_mut_view());
            }
        }
        if let Some(reply) = reply {
            summary.reply = reply.message_type;
            summary.your_ip = nonzero(reply.your_ip);
            summary.client_ip = nonzero(reply.client_ip);
            summary.next_server = nonzero(reply.server_ip);
            if !reply.boot_file.is_empty() {
                summary.boot_file = Some(heapless::String::new());
                if let Some(out) = &mut summary.boot_file {
                    text(OptionBytes::new(reply.boot_file).parts(), out.as_mut_view());
                }
            }
        }
        summary
    }
}

/// `DISCOVER from 52:54:00:12:34:56 (efi-x64, "pc1") -> OFFER 192.168.1.10 file "boot.efi"`.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {}", self.request, self.mac)?;
        match (self.class, &self.hostname) {
            (Some(class), Some(host)) => write!(f, " ({class}, {host:?})")?,
            (Some(class), None) => write!(f, " ({class})")?,
            (None, Some(host)) => write!(f, " ({host:?})")?,
            (None, None) => {}
        }
        let Some(reply) = self.reply else {
            return Ok(());
        };
        write!(f, " -> {reply}")?;
        if let Some(ip) = self.address() {
            write!(f, " {ip}")?;
        }
        if let Some(file) = &self.boot_file {
            write!(f, " file {file:?}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Summary {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{} from {}", self.request, self.mac);
        if let Some(class) = self.class {
            defmt::write!(f, " ({=str})", class.name());
        }
        if let Some(host) = &self.hostname {
            defmt::write!(f, " host {=str}", host.as_str());
        }
        if let Some(reply) = self.reply {
            defmt::write!(f, " -> {}", reply);
            if let Some(ip) = self.address() {
                defmt::write!(f, " {}", ip);
            }
            if let Some(file) = &self.boot_file {
                defmt::write!(f, " file {=str}", file.as_str());
            }
        }
    }
}

fn nonzero(ip: Ipv4Addr) -> Option<Ipv4Addr> {
    (!ip.is_unspecified()).then_some(ip)
}

/// Appends a client's bytes to `out` as text (see [`Summary`]), as many as fit.
fn text<'p>(parts: impl Iterator<Item = &'p [u8]>, out: &mut heapless::string::StringView) {
    for part in parts {
        let room = out.capacity() - out.len();
        let part = part.get(..room).unwrap_or(part);
        // Printable ASCII, as host names, vendor classes and file names usually are, is copied
        // whole; anything else byte by byte.
        if let Some(ascii) = part
            .iter()
            .all(|&b| printable(b))
            .then(|| core::str::from_utf8(part).ok())
            .flatten()
        {
            // Cannot fail: at most `room` bytes.
            let _ = out.push_str(ascii);
            continue;
        }
        for &b in part {
            let _ = out.push(if printable(b) { char::from(b) } else { '?' });
        }
    }
}

fn printable(b: u8) -> bool {
    b.is_ascii_graphic() || b == b' '
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{DhcpOutcome, DhcpServer, IgnoreReason, LeaseSlot, PXE_PORT};
    use super::*;

    /// A DHCPDISCOVER of a UEFI x64 machine running iPXE (options 93 = 7, 77 = `iPXE`, 12).
    fn ipxe_uefi_discover() -> Repr<'static> {
        let mut r = msg(MessageType::Discover, MAC, Some(7));
        r.vendor_class_id = Some(OptionBytes::new(b"PXEClient:Arch:00007:UNDI:003010"));
        r.user_class = Some(OptionBytes::new(b"iPXE"));
        r.host_name = Some(OptionBytes::new(b"lab-pc1"));
        r
    }

    #[test]
    fn offer_to_a_uefi_ipxe_client_is_summarised() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let out = send(&mut s, 0, &ipxe_uefi_discover());
        let summary = out.outcome.summary().expect("a summary").clone();
        let (_, offer) = out.reply();
        assert_eq!(summary.request, MessageType::Discover);
        assert_eq!(summary.reply, Some(MessageType::Offer));
        assert_eq!(summary.mac, Mac(MAC));
        assert_eq!(
            summary.class,
            Some(ClientClass::Ipxe),
            "iPXE wins over arch 7"
        );
        assert_eq!(
            summary.vendor_class.as_deref(),
            Some("PXEClient:Arch:00007:UNDI:003010")
        );
        assert_eq!(summary.hostname.as_deref(), Some("lab-pc1"));
        assert_eq!(summary.your_ip, Some(ip(88)));
        assert_eq!(summary.your_ip, Some(offer.your_ip));
        assert_eq!(summary.address(), Some(ip(88)));
        assert_eq!(summary.next_server, Some(SERVER));
        assert_eq!(summary.boot_file.as_deref(), Some("boot.ipxe"));
        assert!(!summary.is_ack());
        assert_eq!(
            std::format!("{summary}"),
            "DISCOVER from 52:54:00:a5:00:01 (ipxe, \"lab-pc1\") -> OFFER 192.168.242.88 \
             file \"boot.ipxe\""
        );
    }

    #[test]
    fn summaries_of_port_4011_acks_releases_and_ignored_requests() {
        // Port 4011: the ACK confirms ciaddr and names the UEFI file.
        let mut s = DhcpServer::new(proxy(), &mut [][..]);
        let mut r = msg(MessageType::Request, MAC, Some(7));
        r.client_ip = ip(50);
        let out = send_to(&mut s, 0, &r, PXE_PORT);
        let summary = out.outcome.summary().expect("a summary");
        assert_eq!(summary.class, Some(ClientClass::EfiX64));
        assert_eq!(summary.hostname, None);
        assert!(summary.is_ack());
        assert_eq!((summary.your_ip, summary.address()), (None, Some(ip(50))));
        assert_eq!(
            summary.boot_file.as_deref(),
            Some("debian-installer/amd64/bootnetx64.efi")
        );
        // A plain client ignored by a proxy still names itself and the address it asks for.
        let mut r = request(MAC2, ip(60), None);
        r.server_identifier = Some(ip(254));
        let out = send(&mut s, 0, &r);
        assert_eq!(
            out.outcome.ignore_reason(),
            Some(IgnoreReason::NotPxeClient)
        );
        let summary = out.outcome.summary().expect("a summary");
        assert_eq!(
            (summary.mac, summary.class, summary.requested_ip),
            (Mac(MAC2), None, Some(ip(60)))
        );
        assert_eq!((summary.reply, summary.boot_file.as_ref()), (None, None));
        // A DHCPRELEASE: handled, no reply.
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(auth(88, 99), &mut slots[..]);
        let _ = send(&mut s, 0, &request(MAC, ip(88), None));
        let mut release = msg(MessageType::Release, MAC, None);
        release.client_ip = ip(88);
        let out = send(&mut s, 1, &release);
        let DhcpOutcome::Handled { summary } = out.outcome else {
            panic!("{:?}", out.outcome)
        };
        assert_eq!(
            (summary.request, summary.reply, summary.requested_ip),
            (MessageType::Release, None, Some(ip(88)))
        );
        assert_eq!(std::format!("{summary}"), "RELEASE from 52:54:00:a5:00:01");
    }

    #[test]
    fn text_keeps_printable_ascii_and_stops_at_capacity() {
        fn text_of<const N: usize>(bytes: &[u8]) -> heapless::String<N> {
            let mut out = heapless::String::new();
            text(OptionBytes::new(bytes).parts(), out.as_mut_view());
            out
        }
        assert_eq!(text_of::<16>(b"pc-1 \n\xff\xfe~").as_str(), "pc-1 ???~");
        assert_eq!(text_of::<16>("é".as_bytes()).as_str(), "??");
        assert_eq!(text_of::<4>(b"abcdef").as_str(), "abcd");
    }
}
