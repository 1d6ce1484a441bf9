//! The lease table: caller-owned slots, one binding (or offer, or quarantined address) each.
//!
//! Every lookup, allocation and expiry the server does on the table goes through the functions
//! here ([`holder`], [`of_client`], [`first_free`], [`free_slot`], [`next_expiry`],
//! [`withdraw_offers`], [`expire`]) and every write ([`set`], [`clear`]), so the table can
//! change its indexing in one place.

use core::net::Ipv4Addr;

use super::Pool;
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

/// Storage for one lease table entry. The caller provides an array of these (e.g.
/// `[LeaseSlot::EMPTY; 64]`); its length bounds the number of clients served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeaseSlot {
    pub(crate) entry: Option<Entry>,
}

impl LeaseSlot {
    /// An unused slot.
    pub const EMPTY: Self = Self { entry: None };

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
}

/// Finds the entry holding `ip`, whatever its state.
pub(crate) fn holder(slots: &[LeaseSlot], ip: Ipv4Addr) -> Option<(usize, Entry)> {
    slots
        .iter()
        .enumerate()
        .find_map(|(i, s)| s.entry.filter(|e| e.lease.ip == ip).map(|e| (i, e)))
}

/// Finds the offer or lease of `mac` for which `fits` holds.
pub(crate) fn of_client(
    slots: &[LeaseSlot],
    mac: [u8; 6],
    fits: impl Fn(Ipv4Addr) -> bool,
) -> Option<(usize, Entry)> {
    slots.iter().enumerate().find_map(|(i, s)| {
        s.entry
            .filter(|e| e.lease.mac == mac && e.state != State::Declined && fits(e.lease.ip))
            .map(|e| (i, e))
    })
}

/// The lowest address of `pool` that no entry holds and `usable` accepts.
///
/// The table is scanned once per window of [`FREE_WINDOW`] pool addresses (marking the held
/// ones in a bitmap on the stack), not once per candidate address: filling a pool of `n`
/// addresses costs O(n) per offer instead of O(n²).
pub(crate) fn first_free(
    slots: &[LeaseSlot],
    pool: &Pool,
    usable: impl Fn(Ipv4Addr) -> bool,
) -> Option<Ipv4Addr> {
    let (start, end) = (u32::from(pool.start), u32::from(pool.end));
    let mut base = start;
    while base <= end {
        let last = end.min(base.saturating_add(FREE_WINDOW - 1));
        let mut held = [0u64; FREE_WINDOW as usize / 64];
        for entry in slots.iter().filter_map(|s| s.entry.as_ref()) {
            let ip = u32::from(entry.lease.ip);
            if (base..=last).contains(&ip) {
                let bit = (ip - base) as usize;
                held[bit / 64] |= 1 << (bit % 64);
            }
        }
        let found = (base..=last).find(|&ip| {
            let bit = (ip - base) as usize;
            held[bit / 64] & (1 << (bit % 64)) == 0 && usable(Ipv4Addr::from(ip))
        });
        if found.is_some() {
            return found.map(Ipv4Addr::from);
        }
        base = last.checked_add(1)?;
    }
    None
}

/// Pool addresses examined per pass over the table in [`first_free`] (a 128-byte bitmap).
const FREE_WINDOW: u32 = 1024;

/// The first unused slot.
pub(crate) fn free_slot(slots: &[LeaseSlot]) -> Option<usize> {
    slots.iter().position(|s| s.entry.is_none())
}

/// The earliest expiry in the table.
pub(crate) fn next_expiry(slots: &[LeaseSlot]) -> Option<Instant> {
    slots
        .iter()
        .filter_map(|s| s.entry.map(|e| e.lease.expires_at))
        .min()
}

/// Empties every slot.
pub(crate) fn clear(slots: &mut [LeaseSlot]) {
    slots.fill(LeaseSlot::EMPTY);
}

/// The bound leases (offers and declined addresses are not leases).
pub(crate) fn bound(slots: &[LeaseSlot]) -> impl Iterator<Item = &Lease> + '_ {
    slots.iter().filter_map(LeaseSlot::lease)
}

/// Puts `entry` (or nothing) in slot `slot`, an index a lookup here returned.
pub(crate) fn set(slots: &mut [LeaseSlot], slot: usize, entry: Option<Entry>) {
    let slot = slots
        .get_mut(slot)
        .expect("invariant: slot index found in this table");
    slot.entry = entry;
}

/// Frees the offers of `mac` (RFC 2131 §4.3.2: a client that chose another server, or that
/// has just been bound elsewhere), except the one in slot `keep`.
pub(crate) fn withdraw_offers(slots: &mut [LeaseSlot], mac: [u8; 6], keep: Option<usize>) {
    for (i, slot) in slots.iter_mut().enumerate() {
        if Some(i) != keep
            && slot
                .entry
                .is_some_and(|e| e.lease.mac == mac && e.state == State::Offered)
        {
            *slot = LeaseSlot::EMPTY;
        }
    }
}

/// Clears the entries due at `now`. Each expiring bound lease is first handed to `report`;
/// when that returns `false` (nowhere to report it) the lease stays for a later call.
pub(crate) fn expire(slots: &mut [LeaseSlot], now: Instant, mut report: impl FnMut(Lease) -> bool) {
    for slot in slots.iter_mut() {
        let Some(entry) = slot.entry else { continue };
        if entry.lease.expires_at > now {
            continue;
        }
        if entry.state == State::Bound && !report(entry.lease) {
            continue;
        }
        *slot = LeaseSlot::EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_free_spans_windows_and_the_top_of_the_address_space() {
        let held = |ip: u32| LeaseSlot {
            entry: Some(Entry {
                lease: Lease {
                    mac: [1; 6],
                    ip: Ipv4Addr::from(ip),
                    expires_at: Instant::ZERO,
                },
                state: State::Bound,
            }),
        };
        // Every address of the first window and one more are held.
        let start = 0x0a00_0000u32;
        let slots: [LeaseSlot; FREE_WINDOW as usize + 1] =
            core::array::from_fn(|i| held(start + i as u32));
        let pool = Pool {
            start: Ipv4Addr::from(start),
            end: Ipv4Addr::from(start + 3 * FREE_WINDOW),
        };
        assert_eq!(
            first_free(&slots, &pool, |_| true),
            Some(Ipv4Addr::from(start + FREE_WINDOW + 1))
        );
        let full = Pool {
            start: Ipv4Addr::from(start),
            end: Ipv4Addr::from(start + FREE_WINDOW),
        };
        assert_eq!(first_free(&slots, &full, |_| true), None);
        let top = Pool {
            start: Ipv4Addr::new(255, 255, 255, 250),
            end: Ipv4Addr::BROADCAST,
        };
        assert_eq!(
            first_free(&[held(0xffff_fffa)], &top, |_| true),
            Some(Ipv4Addr::new(255, 255, 255, 251))
        );
        assert_eq!(
            first_free(&[], &top, |ip| ip == Ipv4Addr::BROADCAST),
            Some(Ipv4Addr::BROADCAST)
        );
        let empty = Pool {
            start: Ipv4Addr::new(10, 0, 0, 9),
            end: Ipv4Addr::new(10, 0, 0, 8),
        };
        assert_eq!(first_free(&[], &empty, |_| true), None);
    }

    fn entry(mac: u8, ip: u8, state: State) -> LeaseSlot {
        LeaseSlot {
            entry: Some(Entry {
                lease: Lease {
                    mac: [mac; 6],
                    ip: Ipv4Addr::new(10, 0, 0, ip),
                    expires_at: Instant::from_millis(u64::from(ip) * 1000),
                },
                state,
            }),
        }
    }

    #[test]
    fn lookups() {
        let slots = [
            LeaseSlot::EMPTY,
            entry(1, 10, State::Bound),
            entry(2, 11, State::Declined),
            entry(2, 12, State::Offered),
        ];
        assert_eq!(holder(&slots, Ipv4Addr::new(10, 0, 0, 11)).unwrap().0, 2);
        assert!(holder(&slots, Ipv4Addr::new(10, 0, 0, 13)).is_none());
        assert_eq!(of_client(&slots, [2; 6], |_| true).unwrap().0, 3);
        assert!(of_client(&slots, [2; 6], |ip| ip.octets()[3] == 11).is_none());
        assert_eq!(free_slot(&slots), Some(0));
        assert_eq!(next_expiry(&slots), Some(Instant::from_millis(10_000)));
        let pool = Pool {
            start: Ipv4Addr::new(10, 0, 0, 9),
            end: Ipv4Addr::new(10, 0, 0, 14),
        };
        assert_eq!(
            first_free(&slots, &pool, |_| true),
            Some(Ipv4Addr::new(10, 0, 0, 9))
        );
        assert_eq!(
            first_free(&slots, &pool, |ip| ip.octets()[3] != 9),
            Some(Ipv4Addr::new(10, 0, 0, 13)),
            "10.0.0.10-12 are held (bound, declined, offered)"
        );
        assert_eq!(first_free(&slots, &pool, |ip| ip.octets()[3] == 11), None);
        assert!(slots[1].lease().is_some());
        assert!(slots[2].lease().is_none() && slots[3].lease().is_none());
    }
}
