//! Flags of `pocketpxe serve`, and the values they take.

use super::TftpTuning;
use super::duration::{parse_duration, parse_lease_time};
use crate::sys::netif::{Ipv4Cidr, parse_mac};
use clap::Args;
use pocketpxe_core::dhcp::ClientClass;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Help headings of `pocketpxe serve`'s flags.
const DHCP: &str = "DHCP (dhcp mode)";
const BOOT: &str = "Boot files";
const NAT: &str = "Internet access (NAT)";
const MACHINES: &str = "Machine records (docs/machines.md)";
const DEBIAN: &str = "Debian installer";
const DISKLESS: &str = "Diskless machines (see docs/diskless.md)";

/// Flags of `pocketpxe serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The config file (TOML, see docs/config.md). Default: /etc/pocketpxe/pocketpxe.toml when
    /// it exists. Flags given here override its keys for every interface it names.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The interface to serve; nothing is answered on any other. Required without a config
    /// file; with one, serve only this interface of it (or define it there).
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Wait up to TIMEOUT (default 60s; a time like 90s, 5m or 1h30m) for the interface to appear
    /// and come up, and without --address to get an IPv4 address, instead of failing at once.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, require_equals = true,
        default_missing_value = "60s", value_parser = parse_duration)]
    pub wait_interface: Option<Duration>,
    /// Directory served read-only over TFTP; boot files are relative to it. Required without a
    /// config file.
    #[arg(long, visible_alias = "tftp-root", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// `dhcp`: hand out addresses. `proxy`: another DHCP server does; only add boot information.
    #[arg(long, value_enum, default_value_t = ServeMode::Dhcp)]
    pub mode: ServeMode,
    /// Addresses to lease (dhcp mode), e.g. 192.168.242.2-192.168.242.99. Default: .2 to .99 of
    /// the server's subnet.
    #[arg(help_heading = DHCP)]
    #[arg(long, value_name = "START-END")]
    pub range: Option<AddrRange>,
    /// Lease time (dhcp mode): seconds, or a time like 90s, 30m, 1h30m, 2d, or `infinite`.
    /// Default 1h.
    #[arg(help_heading = DHCP)]
    #[arg(long, value_name = "TIME", value_parser = parse_lease_time)]
    pub lease_time: Option<Duration>,
    /// The server's address; added to the interface if missing and removed again on exit.
    /// Default: the interface's (first) IPv4 address.
    #[arg(long, value_name = "CIDR")]
    pub address: Option<Ipv4Cidr>,
    /// Boot file for a client class (repeatable): bios, efi-ia32, efi-x64, efi-arm32, efi-arm64,
    /// efi-x64-http, efi-arm64-http, ipxe; rpi=DIR: the Raspberry Pi boot directory (see
    /// docs/raspberry-pi.md). Default: bios=pxelinux.0.
    #[arg(help_heading = BOOT)]
    #[arg(long = "boot", value_name = "CLASS=PATH")]
    pub boot: Vec<BootArg>,
    /// Boot file for one client (repeatable), for every class but ipxe and rpi, or only for
    /// CLASS.
    #[arg(help_heading = BOOT)]
    #[arg(long = "boot-mac", value_name = "MAC[@CLASS]=PATH")]
    pub boot_mac: Vec<BootMacArg>,
    /// A fixed address for one client (repeatable, dhcp mode).
    #[arg(help_heading = DHCP)]
    #[arg(long = "reserve", value_name = "MAC=IP")]
    pub reserve: Vec<ReserveArg>,
    /// Router (option 3) handed out in dhcp mode, or `none`. Default: the server.
    #[arg(help_heading = DHCP)]
    #[arg(long, value_name = "IP|none")]
    pub router: Option<Optional<Ipv4Addr>>,
    /// DNS server (option 6) handed out in dhcp mode (repeatable), or `none`. Default: the
    /// server.
    #[arg(help_heading = DHCP)]
    #[arg(long, value_name = "IP|none")]
    pub dns: Vec<Optional<Ipv4Addr>>,
    /// Lease file (dhcp mode), or a PostgreSQL database shared with replicas:
    /// postgresql://USER@HOST/DB (docs/replicas.md). Default: /var/lib/pocketpxe/IFACE.leases.
    #[arg(help_heading = DHCP)]
    #[arg(long, value_name = "FILE|URL")]
    pub leases: Option<PathBuf>,
    /// DHCP server port.
    #[arg(help_heading = DHCP)]
    #[arg(long, value_name = "PORT", default_value_t = 67)]
    pub dhcp_port: u16,
    /// TFTP port.
    #[arg(long, value_name = "PORT", default_value_t = 69)]
    pub tftp_port: u16,
    /// Concurrent TFTP transfers one client IP address may run (0: no limit). A booting
    /// machine needs one or two at a time; the cap keeps one host from taking every slot.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_transfers_per_client: u16,
    /// Transfer limits, negotiation and timing, as for `pocketpxe tftp`.
    #[command(flatten)]
    pub tftp: TftpTuning,
    /// Let booted machines reach the internet through this server: IPv4 forwarding plus
    /// masquerading of the subnet out of the uplink (nftables table `ip pocketpxe`), undone on
    /// exit and, after a crash, on the next start.
    #[arg(help_heading = NAT)]
    #[arg(long)]
    pub nat: bool,
    /// The uplink for --nat (default: the interface holding the default route).
    #[arg(help_heading = NAT)]
    #[arg(long, value_name = "IFACE")]
    pub uplink: Option<String>,
    /// Fetch Debian's netboot installer (e.g. bookworm) into --root on first start, when no
    /// verified copy is there, and boot it by default (see --arch).
    #[arg(help_heading = DEBIAN)]
    #[arg(long, value_name = "DIST")]
    pub debian: Option<String>,
    /// With --debian: the architectures to fetch and boot, comma-separated: amd64 (BIOS
    /// pxelinux.0, UEFI x64 bootnetx64.efi) and arm64 (UEFI arm64 bootnetaa64.efi), e.g.
    /// amd64,arm64.
    #[arg(help_heading = DEBIAN)]
    #[arg(long, value_name = "ARCH[,ARCH]", default_value = "amd64")]
    pub arch: crate::fetch::menus::ArchList,
    /// With --debian: the Debian mirror to fetch from (http:// or https://).
    #[arg(help_heading = DEBIAN)]
    #[arg(long, value_name = "URL", default_value = crate::fetch::DEFAULT_MIRROR)]
    pub mirror: String,
    /// With --debian: a serial console in the generated boot menus, e.g. ttyS0 or ttyS0,115200.
    #[arg(help_heading = DEBIAN)]
    #[arg(long, value_name = "TTY[,BAUD]")]
    pub console: Option<crate::fetch::menus::SerialConsole>,
    /// With --debian: an OpenPGP keyring to verify the mirror's InRelease with, for a private
    /// mirror signed with its own key [default: Debian's archive keyring].
    #[arg(help_heading = DEBIAN)]
    #[arg(long, value_name = "FILE", conflicts_with = "no_verify_signature")]
    pub keyring: Option<PathBuf>,
    /// With --debian: do not verify the mirror's InRelease signature; trust SHA256SUMS as the
    /// mirror sends it (a warning is logged).
    #[arg(help_heading = DEBIAN)]
    #[arg(long)]
    pub no_verify_signature: bool,
    /// After binding its ports and setting up the address and NAT, run as this user (default:
    /// `pocketpxe`; looked up through NSS; if it does not exist, serve refuses to start),
    /// keeping only CAP_NET_ADMIN when an address or NAT must be undone on exit. `root` keeps
    /// root.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The Unix socket `pocketpxe status` reads this daemon's state from. Default:
    /// /run/pocketpxe/netns-INODE/status-IFACE.sock (INODE names the network namespace).
    #[arg(long, value_name = "PATH")]
    pub status_socket: Option<PathBuf>,
    /// A boot is over (and its summary logged) after this long without DHCP or TFTP activity
    /// from the client: seconds, or 90s, 5m, ….
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    pub boot_quiet: Duration,
    /// Serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9469;
    /// bound before root is dropped, so a port below 1024 works). Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Answer IPv6 router solicitations on the interface with "no router here" (lifetime 0, no
    /// prefix, no DHCPv6), so clients like iPXE stop waiting for one. Default: on in dhcp mode,
    /// off in proxy mode (the network's own router speaks there).
    #[arg(long, value_enum, value_name = "on|off")]
    pub router_advert: Option<OnOff>,
    /// With --debian: how machines reach the installer. `tftp`: pxelinux (BIOS) and GRUB
    /// (UEFI) load it over TFTP. `ipxe`: they chain to iPXE (Debian's `ipxe` package:
    /// undionly.kpxe, snponly.efi), whose script loads it over HTTP when the server serves
    /// HTTP. `auto`: BIOS machines through iPXE, UEFI machines through Debian's signed shim
    /// and GRUB (so Secure Boot works). In proxy mode UEFI machines chain to iPXE whatever
    /// this says.
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    pub via: Via,
    /// TCP port of the HTTP server, which serves --root read-only on the interface (kernels
    /// and initrds for iPXE and UEFI HTTP boot clients).
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 80,
        conflicts_with = "no_http"
    )]
    pub http_port: u16,
    /// Serve no HTTP: files only over TFTP.
    #[arg(long)]
    pub no_http: bool,
    /// Diskless clients: their kernel, relative to --root. With --diskless-initrd and one of
    /// --diskless-live or --diskless-nfs; iPXE clients then get diskless/boot.ipxe by default.
    #[arg(help_heading = DISKLESS)]
    #[arg(long, value_name = "PATH")]
    pub diskless_kernel: Option<String>,
    /// Diskless clients: their initrd, relative to --root (it must understand the command line
    /// of the root kind: live-boot's fetch=, or nfsroot= with overlayroot=tmpfs).
    #[arg(help_heading = DISKLESS)]
    #[arg(long, value_name = "PATH")]
    pub diskless_initrd: Option<String>,
    /// Diskless clients run a live image in RAM: this squashfs, relative to --root, fetched
    /// over serve's HTTP server at boot (kernel command line `boot=live fetch=URL`).
    #[arg(help_heading = DISKLESS)]
    #[arg(long, value_name = "IMAGE", conflicts_with = "diskless_nfs")]
    pub diskless_live: Option<String>,
    /// Diskless clients mount this NFS export as root, read-only and shared, with a RAM
    /// overlay each (`root=/dev/nfs nfsroot=… overlayroot=tmpfs`). SERVER defaults to this
    /// server; OPTIONS to vers=4.1. The server is asked at start whether the export exists.
    #[arg(help_heading = DISKLESS)]
    #[arg(long, value_name = "[SERVER:]/EXPORT[,OPTIONS]")]
    pub diskless_nfs: Option<crate::diskless::NfsRoot>,
    /// More kernel parameters for diskless clients, e.g. "console=ttyS0,115200".
    #[arg(help_heading = DISKLESS)]
    #[arg(long, value_name = "ARGS")]
    pub diskless_append: Option<String>,
    /// Serve the control API (machine records, leases, boot events; docs/machines.md) on
    /// ADDR:PORT, e.g. 127.0.0.1:8067. Off by default; an address other than loopback needs
    /// --control-token.
    #[arg(help_heading = MACHINES)]
    #[arg(long, value_name = "ADDR:PORT")]
    pub control: Option<std::net::SocketAddr>,
    /// A file holding the bearer token every control API request must carry
    /// (`Authorization: Bearer TOKEN`).
    #[arg(help_heading = MACHINES)]
    #[arg(long, value_name = "FILE")]
    pub control_token: Option<PathBuf>,
    /// Where machine records made through the control API and install-done marks are kept.
    /// Default: machines.json beside the first interface's lease file.
    #[arg(help_heading = MACHINES)]
    #[arg(long, value_name = "FILE")]
    pub machine_state: Option<PathBuf>,
    /// Ask a pixiecore-style API about machines without a record: GET URL/v1/boot/MAC; any
    /// answer but 200 with a kernel means "ignore this machine" (docs/machines.md).
    #[arg(help_heading = MACHINES)]
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// The config file's `[[machine]]` records (no flag).
    #[arg(skip)]
    pub machines: Vec<crate::machines::MachineSpec>,
    /// The flags given on the command line (their ids, e.g. `lease_time`), as opposed to
    /// defaults: these override the config file. Filled by [`crate::cli::parse_from`].
    #[arg(skip)]
    pub explicit: Vec<String>,
    /// A subnet behind a DHCP relay agent (repeatable, dhcp mode): its network and the
    /// addresses to lease there, e.g. 10.1.0.0/24=10.1.0.10-10.1.0.99. Its clients get the
    /// relay's address as router. The relay must reach this server through the interface. See
    /// docs/relay.md.
    #[arg(help_heading = DHCP)]
    #[arg(long = "relay-subnet", value_name = "CIDR=START-END")]
    pub relay_subnet: Vec<RelaySubnetArg>,
}

impl ServeArgs {
    /// Whether the flag with this id (the field name, e.g. `lease_time`) was given on the
    /// command line.
    pub fn given(&self, id: &str) -> bool {
        self.explicit.iter().any(|e| e == id)
    }

    /// The interface (empty before [`crate::config::resolve`] filled it in).
    pub fn iface(&self) -> &str {
        self.interface.as_deref().unwrap_or_default()
    }

    /// The TFTP root (empty before [`crate::config::resolve`] filled it in).
    pub fn tftp_root(&self) -> &std::path::Path {
        self.root.as_deref().unwrap_or(std::path::Path::new(""))
    }
}

impl FromStr for ServeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, false)
            .map_err(|_| format!("'{s}' is not a mode: dhcp or proxy"))
    }
}

impl std::fmt::Display for ServeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Dhcp => "dhcp",
            Self::Proxy => "proxy",
        })
    }
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// `--via`: the path from the firmware to the Debian installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// BIOS through iPXE (the installer over HTTP), UEFI through the signed shim and GRUB.
    Auto,
    /// pxelinux and GRUB over TFTP.
    Tftp,
    /// iPXE, then its script.
    Ipxe,
}

impl FromStr for OnOff {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, false).map_err(|_| format!("'{s}' is not on or off"))
    }
}

impl FromStr for Via {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, false)
            .map_err(|_| format!("'{s}' is not a way to the installer: tftp or ipxe"))
    }
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeMode {
    /// Authoritative DHCP server for the interface's subnet.
    Dhcp,
    /// proxyDHCP next to an existing DHCP server (ports 67 and 4011).
    Proxy,
}

/// `START-END`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address.
    pub end: Ipv4Addr,
}

impl FromStr for AddrRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("'{s}' is not START-END, e.g. 192.168.242.2-192.168.242.99"))?;
        let ip = |t: &str| {
            t.trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("'{t}' is not an IPv4 address"))
        };
        let (start, end) = (ip(a)?, ip(b)?);
        if u32::from(start) > u32::from(end) {
            return Err(format!("range {start}-{end} ends before it starts"));
        }
        Ok(Self { start, end })
    }
}

impl std::fmt::Display for AddrRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// `CLASS=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArg {
    /// The class.
    pub class: ClientClass,
    /// The boot file.
    pub file: String,
}

impl FromStr for BootArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (class, file) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not CLASS=PATH, e.g. efi-x64=ipxe.efi"))?;
        Ok(Self {
            class: class.parse().map_err(|e| format!("'{class}': {e}"))?,
            file: boot_file(file)?,
        })
    }
}

/// Why `rpi` takes no per-client rule: the TFTP server maps every Pi's requests into one
/// directory, and the bootloader itself picks a Pi's own subdirectory.
pub(crate) const RPI_PER_MAC: &str = "rpi takes no per-client rule: put a Pi's own files in \
     DIR/SERIAL/ or DIR/MAC/ of --boot rpi=DIR (docs/raspberry-pi.md)";

/// `MAC[@CLASS]=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootMacArg {
    /// The client.
    pub mac: [u8; 6],
    /// Only this class, if set.
    pub class: Option<ClientClass>,
    /// The boot file.
    pub file: String,
}

impl FromStr for BootMacArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (who, file) = s.split_once('=').ok_or_else(|| {
            format!("'{s}' is not MAC[@CLASS]=PATH, e.g. 52:54:00:12:34:56=test.0")
        })?;
        let (mac, class) = match who.split_once('@') {
            Some((mac, class)) => (
                mac,
                Some(class.parse().map_err(|e| format!("'{class}': {e}"))?),
            ),
            None => (who, None),
        };
        if class == Some(ClientClass::RaspberryPi) {
            return Err(RPI_PER_MAC.to_owned());
        }
        Ok(Self {
            mac: parse_mac(mac).ok_or_else(|| format!("'{mac}' is not a MAC address"))?,
            class,
            file: boot_file(file)?,
        })
    }
}

/// `MAC=IP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveArg {
    /// The client.
    pub mac: [u8; 6],
    /// Its address.
    pub ip: Ipv4Addr,
}

impl FromStr for ReserveArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (mac, ip) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not MAC=IP, e.g. 52:54:00:12:34:56=192.168.242.50"))?;
        Ok(Self {
            mac: parse_mac(mac).ok_or_else(|| format!("'{mac}' is not a MAC address"))?,
            ip: ip
                .parse()
                .map_err(|_| format!("'{ip}' is not an IPv4 address"))?,
        })
    }
}

/// A value or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optional<T> {
    /// The value.
    Some(T),
    /// `none`.
    None,
}

impl<T: FromStr> FromStr for Optional<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(Self::None);
        }
        s.parse()
            .map(Self::Some)
            .map_err(|_| format!("'{s}' is not an IPv4 address or 'none'"))
    }
}

pub(crate) fn boot_file(file: &str) -> Result<String, String> {
    if file.is_empty() {
        return Err("empty boot file".to_owned());
    }
    if file.len() > 127 {
        return Err(format!(
            "boot file '{file}' is longer than 127 bytes (the BOOTP file field)"
        ));
    }
    Ok(file.to_owned())
}

/// A subnet behind a relay agent: `--relay-subnet CIDR=START-END`, or a `[[subnet]]` table of
/// the config file, which can also set the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySubnetArg {
    /// The subnet (its network address and prefix).
    pub network: Ipv4Cidr,
    /// Addresses to lease there.
    pub range: AddrRange,
    /// Option 3; `None`: the relay's address (`giaddr`).
    pub router: Option<Ipv4Addr>,
    /// Option 6; empty: the interface's.
    pub dns: Vec<Ipv4Addr>,
    /// The lease time; `None`: the interface's.
    pub lease_time: Option<Duration>,
    /// Fixed addresses in this subnet.
    pub hosts: Vec<ReserveArg>,
    /// Boot files per class for clients there; empty: the interface's `--boot` rules.
    pub boot: Vec<BootArg>,
}

impl RelaySubnetArg {
    /// A subnet with `range` in `network` and every other setting at its default.
    ///
    /// # Errors
    /// If `network` has host bits set.
    pub fn new(network: Ipv4Cidr, range: AddrRange) -> Result<Self, String> {
        if network.addr != network.network() {
            return Err(format!(
                "{network} is not a network address: write {}/{}",
                network.network(),
                network.prefix
            ));
        }
        Ok(Self {
            network,
            range,
            router: None,
            dns: Vec::new(),
            lease_time: None,
            hosts: Vec::new(),
            boot: Vec::new(),
        })
    }
}

impl FromStr for RelaySubnetArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (network, range) = s.split_once('=').ok_or_else(|| {
            format!("'{s}' is not CIDR=START-END, e.g. 10.1.0.0/24=10.1.0.10-10.1.0.99")
        })?;
        Self::new(network.trim().parse()?, range.parse()?)
    }
}

impl std::fmt::Display for RelaySubnetArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.network, self.range)
    }
}
