//! What the Ethernet drivers (`lan9118`, `w5500`) share with smoltcp: the receive token and the
//! device capabilities (one frame at a time, standard Ethernet MTU).

use smoltcp::phy::{self, DeviceCapabilities, Medium};

/// A received frame, lent to smoltcp.
pub struct RxToken<'a>(pub &'a [u8]);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

/// Ethernet, frames of up to 1 514 bytes (without FCS), one frame per poll.
pub fn capabilities() -> DeviceCapabilities {
    let mut caps = DeviceCapabilities::default();
    caps.medium = Medium::Ethernet;
    caps.max_transmission_unit = 1514;
    caps.max_burst_size = Some(1);
    caps
}
