//! DHCP server with PXE extensions. Work in progress.
