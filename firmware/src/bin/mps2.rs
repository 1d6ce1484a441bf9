//! The pocket boot server on QEMU's `mps2-an386` (Cortex-M4F): LAN9118 Ethernet, boot files
//! in the 16 MiB PSRAM at 0x2100_0000 (placed there by `-device loader`), key events as text on
//! UART0, everything else through defmt over semihosting.
//!
//! ```text
//! qemu-system-arm -M mps2-an386 -nographic -kernel mps2 \
//!   -semihosting-config enable=on,target=native \
//!   -device loader,file=boot.img,addr=0x21000000,force-raw=on \
//!   -nic tap,ifname=tarm,script=no,downscript=no,model=lan9118,mac=02:00:00:77:00:02
//! ```

#![no_std]
#![no_main]

use core::fmt::{self, Write};

use cortex_m_rt::entry;
use defmt_semihosting as _;
use pocketpxe_core::Instant;
use pocketpxe_firmware::clock;
use pocketpxe_firmware::flash_store::{FlashStore, MappedStorage};
use pocketpxe_firmware::lan9118::Lan9118;
use pocketpxe_firmware::net::{self, Event, Platform};

/// Core clock of the MPS2 FPGA images.
const CORE_HZ: u32 = 25_000_000;
const LAN9118_BASE: usize = 0x4020_0000;
const UART0_BASE: usize = 0x4000_4000;
const PSRAM_BASE: usize = 0x2100_0000;
const PSRAM_LEN: usize = 16 * 1024 * 1024;

#[entry]
fn main() -> ! {
    let mut uart = Uart::init();
    let _ = writeln!(
        uart,
        "pocketpxe-firmware {} (mps2-an386)\r",
        env!("CARGO_PKG_VERSION")
    );
    let cp = cortex_m::Peripherals::take().expect("invariant: taken once, at start");
    clock::start(cp.SYST, CORE_HZ);

    // SAFETY: the LAN9118's register block on this board, used only through `eth`.
    let mut eth = unsafe { Lan9118::new(LAN9118_BASE) };
    let mac = match eth.init() {
        Ok(mac) => mac,
        Err(e) => {
            let _ = writeln!(uart, "lan9118: {e}\r");
            defmt::panic!("lan9118: {}", e);
        }
    };
    // SAFETY: PSRAM is plain RAM that this firmware never writes.
    let storage = unsafe { MappedStorage::new(PSRAM_BASE, PSRAM_LEN) };
    let mut store = FlashStore::new(storage).unwrap_or_else(|e| {
        let _ = writeln!(
            uart,
            "boot image at {PSRAM_BASE:#x}: {e}; serving no files\r"
        );
        FlashStore::empty(storage)
    });
    let mut board = Board { eth, uart };
    net::run(&mut board, mac, &mut store)
}

struct Board {
    eth: Lan9118,
    uart: Uart,
}

impl Platform for Board {
    type Device = Lan9118;

    fn device(&mut self) -> &mut Lan9118 {
        &mut self.eth
    }

    fn idle(&mut self, deadline: Instant) {
        // SysTick wakes the core every millisecond.
        while clock::now() < deadline && !self.eth.rx_pending() {
            cortex_m::asm::wfi();
        }
    }

    fn event(&mut self, event: Event<'_>) {
        let _ = writeln!(self.uart, "[{}] {event}\r", clock::now());
        defmt::info!("{}", event);
    }
}

/// The CMSDK UART0, transmit only.
struct Uart;

impl Uart {
    fn init() -> Self {
        // SAFETY: UART0's BAUDDIV and CTRL registers; only this driver touches UART0.
        unsafe {
            core::ptr::write_volatile((UART0_BASE + 0x10) as *mut u32, 16);
            core::ptr::write_volatile((UART0_BASE + 0x08) as *mut u32, 1);
        }
        Self
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: UART0's STATE and DATA registers.
            unsafe {
                while core::ptr::read_volatile((UART0_BASE + 0x04) as *const u32) & 1 != 0 {}
                core::ptr::write_volatile(UART0_BASE as *mut u32, u32::from(b));
            }
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "panic: {info}\r");
    // Ends QEMU with a failure status (semihosting is enabled under QEMU, never on hardware).
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
