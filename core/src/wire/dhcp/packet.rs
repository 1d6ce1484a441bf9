//! The checked zero-copy view of a DHCP/BOOTP message (RFC 2131 §2, figure 1).

use core::net::Ipv4Addr;

use super::{Flags, HEADER_LEN, field};
use crate::wire::Error;
use crate::wire::dhcp_option::Options;

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

    pub(super) fn bytes(&self) -> &[u8] {
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

    /// `flags`, every bit as received.
    pub fn flags(&self) -> Flags {
        Flags::from_bits_retain(u16::from_be_bytes(self.array(field::FLAGS)))
    }

    /// The broadcast bit of `flags` (RFC 2131 §2, figure 2).
    pub fn broadcast_flag(&self) -> bool {
        self.flags().contains(Flags::BROADCAST)
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

    /// The magic cookie (should be [`MAGIC_COOKIE`](super::MAGIC_COOKIE)).
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
    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
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
    pub fn set_flags(&mut self, v: Flags) {
        self.bytes_mut()[field::FLAGS..field::FLAGS + 2].copy_from_slice(&v.bits().to_be_bytes());
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

fn set_padded(field: &mut [u8], value: &[u8]) -> Result<(), Error> {
    let (head, tail) = field
        .split_at_mut_checked(value.len())
        .ok_or(Error::TooLong)?;
    head.copy_from_slice(value);
    tail.fill(0);
    Ok(())
}
