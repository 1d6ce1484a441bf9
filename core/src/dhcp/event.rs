//! Lease changes reported to the driver, and the fixed queue that holds them until drained.

use super::Lease;

/// A lease change the driver should persist (see the module docs for the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DhcpEvent {
    /// A new binding, acknowledged by the DHCPACK `handle` just returned.
    LeaseGranted(Lease),
    /// An existing binding extended (renewal, rebinding, or re-request), acknowledged likewise.
    LeaseRenewed(Lease),
    /// The client released its lease (RFC 2131 §4.3.4).
    LeaseReleased(Lease),
    /// The client declined the address as in use (RFC 2131 §4.3.3); it stays unused until
    /// `expires_at`. Any lease on it is gone.
    LeaseDeclined(Lease),
    /// The lease ran out.
    LeaseExpired(Lease),
}

/// Pending events: a fixed ring, no allocation.
#[derive(Debug)]
pub(super) struct EventQueue {
    ring: [Option<DhcpEvent>; EVENT_CAPACITY],
    head: usize,
    len: usize,
}

impl EventQueue {
    pub(super) const fn new() -> Self {
        Self {
            ring: [None; EVENT_CAPACITY],
            head: 0,
            len: 0,
        }
    }

    pub(super) fn room(&self) -> usize {
        EVENT_CAPACITY - self.len
    }

    pub(super) fn is_full(&self) -> bool {
        self.len == EVENT_CAPACITY
    }

    pub(super) fn push(&mut self, event: DhcpEvent) {
        debug_assert!(!self.is_full(), "invariant: callers check room first");
        if self.is_full() {
            return;
        }
        let at = (self.head + self.len) % EVENT_CAPACITY;
        self.ring[at] = Some(event);
        self.len += 1;
    }

    pub(super) fn pop(&mut self) -> Option<DhcpEvent> {
        if self.len == 0 {
            return None;
        }
        let event = self.ring[self.head].take();
        self.head = (self.head + 1) % EVENT_CAPACITY;
        self.len -= 1;
        event
    }
}

/// Pending events at most; see [`IgnoreReason::EventQueueFull`].
pub(super) const EVENT_CAPACITY: usize = 8;
