//! Machine records: per-machine boot control for `serve`.
//!
//! A record, keyed by MAC, gives one machine a fixed address, a host name (option 12), a
//! profile and a boot policy:
//! * the profile is a boot file per client class (`boot = { bios = "...", efi-x64 = "..." }`),
//!   or a kernel, initrds and a command line that the machine loads through a generated iPXE
//!   script over HTTP (plain PXE firmware is chained to iPXE first), or neither (the
//!   interface's boot table);
//! * the policy is `always`, `once` (after the machine reports its install done, at
//!   `/pocketpxe/machines/MAC/installed` on the boot HTTP server or through the control API,
//!   it is sent to its local disk: iPXE gets a script that exits to the next boot device,
//!   plain PXE gets no boot file) or `never` (no answer at all, as if the server were absent).
//!
//! Records come from the config file (`[[machine]]`, re-read on reload) and from the control
//! API ([`api`]); API records win over the file's for the same MAC and, with the installed
//! marks, are kept in a state file ([`state`]) replaced atomically on every change. For
//! machines without a record, a pixiecore-style API can be asked ([`pixiecore`]).
//!
//! The DHCP task asks [`Machines::directive`] for each datagram's client and hands the answer
//! to the core ([`pocketpxe_core::dhcp::Directive`]); the HTTP task serves the generated
//! scripts ([`Machines::script`]) and the install-done callback.

pub mod api;
pub mod pixiecore;
pub mod state;

use crate::sys::netif::{Ipv4Cidr, format_mac, parse_mac};
use pocketpxe_core::dhcp::{BootRule, ClientClass, Directive, Machine, Pool};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

/// The path prefix of the generated scripts and the callback on the boot HTTP server.
pub const HTTP_PREFIX: &str = "pocketpxe/machines/";

/// What a machine gets when it network-boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Its profile at every boot.
    #[default]
    Always,
    /// Its profile until it reports its install done; then its local disk.
    Once,
    /// Nothing: the server does not answer it.
    Never,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "once" => Ok(Self::Once),
            "never" => Ok(Self::Never),
            _ => Err(format!("'{s}' is not a policy: always, once or never")),
        }
    }
}

/// One machine's record, as the config file and the API give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineSpec {
    /// The machine's MAC, `52:54:00:12:34:56`.
    #[serde(serialize_with = "mac_str")]
    pub mac: [u8; 6],
    /// Its fixed address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Addr>,
    /// Its host name (option 12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Boot file per client class name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub boot: BTreeMap<String, String>,
    /// Kernel: a path under the root or an `http(s)://` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Initrds, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub initrd: Vec<String>,
    /// The kernel command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// A line iPXE prints before loading the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The boot policy.
    pub policy: Policy,
}

/// A field of a record that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field (`policy`, `boot.efi-x64`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The fields a record has.
pub const FIELDS: [&str; 9] = [
    "mac", "address", "hostname", "boot", "kernel", "initrd", "cmdline", "message", "policy",
];

impl MachineSpec {
    /// A record with only a MAC: the boot table, policy `always`.
    pub fn new(mac: [u8; 6]) -> Self {
        Self {
            mac,
            address: None,
            hostname: None,
            boot: BTreeMap::new(),
            kernel: None,
            initrd: Vec::new(),
            cmdline: None,
            message: None,
            policy: Policy::Always,
        }
    }

    /// Reads a record from a JSON object (the API's body; the config file's tables are
    /// converted to JSON first). `mac`, if given, is the MAC of the URL: the object's own must
    /// then match or be absent.
    ///
    /// # Errors
    /// The first wrong field: unknown, of the wrong type, or with a bad value.
    pub fn from_json(mac: Option<[u8; 6]>, value: &Value) -> Result<Self, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new("body", "expected a JSON object"))?;
        let own = match obj.get("mac") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_mac_value(v)?),
        };
        let mac = match (mac, own) {
            (Some(url), Some(own)) if url != own => {
                return Err(FieldError::new(
                    "mac",
                    format!(
                        "{} differs from the URL's {}",
                        format_mac(&own),
                        format_mac(&url)
                    ),
                ));
            }
            (Some(m), _) | (None, Some(m)) => m,
            (None, None) => return Err(FieldError::new("mac", "missing")),
        };
        let mut spec = Self::new(mac);
        spec.apply(obj)?;
        spec.check()?;
        Ok(spec)
    }

    /// This record with the fields of `value` replaced (`null` clears one; `mac` may not
    /// change), checked as a whole.
    ///
    /// # Errors
    /// As [`MachineSpec::from_json`].
    pub fn patched(&self, value: &Value) -> Result<Self, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new("body", "expected a JSON object"))?;
        if let Some(v) = obj.get("mac").filter(|v| !v.is_null())
            && parse_mac_value(v)? != self.mac
        {
            return Err(FieldError::new("mac", "the MAC of a record cannot change"));
        }
        let mut spec = self.clone();
        spec.apply(obj)?;
        spec.check()?;
        Ok(spec)
    }

    /// The record as a JSON object.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn apply(&mut self, obj: &Map<String, Value>) -> Result<(), FieldError> {
        for (key, v) in obj {
            let null = v.is_null();
            match key.as_str() {
                "mac" => {}
                "address" => {
                    self.address = if null {
                        None
                    } else {
                        Some(
                            str_of(key, v)?
                                .parse()
                                .map_err(|_| FieldError::new(key, "not an IPv4 address"))?,
                        )
                    };
                }
                "hostname" => self.hostname = opt_str(key, v)?,
                "kernel" => self.kernel = opt_str(key, v)?,
                "cmdline" => self.cmdline = opt_str(key, v)?,
                "message" => self.message = opt_str(key, v)?,
                "policy" => {
                    self.policy = if null {
                        Policy::Always
                    } else {
                        str_of(key, v)?
                            .parse()
                            .map_err(|e| FieldError::new(key, e))?
                    };
                }
                "initrd" => {
                    self.initrd = match v {
                        Value::Null => Vec::new(),
                        Value::String(s) => vec![s.clone()],
                        Value::Array(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| {
                                str_of(&format!("initrd[{i}]"), item).map(str::to_owned)
                            })
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(FieldError::new(
                                key,
                                "expected a string or a list of strings",
                            ));
                        }
                    };
                }
                "boot" => {
                    self.boot = match v {
                        Value::Null => BTreeMap::new(),
                        Value::Object(map) => map
                            .iter()
                            .map(|(class, file)| {
                                str_of(&format!("boot.{class}"), file)
                                    .map(|f| (class.clone(), f.to_owned()))
                            })
                            .collect::<Result<_, _>>()?,
                        _ => {
                            return Err(FieldError::new(
                                key,
                                "expected a table of class = file, e.g. {\"bios\": \"pxelinux.0\"}",
                            ));
                        }
                    };
                }
                other => {
                    return Err(FieldError::new(
                        other,
                        format!("unknown field (expected one of {})", FIELDS.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks values against each other and for what a DHCP reply or an iPXE script can carry.
    ///
    /// # Errors
    /// The first wrong field.
    pub fn check(&self) -> Result<(), FieldError> {
        if let Some(h) = &self.hostname {
            let ok = !h.is_empty()
                && h.len() <= 63
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !h.starts_with('-');
            if !ok {
                return Err(FieldError::new(
                    "hostname",
                    "a host name is 1-63 letters, digits and '-' (RFC 1123 §2.1), not starting with '-'",
                ));
            }
        }
        for (class, file) in &self.boot {
            let field = format!("boot.{class}");
            class
                .parse::<ClientClass>()
                .map_err(|e| FieldError::new(&field, e.to_string()))?;
            crate::cli::boot_file(file).map_err(|e| FieldError::new(&field, e))?;
        }
        if self.kernel.is_some() && !self.boot.is_empty() {
            return Err(FieldError::new(
                "kernel",
                "give either boot files (boot) or a kernel, not both",
            ));
        }
        if self.kernel.is_none() {
            for (field, set) in [
                ("initrd", !self.initrd.is_empty()),
                ("cmdline", self.cmdline.is_some()),
                ("message", self.message.is_some()),
            ] {
                if set {
                    return Err(FieldError::new(field, "only goes with a kernel"));
                }
            }
        }
        let names = self.kernel.iter().map(|k| ("kernel".to_owned(), k));
        let initrds = self
            .initrd
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("initrd[{i}]"), p));
        for (field, path) in names.chain(initrds) {
            if path.is_empty()
                || path.len() > 1024
                || path.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(FieldError::new(
                    field,
                    "a path under the root or an http(s):// URL, without spaces",
                ));
            }
        }
        for (field, text) in [("cmdline", &self.cmdline), ("message", &self.message)] {
            if text
                .as_ref()
                .is_some_and(|t| t.len() > 4096 || t.chars().any(char::is_control))
            {
                return Err(FieldError::new(field, "one line of at most 4096 bytes"));
            }
        }
        Ok(())
    }

    /// Checks the fixed address against the served interfaces: it must lie in one's subnet,
    /// outside its pool (which is leased to any client), and not be the server's.
    ///
    /// # Errors
    /// `address` and why.
    pub fn check_address(&self, served: &[Served]) -> Result<(), FieldError> {
        let Some(ip) = self.address else {
            return Ok(());
        };
        let Some(s) = served.iter().find(|s| s.server.contains(ip)) else {
            return Err(FieldError::new(
                "address",
                format!("{ip} lies in no served subnet"),
            ));
        };
        if ip == s.server.addr {
            return Err(FieldError::new(
                "address",
                format!("{ip} is the server's address on {}", s.interface),
            ));
        }
        if let Some(pool) = s.pool.filter(|p| p.contains(ip)) {
            return Err(FieldError::new(
                "address",
                format!(
                    "{ip} lies in {}'s range {}-{}, which is leased to any client: pick one outside it",
                    s.interface, pool.start, pool.end
                ),
            ));
        }
        Ok(())
    }
}

/// One served interface, as records are checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The interface.
    pub interface: String,
    /// The server's address and subnet there.
    pub server: Ipv4Cidr,
    /// Its pool (dhcp mode).
    pub pool: Option<Pool>,
}

/// Where a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The config file's `[[machine]]`.
    Config,
    /// The control API (kept in the state file).
    Api,
    /// The pixiecore-style API (`--api`), cached.
    Pixiecore,
}

/// A record as it is in force, with its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineView {
    /// The record.
    #[serde(flatten)]
    pub spec: MachineSpec,
    /// Where it comes from.
    pub source: Source,
    /// When the install-done callback came (Unix seconds), if it did.
    pub installed: Option<u64>,
}

/// The records of the process. Cheap to clone; every clone sees the same records.
#[derive(Clone)]
pub struct Machines {
    inner: Arc<RwLock<Registry>>,
    events: tokio::sync::broadcast::Sender<Arc<str>>,
    pixie: Option<pixiecore::Client>,
}

impl std::fmt::Debug for Machines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machines").finish_non_exhaustive()
    }
}

struct Registry {
    config: BTreeMap<[u8; 6], MachineSpec>,
    state: state::State,
    file: Option<state::StateFile>,
    served: Vec<Served>,
}

/// Why an API change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// A bad field.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// No record for the MAC.
    #[error("no machine {0}")]
    NotFound(String),
    /// The record is the config file's: change it there.
    #[error(
        "machine {0} is defined in the config file: change it there (or PUT a record that overrides it)"
    )]
    ConfigOnly(String),
    /// The state file could not be written: nothing changed.
    #[error(transparent)]
    State(#[from] state::StateError),
}

impl Machines {
    /// The records of the config file (`config`) and of the state file `file` (read now; a
    /// missing file is an empty one, a corrupt one an error naming it), for the interfaces
    /// `served`.
    ///
    /// # Errors
    /// The state file cannot be read or is corrupt.
    pub fn open(
        config: Vec<MachineSpec>,
        file: Option<PathBuf>,
        served: Vec<Served>,
    ) -> Result<Self, state::StateError> {
        let file = file.map(state::StateFile::new);
        let state = match &file {
            Some(f) => f.load()?,
            None => state::State::default(),
        };
        let (events, _) = tokio::sync::broadcast::channel(256);
        Ok(Self {
            inner: Arc::new(RwLock::new(Registry {
                config: config.into_iter().map(|s| (s.mac, s)).collect(),
                state,
                file,
                served,
            })),
            events,
            pixie: None,
        })
    }

    /// Asks `client` about machines without a record.
    #[must_use]
    pub fn with_pixiecore(mut self, client: pixiecore::Client) -> Self {
        self.pixie = Some(client);
        self
    }

    /// Replaces the config file's records (a reload).
    pub fn set_config(&self, config: Vec<MachineSpec>) {
        self.write().config = config.into_iter().map(|s| (s.mac, s)).collect();
    }

    /// Sets the interfaces records are checked against (once they are known).
    pub fn set_served(&self, served: Vec<Served>) {
        self.write().served = served;
    }

    /// The interfaces records are checked against.
    pub fn served(&self) -> Vec<Served> {
        self.read().served.clone()
    }

    /// Every record in force (API over config), by MAC.
    pub fn list(&self) -> Vec<MachineView> {
        let reg = self.read();
        let mut macs: Vec<[u8; 6]> = reg
            .config
            .keys()
            .chain(reg.state.machines.keys())
            .copied()
            .collect();
        macs.sort_unstable();
        macs.dedup();
        macs.into_iter().filter_map(|m| reg.view(m)).collect()
    }

    /// The record in force for `mac`.
    pub fn get(&self, mac: [u8; 6]) -> Option<MachineView> {
        self.read().view(mac)
    }

    /// Creates or replaces the API record of `spec.mac` (persisted first); whether it is new.
    ///
    /// # Errors
    /// A bad address, or the state file cannot be written (nothing changed then).
    pub fn put(&self, spec: MachineSpec) -> Result<bool, ChangeError> {
        let mut reg = self.write();
        spec.check_address(&reg.served)?;
        let mac = spec.mac;
        let created = reg.view(mac).is_none();
        let mut next = reg.state.clone();
        next.machines.insert(mac, spec);
        reg.commit(next)?;
        drop(reg);
        self.emit("machine", mac, if created { "created" } else { "replaced" });
        Ok(created)
    }

    /// Applies a JSON patch object to the record of `mac` (an API record results).
    ///
    /// # Errors
    /// Unknown MAC, a bad field, or the state file cannot be written.
    pub fn patch(&self, mac: [u8; 6], patch: &Value) -> Result<MachineView, ChangeError> {
        let mut reg = self.write();
        let view = reg
            .view(mac)
            .ok_or_else(|| ChangeError::NotFound(format_mac(&mac)))?;
        let mut patch = patch.clone();
        let installed = match patch.as_object_mut().and_then(|o| o.remove("installed")) {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => return Err(FieldError::new("installed", "expected true or false").into()),
        };
        let spec = view.spec.patched(&patch)?;
        spec.check_address(&reg.served)?;
        let mut next = reg.state.clone();
        if spec != view.spec || view.source != Source::Config {
            next.machines.insert(mac, spec);
        }
        match installed {
            Some(true) => {
                next.installed.entry(mac).or_insert_with(now_unix);
            }
            Some(false) => {
                next.installed.remove(&mac);
            }
            None => {}
        }
        reg.commit(next)?;
        let view = reg
            .view(mac)
            .ok_or_else(|| ChangeError::NotFound(format_mac(&mac)))?;
        drop(reg);
        self.emit("machine", mac, "patched");
        Ok(view)
    }

    /// Deletes the API record of `mac` and its installed mark.
    ///
    /// # Errors
    /// Unknown MAC, a record of the config file only, or the state file cannot be written.
    pub fn delete(&self, mac: [u8; 6]) -> Result<(), ChangeError> {
        let mut reg = self.write();
        if !reg.state.machines.contains_key(&mac) {
            return Err(if reg.config.contains_key(&mac) {
                ChangeError::ConfigOnly(format_mac(&mac))
            } else {
                ChangeError::NotFound(format_mac(&mac))
            });
        }
        let mut next = reg.state.clone();
        next.machines.remove(&mac);
        next.installed.remove(&mac);
        reg.commit(next)?;
        drop(reg);
        self.emit("machine", mac, "deleted");
        Ok(())
    }

    /// Marks `mac` installed (the install-done callback); the time of the mark.
    ///
    /// # Errors
    /// Unknown MAC, or the state file cannot be written.
    pub fn mark_installed(&self, mac: [u8; 6]) -> Result<u64, ChangeError> {
        let mut reg = self.write();
        if reg.view(mac).is_none() {
            return Err(ChangeError::NotFound(format_mac(&mac)));
        }
        if let Some(at) = reg.state.installed.get(&mac) {
            return Ok(*at);
        }
        let mut next = reg.state.clone();
        let at = now_unix();
        next.installed.insert(mac, at);
        reg.commit(next)?;
        drop(reg);
        tracing::info!(mac = %format_mac(&mac), "machine reported its install done");
        self.emit("machine", mac, "installed");
        Ok(at)
    }

    /// The events stream: one JSON object per event (machine changes, finished boots).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.events.subscribe()
    }

    /// Sends an event to every subscriber (none: dropped).
    pub fn publish(&self, event: &Value) {
        let _ = self.events.send(Arc::from(event.to_string()));
    }

    /// What the DHCP task tells the core about `mac`: `None` for the configuration's answer.
    /// `http_port` is the boot HTTP server's (`None`: no HTTP, so no generated scripts).
    pub fn directive(&self, mac: [u8; 6], http_port: Option<u16>) -> Option<MachineDirective> {
        if let Some(view) = self.read().view(mac) {
            return Some(MachineDirective::new(&view, http_port));
        }
        Some(match self.pixie.as_ref()?.lookup(mac) {
            pixiecore::Answer::Pending => MachineDirective {
                ignore: true,
                ..MachineDirective::default()
            },
            pixiecore::Answer::Refused => MachineDirective {
                rules: Some(Vec::new()),
                ..MachineDirective::default()
            },
            pixiecore::Answer::Boot(view) => MachineDirective::new(&view, http_port),
        })
    }

    /// The generated iPXE script for `mac` (`None`: no record, or a record without a
    /// kernel that is not installed under policy `once`).
    pub fn script(&self, mac: [u8; 6]) -> Option<String> {
        let view = self
            .read()
            .view(mac)
            .or_else(|| self.pixie.as_ref()?.cached(mac))?;
        script(&view)
    }

    fn emit(&self, kind: &str, mac: [u8; 6], what: &str) {
        let machine = self
            .get(mac)
            .map(|v| serde_json::to_value(v).unwrap_or(Value::Null));
        self.publish(&serde_json::json!({
            "type": kind,
            "event": what,
            "mac": format_mac(&mac),
            "machine": machine,
        }));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // Nothing under the lock panics; a poisoned lock still holds consistent data.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registry {
    fn view(&self, mac: [u8; 6]) -> Option<MachineView> {
        let (spec, source) = match self.state.machines.get(&mac) {
            Some(spec) => (spec.clone(), Source::Api),
            None => (self.config.get(&mac)?.clone(), Source::Config),
        };
        Some(MachineView {
            spec,
            source,
            installed: self.state.installed.get(&mac).copied(),
        })
    }

    /// Writes `next` durably, then makes it the state; on error nothing changes.
    fn commit(&mut self, next: state::State) -> Result<(), state::StateError> {
        if let Some(file) = &self.file {
            file.save(&next)?;
        }
        self.state = next;
        Ok(())
    }
}

/// What the DHCP task hands the core for one machine, owned (the core's
/// [`Directive`] borrows from it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MachineDirective {
    ignore: bool,
    address: Option<Ipv4Addr>,
    hostname: Option<String>,
    rules: Option<Vec<(ClientClass, String)>>,
}

impl MachineDirective {
    fn new(view: &MachineView, http_port: Option<u16>) -> Self {
        let spec = &view.spec;
        let mut d = Self {
            ignore: spec.policy == Policy::Never,
            address: spec.address,
            hostname: spec.hostname.clone(),
            rules: None,
        };
        let script = format!("{HTTP_PREFIX}{}/boot.ipxe", url_mac(&spec.mac));
        let done = spec.policy == Policy::Once && view.installed.is_some();
        d.rules = if done {
            // iPXE gets a script that exits; everyone else no boot file.
            Some(if http_port.is_some() {
                vec![(ClientClass::Ipxe, script)]
            } else {
                Vec::new()
            })
        } else if spec.kernel.is_some() {
            Some(if http_port.is_some() {
                chain_rules(script)
            } else {
                Vec::new()
            })
        } else if spec.boot.is_empty() {
            None
        } else {
            Some(
                spec.boot
                    .iter()
                    .filter_map(|(class, file)| Some((class.parse().ok()?, file.clone())))
                    .collect(),
            )
        };
        d
    }

    /// Calls `f` with the core's directive for this machine.
    pub fn with<R>(&self, f: impl FnOnce(Directive<'_>) -> R) -> R {
        if self.ignore {
            return f(Directive::Ignore);
        }
        let rules: Option<Vec<BootRule<'_>>> = self.rules.as_ref().map(|r| {
            r.iter()
                .map(|(class, file)| BootRule::new(*class, file))
                .collect()
        });
        f(Directive::Machine(Machine {
            address: self.address,
            hostname: self.hostname.as_deref(),
            boot: rules.as_deref(),
        }))
    }

    /// Whether the server ignores this machine.
    pub fn ignores(&self) -> bool {
        self.ignore
    }
}

/// The rules that chain a machine to iPXE and then to its script `script`: BIOS
/// `undionly.kpxe`, UEFI x64 `snponly.efi` (from [`crate::fetch::ipxe`]), iPXE the script.
fn chain_rules(script: String) -> Vec<(ClientClass, String)> {
    use crate::fetch::ipxe;
    vec![
        (ClientClass::Bios, ipxe::BIOS.to_owned()),
        (ClientClass::EfiX64, ipxe::UEFI_X64.to_owned()),
        (ClientClass::Ipxe, script),
    ]
}

/// The iPXE script of a machine: exit to the next boot device once installed (policy
/// `once`), else its kernel, initrds and command line. `None` for a record without a kernel.
pub fn script(view: &MachineView) -> Option<String> {
    let spec = &view.spec;
    let mac = format_mac(&spec.mac);
    let mut s = String::from("#!ipxe\n");
    if spec.policy == Policy::Once && view.installed.is_some() {
        let _ = writeln!(
            s,
            "echo pocketpxe: {mac} is installed: booting from the next device"
        );
        s.push_str("exit\n");
        return Some(s);
    }
    let kernel = spec.kernel.as_ref()?;
    if let Some(message) = &spec.message {
        let _ = writeln!(s, "echo {}", ipxe_escape(message));
    }
    let mut args = String::new();
    for (i, initrd) in spec.initrd.iter().enumerate() {
        let _ = writeln!(s, "initrd --name initrd{i} {}", url_of(initrd));
        let _ = write!(args, " initrd=initrd{i}");
    }
    if let Some(cmdline) = &spec.cmdline {
        let _ = write!(args, " {}", ipxe_escape(cmdline));
    }
    let _ = writeln!(s, "kernel {}{args}", url_of(kernel));
    s.push_str("boot\n");
    Some(s)
}

/// A path under the root as an absolute path that iPXE resolves against the script's URL (so
/// against the same HTTP server); URLs stay.
fn url_of(path: &str) -> String {
    if path.contains("://") {
        path.to_owned()
    } else {
        format!("/{}", path.trim_start_matches('/'))
    }
}

/// Text for an iPXE command line: settings expansion (`${...}`) stays, nothing else is
/// special on one line.
fn ipxe_escape(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The MAC of a `/pocketpxe/machines/MAC/...` request (`52-54-00-12-34-56`, or with `:`, also
/// percent-encoded as iPXE sends it) and the rest of the path.
pub fn parse_http_path(path: &str) -> Option<([u8; 6], &str)> {
    let rest = path.trim_start_matches('/').strip_prefix(HTTP_PREFIX)?;
    let (mac, what) = rest.split_once('/')?;
    let mac = percent_encoding::percent_decode_str(mac)
        .decode_utf8()
        .ok()?;
    Some((parse_mac(&mac)?, what))
}

/// A MAC as it goes in the URLs pocketpxe generates: `52-54-00-12-34-56` (a `:` would be
/// percent-encoded by some clients).
pub fn url_mac(mac: &[u8; 6]) -> String {
    format_mac(mac).replace(':', "-")
}

fn parse_mac_value(v: &Value) -> Result<[u8; 6], FieldError> {
    let s = str_of("mac", v)?;
    parse_mac(s).ok_or_else(|| {
        FieldError::new(
            "mac",
            format!("'{s}' is not a MAC address, e.g. 52:54:00:12:34:56"),
        )
    })
}

fn str_of<'v>(field: &str, v: &'v Value) -> Result<&'v str, FieldError> {
    v.as_str()
        .ok_or_else(|| FieldError::new(field, "expected a string"))
}

fn opt_str(field: &str, v: &Value) -> Result<Option<String>, FieldError> {
    match v {
        Value::Null => Ok(None),
        v => str_of(field, v).map(|s| Some(s.to_owned())),
    }
}

fn mac_str<S: serde::Serializer>(mac: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_mac(mac))
}

fn now_unix() -> u64 {
    crate::sys::clock::unix_ms() / 1000
}

#[cfg(test)]
mod tests;
