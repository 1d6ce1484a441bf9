//! The config file of `pocketpxe serve` and `pocketpxe check-config` (schema: docs/config.md).
//!
//! TOML, read with serde and the `toml` crate. Keys are the `serve` flags without their
//! leading `--` (`lease-time`, `max-blksize`, …); top-level keys are process-wide settings
//! (`user`, `uplink`) and defaults that every `[[interface]]` inherits; each `[[interface]]`
//! has a `name` and may override any default. Per-client rules are `[[interface.host]]`
//! tables, the boot rules a table of class = file. Values are read by the same parsers as the
//! flags.
//!
//! Precedence, from strongest: a flag given on the command line (for every interface of the
//! file; `--reserve` and `--boot-mac` add to the file's hosts), the interface's key, the
//! top-level key, the flag's default. `--interface X` serves only interface X of the file, or
//! defines it from the top-level keys when the file has none by that name.
//!
//! Every error names the file, line and column, and the key (`interface "br0": boot.efi-x64`).

use crate::cli::{
    AddrRange, BootArg, BootMacArg, OnOff, Optional, RelaySubnetArg, ReserveArg, ServeArgs,
    ServeMode, Via, parse_duration,
};
use crate::fetch::menus::{ArchList, SerialConsole};
use crate::sys::netif::{Ipv4Cidr, format_mac, parse_mac};
use pocketpxe_core::dhcp::ClientClass;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

/// The config file read when no `--config` is given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/pocketpxe/pocketpxe.toml";

/// What is wrong with a config file (or how the command line combines with it). One line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {}: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: std::io::Error,
    },
    /// A key (or the TOML syntax) is wrong, at a known place in the file.
    #[error("{}:{line}:{column}: {}{message}", .path.display(), key_prefix(.key))]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// The key path, e.g. `interface "br0": boot.efi-x64` (may be empty).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Not tied to one place: a flag, or the file as a whole.
    #[error("{0}")]
    Usage(String),
}

/// The interfaces to serve, each with every setting resolved (file, flags, defaults).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// One entry per interface: `interface` and `root` are set.
    pub interfaces: Vec<ServeArgs>,
}

/// The config file to read for these flags: `--config`, else [`DEFAULT_PATH`] if it exists.
pub fn config_path(args: &ServeArgs, default: &Path) -> Option<PathBuf> {
    match &args.config {
        Some(path) => Some(path.clone()),
        None => default.exists().then(|| default.to_owned()),
    }
}

/// Resolves what `serve` with these flags serves: the config file (if any, see
/// [`config_path`]) with the command-line flags on top, checked as far as possible without
/// touching the system: keys at the wrong level or in the wrong mode, values out of range,
/// the range and reservations against `address`, duplicate interfaces, reservations and lease
/// files.
///
/// # Errors
/// The first problem, naming the file, line, column and key.
pub fn resolve(args: &ServeArgs, default: &Path) -> Result<Resolved, ConfigError> {
    let Some(path) = config_path(args, default) else {
        if args.interface.is_none() || args.root.is_none() {
            return Err(ConfigError::Usage(format!(
                "serve needs --interface and --root, or a config file (--config FILE; \
                 {default} is read when it exists)",
                default = default.display()
            )));
        }
        check_partners(args, std::slice::from_ref(args))?;
        return Ok(Resolved {
            file: None,
            interfaces: vec![args.clone()],
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
        path: path.clone(),
        error,
    })?;
    let interfaces = resolve_text(args, &path, &text)?;
    Ok(Resolved {
        file: Some(path),
        interfaces,
    })
}

/// Flags that only mean something beside another setting, which may come from the command line
/// or from the file: `--uplink` needs an interface with NAT, the Debian flags one with Debian.
fn check_partners(cli: &ServeArgs, interfaces: &[ServeArgs]) -> Result<(), ConfigError> {
    let has_nat = interfaces.iter().any(|a| a.nat);
    let has_debian = interfaces.iter().any(|a| a.debian.is_some());
    let debian_flags = [
        "arch",
        "mirror",
        "console",
        "keyring",
        "no_verify_signature",
        "via",
    ];
    let has_control = interfaces.iter().any(|a| a.control.is_some());
    let missing = [
        ("uplink", has_nat, "--nat", "nat = true"),
        (
            "control_token",
            has_control,
            "--control",
            "control = \"ADDR:PORT\"",
        ),
    ]
    .into_iter()
    .chain(
        debian_flags
            .into_iter()
            .map(|id| (id, has_debian, "--debian", "debian = \"DIST\"")),
    )
    .find(|&(id, partnered, ..)| cli.given(id) && !partnered);
    if let Some((id, _, flag, key)) = missing {
        let id = id.replace('_', "-");
        return Err(ConfigError::Usage(format!(
            "--{id} goes with {flag} (or {key} in the config file): add it, or drop --{id}"
        )));
    }
    Ok(())
}

/// What SIGHUP re-reads: `file` (the config file read at start, if any) with the same
/// command-line flags over it, checked as at start; the boot rules and reservations of every
/// interface, or the one-line error that keeps the running ones. Other settings that differ
/// from `serving` (the interfaces as started) are logged as waiting for a restart.
pub fn reloader(
    args: &ServeArgs,
    file: Option<PathBuf>,
    serving: Vec<ServeArgs>,
) -> crate::serve::reload::Reloader {
    let mut args = args.clone();
    Box::new(move || {
        let interfaces = match &file {
            Some(path) => {
                args.config = Some(path.clone());
                let now = resolve(&args, path).map_err(|e| e.to_string())?.interfaces;
                warn_unreloaded(&serving, &now, path);
                now
            }
            // Started from flags alone: a config file that appeared since is not read.
            None => vec![args.clone()],
        };
        Ok(crate::serve::flag_rules(&interfaces))
    })
}

/// Warns, once per interface, when settings other than the ones a reload applies (boot rules,
/// hosts) differ between `before` and `after`: they take effect on a restart.
fn warn_unreloaded(before: &[ServeArgs], after: &[ServeArgs], file: &Path) {
    let fixed = |a: &ServeArgs| {
        let mut a = a.clone();
        a.boot.clear();
        a.boot_mac.clear();
        a.reserve.clear();
        format!("{a:?}")
    };
    for new in after {
        let Some(old) = before.iter().find(|b| b.iface() == new.iface()) else {
            continue;
        };
        if fixed(old) != fixed(new) {
            tracing::warn!(
                interface = new.iface(),
                "{}: settings of {} other than boot rules and hosts changed; they take effect on \
                 a restart",
                file.display(),
                new.iface()
            );
        }
    }
}

/// [`resolve`] for the text of the file at `path`.
///
/// # Errors
/// As [`resolve`].
pub fn resolve_text(
    args: &ServeArgs,
    path: &Path,
    text: &str,
) -> Result<Vec<ServeArgs>, ConfigError> {
    let doc = Doc::parse(path, text)?;
    let file: Section = toml::from_str(text).map_err(|e| doc.toml_error(&e))?;
    let sections = file.interface.as_deref().unwrap_or_default();
    let mut chosen: Vec<(Option<usize>, ServeArgs)> = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        let name = section.name.as_deref().unwrap_or_default();
        if args.interface.as_deref().is_some_and(|want| want != name) {
            continue;
        }
        chosen.push((Some(i), merge(args, &file, section, name)));
    }
    if chosen.is_empty() {
        match &args.interface {
            Some(name) => chosen.push((None, merge(args, &file, &Section::default(), name))),
            None => {
                return Err(ConfigError::Usage(format!(
                    "{}: no [[interface]] to serve: add one with name = \"IFACE\" \
                     (see docs/config.md), or give --interface",
                    path.display()
                )));
            }
        }
    }
    validate(&doc, args, &file, &chosen)?;
    let interfaces: Vec<ServeArgs> = chosen.into_iter().map(|(_, a)| a).collect();
    check_partners(args, &interfaces)?;
    Ok(interfaces)
}

/// One section of the file: the top level or an `[[interface]]`. The same keys are accepted
/// in both; [`validate`] refuses those that belong to the other level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Section {
    // Top level only.
    user: Option<String>,
    uplink: Option<String>,
    #[serde(default, deserialize_with = "parsed")]
    metrics: Option<std::net::SocketAddr>,
    #[serde(default, deserialize_with = "parsed")]
    control: Option<std::net::SocketAddr>,
    control_token: Option<PathBuf>,
    machine_state: Option<PathBuf>,
    api: Option<String>,
    /// `[[machine]]`: machine records (read by [`machine_specs`]).
    machine: Option<Vec<toml::Table>>,
    interface: Option<Vec<Self>>,
    // [[interface]] only.
    name: Option<String>,
    host: Option<Vec<Host>>,
    // Both: at the top level, defaults for every interface.
    #[serde(alias = "tftp-root")]
    root: Option<PathBuf>,
    #[serde(default, deserialize_with = "parsed")]
    mode: Option<ServeMode>,
    #[serde(default, deserialize_with = "parsed")]
    range: Option<AddrRange>,
    #[serde(default, deserialize_with = "lease_time")]
    lease_time: Option<Duration>,
    #[serde(default, deserialize_with = "parsed")]
    address: Option<Ipv4Cidr>,
    boot: Option<BootTable>,
    #[serde(default, deserialize_with = "parsed")]
    router: Option<Optional<Ipv4Addr>>,
    dns: Option<Dns>,
    leases: Option<PathBuf>,
    dhcp_port: Option<u16>,
    tftp_port: Option<u16>,
    max_transfers_per_client: Option<u16>,
    max_transfers: Option<u16>,
    max_blksize: Option<u16>,
    max_windowsize: Option<u16>,
    timeout: Option<u8>,
    retries: Option<u8>,
    no_options: Option<bool>,
    #[serde(default, deserialize_with = "duration_or_zero")]
    grace: Option<Duration>,
    nat: Option<bool>,
    wait_interface: Option<Wait>,
    debian: Option<String>,
    #[serde(default, deserialize_with = "parsed")]
    arch: Option<ArchList>,
    mirror: Option<String>,
    #[serde(default, deserialize_with = "parsed")]
    console: Option<SerialConsole>,
    keyring: Option<PathBuf>,
    no_verify_signature: Option<bool>,
    status_socket: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    boot_quiet: Option<Duration>,
    #[serde(default, deserialize_with = "parsed")]
    router_advert: Option<OnOff>,
    #[serde(default, deserialize_with = "parsed")]
    via: Option<Via>,
    http_port: Option<u16>,
    no_http: Option<bool>,
    diskless_kernel: Option<String>,
    diskless_initrd: Option<String>,
    diskless_live: Option<String>,
    #[serde(default, deserialize_with = "parsed")]
    diskless_nfs: Option<crate::diskless::NfsRoot>,
    diskless_append: Option<String>,
    relay_subnet: Option<Vec<Parsed<RelaySubnetArg>>>,
    /// `[[subnet]]` / `[[interface.subnet]]`: subnets behind relay agents.
    subnet: Option<Vec<Subnet>>,
}

/// `[[interface.subnet]]` (or a top-level `[[subnet]]`, inherited like any key): a subnet
/// behind a relay agent, with its own range, router, DNS, lease time and fixed addresses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Subnet {
    #[serde(default, deserialize_with = "parsed")]
    network: Option<Ipv4Cidr>,
    #[serde(default, deserialize_with = "parsed")]
    range: Option<AddrRange>,
    #[serde(default, deserialize_with = "parsed")]
    router: Option<Ipv4Addr>,
    dns: Option<Dns>,
    #[serde(default, deserialize_with = "lease_time")]
    lease_time: Option<Duration>,
    boot: Option<BootTable>,
    host: Option<Vec<SubnetHost>>,
}

impl Subnet {
    /// The subnet as the flag's value, or what is wrong with it and the key to blame.
    fn to_arg(&self) -> Result<RelaySubnetArg, (&'static str, String)> {
        let network = self.network.ok_or((
            "network",
            "a [[subnet]] needs network = \"CIDR\", e.g. \"10.1.0.0/24\"".to_owned(),
        ))?;
        let range = self.range.ok_or((
            "range",
            format!("subnet {network} needs range = \"START-END\": the addresses to lease there"),
        ))?;
        let mut arg = RelaySubnetArg::new(network, range).map_err(|m| ("network", m))?;
        arg.router = self.router;
        arg.dns = self
            .dns
            .iter()
            .flat_map(|d| &d.0)
            .filter_map(|d| match d {
                Optional::Some(ip) => Some(*ip),
                Optional::None => None,
            })
            .collect();
        arg.lease_time = self.lease_time;
        arg.boot = self.boot.clone().map(BootTable::rules).unwrap_or_default();
        arg.hosts = self
            .host
            .iter()
            .flatten()
            .map(|h| ReserveArg {
                mac: h.mac,
                ip: h.ip,
            })
            .collect();
        Ok(arg)
    }
}

/// `[[interface.subnet.host]]`: a fixed address in a relayed subnet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetHost {
    #[serde(deserialize_with = "mac")]
    mac: [u8; 6],
    #[serde(deserialize_with = "parsed_value")]
    ip: Ipv4Addr,
}

/// A value read from a string by its flag's parser.
#[derive(Debug, Clone)]
struct Parsed<T>(T);

/// `[[interface.host]]`: a fixed address and/or a boot file for one client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Host {
    #[serde(deserialize_with = "mac")]
    mac: [u8; 6],
    #[serde(default, deserialize_with = "parsed")]
    ip: Option<Ipv4Addr>,
    #[serde(default, deserialize_with = "boot_file")]
    boot: Option<String>,
    #[serde(default, deserialize_with = "parsed")]
    class: Option<ClientClass>,
}

/// `boot = { bios = "pxelinux.0", efi-x64 = "bootnetx64.efi" }`, in file order: each key with
/// its rule, or what is wrong with it ([`check_section`] reports it at the key).
#[derive(Debug, Clone)]
struct BootTable(Vec<(String, Result<BootArg, String>)>);

impl BootTable {
    fn rules(self) -> Vec<BootArg> {
        self.0.into_iter().filter_map(|(_, r)| r.ok()).collect()
    }
}

/// `dns = ["1.1.1.1", "9.9.9.9"]`, `dns = "1.1.1.1"` or `dns = "none"`.
#[derive(Debug, Clone)]
struct Dns(Vec<Optional<Ipv4Addr>>);

/// `wait-interface = true` (60 s), `false`, or a time.
#[derive(Debug, Clone, Copy)]
struct Wait(Option<Duration>);

/// The keys that only apply in dhcp mode (`host.ip` too): (key, flag id).
const DHCP_ONLY: [(&str, &str); 5] = [
    ("range", "range"),
    ("lease-time", "lease_time"),
    ("router", "router"),
    ("dns", "dns"),
    ("leases", "leases"),
];

/// The flags' values under the file's: `cli` for what was given on the command line, then
/// the interface's keys, then the top level's, then `cli`'s defaults.
fn merge(cli: &ServeArgs, top: &Section, iface: &Section, name: &str) -> ServeArgs {
    let mut a = cli.clone();
    a.interface = Some(name.to_owned());
    macro_rules! set {
        ($id:literal, $field:ident, $($target:ident).+, $wrap:expr) => {
            if !cli.given($id) {
                if let Some(v) = iface.$field.clone().or_else(|| top.$field.clone()) {
                    a.$($target).+ = $wrap(v);
                }
            }
        };
    }
    set!("mode", mode, mode, |v| v);
    // Top-level dhcp-only keys are defaults for dhcp interfaces; a proxy interface skips them.
    let dhcp = a.mode == ServeMode::Dhcp;
    macro_rules! set_dhcp {
        ($id:literal, $field:ident, $wrap:expr) => {
            if !cli.given($id) {
                let top_v = if dhcp { top.$field.clone() } else { None };
                if let Some(v) = iface.$field.clone().or(top_v) {
                    a.$field = $wrap(v);
                }
            }
        };
    }
    set!("root", root, root, Some);
    set!("address", address, address, Some);
    set_dhcp!("range", range, Some);
    set_dhcp!("lease_time", lease_time, Some);
    set_dhcp!("router", router, Some);
    set_dhcp!("dns", dns, |d: Dns| d.0);
    set_dhcp!("leases", leases, Some);
    set!("boot", boot, boot, BootTable::rules);
    set!("dhcp_port", dhcp_port, dhcp_port, |v| v);
    set!("tftp_port", tftp_port, tftp_port, |v| v);
    set!(
        "max_transfers_per_client",
        max_transfers_per_client,
        max_transfers_per_client,
        |v| v
    );
    set!("max_transfers", max_transfers, tftp.max_transfers, |v| v);
    set!("max_blksize", max_blksize, tftp.max_blksize, |v| v);
    set!("max_windowsize", max_windowsize, tftp.max_windowsize, |v| v);
    set!("timeout", timeout, tftp.timeout, |v| v);
    set!("retries", retries, tftp.retries, |v| v);
    set!("no_options", no_options, tftp.no_options, |v| v);
    set!("grace", grace, tftp.grace, |v| v);
    set!("nat", nat, nat, |v| v);
    set!(
        "wait_interface",
        wait_interface,
        wait_interface,
        |w: Wait| w.0
    );
    set!("debian", debian, debian, Some);
    set!("arch", arch, arch, |v| v);
    set!("mirror", mirror, mirror, |v| v);
    set!("console", console, console, Some);
    set!("keyring", keyring, keyring, Some);
    set!(
        "no_verify_signature",
        no_verify_signature,
        no_verify_signature,
        |v| v
    );
    set!("status_socket", status_socket, status_socket, Some);
    set!("boot_quiet", boot_quiet, boot_quiet, |v| v);
    set!("router_advert", router_advert, router_advert, Some);
    set!("via", via, via, |v| v);
    set!("http_port", http_port, http_port, |v| v);
    set!("no_http", no_http, no_http, |v| v);
    set!("diskless_kernel", diskless_kernel, diskless_kernel, Some);
    set!("diskless_initrd", diskless_initrd, diskless_initrd, Some);
    set!("diskless_live", diskless_live, diskless_live, Some);
    set!("diskless_nfs", diskless_nfs, diskless_nfs, Some);
    set!("diskless_append", diskless_append, diskless_append, Some);
    // Relayed subnets (dhcp mode): the [[subnet]] tables (the interface's, else the top
    // level's), then --relay-subnet, else the relay-subnet key.
    if dhcp {
        let tables = iface.subnet.as_ref().or(top.subnet.as_ref());
        let keyed = if cli.given("relay_subnet") {
            cli.relay_subnet.clone()
        } else {
            let key = iface.relay_subnet.as_ref().or(top.relay_subnet.as_ref());
            key.into_iter().flatten().map(|p| p.0.clone()).collect()
        };
        a.relay_subnet = tables
            .iter()
            .flat_map(|t| t.iter())
            .filter_map(|t| t.to_arg().ok())
            .chain(keyed)
            .collect();
    }
    // Process-wide: the top level only (validate refuses them in an interface).
    if !cli.given("user") && top.user.is_some() {
        a.user.clone_from(&top.user);
    }
    if !cli.given("uplink") && top.uplink.is_some() {
        a.uplink.clone_from(&top.uplink);
    }
    if !cli.given("metrics") && top.metrics.is_some() {
        a.metrics = top.metrics;
    }
    if !cli.given("control") && top.control.is_some() {
        a.control = top.control;
    }
    if !cli.given("control_token") && top.control_token.is_some() {
        a.control_token.clone_from(&top.control_token);
    }
    if !cli.given("machine_state") && top.machine_state.is_some() {
        a.machine_state.clone_from(&top.machine_state);
    }
    if !cli.given("api") && top.api.is_some() {
        a.api.clone_from(&top.api);
    }
    a.machines = machine_specs(top).unwrap_or_default();
    // Per-client rules: the file's, then the command line's.
    let hosts = iface.host.as_deref().unwrap_or_default();
    a.reserve = hosts
        .iter()
        .filter_map(|h| h.ip.map(|ip| ReserveArg { mac: h.mac, ip }))
        .chain(cli.reserve.iter().copied())
        .collect();
    a.boot_mac = hosts
        .iter()
        .filter_map(|h| {
            h.boot.as_ref().map(|file| BootMacArg {
                mac: h.mac,
                class: h.class,
                file: file.clone(),
            })
        })
        .chain(cli.boot_mac.iter().cloned())
        .collect();
    a
}

/// Two fixed addresses (`what`: "reservations" or "hosts") that share a MAC or an address.
fn shared_reservation(what: &str, first: &ReserveArg, second: &ReserveArg) -> String {
    format!(
        "{what} {}={} and {}={} share {}: one address per client, one client per address",
        format_mac(&first.mac),
        first.ip,
        format_mac(&second.mac),
        second.ip,
        if first.mac == second.mac {
            "the MAC"
        } else {
            "the address"
        }
    )
}

/// The `[[machine]]` records, or the first wrong one: its index and the field.
fn machine_specs(
    top: &Section,
) -> Result<Vec<crate::machines::MachineSpec>, (usize, crate::machines::FieldError)> {
    let mut specs: Vec<crate::machines::MachineSpec> = Vec::new();
    for (i, table) in top.machine.iter().flatten().enumerate() {
        let json = serde_json::to_value(table).map_err(|e| {
            (
                i,
                crate::machines::FieldError {
                    field: "mac".to_owned(),
                    message: e.to_string(),
                },
            )
        })?;
        let spec = crate::machines::MachineSpec::from_json(None, &json).map_err(|e| (i, e))?;
        if specs.iter().any(|s| s.mac == spec.mac) {
            return Err((
                i,
                crate::machines::FieldError {
                    field: "mac".to_owned(),
                    message: format!("a second [[machine]] for {}", format_mac(&spec.mac)),
                },
            ));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// Each `[[machine]]` as [`crate::machines::MachineSpec::from_json`] reads it, an error at
/// the field that is wrong.
fn check_machines(doc: &Doc<'_>, top: &Section) -> Result<(), ConfigError> {
    let Err((i, e)) = machine_specs(top) else {
        return Ok(());
    };
    let first = e
        .field
        .split(['.', '['])
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut path = vec![Seg::Key("machine"), Seg::Index(i)];
    let key_path = {
        let mut p = path.clone();
        p.push(Seg::Key(&first));
        p
    };
    let span = doc
        .span(&key_path)
        .or_else(|| doc.span(&path))
        .unwrap_or(0..0);
    if doc.span(&key_path).is_some() {
        path = key_path;
    }
    Err(doc.error(span, &path, &e.message))
}

/// Everything that can be checked without the system: keys at the wrong level or in the wrong
/// mode, values out of range, the range and reservations against `address`, duplicates.
fn validate(
    doc: &Doc<'_>,
    cli: &ServeArgs,
    top: &Section,
    chosen: &[(Option<usize>, ServeArgs)],
) -> Result<(), ConfigError> {
    for key in ["name", "host"] {
        if let Some(span) = doc.span(&[Seg::Key(key)]) {
            return Err(doc.error(
                span,
                &[Seg::Key(key)],
                &format!("`{key}` belongs in an [[interface]] table, not at the top level"),
            ));
        }
    }
    check_section(doc, cli, top, None)?;
    check_machines(doc, top)?;
    let sections = top.interface.as_deref().unwrap_or_default();
    for (i, section) in sections.iter().enumerate() {
        let at = |rest: &[Seg<'static>]| {
            let mut path = vec![Seg::Key("interface"), Seg::Index(i)];
            path.extend_from_slice(rest);
            path
        };
        for key in [
            "user",
            "uplink",
            "metrics",
            "interface",
            "control",
            "control-token",
            "machine-state",
            "api",
            "machine",
        ] {
            if let Some(span) = doc.span(&at(&[Seg::Key(key)])) {
                return Err(doc.error(
                    span,
                    &at(&[Seg::Key(key)]),
                    &format!(
                        "`{key}` is a process-wide setting: move it to the top level, \
                         before the first [[interface]]"
                    ),
                ));
            }
        }
        if section.name.as_deref().is_none_or(str::is_empty) {
            let span = doc.span(&at(&[])).unwrap_or(0..0);
            return Err(doc.error(
                span,
                &at(&[]),
                "an [[interface]] needs name = \"IFACE\", the interface to serve",
            ));
        }
        check_section(doc, cli, section, Some(i))?;
    }
    let mut names: Vec<&str> = Vec::new();
    let mut relayed: Vec<(Ipv4Cidr, &str)> = Vec::new();
    let mut lease_files: Vec<(PathBuf, &str)> = Vec::new();
    let mut nat: Option<&str> = None;
    for (index, args) in chosen {
        let iface = args.iface();
        let here = |key: &'static str| -> Vec<Seg<'static>> {
            match index {
                Some(i) => vec![Seg::Key("interface"), Seg::Index(*i), Seg::Key(key)],
                None => vec![Seg::Key(key)],
            }
        };
        // The place of `key` of this interface, or the top level's, or the interface itself.
        let place = |key: &'static str, flag: &str| -> Place {
            if cli.given(flag) {
                return Place::Flag(format!("--{}", flag.replace('_', "-")));
            }
            for path in [here(key), vec![Seg::Key(key)]] {
                if let Some(span) = doc.span(&path) {
                    return Place::File(span, path);
                }
            }
            match index {
                Some(_) => {
                    let path = here("name");
                    Place::File(doc.span(&path).unwrap_or(0..0), path)
                }
                // Defined by --interface, not in the file.
                None => Place::Flag(format!("--interface {iface}")),
            }
        };
        let fail = |place: Place, message: String| match place {
            Place::Flag(flag) => ConfigError::Usage(format!("{flag}: {message}")),
            Place::File(span, path) => doc.error(span, &path, &message),
        };
        if names.contains(&iface) {
            return Err(fail(
                place("name", "interface"),
                format!("interface {iface} is named twice: one [[interface]] per interface"),
            ));
        }
        names.push(iface);
        if args.root.is_none() {
            return Err(fail(
                place("name", "root"),
                format!(
                    "no TFTP root for {iface}: set root = \"DIR\" in its [[interface]] or at \
                     the top level, or give --root"
                ),
            ));
        }
        if args.mode == ServeMode::Dhcp {
            let leases = args
                .leases
                .clone()
                .unwrap_or_else(|| default_lease_file(iface));
            // A lease database is shared by design (each address is one row).
            let shared = leases
                .to_str()
                .is_some_and(crate::serve::lease_db::is_db_url);
            if let Some((_, other)) = lease_files
                .iter()
                .find(|(p, _)| *p == leases)
                .filter(|_| !shared)
            {
                return Err(fail(
                    place("leases", "leases"),
                    format!(
                        "interfaces {other} and {iface} would share the lease file {}: give \
                         each its own leases = \"FILE\"",
                        leases.display()
                    ),
                ));
            }
            lease_files.push((leases, iface));
        }
        if args.nat {
            if let Some(other) = nat {
                return Err(fail(
                    place("nat", "nat"),
                    format!("nat is on for {other} already: one interface may have nat = true"),
                ));
            }
            nat = Some(iface);
        }
        if let Some(uplink) = &args.uplink
            && chosen.iter().any(|(_, a)| a.iface() == uplink.as_str())
        {
            return Err(fail(
                place("uplink", "uplink"),
                format!("the uplink {uplink} is an interface being served: name another"),
            ));
        }
        if let Some(server) = args.address
            && let Some(range) = args.range.filter(|_| args.mode == ServeMode::Dhcp)
        {
            crate::serve::check_range(range, server, iface)
                .map_err(|m| fail(place("range", "range"), m))?;
        }
        // Reservations: the file's hosts with an ip (in order), then --reserve.
        let hosts: Vec<usize> = index
            .and_then(|i| sections.get(i))
            .map(|s| {
                s.host
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter(|(_, h)| h.ip.is_some())
                    .map(|(n, _)| n)
                    .collect()
            })
            .unwrap_or_default();
        let at_host = |n: usize| match hosts.get(n) {
            Some(&h) => {
                let path = match index {
                    Some(i) => vec![
                        Seg::Key("interface"),
                        Seg::Index(*i),
                        Seg::Key("host"),
                        Seg::Index(h),
                        Seg::Key("ip"),
                    ],
                    None => Vec::new(),
                };
                Place::File(doc.span(&path).unwrap_or(0..0), path)
            }
            None => Place::Flag("--reserve".to_owned()),
        };
        for (n, r) in args.reserve.iter().enumerate() {
            if let Some(server) = args.address {
                crate::serve::check_reservations(std::slice::from_ref(r), server, iface)
                    .map_err(|m| fail(at_host(n), m))?;
            }
            if let Some(dup) = args.reserve[..n]
                .iter()
                .find(|d| d.mac == r.mac || d.ip == r.ip)
            {
                return Err(fail(at_host(n), shared_reservation("reservations", dup, r)));
            }
        }
        // Relayed subnets: apart from each other, from the interface's and from other
        // interfaces'; one client per address across all of them.
        let places = relay_places(doc, cli, top, *index, args);
        let at_relay = |n: usize| match places.get(n) {
            Some(Some((span, path))) => Place::File(span.clone(), path.clone()),
            _ => Place::Flag("--relay-subnet".to_owned()),
        };
        for (n, r) in args.relay_subnet.iter().enumerate() {
            if let Err((_, message)) = check_relay_subnet(r) {
                return Err(fail(at_relay(n), message));
            }
            if let Some(server) = args.address
                && overlap(r.network, server)
            {
                return Err(fail(
                    at_relay(n),
                    format!(
                        "subnet {} overlaps {iface}'s own subnet {server}: a relayed subnet \
                         lies behind a relay agent, elsewhere",
                        r.network
                    ),
                ));
            }
            if let Some((other, on)) = relayed.iter().find(|(o, _)| overlap(*o, r.network)) {
                return Err(fail(
                    at_relay(n),
                    format!(
                        "subnet {} overlaps subnet {other} (of {on}): each relayed subnet once",
                        r.network
                    ),
                ));
            }
            relayed.push((r.network, iface));
            let earlier = args
                .reserve
                .iter()
                .chain(args.relay_subnet[..n].iter().flat_map(|e| &e.hosts));
            for (k, h) in r.hosts.iter().enumerate() {
                if let Some(dup) = earlier
                    .clone()
                    .chain(&r.hosts[..k])
                    .find(|d| d.mac == h.mac || d.ip == h.ip)
                {
                    return Err(fail(at_relay(n), shared_reservation("hosts", dup, h)));
                }
            }
        }
    }
    Ok(())
}

/// Whether two subnets share an address.
fn overlap(a: Ipv4Cidr, b: Ipv4Cidr) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// Where each of `args.relay_subnet` comes from, in its order: a `[[subnet]]` table (the
/// interface's or the top level's) or a `relay-subnet` entry, with its span; `None` for a flag.
fn relay_places(
    doc: &Doc<'_>,
    cli: &ServeArgs,
    top: &Section,
    index: Option<usize>,
    args: &ServeArgs,
) -> Vec<Option<(Range<usize>, Vec<Seg<'static>>)>> {
    if args.mode != ServeMode::Dhcp {
        return Vec::new();
    }
    let sections = top.interface.as_deref().unwrap_or_default();
    let section = index.and_then(|i| sections.get(i));
    let prefix = |own: bool, key: &'static str, n: usize| {
        let mut path = match (own, index) {
            (true, Some(i)) => vec![Seg::Key("interface"), Seg::Index(i)],
            _ => Vec::new(),
        };
        path.extend([Seg::Key(key), Seg::Index(n)]);
        path
    };
    let own_tables = section.is_some_and(|s| s.subnet.is_some());
    let tables = if own_tables {
        section.and_then(|s| s.subnet.as_ref())
    } else {
        top.subnet.as_ref()
    };
    let mut places: Vec<Option<(Range<usize>, Vec<Seg<'static>>)>> = (0..tables
        .map_or(0, Vec::len))
        .map(|n| {
            let path = prefix(own_tables, "subnet", n);
            Some((doc.span(&path).unwrap_or(0..0), path))
        })
        .collect();
    if !cli.given("relay_subnet") {
        let own_key = section.is_some_and(|s| s.relay_subnet.is_some());
        let key = if own_key {
            section.and_then(|s| s.relay_subnet.as_ref())
        } else {
            top.relay_subnet.as_ref()
        };
        places.extend((0..key.map_or(0, Vec::len)).map(|n| {
            let path = prefix(own_key, "relay-subnet", n);
            Some((doc.span(&path).unwrap_or(0..0), path))
        }));
    }
    places
}

/// What `check-config` prints for one interface: one line of its resolved settings.
pub fn describe(args: &ServeArgs) -> String {
    let mut out = format!("interface {}: mode={}", args.iface(), args.mode);
    if let Some(address) = args.address {
        out.push_str(&format!(" address={address}"));
    }
    if args.mode == ServeMode::Dhcp {
        let range = match (args.range, args.address) {
            (Some(range), _) => range.to_string(),
            (None, Some(server)) => crate::serve::default_range(server)
                .map_or_else(|| "none (subnet too small)".to_owned(), |r| r.to_string()),
            (None, None) => ".2-.99 of the interface's subnet".to_owned(),
        };
        let lease_time = args.lease_time.map_or(3600, |t| t.as_secs());
        let leases = args
            .leases
            .clone()
            .unwrap_or_else(|| default_lease_file(args.iface()));
        // A database is named by host and name: the URL may hold a password.
        let leases = match leases
            .to_str()
            .filter(|l| crate::serve::lease_db::is_db_url(l))
        {
            Some(url) => crate::serve::lease_db::LeaseDb::new(url).map_or_else(
                |e| e.to_string(),
                |db| format!("postgresql://{}", db.name()),
            ),
            None => leases.display().to_string(),
        };
        out.push_str(&format!(
            " range={range} lease-time={lease_time}s leases={leases}"
        ));
    }
    out.push_str(&format!(" root={}", args.tftp_root().display()));
    let boot: Vec<String> = crate::serve::boot_table(args)
        .iter()
        .filter(|b| b.mac.is_none())
        .map(|b| format!("{}={}", b.class, b.file))
        .collect();
    out.push_str(&format!(" boot={}", boot.join(",")));
    out.push_str(&format!(
        " reservations={} per-mac-rules={}",
        args.reserve.len(),
        args.boot_mac.len()
    ));
    for r in &args.relay_subnet {
        let router = r
            .router
            .map_or_else(|| "relay".to_owned(), |ip| ip.to_string());
        let boot: Vec<String> = r
            .boot
            .iter()
            .map(|b| format!("{}={}", b.class, b.file))
            .collect();
        let boot = if boot.is_empty() {
            "interface's".to_owned()
        } else {
            boot.join(",")
        };
        out.push_str(&format!(
            " relay-subnet={r}(router={router},hosts={},boot={boot})",
            r.hosts.len()
        ));
    }
    if args.nat {
        out.push_str(" nat=on");
    }
    out
}

/// Where an error points: a command-line flag, or a place in the file.
enum Place {
    Flag(String),
    File(Range<usize>, Vec<Seg<'static>>),
}

/// The lease file of `iface` when none is named.
pub fn default_lease_file(iface: &str) -> PathBuf {
    PathBuf::from(format!("/var/lib/pocketpxe/{iface}.leases"))
}

/// The range of a relayed subnet inside its network, without the network and broadcast
/// addresses; its hosts' addresses likewise. The error names the host (its index) if one is to
/// blame.
pub(crate) fn check_relay_subnet(r: &RelaySubnetArg) -> Result<(), (Option<usize>, String)> {
    let net = r.network;
    let client = |ip: Ipv4Addr| {
        net.contains(ip) && (net.prefix >= 31 || (ip != net.network() && ip != net.broadcast()))
    };
    if !client(r.range.start) || !client(r.range.end) {
        return Err((
            None,
            format!(
                "range {} is not inside {net} (without its network and broadcast addresses)",
                r.range
            ),
        ));
    }
    for (k, h) in r.hosts.iter().enumerate() {
        if !client(h.ip) {
            return Err((
                Some(k),
                format!(
                    "host {}={} is not a client address in its subnet {net}",
                    format_mac(&h.mac),
                    h.ip
                ),
            ));
        }
    }
    Ok(())
}

/// Checks of one section's own keys: mode, ranges of numbers, hosts, `--debian` companions.
fn check_section(
    doc: &Doc<'_>,
    cli: &ServeArgs,
    s: &Section,
    index: Option<usize>,
) -> Result<(), ConfigError> {
    fn path<'a>(index: Option<usize>, rest: &[Seg<'a>]) -> Vec<Seg<'a>> {
        let mut path = match index {
            Some(i) => vec![Seg::Key("interface"), Seg::Index(i)],
            None => Vec::new(),
        };
        path.extend_from_slice(rest);
        path
    }
    let fail = |rest: &[Seg<'static>], message: &str| {
        let path = path(index, rest);
        let span = doc.span(&path).unwrap_or(0..0);
        Err(doc.error(span, &path, message))
    };
    // Interfaces: their own mode, unless --mode overrides it.
    let proxy = if cli.given("mode") {
        cli.mode == ServeMode::Proxy
    } else {
        s.mode == Some(ServeMode::Proxy)
    };
    if proxy && index.is_some() {
        let given = [
            s.range.is_some(),
            s.lease_time.is_some(),
            s.router.is_some(),
            s.dns.is_some(),
            s.leases.is_some(),
        ];
        for ((key, _), given) in DHCP_ONLY.into_iter().zip(given) {
            if given {
                return fail(
                    &[Seg::Key(key)],
                    &format!(
                        "`{key}` only applies to mode = \"dhcp\": in proxy mode the other DHCP \
                         server hands out addresses; remove it"
                    ),
                );
            }
        }
        if let Some(h) = s.host.iter().flatten().position(|h| h.ip.is_some()) {
            return fail(
                &[Seg::Key("host"), Seg::Index(h), Seg::Key("ip")],
                "a fixed address only applies to mode = \"dhcp\": in proxy mode the other DHCP \
                 server hands out addresses; remove ip (boot still applies)",
            );
        }
    }
    let relayed = s.subnet.as_ref().map(|t| ("subnet", t.len()));
    let keyed = s.relay_subnet.as_ref().map(|k| ("relay-subnet", k.len()));
    if proxy
        && index.is_some()
        && let Some((key, _)) = relayed.or(keyed)
    {
        return fail(
            &[Seg::Key(key)],
            &format!(
                "`{key}` only applies to mode = \"dhcp\": relayed clients get their \
                 addresses from the server that hands out addresses; remove it"
            ),
        );
    }
    for (j, table) in s.subnet.iter().flatten().enumerate() {
        for (key, rule) in table.boot.iter().flat_map(|b| &b.0) {
            if let Err(message) = rule {
                let rest = [
                    Seg::Key("subnet"),
                    Seg::Index(j),
                    Seg::Key("boot"),
                    Seg::Key(key),
                ];
                let path = path(index, &rest);
                let span = doc.span(&path).unwrap_or(0..0);
                return Err(doc.error(span, &path, message));
            }
        }
        let arg = match table.to_arg() {
            Ok(arg) => arg,
            Err((key, message)) => {
                let key_path = [Seg::Key("subnet"), Seg::Index(j), Seg::Key(key)];
                let table_path = [Seg::Key("subnet"), Seg::Index(j)];
                let full = path(index, &key_path);
                let at = if doc.span(&full).is_some() {
                    &key_path[..]
                } else {
                    &table_path[..]
                };
                return fail(at, &message);
            }
        };
        if let Err((host, message)) = check_relay_subnet(&arg) {
            return match host {
                Some(k) => fail(
                    &[
                        Seg::Key("subnet"),
                        Seg::Index(j),
                        Seg::Key("host"),
                        Seg::Index(k),
                        Seg::Key("ip"),
                    ],
                    &message,
                ),
                None => fail(
                    &[Seg::Key("subnet"), Seg::Index(j), Seg::Key("range")],
                    &message,
                ),
            };
        }
    }
    for (n, arg) in s.relay_subnet.iter().flatten().enumerate() {
        if let Err((_, message)) = check_relay_subnet(&arg.0) {
            return fail(&[Seg::Key("relay-subnet"), Seg::Index(n)], &message);
        }
    }
    let ranges: [(&str, Option<u64>, u64, u64); 5] = [
        ("max-transfers", s.max_transfers.map(u64::from), 1, 65_535),
        ("max-blksize", s.max_blksize.map(u64::from), 8, 65_464),
        ("max-windowsize", s.max_windowsize.map(u64::from), 1, 65_535),
        ("timeout", s.timeout.map(u64::from), 1, 255),
        ("grace", s.grace.map(|g| g.as_secs()), 0, 86_400),
    ];
    for (key, value, lo, hi) in ranges {
        if let Some(v) = value
            && !(lo..=hi).contains(&v)
        {
            return fail(
                &[Seg::Key(key)],
                &format!("{v} is out of range: give {lo} to {hi}"),
            );
        }
    }
    for (key, rule) in s.boot.iter().flat_map(|b| &b.0) {
        if let Err(message) = rule {
            let path = path(index, &[Seg::Key("boot"), Seg::Key(key)]);
            let span = doc.span(&path).unwrap_or(0..0);
            return Err(doc.error(span, &path, message));
        }
    }
    for (i, h) in s.host.iter().flatten().enumerate() {
        if h.class == Some(ClientClass::RaspberryPi) {
            return fail(
                &[Seg::Key("host"), Seg::Index(i), Seg::Key("class")],
                crate::cli::RPI_PER_MAC,
            );
        }
        if h.class.is_some() && h.boot.is_none() {
            return fail(
                &[Seg::Key("host"), Seg::Index(i), Seg::Key("class")],
                "class only narrows a host's boot file: give boot = \"FILE\" too",
            );
        }
        if h.ip.is_none() && h.boot.is_none() {
            return fail(
                &[Seg::Key("host"), Seg::Index(i)],
                &format!(
                    "host {} has neither ip nor boot: give it a fixed address, a boot file, \
                     or both",
                    format_mac(&h.mac)
                ),
            );
        }
    }
    let has_debian = s.debian.is_some() || cli.debian.is_some();
    for (key, given) in [
        ("arch", s.arch.is_some()),
        ("mirror", s.mirror.is_some()),
        ("console", s.console.is_some()),
        ("keyring", s.keyring.is_some()),
        ("no-verify-signature", s.no_verify_signature.is_some()),
    ] {
        if given && !has_debian && index.is_some() {
            return fail(
                &[Seg::Key(key)],
                &format!("`{key}` goes with debian = \"DIST\": add it, or remove `{key}`"),
            );
        }
    }
    if s.keyring.is_some() && s.no_verify_signature == Some(true) {
        return fail(
            &[Seg::Key("no-verify-signature")],
            "keyring and no-verify-signature = true contradict each other: keep one",
        );
    }
    Ok(())
}

/// One step of a key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The file as spanned TOML, to turn byte offsets into lines, columns and key paths.
struct Doc<'i> {
    path: &'i Path,
    text: &'i str,
    root: DeTable<'i>,
}

impl<'i> Doc<'i> {
    fn parse(path: &'i Path, text: &'i str) -> Result<Self, ConfigError> {
        let root = DeTable::parse(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let (line, column) = line_col(text, span.start);
            ConfigError::At {
                path: path.to_owned(),
                line,
                column,
                key: String::new(),
                message: format!("not valid TOML: {}", e.message().trim_end()),
            }
        })?;
        Ok(Self {
            path,
            text,
            root: root.into_inner(),
        })
    }

    /// A serde error of the file, at its span, with the key path found there.
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let path = find(&self.root, &span).unwrap_or_default();
        let mut message = err.message().trim_end().to_owned();
        if matches!(path.as_slice(), [OwnedSeg::Key(k)] if k == "interface")
            && message.contains("expected a sequence")
        {
            message = format!(
                "{message}: interfaces are an array of tables, written [[interface]] (two \
                 brackets), one per interface"
            );
        }
        if message.starts_with("unknown field") {
            message = format!(
                "{} (the keys are the serve flags without `--`, see docs/config.md)",
                message.replacen("unknown field", "unknown key", 1)
            );
        }
        let path: Vec<Seg<'_>> = path.iter().map(|s| s.as_seg()).collect();
        self.error(span, &path, &message)
    }

    fn error(&self, span: Range<usize>, path: &[Seg<'_>], message: &str) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError::At {
            path: self.path.to_owned(),
            line,
            column,
            key: self.key_name(path),
            message: message.to_owned(),
        }
    }

    /// The span of the value at `path` (of the key, for a table whose own span is unknown).
    fn span(&self, path: &[Seg<'_>]) -> Option<Range<usize>> {
        let mut table = &self.root;
        let mut value: Option<&toml::Spanned<DeValue<'_>>> = None;
        let mut key_span = None;
        for seg in path {
            let next = match (seg, value.map(|v| v.get_ref())) {
                (Seg::Key(k), None | Some(DeValue::Table(_))) => {
                    if let Some(DeValue::Table(t)) = value.map(|v| v.get_ref()) {
                        table = t;
                    }
                    let (key, v) = table.iter().find(|(key, _)| key.get_ref() == k)?;
                    key_span = Some(key.span());
                    v
                }
                (Seg::Index(i), Some(DeValue::Array(a))) => a.get(*i)?,
                _ => return None,
            };
            value = Some(next);
        }
        let value = value?;
        let span = value.span();
        if span.is_empty() {
            // An [[array]] element: point at its first key.
            if let DeValue::Table(t) = value.get_ref()
                && let Some(first) = t.keys().map(|k| k.span()).min_by_key(|s| s.start)
            {
                return Some(first);
            }
            return key_span;
        }
        Some(span)
    }

    /// `interface "br0": boot.efi-x64` for the path interface[0].boot.efi-x64.
    fn key_name(&self, path: &[Seg<'_>]) -> String {
        let mut out = String::new();
        let mut rest = path;
        if let [Seg::Key("interface"), Seg::Index(i), tail @ ..] = path {
            let name = self
                .root
                .iter()
                .find(|(k, _)| k.get_ref() == "interface")
                .and_then(|(_, v)| match v.get_ref() {
                    DeValue::Array(a) => a.get(*i),
                    _ => None,
                })
                .and_then(|t| match t.get_ref() {
                    DeValue::Table(t) => t.iter().find(|(k, _)| k.get_ref() == "name"),
                    _ => None,
                })
                .and_then(|(_, v)| match v.get_ref() {
                    DeValue::String(s) => Some(s.to_string()),
                    _ => None,
                });
            out = match name {
                Some(name) => format!("interface \"{name}\""),
                None => format!("interface #{}", i + 1),
            };
            if !tail.is_empty() {
                out.push_str(": ");
            }
            rest = tail;
        }
        for (n, seg) in rest.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if n > 0 {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// An owned key path step (for paths found in the document).
#[derive(Debug, Clone)]
enum OwnedSeg {
    Key(String),
    Index(usize),
}

impl OwnedSeg {
    fn as_seg(&self) -> Seg<'_> {
        match self {
            Self::Key(k) => Seg::Key(k),
            Self::Index(i) => Seg::Index(*i),
        }
    }
}

/// The deepest key path whose key or value holds `span`.
fn find(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<OwnedSeg>> {
    for (key, value) in table {
        let here = vec![OwnedSeg::Key(key.get_ref().to_string())];
        if let Some(deeper) = find_in(value, span) {
            return Some(here.into_iter().chain(deeper).collect());
        }
        if covers(&key.span(), span) || covers(&value.span(), span) {
            return Some(here);
        }
    }
    None
}

fn find_in(value: &toml::Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Vec<OwnedSeg>> {
    match value.get_ref() {
        DeValue::Table(t) => find(t, span),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
            let deeper = find_in(v, span);
            if deeper.is_some() || covers(&v.span(), span) {
                Some(
                    std::iter::once(OwnedSeg::Index(i))
                        .chain(deeper.unwrap_or_default())
                        .collect(),
                )
            } else {
                None
            }
        }),
        _ => None,
    }
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    !outer.is_empty() && outer.start <= inner.start && inner.end <= outer.end.max(inner.start)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

// Values: the flags' parsers.

fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err: fmt::Display>,
{
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(de::Error::custom)
}

fn parsed_value<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err: fmt::Display>,
{
    let s = String::deserialize(d)?;
    s.parse().map_err(de::Error::custom)
}

impl<'de, T: FromStr<Err: fmt::Display>> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_value(d).map(Self)
    }
}

fn mac<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 6], D::Error> {
    let s = String::deserialize(d)?;
    parse_mac(&s).ok_or_else(|| {
        de::Error::custom(format!(
            "'{s}' is not a MAC address, e.g. 52:54:00:12:34:56"
        ))
    })
}

fn boot_file<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    crate::cli::boot_file(&s)
        .map(Some)
        .map_err(de::Error::custom)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor::new(parse_duration))
        .map(|w| w.0)
}

/// A lease time: a time or `"infinite"`.
fn lease_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor::new(crate::cli::parse_lease_time))
        .map(|w| w.0)
}

/// A time that may be zero (`grace = 0`).
fn duration_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor::new(crate::cli::parse_duration_or_zero))
        .map(|w| w.0)
}

/// Reads a time as its flag does: the same parser for numbers (seconds) and strings.
struct DurationVisitor {
    allow_bool: bool,
    parse: fn(&str) -> Result<Duration, String>,
}

impl DurationVisitor {
    fn new(parse: fn(&str) -> Result<Duration, String>) -> Self {
        Self {
            allow_bool: false,
            parse,
        }
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = Wait;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allow_bool {
            f.write_str("true, false, seconds, or a time like \"90s\", \"5m\"")
        } else {
            f.write_str("seconds, or a time like \"90s\", \"30m\", \"1h\", \"2d\"")
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Wait, E> {
        if !self.allow_bool {
            return Err(E::invalid_type(de::Unexpected::Bool(v), &self));
        }
        Ok(Wait(v.then_some(Duration::from_secs(60))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Wait, E> {
        (self.parse)(&v.to_string())
            .map(|d| Wait(Some(d)))
            .map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Wait, E> {
        (self.parse)(&v.to_string())
            .map(|d| Wait(Some(d)))
            .map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Wait, E> {
        (self.parse)(v).map(|d| Wait(Some(d))).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Wait {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor {
            allow_bool: true,
            parse: parse_duration,
        })
    }
}

impl<'de> Deserialize<'de> for BootTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BootTable;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of class = \"file\", e.g. { bios = \"pxelinux.0\" }")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BootTable, A::Error> {
                let mut rules = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let file: String = map.next_value()?;
                    let rule = key
                        .parse::<ClientClass>()
                        .map_err(|e| format!("'{key}': {e}"))
                        .and_then(|class| {
                            Ok(BootArg {
                                class,
                                file: crate::cli::boot_file(&file)?,
                            })
                        });
                    rules.push((key, rule));
                }
                Ok(BootTable(rules))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Dns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dns;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address, a list of addresses, or \"none\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dns, E> {
                v.parse().map(|d| Dns(vec![d])).map_err(E::custom)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dns, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s.parse::<Optional<Ipv4Addr>>().map_err(de::Error::custom)?);
                }
                Ok(Dns(all))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests;
