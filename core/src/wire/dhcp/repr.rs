//! [`Repr`]: a parsed DHCP message, and its emitter (RFC 2131 §2, RFC 2132, RFC 3396).

use core::net::Ipv4Addr;

use super::{
    Flags, HEADER_LEN, HwAddr, MAGIC_COOKIE, MIN_MESSAGE_LEN, MessageType, Op, Packet, field,
};
use crate::wire::Error;
use crate::wire::dhcp_option::{AddrList, OptionBytes, OptionWriter, Options, code, encoded_len};

/// A parsed DHCP message: header fields plus the options pocketpxe understands.
///
/// Long options split over several TLVs (RFC 3396) are kept as [`OptionBytes`] that read across
/// the pieces. Options not listed here are skipped on parse (their TLV structure is still
/// checked) and not emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Repr<'a> {
    /// `op`.
    pub op: Op,
    /// `htype`, `hlen`, `chaddr`.
    pub client_hw_addr: HwAddr,
    /// `hops`.
    pub hops: u8,
    /// `xid`.
    pub transaction_id: u32,
    /// `secs`.
    pub secs: u16,
    /// `flags`: only [`Flags::BROADCAST`] is defined; the other bits are zero (RFC 2131 §2).
    pub flags: Flags,
    /// `ciaddr`.
    pub client_ip: Ipv4Addr,
    /// `yiaddr`.
    pub your_ip: Ipv4Addr,
    /// `siaddr`: the next (TFTP) server.
    pub server_ip: Ipv4Addr,
    /// `giaddr`.
    pub relay_agent_ip: Ipv4Addr,
    /// `sname` up to its first NUL (empty when overloaded).
    pub server_name: &'a [u8],
    /// `file` up to its first NUL (empty when overloaded).
    pub boot_file: &'a [u8],
    /// Option 53. `None` means a plain BOOTP message.
    pub message_type: Option<MessageType>,
    /// Option 54.
    pub server_identifier: Option<Ipv4Addr>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 61.
    pub client_identifier: Option<OptionBytes<'a>>,
    /// Option 55.
    pub parameter_request_list: Option<OptionBytes<'a>>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 58 (T1), seconds.
    pub renewal_time: Option<u32>,
    /// Option 59 (T2), seconds.
    pub rebinding_time: Option<u32>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3 (the first router only).
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Option<AddrList<'a>>,
    /// Option 28.
    pub broadcast_address: Option<Ipv4Addr>,
    /// Option 56.
    pub message: Option<OptionBytes<'a>>,
    /// Option 12: the client's host name (RFC 2132 §3.14).
    pub host_name: Option<OptionBytes<'a>>,
    /// Option 60.
    pub vendor_class_id: Option<OptionBytes<'a>>,
    /// Option 43 (PXE: encapsulated sub-options, PXE spec 2.1 §2.4).
    pub vendor_specific: Option<OptionBytes<'a>>,
    /// Option 66.
    pub tftp_server_name: Option<OptionBytes<'a>>,
    /// Option 67.
    pub bootfile_name: Option<OptionBytes<'a>>,
    /// Option 77 (RFC 3004).
    pub user_class: Option<OptionBytes<'a>>,
    /// Option 93 (RFC 4578 §2.1): a list of big-endian u16 architecture codes.
    pub client_arch: Option<OptionBytes<'a>>,
    /// Option 94 (RFC 4578 §2.2).
    pub client_ndi: Option<OptionBytes<'a>>,
    /// Option 97 (RFC 4578 §2.3).
    pub client_uuid: Option<OptionBytes<'a>>,
    /// Option 175 (iPXE).
    pub ipxe_encap: Option<OptionBytes<'a>>,
    /// Option 82, the relay agent information (RFC 3046): sub-options, kept whole. Emitted
    /// last, as RFC 3046 §2.2 asks of a server echoing it.
    pub relay_agent_info: Option<OptionBytes<'a>>,
}

impl<'a> Repr<'a> {
    /// A message with the given header basics and every other field empty.
    pub const fn new(op: Op, transaction_id: u32, client_hw_addr: HwAddr) -> Self {
        Self {
            op,
            client_hw_addr,
            hops: 0,
            transaction_id,
            secs: 0,
            flags: Flags::empty(),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            server_name: &[],
            boot_file: &[],
            message_type: None,
            server_identifier: None,
            requested_ip: None,
            client_identifier: None,
            parameter_request_list: None,
            max_message_size: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            subnet_mask: None,
            router: None,
            dns_servers: None,
            broadcast_address: None,
            message: None,
            host_name: None,
            vendor_class_id: None,
            vendor_specific: None,
            tftp_server_name: None,
            bootfile_name: None,
            user_class: None,
            client_arch: None,
            client_ndi: None,
            client_uuid: None,
            ipxe_encap: None,
            relay_agent_info: None,
        }
    }

    /// Parses a checked packet.
    ///
    /// # Errors
    /// [`Error::UnknownOpcode`] for an `op` other than 1 or 2, [`Error::BadValue`] for `hlen`
    /// over 16, [`Error::BadMagic`] without the cookie, [`Error::BadOption`] for a malformed
    /// option area or a known option with an impossible length.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, Error> {
        let packet = Packet::new_checked(packet.into_inner())?;
        let op = match packet.op() {
            1 => Op::Request,
            2 => Op::Reply,
            code => {
                return Err(Error::UnknownOpcode {
                    code: u16::from(code),
                });
            }
        };
        let hlen = usize::from(packet.hardware_len());
        let chaddr = packet.client_hw_addr().get(..hlen).ok_or(Error::BadValue)?;
        let client_hw_addr = HwAddr::new(packet.hardware_type(), chaddr).ok_or(Error::BadValue)?;
        if packet.magic_number() != MAGIC_COOKIE {
            return Err(Error::BadMagic);
        }
        let view = packet;
        let buf: &'a [u8] = packet.into_inner();
        let sname = buf.get(field::SNAME).unwrap_or(&[]);
        let file = buf.get(field::FILE).unwrap_or(&[]);
        let options = Options::with_overload(buf.get(field::OPTIONS..).unwrap_or(&[]), file, sname);
        let mut repr = Self::new(op, view.transaction_id(), client_hw_addr);
        repr.hops = view.hops();
        repr.secs = view.secs();
        repr.flags = view.flags() & Flags::BROADCAST;
        repr.client_ip = view.client_ip();
        repr.your_ip = view.your_ip();
        repr.server_ip = view.server_ip();
        repr.relay_agent_ip = view.relay_agent_ip();
        if !options.sname_overloaded() {
            repr.server_name = until_nul(sname);
        }
        if !options.file_overloaded() {
            repr.boot_file = until_nul(file);
        }

        for opt in options.iter() {
            let opt = opt?;
            let slot = match opt.code {
                code::CLIENT_IDENTIFIER => &mut repr.client_identifier,
                code::PARAMETER_REQUEST_LIST => &mut repr.parameter_request_list,
                code::MESSAGE => &mut repr.message,
                code::HOST_NAME => &mut repr.host_name,
                code::VENDOR_CLASS_ID => &mut repr.vendor_class_id,
                code::VENDOR_SPECIFIC => &mut repr.vendor_specific,
                code::TFTP_SERVER_NAME => &mut repr.tftp_server_name,
                code::BOOTFILE_NAME => &mut repr.bootfile_name,
                code::USER_CLASS => &mut repr.user_class,
                code::CLIENT_ARCH => &mut repr.client_arch,
                code::CLIENT_NDI => &mut repr.client_ndi,
                code::CLIENT_UUID => &mut repr.client_uuid,
                code::IPXE_ENCAP => &mut repr.ipxe_encap,
                code::RELAY_AGENT_INFO => &mut repr.relay_agent_info,
                code::OVERLOAD => {
                    if !matches!(opt.data, [1..=3]) {
                        return Err(Error::BadOption { code: opt.code });
                    }
                    continue;
                }
                _ => continue,
            };
            *slot = Some(match slot {
                None => OptionBytes::new(opt.data),
                Some(_) => OptionBytes::split(options, opt.code),
            });
        }

        // Fixed-size options: read the (possibly split) full value, check its length.
        let fixed = |code: u8| -> Result<Option<[u8; 4]>, Error> {
            let Some(value) = options.get(code)? else {
                return Ok(None);
            };
            let mut buf = [0u8; 4];
            let bytes = value
                .copy_into(&mut buf)
                .map_err(|_| Error::BadOption { code })?;
            let want = match code {
                code::MESSAGE_TYPE => 1,
                code::MAX_MESSAGE_SIZE => 2,
                _ => 4,
            };
            if bytes.len() != want {
                return Err(Error::BadOption { code });
            }
            Ok(Some(buf))
        };
        let addr = |code| fixed(code).map(|v| v.map(Ipv4Addr::from));
        let secs = |code| fixed(code).map(|v| v.map(u32::from_be_bytes));
        repr.message_type = fixed(code::MESSAGE_TYPE)?.map(|[t, ..]| MessageType::from(t));
        repr.server_identifier = addr(code::SERVER_IDENTIFIER)?;
        repr.requested_ip = addr(code::REQUESTED_IP)?;
        repr.max_message_size =
            fixed(code::MAX_MESSAGE_SIZE)?.map(|[a, b, ..]| u16::from_be_bytes([a, b]));
        repr.lease_time = secs(code::LEASE_TIME)?;
        repr.renewal_time = secs(code::RENEWAL_TIME)?;
        repr.rebinding_time = secs(code::REBINDING_TIME)?;
        repr.subnet_mask = addr(code::SUBNET_MASK)?;
        repr.broadcast_address = addr(code::BROADCAST_ADDRESS)?;

        // Address lists: non-empty, a multiple of 4.
        if let Some(routers) = options.get(code::ROUTER)? {
            let mut it = AddrList::Wire(routers).iter();
            if routers.len() % 4 != 0 {
                return Err(Error::BadOption { code: code::ROUTER });
            }
            repr.router = Some(it.next().ok_or(Error::BadOption { code: code::ROUTER })?);
        }
        if let Some(dns) = options.get(code::DNS_SERVERS)? {
            if dns.is_empty() || dns.len() % 4 != 0 {
                return Err(Error::BadOption {
                    code: code::DNS_SERVERS,
                });
            }
            repr.dns_servers = Some(AddrList::Wire(dns));
        }
        if repr.client_arch.is_some_and(|a| a.len() % 2 != 0) {
            return Err(Error::BadOption {
                code: code::CLIENT_ARCH,
            });
        }
        Ok(repr)
    }

    /// Whether option `code` is in the parameter request list (option 55, RFC 2132 §9.8).
    pub fn requested(&self, code: u8) -> bool {
        self.parameter_request_list
            .is_some_and(|list| list.contains(code))
    }

    /// The bytes [`emit`](Self::emit) writes: header, options, End, padded to
    /// [`MIN_MESSAGE_LEN`].
    pub fn buffer_len(&self) -> usize {
        (HEADER_LEN + self.options_len() + 1).max(MIN_MESSAGE_LEN)
    }

    /// Emits the message into `packet`, which must hold at least
    /// [`buffer_len`](Self::buffer_len) bytes; zero-fills the rest of the used region. Option 53
    /// and 54 come first; long values are split (RFC 3396); option 52 is never used.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than `buffer_len()`, [`Error::TooLong`] if
    /// `sname` exceeds 64 or `file` 128 bytes. Nothing is written then.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        let len = self.buffer_len();
        if packet.bytes().len() < len {
            return Err(Error::Truncated);
        }
        if self.server_name.len() > 64 || self.boot_file.len() > 128 {
            return Err(Error::TooLong);
        }
        let mut packet = Packet::new_unchecked(&mut packet.bytes_mut()[..len]);
        packet.set_op(match self.op {
            Op::Request => 1,
            Op::Reply => 2,
        });
        packet.set_hardware_type(self.client_hw_addr.hw_type());
        let hw = self.client_hw_addr.as_bytes();
        packet.set_hardware_len(hw.len() as u8);
        packet.set_hops(self.hops);
        packet.set_transaction_id(self.transaction_id);
        packet.set_secs(self.secs);
        packet.set_flags(self.flags);
        packet.set_client_ip(self.client_ip);
        packet.set_your_ip(self.your_ip);
        packet.set_server_ip(self.server_ip);
        packet.set_relay_agent_ip(self.relay_agent_ip);
        packet.set_client_hw_addr(hw)?;
        packet.set_server_name(self.server_name)?;
        packet.set_boot_file(self.boot_file)?;
        packet.set_magic_number(MAGIC_COOKIE);

        let mut w = OptionWriter::new(packet.options_field_mut());
        if let Some(t) = self.message_type {
            w.put(code::MESSAGE_TYPE, &[u8::from(t)])?;
        }
        if let Some(ip) = self.server_identifier {
            w.put_addr(code::SERVER_IDENTIFIER, ip)?;
        }
        if let Some(ip) = self.requested_ip {
            w.put_addr(code::REQUESTED_IP, ip)?;
        }
        if let Some(size) = self.max_message_size {
            w.put(code::MAX_MESSAGE_SIZE, &size.to_be_bytes())?;
        }
        for (code, secs) in [
            (code::LEASE_TIME, self.lease_time),
            (code::RENEWAL_TIME, self.renewal_time),
            (code::REBINDING_TIME, self.rebinding_time),
        ] {
            if let Some(secs) = secs {
                w.put(code, &secs.to_be_bytes())?;
            }
        }
        for (code, addr) in [
            (code::SUBNET_MASK, self.subnet_mask),
            (code::ROUTER, self.router),
            (code::BROADCAST_ADDRESS, self.broadcast_address),
        ] {
            if let Some(addr) = addr {
                w.put_addr(code, addr)?;
            }
        }
        match self.dns_servers {
            Some(AddrList::Wire(bytes)) => w.put_parts(code::DNS_SERVERS, bytes.parts())?,
            Some(AddrList::Addrs(addrs)) => {
                // Caller-supplied lists are capped at MAX_ADDRS (one TLV).
                let mut buf = [0u8; 4 * AddrList::MAX_ADDRS];
                for (chunk, ip) in buf.chunks_exact_mut(4).zip(addrs) {
                    chunk.copy_from_slice(&ip.octets());
                }
                let n = 4 * addrs.len().min(AddrList::MAX_ADDRS);
                w.put(code::DNS_SERVERS, buf.get(..n).unwrap_or(&[]))?;
            }
            None => {}
        }
        for (code, value) in self.byte_options() {
            if let Some(value) = value {
                w.put_parts(code, value.parts())?;
            }
        }
        w.finish()?;
        Ok(())
    }

    fn byte_options(&self) -> [(u8, Option<OptionBytes<'a>>); 14] {
        [
            (code::VENDOR_CLASS_ID, self.vendor_class_id),
            (code::CLIENT_IDENTIFIER, self.client_identifier),
            (code::PARAMETER_REQUEST_LIST, self.parameter_request_list),
            (code::MESSAGE, self.message),
            (code::HOST_NAME, self.host_name),
            (code::TFTP_SERVER_NAME, self.tftp_server_name),
            (code::BOOTFILE_NAME, self.bootfile_name),
            (code::USER_CLASS, self.user_class),
            (code::CLIENT_ARCH, self.client_arch),
            (code::CLIENT_NDI, self.client_ndi),
            (code::CLIENT_UUID, self.client_uuid),
            (code::VENDOR_SPECIFIC, self.vendor_specific),
            (code::IPXE_ENCAP, self.ipxe_encap),
            // Last (RFC 3046 §2.2).
            (code::RELAY_AGENT_INFO, self.relay_agent_info),
        ]
    }

    fn options_len(&self) -> usize {
        let fixed = [
            (self.message_type.is_some(), 1),
            (self.server_identifier.is_some(), 4),
            (self.requested_ip.is_some(), 4),
            (self.max_message_size.is_some(), 2),
            (self.lease_time.is_some(), 4),
            (self.renewal_time.is_some(), 4),
            (self.rebinding_time.is_some(), 4),
            (self.subnet_mask.is_some(), 4),
            (self.router.is_some(), 4),
            (self.broadcast_address.is_some(), 4),
        ];
        let mut len: usize = fixed
            .iter()
            .filter(|(present, _)| *present)
            .map(|(_, n)| 2 + n)
            .sum();
        if let Some(dns) = self.dns_servers {
            len += encoded_len(dns.byte_len());
        }
        for (_, value) in self.byte_options() {
            if let Some(value) = value {
                len += encoded_len(value.len());
            }
        }
        len
    }
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field.get(..end).unwrap_or(&[])
}
