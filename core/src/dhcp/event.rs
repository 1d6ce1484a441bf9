//! Lease changes reported to the driver, and the fixed queue that holds them until drained.

use core::fmt;

use super::Lease;
use crate::net::Mac;

/// A lease change the driver should persist (see the module docs for the order).
///
/// Displays as one line both drivers log: `lease 192.168.1.10 to 52:54:00:12:34:56` (the verb
/// is [`DhcpEvent::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl DhcpEvent {
    /// The event's verb in logs: `lease`, `renewed`, `released`, `declined` or `expired`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::LeaseGranted(_) => "lease",
            Self::LeaseRenewed(_) => "renewed",
            Self::LeaseReleased(_) => "released",
            Self::LeaseDeclined(_) => "declined",
            Self::LeaseExpired(_) => "expired",
        }
    }

    /// The lease the event is about.
    pub const fn lease(&self) -> &Lease {
        match self {
            Self::LeaseGranted(l)
            | Self::LeaseRenewed(l)
            | Self::LeaseReleased(l)
            | Self::LeaseDeclined(l)
            | Self::LeaseExpired(l) => l,
        }
    }
}

impl fmt::Display for DhcpEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lease = self.lease();
        write!(f, "{} {} to {}", self.name(), lease.ip, Mac(lease.mac))
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DhcpEvent {
    fn format(&self, f: defmt::Formatter<'_>) {
        let lease = self.lease();
        defmt::write!(f, "{=str} {} to {}", self.name(), lease.ip, Mac(lease.mac));
    }
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

/// Pending events at most; see [`IgnoreReason::EventQueueFull`](super::IgnoreReason::EventQueueFull).
pub(super) const EVENT_CAPACITY: usize = 8;

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::time::Instant;

    #[test]
    fn events_display_as_verb_address_and_mac() {
        let lease = Lease {
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            ip: Ipv4Addr::new(10, 77, 0, 2),
            expires_at: Instant::ZERO,
        };
        let lines = [
            DhcpEvent::LeaseGranted(lease),
            DhcpEvent::LeaseRenewed(lease),
            DhcpEvent::LeaseReleased(lease),
            DhcpEvent::LeaseDeclined(lease),
            DhcpEvent::LeaseExpired(lease),
        ]
        .map(|e| std::format!("{e}"));
        assert_eq!(
            lines,
            [
                "lease 10.77.0.2 to 52:54:00:12:34:56",
                "renewed 10.77.0.2 to 52:54:00:12:34:56",
                "released 10.77.0.2 to 52:54:00:12:34:56",
                "declined 10.77.0.2 to 52:54:00:12:34:56",
                "expired 10.77.0.2 to 52:54:00:12:34:56",
            ]
        );
    }
}
