//! The operating system beneath the daemon: interfaces, NAT, sockets, privileges, limits,
//! signals and time.

pub mod clock;
pub mod fd_limit;
pub mod nat;
pub mod netif;
pub mod notify;
pub mod privdrop;
pub mod rtnl;
pub mod shutdown;
pub mod tcp;
pub mod udp;
pub mod udp_batch;
#[cfg(feature = "io-uring")]
pub mod uring;
