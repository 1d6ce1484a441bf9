//! proxyDHCP (PXE spec 2.1 §2.2.5), the PXE boot server on port 4011 (§2.2.1), and the boot
//! information added to replies for PXE and UEFI HTTP boot clients.

use core::fmt::{self, Write as _};
use core::net::Ipv4Addr;

use super::{
    BootChoice, ClientClass, Commit, Ctx, DhcpServer, IgnoreReason, Plan, ProxyStrategy, Scratch,
    choose,
};
use crate::wire;
use crate::wire::dhcp::{MessageType, Repr};
use crate::wire::dhcp_option::{BootItem, DiscoveryControl, OptionBytes, PxeOptionWriter};

impl<'a> DhcpServer<'a> {
    /// Port 4011: the PXE boot server answers a DHCPREQUEST with a DHCPACK carrying the boot
    /// file, to the request's source (PXE spec 2.1 §2.2.1, docs/protocol.md §2 strategy A).
    pub(super) fn boot_server<'r>(
        &self,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<Plan<'r>, IgnoreReason>
    where
        'a: 'r,
    {
        if !matches!(ctx.msg, MessageType::Request | MessageType::Inform) {
            return Err(IgnoreReason::UnexpectedMessage);
        }
        if !ctx.info.is_boot_client() {
            return Err(IgnoreReason::NotPxeClient);
        }
        let choice = self
            .choose(self.cfg.boot, ctx)
            .ok_or(IgnoreReason::NoBootRule)?;
        let mut reply = self.base(ctx.req, MessageType::Ack);
        reply.client_ip = ctx.req.client_ip;
        let (url, name, vendor) = (
            &mut scratch.url,
            &mut scratch.server_name,
            &mut scratch.vendor,
        );
        self.add_boot(&mut reply, ctx, &choice, url, name)?;
        add_pxe_identity(&mut reply, ctx.req, &choice);
        // Echo the boot item (PXE_BOOT_ITEM, sub-option 71) the client asked for.
        let asked = ctx.req.vendor_specific.as_ref();
        if let Some(item) = asked.and_then(BootItem::from_vendor_options) {
            reply.vendor_specific = Some(pxe_options(vendor, |w| w.boot_item(item))?);
        }
        Ok(Plan {
            reply: Some(reply),
            nak: false,
            commit: Commit::Nothing,
        })
    }

    /// proxyDHCP on port 67 (PXE spec 2.1 §2.2.5).
    pub(super) fn proxy<'r>(
        &self,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
    ) -> Result<Plan<'r>, IgnoreReason>
    where
        'a: 'r,
    {
        if !ctx.info.is_boot_client() {
            return Err(IgnoreReason::NotPxeClient);
        }
        let kind = match ctx.msg {
            MessageType::Discover => MessageType::Offer,
            // Only a request that chose us (option 54) gets a proxy ACK; the address-giving
            // server answers the others, and PXE clients then come to port 4011 (BINL) or use
            // the file from our offer (option 43).
            MessageType::Request => match ctx.req.server_identifier {
                Some(id) if id == self.cfg.server_ip => MessageType::Ack,
                Some(_) => return Err(IgnoreReason::OtherServerId),
                None => return Err(IgnoreReason::NotAddressedToUs),
            },
            _ => return Err(IgnoreReason::UnexpectedMessage),
        };
        let choice = self
            .choose(self.cfg.boot, ctx)
            .ok_or(IgnoreReason::NoBootRule)?;
        let mut reply = self.base(ctx.req, kind);
        self.add_boot(
            &mut reply,
            ctx,
            &choice,
            &mut scratch.url,
            &mut scratch.server_name,
        )?;
        add_pxe_identity(&mut reply, ctx.req, &choice);
        if choice.class.is_pi() {
            reply.vendor_specific = Some(OptionBytes::new(&RPI_OPTION_43));
        } else if choice.proxy_strategy() == ProxyStrategy::Option43 {
            // "Boot the file in the offer" (PXE spec 2.1 §2.4.1.1).
            let flags = DiscoveryControl::BOOT_FILE_IN_OFFER;
            reply.vendor_specific = Some(pxe_options(&mut scratch.vendor, |w| {
                w.discovery_control(flags)
            })?);
        }
        Ok(Plan {
            reply: Some(reply),
            nak: false,
            commit: Commit::Nothing,
        })
    }

    /// Boot information for PXE/HTTP clients that have a rule in `boot` (the client's subnet's
    /// table); plain leases for everyone else.
    pub(super) fn add_boot_if_client<'r>(
        &self,
        reply: &mut Repr<'r>,
        ctx: &Ctx<'_, 'r>,
        scratch: &'r mut Scratch,
        boot: &'a [super::BootRule<'a>],
    ) -> Result<(), IgnoreReason>
    where
        'a: 'r,
    {
        if !ctx.info.is_boot_client() {
            return Ok(());
        }
        let Some(choice) = self.choose(boot, ctx) else {
            return Ok(());
        };
        self.add_boot(
            reply,
            ctx,
            &choice,
            &mut scratch.url,
            &mut scratch.server_name,
        )?;
        if choice.class.is_http() {
            reply.vendor_class_id = Some(OptionBytes::new(b"HTTPClient"));
        }
        if choice.class.is_pi() {
            // The bootloader only fetches files after a reply that names itself PXE and carries
            // its boot string (docs/raspberry-pi.md §1).
            reply.vendor_class_id = Some(OptionBytes::new(b"PXEClient"));
            reply.vendor_specific = Some(OptionBytes::new(&RPI_OPTION_43));
        }
        reply.client_uuid = ctx.req.client_uuid;
        Ok(())
    }

    /// The boot rule for the client ([`choose`]); an HTTP boot class takes its architecture's
    /// rule only while an HTTP server serves the root ([`DhcpConfig::http_port`]), since
    /// without one the URL would lead nowhere and the firmware had better try PXE.
    ///
    /// [`DhcpConfig::http_port`]: super::DhcpConfig::http_port
    ///
    /// The driver's rules for this machine ([`Machine::boot`](super::Machine::boot)) stand in
    /// for `boot`.
    fn choose<'r>(
        &self,
        boot: &'r [super::BootRule<'r>],
        ctx: &Ctx<'_, 'r>,
    ) -> Option<BootChoice<'r>> {
        let boot = ctx.machine.boot.unwrap_or(boot);
        choose(boot, &ctx.info, ctx.mac)
            .filter(|c| !c.is_http_fallback() || self.cfg.http_port.is_some())
    }

    /// `siaddr`, `file`, `sname` in the BOOTP header, plus 66/67 when asked (docs/protocol.md §2).
    pub(super) fn add_boot<'r>(
        &self,
        reply: &mut Repr<'r>,
        ctx: &Ctx<'_, 'r>,
        choice: &BootChoice<'r>,
        url: &'r mut [u8; 128],
        name_buf: &'r mut [u8; 16],
    ) -> Result<(), IgnoreReason>
    where
        'a: 'r,
    {
        let next_server = choice
            .rule
            .next_server
            .or(self.cfg.tftp_server)
            .unwrap_or(self.cfg.server_ip);
        let http_port = match (choice.class, self.cfg.http_port) {
            (class, port) if class.is_http() => Some(port.unwrap_or(HTTP_PORT)),
            (ClientClass::Ipxe, Some(port)) => Some(port),
            _ => None,
        };
        let file: &'r [u8] = if let Some(port) = http_port.filter(|_| !is_url(choice.rule.file)) {
            let path = choice.rule.file.trim_start_matches('/');
            let mut w = BufWriter { buf: url, len: 0 };
            w.write_str("http://")
                .and_then(|()| write_ipv4(&mut w, next_server))
                .and_then(|()| {
                    if port == HTTP_PORT {
                        Ok(())
                    } else {
                        w.write_str(":").and_then(|()| write_decimal(&mut w, port))
                    }
                })
                .and_then(|()| w.write_str("/"))
                .and_then(|()| w.write_str(path))
                .map_err(|_| IgnoreReason::BootFileTooLong)?;
            let len = w.len;
            url.get(..len).ok_or(IgnoreReason::BootFileTooLong)?
        } else if choice.class.is_pi() {
            // The rule names the Pi's boot directory, which the TFTP server maps the
            // bootloader's requests into; the ROM asks for this file first whatever `file` says.
            RPI_FIRST_FILE
        } else {
            choice.rule.file.as_bytes()
        };
        // The `file` field holds 128 bytes including the NUL (docs/protocol.md §2).
        if file.len() > 127 {
            return Err(IgnoreReason::BootFileTooLong);
        }
        reply.server_ip = next_server;
        reply.boot_file = file;
        let sname: &'r [u8] = self.cfg.server_name.map_or(&[], str::as_bytes);
        reply.server_name = sname.get(..63).unwrap_or(sname);
        if ctx.req.requested(wire::dhcp_option::code::BOOTFILE_NAME) {
            reply.bootfile_name = Some(OptionBytes::new(file));
        }
        if ctx.req.requested(wire::dhcp_option::code::TFTP_SERVER_NAME) {
            let name: &'r [u8] = if sname.is_empty() {
                let mut w = BufWriter {
                    buf: name_buf,
                    len: 0,
                };
                write_ipv4(&mut w, next_server).map_err(|_| IgnoreReason::BootFileTooLong)?;
                let len = w.len;
                name_buf.get(..len).unwrap_or(&[])
            } else {
                sname
            };
            reply.tftp_server_name = Some(OptionBytes::new(name));
        }
        Ok(())
    }
}

/// Options 60 (`PXEClient`/`HTTPClient`) and 97 (echoed) that make a reply a PXE reply
/// (PXE spec 2.1 §2.2.5; RFC 4578 §2.3).
fn add_pxe_identity<'r>(reply: &mut Repr<'r>, req: &Repr<'r>, choice: &BootChoice<'_>) {
    reply.vendor_class_id = Some(OptionBytes::new(if choice.class.is_http() {
        b"HTTPClient"
    } else {
        b"PXEClient"
    }));
    reply.client_uuid = req.client_uuid;
}

/// Option 43 holding the PXE sub-options `write` puts, written into `buf`.
fn pxe_options<'r>(
    buf: &'r mut [u8],
    write: impl FnOnce(&mut PxeOptionWriter<'_>) -> Result<(), wire::Error>,
) -> Result<OptionBytes<'r>, IgnoreReason> {
    let mut w = PxeOptionWriter::new(buf);
    // `Scratch::vendor` holds every sub-option set written here; an error means it does not.
    write(&mut w).map_err(IgnoreReason::Malformed)?;
    w.finish()
        .map(OptionBytes::new)
        .map_err(IgnoreReason::Malformed)
}

/// Option 43 for a Raspberry Pi (docs/raspberry-pi.md §1), as the Raspberry Pi documentation's
/// example reply has it: PXE_DISCOVERY_CONTROL 3 (no boot server discovery), PXE_MENU_PROMPT
/// (timeout 0, "PXE") and a PXE_BOOT_MENU item of type 0 described "Raspberry Pi Boot", the
/// string the bootloader looks for, with the three trailing spaces the Pi 3B's ROM needs (it
/// miscounts the string's length); later bootloaders find the string all the same (PXE spec
/// 2.1 §2.4.1.1, table 2-1).
const RPI_OPTION_43: [u8; 35] =
    *b"\x06\x01\x03\x0a\x04\x00PXE\x09\x17\x00\x00\x14Raspberry Pi Boot   \xff";

/// The file a Raspberry Pi's boot ROM asks for first (docs/raspberry-pi.md §1), sent as `file`.
const RPI_FIRST_FILE: &[u8] = b"bootcode.bin";

fn is_url(file: &str) -> bool {
    file.starts_with("http://") || file.starts_with("https://")
}

/// `core::fmt::Write` into a fixed buffer.
struct BufWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

/// Writes `ip` as a dotted quad without `core::fmt`'s machinery, which costs kilobytes of
/// flash on the smallest boards (the firmware otherwise links no formatting code).
fn write_ipv4(w: &mut BufWriter<'_>, ip: Ipv4Addr) -> fmt::Result {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            w.write_str(".")?;
        }
        let digits = [
            b'0' + octet / 100,
            b'0' + octet / 10 % 10,
            b'0' + octet % 10,
        ];
        let skip = match octet {
            100.. => 0,
            10.. => 1,
            _ => 2,
        };
        w.write_str(core::str::from_utf8(&digits[skip..]).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Writes `n` in decimal, like [`write_ipv4`] without `core::fmt`.
fn write_decimal(w: &mut BufWriter<'_>, n: u16) -> fmt::Result {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // `rest % 10` < 10 and `at` stays within the 5 digits a u16 has.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    w.write_str(core::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
}

/// The port `http://` URLs mean without one (RFC 9110 §4.2.1).
const HTTP_PORT: u16 = 80;

impl fmt::Write for BufWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;

    #[test]
    fn proxy_strategies_and_port_4011() {
        let mut s = DhcpServer::new(proxy(), &mut [][..]);
        // EFI: BINL, no option 43.
        let (dst, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(7))).reply();
        assert_eq!(dst, Destination::Broadcast { port: 68 });
        assert_eq!(offer.your_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(offer.message_type, Some(MessageType::Offer));
        assert_eq!(offer.vendor_class_id, Some(OptionBytes::new(b"PXEClient")));
        assert_eq!(offer.client_uuid, Some(OptionBytes::new(&[0; 17])));
        assert_eq!(offer.vendor_specific, None);
        assert_eq!(offer.lease_time, None);
        assert_eq!(offer.server_ip, SERVER);
        assert_eq!(offer.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        // BIOS: option 43 {6: 8}.
        let (_, offer) = send(&mut s, 0, &msg(MessageType::Discover, MAC, Some(0))).reply();
        assert_eq!(
            offer.vendor_specific,
            Some(OptionBytes::new(&[6, 1, 8, 255]))
        );
        assert_eq!(offer.boot_file, b"pxelinux.0");
        // Non-PXE clients are not ours to answer.
        assert_eq!(
            send(&mut s, 0, &msg(MessageType::Discover, MAC, None))
                .outcome
                .ignore_reason(),
            Some(IgnoreReason::NotPxeClient)
        );
        // REQUEST to the real server: ignored.
        let mut r = request(MAC, ip(127), Some(7));
        r.server_identifier = Some(ip(254));
        assert_eq!(
            send(&mut s, 0, &r).outcome.ignore_reason(),
            Some(IgnoreReason::OtherServerId)
        );
        // Port 4011: ACK to the source, with the boot item echoed.
        let mut r = msg(MessageType::Request, MAC, Some(7));
        r.client_ip = ip(127);
        r.vendor_specific = Some(OptionBytes::new(&[71, 4, 0x80, 0, 0, 0, 255]));
        let (dst, ack) = send_to(&mut s, 0, &r, PXE_PORT).reply();
        assert_eq!(
            dst,
            Destination::Unicast(SocketAddrV4::new(ip(127), PXE_PORT))
        );
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(ack.client_ip, ip(127));
        assert_eq!(ack.server_identifier, Some(SERVER));
        assert_eq!(ack.vendor_class_id, Some(OptionBytes::new(b"PXEClient")));
        assert_eq!(ack.boot_file, b"debian-installer/amd64/bootnetx64.efi");
        assert_eq!(
            ack.vendor_specific,
            Some(OptionBytes::new(&[71, 4, 0x80, 0, 0, 0, 255]))
        );
    }

    #[test]
    fn ipxe_gets_script_and_http_gets_url() {
        let mut s = DhcpServer::new(proxy(), &mut [][..]);
        let mut r = msg(MessageType::Discover, MAC, Some(0));
        r.user_class = Some(OptionBytes::new(b"iPXE"));
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"boot.ipxe");
        let mut r = msg(MessageType::Discover, MAC, None);
        r.vendor_class_id = Some(OptionBytes::new(b"HTTPClient:Arch:00016:UNDI:003001"));
        r.client_arch = Some(OptionBytes::new(&[0, 16]));
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.vendor_class_id, Some(OptionBytes::new(b"HTTPClient")));
        assert_eq!(offer.boot_file, b"http://192.168.242.1/boot/x64.efi");
        assert_eq!(offer.bootfile_name, Some(OptionBytes::new(offer.boot_file)));
    }

    /// An `HTTPClient` DISCOVER as EDK2's HttpBootDxe sends it (UEFI 2.x §24.7.2: option 60
    /// `HTTPClient:Arch:00016:UNDI:003001`, option 93 = 16, no option 43).
    fn http_discover(kind: MessageType, arch: u8) -> Repr<'static> {
        let mut r = msg(kind, MAC, None);
        r.vendor_class_id = Some(OptionBytes::new(if arch == 16 {
            b"HTTPClient:Arch:00016:UNDI:003001"
        } else {
            b"HTTPClient:Arch:00019:UNDI:003001"
        }));
        r.client_arch = Some(OptionBytes::new(if arch == 16 {
            &[0, 16]
        } else {
            &[0, 19]
        }));
        r
    }

    #[test]
    fn http_boot_in_both_modes_with_port_and_fallback() {
        const RULES: [BootRule<'static>; 3] = [
            BootRule::new(
                ClientClass::EfiX64,
                "/debian-installer/amd64/bootnetx64.efi",
            ),
            BootRule::new(
                ClientClass::EfiArm64,
                "debian-installer/arm64/bootnetaa64.efi",
            ),
            BootRule::new(ClientClass::Ipxe, "debian-installer/amd64/boot.ipxe"),
        ];
        for proxy_mode in [false, true] {
            let mut cfg = if proxy_mode { proxy() } else { auth(100, 110) };
            cfg.boot = &RULES;
            cfg.http_port = Some(8080);
            let mut slots = [LeaseSlot::EMPTY; 4];
            let mut s = DhcpServer::new(cfg, &mut slots[..]);
            let (_, offer) = send(&mut s, 0, &http_discover(MessageType::Discover, 16)).reply();
            assert_eq!(offer.message_type, Some(MessageType::Offer));
            assert_eq!(offer.vendor_class_id, Some(OptionBytes::new(b"HTTPClient")));
            assert_eq!(
                offer.boot_file,
                b"http://192.168.242.1:8080/debian-installer/amd64/bootnetx64.efi"
            );
            assert_eq!(offer.your_ip.is_unspecified(), proxy_mode);
            // No option 43: HTTP boot reads option 60 and the URL (UEFI 2.x §24.7.2).
            assert_eq!(offer.vendor_specific, None);
            let (_, offer) = send(&mut s, 0, &http_discover(MessageType::Discover, 19)).reply();
            assert_eq!(
                offer.boot_file,
                b"http://192.168.242.1:8080/debian-installer/arm64/bootnetaa64.efi"
            );
            // iPXE gets its script as a URL while an HTTP server runs.
            let mut r = msg(MessageType::Discover, MAC2, Some(0));
            r.user_class = Some(OptionBytes::new(b"iPXE"));
            let (_, offer) = send(&mut s, 0, &r).reply();
            assert_eq!(
                offer.boot_file,
                b"http://192.168.242.1:8080/debian-installer/amd64/boot.ipxe"
            );
            assert_ne!(offer.vendor_class_id, Some(OptionBytes::new(b"HTTPClient")));
        }
        // Without an HTTP server: an HTTP boot rule of its own still gives a URL (port 80, not
        // written), the architecture's rule is not used; iPXE gets a path.
        let mut cfg = proxy();
        cfg.boot = &RULES;
        let mut s = DhcpServer::new(cfg, &mut [][..]);
        assert_eq!(
            send(&mut s, 0, &http_discover(MessageType::Discover, 16))
                .outcome
                .ignore_reason(),
            Some(IgnoreReason::NoBootRule)
        );
        let mut own = RULES;
        own[2] = BootRule::new(ClientClass::EfiX64Http, "/efi/x64.efi");
        cfg.boot = &own;
        let mut s = DhcpServer::new(cfg, &mut [][..]);
        let (_, offer) = send(&mut s, 0, &http_discover(MessageType::Discover, 16)).reply();
        assert_eq!(offer.boot_file, b"http://192.168.242.1/efi/x64.efi");
        cfg.boot = &RULES;
        let mut s = DhcpServer::new(cfg, &mut [][..]);
        let mut r = msg(MessageType::Discover, MAC, Some(0));
        r.user_class = Some(OptionBytes::new(b"iPXE"));
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"debian-installer/amd64/boot.ipxe");
        // Port 80 given explicitly is not written either; a full URL is sent as it is.
        let mut cfg = proxy();
        cfg.http_port = Some(80);
        let mut s = DhcpServer::new(cfg, &mut [][..]);
        let (_, offer) = send(&mut s, 0, &r).reply();
        assert_eq!(offer.boot_file, b"http://192.168.242.1/boot.ipxe");
    }

    #[test]
    fn http_boot_in_dhcp_mode_full_exchange() {
        let mut cfg = auth(100, 110);
        cfg.http_port = Some(65535);
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut s = DhcpServer::new(cfg, &mut slots[..]);
        let (_, offer) = send(&mut s, 0, &http_discover(MessageType::Discover, 16)).reply();
        assert_eq!(offer.your_ip, ip(100));
        let mut r = http_discover(MessageType::Request, 16);
        r.requested_ip = Some(offer.your_ip);
        r.server_identifier = Some(SERVER);
        let (_, ack) = send(&mut s, 0, &r).reply();
        assert_eq!(ack.message_type, Some(MessageType::Ack));
        assert_eq!(ack.your_ip, ip(100));
        assert_eq!(ack.vendor_class_id, Some(OptionBytes::new(b"HTTPClient")));
        assert_eq!(ack.boot_file, b"http://192.168.242.1:65535/boot/x64.efi");
    }
}
