//! The lease table: caller-owned slots, one binding (or offer, or quarantined address) each.

use core::net::Ipv4Addr;

use super::Pool;
use super::lease_table::{LeaseTable, Links};
use crate::time::Instant;

/// A binding of an IP address to a client's MAC address until `expires_at` (RFC 2131 §4.3).
///
/// `expires_at` is in the driver's clock domain (see [`Instant`]). To persist across restarts,
/// store the wall-clock expiry and convert back before [`restore`](super::DhcpServer::restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lease {
    /// The client's hardware address (`chaddr`).
    pub mac: [u8; 6],
    /// The leased address.
    pub ip: Ipv4Addr,
    /// When the lease ends.
    pub expires_at: Instant,
}

/// Storage for one lease table entry and its share of the table's index. The caller provides
/// an array of these (e.g. `[LeaseSlot::EMPTY; 64]`); its length bounds the number of clients
/// served at once (at most 65 535 slots are used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeaseSlot {
    pub(crate) entry: Option<Entry>,
    pub(crate) links: Links,
}

impl Default for LeaseSlot {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl LeaseSlot {
    /// An unused slot.
    pub const EMPTY: Self = Self {
        entry: None,
        links: Links::NONE,
    };

    /// The bound lease in this slot, if any (offers and declined addresses are not leases).
    pub fn lease(&self) -> Option<&Lease> {
        self.entry
            .as_ref()
            .filter(|e| e.state == State::Bound)
            .map(|e| &e.lease)
    }
}

/// One table entry: an address held for a MAC until `lease.expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Entry {
    pub(crate) lease: Lease,
    pub(crate) state: State,
}

/// Why an entry holds its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum State {
    /// Offered in a DHCPOFFER, held until the offer times out (RFC 2131 §4.3.1).
    Offered,
    /// Acknowledged: a lease (RFC 2131 §4.3.2).
    Bound,
    /// Declined by a client as in use (RFC 2131 §4.3.3): unusable until expiry. `lease.mac`
    /// is the client that declined it.
    Declined,
    /// Chosen by `lease.mac` from another server's offer (its DHCPREQUEST named another server
    /// identifier, RFC 2131 §4.3.2): not offered to anyone else until the offer hold ends, so
    /// that replicas sharing a pool do not hand out what another one is about to bind. Not a
    /// binding here; the client may still be granted it here.
    Elsewhere,
}

/// Finds the entry holding `ip`, whatever its state.
pub(crate) fn holder(slots: &LeaseTable<'_>, ip: Ipv4Addr) -> Option<(usize, Entry)> {
    slots.holder(ip)
}

/// Finds the offer or lease of `mac` for which `fits` holds.
pub(crate) fn of_client(
    slots: &LeaseTable<'_>,
    mac: [u8; 6],
    fits: impl Fn(Ipv4Addr) -> bool,
) -> Option<(usize, Entry)> {
    slots.find_client(mac, |_, e| {
        matches!(e.state, State::Offered | State::Bound) && fits(e.lease.ip)
    })
}

/// The lowest address of `pool` that no entry holds and `usable` accepts.
pub(crate) fn first_free(
    slots: &LeaseTable<'_>,
    pool: &Pool,
    usable: impl Fn(Ipv4Addr) -> bool,
) -> Option<Ipv4Addr> {
    slots.first_free(pool, usable)
}

/// The first unused slot.
pub(crate) fn free_slot(slots: &LeaseTable<'_>) -> Option<usize> {
    slots.free_slot()
}

/// The earliest expiry in the table.
pub(crate) fn next_expiry(slots: &LeaseTable<'_>) -> Option<Instant> {
    slots.next_expiry()
}
