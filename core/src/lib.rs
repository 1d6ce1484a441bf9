//! # pocketpxe-core
//!
//! The protocol half of pocketpxe: DHCP with PXE extensions and TFTP, as **sans-IO** state
//! machines. `#![no_std]`, no `alloc`, no `unsafe`.
//!
//! Nothing here reads a clock, a socket or a file. Datagrams ([`Received`]), the current time
//! ([`Instant`]) and file bytes (through [`FileStore`], or [`IoStore`] over `embedded-io` files) come in as arguments; datagrams to send
//! ([`Transmit`], written into a caller buffer) and deadlines go out as return values.
//!
//! ## Run-loop contract
//! After *every* `handle*` call the driver:
//! 1. sends the reply that call returned, if any;
//! 2. drains `poll_transmit` until it returns `None`, for every TFTP transfer that
//!    `poll_ready` names (the transfers with something to send, and only those);
//! 3. drains `poll_event`;
//! 4. reads `poll_timeout` and sleeps until that deadline or the next datagram, then calls
//!    `handle_timeout(now)` if the deadline passed.
//!
//! Time passed in never goes backwards. Spurious `handle_timeout` calls are no-ops. The
//! feature `_test-util` has this loop written out once, in `tftp::drive`, for tests, fuzzing
//! and benches.
//!
//! ```text
//! loop {
//!     select! {
//!         (src, bytes) = listener.recv() => core.handle_request(now, &rx, &mut store, &mut tx),
//!         (id, src, bytes) = transfer_sockets.recv() => core.handle(now, id, &rx),
//!         _ = sleep_until(core.poll_timeout()) => core.handle_timeout(now),
//!     }
//!     while let Some(id) = core.poll_ready() {
//!         while let Some(t) = core.poll_transmit(now, id, &mut store, &mut tx)? { send(t) }
//!     }
//!     while let Some(event) = core.poll_event() { log(event) }
//! }
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[macro_use]
mod fmt;

pub mod dhcp;
pub mod io_store;
pub mod logfmt;
pub mod net;
mod slot_index;
pub mod storage;
pub mod tftp;
pub mod time;
pub mod timeline;
pub mod wire;

pub use embedded_io;
pub use io_store::{Directory, IoStore, IoStoreError};
pub use net::{Destination, InsufficientSize, Mac, Received, Transmit, UnicastTransmit};
pub use storage::{FileStore, MemStore, OpenError, Opened, PathError, SafePath};
pub use time::Instant;
pub use wire::Error as WireError;
pub use wire::dhcp::{Packet as DhcpPacket, Repr as DhcpRepr};
pub use wire::tftp::{Packet as TftpPacket, Repr as TftpRepr};
