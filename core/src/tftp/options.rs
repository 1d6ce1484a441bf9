//! Option negotiation: RFC 2347 (framework), RFC 2348 (`blksize`), RFC 2349 (`timeout`,
//! `tsize`) and RFC 7440 (`windowsize`).

use core::fmt;
use core::time::Duration;

use super::TftpConfig;
use crate::wire::Error;
use crate::wire::tftp::{DEFAULT_BLKSIZE, OptionWriter, Options, parse_decimal};

/// What a transfer runs with after negotiation, and which options go into the OACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Negotiated {
    /// Bytes per DATA block (RFC 2348): 512 unless negotiated.
    pub blksize: u16,
    /// Blocks sent before waiting for an ACK (RFC 7440): 1 unless negotiated.
    pub windowsize: u16,
    /// Retransmission timeout: the client's `timeout` (RFC 2349) or the configured default.
    pub timeout: Duration,
    /// Which options the OACK acknowledges. Empty means: no OACK, plain RFC 1350.
    pub acked: Acked,
    /// The file size sent as `tsize`, when acknowledged.
    pub tsize: Option<u64>,
}

bitflags::bitflags! {
    /// The set of options an OACK acknowledges (RFC 2347 §2: only those asked for and
    /// accepted). Empty means no OACK: plain RFC 1350.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Acked: u8 {
        /// `blksize` was accepted (RFC 2348).
        const BLKSIZE = 1 << 0;
        /// `timeout` was accepted (RFC 2349).
        const TIMEOUT = 1 << 1;
        /// `tsize` was accepted, the size being known (RFC 2349).
        const TSIZE = 1 << 2;
        /// `windowsize` was accepted (RFC 7440).
        const WINDOWSIZE = 1 << 3;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Acked {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Acked({=u8:#06b})", self.bits());
    }
}

impl fmt::Display for Negotiated {
    /// The acknowledged options as `name=value`, space-separated (`blksize=1468 windowsize=4
    /// timeout=1 tsize=1048576`), or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = [
            (Acked::BLKSIZE, "blksize", Some(u64::from(self.blksize))),
            (
                Acked::WINDOWSIZE,
                "windowsize",
                Some(u64::from(self.windowsize)),
            ),
            (Acked::TIMEOUT, "timeout", Some(self.timeout.as_secs())),
            (Acked::TSIZE, "tsize", self.tsize),
        ];
        let mut first = true;
        for (flag, name, value) in values {
            if let (true, Some(value)) = (self.acked.contains(flag), value) {
                let sep = if first { "" } else { " " };
                write!(f, "{sep}{name}={value}")?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl Negotiated {
    /// Plain RFC 1350: no options.
    pub fn plain(cfg: &TftpConfig) -> Self {
        Self {
            blksize: DEFAULT_BLKSIZE,
            windowsize: 1,
            timeout: cfg.timeout,
            acked: Acked::default(),
            tsize: None,
        }
    }

    /// Negotiates `requested` against the server's limits and the file's size.
    ///
    /// Values out of an option's range make the server ignore that option (RFC 2347 §2 lets
    /// the server omit any option from its OACK); values above a configured maximum are
    /// lowered to it (RFC 2348 §2, RFC 7440 §3: the OACK value may be smaller, never larger).
    pub fn negotiate(cfg: &TftpConfig, requested: Options<'_>, size: Option<u64>) -> Self {
        let mut negotiated = Self::plain(cfg);
        if !cfg.options {
            return negotiated;
        }
        for (name, value) in requested.iter() {
            let value = parse_decimal(value);
            if name.eq_ignore_ascii_case(b"blksize") {
                // RFC 2348 §2: 8..=65464 octets.
                if let Some(v) = value.filter(|v| *v >= MIN_BLKSIZE) {
                    let max = u64::from(cfg.max_blksize.clamp(MIN_BLKSIZE as u16, MAX_BLKSIZE));
                    negotiated.blksize = v.min(max) as u16;
                    negotiated.acked |= Acked::BLKSIZE;
                }
            } else if name.eq_ignore_ascii_case(b"timeout") {
                // RFC 2349 §2: 1..=255 seconds, acknowledged unchanged.
                if let Some(v) = value.filter(|v| (1..=255).contains(v)) {
                    negotiated.timeout = Duration::from_secs(v);
                    negotiated.acked |= Acked::TIMEOUT;
                }
            } else if name.eq_ignore_ascii_case(b"tsize") {
                // RFC 2349 §2: a read request carries 0; the OACK carries the size. An empty
                // file's `tsize=0` is left out: curl 7.88 rejects it and leaves silently.
                if value.is_some()
                    && let Some(size) = size.filter(|s| *s > 0)
                {
                    negotiated.tsize = Some(size);
                    negotiated.acked |= Acked::TSIZE;
                }
            } else if name.eq_ignore_ascii_case(b"windowsize") {
                // RFC 7440 §3: 1..=65535 blocks.
                if let Some(v) = value.filter(|v| (1..=65535).contains(v)) {
                    negotiated.windowsize = v.min(u64::from(cfg.max_windowsize.max(1))) as u16;
                    negotiated.acked |= Acked::WINDOWSIZE;
                }
            }
        }
        negotiated
    }

    /// Writes the OACK's option block (RFC 2347 §2) into `buf`, returning its length.
    ///
    /// # Errors
    /// [`Error::TooLong`] if `buf` is too small (at most [`OACK_OPTIONS_MAX_LEN`] bytes are
    /// needed).
    pub fn write_oack_options(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut writer = OptionWriter::new(buf);
        if self.acked.contains(Acked::BLKSIZE) {
            writer.push_u64("blksize", u64::from(self.blksize))?;
        }
        if self.acked.contains(Acked::TIMEOUT) {
            writer.push_u64("timeout", self.timeout.as_secs())?;
        }
        if let (true, Some(size)) = (self.acked.contains(Acked::TSIZE), self.tsize) {
            writer.push_u64("tsize", size)?;
        }
        if self.acked.contains(Acked::WINDOWSIZE) {
            writer.push_u64("windowsize", u64::from(self.windowsize))?;
        }
        Ok(writer.len())
    }
}

/// The most bytes an OACK's option block can take.
pub const OACK_OPTIONS_MAX_LEN: usize = (8 + 6) + (8 + 4) + (6 + 21) + (11 + 6);

/// RFC 2348 §2: the smallest block size.
const MIN_BLKSIZE: u64 = 8;
/// RFC 2348 §2: the largest block size.
const MAX_BLKSIZE: u16 = 65464;

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(raw: &[u8]) -> Options<'_> {
        Options::new_checked(raw).unwrap()
    }

    #[test]
    fn ovmf_probe_is_clamped_and_acknowledged() {
        let cfg = TftpConfig {
            max_windowsize: 2,
            ..TftpConfig::default()
        };
        let n = Negotiated::negotiate(
            &cfg,
            opts(b"tsize\x000\x00blksize\x001468\x00windowsize\x004\x00"),
            Some(1_048_504),
        );
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.windowsize, 2);
        assert_eq!(n.tsize, Some(1_048_504));
        let mut buf = [0u8; OACK_OPTIONS_MAX_LEN];
        let len = n.write_oack_options(&mut buf).unwrap();
        assert_eq!(
            &buf[..len],
            b"blksize\x001468\x00tsize\x001048504\x00windowsize\x002\x00"
        );
        assert_eq!(
            std::format!("{n}"),
            "blksize=1468 windowsize=2 tsize=1048504",
            "the timeout in force is not shown: it was not asked for"
        );
    }

    #[test]
    fn out_of_range_and_unknown_options_are_ignored() {
        let cfg = TftpConfig::default();
        let n = Negotiated::negotiate(
            &cfg,
            opts(b"blksize\x007\x00timeout\x00256\x00windowsize\x000\x00multicast\x00\x00tsize\x00x\x00"),
            Some(10),
        );
        assert_eq!(n, Negotiated::plain(&cfg));
        assert!(n.acked.is_empty());
    }

    #[test]
    fn blksize_is_capped_by_config_and_rfc() {
        let cfg = TftpConfig {
            max_blksize: u16::MAX,
            ..TftpConfig::default()
        };
        let n = Negotiated::negotiate(&cfg, opts(b"BLKSIZE\x0099999\x00"), None);
        assert_eq!(n.blksize, 65464);
        let cfg = TftpConfig::default();
        let n = Negotiated::negotiate(&cfg, opts(b"blksize\x0065464\x00"), None);
        assert_eq!(n.blksize, cfg.max_blksize);
    }

    #[test]
    fn tsize_needs_a_known_size_and_timeout_is_kept() {
        let cfg = TftpConfig::default();
        let n = Negotiated::negotiate(&cfg, opts(b"tsize\x000\x00timeout\x003\x00"), None);
        assert_eq!(n.acked, Acked::TIMEOUT);
        assert_eq!(std::format!("{n}"), "timeout=3");
        assert_eq!(n.timeout, Duration::from_secs(3));
        let mut buf = [0u8; OACK_OPTIONS_MAX_LEN];
        let len = n.write_oack_options(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"timeout\x003\x00");
    }

    #[test]
    fn empty_files_get_no_tsize() {
        let cfg = TftpConfig::default();
        let n = Negotiated::negotiate(&cfg, opts(b"tsize\x000\x00"), Some(0));
        assert!(n.acked.is_empty(), "no OACK at all: plain DATA 1 follows");
        assert_eq!(std::format!("{n}"), "none");
    }

    #[test]
    fn options_can_be_switched_off() {
        let cfg = TftpConfig {
            options: false,
            ..TftpConfig::default()
        };
        let n = Negotiated::negotiate(&cfg, opts(b"blksize\x001468\x00"), Some(5));
        assert_eq!(n, Negotiated::plain(&cfg));
    }
}
