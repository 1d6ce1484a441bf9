//! The lease table with its index kept inside the caller's slots (no allocation), so that a
//! datagram costs no scan of the table however many leases it holds:
//!
//! * two hash tables of entries, by client MAC and by address (one bucket per slot, bucket
//!   `i`'s head stored in slot `i`, doubly linked chains so an entry leaves them in O(1));
//! * a stack of free slots;
//! * a binary min-heap of entries by expiry (heap position `p` stored in slot `p`, and each
//!   slot's own position in the heap), for O(1) [`LeaseTable::next_expiry`] and O(log n)
//!   changes;
//! * a bitmap of the held addresses of the server's pool (one 32-bit word per slot, plus one
//!   summary bit per word telling it is full), so the lowest free address (RFC 2131 §4.3.1
//!   leaves the choice to the server) is found in O(pool / 1024) word reads.
//!
//! Every walk is bounded by the slot count, so even a corrupt index cannot loop forever, and
//! every slot access is checked, so it cannot panic either.

use core::net::Ipv4Addr;
use core::ops::Deref;

use managed::ManagedSlice;

use super::Pool;
use super::lease::{Entry, LeaseSlot, State};
pub(crate) use crate::slot_index::MAX_SLOTS;
use crate::slot_index::{Chain, Chained, NONE, some, to_u16};
use crate::time::Instant;

mod bitmap;
mod heap;

/// The index fields of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Links {
    /// The next slot on the free stack (an empty slot only).
    next_free: u16,
    /// Neighbours in the chain of entries whose MAC hashes to the same bucket.
    by_mac: Chain,
    /// Neighbours in the chain of entries whose address hashes to the same bucket.
    by_ip: Chain,
    /// The first entry of MAC bucket number (this slot's index).
    mac_head: u16,
    /// The first entry of address bucket number (this slot's index).
    ip_head: u16,
    /// This slot's position in the expiry heap (an occupied slot only).
    heap_pos: u16,
    /// The slot at heap position (this slot's index).
    heap_slot: u16,
    /// Word (this slot's index) of the pool bitmap: leaf words first, then summary words.
    bits: u32,
}

impl Links {
    /// Linked to nothing.
    pub(crate) const NONE: Self = Self {
        next_free: NONE,
        by_mac: Chain::NONE,
        by_ip: Chain::NONE,
        mac_head: NONE,
        ip_head: NONE,
        heap_pos: NONE,
        heap_slot: NONE,
        bits: 0,
    };
}

/// The caller's lease slots and their index.
#[derive(Debug)]
pub(crate) struct LeaseTable<'a> {
    slots: ManagedSlice<'a, LeaseSlot>,
    /// The number of slots used (and of buckets in each hash table).
    len: usize,
    /// The top of the free stack.
    free: u16,
    /// Entries in the expiry heap (every entry is in it).
    heap_len: usize,
    /// The pool whose first `covered` addresses the bitmap tracks.
    pool: Option<Pool>,
    covered: u32,
    /// Leaf words of the bitmap (slots `0..leaf_words`); summary words follow.
    leaf_words: usize,
}

impl<'a> LeaseTable<'a> {
    /// A table over `slots`, all cleared, whose free-address search is fast for `pool` (other
    /// pools, such as relay agents', are searched address by address).
    pub(crate) fn new(slots: ManagedSlice<'a, LeaseSlot>, pool: Option<Pool>) -> Self {
        let mut slots = slots;
        for slot in slots.iter_mut() {
            *slot = LeaseSlot::EMPTY;
        }
        Self::resume(slots, pool)
    }

    /// A table over `slots` that keeps the entries they hold (as another table left them) and
    /// builds the index anew for them, for `pool`. Entries past [`MAX_SLOTS`] are dropped.
    pub(crate) fn resume(slots: ManagedSlice<'a, LeaseSlot>, pool: Option<Pool>) -> Self {
        let mut slots = slots;
        let len = slots.len().min(MAX_SLOTS);
        // The free stack holds the empty slots, lowest on top.
        let mut free = NONE;
        for (index, slot) in slots.iter_mut().enumerate().rev() {
            slot.links = Links::NONE;
            if index >= len {
                slot.entry = None;
            } else if slot.entry.is_none() {
                slot.links.next_free = free;
                free = to_u16(index);
            }
        }
        let pool_len = pool.map_or(0, |p| {
            u32::from(p.end)
                .checked_sub(u32::from(p.start))
                .map_or(0, |d| u64::from(d) + 1)
        });
        // Leaf words and their summary words must fit the slots.
        let mut leaf_words = usize::try_from(pool_len.div_ceil(32))
            .unwrap_or(usize::MAX)
            .min(len);
        while leaf_words + leaf_words.div_ceil(32) > len {
            leaf_words -= 1;
        }
        let covered = u32::try_from(pool_len.min(leaf_words as u64 * 32)).unwrap_or(u32::MAX);
        let mut table = Self {
            slots,
            len,
            free,
            heap_len: 0,
            pool,
            covered,
            leaf_words,
        };
        // Bits past the pool read as held, so that a word is full when its addresses are.
        for word in 0..leaf_words {
            let first = word as u64 * 32;
            let past = u64::from(covered).saturating_sub(first).min(32);
            let value = if past >= 32 { 0 } else { u32::MAX << past };
            table.set_word(word, value);
        }
        for word in leaf_words..leaf_words + leaf_words.div_ceil(32) {
            table.set_word(word, u32::MAX);
        }
        for word in 0..leaf_words {
            table.update_summary(word);
        }
        for index in 0..len {
            if let Some(entry) = table.entry(index) {
                table.link_entry(index, &entry);
            }
        }
        table
    }

    /// The entry holding `ip`, whatever its state.
    pub(crate) fn holder(&self, ip: Ipv4Addr) -> Option<(usize, Entry)> {
        self.chain(Table::Ip, ip_key(ip)).find_map(|index| {
            self.entry(index)
                .filter(|e| e.lease.ip == ip)
                .map(|e| (index, e))
        })
    }

    /// An entry of `mac` for which `accept` holds.
    pub(crate) fn find_client(
        &self,
        mac: [u8; 6],
        accept: impl Fn(usize, &Entry) -> bool,
    ) -> Option<(usize, Entry)> {
        self.chain(Table::Mac, mac_key(mac)).find_map(|index| {
            self.entry(index)
                .filter(|e| e.lease.mac == mac && accept(index, e))
                .map(|e| (index, e))
        })
    }

    /// The lowest address of `pool` that no entry holds and `usable` accepts.
    pub(crate) fn first_free(
        &self,
        pool: &Pool,
        usable: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        let (start, end) = (u32::from(pool.start), u32::from(pool.end));
        if start > end {
            return None;
        }
        let mut rest = start;
        if self.pool == Some(*pool) {
            let mut from = 0;
            while let Some(offset) = self.next_clear(from) {
                let ip = Ipv4Addr::from(start.saturating_add(offset));
                if usable(ip) && self.holder(ip).is_none() {
                    return Some(ip);
                }
                from = offset.checked_add(1)?;
            }
            rest = start.checked_add(self.covered)?;
        }
        // Past the bitmap: at most one address per entry and per unusable address is passed.
        (rest..=end)
            .map(Ipv4Addr::from)
            .find(|&ip| usable(ip) && self.holder(ip).is_none())
    }

    /// The slot [`LeaseTable::set`] should fill with a new entry, if any is free.
    pub(crate) fn free_slot(&self) -> Option<usize> {
        some(self.free)
    }

    /// The earliest expiry in the table.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.earliest().map(|(_, e)| e.lease.expires_at)
    }

    /// Empties the slots due at `now`, earliest first, while `clear` accepts their entries.
    pub(crate) fn expire(&mut self, now: Instant, mut clear: impl FnMut(&Entry) -> bool) {
        for _ in 0..self.len {
            let Some((index, entry)) = self.earliest().filter(|(_, e)| e.lease.expires_at <= now)
            else {
                return;
            };
            if !clear(&entry) {
                return;
            }
            self.set(index, None);
        }
    }

    /// Withdraws the offers of `mac`, except the one in slot `keep`.
    pub(crate) fn remove_offers(&mut self, mac: [u8; 6], keep: Option<usize>) {
        for _ in 0..self.len {
            let Some((index, _)) =
                self.find_client(mac, |i, e| Some(i) != keep && e.state == State::Offered)
            else {
                return;
            };
            self.set(index, None);
        }
    }

    /// Puts `entry` into slot `index` (or empties it), keeping the index up to date. An index
    /// past the table is ignored.
    pub(crate) fn set(&mut self, index: usize, entry: Option<Entry>) {
        if index >= self.len {
            return;
        }
        let old = self.entry(index);
        match (old, entry) {
            // Same client and address: only the expiry or the state changes.
            (Some(old), Some(new))
                if old.lease.mac == new.lease.mac && old.lease.ip == new.lease.ip =>
            {
                self.store(index, entry);
                self.reheap(index);
                return;
            }
            (Some(old), _) => self.unlink_entry(index, &old),
            (None, _) => self.take_free(index),
        }
        self.store(index, entry);
        match entry {
            Some(new) => self.link_entry(index, &new),
            None => {
                if let Some(slot) = self.slots.get_mut(index) {
                    slot.links.next_free = self.free;
                }
                self.free = to_u16(index);
            }
        }
    }
}

impl Deref for LeaseTable<'_> {
    type Target = [LeaseSlot];

    fn deref(&self) -> &[LeaseSlot] {
        &self.slots
    }
}

impl LeaseTable<'_> {
    fn entry(&self, index: usize) -> Option<Entry> {
        self.slots.get(index).and_then(|s| s.entry)
    }

    fn store(&mut self, index: usize, entry: Option<Entry>) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.entry = entry;
        }
    }

    fn links(&self, index: usize) -> Links {
        self.slots.get(index).map_or(Links::NONE, |s| s.links)
    }

    fn links_mut(&mut self, index: usize) -> Option<&mut Links> {
        self.slots.get_mut(index).map(|s| &mut s.links)
    }

    /// Takes slot `index`, empty, off the free stack (it is the top whenever the caller took
    /// it from [`LeaseTable::free_slot`]; otherwise the stack is walked).
    fn take_free(&mut self, index: usize) {
        let target = to_u16(index);
        let next = self.links(index).next_free;
        if self.free == target {
            self.free = next;
        } else {
            let mut at = self.free;
            for _ in 0..self.len {
                let Some(i) = some(at) else { break };
                let after = self.links(i).next_free;
                if after == target {
                    if let Some(links) = self.links_mut(i) {
                        links.next_free = next;
                    }
                    break;
                }
                at = after;
            }
        }
        if let Some(links) = self.links_mut(index) {
            links.next_free = NONE;
        }
    }

    fn link_entry(&mut self, index: usize, entry: &Entry) {
        self.link(Table::Mac, index, mac_key(entry.lease.mac));
        self.link(Table::Ip, index, ip_key(entry.lease.ip));
        self.heap_insert(index);
        if let Some(offset) = self.offset(entry.lease.ip) {
            self.mark(offset, true);
        }
    }

    fn unlink_entry(&mut self, index: usize, entry: &Entry) {
        self.unlink(Table::Mac, index, mac_key(entry.lease.mac));
        self.unlink(Table::Ip, index, ip_key(entry.lease.ip));
        self.heap_remove(index);
        if let Some(offset) = self.offset(entry.lease.ip)
            && self.holder(entry.lease.ip).is_none()
        {
            self.mark(offset, false);
        }
    }

    // Hash chains.

    /// The bucket of `key`: Fibonacci hashing, then the top 32 bits scaled to `0..len` by a
    /// multiply and a shift (no division, which the smallest targets lack in hardware).
    fn bucket(&self, key: u64) -> usize {
        let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        // `len` is at most MAX_SLOTS and `mixed` below 2^32, so the product fits a u64 and
        // the result is below `len`.
        ((mixed * self.len as u64) >> 32) as usize
    }

    fn chain(&self, table: Table, key: u64) -> Chained<impl Fn(usize) -> Option<u16> + '_> {
        let head = if self.len == 0 {
            NONE
        } else {
            table.head(&self.links(self.bucket(key)))
        };
        Chained::new(head, self.len, move |index| {
            self.slots
                .get(index)
                .map(|slot| table.chain(&slot.links).next)
        })
    }

    fn link(&mut self, table: Table, index: usize, key: u64) {
        let bucket = self.bucket(key);
        let old = table.head(&self.links(bucket));
        if let Some(links) = self.links_mut(bucket) {
            *table.head_mut(links) = to_u16(index);
        }
        if let Some(links) = self.links_mut(index) {
            *table.chain_mut(links) = Chain {
                prev: NONE,
                next: old,
            };
        }
        if let Some(links) = some(old).and_then(|old| self.links_mut(old)) {
            table.chain_mut(links).prev = to_u16(index);
        }
    }

    fn unlink(&mut self, table: Table, index: usize, key: u64) {
        let bucket = self.bucket(key);
        let Chain { prev, next } = table.chain(&self.links(index));
        match some(prev) {
            Some(prev) => {
                if let Some(links) = self.links_mut(prev) {
                    table.chain_mut(links).next = next;
                }
            }
            None => {
                if let Some(links) = self.links_mut(bucket) {
                    *table.head_mut(links) = next;
                }
            }
        }
        if let Some(links) = some(next).and_then(|next| self.links_mut(next)) {
            table.chain_mut(links).prev = prev;
        }
        if let Some(links) = self.links_mut(index) {
            *table.chain_mut(links) = Chain::NONE;
        }
    }
}

/// Which hash table.
#[derive(Debug, Clone, Copy)]
enum Table {
    Mac,
    Ip,
}

impl Table {
    fn chain(self, links: &Links) -> Chain {
        match self {
            Self::Mac => links.by_mac,
            Self::Ip => links.by_ip,
        }
    }

    fn chain_mut(self, links: &mut Links) -> &mut Chain {
        match self {
            Self::Mac => &mut links.by_mac,
            Self::Ip => &mut links.by_ip,
        }
    }

    fn head(self, links: &Links) -> u16 {
        match self {
            Self::Mac => links.mac_head,
            Self::Ip => links.ip_head,
        }
    }

    fn head_mut(self, links: &mut Links) -> &mut u16 {
        match self {
            Self::Mac => &mut links.mac_head,
            Self::Ip => &mut links.ip_head,
        }
    }
}

fn mac_key(mac: [u8; 6]) -> u64 {
    let [a, b, c, d, e, f] = mac;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

fn ip_key(ip: Ipv4Addr) -> u64 {
    u64::from(ip.to_bits())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;
    use crate::dhcp::Lease;

    fn entry(mac: u8, ip: u32, expires_ms: u64, state: State) -> Entry {
        Entry {
            lease: Lease {
                mac: [mac; 6],
                ip: Ipv4Addr::from(ip),
                expires_at: Instant::from_millis(expires_ms),
            },
            state,
        }
    }

    fn pool(start: u32, end: u32) -> Pool {
        Pool {
            start: Ipv4Addr::from(start),
            end: Ipv4Addr::from(end),
        }
    }

    /// Fills a new slot with `entry`.
    fn add(table: &mut LeaseTable<'_>, entry: Entry) -> usize {
        let index = table.free_slot().expect("a free slot");
        table.set(index, Some(entry));
        index
    }

    const BASE: u32 = 0x0a00_0000;

    #[test]
    fn a_slot_costs_its_entry_and_24_bytes_of_index() {
        // The firmware keeps its table in static memory: the index must stay small.
        assert_eq!(size_of::<Links>(), 24);
        assert_eq!(
            size_of::<LeaseSlot>(),
            size_of::<Option<Entry>>() + size_of::<Links>()
        );
    }

    #[test]
    fn lookups_by_address_and_client() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut t = LeaseTable::new((&mut slots[..]).into(), Some(pool(BASE + 9, BASE + 14)));
        let a = add(&mut t, entry(1, BASE + 10, 10, State::Bound));
        let b = add(&mut t, entry(2, BASE + 11, 11, State::Declined));
        let c = add(&mut t, entry(2, BASE + 12, 12, State::Offered));
        assert_eq!(t.holder(Ipv4Addr::from(BASE + 11)).map(|h| h.0), Some(b));
        assert_eq!(t.holder(Ipv4Addr::from(BASE + 13)), None);
        assert_eq!(t.find_client([1; 6], |_, _| true).map(|h| h.0), Some(a));
        assert_eq!(
            t.find_client([2; 6], |_, e| e.state != State::Declined)
                .map(|h| h.0),
            Some(c)
        );
        assert_eq!(t.find_client([3; 6], |_, _| true), None);
        assert_eq!(t.next_expiry(), Some(Instant::from_millis(10)));
        let p = pool(BASE + 9, BASE + 14);
        assert_eq!(t.first_free(&p, |_| true), Some(Ipv4Addr::from(BASE + 9)));
        assert_eq!(
            t.first_free(&p, |ip| ip != Ipv4Addr::from(BASE + 9)),
            Some(Ipv4Addr::from(BASE + 13)),
            ".10-.12 are held (bound, declined, offered)"
        );
        assert_eq!(t.first_free(&p, |ip| ip == Ipv4Addr::from(BASE + 11)), None);
        assert!(t[a].lease().is_some() && t[b].lease().is_none() && t[c].lease().is_none());
        // A fourth entry fills the table.
        add(&mut t, entry(4, BASE + 9, 9, State::Bound));
        assert_eq!(t.free_slot(), None);
        assert_eq!(t.next_expiry(), Some(Instant::from_millis(9)));
    }

    #[test]
    fn removal_and_update_keep_the_index() {
        let mut slots = [LeaseSlot::EMPTY; 3];
        let p = pool(BASE, BASE + 2);
        let mut t = LeaseTable::new((&mut slots[..]).into(), Some(p));
        let a = add(&mut t, entry(1, BASE, 30, State::Offered));
        let b = add(&mut t, entry(2, BASE + 1, 20, State::Offered));
        assert_eq!(t.first_free(&p, |_| true), Some(Ipv4Addr::from(BASE + 2)));
        // Binding in place moves the expiry.
        t.set(b, Some(entry(2, BASE + 1, 50, State::Bound)));
        assert_eq!(t.next_expiry(), Some(Instant::from_millis(30)));
        // Moving client 1 to another address frees the old one.
        t.set(a, Some(entry(1, BASE + 2, 40, State::Bound)));
        assert_eq!(t.holder(Ipv4Addr::from(BASE)), None);
        assert_eq!(t.first_free(&p, |_| true), Some(Ipv4Addr::from(BASE)));
        t.set(b, None);
        assert_eq!(t.free_slot(), Some(b));
        assert_eq!(t.find_client([2; 6], |_, _| true), None);
        assert_eq!(t.first_free(&p, |_| true), Some(Ipv4Addr::from(BASE)));
        assert_eq!(
            t.first_free(&p, |ip| ip != Ipv4Addr::from(BASE)),
            Some(Ipv4Addr::from(BASE + 1))
        );
        assert_eq!(t.next_expiry(), Some(Instant::from_millis(40)));
        // An index past the table is ignored.
        t.set(7, Some(entry(9, BASE, 1, State::Bound)));
        assert_eq!(t.holder(Ipv4Addr::from(BASE)), None);
    }

    #[test]
    fn expire_goes_earliest_first_and_stops_when_told() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut t = LeaseTable::new((&mut slots[..]).into(), None);
        add(&mut t, entry(1, BASE + 1, 30, State::Bound));
        add(&mut t, entry(2, BASE + 2, 10, State::Offered));
        add(&mut t, entry(3, BASE + 3, 20, State::Bound));
        add(&mut t, entry(4, BASE + 4, 99, State::Bound));
        let mut seen = Vec::new();
        t.expire(Instant::from_millis(30), |e| {
            seen.push(e.lease.mac[0]);
            seen.len() < 2
        });
        assert_eq!(seen, [2, 3], "the refused entry stays");
        assert_eq!(t.next_expiry(), Some(Instant::from_millis(20)));
        t.expire(Instant::from_millis(30), |_| true);
        assert_eq!(t.next_expiry(), Some(Instant::from_millis(99)));
        assert_eq!(t.iter().filter(|s| s.entry.is_some()).count(), 1);
    }

    #[test]
    fn remove_offers_keeps_leases_and_the_kept_slot() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let mut t = LeaseTable::new((&mut slots[..]).into(), None);
        add(&mut t, entry(1, BASE + 1, 1, State::Offered));
        let keep = add(&mut t, entry(1, BASE + 2, 1, State::Offered));
        add(&mut t, entry(1, BASE + 3, 1, State::Bound));
        add(&mut t, entry(2, BASE + 4, 1, State::Offered));
        t.remove_offers([1; 6], Some(keep));
        let held: Vec<u32> = t
            .iter()
            .filter_map(|s| s.entry.map(|e| u32::from(e.lease.ip) - BASE))
            .collect();
        assert_eq!(held.len(), 3);
        assert!(held.contains(&2) && held.contains(&3) && held.contains(&4));
        t.remove_offers([1; 6], None);
        assert_eq!(t.holder(Ipv4Addr::from(BASE + 2)), None);
    }

    #[test]
    fn first_free_spans_words_summaries_and_the_uncovered_rest() {
        // 40 slots: 38 leaf words (1 216 addresses) and 2 summary words.
        let mut slots = vec![LeaseSlot::EMPTY; 40];
        let p = pool(BASE, BASE + 5000);
        let mut t = LeaseTable::new((&mut slots[..]).into(), Some(p));
        assert_eq!((t.leaf_words, t.covered), (38, 38 * 32));
        // Words 0..33 full but for one address in word 32 (set through the bitmap: the table
        // has 40 slots only).
        let mut held = 0;
        for offset in 0..(33 * 32) {
            if offset != 32 * 32 + 5 {
                t.mark(offset, true);
                held += 1;
            }
        }
        assert!(held > 1000);
        assert_eq!(t.next_clear(0), Some(32 * 32 + 5));
        assert_eq!(t.next_clear(32 * 32 + 6), Some(33 * 32));
        t.mark(32 * 32 + 5, true);
        assert_eq!(t.next_clear(0), Some(33 * 32));
        for offset in (33 * 32)..t.covered {
            t.mark(offset, true);
        }
        assert_eq!(t.next_clear(0), None);
        // The rest of the pool is searched by address.
        assert_eq!(
            t.first_free(&p, |_| true),
            Some(Ipv4Addr::from(BASE + 38 * 32))
        );
        t.mark(7, false);
        assert_eq!(t.first_free(&p, |_| true), Some(Ipv4Addr::from(BASE + 7)));
    }

    #[test]
    fn first_free_at_the_edges() {
        let top = pool(0xffff_fffa, u32::MAX);
        let mut slots = [LeaseSlot::EMPTY; 2];
        let mut t = LeaseTable::new((&mut slots[..]).into(), Some(top));
        add(&mut t, entry(1, 0xffff_fffa, 5, State::Bound));
        assert_eq!(
            t.first_free(&top, |_| true),
            Some(Ipv4Addr::new(255, 255, 255, 251))
        );
        assert_eq!(
            t.first_free(&top, |ip| ip == Ipv4Addr::BROADCAST),
            Some(Ipv4Addr::BROADCAST)
        );
        // The same pool, not the table's: searched by address.
        let mut slots = [LeaseSlot::EMPTY; 2];
        let mut t = LeaseTable::new((&mut slots[..]).into(), None);
        add(&mut t, entry(1, 0xffff_fffa, 5, State::Bound));
        assert_eq!(
            t.first_free(&top, |_| true),
            Some(Ipv4Addr::new(255, 255, 255, 251))
        );
        assert_eq!(t.first_free(&top, |_| false), None);
        let empty = pool(BASE + 9, BASE + 8);
        assert_eq!(t.first_free(&empty, |_| true), None);
        // No slots at all.
        let mut t = LeaseTable::new((&mut [][..]).into(), Some(top));
        assert_eq!(t.free_slot(), None);
        assert_eq!(t.holder(Ipv4Addr::BROADCAST), None);
        assert_eq!(
            t.first_free(&top, |_| true),
            Some(Ipv4Addr::from(0xffff_fffa))
        );
        t.set(0, None);
        t.expire(Instant::from_millis(u64::MAX), |_| true);
    }

    #[test]
    fn corrupt_links_neither_hang_nor_panic() {
        let mut slots = [LeaseSlot::EMPTY; 4];
        let p = pool(BASE, BASE + 7);
        let mut t = LeaseTable::new((&mut slots[..]).into(), Some(p));
        for i in 0..4u8 {
            add(
                &mut t,
                entry(i, BASE + u32::from(i), u64::from(i), State::Bound),
            );
        }
        // Chains that loop, and links past the table.
        for (i, slot) in t.slots.iter_mut().enumerate() {
            slot.links.by_mac.next = to_u16((i + 1) % 4);
            slot.links.by_ip.next = if i == 3 { 9 } else { 0 };
            slot.links.mac_head = 0;
            slot.links.ip_head = 2;
            slot.links.heap_slot = 9;
            slot.links.heap_pos = 7;
            slot.links.next_free = 1;
            slot.links.bits = 0;
        }
        t.free = 2;
        let _ = t.find_client([9; 6], |_, _| true);
        let _ = t.holder(Ipv4Addr::from(BASE + 9));
        let _ = t.first_free(&p, |_| true);
        let _ = t.next_expiry();
        for i in 0..6 {
            t.set(i, None);
            t.set(i, Some(entry(9, BASE + 5, 1, State::Offered)));
        }
        t.remove_offers([9; 6], None);
        t.expire(Instant::from_millis(u64::MAX), |_| true);
    }

    /// An operation on the table, as the server makes them.
    #[derive(Debug, Clone)]
    enum Op {
        /// A new entry in the free slot, for an address nobody holds.
        Add {
            mac: u8,
            ip: u32,
            expires: u64,
            state: u8,
        },
        /// The entry in the `n`th occupied slot changes (address only to a free one).
        Update {
            n: usize,
            mac: u8,
            ip: u32,
            expires: u64,
            state: u8,
        },
        /// The `n`th occupied slot empties.
        Remove { n: usize },
        /// Entries due at `now` go, until one of `stop_mac` comes first.
        Expire { now: u64, stop_mac: u8 },
        /// The offers of `mac` go, but for the `keep`th occupied slot.
        RemoveOffers { mac: u8, keep: Option<usize> },
    }

    fn op() -> impl Strategy<Value = Op> {
        let mac = 0u8..6;
        let ip = 0u32..80;
        let expires = 0u64..100;
        let state = 0u8..4;
        prop_oneof![
            4 => (mac.clone(), ip.clone(), expires.clone(), state.clone())
                .prop_map(|(mac, ip, expires, state)| Op::Add { mac, ip, expires, state }),
            2 => (any::<usize>(), mac.clone(), ip, expires.clone(), state)
                .prop_map(|(n, mac, ip, expires, state)| Op::Update { n, mac, ip, expires, state }),
            2 => any::<usize>().prop_map(|n| Op::Remove { n }),
            1 => (expires, 0u8..8).prop_map(|(now, stop_mac)| Op::Expire { now, stop_mac }),
            1 => (mac, prop::option::of(any::<usize>()))
                .prop_map(|(mac, keep)| Op::RemoveOffers { mac, keep }),
        ]
    }

    fn state_of(n: u8) -> State {
        match n {
            0 => State::Offered,
            1 => State::Bound,
            2 => State::Declined,
            _ => State::Elsewhere,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The table answers every query as a plain scan of a model array of entries does.
        #[test]
        fn matches_a_scanned_model(
            ops in prop::collection::vec(op(), 1..80),
            slots_n in 0usize..40,
            pool_len in 1u32..70,
            pool_at in 0u32..6,
            near_top in any::<bool>(),
        ) {
            let base = if near_top { u32::MAX - 79 } else { BASE };
            let table_pool = pool(base + pool_at, base + pool_at + pool_len - 1);
            let mut slots = vec![LeaseSlot::EMPTY; slots_n];
            let mut t = LeaseTable::new((&mut slots[..]).into(), Some(table_pool));
            let mut model: Vec<Option<Entry>> = vec![None; slots_n];
            let usable = |ip: Ipv4Addr| u32::from(ip) % 7 != 3;
            let occupied = |model: &[Option<Entry>], n: usize| {
                let used: Vec<usize> = (0..model.len()).filter(|&i| model[i].is_some()).collect();
                (!used.is_empty()).then(|| used[n % used.len()])
            };
            for op in ops {
                match op {
                    Op::Add { mac, ip, expires, state } => {
                        let e = entry(mac, base + ip, expires, state_of(state));
                        let taken = model.iter().flatten().any(|m| m.lease.ip == e.lease.ip);
                        if let (Some(index), false) = (t.free_slot(), taken) {
                            prop_assert!(model[index].is_none(), "free slot {} is used", index);
                            t.set(index, Some(e));
                            model[index] = Some(e);
                        } else {
                            prop_assert_eq!(t.free_slot().is_some(), model.iter().any(Option::is_none));
                        }
                    }
                    Op::Update { n, mac, ip, expires, state } => {
                        if let Some(index) = occupied(&model, n) {
                            let e = entry(mac, base + ip, expires, state_of(state));
                            let taken = model.iter().enumerate()
                                .any(|(i, m)| i != index && m.is_some_and(|m| m.lease.ip == e.lease.ip));
                            if !taken {
                                t.set(index, Some(e));
                                model[index] = Some(e);
                            }
                        }
                    }
                    Op::Remove { n } => {
                        if let Some(index) = occupied(&model, n) {
                            t.set(index, None);
                            model[index] = None;
                        }
                    }
                    Op::Expire { now, stop_mac } => {
                        let now = Instant::from_millis(now);
                        let mut cleared = Vec::new();
                        t.expire(now, |e| {
                            let go = e.lease.mac[0] != stop_mac;
                            if go {
                                cleared.push(e.lease.ip);
                            }
                            go
                        });
                        // Cleared earliest first, all due, and nothing due is left but
                        // what the refused entry (of `stop_mac`) held back.
                        let mut last = Instant::ZERO;
                        for ip in &cleared {
                            let i = model.iter().position(|m| m.is_some_and(|m| m.lease.ip == *ip)).unwrap();
                            let e = model[i].take().unwrap();
                            prop_assert!(e.lease.expires_at <= now && e.lease.expires_at >= last);
                            last = e.lease.expires_at;
                        }
                        let earliest = model.iter().flatten().map(|e| e.lease.expires_at).min();
                        if let Some(earliest) = earliest.filter(|&x| x <= now) {
                            prop_assert!(model.iter().flatten().any(|e| e.lease.expires_at == earliest && e.lease.mac[0] == stop_mac));
                        }
                    }
                    Op::RemoveOffers { mac, keep } => {
                        let keep = keep.and_then(|n| occupied(&model, n));
                        t.remove_offers([mac; 6], keep);
                        for (i, m) in model.iter_mut().enumerate() {
                            if Some(i) != keep && m.is_some_and(|e| e.lease.mac == [mac; 6] && e.state == State::Offered) {
                                *m = None;
                            }
                        }
                    }
                }
                // Every query against the model.
                for (i, slot) in t.iter().enumerate() {
                    prop_assert_eq!(slot.entry, model[i], "slot {}", i);
                }
                prop_assert_eq!(t.free_slot().is_some(), model.iter().any(Option::is_none));
                prop_assert_eq!(
                    t.next_expiry(),
                    model.iter().flatten().map(|e| e.lease.expires_at).min()
                );
                for ip in (base..=base + 79).map(Ipv4Addr::from) {
                    let want = model.iter().position(|m| m.is_some_and(|m| m.lease.ip == ip));
                    prop_assert_eq!(t.holder(ip).map(|h| h.0), want, "holder of {}", ip);
                }
                for mac in 0u8..6 {
                    let mine = |i: usize| model[i].is_some_and(|e| e.lease.mac == [mac; 6] && e.state != State::Declined);
                    let found = t.find_client([mac; 6], |_, e| e.state != State::Declined);
                    match found {
                        Some((i, e)) => prop_assert!(mine(i) && model[i] == Some(e)),
                        None => prop_assert!(!(0..slots_n).any(mine)),
                    }
                }
                let held = |ip: u32| model.iter().flatten().any(|m| m.lease.ip == Ipv4Addr::from(ip));
                for p in [table_pool, pool(base, base + 79), pool(base + 5, base + 4)] {
                    let (s, e) = (u32::from(p.start), u32::from(p.end));
                    let want = (s..=e)
                        .find(|&ip| !held(ip) && usable(Ipv4Addr::from(ip)))
                        .map(Ipv4Addr::from);
                    prop_assert_eq!(t.first_free(&p, usable), want, "first free of {:?}", p);
                }
            }
        }
    }
}
