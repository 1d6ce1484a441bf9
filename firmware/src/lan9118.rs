//! A smoltcp `phy::Device` for the SMSC LAN9118 (QEMU's mps2-an386 Ethernet; the real MPS2
//! boards carry the compatible LAN9220). PIO only: frames go through the TX/RX data FIFOs as
//! little-endian 32-bit words.
//!
//! Only registers QEMU implements are touched (anything else aborts QEMU), and the RX status
//! FIFO is read through its pop register (QEMU's PEEK register is wrong). See FIRMWARE.md.

use crate::eth::RxToken;
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::Instant;

/// The LAN9118 at its bus address, with one RX and one TX frame buffer.
pub struct Lan9118 {
    regs: Regs,
    rx: [u8; FRAME_MAX],
    tx: [u8; FRAME_MAX],
}

/// Why the chip could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum InitError {
    /// `BYTE_TEST` did not read 0x87654321: no chip, or a bus problem.
    NoChip(u32),
    /// The chip did not come out of reset.
    NotReady,
}

impl core::fmt::Display for InitError {
    /// What the mps2 board prints on its UART. (Its `Debug` form would bring in the
    /// `Debug` formatting machinery, about 800 bytes of flash, for this one line.)
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NoChip(test) => write!(f, "no chip: BYTE_TEST reads {test:#x}"),
            Self::NotReady => f.write_str("the chip did not come out of reset"),
        }
    }
}

impl Lan9118 {
    /// The chip at `base`.
    ///
    /// # Safety
    /// `base` must be the LAN9118's register block, and nothing else may access it.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            regs: Regs { base },
            rx: [0; FRAME_MAX],
            tx: [0; FRAME_MAX],
        }
    }

    /// Resets the chip, enables TX and RX (full duplex, own MAC plus broadcast) and returns
    /// the MAC address (QEMU takes it from `-nic …,mac=`; real boards from the EEPROM).
    ///
    /// # Errors
    /// [`InitError`] if the chip is absent or does not leave reset.
    pub fn init(&mut self) -> Result<[u8; 6], InitError> {
        let r = self.regs;
        let test = r.read(BYTE_TEST);
        if test != 0x8765_4321 {
            return Err(InitError::NoChip(test));
        }
        r.write(HW_CFG, HW_CFG_SRST);
        if !(0..100_000).any(|_| r.read(HW_CFG) & HW_CFG_SRST == 0) {
            return Err(InitError::NotReady);
        }
        if !(0..100_000).any(|_| r.read(PMT_CTRL) & PMT_CTRL_READY != 0) {
            return Err(InitError::NotReady);
        }
        r.write(INT_EN, 0);
        r.write(INT_STS, u32::MAX);
        self.mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX);
        r.write(TX_CFG, TX_CFG_TX_ON);
        let lo = self.mac_read(MAC_ADDRL).to_le_bytes();
        let hi = self.mac_read(MAC_ADDRH).to_le_bytes();
        Ok([lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]])
    }

    /// Whether a received frame is waiting.
    pub fn rx_pending(&self) -> bool {
        self.regs.read(RX_FIFO_INF) & 0x00ff_0000 != 0
    }

    fn mac_write(&self, reg: u32, value: u32) {
        self.regs.write(MAC_CSR_DATA, value);
        self.regs.write(MAC_CSR_CMD, MAC_CSR_BUSY | reg);
        self.mac_wait();
    }

    fn mac_read(&self, reg: u32) -> u32 {
        self.regs
            .write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | reg);
        self.mac_wait();
        self.regs.read(MAC_CSR_DATA)
    }

    fn mac_wait(&self) {
        for _ in 0..10_000 {
            if self.regs.read(MAC_CSR_CMD) & MAC_CSR_BUSY == 0 {
                return;
            }
        }
    }

    /// Pops one frame into `self.rx`; its length without the FCS, or `None` if there is none
    /// or it was bad (then it is skipped).
    fn pop_frame(&mut self) -> Option<usize> {
        let r = self.regs;
        if !self.rx_pending() {
            return None;
        }
        let status = r.read(RX_STATUS_FIFO);
        let len = ((status >> 16) & 0x3fff) as usize; // includes the 4-byte FCS
        let words = len.div_ceil(4);
        if status & RX_STS_ERROR != 0 || !(4 + 14..=FRAME_MAX).contains(&len) {
            for _ in 0..words {
                let _ = r.read(RX_DATA_FIFO);
            }
            defmt::debug!("lan9118: dropped frame, status {=u32:x}", status);
            return None;
        }
        for chunk in self.rx[..words * 4].chunks_exact_mut(4) {
            chunk.copy_from_slice(&r.read(RX_DATA_FIFO).to_le_bytes());
        }
        Some(len - 4)
    }
}

impl Device for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let len = self.pop_frame()?;
        Some((
            RxToken(&self.rx[..len]),
            TxToken {
                regs: self.regs,
                buf: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            regs: self.regs,
            buf: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        crate::eth::capabilities()
    }
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    regs: Regs,
    buf: &'a mut [u8; FRAME_MAX],
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME_MAX);
        let result = f(&mut self.buf[..len]);
        let r = self.regs;
        let len32 = len as u32;
        r.write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len32);
        r.write(TX_DATA_FIFO, (len32 << 16) | len32); // tag = length
        for chunk in self.buf[..len].chunks(4) {
            let mut word = [0; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            r.write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        // Keep the TX status FIFO from filling up.
        while r.read(TX_FIFO_INF) & 0x00ff_0000 != 0 {
            let _ = r.read(TX_STATUS_FIFO);
        }
        result
    }
}

#[derive(Clone, Copy)]
struct Regs {
    base: usize,
}

impl Regs {
    fn read(self, offset: usize) -> u32 {
        // SAFETY: `Lan9118::new`'s caller vouched for the register block.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}

/// Largest frame including the FCS, rounded up to whole words.
const FRAME_MAX: usize = 1520;

const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

const HW_CFG_SRST: u32 = 1;
const PMT_CTRL_READY: u32 = 1;
const TX_CFG_TX_ON: u32 = 1 << 1;
const RX_STS_ERROR: u32 = 1 << 15;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;

const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_FDPX: u32 = 1 << 20;
