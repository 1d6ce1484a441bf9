//! The pocket boot server on a WIZnet W5500-EVB-Pico (RP2040 + W5500 on SPI0): the W5500 in
//! MACRAW mode under smoltcp, boot files in QSPI flash at 0x1010_0000 (the second MiB, written
//! as a UF2 by `mkbootimg`), key events as text on UART0 (GP0, 115200 8N1), defmt over RTT.
//!
//! Board wiring (fixed on the PCB): SPI0 MISO GP16, CSn GP17, SCK GP18, MOSI GP19, W5500
//! RSTn GP20, INTn GP21 (unused: the loop polls).

#![no_std]
#![no_main]

use defmt_rtt as _;
use embedded_hal::digital::OutputPin;
use pocketpxe_core::Instant;
use pocketpxe_firmware::clock;
use pocketpxe_firmware::flash_store::{FlashStore, MappedStorage};
use pocketpxe_firmware::net::{self, Event, Platform};
use pocketpxe_firmware::w5500::W5500;
use rp2040_hal::fugit::RateExtU32;
use rp2040_hal::gpio::{FunctionSpi, FunctionUart, Pin, PullDown, PullNone, bank0};
use rp2040_hal::uart::{DataBits, StopBits, UartConfig, UartPeripheral};
use rp2040_hal::{Clock, pac};

/// The second-stage bootloader for the board's W25Q16 flash.
#[unsafe(link_section = ".boot2")]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The W5500-EVB-Pico has no MAC address of its own: a locally administered one. Give each
/// board on one network its own.
const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x77, 0x00, 0x01];
const XTAL_HZ: u32 = 12_000_000;
const IMAGE_BASE: usize = 0x1010_0000;
const IMAGE_LEN: usize = 1024 * 1024;

type Spi0 = rp2040_hal::Spi<
    rp2040_hal::spi::Enabled,
    pac::SPI0,
    (
        Pin<bank0::Gpio19, FunctionSpi, PullDown>,
        Pin<bank0::Gpio16, FunctionSpi, PullDown>,
        Pin<bank0::Gpio18, FunctionSpi, PullDown>,
    ),
>;
type ChipSelect = Pin<bank0::Gpio17, rp2040_hal::gpio::FunctionSioOutput, PullDown>;

#[rp2040_hal::entry]
fn main() -> ! {
    let mut pac = pac::Peripherals::take().expect("invariant: taken once, at start");
    let cp = cortex_m::Peripherals::take().expect("invariant: taken once, at start");
    let mut watchdog = rp2040_hal::Watchdog::new(pac.WATCHDOG);
    let Ok(clocks) = rp2040_hal::clocks::init_clocks_and_plls(
        XTAL_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    ) else {
        defmt::panic!("clocks did not start");
    };
    let core_hz = clocks.system_clock.freq().to_Hz();
    clock::start(cp.SYST, core_hz);

    let sio = rp2040_hal::Sio::new(pac.SIO);
    let pins = rp2040_hal::gpio::Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let uart_pins = (
        pins.gpio0.reconfigure::<FunctionUart, PullNone>(),
        pins.gpio1.reconfigure::<FunctionUart, PullNone>(),
    );
    let uart_cfg = UartConfig::new(115_200.Hz(), DataBits::Eight, None, StopBits::One);
    let Ok(uart) = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS)
        .enable(uart_cfg, clocks.peripheral_clock.freq())
    else {
        defmt::panic!("UART did not start");
    };
    // Fixed strings only: core::fmt would cost kilobytes of flash (events go through defmt).
    uart.write_full_blocking(
        concat!(
            "pocketpxe-firmware ",
            env!("CARGO_PKG_VERSION"),
            " (w5500-evb-pico)\r\n"
        )
        .as_bytes(),
    );

    // Hardware reset of the W5500: RSTn low for 1 ms, then 50 ms for its PLL and PHY.
    let mut reset = pins.gpio20.into_push_pull_output();
    let _ = reset.set_low();
    cortex_m::asm::delay(core_hz / 1000);
    let _ = reset.set_high();
    cortex_m::asm::delay(core_hz / 20);

    let mut cs: ChipSelect = pins.gpio17.into_push_pull_output();
    let _ = cs.set_high();
    let spi: Spi0 = rp2040_hal::Spi::<_, _, _, 8>::new(
        pac.SPI0,
        (
            pins.gpio19.into_function::<FunctionSpi>(),
            pins.gpio16.into_function::<FunctionSpi>(),
            pins.gpio18.into_function::<FunctionSpi>(),
        ),
    )
    .init(
        &mut pac.RESETS,
        clocks.peripheral_clock.freq(),
        20.MHz(),
        embedded_hal::spi::MODE_0,
    );
    let mut eth = W5500::new(spi, cs);
    if let Err(e) = eth.init(MAC) {
        uart.write_full_blocking(b"w5500: chip not found or not in MACRAW mode\r\n");
        defmt::panic!("w5500: {}", e);
    }
    if !eth.link_up() {
        uart.write_full_blocking(b"w5500: no Ethernet link yet (plug in the cable)\r\n");
    }

    // SAFETY: the XIP window maps flash read-only; nothing erases it while the firmware runs.
    let storage = unsafe { MappedStorage::new(IMAGE_BASE, IMAGE_LEN) };
    let mut store = FlashStore::new(storage).unwrap_or_else(|_| {
        uart.write_full_blocking(b"no valid boot image at 0x10100000; serving no files\r\n");
        defmt::error!("no valid boot image at 0x10100000");
        FlashStore::empty(storage)
    });
    uart.write_full_blocking(b"serving DHCP and TFTP on 10.77.0.1 (events: defmt over RTT)\r\n");
    let mut board = Board { eth };
    net::run(&mut board, MAC, &mut store)
}

struct Board {
    eth: W5500<Spi0, ChipSelect>,
}

impl Platform for Board {
    type Device = W5500<Spi0, ChipSelect>;

    fn device(&mut self) -> &mut Self::Device {
        &mut self.eth
    }

    fn idle(&mut self, deadline: Instant) {
        // Polls the chip over SPI; a board on USB power has no reason to sleep.
        while clock::now() < deadline && !self.eth.rx_pending() {}
    }

    fn event(&mut self, event: Event<'_>) {
        defmt::info!("{}", event);
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("panic; resetting");
    cortex_m::peripheral::SCB::sys_reset()
}
