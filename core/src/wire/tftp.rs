//! TFTP wire format. Work in progress.
