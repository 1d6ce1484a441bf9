//! TFTP server. Work in progress.
