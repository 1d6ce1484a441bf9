//! Lengths of time on the command line: the one parser every flag that takes a time uses.
//!
//! `90` (seconds), `90s`, `500ms`, `30m`, `1h30m`, `2d` (units as `humantime` reads them, also
//! `1h 30m` or `2days`); `infinite` only where it means something ([`parse_lease_time`]).

use std::time::Duration;

/// An infinite DHCP lease: option 51 of `0xffffffff` (RFC 2131 §3.3); the core omits T1 and T2
/// for it (see `pocketpxe_core::dhcp::INFINITE_LEASE`).
pub const INFINITE_LEASE: Duration = pocketpxe_core::dhcp::INFINITE_LEASE;

/// Parses a time longer than zero: `90`, `90s`, `500ms`, `30m`, `1h30m`, `2d`, up to 136 years.
///
/// # Errors
/// A message naming the bad value (and, for `infinite`, which flag takes it).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse(s, Allow::default())
}

/// As [`parse_duration`], and also `0` (for waits that may be skipped).
///
/// # Errors
/// A message naming the bad value.
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    parse(
        s,
        Allow {
            zero: true,
            ..Allow::default()
        },
    )
}

/// A DHCP lease time: as [`parse_duration`], or `infinite` ([`INFINITE_LEASE`]).
///
/// # Errors
/// A message naming the bad value.
pub fn parse_lease_time(s: &str) -> Result<Duration, String> {
    parse(
        s,
        Allow {
            infinite: true,
            ..Allow::default()
        },
    )
}

/// What a flag takes besides a finite, non-zero time.
#[derive(Debug, Clone, Copy, Default)]
struct Allow {
    zero: bool,
    infinite: bool,
}

/// The longest finite time: one second short of `0xffffffff` seconds, which DHCP reads as
/// infinite.
const MAX_SECS: u64 = u32::MAX as u64 - 1;

fn parse(s: &str, allow: Allow) -> Result<Duration, String> {
    let text = s.trim();
    if text.eq_ignore_ascii_case("infinite") {
        return if allow.infinite {
            Ok(INFINITE_LEASE)
        } else {
            Err("'infinite' is only accepted as a lease time (--lease-time); give a time like 90s, 30m or 1h30m".to_owned())
        };
    }
    // A bare number is seconds; `humantime` wants a unit.
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("'{s}' is out of range (at most 136 years)"))?
    } else {
        humantime::parse_duration(text).map_err(|e| {
            let more = if allow.infinite {
                ", 2d or infinite"
            } else {
                " or 2d"
            };
            format!("'{s}' is not a time like 90, 90s, 30m, 1h30m{more} ({e})")
        })?
    };
    if parsed.is_zero() && !allow.zero {
        return Err(format!("'{s}': the time must be longer than zero"));
    }
    if parsed.as_secs() > MAX_SECS {
        let hint = if allow.infinite {
            "; for no end, say infinite"
        } else {
            ""
        };
        return Err(format!("'{s}' is out of range (at most 136 years{hint})"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_and_without_units() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 5m "), Ok(Duration::from_secs(300)));
    }

    #[test]
    fn bad_times_are_refused_with_the_value_named() {
        for bad in ["", "h", "5 parsecs", "1.5.3s", "-5s", "99999999999d"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{bad:?}: {err}");
        }
        assert!(
            parse_duration("0")
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        // 0xffffffff seconds would be read as infinite by DHCP clients.
        assert!(parse_duration("4294967295").is_err());
        assert!(parse_duration("4294967294").is_ok());
        assert!(
            parse_lease_time("4294967295")
                .unwrap_err()
                .contains("infinite")
        );
    }

    #[test]
    fn infinite_only_for_lease_times() {
        assert_eq!(parse_lease_time("infinite"), Ok(INFINITE_LEASE));
        assert_eq!(parse_lease_time("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(INFINITE_LEASE.as_secs(), u64::from(u32::MAX));
        let err = parse_duration("infinite").unwrap_err();
        assert!(err.contains("only accepted as a lease time"), "{err}");
        assert!(parse_duration_or_zero("infinite").is_err());
    }
}
