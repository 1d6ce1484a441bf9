//! A per-client boot timeline with diagnosis, as a sans-IO tracker over caller-provided slots.
//!
//! The driver feeds it what its DHCP and TFTP servers already report: each DHCP exchange's
//! [`Summary`] ([`Timeline::handle_dhcp`]), each TFTP request accepted or refused and each
//! transfer's end ([`Timeline::handle_tftp_request`], [`Timeline::handle_tftp_refused`],
//! [`Timeline::handle_tftp_end`]), and the time. It follows each client by MAC address from
//! its first DISCOVER through its offers and acknowledgements to the files it fetches; TFTP
//! requests are matched to the client by the MAC the driver knows for the peer's address, else
//! by the address the client got.
//!
//! Out come, polled like the other state machines' events (drain [`Timeline::poll_diagnosis`]
//! first, then [`Timeline::poll_record`], after every `handle*` call):
//! - a [`Diagnosis`] when a known failure pattern shows, at most once per pattern per boot;
//! - a [`BootRecord`] when a boot ends: its files and the time from its first DISCOVER, and
//!   whether it booted (its last file delivered, then no activity for
//!   [`TimelineConfig::quiet`]), failed (and why) or is incomplete.
//!
//! Only boot clients are followed: a client with a boot class (PXE, HTTP boot, iPXE) or one
//! that fetches a file. Plain DHCP clients cost a lookup and nothing else.
//!
//! Clients live in a fixed number of [`ClientSlot`]s; when all are taken, the client that has
//! been quiet longest makes room (its boot is dropped and counted in [`Timeline::dropped`]).

mod report;

pub use report::{
    BootOutcome, BootRecord, Diagnosis, DiagnosisKind, DiagnosisSet, FILES_MAX, FailCause,
    FileRecord, FileState, PATH_MAX, Path,
};

use core::net::Ipv4Addr;
use core::time::Duration;

use managed::ManagedSlice;

use crate::dhcp::{BOOT_FILE_MAX, ClientClass, HOSTNAME_MAX, IgnoreReason, PXE_PORT, Summary};
use crate::net::Mac;
use crate::tftp::{FailReason, Outcome, RejectReason, TftpEvent};
use crate::time::Instant;
use crate::wire::dhcp::MessageType;

/// Thresholds of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimelineConfig {
    /// A boot ends after this long without activity and with no transfer running.
    pub quiet: Duration,
    /// A boot with a transfer still running ends after this long without activity (the end of
    /// the transfer was never reported).
    pub stale: Duration,
    /// DISCOVERs answered with an offer and no REQUEST after them before
    /// [`DiagnosisKind::NoRequest`] is reported.
    pub discovers_without_request: u16,
    /// Failed transfers of one file at the same block before [`DiagnosisKind::StuckAtBlock`]
    /// is reported.
    pub same_block_failures: u16,
    /// Whether this server gives addresses (or sees them requested): only then is a TFTP
    /// request from an unknown address worth [`DiagnosisKind::UnknownAddress`].
    pub serves_dhcp: bool,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            quiet: Duration::from_secs(10),
            stale: Duration::from_secs(300),
            discovers_without_request: 3,
            same_block_failures: 3,
            serves_dhcp: true,
        }
    }
}

/// A TFTP peer as the driver knows it: its address and, if DHCP learned it, its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Peer {
    /// The peer's IP address.
    pub address: Ipv4Addr,
    /// Its MAC address, if the DHCP side gave it (or saw it ask for) that address.
    pub mac: Option<Mac>,
}

/// The end of a TFTP transfer, as the timeline needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferEnd {
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes the client acknowledged.
    pub bytes: u64,
    /// From the request to the end.
    pub duration: Duration,
    /// The block size in force (RFC 2348; 512 without the option).
    pub blksize: u16,
}

impl TransferEnd {
    /// The end that `event` reports, for a transfer with block size `blksize`.
    pub fn new(event: &TftpEvent, blksize: u16) -> Self {
        let stats = event.stats();
        Self {
            outcome: event.outcome(),
            bytes: stats.bytes,
            duration: stats.elapsed(),
            blksize,
        }
    }

    /// The last block the client acknowledged (counting from 1; 0 for none).
    pub fn last_block(&self) -> u64 {
        self.bytes / u64::from(self.blksize.max(1))
    }
}

/// Storage for one client, provided by the caller.
#[derive(Debug, Clone, Default)]
pub struct ClientSlot {
    client: Option<Client>,
}

impl ClientSlot {
    /// An unused slot.
    pub const EMPTY: Self = Self { client: None };
}

/// The tracker. See the [module docs](self).
#[derive(Debug)]
pub struct Timeline<'a> {
    cfg: TimelineConfig,
    slots: ManagedSlice<'a, ClientSlot>,
    /// Some slot may hold a diagnosis not polled yet.
    maybe_diagnosis: bool,
    /// Some slot may hold a finished boot not polled yet.
    maybe_record: bool,
    dropped: u64,
    /// The MAC addresses and IP addresses of the clients in the slots, as filters: a plain
    /// DHCP client (most traffic) is turned away without a walk over the slots.
    macs: KeyFilter,
    addresses: KeyFilter,
}

impl<'a> Timeline<'a> {
    /// A tracker over `slots` (one per client followed at once).
    pub fn new(cfg: TimelineConfig, slots: impl Into<ManagedSlice<'a, ClientSlot>>) -> Self {
        Self {
            cfg,
            slots: slots.into(),
            maybe_diagnosis: false,
            maybe_record: false,
            dropped: 0,
            macs: KeyFilter::default(),
            addresses: KeyFilter::default(),
        }
    }

    /// The thresholds in force.
    pub fn config(&self) -> &TimelineConfig {
        &self.cfg
    }

    /// Boots dropped unreported because every slot was taken.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Boots under way: for each, the client's MAC, class, address and files so far.
    pub fn active(&self) -> impl Iterator<Item = ActiveBoot<'_>> {
        self.slots
            .iter()
            .filter_map(|slot| slot.client.as_ref())
            .filter(|c| !c.ended && c.boot_client)
            .map(|c| ActiveBoot {
                mac: c.mac,
                class: c.class,
                hostname: c.hostname.as_deref(),
                address: c.address,
                started: c.started,
                files: &c.files,
            })
    }

    /// One DHCP message of a client: its [`Summary`], the port it came to (67, or
    /// [`PXE_PORT`]), and why it was not answered, if it was not.
    pub fn handle_dhcp(
        &mut self,
        now: Instant,
        summary: &Summary,
        port: u16,
        ignored: Option<IgnoreReason>,
    ) {
        let boot_class = summary.class.is_some();
        let index = match self.find_mac(summary.mac) {
            Some(index) => index,
            None if boot_class && summary.request == MessageType::Discover => {
                self.take_slot(now, Some(summary.mac))
            }
            None if boot_class && port == PXE_PORT => self.take_slot(now, Some(summary.mac)),
            None => return,
        };
        let cfg = self.cfg;
        let Some(client) = self.client_mut(index) else {
            return;
        };
        client.last_seen = now;
        client.boot_client |= boot_class;
        if summary.class.is_some() {
            client.class = summary.class;
        }
        if let Some(host) = &summary.hostname {
            client.hostname = Some(host.clone());
        }
        if summary.is_ack() {
            client.address = summary.address().or(client.address);
        } else if client.address.is_none() {
            // The address offered; a proxy sees the one the client asks the DHCP server for.
            client.address = summary
                .your_ip
                .or(summary.requested_ip)
                .or(summary.client_ip);
        }
        if let Some(file) = &summary.boot_file {
            client.boot_file = Some(file.clone());
        }
        if port == PXE_PORT {
            client.since_proxy_offer = None;
        }
        match summary.request {
            MessageType::Discover if port != PXE_PORT => {
                client.discovers = client.discovers.saturating_add(1);
                if let Some(since) = &mut client.since_proxy_offer {
                    since.discovers = since.discovers.saturating_add(1);
                    if since.requested {
                        let discovers = since.discovers;
                        client.raise(DiagnosisSet::PROXY_OFFER_IGNORED);
                        client.proxy_discovers = discovers;
                    }
                }
                if summary.reply == Some(MessageType::Offer) {
                    client.proxy_offers = summary.your_ip.is_none();
                    client.offers_unrequested = client.offers_unrequested.saturating_add(1);
                    // A Raspberry Pi 3's boot ROM never sends a REQUEST: it takes the offer, and
                    // repeats DISCOVER when its boot fails (docs/raspberry-pi.md §1).
                    if !client.requested
                        && summary.class != Some(ClientClass::RaspberryPi)
                        && client.offers_unrequested >= cfg.discovers_without_request
                    {
                        client.raise(DiagnosisSet::NO_REQUEST);
                    }
                }
            }
            MessageType::Request => {
                client.requested = true;
                client.offers_unrequested = 0;
                if let Some(since) = &mut client.since_proxy_offer {
                    since.requested = true;
                }
            }
            _ => {}
        }
        // A proxy offer: boot information without an address (PXE 2.1 §2.2.1).
        if summary.reply == Some(MessageType::Offer)
            && summary.your_ip.is_none()
            && port != PXE_PORT
            && client.since_proxy_offer.is_none()
            && client.files.is_empty()
        {
            client.since_proxy_offer = Some(SinceProxyOffer::default());
        }
        let no_rule = ignored == Some(IgnoreReason::NoBootRule)
            || (matches!(summary.reply, Some(MessageType::Offer | MessageType::Ack))
                && summary.boot_file.is_none()
                && ignored.is_none());
        if no_rule && let Some(class) = summary.class {
            client.no_rule_class = Some(class);
            client.raise(DiagnosisSet::NO_BOOT_RULE);
        }
        self.index_keys(index);
        self.note_pending(index);
    }

    /// A TFTP read request accepted: the transfer of `path` (of `size` bytes, if known) starts.
    pub fn handle_tftp_request(&mut self, now: Instant, peer: Peer, path: &str, size: Option<u64>) {
        let index = self.tftp_client(now, peer, path);
        let Some(client) = self.client_mut(index) else {
            return;
        };
        client.last_seen = now;
        client.running = client.running.saturating_add(1);
        client.since_proxy_offer = None;
        let file = FileRecord {
            path: truncated(path),
            size,
            bytes: 0,
            duration: Duration::ZERO,
            state: FileState::Running,
        };
        if let Some(at) = client.files.iter().position(|f| f.path == file.path) {
            client.files.remove(at);
        } else if client.files.is_full() {
            client.files.remove(0);
            client.files_dropped = client.files_dropped.saturating_add(1);
        }
        // Cannot fail: there is room now.
        let _ = client.files.push(file);
        self.note_pending(index);
    }

    /// A TFTP request refused for `reason`.
    pub fn handle_tftp_refused(
        &mut self,
        now: Instant,
        peer: Peer,
        path: &str,
        reason: RejectReason,
    ) {
        let index = self.tftp_client(now, peer, path);
        let Some(client) = self.client_mut(index) else {
            return;
        };
        client.last_seen = now;
        client.since_proxy_offer = None;
        if reason == RejectReason::NotFound {
            client.not_found = client.not_found.saturating_add(1);
            client.missing = Some(truncated(path));
            client.failure = Some(FailCause::FileNotFound);
            // The boot file this server handed out is missing: no probe, a mistake.
            let offered = client
                .boot_file
                .as_deref()
                .is_some_and(|file| same_path(file, path));
            if offered {
                client.raise(DiagnosisSet::FILE_NOT_FOUND);
            }
        }
        self.note_pending(index);
    }

    /// The transfer of `path` to `peer` ended.
    pub fn handle_tftp_end(&mut self, now: Instant, peer: Peer, path: &str, end: TransferEnd) {
        let Some(index) = self.find_peer(peer) else {
            return;
        };
        let same_block_failures = self.cfg.same_block_failures;
        let Some(client) = self.client_mut(index) else {
            return;
        };
        client.last_seen = now;
        client.running = client.running.saturating_sub(1);
        let reason = match end.outcome {
            // A request from the same port replaced it: the new transfer tells the story.
            Outcome::Failed(FailReason::Superseded) => return,
            Outcome::Failed(reason) => Some(reason),
            Outcome::Done | Outcome::SizeProbe => None,
        };
        let path = truncated(path);
        let at = client
            .files
            .iter()
            .rposition(|f| f.path == path && f.state == FileState::Running);
        if end.outcome == Outcome::SizeProbe {
            // A `tsize` probe (RFC 2349) is not a fetch: the real request follows.
            if let Some(at) = at {
                client.files.remove(at);
            }
            return;
        }
        // The transfer began `duration` before its end (the TFTP server's clock saw it first).
        client.started = client.started.min(now - end.duration);
        if let Some(file) = at.and_then(|at| client.files.get_mut(at)) {
            file.bytes = end.bytes;
            file.duration = end.duration;
            file.state = reason.map_or(FileState::Done, FileState::Failed);
        }
        let Some(reason) = reason else {
            client.failure = None;
            return;
        };
        client.failure = Some(FailCause::Transfer(reason));
        let block = end.last_block();
        match &mut client.stuck {
            Some(stuck) if stuck.path == path && stuck.block == block => {
                stuck.failures = stuck.failures.saturating_add(1);
            }
            stuck => {
                *stuck = Some(Stuck {
                    path,
                    block,
                    blksize: end.blksize,
                    failures: 1,
                });
            }
        }
        if client
            .stuck
            .as_ref()
            .is_some_and(|s| s.failures >= same_block_failures)
        {
            client.raise(DiagnosisSet::STUCK_AT_BLOCK);
        }
        self.note_pending(index);
    }

    /// Ends the boots that have been quiet long enough. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        let cfg = self.cfg;
        let mut ended = false;
        let mut pending = false;
        for slot in self.slots.iter_mut() {
            let Some(client) = slot.client.as_mut() else {
                continue;
            };
            if client.ended || now < client.deadline(&cfg) {
                continue;
            }
            client.ended = true;
            ended = true;
            // A missing file with nothing fetched after it is worth a word now.
            if client.failure == Some(FailCause::FileNotFound) && client.missing.is_some() {
                client.raise(DiagnosisSet::FILE_NOT_FOUND);
            }
            pending |= !client.pending.is_empty();
        }
        self.maybe_record |= ended;
        self.maybe_diagnosis |= pending;
    }

    /// When [`Timeline::handle_timeout`] next has a boot to end, if any boot is under way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|slot| slot.client.as_ref())
            .filter(|c| !c.ended)
            .map(|c| c.deadline(&self.cfg))
            .min()
    }

    /// The next diagnosis, if a failure pattern showed.
    pub fn poll_diagnosis(&mut self) -> Option<Diagnosis> {
        if !self.maybe_diagnosis {
            return None;
        }
        for slot in self.slots.iter_mut() {
            let Some(client) = slot.client.as_mut() else {
                continue;
            };
            if let Some(diagnosis) = client.take_diagnosis() {
                return Some(diagnosis);
            }
        }
        self.maybe_diagnosis = false;
        None
    }

    /// The next finished boot, if one ended. Plain DHCP clients that fetched nothing end
    /// without a record.
    pub fn poll_record(&mut self) -> Option<BootRecord> {
        if !self.maybe_record {
            return None;
        }
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            if !slot.client.as_ref().is_some_and(|c| c.ended) {
                continue;
            }
            let Some(client) = slot.client.take() else {
                continue;
            };
            self.rebuild_filters();
            if client.boot_client {
                return Some(client.into_record());
            }
        }
        self.maybe_record = false;
        None
    }
}

/// A boot under way, from [`Timeline::active`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveBoot<'t> {
    /// The client's MAC address; `None` for a client known only by its IP address.
    pub mac: Option<Mac>,
    /// Its boot class.
    pub class: Option<ClientClass>,
    /// Its host name.
    pub hostname: Option<&'t str>,
    /// Its address.
    pub address: Option<Ipv4Addr>,
    /// When the boot began.
    pub started: Instant,
    /// Its files so far.
    pub files: &'t [FileRecord],
}

/// What the timeline knows of one client's current boot.
#[derive(Debug, Clone)]
struct Client {
    mac: Option<Mac>,
    class: Option<ClientClass>,
    hostname: Option<heapless::String<HOSTNAME_MAX>>,
    address: Option<Ipv4Addr>,
    /// A boot class was seen, or a file was asked for: worth a record.
    boot_client: bool,
    started: Instant,
    last_seen: Instant,
    /// The boot file this server last handed it.
    boot_file: Option<heapless::String<BOOT_FILE_MAX>>,
    files: heapless::Vec<FileRecord, FILES_MAX>,
    files_dropped: u16,
    running: u16,
    discovers: u16,
    /// Offers answering DISCOVERs since the last REQUEST.
    offers_unrequested: u16,
    /// Any REQUEST seen in this boot.
    requested: bool,
    /// The last offer was a proxy offer (no address).
    proxy_offers: bool,
    /// Set by a proxy offer; cleared by the boot server (port 4011) or a file request.
    since_proxy_offer: Option<SinceProxyOffer>,
    proxy_discovers: u16,
    no_rule_class: Option<ClientClass>,
    not_found: u16,
    /// The last file asked for that did not exist.
    missing: Option<Path>,
    stuck: Option<Stuck>,
    /// The first file asked for by a client the DHCP side does not know.
    unknown_path: Option<Path>,
    /// The last failure with no success after it.
    failure: Option<FailCause>,
    /// Diagnoses reported (or to report) in this boot.
    raised: DiagnosisSet,
    /// Diagnoses not polled yet.
    pending: DiagnosisSet,
    ended: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct SinceProxyOffer {
    /// A REQUEST was seen (the client took an address from the DHCP server).
    requested: bool,
    discovers: u16,
}

#[derive(Debug, Clone)]
struct Stuck {
    path: Path,
    block: u64,
    blksize: u16,
    failures: u16,
}

impl Client {
    fn new(now: Instant, mac: Option<Mac>) -> Self {
        Self {
            mac,
            class: None,
            hostname: None,
            address: None,
            boot_client: false,
            started: now,
            last_seen: now,
            boot_file: None,
            files: heapless::Vec::new(),
            files_dropped: 0,
            running: 0,
            discovers: 0,
            offers_unrequested: 0,
            requested: false,
            proxy_offers: false,
            since_proxy_offer: None,
            proxy_discovers: 0,
            no_rule_class: None,
            not_found: 0,
            missing: None,
            stuck: None,
            unknown_path: None,
            failure: None,
            raised: DiagnosisSet::empty(),
            pending: DiagnosisSet::empty(),
            ended: false,
        }
    }

    /// Reports `diagnosis` unless this boot already did; the failure it names becomes the
    /// boot's failure.
    fn raise(&mut self, diagnosis: DiagnosisSet) {
        let cause = if diagnosis == DiagnosisSet::NO_BOOT_RULE {
            Some(FailCause::NoBootRule)
        } else if diagnosis == DiagnosisSet::PROXY_OFFER_IGNORED {
            Some(FailCause::ProxyOfferIgnored)
        } else if diagnosis == DiagnosisSet::NO_REQUEST {
            Some(FailCause::NeverRequested)
        } else {
            None
        };
        if let Some(cause) = cause {
            self.failure = Some(cause);
        }
        if !self.raised.contains(diagnosis) {
            self.raised |= diagnosis;
            self.pending |= diagnosis;
        }
    }

    fn deadline(&self, cfg: &TimelineConfig) -> Instant {
        if self.running > 0 {
            self.last_seen + cfg.stale
        } else {
            self.last_seen + cfg.quiet
        }
    }

    fn take_diagnosis(&mut self) -> Option<Diagnosis> {
        let flag = self.pending.iter().next()?;
        self.pending.remove(flag);
        let kind = if flag == DiagnosisSet::PROXY_OFFER_IGNORED {
            DiagnosisKind::ProxyOfferIgnored {
                discovers: self.proxy_discovers,
            }
        } else if flag == DiagnosisSet::NO_BOOT_RULE {
            DiagnosisKind::NoBootRule {
                class: self.no_rule_class.or(self.class)?,
            }
        } else if flag == DiagnosisSet::FILE_NOT_FOUND {
            DiagnosisKind::FileNotFound {
                path: self.missing.clone()?,
            }
        } else if flag == DiagnosisSet::STUCK_AT_BLOCK {
            let stuck = self.stuck.as_ref()?;
            DiagnosisKind::StuckAtBlock {
                path: stuck.path.clone(),
                block: stuck.block,
                blksize: stuck.blksize,
                failures: stuck.failures,
            }
        } else if flag == DiagnosisSet::NO_REQUEST {
            DiagnosisKind::NoRequest {
                discovers: self.discovers,
                proxy: self.proxy_offers,
            }
        } else {
            DiagnosisKind::UnknownAddress {
                path: self.unknown_path.clone()?,
            }
        };
        Some(Diagnosis {
            mac: self.mac,
            address: self.address,
            class: self.class,
            kind,
        })
    }

    fn into_record(self) -> BootRecord {
        let outcome = if self.files.iter().any(|f| f.state == FileState::Running) {
            BootOutcome::Incomplete
        } else if let Some(cause) = self.failure {
            BootOutcome::Failed(cause)
        } else if self
            .files
            .last()
            .is_some_and(|f| f.state == FileState::Done)
        {
            BootOutcome::Booted
        } else {
            BootOutcome::Incomplete
        };
        BootRecord {
            mac: self.mac,
            class: self.class,
            hostname: self.hostname,
            address: self.address,
            files: self.files,
            files_dropped: self.files_dropped,
            not_found: self.not_found,
            started: self.started,
            ended: self.last_seen,
            outcome,
            diagnoses: self.raised,
        }
    }
}

impl Timeline<'_> {
    fn client_mut(&mut self, index: usize) -> Option<&mut Client> {
        self.slots.get_mut(index)?.client.as_mut()
    }

    /// The slot of the live (not ended) client that `matches`.
    fn find(&self, matches: impl Fn(&Client) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.client.as_ref().is_some_and(|c| !c.ended && matches(c)))
    }

    fn find_mac(&self, mac: Mac) -> Option<usize> {
        if !self.macs.may_hold(mac_key(mac)) {
            return None;
        }
        self.find(|c| c.mac == Some(mac))
    }

    fn find_address(&self, address: Ipv4Addr) -> Option<usize> {
        if !self.addresses.may_hold(u32::from(address)) {
            return None;
        }
        self.find(|c| c.address == Some(address))
    }

    /// The client a TFTP peer is: by MAC if the driver knows it, else by address.
    fn find_peer(&self, peer: Peer) -> Option<usize> {
        peer.mac
            .and_then(|mac| self.find_mac(mac))
            .or_else(|| self.find_address(peer.address))
    }

    /// Adds the keys of the client in slot `index` to the filters.
    fn index_keys(&mut self, index: usize) {
        let Some(client) = self.slots.get(index).and_then(|s| s.client.as_ref()) else {
            return;
        };
        let (mac, address) = (client.mac, client.address);
        if let Some(mac) = mac {
            self.macs.insert(mac_key(mac));
        }
        if let Some(address) = address {
            self.addresses.insert(u32::from(address));
        }
    }

    /// The filters anew from the slots, after a client left.
    fn rebuild_filters(&mut self) {
        self.macs = KeyFilter::default();
        self.addresses = KeyFilter::default();
        for index in 0..self.slots.len() {
            self.index_keys(index);
        }
    }

    /// The client of a TFTP request, followed from now on if it was not yet; a client the
    /// DHCP side does not know raises [`DiagnosisKind::UnknownAddress`].
    fn tftp_client(&mut self, now: Instant, peer: Peer, path: &str) -> usize {
        let index = match self.find_peer(peer) {
            Some(index) => index,
            None => self.take_slot(now, peer.mac),
        };
        let serves_dhcp = self.cfg.serves_dhcp;
        if let Some(client) = self.client_mut(index) {
            client.boot_client = true;
            if client.address.is_none() {
                client.address = Some(peer.address);
            }
            if client.mac.is_none() && serves_dhcp {
                if client.unknown_path.is_none() {
                    client.unknown_path = Some(truncated(path));
                }
                client.raise(DiagnosisSet::UNKNOWN_ADDRESS);
            }
        }
        self.index_keys(index);
        index
    }

    /// A slot for a new client: a free one, else the one quiet longest (its boot is dropped).
    fn take_slot(&mut self, now: Instant, mac: Option<Mac>) -> usize {
        let free = self.slots.iter().position(|slot| slot.client.is_none());
        let index = free.unwrap_or_else(|| {
            let oldest = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, slot)| slot.client.as_ref().map(|c| c.last_seen))
                .map(|(index, _)| index);
            self.dropped = self.dropped.saturating_add(1);
            oldest.unwrap_or(0)
        });
        if let Some(slot) = self.slots.get_mut(index) {
            slot.client = Some(Client::new(now, mac));
        }
        if free.is_none() {
            self.rebuild_filters();
        }
        self.index_keys(index);
        index
    }

    fn note_pending(&mut self, index: usize) {
        if self
            .slots
            .get(index)
            .and_then(|slot| slot.client.as_ref())
            .is_some_and(|c| !c.pending.is_empty())
        {
            self.maybe_diagnosis = true;
        }
    }
}

/// A 256-bit filter of 32-bit keys: no false "absent", rare false "maybe".
#[derive(Debug, Clone, Copy, Default)]
struct KeyFilter([u64; 4]);

impl KeyFilter {
    fn bit(key: u32) -> (usize, u64) {
        // Fibonacci hashing: the top 8 bits of the product pick one of 256 bits.
        let h = key.wrapping_mul(0x9e37_79b9) >> 24;
        ((h >> 6) as usize, 1 << (h & 63))
    }

    fn insert(&mut self, key: u32) {
        let (word, bit) = Self::bit(key);
        if let Some(w) = self.0.get_mut(word) {
            *w |= bit;
        }
    }

    fn may_hold(&self, key: u32) -> bool {
        let (word, bit) = Self::bit(key);
        self.0.get(word).is_some_and(|w| w & bit != 0)
    }
}

/// A MAC address folded to 32 bits (the vendor part matters least).
fn mac_key(mac: Mac) -> u32 {
    let [a, b, c, d, e, f] = mac.0;
    u32::from_be_bytes([c ^ a, d ^ b, e, f])
}

/// `path` cut to [`PATH_MAX`] bytes at a character boundary.
fn truncated(path: &str) -> Path {
    let mut out = Path::new();
    for ch in path.chars() {
        if out.push(ch).is_err() {
            break;
        }
    }
    out
}

/// Whether a TFTP path names the boot file handed out (a leading `/` aside).
fn same_path(boot_file: &str, path: &str) -> bool {
    boot_file.trim_start_matches('/') == path.trim_start_matches('/')
}

#[cfg(test)]
mod tests;
