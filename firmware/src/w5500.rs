//! A smoltcp `phy::Device` for the WIZnet W5500 in MACRAW mode: socket 0 gets all 16 KiB of
//! RX and TX buffer and passes whole Ethernet frames; smoltcp does IP, ARP and UDP.
//!
//! SPI frames are "variable length data mode": a 16-bit address, a control byte (block select,
//! read/write), then data. Register offsets and commands are from the W5500 datasheet v1.1.

use crate::eth::RxToken;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiBus;
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::Instant;

/// The W5500 on an SPI bus with its chip-select pin.
pub struct W5500<SPI, CS> {
    bus: Bus<SPI, CS>,
    rx: [u8; FRAME_MAX],
    tx: [u8; FRAME_MAX],
}

/// Why the chip could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum InitError {
    /// `VERSIONR` did not read 4: no W5500, or an SPI problem.
    NoChip(u8),
    /// Socket 0 did not enter MACRAW mode.
    NoMacraw(u8),
}

impl<SPI: SpiBus, CS: OutputPin> W5500<SPI, CS> {
    /// A driver for the chip on `spi` selected by `cs` (call [`W5500::init`] after the chip's
    /// hardware reset).
    pub fn new(spi: SPI, cs: CS) -> Self {
        Self {
            bus: Bus { spi, cs },
            rx: [0; FRAME_MAX],
            tx: [0; FRAME_MAX],
        }
    }

    /// Soft-resets the chip, sets the MAC address and opens socket 0 in MACRAW mode with the
    /// MAC filter on (own address, broadcast, multicast).
    ///
    /// # Errors
    /// [`InitError`] if the chip does not answer as a W5500.
    pub fn init(&mut self, mac: [u8; 6]) -> Result<(), InitError> {
        let b = &mut self.bus;
        b.write(COMMON, MR, &[MR_RST]);
        for _ in 0..10_000 {
            if b.read_u8(COMMON, MR) & MR_RST == 0 {
                break;
            }
        }
        let version = b.read_u8(COMMON, VERSIONR);
        if version != 4 {
            return Err(InitError::NoChip(version));
        }
        b.write(COMMON, SHAR, &mac);
        for socket in 1..8 {
            b.write(socket_reg(socket), SN_RXBUF_SIZE, &[0]);
            b.write(socket_reg(socket), SN_TXBUF_SIZE, &[0]);
        }
        b.write(S0_REG, SN_RXBUF_SIZE, &[16]);
        b.write(S0_REG, SN_TXBUF_SIZE, &[16]);
        b.write(S0_REG, SN_MR, &[SN_MR_MACRAW | SN_MR_MFEN]);
        b.command(CR_OPEN);
        let status = b.read_u8(S0_REG, SN_SR);
        if status != SOCK_MACRAW {
            return Err(InitError::NoMacraw(status));
        }
        Ok(())
    }

    /// Whether the PHY reports a link.
    pub fn link_up(&mut self) -> bool {
        self.bus.read_u8(COMMON, PHYCFGR) & 1 != 0
    }

    /// Whether a received frame is waiting.
    pub fn rx_pending(&mut self) -> bool {
        self.bus.read_u16_stable(S0_REG, SN_RX_RSR) != 0
    }

    /// Reads one frame into `self.rx`; its length, or `None` if there is none (a bad one is
    /// skipped along with everything else buffered).
    fn pop_frame(&mut self) -> Option<usize> {
        let b = &mut self.bus;
        let available = b.read_u16_stable(S0_REG, SN_RX_RSR);
        if available < 2 {
            return None;
        }
        let ptr = b.read_u16(S0_REG, SN_RX_RD);
        let mut head = [0; 2];
        b.read(S0_RX, ptr, &mut head);
        let total = u16::from_be_bytes(head); // includes the 2-byte header
        let len = usize::from(total).saturating_sub(2);
        if total > available || !(14..=FRAME_MAX).contains(&len) {
            // Lost framing: drop everything buffered.
            b.write(S0_REG, SN_RX_RD, &ptr.wrapping_add(available).to_be_bytes());
            b.command(CR_RECV);
            defmt::warn!("w5500: bad frame header {}, RX flushed", total);
            return None;
        }
        b.read(S0_RX, ptr.wrapping_add(2), &mut self.rx[..len]);
        b.write(S0_REG, SN_RX_RD, &ptr.wrapping_add(total).to_be_bytes());
        b.command(CR_RECV);
        Some(len)
    }
}

impl<SPI: SpiBus, CS: OutputPin> Device for W5500<SPI, CS> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, SPI, CS>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_, SPI, CS>)> {
        let len = self.pop_frame()?;
        Some((
            RxToken(&self.rx[..len]),
            TxToken {
                bus: &mut self.bus,
                buf: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, SPI, CS>> {
        Some(TxToken {
            bus: &mut self.bus,
            buf: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        crate::eth::capabilities()
    }
}

/// Room for one frame to send.
pub struct TxToken<'a, SPI, CS> {
    bus: &'a mut Bus<SPI, CS>,
    buf: &'a mut [u8; FRAME_MAX],
}

impl<SPI: SpiBus, CS: OutputPin> phy::TxToken for TxToken<'_, SPI, CS> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME_MAX);
        let result = f(&mut self.buf[..len]);
        let b = self.bus;
        // Wait (bounded) for room: the previous frame may still be going out.
        let fits = (0..10_000).any(|_| usize::from(b.read_u16_stable(S0_REG, SN_TX_FSR)) >= len);
        if !fits {
            defmt::warn!("w5500: TX buffer stuck, frame dropped");
            return result;
        }
        let ptr = b.read_u16(S0_REG, SN_TX_WR);
        b.write(S0_TX, ptr, &self.buf[..len]);
        b.write(
            S0_REG,
            SN_TX_WR,
            &ptr.wrapping_add(len as u16).to_be_bytes(),
        );
        b.command(CR_SEND);
        result
    }
}

struct Bus<SPI, CS> {
    spi: SPI,
    cs: CS,
}

impl<SPI: SpiBus, CS: OutputPin> Bus<SPI, CS> {
    fn read(&mut self, block: u8, addr: u16, buf: &mut [u8]) {
        let [hi, lo] = addr.to_be_bytes();
        let _ = self.cs.set_low();
        let _ = self.spi.write(&[hi, lo, block << 3]);
        let _ = self.spi.read(buf);
        let _ = self.spi.flush();
        let _ = self.cs.set_high();
    }

    fn write(&mut self, block: u8, addr: u16, data: &[u8]) {
        let [hi, lo] = addr.to_be_bytes();
        let _ = self.cs.set_low();
        let _ = self.spi.write(&[hi, lo, (block << 3) | CTRL_WRITE]);
        let _ = self.spi.write(data);
        let _ = self.spi.flush();
        let _ = self.cs.set_high();
    }

    fn read_u8(&mut self, block: u8, addr: u16) -> u8 {
        let mut b = [0];
        self.read(block, addr, &mut b);
        b[0]
    }

    fn read_u16(&mut self, block: u8, addr: u16) -> u16 {
        let mut b = [0; 2];
        self.read(block, addr, &mut b);
        u16::from_be_bytes(b)
    }

    /// A 16-bit counter the chip updates concurrently: read until two reads agree
    /// (datasheet §4.2, Sn_RX_RSR / Sn_TX_FSR).
    fn read_u16_stable(&mut self, block: u8, addr: u16) -> u16 {
        let mut last = self.read_u16(block, addr);
        for _ in 0..8 {
            let next = self.read_u16(block, addr);
            if next == last {
                break;
            }
            last = next;
        }
        last
    }

    /// Issues a socket-0 command and waits (bounded) until the chip has taken it.
    fn command(&mut self, cmd: u8) {
        self.write(S0_REG, SN_CR, &[cmd]);
        for _ in 0..10_000 {
            if self.read_u8(S0_REG, SN_CR) == 0 {
                return;
            }
        }
    }
}

const fn socket_reg(socket: u8) -> u8 {
    socket * 4 + 1
}

/// Largest Ethernet frame without FCS.
const FRAME_MAX: usize = 1514;

// Block selects.
const COMMON: u8 = 0;
const S0_REG: u8 = 1;
const S0_TX: u8 = 2;
const S0_RX: u8 = 3;
const CTRL_WRITE: u8 = 1 << 2;

// Common registers.
const MR: u16 = 0x0000;
const SHAR: u16 = 0x0009;
const PHYCFGR: u16 = 0x002e;
const VERSIONR: u16 = 0x0039;
const MR_RST: u8 = 0x80;

// Socket registers.
const SN_MR: u16 = 0x0000;
const SN_CR: u16 = 0x0001;
const SN_SR: u16 = 0x0003;
const SN_RXBUF_SIZE: u16 = 0x001e;
const SN_TXBUF_SIZE: u16 = 0x001f;
const SN_TX_FSR: u16 = 0x0020;
const SN_TX_WR: u16 = 0x0024;
const SN_RX_RSR: u16 = 0x0026;
const SN_RX_RD: u16 = 0x0028;
const SN_MR_MACRAW: u8 = 0x04;
const SN_MR_MFEN: u8 = 0x80;
const SOCK_MACRAW: u8 = 0x42;
const CR_OPEN: u8 = 0x01;
const CR_SEND: u8 = 0x20;
const CR_RECV: u8 = 0x40;
