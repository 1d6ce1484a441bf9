//! Helpers shared by the DHCP integration tests.

pub mod pcap;
