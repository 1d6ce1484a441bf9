//! DHCP/BOOTP wire format (RFC 2131 §2, RFC 951). Work in progress.
