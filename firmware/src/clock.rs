//! Time for the core: a millisecond counter driven by the SysTick timer.
//!
//! Both boards use the Cortex-M SysTick, clocked from the core clock (25 MHz on mps2-an386,
//! 125 MHz on the RP2040), interrupting once per millisecond. The count is a `u64` behind a
//! critical section (thumbv6m has no 64-bit atomics), so it never wraps in practice.

use core::cell::Cell;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use pocketpxe_core::Instant;

static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts the 1 ms tick from a core clock of `core_hz`.
pub fn start(mut syst: SYST, core_hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(core_hz / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start`].
pub fn now() -> Instant {
    Instant::from_millis(critical_section::with(|cs| MILLIS.borrow(cs).get()))
}

/// The same instant in smoltcp's terms.
pub fn to_smoltcp(t: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_millis(i64::try_from(t.total_millis()).unwrap_or(i64::MAX))
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let millis = MILLIS.borrow(cs);
        millis.set(millis.get() + 1);
    });
}
