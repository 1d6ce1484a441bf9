//! Prometheus metrics of `pocketpxe serve` (`--metrics ADDR:PORT`), served in the OpenMetrics
//! text format at `/metrics` by [`MetricsServer`]; every metric is listed in `docs/metrics.md`.
//!
//! [`Metrics`] owns the registry; the tasks record through handles cut from it, one per
//! interface: [`DhcpMetrics`], [`TftpMetrics`], [`LeaseFileMetrics`]. Every metric is an atomic
//! (prometheus-client's counters, gauges and histograms), so recording takes no lock that the
//! scrape holds for long, and the hot paths record little: DHCP once per datagram and per reply,
//! TFTP once per transfer (at its start and at its end, from the core's per-transfer counters),
//! never per DATA block. Pool use follows the core's lease events (no walk over the lease table
//! per datagram).

mod http;

pub use http::{MetricsError, MetricsServer};

use pocketpxe_core::dhcp::{DhcpEvent, DhcpOutcome, Lease, Pool};
use pocketpxe_core::tftp::{Outcome, RejectReason, TransferStats};
use pocketpxe_core::wire::dhcp::MessageType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// The registry and every metric family in it. Cheap to clone (one shared registry).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family registered (and no series yet).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pocketpxe");
        let f = Families {
            dhcp_received: Family::default(),
            dhcp_replies: Family::default(),
            dhcp_ignored: Family::default(),
            pool_size: Family::default(),
            pool_used: Family::default(),
            pool_free: Family::default(),
            lease_write: Family::new_with_constructor(latency_histogram),
            lease_sync: Family::new_with_constructor(latency_histogram),
            tftp_started: Family::default(),
            tftp_completed: Family::default(),
            tftp_size_probes: Family::default(),
            tftp_failed: Family::default(),
            tftp_refused: Family::default(),
            tftp_bytes: Family::default(),
            tftp_retransmits: Family::default(),
            tftp_active: Family::default(),
            boot_duration: Family::new_with_constructor(boot_histogram),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "dhcp_received",
            "DHCP messages received, by message type and what became of them \
             (answered, handled: processed without a reply, ignored)",
            f.dhcp_received.clone(),
        );
        r.register(
            "dhcp_replies",
            "DHCP replies, by message type and outcome (sent, withheld: the lease could not \
             be saved, failed: the send failed)",
            f.dhcp_replies.clone(),
        );
        r.register(
            "dhcp_ignored",
            "DHCP messages not answered, by reason",
            f.dhcp_ignored.clone(),
        );
        r.register(
            "dhcp_pool_size",
            "Addresses in the DHCP range",
            f.pool_size.clone(),
        );
        r.register(
            "dhcp_pool_used",
            "Addresses of the DHCP range bound to a client",
            f.pool_used.clone(),
        );
        r.register(
            "dhcp_pool_free",
            "Addresses of the DHCP range bound to no client (offered and declined ones \
             included)",
            f.pool_free.clone(),
        );
        r.register_with_unit(
            "lease_file_write",
            "Time to write lease records (op: append to the journal, or rewrite the whole file)",
            Unit::Seconds,
            f.lease_write.clone(),
        );
        r.register_with_unit(
            "lease_file_fsync",
            "Time to make written lease records durable (fdatasync of an append; fsync of the \
             file and its directory around the rename of a rewrite)",
            Unit::Seconds,
            f.lease_sync.clone(),
        );
        r.register(
            "tftp_transfers_started",
            "TFTP read transfers accepted",
            f.tftp_started.clone(),
        );
        r.register(
            "tftp_transfers_completed",
            "TFTP transfers that delivered the whole file",
            f.tftp_completed.clone(),
        );
        r.register(
            "tftp_size_probes",
            "TFTP transfers the client ended after the OACK to learn the size (tsize)",
            f.tftp_size_probes.clone(),
        );
        r.register(
            "tftp_transfers_failed",
            "TFTP transfers that ended early, by reason",
            f.tftp_failed.clone(),
        );
        r.register(
            "tftp_requests_refused",
            "TFTP requests answered with an ERROR, by reason",
            f.tftp_refused.clone(),
        );
        r.register_with_unit(
            "tftp_sent",
            "File bytes delivered by ended TFTP transfers (acknowledged by the client)",
            Unit::Bytes,
            f.tftp_bytes.clone(),
        );
        r.register(
            "tftp_retransmissions",
            "DATA packets sent again by ended TFTP transfers",
            f.tftp_retransmits.clone(),
        );
        r.register(
            "tftp_active_transfers",
            "TFTP transfers running now",
            f.tftp_active.clone(),
        );
        r.register_with_unit(
            "boot_duration",
            "Completed boots, by client class: time from the first DISCOVER to the last file",
            Unit::Seconds,
            f.boot_duration.clone(),
        );
        Self {
            inner: Arc::new(Families { registry, ..f }),
        }
    }

    /// The DHCP task's handle for `interface`; `pool` is its range (none in proxy mode).
    pub fn dhcp(&self, interface: &str, pool: Option<Pool>) -> DhcpMetrics {
        let interface = Arc::new(interface.to_owned());
        let f = &self.inner;
        let pool = pool.map(|pool| {
            let label = Iface {
                interface: interface.clone(),
            };
            let size = i64::from(u32::from(pool.end).saturating_sub(u32::from(pool.start))) + 1;
            let use_ = PoolUse {
                pool,
                size,
                used: 0,
                by_ip: HashMap::new(),
                ip_of: HashMap::new(),
                used_gauge: f.pool_used.get_or_create_owned(&label),
                free_gauge: f.pool_free.get_or_create_owned(&label),
            };
            f.pool_size.get_or_create(&label).set(size);
            use_.publish();
            use_
        });
        DhcpMetrics {
            interface,
            received: f.dhcp_received.clone(),
            replies: f.dhcp_replies.clone(),
            ignored: f.dhcp_ignored.clone(),
            pool,
        }
    }

    /// The TFTP task's handle for `interface`.
    pub fn tftp(&self, interface: &str) -> TftpMetrics {
        let interface = Arc::new(interface.to_owned());
        let f = &self.inner;
        let label = Iface {
            interface: interface.clone(),
        };
        TftpMetrics {
            started: f.tftp_started.get_or_create_owned(&label),
            completed: f.tftp_completed.get_or_create_owned(&label),
            size_probes: f.tftp_size_probes.get_or_create_owned(&label),
            bytes: f.tftp_bytes.get_or_create_owned(&label),
            retransmits: f.tftp_retransmits.get_or_create_owned(&label),
            active: f.tftp_active.get_or_create_owned(&label),
            failed: f.tftp_failed.clone(),
            refused: f.tftp_refused.clone(),
            interface,
        }
    }

    /// The lease file's handle for `interface`.
    pub fn lease_file(&self, interface: &str) -> LeaseFileMetrics {
        let interface = Arc::new(interface.to_owned());
        let f = &self.inner;
        let op = |op| LeaseFileOp {
            interface: interface.clone(),
            op,
        };
        LeaseFileMetrics {
            append_write: f.lease_write.get_or_create_owned(&op("append")),
            append_sync: f.lease_sync.get_or_create_owned(&op("append")),
            rewrite_write: f.lease_write.get_or_create_owned(&op("rewrite")),
            rewrite_sync: f.lease_sync.get_or_create_owned(&op("rewrite")),
        }
    }

    /// Records a completed boot of a client of `class` (e.g. `efi-x64`) that took `seconds`
    /// from its first DISCOVER to its last file.
    pub fn boot_completed(&self, class: &str, seconds: f64) {
        self.inner
            .boot_duration
            .get_or_create(&BootClass {
                class: class.to_owned(),
            })
            .observe(seconds);
    }

    /// Everything, in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }
}

/// What became of a DHCP reply the core produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Sent.
    Sent,
    /// Not sent: the lease change it announces could not be saved (the client retries).
    Withheld,
    /// The send failed.
    Failed,
}

/// The DHCP task's metrics for one interface.
#[derive(Debug)]
pub struct DhcpMetrics {
    interface: Arc<String>,
    received: Family<DhcpMessage, Counter>,
    replies: Family<DhcpMessage, Counter>,
    ignored: Family<Reason, Counter>,
    pool: Option<PoolUse>,
}

impl DhcpMetrics {
    /// Counts a received datagram by what the core decided.
    pub fn received(&self, outcome: &DhcpOutcome) {
        let kind = outcome
            .summary()
            .map_or("unknown", |s| message_label(s.request));
        let outcome = match outcome {
            DhcpOutcome::Reply { .. } => "answered",
            DhcpOutcome::Handled { .. } => "handled",
            DhcpOutcome::Ignored { reason, .. } => {
                self.ignored
                    .get_or_create(&Reason {
                        interface: self.interface.clone(),
                        reason: reason.label(),
                    })
                    .inc();
                "ignored"
            }
        };
        self.received
            .get_or_create(&DhcpMessage {
                interface: self.interface.clone(),
                r#type: kind,
                outcome,
            })
            .inc();
    }

    /// Counts a reply of type `reply` (OFFER, ACK, …) by what became of it.
    pub fn reply(&self, reply: Option<MessageType>, outcome: ReplyOutcome) {
        self.replies
            .get_or_create(&DhcpMessage {
                interface: self.interface.clone(),
                r#type: reply.map_or("unknown", message_label),
                outcome: match outcome {
                    ReplyOutcome::Sent => "sent",
                    ReplyOutcome::Withheld => "withheld",
                    ReplyOutcome::Failed => "failed",
                },
            })
            .inc();
    }

    /// Follows a lease change the core reported (pool use).
    pub fn lease_event(&mut self, event: &DhcpEvent) {
        if let Some(pool) = &mut self.pool {
            pool.event(event);
            pool.publish();
        }
    }

    /// Starts pool use over from the leases the core holds (after leases were restored from
    /// the lease file, which reports no events).
    pub fn leases_restored<'l>(&mut self, leases: impl Iterator<Item = &'l Lease>) {
        if let Some(pool) = &mut self.pool {
            pool.by_ip.clear();
            pool.ip_of.clear();
            pool.used = 0;
            for lease in leases {
                pool.bind(lease.ip, lease.mac);
            }
            pool.publish();
        }
    }
}

/// The TFTP task's metrics for one interface: per transfer, never per block.
#[derive(Debug, Clone)]
pub struct TftpMetrics {
    interface: Arc<String>,
    started: Counter,
    completed: Counter,
    size_probes: Counter,
    bytes: Counter,
    retransmits: Counter,
    active: Gauge,
    failed: Family<Reason, Counter>,
    refused: Family<Reason, Counter>,
}

impl TftpMetrics {
    /// A transfer was accepted.
    pub fn started(&self) {
        self.started.inc();
        self.active.inc();
    }

    /// A transfer ended (every accepted transfer ends once), with its counters.
    pub fn ended(&self, stats: &TransferStats, outcome: Outcome) {
        self.active.dec();
        self.bytes.inc_by(stats.bytes);
        self.retransmits.inc_by(stats.retransmits);
        match outcome {
            Outcome::Done => {
                self.completed.inc();
            }
            Outcome::SizeProbe => {
                self.size_probes.inc();
            }
            Outcome::Failed(reason) => {
                self.failed
                    .get_or_create(&Reason {
                        interface: self.interface.clone(),
                        reason: reason.label(),
                    })
                    .inc();
            }
        }
    }

    /// A request was refused with an ERROR.
    pub fn refused(&self, reason: &RejectReason) {
        self.refused
            .get_or_create(&Reason {
                interface: self.interface.clone(),
                reason: reason.label(),
            })
            .inc();
    }
}

/// The lease file's write and sync latencies for one interface.
#[derive(Debug, Clone)]
pub struct LeaseFileMetrics {
    append_write: Histogram,
    append_sync: Histogram,
    rewrite_write: Histogram,
    rewrite_sync: Histogram,
}

impl LeaseFileMetrics {
    /// An append to the journal: its `write` and its `fdatasync`.
    pub fn appended(&self, write: Duration, sync: Duration) {
        self.append_write.observe(write.as_secs_f64());
        self.append_sync.observe(sync.as_secs_f64());
    }

    /// A rewrite (compaction): writing the temporary file, and the syncs around the rename.
    pub fn rewritten(&self, write: Duration, sync: Duration) {
        self.rewrite_write.observe(write.as_secs_f64());
        self.rewrite_sync.observe(sync.as_secs_f64());
    }
}

#[derive(Debug)]
struct Families {
    registry: Registry,
    dhcp_received: Family<DhcpMessage, Counter>,
    dhcp_replies: Family<DhcpMessage, Counter>,
    dhcp_ignored: Family<Reason, Counter>,
    pool_size: Family<Iface, Gauge>,
    pool_used: Family<Iface, Gauge>,
    pool_free: Family<Iface, Gauge>,
    lease_write: Family<LeaseFileOp, Histogram, fn() -> Histogram>,
    lease_sync: Family<LeaseFileOp, Histogram, fn() -> Histogram>,
    tftp_started: Family<Iface, Counter>,
    tftp_completed: Family<Iface, Counter>,
    tftp_size_probes: Family<Iface, Counter>,
    tftp_failed: Family<Reason, Counter>,
    tftp_refused: Family<Reason, Counter>,
    tftp_bytes: Family<Iface, Counter>,
    tftp_retransmits: Family<Iface, Counter>,
    tftp_active: Family<Iface, Gauge>,
    boot_duration: Family<BootClass, Histogram, fn() -> Histogram>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Iface {
    interface: Arc<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DhcpMessage {
    interface: Arc<String>,
    r#type: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    interface: Arc<String>,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseFileOp {
    interface: Arc<String>,
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BootClass {
    class: String,
}

/// Which addresses are bound, as the core's lease events tell it: a client holds one address,
/// so a new binding for a client ends its old one (the core reports only the new lease).
#[derive(Debug)]
struct PoolUse {
    pool: Pool,
    size: i64,
    /// Bound addresses inside the pool.
    used: i64,
    by_ip: HashMap<Ipv4Addr, [u8; 6]>,
    ip_of: HashMap<[u8; 6], Ipv4Addr>,
    used_gauge: Gauge,
    free_gauge: Gauge,
}

impl PoolUse {
    fn event(&mut self, event: &DhcpEvent) {
        match event {
            DhcpEvent::LeaseGranted(lease) | DhcpEvent::LeaseRenewed(lease) => {
                self.bind(lease.ip, lease.mac);
            }
            DhcpEvent::LeaseReleased(lease)
            | DhcpEvent::LeaseDeclined(lease)
            | DhcpEvent::LeaseExpired(lease) => self.unbind(lease.ip),
        }
    }

    fn bind(&mut self, ip: Ipv4Addr, mac: [u8; 6]) {
        if let Some(old) = self.ip_of.insert(mac, ip)
            && old != ip
            && self.by_ip.get(&old) == Some(&mac)
        {
            self.remove(old);
        }
        if let Some(holder) = self.by_ip.insert(ip, mac) {
            if holder != mac && self.ip_of.get(&holder) == Some(&ip) {
                self.ip_of.remove(&holder);
            }
        } else if self.contains(ip) {
            self.used += 1;
        }
    }

    fn unbind(&mut self, ip: Ipv4Addr) {
        if let Some(holder) = self.by_ip.get(&ip).copied() {
            if self.ip_of.get(&holder) == Some(&ip) {
                self.ip_of.remove(&holder);
            }
            self.remove(ip);
        }
    }

    fn remove(&mut self, ip: Ipv4Addr) {
        if self.by_ip.remove(&ip).is_some() && self.contains(ip) {
            self.used -= 1;
        }
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.pool.start)..=u32::from(self.pool.end)).contains(&u32::from(ip))
    }

    fn publish(&self) {
        self.used_gauge.set(self.used);
        self.free_gauge.set(self.size - self.used);
    }
}

/// The message type in lowercase (`discover`, `ack`, …).
fn message_label(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Discover => "discover",
        MessageType::Offer => "offer",
        MessageType::Request => "request",
        MessageType::Decline => "decline",
        MessageType::Ack => "ack",
        MessageType::Nak => "nak",
        MessageType::Release => "release",
        MessageType::Inform => "inform",
        _ => "unknown",
    }
}

/// 100 µs to about 3.3 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// 1 s to about 68 min, doubling.
fn boot_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pocketpxe_core::Instant;
    use pocketpxe_core::dhcp::IgnoreReason;
    use pocketpxe_core::tftp::FailReason;

    /// The value of the sample line that starts with `series ` (name and labels).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    }

    fn lease(last: u8, mac: u8) -> Lease {
        Lease {
            mac: [2, 0, 0, 0, 0, mac],
            ip: Ipv4Addr::new(10, 0, 0, last),
            expires_at: Instant::ZERO,
        }
    }

    #[test]
    fn pool_use_follows_lease_events() {
        let metrics = Metrics::new();
        let pool = Pool {
            start: Ipv4Addr::new(10, 0, 0, 10),
            end: Ipv4Addr::new(10, 0, 0, 19),
        };
        let mut dhcp = metrics.dhcp("eth1", Some(pool));
        let used =
            |m: &Metrics| sample(&m.encode(), r#"pocketpxe_dhcp_pool_used{interface="eth1"}"#);
        let free =
            |m: &Metrics| sample(&m.encode(), r#"pocketpxe_dhcp_pool_free{interface="eth1"}"#);
        assert_eq!(
            sample(
                &metrics.encode(),
                r#"pocketpxe_dhcp_pool_size{interface="eth1"}"#
            ),
            Some(10.0)
        );
        assert_eq!((used(&metrics), free(&metrics)), (Some(0.0), Some(10.0)));
        dhcp.lease_event(&DhcpEvent::LeaseGranted(lease(10, 1)));
        dhcp.lease_event(&DhcpEvent::LeaseGranted(lease(11, 2)));
        dhcp.lease_event(&DhcpEvent::LeaseRenewed(lease(11, 2)));
        // A reservation outside the range is a lease but uses no pool address.
        dhcp.lease_event(&DhcpEvent::LeaseGranted(lease(50, 3)));
        assert_eq!((used(&metrics), free(&metrics)), (Some(2.0), Some(8.0)));
        // Client 1 moves to .12: .10 is free again.
        dhcp.lease_event(&DhcpEvent::LeaseGranted(lease(12, 1)));
        assert_eq!(used(&metrics), Some(2.0));
        dhcp.lease_event(&DhcpEvent::LeaseReleased(lease(12, 1)));
        dhcp.lease_event(&DhcpEvent::LeaseExpired(lease(50, 3)));
        assert_eq!(used(&metrics), Some(1.0));
        dhcp.lease_event(&DhcpEvent::LeaseDeclined(lease(11, 2)));
        // An address that was never bound changes nothing.
        dhcp.lease_event(&DhcpEvent::LeaseExpired(lease(13, 9)));
        assert_eq!((used(&metrics), free(&metrics)), (Some(0.0), Some(10.0)));
        dhcp.leases_restored([lease(10, 1), lease(15, 2), lease(60, 3)].iter());
        assert_eq!((used(&metrics), free(&metrics)), (Some(2.0), Some(8.0)));
    }

    #[test]
    fn dhcp_messages_are_counted_by_type_reason_and_outcome() {
        let metrics = Metrics::new();
        let dhcp = metrics.dhcp("eth1", None);
        let ignored = DhcpOutcome::Ignored {
            reason: IgnoreReason::NotDhcp,
            summary: None,
        };
        dhcp.received(&ignored);
        dhcp.received(&ignored);
        dhcp.reply(Some(MessageType::Offer), ReplyOutcome::Sent);
        dhcp.reply(Some(MessageType::Ack), ReplyOutcome::Withheld);
        let text = metrics.encode();
        let at = |series: &str| sample(&text, series);
        assert_eq!(
            at(
                r#"pocketpxe_dhcp_received_total{interface="eth1",type="unknown",outcome="ignored"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            at(r#"pocketpxe_dhcp_ignored_total{interface="eth1",reason="not_dhcp"}"#),
            Some(2.0)
        );
        assert_eq!(
            at(r#"pocketpxe_dhcp_replies_total{interface="eth1",type="offer",outcome="sent"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pocketpxe_dhcp_replies_total{interface="eth1",type="ack",outcome="withheld"}"#),
            Some(1.0)
        );
        // Proxy mode: no pool gauges.
        assert!(!text.contains("pocketpxe_dhcp_pool_size{"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn tftp_transfers_are_counted_at_start_and_end() {
        let metrics = Metrics::new();
        let tftp = metrics.tftp("eth1");
        let stats = |bytes, retransmits| TransferStats {
            started: Instant::ZERO,
            ended: Instant::ZERO,
            bytes,
            blocks_sent: 0,
            retransmits,
            timeouts: 0,
            duplicate_acks: 0,
            gaps: 0,
        };
        for _ in 0..4 {
            tftp.started();
        }
        tftp.ended(&stats(1000, 2), Outcome::Done);
        tftp.ended(&stats(0, 0), Outcome::SizeProbe);
        tftp.ended(&stats(512, 5), Outcome::Failed(FailReason::TimedOut));
        tftp.refused(&RejectReason::NotFound);
        let text = metrics.encode();
        let at = |series: &str| sample(&text, series);
        let eth1 = r#"{interface="eth1"}"#;
        assert_eq!(
            at(&format!("pocketpxe_tftp_transfers_started_total{eth1}")),
            Some(4.0)
        );
        assert_eq!(
            at(&format!("pocketpxe_tftp_transfers_completed_total{eth1}")),
            Some(1.0)
        );
        assert_eq!(
            at(&format!("pocketpxe_tftp_size_probes_total{eth1}")),
            Some(1.0)
        );
        assert_eq!(
            at(&format!("pocketpxe_tftp_active_transfers{eth1}")),
            Some(1.0)
        );
        assert_eq!(
            at(&format!("pocketpxe_tftp_sent_bytes_total{eth1}")),
            Some(1512.0)
        );
        assert_eq!(
            at(&format!("pocketpxe_tftp_retransmissions_total{eth1}")),
            Some(7.0)
        );
        assert_eq!(
            at(r#"pocketpxe_tftp_transfers_failed_total{interface="eth1",reason="timed_out"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pocketpxe_tftp_requests_refused_total{interface="eth1",reason="not_found"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn completed_boots_are_a_histogram_by_class() {
        let metrics = Metrics::new();
        metrics.boot_completed("efi-x64", 12.5);
        metrics.boot_completed("efi-x64", 3.0);
        metrics.boot_completed("bios", 700.0);
        let text = metrics.encode();
        let at = |series: &str| sample(&text, series);
        assert_eq!(
            at(r#"pocketpxe_boot_duration_seconds_count{class="efi-x64"}"#),
            Some(2.0)
        );
        assert_eq!(
            at(r#"pocketpxe_boot_duration_seconds_sum{class="efi-x64"}"#),
            Some(15.5)
        );
        assert_eq!(
            at(r#"pocketpxe_boot_duration_seconds_bucket{le="4.0",class="efi-x64"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pocketpxe_boot_duration_seconds_count{class="bios"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn lease_file_latencies_are_histograms_by_operation() {
        let metrics = Metrics::new();
        let file = metrics.lease_file("eth1");
        file.appended(Duration::from_micros(50), Duration::from_millis(3));
        file.rewritten(Duration::from_micros(500), Duration::from_millis(9));
        let text = metrics.encode();
        let at = |series: &str| sample(&text, series);
        assert_eq!(
            at(r#"pocketpxe_lease_file_fsync_seconds_count{interface="eth1",op="append"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pocketpxe_lease_file_fsync_seconds_sum{interface="eth1",op="rewrite"}"#),
            Some(0.009)
        );
        assert_eq!(
            at(
                r#"pocketpxe_lease_file_write_seconds_bucket{le="0.0001",interface="eth1",op="append"}"#
            ),
            Some(1.0)
        );
    }
}
