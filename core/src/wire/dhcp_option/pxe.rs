//! PXE option values: client architecture (option 93, RFC 4578 §2.1) and user class (option
//! 77, RFC 3004).

use super::{OptionBytes, OptionIter};
use crate::wire::Error;

/// Client system architecture, option 93 (RFC 4578 §2.1, IANA "Processor Architecture Types").
///
/// Open enum (STYLE.md R7): unknown codes are kept as [`Arch::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Arch {
    /// 0: x86 BIOS.
    BiosX86,
    /// 6: x86 (IA32) UEFI.
    EfiIa32,
    /// 7: x64 UEFI.
    EfiX64,
    /// 9: EFI byte code per RFC 4578, but sent by x64 UEFI firmware in the wild (errata 4624).
    EfiBc,
    /// 10: ARM 32-bit UEFI.
    EfiArm32,
    /// 11: ARM 64-bit UEFI.
    EfiArm64,
    /// 15: x86 UEFI HTTP boot.
    EfiIa32Http,
    /// 16: x64 UEFI HTTP boot.
    EfiX64Http,
    /// 18: ARM 32-bit UEFI HTTP boot.
    EfiArm32Http,
    /// 19: ARM 64-bit UEFI HTTP boot.
    EfiArm64Http,
    /// 20: x86 BIOS HTTP boot.
    BiosX86Http,
    /// 41: Raspberry Pi boot ROM.
    RaspberryPi,
    /// Any other code.
    Unknown(u16),
}

impl From<u16> for Arch {
    fn from(code: u16) -> Self {
        match code {
            0 => Self::BiosX86,
            6 => Self::EfiIa32,
            7 => Self::EfiX64,
            9 => Self::EfiBc,
            10 => Self::EfiArm32,
            11 => Self::EfiArm64,
            15 => Self::EfiIa32Http,
            16 => Self::EfiX64Http,
            18 => Self::EfiArm32Http,
            19 => Self::EfiArm64Http,
            20 => Self::BiosX86Http,
            41 => Self::RaspberryPi,
            other => Self::Unknown(other),
        }
    }
}

impl From<Arch> for u16 {
    fn from(arch: Arch) -> Self {
        match arch {
            Arch::BiosX86 => 0,
            Arch::EfiIa32 => 6,
            Arch::EfiX64 => 7,
            Arch::EfiBc => 9,
            Arch::EfiArm32 => 10,
            Arch::EfiArm64 => 11,
            Arch::EfiIa32Http => 15,
            Arch::EfiX64Http => 16,
            Arch::EfiArm32Http => 18,
            Arch::EfiArm64Http => 19,
            Arch::BiosX86Http => 20,
            Arch::RaspberryPi => 41,
            Arch::Unknown(code) => code,
        }
    }
}

/// The architectures listed in an option 93 value, in the client's order of preference
/// (RFC 4578 §2.1). A trailing odd byte is ignored.
pub fn arches<'a>(value: &OptionBytes<'a>) -> impl Iterator<Item = Arch> + use<'a> {
    let mut bytes = value.bytes();
    core::iter::from_fn(move || {
        let hi = bytes.next()?;
        let lo = bytes.next()?;
        Some(Arch::from(u16::from_be_bytes([hi, lo])))
    })
}

/// Whether an option 77 value (RFC 3004 §4) names `class`: either the raw bytes (what iPXE
/// sends: `iPXE` without framing) or an RFC 3004 list of length-prefixed class names.
pub fn user_class_contains(value: &OptionBytes<'_>, class: &[u8]) -> bool {
    if value.len() == class.len() && value.bytes().eq(class.iter().copied()) {
        return true;
    }
    // RFC 3004 framing: UC_Len_i, User_Class_Data_i, ...
    let mut bytes = value.bytes();
    while let Some(len) = bytes.next() {
        let len = usize::from(len);
        let mut matched = len == class.len();
        for i in 0..len {
            let Some(b) = bytes.next() else {
                return false;
            };
            matched &= class.get(i) == Some(&b);
        }
        if matched {
            return true;
        }
    }
    false
}

bitflags::bitflags! {
    /// PXE_DISCOVERY_CONTROL, sub-option 6 of option 43 (PXE spec 2.1 §2.4.1.1, table 2-1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct DiscoveryControl: u8 {
        /// Bit 0: do not discover boot servers by broadcast.
        const NO_BROADCAST = 1;
        /// Bit 1: do not discover boot servers by multicast.
        const NO_MULTICAST = 1 << 1;
        /// Bit 2: only use and accept the servers listed in PXE_BOOT_SERVERS.
        const SERVER_LIST_ONLY = 1 << 2;
        /// Bit 3: if the offer names a boot file, download it without boot server discovery.
        const BOOT_FILE_IN_OFFER = 1 << 3;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DiscoveryControl {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "DiscoveryControl({=u8:#04x})", self.bits());
    }
}

/// PXE_BOOT_ITEM, sub-option 71 of option 43 (PXE spec 2.1 §2.4.1.1): the boot server type and
/// the layer of the boot file the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BootItem {
    /// Boot server type.
    pub server_type: u16,
    /// Layer (bit 15 asks for the credentials layer).
    pub layer: u16,
}

impl BootItem {
    /// Reads sub-option 71 from the value of a client's option 43, if it is there and 4 bytes
    /// long. Sub-options are TLVs like DHCP options (PXE spec 2.1 §2.4.1.1).
    pub fn from_vendor_options(value: &OptionBytes<'_>) -> Option<Self> {
        let mut buf = [0u8; 255];
        let encapsulated = value.copy_into(&mut buf).ok()?;
        let [a, b, c, d]: [u8; 4] = OptionIter::new(encapsulated)
            .map_while(Result::ok)
            .find(|o| o.code == pxe_code::BOOT_ITEM)
            .and_then(|o| o.data.try_into().ok())?;
        Some(Self {
            server_type: u16::from_be_bytes([a, b]),
            layer: u16::from_be_bytes([c, d]),
        })
    }
}

/// Writes the PXE vendor sub-options of a reply's option 43 into a caller buffer (PXE spec 2.1
/// §2.4.1.1), ending them with End (255). The result goes in
/// [`Repr::vendor_specific`](crate::wire::dhcp::Repr::vendor_specific).
#[derive(Debug)]
pub struct PxeOptionWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> PxeOptionWriter<'b> {
    /// Bytes a [`discovery_control`](Self::discovery_control) sub-option takes.
    pub const DISCOVERY_CONTROL_LEN: usize = 3;
    /// Bytes a [`boot_item`](Self::boot_item) sub-option takes.
    pub const BOOT_ITEM_LEN: usize = 6;

    /// A writer over `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Writes PXE_DISCOVERY_CONTROL (6).
    ///
    /// # Errors
    /// [`Error::TooLong`] if `buf` has no room; nothing is written then.
    pub fn discovery_control(&mut self, flags: DiscoveryControl) -> Result<(), Error> {
        self.put(pxe_code::DISCOVERY_CONTROL, &[flags.bits()])
    }

    /// Writes PXE_BOOT_ITEM (71).
    ///
    /// # Errors
    /// [`Error::TooLong`] if `buf` has no room; nothing is written then.
    pub fn boot_item(&mut self, item: BootItem) -> Result<(), Error> {
        let [a, b] = item.server_type.to_be_bytes();
        let [c, d] = item.layer.to_be_bytes();
        self.put(pxe_code::BOOT_ITEM, &[a, b, c, d])
    }

    /// Writes End and returns the sub-options written.
    ///
    /// # Errors
    /// [`Error::TooLong`] if `buf` has no room for End.
    pub fn finish(self) -> Result<&'b [u8], Error> {
        let end = self.buf.get_mut(self.pos).ok_or(Error::TooLong)?;
        *end = pxe_code::END;
        let len = self.pos + 1;
        self.buf.get(..len).ok_or(Error::TooLong)
    }

    fn put(&mut self, code: u8, data: &[u8]) -> Result<(), Error> {
        let end = self.pos + 2 + data.len();
        let out = self.buf.get_mut(self.pos..end).ok_or(Error::TooLong)?;
        let (head, body) = out.split_at_mut(2);
        head.copy_from_slice(&[code, data.len() as u8]);
        body.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }
}

/// PXE vendor sub-option codes inside option 43 (PXE spec 2.1 §2.4.1.1, table 2-1).
pub mod pxe_code {
    /// PXE_DISCOVERY_CONTROL.
    pub const DISCOVERY_CONTROL: u8 = 6;
    /// PXE_BOOT_ITEM.
    pub const BOOT_ITEM: u8 = 71;
    /// End of the sub-options.
    pub const END: u8 = 255;
}
