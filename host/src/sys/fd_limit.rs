//! The open-file limit (`RLIMIT_NOFILE`, getrlimit(2)).
//!
//! Every TFTP transfer holds a socket of its own (its TID, RFC 1350 §4), and every client of
//! the load tool too, so a boot storm needs as many descriptors as transfers. The usual soft
//! limit is 1 024 while the hard limit is far higher (systemd: 524 288); like most servers,
//! pocketpxe raises its soft limit as far as it needs, up to the hard limit, and says so when
//! the hard limit is too low for the configured number of transfers.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything but the per-transfer sockets: listeners, files, the
/// runtime's epoll and eventfd, logs, the lease file.
pub const RESERVED: u64 = 64;

/// Raises the soft open-file limit to at least `needed` descriptors if the hard limit allows,
/// else to the hard limit. Returns the soft limit now in force (`None`: unlimited). `what`
/// names the setting that asked, for the warning when the hard limit is too low.
pub fn raise_to(needed: u64, what: &str) -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    if current >= needed {
        return Some(current);
    }
    let target = limit.maximum.map_or(needed, |max| max.min(needed));
    let now = if target > current {
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => {
                tracing::debug!(from = current, to = target, "raised the open-file limit");
                target
            }
            Err(err) => {
                tracing::warn!(error = %err, limit = current, "cannot raise the open-file limit");
                current
            }
        }
    } else {
        current
    };
    if now < needed {
        tracing::warn!(
            limit = now,
            needed,
            "the open-file limit (RLIMIT_NOFILE) is below what {what} needs: about {} transfers \
             fit, further ones are refused; raise it with `ulimit -n` or systemd's LimitNOFILE=",
            now.saturating_sub(RESERVED)
        );
    }
    Some(now)
}
