//! The DHCP task: sockets on one interface around the core's [`DhcpServer`].
//!
//! Sockets listen on `0.0.0.0:67` (and `0.0.0.0:4011` in proxy mode) with `SO_BINDTODEVICE`,
//! so only that interface's clients are heard and answered. Replies to
//! [`Destination::Broadcast`] go to `255.255.255.255` out of the same interface; the driver
//! reports `LinkCaps { unicast_to_mac: false }`, so the core never asks for ARP-less unicast.
//!
//! Leases are durable before they are announced (the core's driver contract, see
//! `pocketpxe_core::dhcp`): every datagram already queued is read (`recvmmsg`, up to 64 per
//! call, by a reader thread per socket that paces its wake-ups under load, see
//! `spawn_reader`) and handled (a batch), the leases the batch changed are appended to the
//! lease file with one `fdatasync`, and only then do the batch's ACKs go out (`sendmmsg`, up to 64 per
//! call); offers and NAKs need no save and go out at once. Under load the saves are group
//! commits: at most one per 10 ms (`COMMIT_INTERVAL`) unless 64 ACKs (`COMMIT_BATCH`) wait, so
//! that one `fdatasync` covers the ACKs of several batches. If the file cannot be written the
//! ACKs that announce a change are withheld (the clients retry) and the error names the file. On start, the file's unexpired
//! leases are restored and the file is compacted; it is compacted again when superseded
//! records outnumber live ones (see [`crate::serve::lease_file`]).
//!
//! Each exchange is logged as one line keyed by the client's MAC address (`mac=`): its class,
//! vendor class and host name, the request, the reply, the address and the boot file, all taken
//! from the core's [`Summary`] of the exchange (the task never parses a datagram itself). TFTP transfers of that client carry
//! the same `mac=` field through the [`ClientBook`], so `grep mac=52:54:00:12:34:56` tells one
//! client's story.

use crate::machines::Machines;
use crate::metrics::{DhcpMetrics, ReplyOutcome};
use crate::serve::lease_db::{DbSession, LeaseDb, LeaseDbError};
use crate::serve::lease_file::{LeaseFile, LeaseFileError, LeaseJournal, LeaseRecord};
use crate::serve::timeline::BootWatch;
use crate::sys::clock::{Clock, sleep_until, unix_ms};
use crate::sys::netif::Ipv4Cidr;
use crate::sys::shutdown::Shutdown;
use crate::sys::udp::transient;
use crate::sys::udp::{BindOptions, ListenError};
use crate::sys::udp_batch::{self, RecvSlots};
use pocketpxe_core::dhcp::{
    self, BootRule, ClientClass, DhcpConfig, DhcpEvent, DhcpOutcome, DhcpServer, IgnoreReason,
    Lease, LeaseSlot, Mode, PXE_PORT, Pool, RelaySubnet, Reservation, Summary,
};
use pocketpxe_core::wire::dhcp::MessageType;
use pocketpxe_core::{Destination, Instant, Mac, Received};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Which client (MAC) holds which IP, as DHCP learned it; read by the TFTP task for its logs.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ClientBook {
    inner: Arc<Mutex<HashMap<Ipv4Addr, [u8; 6]>>>,
}

impl ClientBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that `mac` uses `ip`. The book holds at most [`ClientBook::CAPACITY`] addresses
    /// (clients choose what they put in requests); when full it starts over, which only costs
    /// older transfer logs their `mac=` field.
    pub fn record(&self, ip: Ipv4Addr, mac: [u8; 6]) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= Self::CAPACITY && !map.contains_key(&ip) {
                map.clear();
            }
            map.insert(ip, mac);
        }
    }

    /// The MAC address using `ip`.
    pub fn mac_bytes(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        self.inner.lock().ok()?.get(&ip).copied()
    }

    /// The most addresses remembered at once.
    pub const CAPACITY: usize = 65_536;

    /// The MAC address using `ip`, formatted `52:54:00:12:34:56`.
    pub fn mac_of(&self, ip: Ipv4Addr) -> Option<String> {
        let map = self.inner.lock().ok()?;
        map.get(&ip).map(|mac| Mac(*mac).to_string())
    }
}

/// Address-giving or proxy, with what each needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpModeConfig {
    /// Hand out addresses from `pool` (RFC 2131).
    Authoritative {
        /// Addresses to lease.
        pool: Pool,
        /// Lease time.
        lease_time: Duration,
        /// Option 3.
        router: Option<Ipv4Addr>,
        /// Option 6 (may be empty).
        dns: Vec<Ipv4Addr>,
    },
    /// proxyDHCP: boot information only, next to another DHCP server.
    Proxy,
}

/// One boot table entry (see `pocketpxe_core::dhcp::BootRule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSpec {
    /// The client class it serves.
    pub class: ClientClass,
    /// Only this client, if set.
    pub mac: Option<[u8; 6]>,
    /// The boot file, relative to the TFTP root.
    pub file: String,
}

/// What the DHCP task needs.
#[derive(Debug, Clone)]
pub struct DhcpTaskConfig {
    /// The interface served.
    pub interface: String,
    /// Our address and subnet on it.
    pub server: Ipv4Cidr,
    /// Authoritative or proxy.
    pub mode: DhcpModeConfig,
    /// The boot table.
    pub boot: Vec<BootSpec>,
    /// Fixed addresses.
    pub reservations: Vec<Reservation>,
    /// Where leases are kept (authoritative mode).
    pub leases: Option<LeaseStore>,
    /// The DHCP server port (67).
    pub port: u16,
    /// The port of the HTTP server serving the root, if one runs: iPXE clients then get
    /// their boot file as an `http://` URL, and HTTP boot URLs name the port (see
    /// `pocketpxe_core::dhcp::DhcpConfig::http_port`).
    pub http_port: Option<u16>,
    /// Subnets behind relay agents (authoritative mode); fixed until a restart.
    pub relay_subnets: Vec<RelaySubnetSpec>,
}

/// Where an authoritative server keeps its leases, durable before each DHCPACK.
#[derive(Debug, Clone)]
pub enum LeaseStore {
    /// The local lease file, a journal (the default; see [`crate::serve::lease_file`]).
    File(LeaseFile),
    /// A PostgreSQL database, shared with the replicas that serve the same pools (see
    /// [`crate::serve::lease_db`]).
    Postgres(Box<LeaseDb>),
}

impl LeaseStore {
    /// The lease file, if leases are kept in one.
    pub fn file(&self) -> Option<&LeaseFile> {
        match self {
            Self::File(file) => Some(file),
            Self::Postgres(_) => None,
        }
    }
}

/// A subnet behind a relay agent (see [`RelaySubnet`]), chosen by `giaddr` or option 82 link
/// selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySubnetSpec {
    /// The subnet.
    pub network: Ipv4Cidr,
    /// Addresses to lease there.
    pub pool: Pool,
    /// Option 3; `None`: the relay's `giaddr`.
    pub router: Option<Ipv4Addr>,
    /// Option 6; empty: the interface's.
    pub dns: Vec<Ipv4Addr>,
    /// The lease time; `None`: the interface's.
    pub lease_time: Option<Duration>,
    /// Fixed addresses there.
    pub hosts: Vec<Reservation>,
    /// Boot rules per class there (`mac` unset); empty: the interface's table. The interface's
    /// per-MAC rules apply there too.
    pub boot: Vec<BootSpec>,
}

/// Why the DHCP task could not start or had to stop. Every message names the interface or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhcpTaskError {
    /// A socket could not be set up.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The lease file could not be read.
    #[error(transparent)]
    Leases(#[from] LeaseFileError),
    /// The lease database URL does not parse.
    #[error(transparent)]
    LeaseDb(#[from] LeaseDbError),
    /// A socket failed while running.
    #[error("DHCP socket on port {port} of {iface}: {error}")]
    Socket {
        /// The interface.
        iface: String,
        /// The port.
        port: u16,
        /// The OS error.
        error: io::Error,
    },
}

/// A DHCP server ready to run: sockets bound, lease file read.
#[derive(Debug)]
pub struct DhcpService {
    cfg: DhcpTaskConfig,
    main: UdpSocket,
    pxe: Option<UdpSocket>,
    book: ClientBook,
    stored: Vec<LeaseRecord>,
    updates: mpsc::Receiver<RuleUpdate>,
    updates_tx: mpsc::Sender<RuleUpdate>,
    watch: Option<BootWatch>,
    metrics: Option<DhcpMetrics>,
    machines: Option<Machines>,
}

impl DhcpService {
    /// Reads the lease file and binds the sockets (port 67, plus 4011 in proxy mode) on the
    /// interface. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`DhcpTaskError::Leases`] naming the file, [`DhcpTaskError::Listen`] naming the port,
    /// the interface and, if it can be found, the process holding the port.
    pub fn bind(cfg: DhcpTaskConfig) -> Result<Self, DhcpTaskError> {
        let stored = match cfg.leases.as_ref().and_then(LeaseStore::file) {
            Some(file) => file.load()?,
            None => Vec::new(),
        };
        let proxy = cfg.mode == DhcpModeConfig::Proxy;
        let service = if proxy { "proxyDHCP" } else { "DHCP" };
        // Authoritative: exclusive, so a second DHCP server on this interface is an error.
        // Proxy: shares port 67 with an address-giving server on this host that allows it.
        let opts = BindOptions {
            device: Some(&cfg.interface),
            broadcast: true,
            reuse_addr: proxy,
            // Room for the requests that arrive while a batch's lease write is synced.
            recv_buffer: Some(RECV_BUFFER),
        };
        let bind = |service, port| {
            crate::sys::udp::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), opts)
                .map_err(|step| ListenError::new(service, port, &cfg.interface, step))
        };
        let main = bind(service, cfg.port)?;
        let pxe = if proxy {
            Some(bind("PXE boot server", PXE_PORT)?)
        } else {
            None
        };
        let (updates_tx, updates) = mpsc::channel(1);
        Ok(Self {
            cfg,
            main,
            pxe,
            book: ClientBook::new(),
            stored,
            updates,
            updates_tx,
            watch: None,
            metrics: None,
            machines: None,
        })
    }

    /// Answers the machines `machines` has records of as their records say (see
    /// [`crate::machines`]).
    pub fn with_machines(mut self, machines: Machines) -> Self {
        self.machines = Some(machines);
        self
    }

    /// Records messages, replies and pool use in `metrics`.
    pub fn with_metrics(mut self, metrics: DhcpMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Compacts the lease file once, with the leases read by [`DhcpService::bind`], as
    /// whoever the process runs as now: proof that the leases can be saved (the file and its
    /// directory writable, the file system not read-only), so that no DHCPACK will be
    /// withheld for want of a save. Nothing to do in proxy mode.
    ///
    /// # Errors
    /// [`LeaseFileError::Io`] naming the file; the old file is then unchanged.
    pub fn check_lease_file(&self) -> Result<(), LeaseFileError> {
        match self.cfg.leases.as_ref().and_then(LeaseStore::file) {
            Some(file) => file.save(&self.stored),
            None => Ok(()),
        }
    }

    /// Feeds every exchange to the boot timeline `watch`.
    pub fn with_boot_watch(mut self, watch: BootWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// The book of client addresses this server fills (hand it to the TFTP task).
    pub fn client_book(&self) -> ClientBook {
        self.book.clone()
    }

    /// A handle that gives this server new boot rules and reservations while it runs.
    pub fn rule_sender(&self) -> RuleSender {
        RuleSender {
            tx: self.updates_tx.clone(),
        }
    }

    /// Serves until `shutdown` fires. New rules from a [`RuleSender`] are applied between two
    /// batches: the core server is rebuilt over the same lease slots
    /// ([`DhcpServer::resume`]), so leases, offers and declined addresses stay, and the lease
    /// file is not touched.
    ///
    /// # Errors
    /// [`DhcpTaskError::Socket`] if a socket fails for good.
    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), DhcpTaskError> {
        let Self {
            cfg,
            main,
            pxe,
            book,
            stored,
            updates,
            updates_tx,
            watch,
            mut metrics,
            machines,
        } = self;
        drop(updates_tx);
        let mut updates = updates;
        let slot_count = match &cfg.mode {
            DhcpModeConfig::Authoritative { pool, .. } => {
                let pool_len = u32::from(pool.end).saturating_sub(u32::from(pool.start)) as usize;
                let relayed: usize = cfg
                    .relay_subnets
                    .iter()
                    .map(|r| {
                        let len = u32::from(r.pool.end).saturating_sub(u32::from(r.pool.start));
                        len as usize + 1 + r.hosts.len()
                    })
                    .sum();
                (pool_len + 1 + relayed + cfg.reservations.len() + stored.len() + 16)
                    .min(MAX_LEASE_SLOTS)
            }
            DhcpModeConfig::Proxy => 0,
        };
        let mut slots = vec![LeaseSlot::EMPTY; slot_count];
        let mut boot = cfg.boot.clone();
        let mut reservations = cfg.reservations.clone();
        let mut stored = Some(stored);
        let served: Vec<Ipv4Cidr> = std::iter::once(cfg.server)
            .chain(cfg.relay_subnets.iter().map(|r| r.network))
            .collect();
        let mut carry = Carry::new(book, watch);
        carry.served.clone_from(&served);
        if let Some(LeaseStore::Postgres(db)) = &cfg.leases {
            carry.db = Some(DbSession::new((**db).clone(), cfg.server.addr));
        }
        let lease_file = cfg.leases.as_ref().and_then(LeaseStore::file);
        carry.machines = machines;
        carry.http_port = cfg.http_port;
        let proxy = pxe.is_some();
        let main = into_std(main, &cfg.interface, cfg.port)?;
        let pxe = match pxe {
            Some(sock) => Some(into_std(sock, &cfg.interface, PXE_PORT)?),
            None => None,
        };
        let (batch_tx, mut batches) = mpsc::channel(READ_QUEUE);
        for (socket, port) in
            std::iter::once((&main, cfg.port)).chain(pxe.as_ref().map(|s| (s, PXE_PORT)))
        {
            // Detached: it ends on its own once `batches` is dropped.
            drop(spawn_reader(
                Arc::clone(socket),
                port,
                batch_tx.clone(),
                &cfg.interface,
            )?);
        }
        drop(batch_tx);
        let sockets = Sockets {
            main: (&main, cfg.port),
            pxe: pxe.as_ref().map(|sock| (&**sock, PXE_PORT)),
        };
        loop {
            let rules: Vec<BootRule<'_>> = boot
                .iter()
                .map(|b| BootRule {
                    mac: b.mac,
                    ..BootRule::new(b.class, &b.file)
                })
                .collect();
            let subnet_rules = relay_boot_rules(&cfg, &boot);
            let relays = relay_subnets(&cfg, &subnet_rules);
            let all_reservations = with_relay_hosts(&cfg, &reservations);
            let core_cfg = core_config(&cfg, &rules, &all_reservations, &relays);
            let server = if stored.is_some() {
                DhcpServer::new(core_cfg, &mut slots[..])
            } else {
                DhcpServer::resume(core_cfg, &mut slots[..])
            };
            let mut driver =
                carry.into_driver(server, lease_file, &cfg.interface, metrics.as_mut());
            if let Some(stored) = stored.take() {
                driver.restore(stored, &served);
                driver.open_db().await;
                driver.report_pool();
                tracing::info!(
                    interface = %cfg.interface,
                    server = %cfg.server,
                    mode = if proxy { "proxy" } else { "dhcp" },
                    pool = match &cfg.mode {
                        DhcpModeConfig::Authoritative { pool, .. } => Some(format!("{}-{}", pool.start, pool.end)),
                        DhcpModeConfig::Proxy => None,
                    },
                    leases = driver.server.leases().count(),
                    relay_subnets = (!cfg.relay_subnets.is_empty()).then(|| {
                        let nets: Vec<String> =
                            cfg.relay_subnets.iter().map(|r| r.network.to_string()).collect();
                        nets.join(",")
                    }),
                    "DHCP server ready"
                );
            }
            let exit = driver
                .serve(&sockets, &mut shutdown, &mut updates, &mut batches)
                .await;
            carry = driver.into_carry();
            drop(rules);
            drop(all_reservations);
            drop(relays);
            drop(subnet_rules);
            match exit? {
                Exit::Stop => {
                    tracing::info!(interface = %cfg.interface, "DHCP server stopped");
                    return Ok(());
                }
                Exit::Rules(update) => {
                    let change = RuleChange::between(
                        (&boot, &reservations),
                        (&update.boot, &update.reservations),
                    );
                    boot = update.boot;
                    reservations = update.reservations;
                    // Applied before the next datagram: the loop builds the server first.
                    let _ = update.done.send(change);
                }
            }
        }
    }
}

/// Gives a running DHCP task new rules (see [`DhcpService::rule_sender`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RuleSender {
    tx: mpsc::Sender<RuleUpdate>,
}

impl RuleSender {
    /// Hands the task a new boot table and reservations and waits until they are in force;
    /// returns what changed. `None` if the task has stopped.
    pub async fn apply(
        &self,
        boot: Vec<BootSpec>,
        reservations: Vec<Reservation>,
    ) -> Option<RuleChange> {
        let (done, applied) = oneshot::channel();
        self.tx
            .send(RuleUpdate {
                boot,
                reservations,
                done,
            })
            .await
            .ok()?;
        applied.await.ok()
    }
}

/// What a rule update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleChange {
    /// Boot rules before.
    pub boot_before: usize,
    /// Boot rules now.
    pub boot_after: usize,
    /// Whether the boot table differs (in any rule or in their order).
    pub boot_changed: bool,
    /// Reservations now in force that were not before (a moved one counts as removed and
    /// added).
    pub reservations_added: usize,
    /// Reservations no longer in force.
    pub reservations_removed: usize,
}

impl RuleChange {
    /// The change from `old` to `new` (boot table, reservations).
    pub fn between(old: (&[BootSpec], &[Reservation]), new: (&[BootSpec], &[Reservation])) -> Self {
        let missing = |from: &[Reservation], of: &[Reservation]| {
            from.iter().filter(|r| !of.contains(r)).count()
        };
        Self {
            boot_before: old.0.len(),
            boot_after: new.0.len(),
            boot_changed: old.0 != new.0,
            reservations_added: missing(new.1, old.1),
            reservations_removed: missing(old.1, new.1),
        }
    }

    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        !self.boot_changed && self.reservations_added == 0 && self.reservations_removed == 0
    }
}

/// Stands in for a DHCP task in tests: receives what a [`RuleSender`] sends.
#[cfg(test)]
pub(crate) struct TestRules {
    rx: mpsc::Receiver<RuleUpdate>,
}

#[cfg(test)]
impl TestRules {
    /// A sender and the test end that receives its updates.
    pub(crate) fn channel() -> (RuleSender, Self) {
        let (tx, rx) = mpsc::channel(1);
        (RuleSender { tx }, Self { rx })
    }

    /// An update sent and not yet taken, if any (it is dropped unanswered).
    pub(crate) fn try_take(&mut self) -> Option<(Vec<BootSpec>, Vec<Reservation>)> {
        let update = self.rx.try_recv().ok()?;
        Some((update.boot, update.reservations))
    }

    /// Waits for the next update and answers it as applied over `old`.
    pub(crate) async fn answer(
        &mut self,
        old: (&[BootSpec], &[Reservation]),
    ) -> Option<(Vec<BootSpec>, Vec<Reservation>)> {
        let update = self.rx.recv().await?;
        let change = RuleChange::between(old, (&update.boot, &update.reservations));
        let _ = update.done.send(change);
        Some((update.boot, update.reservations))
    }
}

/// New rules on their way to the task, and where to say they are in force.
#[derive(Debug)]
struct RuleUpdate {
    boot: Vec<BootSpec>,
    reservations: Vec<Reservation>,
    done: oneshot::Sender<RuleChange>,
}

/// Why [`Driver::serve`] returned.
enum Exit {
    Stop,
    Rules(RuleUpdate),
}

/// The core configuration for `cfg` with `rules` and `reservations`.
fn core_config<'a>(
    cfg: &'a DhcpTaskConfig,
    rules: &'a [BootRule<'a>],
    reservations: &'a [Reservation],
    relays: &'a [RelaySubnet<'a>],
) -> DhcpConfig<'a> {
    let mode = match &cfg.mode {
        DhcpModeConfig::Authoritative {
            pool,
            lease_time,
            router,
            dns,
        } => Mode::Authoritative {
            pool: *pool,
            lease_time: *lease_time,
            router: *router,
            dns,
            broadcast: Some(cfg.server.broadcast()),
            relay_subnets: relays,
        },
        DhcpModeConfig::Proxy => Mode::Proxy,
    };
    let mut core_cfg = DhcpConfig::new(cfg.server.addr, cfg.server.mask(), mode);
    core_cfg.boot = rules;
    core_cfg.reservations = reservations;
    core_cfg.http_port = cfg.http_port;
    core_cfg
}

/// The boot table of each relayed subnet: its own classes, then the interface's per-MAC rules
/// from `boot` (as reloaded); empty for a subnet without a table of its own.
fn relay_boot_rules<'a>(cfg: &'a DhcpTaskConfig, boot: &'a [BootSpec]) -> Vec<Vec<BootRule<'a>>> {
    cfg.relay_subnets
        .iter()
        .map(|r| {
            if r.boot.is_empty() {
                return Vec::new();
            }
            r.boot
                .iter()
                .chain(boot.iter().filter(|b| b.mac.is_some()))
                .map(|b| BootRule {
                    mac: b.mac,
                    ..BootRule::new(b.class, &b.file)
                })
                .collect()
        })
        .collect()
}

/// The core's view of the relayed subnets, with their boot tables from [`relay_boot_rules`].
fn relay_subnets<'a>(
    cfg: &'a DhcpTaskConfig,
    rules: &'a [Vec<BootRule<'a>>],
) -> Vec<RelaySubnet<'a>> {
    cfg.relay_subnets
        .iter()
        .zip(rules)
        .map(|(r, rules)| RelaySubnet {
            router: r.router,
            dns: &r.dns,
            lease_time: r.lease_time,
            boot: rules,
            ..RelaySubnet::new(r.pool, r.network.mask())
        })
        .collect()
}

/// `reservations` (which a reload replaces) and the relayed subnets' hosts (which stay).
fn with_relay_hosts(cfg: &DhcpTaskConfig, reservations: &[Reservation]) -> Vec<Reservation> {
    reservations
        .iter()
        .chain(cfg.relay_subnets.iter().flat_map(|r| &r.hosts))
        .copied()
        .collect()
}

/// The driver's state that outlives a rebuild of the core server (a reload of its rules).
struct Carry {
    clock: Clock,
    /// Unix time (ms) of the clock's `Instant::ZERO`: converts expiries for the lease file.
    unix_ms_at_zero: u64,
    book: ClientBook,
    /// The replies of one batch, back to back; `tx_used` bytes are taken.
    tx: Vec<u8>,
    tx_used: usize,
    /// Requests handled in this batch, in order, waiting for the lease file to be saved.
    pending: Vec<Pending>,
    /// Whether any request of this batch changed a lease.
    batch_changed: bool,
    /// When the lease file was last saved (or a save failed).
    last_save: Option<tokio::time::Instant>,
    /// The lease file open for appending; `None` until the first compaction succeeds, and
    /// again after a failed append (the next save compacts).
    journal: Option<LeaseJournal>,
    /// What the lease file holds.
    saved: SavedLeases,
    /// Lease changes reported by the core and not yet in the lease file.
    changes: Vec<LeaseRecord>,
    /// The boot timeline, fed every exchange.
    watch: Option<BootWatch>,
    /// The lease database, when leases are kept in PostgreSQL rather than the file.
    db: Option<DbSession>,
    /// The subnets served (ours first, then the relayed ones): leases elsewhere are not ours.
    served: Vec<Ipv4Cidr>,
    /// Machine records, looked up for every datagram's client.
    machines: Option<Machines>,
    /// The HTTP server's port, for generated iPXE scripts.
    http_port: Option<u16>,
}

impl Carry {
    fn new(book: ClientBook, watch: Option<BootWatch>) -> Self {
        let clock = Clock::new();
        Self {
            unix_ms_at_zero: unix_ms().saturating_sub(clock.now().total_millis()),
            clock,
            book,
            tx: vec![0; TX_BUF_LEN],
            tx_used: 0,
            pending: Vec::new(),
            batch_changed: false,
            last_save: None,
            journal: None,
            saved: SavedLeases::default(),
            changes: Vec::new(),
            watch,
            db: None,
            served: Vec::new(),
            machines: None,
            http_port: None,
        }
    }

    fn into_driver<'a>(
        self,
        server: DhcpServer<'a>,
        file: Option<&'a LeaseFile>,
        iface: &'a str,
        metrics: Option<&'a mut DhcpMetrics>,
    ) -> Driver<'a> {
        Driver {
            server,
            file,
            iface,
            metrics,
            state: self,
        }
    }
}

/// The sockets replies leave by, with their ports.
struct Sockets<'s> {
    main: (&'s std::net::UdpSocket, u16),
    pxe: Option<(&'s std::net::UdpSocket, u16)>,
}

/// The loop's state.
struct Driver<'a> {
    server: DhcpServer<'a>,
    file: Option<&'a LeaseFile>,
    iface: &'a str,
    metrics: Option<&'a mut DhcpMetrics>,
    /// Everything else, kept across a rebuild of `server`.
    state: Carry,
}

/// A handled request whose reply (if any) waits for the batch's lease-file save.
struct Pending {
    /// What the core read and answered.
    summary: Summary,
    /// The port it came in on (and its reply leaves by).
    port: u16,
    /// Destination, start and length in the driver's `tx`.
    reply: Option<(Destination, usize, usize)>,
    /// Whether handling it changed a lease (its reply must wait for a successful save).
    changed: bool,
}

impl Pending {
    /// Whether it must wait for the next save: it changed a lease, or it is an ACK (which may
    /// rest on a change of an earlier request that is not saved yet). Offers, NAKs and
    /// requests that changed nothing need no save.
    fn waits(&self) -> bool {
        self.changed || self.summary.is_ack()
    }
}

impl Driver<'_> {
    /// Serves until `shutdown` fires or new rules arrive (between two batches, with every
    /// lease change the core reported drained).
    ///
    /// # Errors
    /// [`DhcpTaskError::Socket`] if a socket fails for good.
    async fn serve(
        &mut self,
        sockets: &Sockets<'_>,
        shutdown: &mut Shutdown,
        updates: &mut mpsc::Receiver<RuleUpdate>,
        batches: &mut mpsc::Receiver<Read>,
    ) -> Result<Exit, DhcpTaskError> {
        loop {
            let timer = self
                .server
                .poll_timeout()
                .map(|at| self.state.clock.deadline(at));
            // ACKs waiting for their save (group commit): the save is due at `hold`; meanwhile
            // the sockets are read as before, what comes joins the batch, and the replies that
            // need no save (offers) go out.
            let hold = self.hold_until();
            tokio::select! {
                () = shutdown.requested() => {
                    self.finish_batch(sockets, true).await;
                    return Ok(Exit::Stop);
                }
                Some(update) = updates.recv() => {
                    // The rebuilt server starts with nothing waiting for a save.
                    self.finish_batch(sockets, true).await;
                    return Ok(Exit::Rules(update));
                }
                read = batches.recv() => self.receive(read, batches)?,
                () = sleep_until(hold), if hold.is_some() => {}
                () = sleep_until(timer), if timer.is_some() => self.on_timeout().await,
            }
            let commit = self.hold_until().is_none();
            self.finish_batch(sockets, commit).await;
        }
    }

    /// Everything but the core server (dropped) and what it borrows.
    fn into_carry(self) -> Carry {
        self.state
    }

    /// Puts the stored leases back; drops the ones that ran out while we were stopped, and
    /// those in none of the `served` subnets (ours first, then the relayed ones).
    fn restore(&mut self, stored: Vec<LeaseRecord>, served: &[Ipv4Cidr]) {
        let Some(file) = self.file else { return };
        let now_unix_ms = unix_ms();
        let now = self.state.clock.now();
        let mut dropped = 0usize;
        for record in stored {
            let mac = Mac(record.mac).to_string();
            let remaining = record
                .expires_unix
                .saturating_mul(1000)
                .saturating_sub(now_unix_ms);
            if remaining == 0 {
                dropped += 1;
                continue;
            }
            if !served.iter().any(|s| s.contains(record.ip)) {
                let subnets: Vec<String> = served.iter().map(ToString::to_string).collect();
                tracing::warn!(file = %file.path().display(), mac, ip = %record.ip,
                    "stored lease is outside {}: dropped", subnets.join(", "));
                dropped += 1;
                continue;
            }
            let lease = Lease {
                mac: record.mac,
                ip: record.ip,
                expires_at: now + Duration::from_millis(remaining),
            };
            match self.server.restore(lease) {
                Ok(()) => self.state.book.record(record.ip, record.mac),
                Err(err) => {
                    tracing::warn!(file = %file.path().display(), mac, ip = %record.ip,
                        error = %err, "stored lease not restored");
                    dropped += 1;
                }
            }
        }
        tracing::info!(file = %file.path().display(), restored = self.server.leases().count(),
            dropped, "leases loaded");
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.leases_restored(self.server.leases());
        }
        if let Err(err) = self.save_file() {
            tracing::warn!(error = %err, "cannot rewrite the lease file");
        }
    }

    /// Connects to the lease database, if leases are kept there, and learns its leases
    /// (a failure is logged by the session; the leases are learned when it comes back).
    async fn open_db(&mut self) {
        let Some(db) = self.state.db.as_mut() else {
            return;
        };
        if let Ok(done) = db.open().await {
            let name = db.db().name().to_owned();
            self.learn(done.learned);
            tracing::info!(
                database = name,
                leases = self.server.leases().count(),
                "leases loaded"
            );
            if let Some(metrics) = self.metrics.as_deref_mut() {
                metrics.leases_restored(self.server.leases());
            }
        }
    }

    /// Teaches the lease table leases the database holds (another server's, or a winner of
    /// a race this server lost); unexpired ones in the served subnets only.
    fn learn(&mut self, learned: Vec<LeaseRecord>) {
        let now_unix_ms = unix_ms();
        let now = self.state.clock.now();
        for record in learned {
            let remaining = record
                .expires_unix
                .saturating_mul(1000)
                .saturating_sub(now_unix_ms);
            if remaining == 0 || !self.state.served.iter().any(|s| s.contains(record.ip)) {
                continue;
            }
            let lease = Lease {
                mac: record.mac,
                ip: record.ip,
                expires_at: now + Duration::from_millis(remaining),
            };
            match self.server.learn(lease) {
                Ok(()) => self.state.book.record(record.ip, record.mac),
                Err(err) => tracing::warn!(mac = Mac(record.mac).to_string(), ip = %record.ip,
                    error = %err, "lease from the database not learned"),
            }
        }
    }

    /// A readiness or receive result: passing errors are logged and ignored, others are
    /// fatal.
    fn check_ready(&self, ready: io::Result<()>, port: u16) -> Result<(), DhcpTaskError> {
        match ready {
            Ok(()) => Ok(()),
            Err(err) if transient(&err) => {
                tracing::debug!(interface = self.iface, port, error = %err,
                    "receive error (ignored)");
                Ok(())
            }
            Err(error) => Err(DhcpTaskError::Socket {
                iface: self.iface.to_owned(),
                port,
                error,
            }),
        }
    }

    /// One datagram: the core answers it into the batch's transmit buffer; the reply waits in
    /// `pending` until [`Driver::finish_batch`] has saved the leases.
    fn on_datagram(&mut self, port: u16, src: SocketAddrV4, payload: &[u8]) {
        let now = self.state.clock.now();
        let rx = Received {
            src,
            dst: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
            payload,
        };
        if self.state.tx.len() < self.state.tx_used + TX_BUF_LEN {
            self.state.tx.resize(self.state.tx_used + TX_BUF_LEN, 0);
        }
        let directive = self.state.machines.as_ref().and_then(|machines| {
            machines.directive(dhcp::client_mac(payload)?, self.state.http_port)
        });
        let tx = &mut self.state.tx[self.state.tx_used..];
        let server = &mut self.server;
        let outcome = match &directive {
            Some(directive) => directive.with(|d| server.handle_for(now, &rx, tx, d)),
            None => server.handle(now, &rx, tx),
        };
        let changed = self.drain_events();
        self.state.batch_changed |= changed;
        if let (Some(metrics), Ok(outcome)) = (self.metrics.as_deref(), &outcome) {
            metrics.received(outcome);
        }
        match outcome {
            Ok(DhcpOutcome::Reply { transmit, summary }) => {
                let start = self.state.tx_used;
                self.state.tx_used += transmit.len;
                self.state.pending.push(Pending {
                    summary,
                    port,
                    reply: Some((transmit.dst, start, transmit.len)),
                    changed,
                });
            }
            Ok(DhcpOutcome::Handled { summary }) => self.state.pending.push(Pending {
                summary,
                port,
                reply: None,
                changed,
            }),
            Ok(DhcpOutcome::Ignored { reason, summary }) => {
                // A proxy sees the client's REQUEST to the address-giving server: note the
                // address for the TFTP logs.
                if matches!(
                    reason,
                    IgnoreReason::OtherServerId | IgnoreReason::NotAddressedToUs
                ) && let Some(summary) = &summary
                    && let Some(ip) = summary.requested_ip
                {
                    self.state.book.record(ip, summary.mac.0);
                }
                log_ignored(self.iface, port, src, summary.as_ref(), reason);
                if let (Some(watch), Some(summary)) = (&self.state.watch, &summary) {
                    watch.dhcp(summary, port, Some(reason));
                }
            }
            Err(err) => tracing::error!(error = %err, "bug: DHCP transmit buffer too small"),
        }
    }

    /// Group commit: until when the ACKs of this batch (and the lease changes without a
    /// reply) wait for their save, if they do. They wait while the last save is less than
    /// [`COMMIT_INTERVAL`] old and fewer than [`COMMIT_BATCH`] of them wait: under load the
    /// lease file is synced once per interval or per [`COMMIT_BATCH`] ACKs, whichever comes
    /// first, and a quiet server saves and answers at once.
    fn hold_until(&self) -> Option<tokio::time::Instant> {
        if !self.state.batch_changed
            || self
                .state
                .pending
                .iter()
                .filter(|item| item.waits())
                .count()
                >= COMMIT_BATCH
        {
            return None;
        }
        let due = self.state.last_save? + COMMIT_INTERVAL;
        (due > tokio::time::Instant::now()).then_some(due)
    }

    /// Handles `read` (one reader thread's `recvmmsg`), then what else the readers have
    /// queued, until [`MAX_BATCH`] datagrams were handled.
    ///
    /// # Errors
    /// [`DhcpTaskError::Socket`] if a socket failed for good (its reader has stopped).
    fn receive(
        &mut self,
        mut read: Option<Read>,
        batches: &mut mpsc::Receiver<Read>,
    ) -> Result<(), DhcpTaskError> {
        let mut handled = 0;
        // Each pass takes one message off the queue.
        for _ in 0..MAX_BATCH {
            match read {
                Some(Read::Datagrams(batch)) => {
                    let mut start = 0;
                    for &(src, end) in &batch.items {
                        if let Some(payload) = batch.data.get(start..end) {
                            self.on_datagram(batch.port, src, payload);
                        }
                        start = end;
                    }
                    handled += batch.items.len();
                }
                Some(Read::Error(port, err)) => self.check_ready(Err(err), port)?,
                // Every reader stopped without a fatal error: it cannot happen, as a reader
                // ends only when this queue is closed or after sending its error.
                None => {
                    return Err(DhcpTaskError::Socket {
                        iface: self.iface.to_owned(),
                        port: 0,
                        error: io::Error::other("the DHCP socket readers stopped"),
                    });
                }
            }
            if handled >= MAX_BATCH {
                break;
            }
            match batches.try_recv() {
                Ok(next) => read = Some(next),
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Durable before announced: with `commit`, saves the lease file once for every change
    /// in the batch, then sends the batch's replies, with one `sendmmsg(2)` per socket and 64
    /// replies. If the save failed, replies that announce a change are withheld (the clients
    /// will retry); the others go out. Without `commit`, sends only the replies that need no
    /// save ([`Pending::waits`]) and keeps the others for the next commit.
    async fn finish_batch(&mut self, sockets: &Sockets<'_>, commit: bool) {
        let stored = if commit && std::mem::take(&mut self.state.batch_changed) {
            self.save().await
        } else {
            Ok(Vec::new())
        };
        let mut pending = std::mem::take(&mut self.state.pending);
        // Per socket: the replies (destination, bytes) and the requests they answer.
        let mut out: [Vec<(SocketAddrV4, &[u8])>; 2] = [Vec::new(), Vec::new()];
        let mut answered: [Vec<&Summary>; 2] = [Vec::new(), Vec::new()];
        let held: Vec<bool> = pending.iter().map(|item| !commit && item.waits()).collect();
        for (item, _) in pending.iter().zip(&held).filter(|(_, held)| !**held) {
            let summary = &item.summary;
            // Formatted inside the log macros only: they skip their fields when disabled.
            let mac = || summary.mac.to_string();
            if item.changed
                && let Err(err) = &stored
            {
                if let (Some(_), Some(metrics)) = (item.reply, self.metrics.as_deref()) {
                    metrics.reply(summary.reply, ReplyOutcome::Withheld);
                }
                match item.reply {
                    Some(_) => tracing::error!(mac = mac(), error = %err,
                        "lease not saved: reply withheld (the client will retry)"),
                    None => tracing::error!(mac = mac(), error = %err, "lease change not saved"),
                }
                continue;
            }
            // The database gave the address to another server's client first: this binding
            // is gone from the table, and the client is NAKed when it asks again.
            if item.changed
                && summary.is_ack()
                && let Ok(refused) = &stored
                && summary.address().is_some_and(|ip| refused.contains(&ip))
            {
                if let Some(metrics) = self.metrics.as_deref() {
                    metrics.reply(summary.reply, ReplyOutcome::Withheld);
                }
                tracing::warn!(
                    interface = self.iface,
                    mac = mac(),
                    ip = summary.address().map(tracing::field::display),
                    "address bound by another server first: ACK withheld (the client will be \
                     NAKed and offered another address)"
                );
                continue;
            }
            let Some((dst, start, len)) = item.reply else {
                tracing::info!(
                    interface = self.iface,
                    mac = mac(),
                    request = summary.request.name(),
                    ip = summary.requested_ip.map(tracing::field::display),
                    hostname = summary.hostname.as_deref(),
                    "DHCP"
                );
                if let Some(watch) = &self.state.watch {
                    watch.dhcp(summary, item.port, None);
                }
                continue;
            };
            let Some(bytes) = self.state.tx.get(start..start + len) else {
                tracing::error!(len, "bug: reply longer than the buffer");
                continue;
            };
            // An ACK binds; so does an OFFER that changed a lease (a client that never sends
            // a DHCPREQUEST, such as the Raspberry Pi 3's boot ROM, is bound at OFFER time).
            if (summary.is_ack() || item.changed)
                && let Some(ip) = summary.address()
            {
                self.state.book.record(ip, summary.mac.0);
            }
            log_exchange(self.iface, item.port, summary);
            if let Some(watch) = &self.state.watch {
                watch.dhcp(summary, item.port, None);
            }
            let to = match dst {
                Destination::Unicast(to) => to,
                Destination::Broadcast { port } => SocketAddrV4::new(Ipv4Addr::BROADCAST, port),
                Destination::UnicastToMac { port, .. } => {
                    tracing::error!("bug: unicast to MAC asked for without LinkCaps");
                    SocketAddrV4::new(Ipv4Addr::BROADCAST, port)
                }
            };
            let which = usize::from(item.port != sockets.main.1);
            out[which].push((to, bytes));
            answered[which].push(summary);
        }
        let targets = [Some(sockets.main), sockets.pxe];
        for ((target, packets), summaries) in targets.iter().zip(&out).zip(&answered) {
            if let Some((socket, _)) = target {
                let sent = send_all(socket, self.iface, packets, summaries).await;
                if let Some(metrics) = self.metrics.as_deref() {
                    for (summary, sent) in summaries.iter().zip(sent) {
                        let outcome = if sent {
                            ReplyOutcome::Sent
                        } else {
                            ReplyOutcome::Failed
                        };
                        metrics.reply(summary.reply, outcome);
                    }
                }
            }
        }
        let mut kept = held.iter();
        pending.retain(|_| kept.next().is_some_and(|held| *held));
        if pending.is_empty() {
            self.state.tx_used = 0;
        }
        self.state.pending = pending;
        self.report_pool();
    }

    /// Tells the boot timeline how many leases the lease file holds.
    fn report_pool(&self) {
        if let Some(watch) = &self.state.watch {
            // The interface's pool: leases in relayed subnets are not counted in it.
            let used = match self.server.config().mode {
                _ if self.state.db.is_some() => self.server.leases().count(),
                Mode::Authoritative { relay_subnets, .. } if !relay_subnets.is_empty() => {
                    let relayed = |ip: Ipv4Addr| {
                        relay_subnets.iter().any(|r| {
                            let mask = u32::from(r.subnet_mask);
                            u32::from(ip) & mask == u32::from(r.pool.start) & mask
                        })
                    };
                    self.state
                        .saved
                        .by_ip
                        .keys()
                        .filter(|ip| !relayed(**ip))
                        .count()
                }
                _ => self.state.saved.len(),
            };
            watch.set_pool_used(self.iface, used);
        }
    }

    async fn on_timeout(&mut self) {
        self.server.handle_timeout(self.state.clock.now());
        self.report_pool();
        if self.drain_events()
            && let Err(err) = self.save().await
        {
            tracing::error!(error = %err, "expired leases not saved");
        }
    }

    /// Drains the core's lease events (logging them) into `changes`; true if there were any,
    /// so that the lease file must be saved.
    fn drain_events(&mut self) -> bool {
        let mut changed = false;
        while let Some(event) = self.server.poll_event() {
            if let Some(metrics) = self.metrics.as_deref_mut() {
                metrics.lease_event(&event);
            }
            let lease = event.lease();
            let expires = self.to_unix(lease.expires_at);
            tracing::debug!(interface = self.iface, event = event.name(),
                mac = Mac(lease.mac).to_string(), ip = %lease.ip,
                expires_unix = expires, "DHCP lease change");
            let held = matches!(
                event,
                DhcpEvent::LeaseGranted(_) | DhcpEvent::LeaseRenewed(_)
            );
            // The database keeps expired rows until an address is bound again (a binding
            // may replace an expired one): an expiry here need not be written, and must not
            // remove a lease another server has renewed meanwhile.
            if self.state.db.is_some() && matches!(event, DhcpEvent::LeaseExpired(_)) {
                continue;
            }
            changed = true;
            self.state.changes.push(LeaseRecord {
                mac: lease.mac,
                ip: lease.ip,
                expires_unix: if held { expires } else { 0 },
            });
        }
        changed
    }

    /// Makes the lease changes durable in the store; the addresses whose binding the
    /// database refused (another server bound them first: the table now holds its lease).
    async fn save(&mut self) -> Result<Vec<Ipv4Addr>, SaveError> {
        if self.state.db.is_none() {
            return self
                .save_file()
                .map(|()| Vec::new())
                .map_err(SaveError::File);
        }
        self.state.last_save = Some(tokio::time::Instant::now());
        let changes = std::mem::take(&mut self.state.changes);
        let Some(db) = self.state.db.as_mut() else {
            return Ok(Vec::new());
        };
        let done = db.commit(changes).await.map_err(SaveError::Db)?;
        self.learn(done.learned);
        Ok(done.refused)
    }

    /// Makes the lease table durable in the lease file: appends the changes the core reported since the last
    /// save to the journal (one `write`, one `fdatasync`; no walk over the table, so a save
    /// costs the same with 50 leases or 50 000), or compacts the file from the table when
    /// there is no journal yet, the last append failed, the file at the path is no longer the
    /// journal's, or superseded records outnumber live ones ([`COMPACT_SLACK`]).
    fn save_file(&mut self) -> Result<(), LeaseFileError> {
        self.state.last_save = Some(tokio::time::Instant::now());
        let changes = std::mem::take(&mut self.state.changes);
        let Some(file) = self.file else { return Ok(()) };
        if let Some(journal) = self.state.journal.as_ref()
            && !journal.is_current()
        {
            tracing::warn!(file = %file.path().display(),
                "lease file was moved, removed or replaced while serving: writing it anew");
            self.state.journal = None;
        }
        if let Some(journal) = self.state.journal.as_mut()
            && journal.lines() + changes.len() <= 2 * self.state.saved.len() + COMPACT_SLACK
        {
            let mut lines = Vec::with_capacity(changes.len());
            for change in changes {
                self.state.saved.apply(change, &mut lines);
            }
            if let Err(err) = journal.append(&lines) {
                // The next save compacts, from the table.
                self.state.journal = None;
                return Err(err);
            }
            return Ok(());
        }
        let current: Vec<LeaseRecord> = self
            .server
            .leases()
            .map(|l| LeaseRecord {
                mac: l.mac,
                ip: l.ip,
                expires_unix: self.to_unix(l.expires_at),
            })
            .collect();
        self.state.journal = None;
        self.state.journal = Some(file.rewrite(&current)?);
        self.state.saved = SavedLeases::default();
        for record in current {
            self.state.saved.apply(record, &mut Vec::new());
        }
        Ok(())
    }

    /// A core instant as Unix seconds, rounded up.
    fn to_unix(&self, at: Instant) -> u64 {
        self.state
            .unix_ms_at_zero
            .saturating_add(at.total_millis())
            .div_ceil(1000)
    }
}

/// Why a save failed; names the file or the database.
#[derive(Debug, thiserror::Error)]
enum SaveError {
    #[error(transparent)]
    File(LeaseFileError),
    #[error(transparent)]
    Db(LeaseDbError),
}

/// What the lease file holds, by address and by client.
#[derive(Debug, Default)]
struct SavedLeases {
    /// Address -> (MAC, expiry in Unix seconds).
    by_ip: HashMap<Ipv4Addr, ([u8; 6], u64)>,
    /// MAC -> its address in `by_ip`.
    ip_of: HashMap<[u8; 6], Ipv4Addr>,
}

impl SavedLeases {
    /// Live records.
    fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Notes `change` (`expires_unix: 0` for an address no longer leased) and pushes the lines
    /// that make the file say so: `change`, preceded by the removal of the client's old
    /// address when its binding moved (the core reports the new lease only).
    fn apply(&mut self, change: LeaseRecord, lines: &mut Vec<LeaseRecord>) {
        let LeaseRecord { mac, ip, .. } = change;
        if change.expires_unix == 0 {
            if self
                .by_ip
                .remove(&ip)
                .is_some_and(|(held_by, _)| held_by == mac)
                && self.ip_of.get(&mac) == Some(&ip)
            {
                self.ip_of.remove(&mac);
            }
        } else {
            if let Some(old) = self.ip_of.insert(mac, ip)
                && old != ip
                && self
                    .by_ip
                    .get(&old)
                    .is_some_and(|(held_by, _)| *held_by == mac)
            {
                self.by_ip.remove(&old);
                lines.push(LeaseRecord {
                    mac,
                    ip: old,
                    expires_unix: 0,
                });
            }
            self.by_ip.insert(ip, (mac, change.expires_unix));
        }
        lines.push(change);
    }
}

/// One line per answered message: the client's story, keyed by `mac`.
fn log_exchange(iface: &str, port: u16, summary: &Summary) {
    let ip = |ip: Option<Ipv4Addr>| ip.map(|ip| ip.to_string());
    tracing::info!(
        interface = iface,
        port,
        mac = summary.mac.to_string(),
        class = summary.class.map(ClientClass::name),
        vendor = summary.vendor_class.as_deref(),
        hostname = summary.hostname.as_deref(),
        request = summary.request.name(),
        reply = summary.reply.map(MessageType::name),
        ip = ip(summary.your_ip),
        client_ip = ip(summary.client_ip),
        boot_file = summary.boot_file.as_deref(),
        next_server = ip(summary.next_server),
        "DHCP"
    );
}

/// A message the core did not answer; `summary` is `None` when it was not even a DHCP request
/// from an Ethernet client.
fn log_ignored(
    iface: &str,
    port: u16,
    src: SocketAddrV4,
    summary: Option<&Summary>,
    reason: IgnoreReason,
) {
    macro_rules! ignored {
        ($level:ident) => {
            tracing::$level!(
                interface = iface,
                port,
                source = %src,
                mac = summary.map(|s| s.mac.to_string()),
                class = summary.and_then(|s| s.class).map(ClientClass::name),
                vendor = summary.and_then(|s| s.vendor_class.as_deref()),
                hostname = summary.and_then(|s| s.hostname.as_deref()),
                request = summary.map(|s| s.request.name()),
                reason = %reason,
                "DHCP message not answered"
            )
        };
    }
    match reason {
        IgnoreReason::PoolExhausted
        | IgnoreReason::LeaseTableFull
        | IgnoreReason::BootFileTooLong
        | IgnoreReason::ReplyTooLarge
        | IgnoreReason::EventQueueFull
        | IgnoreReason::NoSubnetForRelay => ignored!(warn),
        IgnoreReason::NoBootRule => ignored!(info),
        _ => ignored!(debug),
    }
}

/// What a reader thread hands the driver: one `recvmmsg(2)`'s datagrams, or the error it
/// returned (with the socket's port).
enum Read {
    Datagrams(Batch),
    Error(u16, io::Error),
}

/// The datagrams of one `recvmmsg(2)` on one socket.
struct Batch {
    /// The socket's port.
    port: u16,
    /// The payloads, one after another.
    data: Vec<u8>,
    /// Each datagram's IPv4 source and end in `data`.
    items: Vec<(SocketAddrV4, usize)>,
}

/// `socket` as a std socket, taken from tokio's reactor (still non-blocking), shared by its
/// reader thread and the driver (which sends on it).
fn into_std(
    socket: UdpSocket,
    iface: &str,
    port: u16,
) -> Result<Arc<std::net::UdpSocket>, DhcpTaskError> {
    socket
        .into_std()
        .map(Arc::new)
        .map_err(|error| DhcpTaskError::Socket {
            iface: iface.to_owned(),
            port,
            error,
        })
}

/// Starts the thread that reads `socket` for the driver: it waits for a datagram in
/// `poll(2)`, reads every datagram queued with one `recvmmsg(2)` and hands them to the driver
/// over `tx`. After a read that did not fill the batch it sleeps [`READ_PACE`] before reading
/// again, so that under load one wake-up of the thread and one of the driver take every
/// datagram that arrived meanwhile; the socket has no waiter while it sleeps, so arrivals wake
/// no one. A datagram waits at most that long (plus the work) before it is read. The thread
/// ends within [`READ_POLL`] once the driver has dropped the queue's receiver, or after a
/// fatal socket error, which it hands over first.
fn spawn_reader(
    socket: Arc<std::net::UdpSocket>,
    port: u16,
    tx: mpsc::Sender<Read>,
    iface: &str,
) -> Result<std::thread::JoinHandle<()>, DhcpTaskError> {
    std::thread::Builder::new()
        .name(format!("dhcp-read-{port}"))
        .spawn(move || read_loop(&socket, port, &tx))
        .map_err(|error| DhcpTaskError::Socket {
            iface: iface.to_owned(),
            port,
            error,
        })
}

/// The reader thread's loop (see [`spawn_reader`]).
fn read_loop(socket: &std::net::UdpSocket, port: u16, tx: &mpsc::Sender<Read>) {
    let mut rx = RecvSlots::new(udp_batch::RECV_SLOTS_MAX, RX_BUF_LEN);
    while !tx.is_closed() {
        let count = match udp_batch::recv_slots(socket.as_fd(), &mut rx) {
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if let Err(err) = udp_batch::wait_readable(socket.as_fd(), READ_POLL)
                    && !transient(&err)
                {
                    let _ = tx.blocking_send(Read::Error(port, err));
                    return;
                }
                continue;
            }
            Err(err) => {
                let fatal = !transient(&err);
                if tx.blocking_send(Read::Error(port, err)).is_err() || fatal {
                    return;
                }
                // A passing error (an ICMP error queued on the socket) is taken by the call
                // that returns it; pace them all the same.
                std::thread::sleep(READ_PACE);
                continue;
            }
        };
        let mut batch = Batch {
            port,
            data: Vec::with_capacity(count * 600),
            items: Vec::with_capacity(count),
        };
        for i in 0..count {
            // `None`: longer than a slot (no DHCP message is); `Some((None, _))`: not IPv4.
            if let Some((Some(src), payload)) = rx.get(i) {
                batch.data.extend_from_slice(payload);
                batch.items.push((src, batch.data.len()));
            }
        }
        if !batch.items.is_empty() && tx.blocking_send(Read::Datagrams(batch)).is_err() {
            return;
        }
        if count < rx.capacity() {
            std::thread::sleep(READ_PACE);
        }
    }
}

/// Sends `packets` on `socket` with as few `sendmmsg(2)` calls as the kernel allows, waiting
/// [`SEND_RETRY`] when the send buffer is full; a reply the kernel refuses is logged (with the
/// MAC of the client in `answered`, same order) and skipped. Whether each packet was sent, in
/// order.
async fn send_all(
    socket: &std::net::UdpSocket,
    iface: &str,
    packets: &[(SocketAddrV4, &[u8])],
    answered: &[&Summary],
) -> Vec<bool> {
    let mut sent = vec![false; packets.len()];
    let mut next = 0;
    // Each pass sends at least one reply, skips one, or waits once for room.
    for _ in 0..2 * packets.len() + 2 {
        let Some(rest) = packets.get(next..).filter(|rest| !rest.is_empty()) else {
            return sent;
        };
        match udp_batch::send_many(socket.as_fd(), rest) {
            Ok(count) => {
                let end = (next + count).min(packets.len());
                sent[next..end].fill(true);
                next += count.max(1);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(SEND_RETRY).await;
            }
            Err(err) => {
                tracing::warn!(interface = iface,
                    mac = answered.get(next).map(|s| s.mac.to_string()),
                    to = %rest[0].0, error = %err, "cannot send DHCP reply");
                next += 1;
            }
        }
    }
    if next < packets.len() {
        tracing::warn!(
            interface = iface,
            unsent = packets.len() - next,
            "DHCP replies not sent: the send buffer stayed full"
        );
    }
    sent
}

/// `SO_RCVBUF` asked for on the DHCP sockets (the kernel caps it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;
/// Superseded records the lease file may hold beyond twice the live leases before it is
/// compacted.
const COMPACT_SLACK: usize = 1024;
/// The lease table never grows beyond this many clients (a /16 pool), whatever the range.
const MAX_LEASE_SLOTS: usize = 65_536;
/// DHCP messages are at most 1500 bytes on Ethernet; leave room for jumbo frames.
const RX_BUF_LEN: usize = 9000;
/// Replies: the core honours option 57 (at most 65535) but stays within what fits.
const TX_BUF_LEN: usize = 9000;
/// Datagrams handled in one go, before the replies that need no save go out.
const MAX_BATCH: usize = 256;
/// Reads (of up to 64 datagrams each) a reader thread may queue for the driver before it
/// waits, leaving the rest in the socket's receive buffer.
const READ_QUEUE: usize = 64;
/// How long a reader thread sleeps after a read that emptied the socket's queue.
const READ_PACE: Duration = Duration::from_millis(1);
/// How long a reader thread waits for a datagram before it checks that the driver still runs.
const READ_POLL: Duration = Duration::from_millis(100);
/// Under load, the lease file is synced at most once per this interval; replies that wait
/// for a save wait at most this long (plus the save).
const COMMIT_INTERVAL: Duration = Duration::from_millis(10);
/// Under load, the lease file is synced once this many ACKs wait, if that comes before
/// [`COMMIT_INTERVAL`] (they then leave with one `sendmmsg`).
const COMMIT_BATCH: usize = 64;
/// How long to wait before sending again when a DHCP socket's send buffer is full.
const SEND_RETRY: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_leases_remove_the_old_address_of_a_moved_binding() {
        let ip = |last| Ipv4Addr::new(10, 0, 0, last);
        let record = |last, mac, expires_unix| LeaseRecord {
            mac: [mac; 6],
            ip: ip(last),
            expires_unix,
        };
        let mut saved = SavedLeases::default();
        let mut lines = Vec::new();
        saved.apply(record(1, 1, 100), &mut lines);
        saved.apply(record(2, 2, 200), &mut lines);
        saved.apply(record(1, 1, 150), &mut lines);
        assert_eq!(
            lines,
            vec![record(1, 1, 100), record(2, 2, 200), record(1, 1, 150)]
        );
        assert_eq!(saved.len(), 2);
        // Client 1 moves to .3: .1 goes first.
        lines.clear();
        saved.apply(record(3, 1, 300), &mut lines);
        assert_eq!(lines, vec![record(1, 1, 0), record(3, 1, 300)]);
        assert_eq!(saved.len(), 2);
        // Client 2's lease ends; the removal of an address the file lacks is written too.
        lines.clear();
        saved.apply(record(2, 2, 0), &mut lines);
        saved.apply(record(9, 9, 0), &mut lines);
        assert_eq!(lines, vec![record(2, 2, 0), record(9, 9, 0)]);
        assert_eq!(saved.len(), 1);
        // A client that had no lease in the file: nothing to remove.
        lines.clear();
        saved.apply(record(2, 2, 400), &mut lines);
        assert_eq!(lines, vec![record(2, 2, 400)]);
        assert_eq!(saved.by_ip.get(&ip(3)), Some(&([1; 6], 300)));
    }

    #[test]
    fn rule_change_counts_what_changed() {
        let spec = |file: &str| BootSpec {
            class: ClientClass::Bios,
            mac: None,
            file: file.into(),
        };
        let res = |last, ip_last| Reservation {
            mac: [2, 0, 0, 0, 0, last],
            ip: Ipv4Addr::new(10, 0, 0, ip_last),
        };
        let old_boot = [spec("a.0")];
        let old_res = [res(1, 10), res(2, 20)];
        let same = RuleChange::between((&old_boot, &old_res), (&old_boot, &old_res));
        assert!(same.is_empty());
        // Client 2 moves to .21 (removed and added), client 3 is new, the boot file changes.
        let new_boot = [spec("b.0"), spec("c.0")];
        let new_res = [res(1, 10), res(2, 21), res(3, 30)];
        let change = RuleChange::between((&old_boot, &old_res), (&new_boot, &new_res));
        assert_eq!(
            change,
            RuleChange {
                boot_before: 1,
                boot_after: 2,
                boot_changed: true,
                reservations_added: 2,
                reservations_removed: 1,
            }
        );
        assert!(!change.is_empty());
    }

    /// The reader thread hands over what is queued, one `recvmmsg` per batch, with each
    /// datagram's source, and ends once the driver drops the queue.
    #[test]
    fn reader_thread_hands_over_batches_and_ends_with_the_driver() {
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        socket.set_nonblocking(true).unwrap();
        let to = socket.local_addr().unwrap();
        let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let std::net::SocketAddr::V4(from) = client.local_addr().unwrap() else {
            panic!("not IPv4");
        };
        for n in 0..3u8 {
            client.send_to(&[n; 300], to).unwrap();
        }
        let (tx, mut rx) = mpsc::channel(READ_QUEUE);
        let reader = spawn_reader(Arc::new(socket), 67, tx, "lo").unwrap();
        let mut got = Vec::new();
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < 3 && std::time::Instant::now() < until {
            match rx.try_recv() {
                Ok(Read::Datagrams(batch)) => {
                    assert_eq!(batch.port, 67);
                    let mut start = 0;
                    for (src, end) in batch.items {
                        assert_eq!(src, from);
                        got.push(batch.data[start..end].to_vec());
                        start = end;
                    }
                }
                Ok(Read::Error(_, err)) => panic!("receive error: {err}"),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let want: Vec<Vec<u8>> = (0..3u8).map(|n| vec![n; 300]).collect();
        assert_eq!(got, want);
        drop(rx);
        let until = std::time::Instant::now() + READ_POLL + Duration::from_secs(2);
        while !reader.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(reader.is_finished(), "the reader outlived its driver");
        reader.join().unwrap();
    }

    #[test]
    fn client_book_maps_ip_to_mac() {
        let book = ClientBook::new();
        let ip = Ipv4Addr::new(192, 168, 242, 2);
        assert_eq!(book.mac_of(ip), None);
        book.clone().record(ip, [2, 0, 0, 0, 0, 1]);
        assert_eq!(book.mac_of(ip).as_deref(), Some("02:00:00:00:00:01"));
        // Bounded whatever clients claim.
        for n in 0..=ClientBook::CAPACITY as u32 {
            book.record(Ipv4Addr::from(0x0a00_0000 + n), [2, 0, 0, 0, 0, 2]);
        }
        assert!(book.inner.lock().unwrap().len() <= ClientBook::CAPACITY);
    }
}
