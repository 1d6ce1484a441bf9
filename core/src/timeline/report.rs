//! What the [`Timeline`](super::Timeline) reports: a [`BootRecord`] when a boot ends and a
//! [`Diagnosis`] when a known failure pattern shows, with their one-line forms behind
//! [`Display`](fmt::Display) and `defmt::Format` alike.
//!
//! Quoting, the same in every line: client-chosen or free text (host names, paths, lists) is
//! always in double quotes; MAC and IP addresses, classes, numbers and fixed words never are.

use core::fmt::{self, Write as _};
use core::net::Ipv4Addr;
use core::time::Duration;

use crate::dhcp::{ClientClass, HOSTNAME_MAX};
use crate::logfmt::{Escaped, Logfmt};
use crate::net::Mac;
use crate::tftp::FailReason;
use crate::time::Instant;

/// Bytes of a file path kept in a record or a diagnosis; longer paths are cut.
pub const PATH_MAX: usize = 128;
/// Files kept per boot; when a boot fetches more, the oldest are dropped (and counted).
pub const FILES_MAX: usize = 8;

/// A file path as kept by the timeline.
pub type Path = heapless::String<PATH_MAX>;

/// One file a client fetched, or tried to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The path as the client asked for it.
    pub path: Path,
    /// The file's size, if the server knew it when the transfer started.
    pub size: Option<u64>,
    /// Bytes the client acknowledged.
    pub bytes: u64,
    /// From the request to the end of the transfer (zero while it runs).
    pub duration: Duration,
    /// How far it got.
    pub state: FileState,
}

/// How a file transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FileState {
    /// Still running.
    Running,
    /// The whole file was delivered.
    Done,
    /// The transfer ended early, for this reason.
    Failed(FailReason),
}

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootOutcome {
    /// The last file was delivered and the client was then quiet for the quiet period.
    Booted,
    /// The boot stopped after a failure, this one.
    Failed(FailCause),
    /// The boot stopped with no failure to blame: no file fetched, or still fetching when the
    /// client's record had to make room for another.
    Incomplete,
}

/// What made a boot fail: the last failure seen with no success after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailCause {
    /// The client's class has no boot rule: it got no boot file.
    NoBootRule,
    /// A file the client asked for does not exist.
    FileNotFound,
    /// A transfer ended early.
    Transfer(FailReason),
    /// The client sent DISCOVERs and never a REQUEST.
    NeverRequested,
    /// The client ignored the proxy offer (it never came to port 4011).
    ProxyOfferIgnored,
}

/// One finished boot of one client: from its first DISCOVER (or, for a client this server gave
/// no address, its first file request) to its last activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootRecord {
    /// The client's MAC address; `None` for a client known only by its IP address.
    pub mac: Option<Mac>,
    /// Its boot class, as the boot table saw it.
    pub class: Option<ClientClass>,
    /// Its host name (DHCP option 12).
    pub hostname: Option<heapless::String<HOSTNAME_MAX>>,
    /// The address it used.
    pub address: Option<Ipv4Addr>,
    /// The files it fetched (or failed to), in the order it asked for them; a file asked for
    /// again appears once, with its last transfer.
    pub files: heapless::Vec<FileRecord, FILES_MAX>,
    /// Older files dropped from `files` to make room.
    pub files_dropped: u16,
    /// Requests for files that do not exist (file-name probes of PXELINUX or GRUB count too).
    pub not_found: u16,
    /// When the boot began.
    pub started: Instant,
    /// The boot's last activity.
    pub ended: Instant,
    /// How it ended.
    pub outcome: BootOutcome,
    /// The diagnoses reported during this boot.
    pub diagnoses: DiagnosisSet,
}

impl BootRecord {
    /// From the first message to the last activity.
    pub fn total(&self) -> Duration {
        self.ended.saturating_duration_since(self.started)
    }

    /// File bytes delivered, over every file.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// A known failure pattern of one client, reported once per boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// The client's MAC address; `None` for a client known only by its IP address.
    pub mac: Option<Mac>,
    /// Its address, if known.
    pub address: Option<Ipv4Addr>,
    /// Its boot class, if known.
    pub class: Option<ClientClass>,
    /// What showed.
    pub kind: DiagnosisKind,
}

/// The failure patterns the timeline recognises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnosisKind {
    /// proxyDHCP: the client got a proxy offer, took an address from the DHCP server, and then
    /// started over with a DISCOVER, without ever asking the boot server on port 4011 or
    /// fetching a file (PXE 2.1 §2.2.1: a client that got a proxy offer asks port 4011).
    ProxyOfferIgnored {
        /// DISCOVERs since the proxy offer.
        discovers: u16,
    },
    /// A boot client whose class has no boot rule: it got no boot file.
    NoBootRule {
        /// The class to add a rule for.
        class: ClientClass,
    },
    /// A file that does not exist was asked for (and nothing was fetched after it, or it is
    /// the very boot file this server handed out).
    FileNotFound {
        /// The path as asked for.
        path: Path,
    },
    /// Transfers of the same file keep ending at the same block: typically an MTU problem on
    /// the path (blocks above some size never arrive) or a client that cannot take the block
    /// size it asked for (RFC 2348).
    StuckAtBlock {
        /// The file.
        path: Path,
        /// The last block the client acknowledged, every time.
        block: u64,
        /// The block size in force.
        blksize: u16,
        /// How many transfers ended there.
        failures: u16,
    },
    /// DISCOVERs answered with offers and never followed by a REQUEST (RFC 2131 §3.1).
    NoRequest {
        /// DISCOVERs seen.
        discovers: u16,
        /// The offers were proxy offers (boot information only): the address had to come
        /// from another DHCP server.
        proxy: bool,
    },
    /// A TFTP request from an address this server never gave out nor saw requested.
    UnknownAddress {
        /// The file asked for.
        path: Path,
    },
}

bitflags::bitflags! {
    /// A set of diagnosis kinds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct DiagnosisSet: u8 {
        /// [`DiagnosisKind::ProxyOfferIgnored`].
        const PROXY_OFFER_IGNORED = 1 << 0;
        /// [`DiagnosisKind::NoBootRule`].
        const NO_BOOT_RULE = 1 << 1;
        /// [`DiagnosisKind::FileNotFound`].
        const FILE_NOT_FOUND = 1 << 2;
        /// [`DiagnosisKind::StuckAtBlock`].
        const STUCK_AT_BLOCK = 1 << 3;
        /// [`DiagnosisKind::NoRequest`].
        const NO_REQUEST = 1 << 4;
        /// [`DiagnosisKind::UnknownAddress`].
        const UNKNOWN_ADDRESS = 1 << 5;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DiagnosisSet {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=u8:#x}", self.bits());
    }
}

impl DiagnosisKind {
    /// Its member of a [`DiagnosisSet`].
    pub const fn flag(&self) -> DiagnosisSet {
        match self {
            Self::ProxyOfferIgnored { .. } => DiagnosisSet::PROXY_OFFER_IGNORED,
            Self::NoBootRule { .. } => DiagnosisSet::NO_BOOT_RULE,
            Self::FileNotFound { .. } => DiagnosisSet::FILE_NOT_FOUND,
            Self::StuckAtBlock { .. } => DiagnosisSet::STUCK_AT_BLOCK,
            Self::NoRequest { .. } => DiagnosisSet::NO_REQUEST,
            Self::UnknownAddress { .. } => DiagnosisSet::UNKNOWN_ADDRESS,
        }
    }

    /// What happened, in a few words: the start of the log line.
    pub const fn headline(&self) -> &'static str {
        match self {
            Self::ProxyOfferIgnored { .. } => "client ignored the proxy offer",
            Self::NoBootRule { .. } => "no boot rule for the client's class",
            Self::FileNotFound { .. } => "file not found",
            Self::StuckAtBlock { .. } => "transfers keep stopping at the same block",
            Self::NoRequest { .. } => "DISCOVERs never followed by a REQUEST",
            Self::UnknownAddress { .. } => "TFTP request from an address this server never offered",
        }
    }

    /// What to do about it.
    pub const fn advice(&self) -> &'static str {
        match self {
            Self::ProxyOfferIgnored { .. } => {
                "the client took its address from the DHCP server but never asked this \
                 server on UDP port 4011: check that no firewall drops port 4011, or let \
                 pocketpxe give the addresses (--mode dhcp)"
            }
            Self::NoBootRule { .. } => "add a boot file for the class with --boot CLASS=FILE",
            Self::FileNotFound { .. } => {
                "the path is relative to --root: check the name (and its case) and the \
                 --boot flags"
            }
            Self::StuckAtBlock { .. } => {
                "large blocks get lost on the way (MTU, a VPN or VLAN tag): lower \
                 --max-blksize (1024, or 512 without options), or fix the path MTU"
            }
            Self::NoRequest { proxy: false, .. } => {
                "another DHCP server's offer was taken, or the firmware never accepts an \
                 offer: look for another DHCP server on the link (use --mode proxy next to \
                 it), or check the firmware's network boot settings"
            }
            Self::NoRequest { proxy: true, .. } => {
                "no DHCP server gave the client an address, or the firmware never accepts an \
                 offer: check that the DHCP server runs and serves this link (without one, \
                 use --mode dhcp), or check the firmware's network boot settings"
            }
            Self::UnknownAddress { .. } => {
                "another DHCP server points clients at this TFTP server: use --mode proxy \
                 next to it, or stop it from handing out boot information"
            }
        }
    }
}

/// `failed: no boot rule`, as the outcome's words.
impl fmt::Display for BootOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Booted => f.write_str("booted"),
            Self::Incomplete => f.write_str("incomplete"),
            Self::Failed(cause) => write!(f, "failed ({cause})"),
        }
    }
}

impl fmt::Display for FailCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transfer(reason) => write!(f, "transfer {reason}"),
            other => f.write_str(other.words()),
        }
    }
}

impl FailCause {
    /// The cause in words (a transfer failure without its reason).
    pub const fn words(&self) -> &'static str {
        match self {
            Self::NoBootRule => "no boot rule",
            Self::FileNotFound => "file not found",
            Self::Transfer(_) => "transfer failed",
            Self::NeverRequested => "never requested an address",
            Self::ProxyOfferIgnored => "proxy offer ignored",
        }
    }
}

/// `boot booted mac=52:54:00:12:34:56 class=efi-x64 ip=192.168.1.10 hostname=pc1
/// time=4.210s files=2 bytes=1024 list="ipxe.efi 1000 bytes 300 ms, boot.ipxe 24 bytes 10 ms"`.
impl fmt::Display for BootRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boot {}", self.outcome)?;
        client_fields(f, self.mac, self.class, self.address)?;
        if let Some(host) = &self.hostname {
            write!(f, " hostname={}", Logfmt(host))?;
        }
        let total = millis(self.total());
        write!(
            f,
            " time={}.{:03}s files={} bytes={}",
            total / 1000,
            total % 1000,
            usize::from(self.files_dropped) + self.files.len(),
            self.bytes()
        )?;
        if self.not_found > 0 {
            write!(f, " not_found={}", self.not_found)?;
        }
        if !self.files.is_empty() {
            f.write_str(" list=\"")?;
            let mut list = Escaped(&mut *f);
            if self.files_dropped > 0 {
                write!(list, "{} earlier, ", self.files_dropped)?;
            }
            for (i, file) in self.files.iter().enumerate() {
                if i > 0 {
                    list.write_str(", ")?;
                }
                write!(
                    list,
                    "{} {} bytes {} ms",
                    file.path,
                    file.bytes,
                    millis(file.duration)
                )?;
                match file.state {
                    FileState::Done => {}
                    FileState::Running => list.write_str(" unfinished")?,
                    FileState::Failed(reason) => write!(list, " failed: {reason}")?,
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// `file not found mac=… ip=… class=… path=x: the path is relative to --root …`.
impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.headline())?;
        client_fields(f, self.mac, self.class, self.address)?;
        match &self.kind {
            DiagnosisKind::ProxyOfferIgnored { discovers }
            | DiagnosisKind::NoRequest { discovers, .. } => {
                write!(f, " discovers={discovers}")?;
            }
            DiagnosisKind::NoBootRule { class } => {
                let class = class.name();
                return write!(
                    f,
                    ": add a boot file for the class with --boot {class}=FILE"
                );
            }
            DiagnosisKind::FileNotFound { path } | DiagnosisKind::UnknownAddress { path } => {
                write!(f, " path={}", Logfmt(path))?;
            }
            DiagnosisKind::StuckAtBlock {
                path,
                block,
                blksize,
                failures,
            } => write!(
                f,
                " path={} block={block} blksize={blksize} failures={failures}",
                Logfmt(path)
            )?,
        }
        write!(f, ": {}", self.kind.advice())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for BootRecord {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.outcome {
            BootOutcome::Booted => defmt::write!(f, "boot booted"),
            BootOutcome::Incomplete => defmt::write!(f, "boot incomplete"),
            BootOutcome::Failed(cause) => defmt::write!(f, "boot failed ({=str})", cause.words()),
        }
        defmt_client(f, self.mac, self.class, self.address);
        if let Some(host) = &self.hostname {
            defmt::write!(f, " hostname=\"{=str}\"", host.as_str());
        }
        let total = millis(self.total());
        defmt::write!(
            f,
            " time={=u64}.{=u64:03}s files={=usize} bytes={=u64}",
            total / 1000,
            total % 1000,
            usize::from(self.files_dropped) + self.files.len(),
            self.bytes()
        );
        if !self.files.is_empty() {
            defmt::write!(f, " list=\"");
            for (i, file) in self.files.iter().enumerate() {
                if i > 0 {
                    defmt::write!(f, ", ");
                }
                defmt::write!(
                    f,
                    "{=str} {=u64} bytes {=u64} ms",
                    file.path.as_str(),
                    file.bytes,
                    millis(file.duration)
                );
                match file.state {
                    FileState::Done => {}
                    FileState::Running => defmt::write!(f, " unfinished"),
                    FileState::Failed(_) => defmt::write!(f, " failed"),
                }
            }
            defmt::write!(f, "\"");
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Diagnosis {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.kind.headline());
        defmt_client(f, self.mac, self.class, self.address);
        match &self.kind {
            DiagnosisKind::ProxyOfferIgnored { discovers }
            | DiagnosisKind::NoRequest { discovers, .. } => {
                defmt::write!(f, " discovers={=u16}", discovers);
            }
            DiagnosisKind::NoBootRule { class } => {
                defmt::write!(
                    f,
                    ": add a boot file for the class with --boot {=str}=FILE",
                    class.name()
                );
                return;
            }
            DiagnosisKind::FileNotFound { path } | DiagnosisKind::UnknownAddress { path } => {
                defmt::write!(f, " path=\"{=str}\"", path.as_str());
            }
            DiagnosisKind::StuckAtBlock {
                path,
                block,
                blksize,
                failures,
            } => defmt::write!(
                f,
                " path=\"{=str}\" block={=u64} blksize={=u16} failures={=u16}",
                path.as_str(),
                block,
                blksize,
                failures
            ),
        }
        defmt::write!(f, ": {=str}", self.kind.advice());
    }
}

/// ` mac=… class=… ip=…`, each only when known.
fn client_fields(
    f: &mut fmt::Formatter<'_>,
    mac: Option<Mac>,
    class: Option<ClientClass>,
    address: Option<Ipv4Addr>,
) -> fmt::Result {
    if let Some(mac) = mac {
        write!(f, " mac={mac}")?;
    }
    if let Some(class) = class {
        write!(f, " class={}", class.name())?;
    }
    if let Some(ip) = address {
        write!(f, " ip={ip}")?;
    }
    Ok(())
}

#[cfg(feature = "defmt")]
fn defmt_client(
    f: defmt::Formatter<'_>,
    mac: Option<Mac>,
    class: Option<ClientClass>,
    address: Option<Ipv4Addr>,
) {
    if let Some(mac) = mac {
        defmt::write!(f, " mac={}", mac);
    }
    if let Some(class) = class {
        defmt::write!(f, " class={=str}", class.name());
    }
    if let Some(ip) = address {
        defmt::write!(f, " ip={}", ip);
    }
}

/// Whole milliseconds of `span`, saturating.
fn millis(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}
