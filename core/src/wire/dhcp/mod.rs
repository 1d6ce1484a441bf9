//! DHCP/BOOTP wire format (RFC 2131 §2, RFC 951): a checked zero-copy [`Packet`] view and the
//! high-level [`Repr`].
//!
//! ```text
//!  0      op | htype | hlen | hops           (1 byte each)
//!  4      xid                                 (4)
//!  8      secs (2) | flags (2)
//! 12      ciaddr | yiaddr | siaddr | giaddr   (4 each)
//! 28      chaddr (16) | sname (64) | file (128)
//! 236     magic cookie 99.130.83.99           (4)
//! 240     options (TLV, RFC 2132)
//! ```
//!
//! [`Repr::emit`] never uses option overload (52): `file`, `sname` and `siaddr` always go in the
//! BOOTP header, because shim and GRUB read the boot file only from there (PROTOCOL.md §2).

use core::net::Ipv4Addr;

use super::Error;
use super::dhcp_option::{AddrList, OptionBytes, OptionWriter, Options, code, encoded_len};

/// The DHCP magic cookie, 99.130.83.99 (RFC 2131 §3).
pub const MAGIC_COOKIE: u32 = 0x6382_5363;

/// Length of the fixed BOOTP header plus magic cookie: options start here.
pub const HEADER_LEN: usize = field::OPTIONS;

/// Minimum size of an emitted message: BOOTP's 300 bytes (RFC 951, RFC 1542 §2.1), which some
/// PXE ROMs still insist on.
pub const MIN_MESSAGE_LEN: usize = 300;

/// The BOOTP `op` field (RFC 2131 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Op {
    /// 1: BOOTREQUEST, client to server.
    Request,
    /// 2: BOOTREPLY, server to client.
    Reply,
}

/// DHCP message type, option 53 (RFC 2132 §9.6). Open enum (STYLE.md R7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MessageType {
    /// 1
    Discover,
    /// 2
    Offer,
    /// 3
    Request,
    /// 4
    Decline,
    /// 5
    Ack,
    /// 6
    Nak,
    /// 7
    Release,
    /// 8
    Inform,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            other => Self::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> Self {
        match t {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(v) => v,
        }
    }
}

/// A client hardware address: `htype`, `hlen` and the `chaddr` bytes (RFC 2131 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HwAddr {
    hw_type: u8,
    len: u8,
    bytes: [u8; 16],
}

impl HwAddr {
    /// An Ethernet (htype 1, hlen 6) address.
    pub const fn ethernet(mac: [u8; 6]) -> Self {
        let mut bytes = [0u8; 16];
        let mut i = 0;
        while i < 6 {
            bytes[i] = mac[i];
            i += 1;
        }
        Self {
            hw_type: 1,
            len: 6,
            bytes,
        }
    }

    /// Any hardware type; `None` if `addr` is longer than 16 bytes.
    pub fn new(hw_type: u8, addr: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; 16];
        bytes.get_mut(..addr.len())?.copy_from_slice(addr);
        Some(Self {
            hw_type,
            len: addr.len() as u8,
            bytes,
        })
    }

    /// `htype` (1 = Ethernet).
    pub const fn hw_type(&self) -> u8 {
        self.hw_type
    }

    /// The significant `hlen` bytes of `chaddr`.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The MAC address, if this is Ethernet (htype 1, hlen 6).
    pub fn mac(&self) -> Option<[u8; 6]> {
        if self.hw_type != 1 {
            return None;
        }
        self.as_bytes().try_into().ok()
    }
}

/// A read/write view of a DHCP packet (smoltcp style).
///
/// # Invariants
/// After [`Packet::new_checked`], the buffer holds at least [`HEADER_LEN`] bytes, so no accessor
/// panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking its length; accessors may then panic. Use
    /// [`new_checked`](Self::new_checked) for received bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after checking it holds the fixed header and magic cookie.
    ///
    /// # Errors
    /// [`Error::Truncated`] if shorter than [`HEADER_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length invariant.
    ///
    /// # Errors
    /// [`Error::Truncated`] if shorter than [`HEADER_LEN`] bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn byte(&self, at: usize) -> u8 {
        self.bytes()[at]
    }

    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes()[at..at + N]);
        out
    }

    /// `op`: 1 BOOTREQUEST, 2 BOOTREPLY.
    pub fn op(&self) -> u8 {
        self.byte(field::OP)
    }

    /// `htype`: hardware address type (1 = Ethernet).
    pub fn hardware_type(&self) -> u8 {
        self.byte(field::HTYPE)
    }

    /// `hlen`: hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.byte(field::HLEN)
    }

    /// `hops`: relay hop count.
    pub fn hops(&self) -> u8 {
        self.byte(field::HOPS)
    }

    /// `xid`: transaction id.
    pub fn transaction_id(&self) -> u32 {
        u32::from_be_bytes(self.array(field::XID))
    }

    /// `secs`: seconds since the client began.
    pub fn secs(&self) -> u16 {
        u16::from_be_bytes(self.array(field::SECS))
    }

    /// `flags`.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes(self.array(field::FLAGS))
    }

    /// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
    pub fn broadcast_flag(&self) -> bool {
        self.flags() & BROADCAST_FLAG != 0
    }

    /// `ciaddr`: client IP address.
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>(field::CIADDR))
    }

    /// `yiaddr`: "your" (client) IP address.
    pub fn your_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>(field::YIADDR))
    }

    /// `siaddr`: next server (TFTP) IP address.
    pub fn server_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>(field::SIADDR))
    }

    /// `giaddr`: relay agent IP address.
    pub fn relay_agent_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.array::<4>(field::GIADDR))
    }

    /// `chaddr`: all 16 bytes of the client hardware address field.
    pub fn client_hw_addr(&self) -> &[u8] {
        &self.bytes()[field::CHADDR]
    }

    /// `sname`: the whole 64-byte server name field.
    pub fn server_name(&self) -> &[u8] {
        &self.bytes()[field::SNAME]
    }

    /// `file`: the whole 128-byte boot file name field.
    pub fn boot_file(&self) -> &[u8] {
        &self.bytes()[field::FILE]
    }

    /// The magic cookie (should be [`MAGIC_COOKIE`]).
    pub fn magic_number(&self) -> u32 {
        u32::from_be_bytes(self.array(field::MAGIC))
    }

    /// The raw options field (after the magic cookie).
    pub fn options_field(&self) -> &[u8] {
        &self.bytes()[field::OPTIONS..]
    }

    /// The option areas, including `file`/`sname` if option 52 overloads them (RFC 2132 §9.3).
    pub fn options(&self) -> Options<'_> {
        Options::with_overload(self.options_field(), self.boot_file(), self.server_name())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets `op`.
    pub fn set_op(&mut self, v: u8) {
        self.bytes_mut()[field::OP] = v;
    }

    /// Sets `htype`.
    pub fn set_hardware_type(&mut self, v: u8) {
        self.bytes_mut()[field::HTYPE] = v;
    }

    /// Sets `hlen`.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.bytes_mut()[field::HLEN] = v;
    }

    /// Sets `hops`.
    pub fn set_hops(&mut self, v: u8) {
        self.bytes_mut()[field::HOPS] = v;
    }

    /// Sets `xid`.
    pub fn set_transaction_id(&mut self, v: u32) {
        self.bytes_mut()[field::XID..field::XID + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets `secs`.
    pub fn set_secs(&mut self, v: u16) {
        self.bytes_mut()[field::SECS..field::SECS + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets `flags`.
    pub fn set_flags(&mut self, v: u16) {
        self.bytes_mut()[field::FLAGS..field::FLAGS + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets `ciaddr`.
    pub fn set_client_ip(&mut self, v: Ipv4Addr) {
        self.bytes_mut()[field::CIADDR..field::CIADDR + 4].copy_from_slice(&v.octets());
    }

    /// Sets `yiaddr`.
    pub fn set_your_ip(&mut self, v: Ipv4Addr) {
        self.bytes_mut()[field::YIADDR..field::YIADDR + 4].copy_from_slice(&v.octets());
    }

    /// Sets `siaddr`.
    pub fn set_server_ip(&mut self, v: Ipv4Addr) {
        self.bytes_mut()[field::SIADDR..field::SIADDR + 4].copy_from_slice(&v.octets());
    }

    /// Sets `giaddr`.
    pub fn set_relay_agent_ip(&mut self, v: Ipv4Addr) {
        self.bytes_mut()[field::GIADDR..field::GIADDR + 4].copy_from_slice(&v.octets());
    }

    /// Sets `chaddr` (zero-padded to 16 bytes).
    ///
    /// # Errors
    /// [`Error::TooLong`] if `addr` exceeds 16 bytes.
    pub fn set_client_hw_addr(&mut self, addr: &[u8]) -> Result<(), Error> {
        set_padded(&mut self.bytes_mut()[field::CHADDR], addr)
    }

    /// Sets `sname` (NUL-padded; a value of exactly 64 bytes has no NUL).
    ///
    /// # Errors
    /// [`Error::TooLong`] if `name` exceeds 64 bytes.
    pub fn set_server_name(&mut self, name: &[u8]) -> Result<(), Error> {
        set_padded(&mut self.bytes_mut()[field::SNAME], name)
    }

    /// Sets `file` (NUL-padded; a value of exactly 128 bytes has no NUL).
    ///
    /// # Errors
    /// [`Error::TooLong`] if `name` exceeds 128 bytes.
    pub fn set_boot_file(&mut self, name: &[u8]) -> Result<(), Error> {
        set_padded(&mut self.bytes_mut()[field::FILE], name)
    }

    /// Sets the magic cookie.
    pub fn set_magic_number(&mut self, v: u32) {
        self.bytes_mut()[field::MAGIC..field::MAGIC + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// The options field, writable.
    pub fn options_field_mut(&mut self) -> &mut [u8] {
        &mut self.bytes_mut()[field::OPTIONS..]
    }
}

/// The broadcast bit of `flags` (RFC 2131 §2).
pub const BROADCAST_FLAG: u16 = 0x8000;

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
    /// The broadcast bit of `flags`; the other bits are zero (RFC 2131 §2).
    pub broadcast: bool,
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
            broadcast: false,
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
            vendor_class_id: None,
            vendor_specific: None,
            tftp_server_name: None,
            bootfile_name: None,
            user_class: None,
            client_arch: None,
            client_ndi: None,
            client_uuid: None,
            ipxe_encap: None,
        }
    }

    /// Parses a checked packet.
    ///
    /// # Errors
    /// [`Error::UnknownOpcode`] for an `op` other than 1 or 2, [`Error::BadValue`] for `hlen`
    /// over 16, [`Error::BadMagic`] without the cookie, [`Error::BadOption`] for a malformed
    /// option area or a known option with an impossible length.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, Error> {
        let packet = Packet::new_checked(packet.buffer)?;
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
        let buf: &'a [u8] = packet.buffer;
        let sname = buf.get(field::SNAME).unwrap_or(&[]);
        let file = buf.get(field::FILE).unwrap_or(&[]);
        let options = Options::with_overload(buf.get(field::OPTIONS..).unwrap_or(&[]), file, sname);
        let mut repr = Self::new(op, view.transaction_id(), client_hw_addr);
        repr.hops = view.hops();
        repr.secs = view.secs();
        repr.broadcast = view.broadcast_flag();
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
                code::VENDOR_CLASS_ID => &mut repr.vendor_class_id,
                code::VENDOR_SPECIFIC => &mut repr.vendor_specific,
                code::TFTP_SERVER_NAME => &mut repr.tftp_server_name,
                code::BOOTFILE_NAME => &mut repr.bootfile_name,
                code::USER_CLASS => &mut repr.user_class,
                code::CLIENT_ARCH => &mut repr.client_arch,
                code::CLIENT_NDI => &mut repr.client_ndi,
                code::CLIENT_UUID => &mut repr.client_uuid,
                code::IPXE_ENCAP => &mut repr.ipxe_encap,
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
        packet.set_flags(if self.broadcast { BROADCAST_FLAG } else { 0 });
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

    fn byte_options(&self) -> [(u8, Option<OptionBytes<'a>>); 12] {
        [
            (code::VENDOR_CLASS_ID, self.vendor_class_id),
            (code::CLIENT_IDENTIFIER, self.client_identifier),
            (code::PARAMETER_REQUEST_LIST, self.parameter_request_list),
            (code::MESSAGE, self.message),
            (code::TFTP_SERVER_NAME, self.tftp_server_name),
            (code::BOOTFILE_NAME, self.bootfile_name),
            (code::USER_CLASS, self.user_class),
            (code::CLIENT_ARCH, self.client_arch),
            (code::CLIENT_NDI, self.client_ndi),
            (code::CLIENT_UUID, self.client_uuid),
            (code::VENDOR_SPECIFIC, self.vendor_specific),
            (code::IPXE_ENCAP, self.ipxe_encap),
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

fn set_padded(field: &mut [u8], value: &[u8]) -> Result<(), Error> {
    let (head, tail) = field
        .split_at_mut_checked(value.len())
        .ok_or(Error::TooLong)?;
    head.copy_from_slice(value);
    tail.fill(0);
    Ok(())
}

/// Byte offsets of the BOOTP header fields (RFC 2131 §2, figure 1).
pub mod field {
    #![allow(missing_docs)]
    use core::ops::Range;

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: usize = 236;
    pub const OPTIONS: usize = 240;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OVMF (EDK2 PXE, x64 UEFI) DISCOVER from captures/uefi-dhcp.pcap, packet [1]: the UDP
    /// payload, trailing zero padding trimmed.
    fn ovmf_discover() -> Vec<u8> {
        let mut p = vec![0u8; 240];
        p[..12].copy_from_slice(&[1, 1, 6, 0, 0xc6, 0x71, 0x58, 0x83, 0, 0, 0x80, 0]);
        p[28..34].copy_from_slice(&[0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]);
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        p.extend_from_slice(&[53, 1, 1, 57, 2, 0x05, 0xc0, 55, 35]);
        p.extend_from_slice(&[
            1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59,
            60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135,
        ]);
        p.extend_from_slice(&[97, 17, 0]);
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[94, 3, 1, 3, 0, 93, 2, 0, 7, 60, 32]);
        p.extend_from_slice(b"PXEClient:Arch:00007:UNDI:003000");
        p.push(255);
        p
    }

    #[test]
    fn deconstruct() {
        let bytes = ovmf_discover();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.op(), 1);
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.hops(), 0);
        assert_eq!(packet.transaction_id(), 0xc671_5883);
        assert_eq!(packet.secs(), 0);
        assert!(packet.broadcast_flag());
        assert_eq!(packet.client_ip(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(packet.your_ip(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(packet.server_ip(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(packet.relay_agent_ip(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            &packet.client_hw_addr()[..6],
            &[0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]
        );
        assert!(packet.server_name().iter().all(|&b| b == 0));
        assert!(packet.boot_file().iter().all(|&b| b == 0));
        assert_eq!(packet.magic_number(), MAGIC_COOKIE);
        assert_eq!(packet.options().iter().count(), 7);
    }

    #[test]
    fn construct() {
        let want = ovmf_discover();
        let mut bytes = vec![0xa5u8; 240];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_op(1);
        packet.set_hardware_type(1);
        packet.set_hardware_len(6);
        packet.set_hops(0);
        packet.set_transaction_id(0xc671_5883);
        packet.set_secs(0);
        packet.set_flags(BROADCAST_FLAG);
        packet.set_client_ip(Ipv4Addr::UNSPECIFIED);
        packet.set_your_ip(Ipv4Addr::UNSPECIFIED);
        packet.set_server_ip(Ipv4Addr::UNSPECIFIED);
        packet.set_relay_agent_ip(Ipv4Addr::UNSPECIFIED);
        packet
            .set_client_hw_addr(&[0x52, 0x54, 0x00, 0xa5, 0x00, 0x01])
            .unwrap();
        packet.set_server_name(b"").unwrap();
        packet.set_boot_file(b"").unwrap();
        packet.set_magic_number(MAGIC_COOKIE);
        assert_eq!(&bytes[..], &want[..240]);
    }

    #[test]
    fn parse() {
        let bytes = ovmf_discover();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.op, Op::Request);
        assert_eq!(
            repr.client_hw_addr.mac(),
            Some([0x52, 0x54, 0x00, 0xa5, 0x00, 0x01])
        );
        assert_eq!(repr.message_type, Some(MessageType::Discover));
        assert_eq!(repr.max_message_size, Some(1472));
        assert!(repr.broadcast);
        assert!(repr.requested(67) && repr.requested(66) && !repr.requested(175));
        assert_eq!(
            repr.vendor_class_id,
            Some(OptionBytes::new(b"PXEClient:Arch:00007:UNDI:003000"))
        );
        assert_eq!(repr.client_arch, Some(OptionBytes::new(&[0, 7])));
        assert_eq!(repr.client_ndi, Some(OptionBytes::new(&[1, 3, 0])));
        assert_eq!(repr.client_uuid.map(|u| u.len()), Some(17));
        assert_eq!(repr.user_class, None);
        assert_eq!(repr.server_identifier, None);
        assert_eq!(repr.boot_file, b"");
    }

    #[test]
    fn emit() {
        // An OFFER like the one dnsmasq sent in captures/uefi-dhcp.pcap packet [2].
        let mut repr = Repr::new(
            Op::Reply,
            0xc671_5883,
            HwAddr::ethernet([0x52, 0x54, 0x00, 0xa5, 0x00, 0x01]),
        );
        repr.broadcast = true;
        repr.your_ip = Ipv4Addr::new(192, 168, 242, 88);
        repr.server_ip = Ipv4Addr::new(192, 168, 242, 1);
        repr.server_name = b"pxeserver";
        repr.boot_file = b"debian-installer/amd64/bootnetx64.efi";
        repr.message_type = Some(MessageType::Offer);
        repr.server_identifier = Some(Ipv4Addr::new(192, 168, 242, 1));
        repr.lease_time = Some(3600);
        repr.renewal_time = Some(1800);
        repr.rebinding_time = Some(3150);
        repr.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        repr.broadcast_address = Some(Ipv4Addr::new(192, 168, 242, 255));
        repr.router = Some(Ipv4Addr::new(192, 168, 242, 1));
        assert_eq!(repr.buffer_len(), MIN_MESSAGE_LEN);
        let mut buf = [0xeeu8; 400];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(&buf[..4], &[2, 1, 6, 0]);
        assert_eq!(&buf[10..12], &[0x80, 0]);
        assert_eq!(&buf[16..24], &[192, 168, 242, 88, 192, 168, 242, 1]);
        assert_eq!(&buf[44..54], b"pxeserver\0");
        assert_eq!(&buf[108..146], b"debian-installer/amd64/bootnetx64.efi\0");
        assert_eq!(
            &buf[240..258],
            &[
                53, 1, 2, 54, 4, 192, 168, 242, 1, 51, 4, 0, 0, 0x0e, 0x10, 58, 4, 0
            ]
        );
        assert!(!buf[240..300].contains(&52));
        assert_eq!(buf[300], 0xee, "nothing written past buffer_len");
        let packet = Packet::new_checked(&buf[..300]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn emit_rejects_short_buffer_and_long_file() {
        let mut repr = Repr::new(Op::Reply, 1, HwAddr::ethernet([2; 6]));
        let mut buf = [0u8; 299];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::Truncated)
        );
        let long = [b'a'; 129];
        repr.boot_file = &long;
        let mut buf = [0u8; 300];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut buf[..])),
            Err(Error::TooLong)
        );
    }

    #[test]
    fn edge_cases() {
        let good = ovmf_discover();
        // Too short.
        assert_eq!(
            Packet::new_checked(&good[..239]).err(),
            Some(Error::Truncated)
        );
        // Bad magic.
        let mut bad = good.clone();
        bad[236] = 0;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::BadMagic)
        );
        // Impossible hlen.
        let mut bad = good.clone();
        bad[2] = 17;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::BadValue)
        );
        // Unknown op.
        let mut bad = good.clone();
        bad[0] = 3;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::UnknownOpcode { code: 3 })
        );
        // Option length past the end.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad.truncate(last - 5);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::BadOption { code: 60 })
        );
        // Missing End: tolerated.
        let mut no_end = good.clone();
        no_end.pop();
        assert!(Repr::parse(&Packet::new_checked(&no_end[..]).unwrap()).is_ok());
        // Wrong length of a fixed option.
        let mut bad = good.clone();
        bad[241] = 2;
        bad[242] = 1; // 53 len 2 -> consumes 57's code byte
        assert!(Repr::parse(&Packet::new_checked(&bad[..]).unwrap()).is_err());
    }

    #[test]
    fn option_overload_is_parsed() {
        let mut bytes = ovmf_discover();
        bytes.pop();
        bytes.extend_from_slice(&[52, 1, 1, 255]);
        // Option 67 inside `file`.
        bytes[108..115].copy_from_slice(&[67, 4, b'a', b'.', b'0', b'x', 255]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.bootfile_name, Some(OptionBytes::new(b"a.0x")));
        assert_eq!(repr.boot_file, b"");
        // Emitting never overloads: 67 goes to the options field.
        let mut buf = [0u8; 600];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        assert!(buf[108..236].iter().all(|&b| b == 0));
        let again = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(again, repr);
        // A bad overload value is an error.
        let n = bytes.len();
        bytes[n - 2] = 4;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()),
            Err(Error::BadOption { code: 52 })
        );
    }

    #[test]
    fn split_option_round_trips() {
        let mut bytes = ovmf_discover();
        bytes.pop();
        // Vendor-specific option split in three pieces (RFC 3396).
        bytes.extend_from_slice(&[43, 2, 6, 1, 43, 1, 8, 43, 1, 255, 255]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        let v = repr.vendor_specific.unwrap();
        assert_eq!(v.as_contiguous(), None);
        assert_eq!(v, OptionBytes::new(&[6, 1, 8, 255]));
        let mut buf = [0u8; 600];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let again = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(
            again.vendor_specific.unwrap().as_contiguous(),
            Some(&[6, 1, 8, 255][..])
        );
        assert_eq!(again, repr);
    }
}
