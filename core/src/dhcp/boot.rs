//! PXE client classification and the boot table.
//!
//! A client is classified from option 93 (RFC 4578 §2.1), option 60 (`PXEClient`/`HTTPClient`,
//! matched by prefix, PXE spec 2.1 §2.2 and UEFI 2.x §24.7) and option 77/175 (iPXE). A
//! Raspberry Pi's bootloader, which sends architecture 0 like a BIOS PC, is told apart by option
//! 97 or its MAC address (docs/raspberry-pi.md). The boot table then maps the class, plus an
//! optional per-MAC override, to a boot file.

use core::net::Ipv4Addr;
use core::str::FromStr;

use crate::wire::dhcp::Repr;
use crate::wire::dhcp_option::{Arch, arches, user_class_contains};

/// What kind of network boot client is asking, as the boot table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientClass {
    /// `bios`: x86 BIOS PXE (arch 0).
    Bios,
    /// `efi-ia32`: 32-bit x86 UEFI (arch 6).
    EfiIa32,
    /// `efi-x64`: x64 UEFI (arch 7, and 9 as real firmware sends it).
    EfiX64,
    /// `efi-arm32`: 32-bit ARM UEFI (arch 10).
    EfiArm32,
    /// `efi-arm64`: 64-bit ARM UEFI (arch 11).
    EfiArm64,
    /// `efi-x64-http`: x64 UEFI HTTP boot (arch 16).
    EfiX64Http,
    /// `efi-arm64-http`: ARM64 UEFI HTTP boot (arch 19).
    EfiArm64Http,
    /// `ipxe`: a client already running iPXE (option 77 `iPXE` or option 175 present).
    Ipxe,
    /// `rpi`: a Raspberry Pi's network bootloader (the Pi 3's boot ROM, the Pi 4's and 5's
    /// EEPROM), which sends arch 0; its rule names the directory of the Pi's boot files.
    RaspberryPi,
}

impl ClientClass {
    /// Every class, in table order.
    pub const ALL: [Self; 9] = [
        Self::Bios,
        Self::EfiIa32,
        Self::EfiX64,
        Self::EfiArm32,
        Self::EfiArm64,
        Self::EfiX64Http,
        Self::EfiArm64Http,
        Self::Ipxe,
        Self::RaspberryPi,
    ];

    /// The configuration name (`bios`, `efi-x64`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bios => "bios",
            Self::EfiIa32 => "efi-ia32",
            Self::EfiX64 => "efi-x64",
            Self::EfiArm32 => "efi-arm32",
            Self::EfiArm64 => "efi-arm64",
            Self::EfiX64Http => "efi-x64-http",
            Self::EfiArm64Http => "efi-arm64-http",
            Self::Ipxe => "ipxe",
            Self::RaspberryPi => "rpi",
        }
    }

    /// The class for an architecture code (RFC 4578 §2.1), if pocketpxe boots it.
    pub const fn from_arch(arch: Arch) -> Option<Self> {
        Some(match arch {
            Arch::BiosX86 => Self::Bios,
            Arch::EfiIa32 => Self::EfiIa32,
            Arch::EfiX64 | Arch::EfiBc => Self::EfiX64,
            Arch::EfiArm32 => Self::EfiArm32,
            Arch::EfiArm64 => Self::EfiArm64,
            Arch::EfiX64Http => Self::EfiX64Http,
            Arch::EfiArm64Http => Self::EfiArm64Http,
            _ => return None,
        })
    }

    /// Whether this is [`Self::RaspberryPi`] and the `rpi` feature answers it as one (without
    /// the feature no client is classified so and its code is left out).
    pub(super) const fn is_pi(self) -> bool {
        cfg!(feature = "rpi") && matches!(self, Self::RaspberryPi)
    }

    /// Whether this class boots over HTTP (UEFI HTTP boot): replies carry option 60
    /// `HTTPClient` and the boot file is a URL.
    pub const fn is_http(self) -> bool {
        matches!(self, Self::EfiX64Http | Self::EfiArm64Http)
    }

    /// The class whose rule an HTTP boot class falls back to when it has none of its own
    /// (`efi-x64-http` → `efi-x64`, `efi-arm64-http` → `efi-arm64`): the same loader, as a URL.
    pub const fn http_fallback(self) -> Option<Self> {
        match self {
            Self::EfiX64Http => Some(Self::EfiX64),
            Self::EfiArm64Http => Some(Self::EfiArm64),
            _ => None,
        }
    }

    /// The proxyDHCP strategy used when a rule does not choose one (docs/protocol.md §2): EDK2-style
    /// "BINL" (no option 43, then a request on port 4011) for UEFI, option 43 for BIOS and iPXE.
    /// A Raspberry Pi gets its own option 43 whatever the strategy (docs/raspberry-pi.md §1).
    pub const fn default_proxy_strategy(self) -> ProxyStrategy {
        match self {
            Self::Bios | Self::Ipxe => ProxyStrategy::Option43,
            _ => ProxyStrategy::Binl,
        }
    }
}

impl FromStr for ClientClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or(UnknownClass)
    }
}

impl core::fmt::Display for ClientClass {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A class name that is not one of [`ClientClass::name`]'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownClass;

impl core::fmt::Display for UnknownClass {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "unknown client class (expected bios, efi-ia32, efi-x64, efi-arm32, efi-arm64, \
             efi-x64-http, efi-arm64-http, ipxe or rpi)",
        )
    }
}

impl core::error::Error for UnknownClass {}

/// How a proxyDHCP offer tells the client where to boot (docs/protocol.md §2; no single strategy
/// works on every firmware).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProxyStrategy {
    /// Omit option 43: EDK2 treats the offer as "BINL" and asks again with a DHCPREQUEST to UDP
    /// port 4011, which gets a DHCPACK with the boot file.
    Binl,
    /// Send option 43 with PXE_DISCOVERY_CONTROL = 8 ("boot the file in the offer", PXE spec
    /// 2.1 §2.4.1.1) plus `siaddr`/`file`.
    Option43,
}

/// One boot table entry: which file a class of client (optionally one MAC) boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BootRule<'a> {
    /// The class this rule serves.
    pub class: ClientClass,
    /// Only for this client, if set; MAC rules win over class rules.
    pub mac: Option<[u8; 6]>,
    /// The boot file path (at most 127 bytes: it goes NUL-terminated in the BOOTP `file`
    /// field). For HTTP classes, a full URL, or a path that becomes
    /// `http://<next server>/<path>`.
    pub file: &'a str,
    /// The TFTP/HTTP server for this rule (`siaddr`); default: the config's TFTP server.
    pub next_server: Option<Ipv4Addr>,
    /// The proxyDHCP strategy; default: [`ClientClass::default_proxy_strategy`].
    pub proxy_strategy: Option<ProxyStrategy>,
}

impl<'a> BootRule<'a> {
    /// A rule for every client of `class`.
    pub const fn new(class: ClientClass, file: &'a str) -> Self {
        Self {
            class,
            mac: None,
            file,
            next_server: None,
            proxy_strategy: None,
        }
    }
}

/// What the server learned about a client from its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientInfo {
    /// The first architecture in option 93 (or from option 60's `Arch:` field).
    pub arch: Option<Arch>,
    /// The class derived from the architecture (without the iPXE override);
    /// [`ClientClass::RaspberryPi`] for a Raspberry Pi's arch-0 bootloader.
    pub arch_class: Option<ClientClass>,
    /// Option 60 starts with `PXEClient`.
    pub pxe: bool,
    /// Option 60 starts with `HTTPClient`.
    pub http: bool,
    /// Option 77 names `iPXE` or option 175 is present.
    pub ipxe: bool,
}

impl ClientInfo {
    /// Classifies a request (RFC 4578, PXE spec 2.1 §2.2, RFC 3004).
    ///
    /// The architecture is the first entry of option 93 that pocketpxe knows; without option 93,
    /// the `Arch:NNNNN` field of option 60 (`PXEClient:Arch:00007:...`); a `PXEClient` without
    /// either is taken as BIOS (early PXE ROMs omit 93). A `PXEClient` of arch 0 is a Raspberry
    /// Pi when option 97 starts with the bootloader's `RPi` tag or the MAC address is one of
    /// Raspberry Pi's.
    pub fn classify(req: &Repr<'_>) -> Self {
        let vendor = req.vendor_class_id;
        let pxe = vendor.is_some_and(|v| v.starts_with(b"PXEClient"));
        let http = vendor.is_some_and(|v| v.starts_with(b"HTTPClient"));
        let ipxe = req.ipxe_encap.is_some()
            || req
                .user_class
                .is_some_and(|uc| user_class_contains(&uc, b"iPXE"));
        let listed = req.client_arch.map(|a| {
            let first = arches(&a).next();
            (
                arches(&a).find(|a| ClientClass::from_arch(*a).is_some()),
                first,
            )
        });
        let arch = match listed {
            Some((known, first)) => known.or(first),
            None => vendor.and_then(|v| {
                let mut buf = [0u8; 32];
                let text = v.copy_into(&mut buf).ok()?;
                arch_from_vendor_class(text)
            }),
        };
        let arch = arch.or(if pxe { Some(Arch::BiosX86) } else { None });
        let arch_class = if pxe && arch == Some(Arch::BiosX86) && is_raspberry_pi(req) {
            Some(ClientClass::RaspberryPi)
        } else {
            arch.and_then(ClientClass::from_arch)
        };
        Self {
            arch,
            arch_class,
            pxe,
            http,
            ipxe,
        }
    }

    /// Whether this is a network boot client at all (PXE or HTTP boot).
    pub fn is_boot_client(&self) -> bool {
        self.pxe || self.http || self.arch.is_some()
    }

    /// Whether the client takes the address of a DHCPOFFER without ever sending a DHCPREQUEST,
    /// so the server binds it at OFFER time: the Raspberry Pi 3's boot ROM (its MAC addresses
    /// are in `b8:27:eb`, the range of the Pis before the 4, whose EEPROM bootloaders do
    /// request; docs/raspberry-pi.md §1).
    pub fn binds_at_offer(&self, mac: [u8; 6]) -> bool {
        self.arch_class.is_some_and(ClientClass::is_pi) && mac[..3] == RPI_OUIS[0]
    }
}

/// Whether a request comes from a Raspberry Pi (docs/raspberry-pi.md §1): option 97 is the
/// Pi 4's and 5's GUID, type 0 then the tag `RPi4`/`RPi5`, or the MAC address lies in one of
/// Raspberry Pi's IEEE OUIs (the Pi 3's ROM sends a constant option 97).
/// Always false without the `rpi` feature.
fn is_raspberry_pi(req: &Repr<'_>) -> bool {
    if !cfg!(feature = "rpi") {
        return false;
    }
    let tagged = req.client_uuid.is_some_and(|uuid| {
        let mut b = uuid.bytes();
        uuid.len() == 17 && b.next() == Some(0) && b.take(3).eq(*b"RPi")
    });
    let oui = req.client_hw_addr.mac().map(|m| [m[0], m[1], m[2]]);
    tagged || oui.is_some_and(|oui| RPI_OUIS.contains(&oui))
}

/// Raspberry Pi's IEEE OUIs: Raspberry Pi Foundation (`b8:27:eb`, the Pis up to the 3) and
/// Raspberry Pi (Trading) Ltd (the Pi 4 and later).
const RPI_OUIS: [[u8; 3]; 6] = [
    [0xb8, 0x27, 0xeb],
    [0xdc, 0xa6, 0x32],
    [0xe4, 0x5f, 0x01],
    [0x28, 0xcd, 0xc1],
    [0xd8, 0x3a, 0xdd],
    [0x2c, 0xcf, 0x67],
];

/// The boot file and server chosen for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BootChoice<'a> {
    /// The class of the rule that matched.
    pub class: ClientClass,
    /// The rule that matched.
    pub rule: BootRule<'a>,
}

impl BootChoice<'_> {
    /// Whether an HTTP boot class took its architecture's rule ([`ClientClass::http_fallback`])
    /// rather than one of its own.
    pub fn is_http_fallback(&self) -> bool {
        self.rule.class != self.class
    }

    /// The proxyDHCP strategy for this choice.
    pub fn proxy_strategy(&self) -> ProxyStrategy {
        self.rule
            .proxy_strategy
            .unwrap_or(self.class.default_proxy_strategy())
    }
}

/// Picks the boot rule for a client.
///
/// An iPXE client gets an `ipxe` rule (MAC rule first) if there is one, which breaks the
/// chainload loop (docs/protocol.md §2); otherwise, like everyone else, the rule for its architecture
/// class (MAC rule first). An HTTP boot class without a rule of its own takes the rule of
/// [`ClientClass::http_fallback`] and stays an HTTP class, so its path is sent as a URL.
pub fn choose<'a>(
    table: &[BootRule<'a>],
    info: &ClientInfo,
    mac: [u8; 6],
) -> Option<BootChoice<'a>> {
    let ipxe = if info.ipxe {
        Some(ClientClass::Ipxe)
    } else {
        None
    };
    let arch = info.arch_class;
    let fallback = arch.and_then(ClientClass::http_fallback);
    [(ipxe, ipxe), (arch, arch), (fallback, arch)]
        .into_iter()
        .find_map(|(rules_of, class)| {
            let (rules_of, class) = (rules_of?, class?);
            let for_class = || table.iter().filter(move |r| r.class == rules_of);
            for_class()
                .find(|r| r.mac == Some(mac))
                .or_else(|| for_class().find(|r| r.mac.is_none()))
                .map(|rule| BootChoice { class, rule: *rule })
        })
}

/// Reads the architecture from a vendor class like `PXEClient:Arch:00007:UNDI:003000`.
fn arch_from_vendor_class(text: &[u8]) -> Option<Arch> {
    let at = text.windows(5).position(|w| w == b"Arch:")?;
    let digits = text.get(at + 5..at + 10)?;
    let mut code: u32 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        code = code * 10 + u32::from(d - b'0');
    }
    u16::try_from(code).ok().map(Arch::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dhcp::{HwAddr, Op};
    use crate::wire::dhcp_option::OptionBytes;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0xa5, 0, 1];

    fn req<'a>(vendor: Option<&'a [u8]>, arch: Option<&'a [u8]>, uc: Option<&'a [u8]>) -> Repr<'a> {
        let mut r = Repr::new(Op::Request, 1, HwAddr::ethernet(MAC));
        r.vendor_class_id = vendor.map(OptionBytes::new);
        r.client_arch = arch.map(OptionBytes::new);
        r.user_class = uc.map(OptionBytes::new);
        r
    }

    #[test]
    fn classifies_captured_clients() {
        // testdata/captures/bios-dhcp.pcap: iPXE BIOS ROM.
        let info = ClientInfo::classify(&req(
            Some(b"PXEClient:Arch:00000:UNDI:002001"),
            Some(&[0, 0]),
            Some(b"iPXE"),
        ));
        assert_eq!(info.arch_class, Some(ClientClass::Bios));
        assert!(info.pxe && info.ipxe && !info.http);
        // testdata/captures/uefi-dhcp.pcap: OVMF.
        let info = ClientInfo::classify(&req(
            Some(b"PXEClient:Arch:00007:UNDI:003000"),
            Some(&[0, 7]),
            None,
        ));
        assert_eq!(info.arch_class, Some(ClientClass::EfiX64));
        assert!(!info.ipxe);
        // busybox udhcpc.
        let info = ClientInfo::classify(&req(Some(b"udhcp 1.35.0"), None, None));
        assert!(!info.is_boot_client());
    }

    #[test]
    fn arch_9_is_x64_and_http_classes() {
        for (arch, class) in [
            (9u8, ClientClass::EfiX64),
            (7, ClientClass::EfiX64),
            (6, ClientClass::EfiIa32),
            (10, ClientClass::EfiArm32),
            (11, ClientClass::EfiArm64),
            (16, ClientClass::EfiX64Http),
            (19, ClientClass::EfiArm64Http),
        ] {
            let a = [0, arch];
            let info = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&a), None));
            assert_eq!(info.arch_class, Some(class), "arch {arch}");
        }
        let info = ClientInfo::classify(&req(Some(b"HTTPClient:Arch:00016"), Some(&[0, 16]), None));
        assert!(info.http && info.arch_class.unwrap().is_http());
        // Unknown arch first in the list: the first known one wins.
        let info = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&[0x12, 0x34, 0, 7]), None));
        assert_eq!(info.arch_class, Some(ClientClass::EfiX64));
        // Only unknown: kept as data, no class.
        let info = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&[0x12, 0x34]), None));
        assert_eq!(info.arch, Some(Arch::Unknown(0x1234)));
        assert_eq!(info.arch_class, None);
    }

    #[test]
    fn arch_from_option_60_when_93_missing() {
        let info =
            ClientInfo::classify(&req(Some(b"PXEClient:Arch:00007:UNDI:003000"), None, None));
        assert_eq!(info.arch_class, Some(ClientClass::EfiX64));
        let info = ClientInfo::classify(&req(Some(b"PXEClient"), None, None));
        assert_eq!(info.arch_class, Some(ClientClass::Bios));
        let info = ClientInfo::classify(&req(Some(b"PXEClient:Arch:0x007"), None, None));
        assert_eq!(info.arch_class, Some(ClientClass::Bios));
    }

    #[test]
    fn ipxe_by_option_175_or_framed_77() {
        let mut r = req(Some(b"PXEClient"), Some(&[0, 0]), None);
        r.ipxe_encap = Some(OptionBytes::new(&[1, 1, 1]));
        assert!(ClientInfo::classify(&r).ipxe);
        let framed = [4, b'i', b'P', b'X', b'E'];
        assert!(ClientInfo::classify(&req(None, None, Some(&framed))).ipxe);
    }

    #[test]
    fn choose_prefers_ipxe_then_mac_then_class() {
        let table = [
            BootRule::new(ClientClass::Bios, "pxelinux.0"),
            BootRule {
                mac: Some(MAC),
                ..BootRule::new(ClientClass::Bios, "special.0")
            },
            BootRule::new(ClientClass::EfiX64, "bootnetx64.efi"),
            BootRule::new(ClientClass::Ipxe, "boot.ipxe"),
        ];
        let bios = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&[0, 0]), None));
        assert_eq!(choose(&table, &bios, MAC).unwrap().rule.file, "special.0");
        assert_eq!(
            choose(&table, &bios, [9; 6]).unwrap().rule.file,
            "pxelinux.0"
        );
        let ipxe = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&[0, 7]), Some(b"iPXE")));
        let c = choose(&table, &ipxe, MAC).unwrap();
        assert_eq!((c.class, c.rule.file), (ClientClass::Ipxe, "boot.ipxe"));
        assert_eq!(c.proxy_strategy(), ProxyStrategy::Option43);
        // No ipxe rule: fall back to the architecture's rule.
        let c = choose(&table[..3], &ipxe, MAC).unwrap();
        assert_eq!(c.rule.file, "bootnetx64.efi");
        assert_eq!(c.proxy_strategy(), ProxyStrategy::Binl);
        // No rule for arm64.
        let arm = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&[0, 11]), None));
        assert_eq!(choose(&table, &arm, MAC), None);
    }

    #[test]
    fn http_classes_fall_back_to_their_architecture() {
        let table = [
            BootRule::new(ClientClass::EfiX64, "bootnetx64.efi"),
            BootRule::new(ClientClass::EfiArm64, "bootnetaa64.efi"),
        ];
        for (arch, class, file) in [
            (16, ClientClass::EfiX64Http, "bootnetx64.efi"),
            (19, ClientClass::EfiArm64Http, "bootnetaa64.efi"),
        ] {
            let a = [0, arch];
            let info = ClientInfo::classify(&req(Some(b"HTTPClient"), Some(&a), None));
            let c = choose(&table, &info, MAC).unwrap();
            assert_eq!((c.class, c.rule.file), (class, file));
            assert!(c.class.is_http() && c.is_http_fallback());
        }
        // A rule of its own wins over the fallback, also a class rule over a fallback MAC rule.
        let own = [
            BootRule {
                mac: Some(MAC),
                ..BootRule::new(ClientClass::EfiX64, "mine.efi")
            },
            BootRule::new(ClientClass::EfiX64Http, "http.efi"),
        ];
        let info = ClientInfo::classify(&req(Some(b"HTTPClient"), Some(&[0, 16]), None));
        let c = choose(&own, &info, MAC).unwrap();
        assert_eq!(c.rule.file, "http.efi");
        assert!(!c.is_http_fallback());
        assert_eq!(choose(&own[..1], &info, MAC).unwrap().rule.file, "mine.efi");
        // Only HTTP classes fall back: ia32 has no HTTP twin, BIOS does not take x64's rule.
        let bios = ClientInfo::classify(&req(Some(b"PXEClient"), Some(&[0, 0]), None));
        assert_eq!(choose(&table, &bios, MAC), None);
        assert_eq!(ClientClass::EfiIa32.http_fallback(), None);
    }

    #[test]
    #[cfg(feature = "rpi")]
    fn raspberry_pis_by_option_97_or_mac() {
        const VENDOR: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
        let with = |mac: [u8; 6], uuid: &'static [u8], arch: &'static [u8]| {
            let mut r = req(Some(VENDOR), Some(arch), None);
            r.client_hw_addr = HwAddr::ethernet(mac);
            r.client_uuid = Some(OptionBytes::new(uuid));
            ClientInfo::classify(&r)
        };
        let pi3_uuid = b"\0DDDDDDDDDDDDDDDD";
        let pi4_uuid = b"\0RPi4\x11\x31\xc0\0\x32\x01\x36\xc2\xef\xfd\xfe\x9f";
        let pi5_uuid = b"\0RPi5\x70\x41\xd0\0\xdd\xe8\x27\x1e\x4d\x3a\x2b\x1c";
        for (mac, uuid, rom) in [
            ([0xb8, 0x27, 0xeb, 0x28, 0xf6, 0x6d], &pi3_uuid[..], true),
            // A Pi 4 with DHCP_OPTION97=0: its serial four times, known by its MAC.
            (
                [0xdc, 0xa6, 0x32, 1, 2, 3],
                b"\0\x9f\xfe\xfd\xef\x9f\xfe\xfd\xef\x9f\xfe\xfd\xef\x9f\xfe\xfd\xef",
                false,
            ),
            ([0xe4, 0x5f, 0x01, 1, 2, 3], &pi3_uuid[..], false),
            ([0x28, 0xcd, 0xc1, 1, 2, 3], &pi3_uuid[..], false),
            ([0xd8, 0x3a, 0xdd, 1, 2, 3], &pi3_uuid[..], false),
            ([0x2c, 0xcf, 0x67, 1, 2, 3], &pi3_uuid[..], false),
            // A MAC_ADDRESS override: known by the tag.
            (MAC, &pi4_uuid[..], false),
            (MAC, &pi5_uuid[..], false),
        ] {
            let info = with(mac, uuid, &[0, 0]);
            assert_eq!(
                info.arch_class,
                Some(ClientClass::RaspberryPi),
                "{mac:02x?}"
            );
            assert_eq!(info.binds_at_offer(mac), rom, "{mac:02x?}");
        }
        // A PC: same vendor class, no tag, another MAC.
        let pc = with(MAC, pi3_uuid, &[0, 0]);
        assert_eq!(pc.arch_class, Some(ClientClass::Bios));
        assert!(!pc.binds_at_offer(MAC));
        // A Pi running UEFI firmware (arch 11) is an arm64 UEFI client.
        let uefi = with([0xdc, 0xa6, 0x32, 1, 2, 3], pi4_uuid, &[0, 11]);
        assert_eq!(uefi.arch_class, Some(ClientClass::EfiArm64));
        // A tag must be at the start of a 17-byte option 97 of type 0.
        assert_eq!(
            with(MAC, b"\x01RPi4DDDDDDDDDDDD", &[0, 0]).arch_class,
            Some(ClientClass::Bios)
        );
        assert_eq!(
            with(MAC, b"\0RPi4", &[0, 0]).arch_class,
            Some(ClientClass::Bios)
        );
    }

    #[test]
    fn class_names_round_trip() {
        for class in ClientClass::ALL {
            assert_eq!(class.name().parse::<ClientClass>(), Ok(class));
        }
        assert_eq!("efi-x86".parse::<ClientClass>(), Err(UnknownClass));
    }
}
