//! PXE option values: client architecture (option 93, RFC 4578 §2.1) and user class (option
//! 77, RFC 3004).

use super::OptionBytes;

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
