//! Pieces of the indexes the DHCP lease table and the TFTP transfer table keep *inside* the
//! caller's slots: slot numbers as `u16` with [`NONE`] for "no slot", the neighbours of a slot in
//! one doubly linked chain, and a walk along a chain that is bounded by the slot count, so that
//! even a corrupt index can neither loop forever nor index out of bounds.

/// "No slot" in a link.
pub(crate) const NONE: u16 = u16::MAX;

/// The most slots an index addresses: every slot number fits a `u16` other than [`NONE`].
pub(crate) const MAX_SLOTS: usize = NONE as usize;

/// A slot number as stored in a link, or `None` for [`NONE`].
pub(crate) fn some(index: u16) -> Option<usize> {
    (index != NONE).then_some(usize::from(index))
}

/// A slot number to store in a link; a number past [`MAX_SLOTS`] (which the tables never hand
/// out) becomes [`NONE`] rather than wrapping onto another slot.
pub(crate) fn to_u16(index: usize) -> u16 {
    u16::try_from(index).unwrap_or(NONE)
}

/// Neighbours of a slot in one doubly linked chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Chain {
    pub(crate) prev: u16,
    pub(crate) next: u16,
}

impl Chain {
    /// In no chain.
    pub(crate) const NONE: Self = Self {
        prev: NONE,
        next: NONE,
    };
}

/// The slot numbers of one chain, from `head` on, following `next_of` (the `next` link of a
/// slot, or `None` for a slot that does not exist). It stops after `max_steps` steps.
pub(crate) struct Chained<F> {
    at: u16,
    steps_left: usize,
    next_of: F,
}

impl<F: Fn(usize) -> Option<u16>> Chained<F> {
    pub(crate) fn new(head: u16, max_steps: usize, next_of: F) -> Self {
        Self {
            at: head,
            steps_left: max_steps,
            next_of,
        }
    }
}

impl<F: Fn(usize) -> Option<u16>> Iterator for Chained<F> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.steps_left = self.steps_left.checked_sub(1)?;
        let index = some(self.at)?;
        self.at = (self.next_of)(index)?;
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_follows_the_links_and_stops_at_none_a_cycle_or_a_missing_slot() {
        let next = [1, 2, NONE, 0];
        let walk =
            |head, steps| Chained::new(head, steps, |i| next.get(i).copied()).collect::<Vec<_>>();
        assert_eq!(walk(0, 4), [0, 1, 2]);
        assert_eq!(walk(NONE, 4), []);
        // 3 → 0 → 1 → 2: a cycle would go on, the bound stops it.
        let cycle = [1, 0];
        let walked: Vec<_> = Chained::new(0, 5, |i| cycle.get(i).copied()).collect();
        assert_eq!(walked, [0, 1, 0, 1, 0]);
        // A link to a slot that does not exist ends the walk before that slot.
        let broken = [7];
        let walked: Vec<_> = Chained::new(0, 5, |i| broken.get(i).copied()).collect();
        assert_eq!(walked, [0]);
    }

    #[test]
    fn slot_numbers_round_trip_and_never_wrap() {
        assert_eq!(some(to_u16(0)), Some(0));
        assert_eq!(some(to_u16(MAX_SLOTS - 1)), Some(MAX_SLOTS - 1));
        assert_eq!(to_u16(MAX_SLOTS), NONE);
        assert_eq!(to_u16(usize::MAX), NONE);
        assert_eq!(some(NONE), None);
    }
}
