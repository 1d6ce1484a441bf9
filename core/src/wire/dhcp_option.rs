//! DHCP options (RFC 2132, RFC 4578, RFC 3004). Work in progress.
