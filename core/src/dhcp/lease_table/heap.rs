//! The lease table's expiry index: a binary min-heap of entries by expiry, kept inside the
//! caller's slots (heap position `p` stored in slot `p`, and each slot's own position in the
//! heap), so the next expiry is O(1) and each change O(log n).

use super::{LeaseTable, NONE, some, to_u16};
use crate::dhcp::lease::Entry;
use crate::time::Instant;

impl LeaseTable<'_> {
    pub(super) fn earliest(&self) -> Option<(usize, Entry)> {
        if self.heap_len == 0 {
            return None;
        }
        let index = some(self.links(0).heap_slot)?;
        self.entry(index).map(|e| (index, e))
    }

    /// The expiry of the entry at heap position `pos` (an empty one sorts last).
    fn key(&self, pos: usize) -> Option<Instant> {
        some(self.links(pos).heap_slot)
            .and_then(|i| self.entry(i))
            .map(|e| e.lease.expires_at)
    }

    fn earlier(&self, a: usize, b: usize) -> bool {
        match (self.key(a), self.key(b)) {
            (Some(a), Some(b)) => a < b,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Puts slot `index` at heap position `pos`.
    fn place(&mut self, pos: usize, index: usize) {
        if let Some(links) = self.links_mut(pos) {
            links.heap_slot = to_u16(index);
        }
        if let Some(links) = self.links_mut(index) {
            links.heap_pos = to_u16(pos);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.links(a).heap_slot, self.links(b).heap_slot);
        if let (Some(ia), Some(ib)) = (some(ia), some(ib)) {
            self.place(a, ib);
            self.place(b, ia);
        }
    }

    pub(super) fn heap_insert(&mut self, index: usize) {
        if self.heap_len >= self.len {
            return;
        }
        let pos = self.heap_len;
        self.heap_len += 1;
        self.place(pos, index);
        self.sift_up(pos);
    }

    pub(super) fn heap_remove(&mut self, index: usize) {
        let Some(pos) = some(self.links(index).heap_pos).filter(|&p| p < self.heap_len) else {
            return;
        };
        let last = self.heap_len - 1;
        self.heap_len = last;
        if pos != last {
            let moved = self.links(last).heap_slot;
            if let Some(moved) = some(moved) {
                self.place(pos, moved);
            }
            let pos = self.sift_up(pos);
            self.sift_down(pos);
        }
        if let Some(links) = self.links_mut(last) {
            links.heap_slot = NONE;
        }
        if let Some(links) = self.links_mut(index) {
            links.heap_pos = NONE;
        }
    }

    /// Moves slot `index`'s entry, whose expiry changed, to its place in the heap.
    pub(super) fn reheap(&mut self, index: usize) {
        if let Some(pos) = some(self.links(index).heap_pos).filter(|&p| p < self.heap_len) {
            let pos = self.sift_up(pos);
            self.sift_down(pos);
        }
    }

    /// Returns the entry's new position.
    fn sift_up(&mut self, mut pos: usize) -> usize {
        for _ in 0..self.len {
            if pos == 0 {
                break;
            }
            let parent = (pos - 1) / 2;
            if !self.earlier(pos, parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
        pos
    }

    fn sift_down(&mut self, mut pos: usize) {
        for _ in 0..self.len {
            let left = 2 * pos + 1;
            if left >= self.heap_len {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap_len && self.earlier(right, left) {
                right
            } else {
                left
            };
            if !self.earlier(child, pos) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }
}
