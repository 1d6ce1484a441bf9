//! The lease table's pool bitmap: one bit per address of the server's pool, one 32-bit word per
//! slot, plus a summary bit per word that tells it is full, so the lowest free address
//! (RFC 2131 §4.3.1 leaves the choice to the server) is found in O(pool / 1024) word reads.

use core::net::Ipv4Addr;

use super::LeaseTable;

impl LeaseTable<'_> {
    /// The bit of `ip`, if the bitmap covers it.
    pub(super) fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let pool = self.pool?;
        u32::from(ip)
            .checked_sub(u32::from(pool.start))
            .filter(|&offset| offset < self.covered)
    }

    fn word(&self, word: usize) -> u32 {
        self.slots.get(word).map_or(u32::MAX, |s| s.links.bits)
    }

    pub(super) fn set_word(&mut self, word: usize, value: u32) {
        if let Some(links) = self.links_mut(word) {
            links.bits = value;
        }
    }

    pub(super) fn mark(&mut self, offset: u32, held: bool) {
        let (word, bit) = ((offset / 32) as usize, offset % 32);
        let value = if held {
            self.word(word) | 1 << bit
        } else {
            self.word(word) & !(1 << bit)
        };
        self.set_word(word, value);
        self.update_summary(word);
    }

    /// Sets leaf word `word`'s summary bit when the word is full, clears it otherwise.
    pub(super) fn update_summary(&mut self, word: usize) {
        let at = self.leaf_words + word / 32;
        let bit = 1 << (word % 32);
        let summary = if self.word(word) == u32::MAX {
            self.word(at) | bit
        } else {
            self.word(at) & !bit
        };
        self.set_word(at, summary);
    }

    /// The first bit at or after `from` that is clear (an address no entry holds).
    pub(super) fn next_clear(&self, from: u32) -> Option<u32> {
        if from >= self.covered {
            return None;
        }
        let word = (from / 32) as usize;
        let below = (1u32 << (from % 32)) - 1;
        let bits = self.word(word) | below;
        if bits != u32::MAX {
            return Some(word as u32 * 32 + (!bits).trailing_zeros());
        }
        // The first later word that is not full, by its summary bit.
        let mut next = word + 1;
        for _ in 0..self.len {
            if next >= self.leaf_words {
                return None;
            }
            let summary = self.word(self.leaf_words + next / 32) | ((1u32 << (next % 32)) - 1);
            if summary == u32::MAX {
                next = (next / 32 + 1) * 32;
                continue;
            }
            let candidate = (next / 32) * 32 + (!summary).trailing_zeros() as usize;
            let bits = self.word(candidate);
            if candidate < self.leaf_words && bits != u32::MAX {
                return Some(candidate as u32 * 32 + (!bits).trailing_zeros());
            }
            // A summary bit out of step with its word: step past it.
            next = candidate + 1;
        }
        None
    }
}
