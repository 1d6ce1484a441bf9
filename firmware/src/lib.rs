//! # pocketpxe-firmware: the pocket boot server
//!
//! `pocketpxe-core`'s DHCP and TFTP servers on a microcontroller, driven by smoltcp. The
//! board-independent part lives here: the driver loop ([`net`]), the millisecond clock
//! ([`clock`]), the boot-file store ([`flash_store`]) and the configuration ([`config`]). Each
//! board is a binary in `src/bin/` with its Ethernet driver here behind its feature:
//! [`lan9118`] for QEMU's `mps2-an386`, [`w5500`] for the WIZnet W5500-EVB-Pico.

#![no_std]
#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod eth;
pub mod flash_store;
#[cfg(feature = "mps2")]
pub mod lan9118;
pub mod net;
#[cfg(feature = "w5500-pico")]
pub mod w5500;
