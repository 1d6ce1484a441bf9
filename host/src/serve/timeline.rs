//! The boot timeline of `serve`: one core [`Timeline`] per process, shared by the DHCP and
//! TFTP tasks, which feed it where they log an exchange or a transfer.
//!
//! Each finished boot is logged as one INFO line and each diagnosis as one WARN line, both under
//! the target `pocketpxe::boot`, in the core's words. For a missing file the line names the
//! nearest existing name in the directory asked for (never looking outside the TFTP root). The
//! same state answers `pocketpxe status` (see [`crate::serve::status`]): interfaces, pools,
//! active transfers and recent boots.

use crate::metrics::Metrics;
use crate::serve::dhcp::ClientBook;
use crate::sys::clock::{Clock, unix_ms};
use crate::sys::shutdown::Shutdown;
use pocketpxe_core::Mac;
use pocketpxe_core::dhcp::{ClientClass, IgnoreReason, Summary};
use pocketpxe_core::tftp::RejectReason;
use pocketpxe_core::timeline::{
    BootOutcome, BootRecord, ClientSlot, Diagnosis, DiagnosisKind, FileState, Peer, Timeline,
    TimelineConfig, TransferEnd,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Boots followed at once; beyond, the one quiet longest is dropped.
pub const CLIENT_SLOTS: usize = 1024;
/// Finished boots kept for `pocketpxe status`.
pub const RECENT_BOOTS: usize = 32;
/// The log target of boot records and diagnoses.
pub const TARGET: &str = "pocketpxe::boot";

/// The process's boot timeline. Cheap to clone; every clone feeds the same timeline.
#[derive(Clone)]
pub struct BootWatch {
    inner: Arc<Mutex<State>>,
    root: Arc<PathBuf>,
    book: Option<ClientBook>,
    metrics: Option<Metrics>,
    events: Option<crate::machines::Machines>,
}

impl std::fmt::Debug for BootWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootWatch")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

struct State {
    timeline: Timeline<'static>,
    clock: Clock,
    started_unix_ms: u64,
    recent: VecDeque<RecentBoot>,
    transfers: HashMap<(SocketAddrV4, String), ActiveTransfer>,
    interfaces: BTreeMap<String, InterfaceStatus>,
}

/// What `pocketpxe status` returns.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StatusReport {
    /// The daemon's version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started serving.
    pub uptime_secs: u64,
    /// The interfaces served, with their pools.
    pub interfaces: Vec<InterfaceStatus>,
    /// TFTP transfers running now.
    pub transfers: Vec<TransferStatus>,
    /// Boots under way.
    pub active_boots: Vec<BootStatus>,
    /// The last finished boots, newest first.
    pub recent_boots: Vec<BootStatus>,
    /// Boots dropped unreported because too many clients booted at once.
    pub dropped_boots: u64,
}

/// One interface served.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct InterfaceStatus {
    /// Its name.
    pub name: String,
    /// The server's address on it, with the prefix length.
    pub server: String,
    /// `dhcp` or `proxy`.
    pub mode: String,
    /// The address pool (dhcp mode).
    pub pool: Option<PoolStatus>,
}

/// An address pool.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct PoolStatus {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address.
    pub end: Ipv4Addr,
    /// Addresses in it.
    pub size: u64,
    /// Leases held (reservations outside the range included).
    pub used: u64,
    /// Addresses free.
    pub free: u64,
}

/// A running TFTP transfer.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TransferStatus {
    /// The client's address and port.
    pub client: String,
    /// Its MAC address, if DHCP knows it.
    pub mac: Option<String>,
    /// The file.
    pub file: String,
    /// Its size, if known.
    pub size: Option<u64>,
    /// Seconds since the request.
    pub running_secs: f64,
}

/// A boot, finished or under way.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BootStatus {
    /// The client's MAC address.
    pub mac: Option<String>,
    /// Its boot class.
    pub class: Option<String>,
    /// Its address.
    pub ip: Option<Ipv4Addr>,
    /// Its host name.
    pub hostname: Option<String>,
    /// `booted`, `failed (…)`, `incomplete`, or `running` for a boot under way.
    pub outcome: String,
    /// Seconds from the first message to the last activity (so far).
    pub seconds: f64,
    /// The files, in order.
    pub files: Vec<FileStatus>,
    /// The log line of a finished boot.
    pub line: Option<String>,
    /// When it ended (Unix seconds), for a finished boot.
    pub ended_unix: Option<u64>,
}

/// One file of a boot.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FileStatus {
    /// The path asked for.
    pub path: String,
    /// Bytes delivered.
    pub bytes: u64,
    /// Milliseconds the transfer took.
    pub ms: u64,
    /// `done`, `running` or the failure.
    pub state: String,
}

type RecentBoot = BootStatus;

struct ActiveTransfer {
    mac: Option<String>,
    size: Option<u64>,
    started: tokio::time::Instant,
}

impl BootWatch {
    /// A timeline for a server with the TFTP root `root`; `book` names TFTP clients by the MAC
    /// address DHCP gave (or saw requested) their address to. Only a server that `gives
    /// addresses` calls a TFTP client it does not know a stranger.
    pub fn new(
        root: PathBuf,
        book: Option<ClientBook>,
        gives_addresses: bool,
        quiet: Duration,
    ) -> Self {
        let cfg = TimelineConfig {
            quiet,
            serves_dhcp: gives_addresses,
            ..TimelineConfig::default()
        };
        let slots = vec![ClientSlot::EMPTY; CLIENT_SLOTS];
        Self {
            inner: Arc::new(Mutex::new(State {
                timeline: Timeline::new(cfg, slots),
                clock: Clock::new(),
                started_unix_ms: unix_ms(),
                recent: VecDeque::new(),
                transfers: HashMap::new(),
                interfaces: BTreeMap::new(),
            })),
            root: Arc::new(root),
            book,
            metrics: None,
            events: None,
        }
    }

    /// Publishes every finished boot, with its files, as a `boot` event of `machines` (the
    /// control API's event stream).
    #[must_use]
    pub fn with_events(mut self, machines: crate::machines::Machines) -> Self {
        self.events = Some(machines);
        self
    }

    /// Counts every completed boot, by class, with its duration (`serve --metrics`).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Notes an interface served, for `pocketpxe status`.
    pub fn add_interface(&self, status: InterfaceStatus) {
        self.lock().interfaces.insert(status.name.clone(), status);
    }

    /// The leases now held on `iface` (dhcp mode).
    pub fn set_pool_used(&self, iface: &str, used: usize) {
        if let Some(pool) = self
            .lock()
            .interfaces
            .get_mut(iface)
            .and_then(|i| i.pool.as_mut())
        {
            pool.used = used as u64;
            pool.free = pool.size.saturating_sub(pool.used);
        }
    }

    /// A DHCP message of a client (DHCP task), answered or `ignored`.
    pub fn dhcp(&self, summary: &Summary, port: u16, ignored: Option<IgnoreReason>) {
        self.with(|state, now| state.timeline.handle_dhcp(now, summary, port, ignored));
    }

    /// A file request accepted (TFTP or HTTP task).
    pub fn file_request(&self, peer: SocketAddrV4, file: &str, size: Option<u64>) {
        let client = self.peer(peer);
        let mac = client.mac.map(|m| m.to_string());
        self.with(|state, now| {
            state.transfers.insert(
                (peer, file.to_owned()),
                ActiveTransfer {
                    mac,
                    size,
                    started: tokio::time::Instant::now(),
                },
            );
            state.timeline.handle_tftp_request(now, client, file, size);
        });
    }

    /// A file request refused (TFTP or HTTP task).
    pub fn file_refused(&self, peer: SocketAddrV4, file: &str, reason: RejectReason) {
        let client = self.peer(peer);
        self.with(|state, now| {
            state
                .timeline
                .handle_tftp_refused(now, client, file, reason)
        });
    }

    /// A file transfer ended (TFTP or HTTP task).
    pub fn file_end(&self, peer: SocketAddrV4, file: &str, end: TransferEnd) {
        let client = self.peer(peer);
        self.with(|state, now| {
            state.transfers.remove(&(peer, file.to_owned()));
            state.timeline.handle_tftp_end(now, client, file, end);
        });
    }

    /// Ends quiet boots as time passes, until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            let deadline = {
                let state = self.lock();
                state
                    .timeline
                    .poll_timeout()
                    .map(|at| state.clock.deadline(at))
            };
            let tick = tokio::time::Instant::now() + Duration::from_secs(1);
            let at = deadline.map_or(tick, |d| d.min(tick));
            tokio::select! {
                () = shutdown.requested() => return,
                () = tokio::time::sleep_until(at) => {
                    self.with(|state, now| state.timeline.handle_timeout(now));
                }
            }
        }
    }

    /// Everything `pocketpxe status` shows.
    pub fn report(&self) -> StatusReport {
        let state = self.lock();
        let now = state.clock.now();
        let transfers = state
            .transfers
            .iter()
            .map(|((peer, file), t)| TransferStatus {
                client: peer.to_string(),
                mac: t.mac.clone(),
                file: file.clone(),
                size: t.size,
                running_secs: t.started.elapsed().as_secs_f64(),
            })
            .collect();
        let active_boots = state
            .timeline
            .active()
            .map(|boot| BootStatus {
                mac: boot.mac.map(|m| m.to_string()),
                class: boot.class.map(|c| c.name().to_owned()),
                ip: boot.address,
                hostname: boot.hostname.map(str::to_owned),
                outcome: "running".to_owned(),
                seconds: now.saturating_duration_since(boot.started).as_secs_f64(),
                files: boot.files.iter().map(file_status).collect(),
                line: None,
                ended_unix: None,
            })
            .collect();
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_secs: unix_ms().saturating_sub(state.started_unix_ms) / 1000,
            interfaces: state.interfaces.values().cloned().collect(),
            transfers,
            active_boots,
            recent_boots: state.recent.iter().cloned().collect(),
            dropped_boots: state.timeline.dropped(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing under the lock panics; a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn peer(&self, peer: SocketAddrV4) -> Peer {
        let address = *peer.ip();
        Peer {
            address,
            mac: self
                .book
                .as_ref()
                .and_then(|book| book.mac_bytes(address))
                .map(Mac),
        }
    }

    /// Runs `f` on the timeline at the current time, then logs what came out.
    fn with(&self, f: impl FnOnce(&mut State, pocketpxe_core::Instant)) {
        let (diagnoses, records, boots) = {
            let mut state = self.lock();
            let now = state.clock.now();
            f(&mut state, now);
            let diagnoses: Vec<Diagnosis> =
                std::iter::from_fn(|| state.timeline.poll_diagnosis()).collect();
            let records: Vec<BootRecord> =
                std::iter::from_fn(|| state.timeline.poll_record()).collect();
            let mut boots = Vec::with_capacity(records.len());
            for record in &records {
                let boot = finished(record);
                if state.recent.len() >= RECENT_BOOTS {
                    state.recent.pop_back();
                }
                boots.push(boot.clone());
                state.recent.push_front(boot);
            }
            (diagnoses, records, boots)
        };
        if let Some(events) = &self.events {
            for boot in boots {
                events.publish(&serde_json::json!({"type": "boot", "boot": boot}));
            }
        }
        // Logged outside the lock: the nearest-name lookup reads a directory.
        for diagnosis in &diagnoses {
            log_diagnosis(&self.root, diagnosis);
        }
        for record in &records {
            tracing::info!(target: TARGET, "{record}");
            if let (Some(metrics), BootOutcome::Booted) = (&self.metrics, record.outcome) {
                let class = record.class.map_or("unknown", ClientClass::name);
                metrics.boot_completed(class, record.total().as_secs_f64());
            }
        }
    }
}

fn log_diagnosis(root: &Path, diagnosis: &Diagnosis) {
    match &diagnosis.kind {
        DiagnosisKind::FileNotFound { path } => match nearest_name(root, path) {
            Some(nearest) => {
                tracing::warn!(target: TARGET, "{diagnosis} (nearest existing name: \"{nearest}\")")
            }
            None => tracing::warn!(target: TARGET, "{diagnosis}"),
        },
        _ => tracing::warn!(target: TARGET, "{diagnosis}"),
    }
}

fn finished(record: &BootRecord) -> BootStatus {
    BootStatus {
        mac: record.mac.map(|m| m.to_string()),
        class: record.class.map(|c| c.name().to_owned()),
        ip: record.address,
        hostname: record.hostname.as_deref().map(str::to_owned),
        outcome: record.outcome.to_string(),
        seconds: record.total().as_secs_f64(),
        files: record.files.iter().map(file_status).collect(),
        line: Some(record.to_string()),
        ended_unix: Some(unix_ms() / 1000),
    }
}

fn file_status(file: &pocketpxe_core::timeline::FileRecord) -> FileStatus {
    FileStatus {
        path: file.path.to_string(),
        bytes: file.bytes,
        ms: u64::try_from(file.duration.as_millis()).unwrap_or(u64::MAX),
        state: match file.state {
            FileState::Running => "running".to_owned(),
            FileState::Done => "done".to_owned(),
            FileState::Failed(reason) => format!("failed: {reason}"),
        },
    }
}

/// The existing name nearest to `path`'s last component in its directory under `root`, by
/// edit distance ignoring case; `None` if the directory cannot be read, lies outside the root,
/// or holds nothing close. The path relative to the root, with `/` separators.
pub fn nearest_name(root: &Path, path: &str) -> Option<String> {
    let relative = path.trim_start_matches('/');
    let (dir, name) = match relative.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", relative),
    };
    if name.is_empty()
        || Path::new(dir)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let full = root.join(dir).canonicalize().ok()?;
    // A symbolic link inside the root may point elsewhere: only look inside the root.
    if !full.starts_with(&root) {
        return None;
    }
    let wanted = name.to_lowercase();
    let best = std::fs::read_dir(&full)
        .ok()?
        .filter_map(Result::ok)
        .take(10_000)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .map(|candidate| {
            let distance = strsim::levenshtein(&wanted, &candidate.to_lowercase());
            (distance, candidate)
        })
        .min()?;
    let (distance, found) = best;
    // Close enough to be the same name mistyped: a third of its length, at least 2 edits.
    if distance == 0 && found == name || distance > (name.chars().count() / 3).max(2) {
        return None;
    }
    Some(if dir.is_empty() {
        found
    } else {
        format!("{dir}/{found}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_name_stays_in_the_root_and_finds_a_close_name() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-nearest-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("grub")).unwrap();
        std::fs::write(root.join("grub/grubx64.efi"), b"x").unwrap();
        std::fs::write(root.join("pxelinux.0"), b"x").unwrap();
        std::fs::write(dir.join("secret"), b"x").unwrap();
        assert_eq!(
            nearest_name(&root, "grub/GRUBx64.EFI").as_deref(),
            Some("grub/grubx64.efi")
        );
        assert_eq!(
            nearest_name(&root, "/pxelinux.O").as_deref(),
            Some("pxelinux.0")
        );
        assert_eq!(nearest_name(&root, "kernel-image-far-away"), None);
        assert_eq!(nearest_name(&root, "../secreT"), None);
        assert_eq!(nearest_name(&root, "missing/dir/x"), None);
        std::os::unix::fs::symlink(&dir, root.join("up")).unwrap();
        assert_eq!(nearest_name(&root, "up/secreT"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
