//! Constant-time bookkeeping of the transfer slots, kept inside the slots themselves (no
//! allocation): a stack of free slots, a stack of closed transfers waiting to be reported, a
//! queue of transfers with something to send (the readiness queue), and two hash tables of
//! live transfers, one by client address and port (the TID, to spot a
//! repeated request) and one by client IP (for the per-client limit).
//!
//! Each table has one bucket per slot, and bucket `i`'s head is stored in slot `i`; its chains
//! are doubly linked, so that a transfer leaves its chains in O(1) when its slot is freed. With
//! 10 000 transfers, a request then costs a few slot reads instead of a scan of every slot.

use core::net::{Ipv4Addr, SocketAddrV4};

use super::Slot;
pub(super) use crate::slot_index::MAX_SLOTS;
use crate::slot_index::{Chain, Chained, NONE, some, to_u16};

/// The intrusive links of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Links {
    /// The next slot on the free stack or on the closed stack (a slot is on one at most).
    next: u16,
    /// Neighbours in the chain of transfers whose peer hashes to the same bucket.
    by_peer: Chain,
    /// Neighbours in the chain of transfers whose client IP hashes to the same bucket.
    by_ip: Chain,
    /// The first transfer of peer bucket number (this slot's index).
    peer_head: u16,
    /// The first transfer of IP bucket number (this slot's index).
    ip_head: u16,
    /// Neighbours in the readiness queue, if `queued`.
    ready: Chain,
    /// Whether the slot is in the readiness queue.
    queued: bool,
}

impl Links {
    /// Linked to nothing.
    pub(super) const NONE: Self = Self {
        next: NONE,
        by_peer: Chain::NONE,
        by_ip: Chain::NONE,
        peer_head: NONE,
        ip_head: NONE,
        ready: Chain::NONE,
        queued: false,
    };
}

/// The heads of the free and closed stacks, and how many slots are in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotIndex {
    free: u16,
    closed: u16,
    /// The first and last slot of the readiness queue (first in, first out).
    ready_head: u16,
    ready_tail: u16,
    /// The number of slots used (and of buckets in each table).
    len: usize,
}

impl SlotIndex {
    /// Puts every used slot on the free stack, lowest index on top. A transfer left in a slot
    /// (the slots of a dropped server) is forgotten and its generation moves on.
    pub(super) fn new<H>(slots: &mut [Slot<H>]) -> Self {
        let len = slots.len().min(MAX_SLOTS);
        for (index, slot) in slots.iter_mut().enumerate().take(len) {
            if slot.transfer.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
            }
            slot.links = Links::NONE;
            slot.links.next = if index + 1 < len {
                to_u16(index + 1)
            } else {
                NONE
            };
        }
        Self {
            free: if len > 0 { 0 } else { NONE },
            closed: NONE,
            ready_head: NONE,
            ready_tail: NONE,
            len,
        }
    }

    /// The slot [`SlotIndex::occupy`] would take, if any is free.
    pub(super) fn peek_free(&self) -> Option<usize> {
        some(self.free)
    }

    /// Takes free slot `index` (from [`SlotIndex::peek_free`]), whose transfer has just been
    /// stored, and enters it in both tables under `peer`.
    pub(super) fn occupy<H>(&mut self, slots: &mut [Slot<H>], index: usize, peer: SocketAddrV4) {
        let taken = pop(slots, &mut self.free);
        debug_assert_eq!(taken, Some(index), "occupy takes the top free slot");
        for table in Table::BOTH {
            self.link(slots, index, table, peer);
        }
    }

    /// Removes slot `index`, whose transfer (with `peer`) was just taken out, from both tables
    /// and puts it on the free stack.
    pub(super) fn release<H>(&mut self, slots: &mut [Slot<H>], index: usize, peer: SocketAddrV4) {
        for table in Table::BOTH {
            self.unlink(slots, index, table, peer);
        }
        push(slots, &mut self.free, index);
    }

    /// Notes that the transfer in slot `index` has just closed.
    pub(super) fn push_closed<H>(&mut self, slots: &mut [Slot<H>], index: usize) {
        push(slots, &mut self.closed, index);
    }

    /// A slot whose transfer closed and was not reported yet.
    pub(super) fn pop_closed<H>(&mut self, slots: &mut [Slot<H>]) -> Option<usize> {
        pop(slots, &mut self.closed)
    }

    /// Puts slot `index` at the end of the readiness queue, unless it is queued already.
    #[inline]
    pub(super) fn mark_ready<H>(&mut self, slots: &mut [Slot<H>], index: usize) {
        if slots[index].links.queued {
            return;
        }
        let tail = self.ready_tail;
        slots[index].links.queued = true;
        slots[index].links.ready = Chain {
            prev: tail,
            next: NONE,
        };
        match some(tail) {
            Some(tail) => slots[tail].links.ready.next = to_u16(index),
            None => self.ready_head = to_u16(index),
        }
        self.ready_tail = to_u16(index);
    }

    /// Takes slot `index` out of the readiness queue, if it is there.
    #[inline]
    pub(super) fn unmark_ready<H>(&mut self, slots: &mut [Slot<H>], index: usize) {
        if !slots[index].links.queued {
            return;
        }
        let Chain { prev, next } = slots[index].links.ready;
        match some(prev) {
            Some(prev) => slots[prev].links.ready.next = next,
            None => self.ready_head = next,
        }
        match some(next) {
            Some(next) => slots[next].links.ready.prev = prev,
            None => self.ready_tail = prev,
        }
        slots[index].links.queued = false;
        slots[index].links.ready = Chain::NONE;
    }

    /// The first slot of the readiness queue.
    #[inline]
    pub(super) fn first_ready(&self) -> Option<usize> {
        some(self.ready_head)
    }

    /// Moves the first slot of the readiness queue to its end.
    #[inline]
    pub(super) fn rotate_ready<H>(&mut self, slots: &mut [Slot<H>]) {
        if let Some(index) = some(self.ready_head)
            && self.ready_tail != self.ready_head
        {
            self.unmark_ready(slots, index);
            self.mark_ready(slots, index);
        }
    }

    /// The slot of the transfer with `peer` that is not over yet.
    pub(super) fn find_peer<H: Copy>(
        &self,
        slots: &[Slot<H>],
        peer: SocketAddrV4,
    ) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        chained(slots, self.bucket(peer_key(peer)), Table::Peer).find(|&index| {
            slots[index]
                .transfer
                .as_ref()
                .is_some_and(|t| t.peer == peer && !t.is_closed())
        })
    }

    /// How many transfers from `ip` (any port) are not over yet.
    pub(super) fn count_ip<H: Copy>(&self, slots: &[Slot<H>], ip: Ipv4Addr) -> usize {
        if self.len == 0 {
            return 0;
        }
        chained(slots, self.bucket(ip_key(ip)), Table::Ip)
            .filter(|&index| {
                slots[index]
                    .transfer
                    .as_ref()
                    .is_some_and(|t| *t.peer.ip() == ip && !t.is_closed())
            })
            .count()
    }

    /// The bucket of `key`, by Fibonacci hashing (`len > 0`).
    fn bucket(&self, key: u64) -> usize {
        let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        // `len` is at most MAX_SLOTS, so the result fits.
        (mixed % self.len as u64) as usize
    }

    fn link<H>(&self, slots: &mut [Slot<H>], index: usize, table: Table, peer: SocketAddrV4) {
        let bucket = self.bucket(table.key(peer));
        let head = table.head(&mut slots[bucket].links);
        let old = *head;
        *head = to_u16(index);
        *table.chain(&mut slots[index].links) = Chain {
            prev: NONE,
            next: old,
        };
        if let Some(old) = some(old) {
            table.chain(&mut slots[old].links).prev = to_u16(index);
        }
    }

    fn unlink<H>(&self, slots: &mut [Slot<H>], index: usize, table: Table, peer: SocketAddrV4) {
        let bucket = self.bucket(table.key(peer));
        let Chain { prev, next } = *table.chain(&mut slots[index].links);
        match some(prev) {
            Some(prev) => table.chain(&mut slots[prev].links).next = next,
            None => *table.head(&mut slots[bucket].links) = next,
        }
        if let Some(next) = some(next) {
            table.chain(&mut slots[next].links).prev = prev;
        }
        *table.chain(&mut slots[index].links) = Chain::NONE;
    }
}

/// Which hash table.
#[derive(Debug, Clone, Copy)]
enum Table {
    Peer,
    Ip,
}

impl Table {
    const BOTH: [Self; 2] = [Self::Peer, Self::Ip];

    /// What a transfer with `peer` is filed under.
    fn key(self, peer: SocketAddrV4) -> u64 {
        match self {
            Self::Peer => peer_key(peer),
            Self::Ip => ip_key(*peer.ip()),
        }
    }

    fn chain(self, links: &mut Links) -> &mut Chain {
        match self {
            Self::Peer => &mut links.by_peer,
            Self::Ip => &mut links.by_ip,
        }
    }

    fn head(self, links: &mut Links) -> &mut u16 {
        match self {
            Self::Peer => &mut links.peer_head,
            Self::Ip => &mut links.ip_head,
        }
    }
}

/// The slot indices of the chain in bucket `bucket` of `table`, bounded by the slot count.
fn chained<H>(
    slots: &[Slot<H>],
    bucket: usize,
    table: Table,
) -> Chained<impl Fn(usize) -> Option<u16> + '_> {
    let head = slots
        .get(bucket)
        .map_or(NONE, |slot| *table.head(&mut { slot.links }));
    Chained::new(head, slots.len(), move |index| {
        slots
            .get(index)
            .map(|slot| table.chain(&mut { slot.links }).next)
    })
}

fn peer_key(peer: SocketAddrV4) -> u64 {
    (u64::from(peer.ip().to_bits()) << 16) | u64::from(peer.port())
}

fn ip_key(ip: Ipv4Addr) -> u64 {
    u64::from(ip.to_bits())
}

/// Puts slot `index` on top of the stack whose top is `head` (the free or the closed stack).
fn push<H>(slots: &mut [Slot<H>], head: &mut u16, index: usize) {
    slots[index].links.next = *head;
    *head = to_u16(index);
}

/// Takes the top slot off the stack whose top is `head`.
fn pop<H>(slots: &mut [Slot<H>], head: &mut u16) -> Option<usize> {
    let index = some(*head)?;
    *head = slots[index].links.next;
    slots[index].links.next = NONE;
    Some(index)
}
