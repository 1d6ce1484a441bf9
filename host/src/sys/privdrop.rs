//! Least privilege: `serve` gives up root once everything privileged is done.
//!
//! What needs root happens in [`crate::serve::Serve::prepare`]: binding ports 67, 69 and 4011
//! (with `SO_BINDTODEVICE`), adding `--address`, setting up NAT. Then [`drop_to`] switches the
//! whole process (it is single-threaded at that point, which is checked) to the service user
//! (`--user`, default `pocketpxe` if that user exists, else `nobody`) with no supplementary
//! groups, and keeps exactly one capability, and only when it is needed:
//!
//! * `CAP_NET_ADMIN`, when an address was added or NAT is on, because undoing them on exit
//!   (`ip addr del`, `nft delete table`, restoring `net.ipv4.ip_forward`) needs it. It is kept
//!   effective, permitted, inheritable and *ambient*, so the `ip` and `nft` programs run for
//!   the cleanup inherit it. Nothing else is kept: no `CAP_NET_BIND_SERVICE` (the ports are
//!   bound already), no `CAP_DAC_OVERRIDE` (files are made accessible instead, see below).
//!
//! At runtime the daemon then needs only ordinary permissions: the TFTP root readable by the
//! user (checked by the tests; the root directory descriptor is already open), the lease
//! file's directory writable by it (`/var/lib/pocketpxe` and `/run/pocketpxe`, pocketpxe's own
//! directories, are handed to the user; any other lease directory must already be writable
//! by it, or `serve` refuses to start), and new transfer sockets on port 0 (no privilege).
//!
//! Not root to begin with: nothing to drop, [`drop_to`] does nothing.

use std::io;
use std::path::{Path, PathBuf};

/// The user the daemon runs as after setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUser {
    /// Its name.
    pub name: String,
    /// Its user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

/// Why privileges could not be dropped. The daemon does not start then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivDropError {
    /// No such user in /etc/passwd.
    #[error("--user {0}: no such user in /etc/passwd")]
    UnknownUser(String),
    /// Threads were already running, so a per-thread credential change would be unsafe.
    #[error(
        "cannot drop privileges: {0} threads are running (bug: drop must happen before any thread starts)"
    )]
    Threads(usize),
    /// A system call failed.
    #[error("cannot drop privileges to {user}: {step}: {source}")]
    Syscall {
        /// The user.
        user: String,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A directory the daemon must write to is not writable by the user.
    #[error(
        "{path} is not writable by user {user}, which serve runs as after setup: \
         chown it to {user}, pick another --leases, or run with --user root"
    )]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// The user.
        user: String,
    },
}

impl ServiceUser {
    /// Looks `name` up in /etc/passwd.
    ///
    /// # Errors
    /// [`PrivDropError::UnknownUser`].
    pub fn lookup(name: &str) -> Result<Self, PrivDropError> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        parse_passwd(&passwd, name).ok_or_else(|| PrivDropError::UnknownUser(name.to_owned()))
    }

    /// `pocketpxe` if that user exists, else `nobody`.
    pub fn default_name() -> &'static str {
        if Self::lookup(DEDICATED).is_ok() {
            DEDICATED
        } else {
            "nobody"
        }
    }

    /// Whether this is root (then nothing is dropped).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Whether this process runs as root (effective uid 0).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Makes `dir` usable by `user` before the switch: created if missing; pocketpxe's own
/// directories (`owned`) are handed to the user, any other must already be writable by it.
///
/// # Errors
/// [`PrivDropError::NotWritable`], or [`PrivDropError::Syscall`] if chown fails.
pub fn prepare_dir(dir: &Path, user: &ServiceUser, owned: bool) -> Result<(), PrivDropError> {
    use std::os::unix::fs::MetadataExt as _;
    let syscall = |step, source| PrivDropError::Syscall {
        user: user.name.clone(),
        step,
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| syscall("create the lease directory", e))?;
    let meta = std::fs::metadata(dir).map_err(|e| syscall("stat the lease directory", e))?;
    let mode = meta.mode();
    let writable = (meta.uid() == user.uid && mode & 0o300 == 0o300)
        || (meta.gid() == user.gid && mode & 0o030 == 0o030)
        || mode & 0o003 == 0o003;
    if writable {
        return Ok(());
    }
    if !owned {
        return Err(PrivDropError::NotWritable {
            path: dir.to_owned(),
            user: user.name.clone(),
        });
    }
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
        .map_err(|e| syscall("chown pocketpxe's directory", e))?;
    // Files already in it (a lease file, NAT state) must stay readable and replaceable.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::os::unix::fs::chown(entry.path(), Some(user.uid), Some(user.gid));
        }
    }
    Ok(())
}

/// Switches the process to `user`, keeping `CAP_NET_ADMIN` (also ambient) if
/// `keep_net_admin`, and no other capability. Does nothing unless running as root, or when
/// `user` is root.
///
/// # Errors
/// [`PrivDropError`] naming the failed step; the process must not go on serving then.
pub fn drop_to(user: &ServiceUser, keep_net_admin: bool) -> Result<(), PrivDropError> {
    use rustix::thread::{self as t, CapabilitySet, CapabilitySets};
    if !running_as_root() || user.is_root() {
        return Ok(());
    }
    let threads = thread_count();
    if threads != 1 {
        return Err(PrivDropError::Threads(threads));
    }
    let fail = |step: &'static str| {
        let user = user.name.clone();
        move |e: rustix::io::Errno| PrivDropError::Syscall {
            user,
            step,
            source: e.into(),
        }
    };
    let uid = rustix::process::Uid::from_raw(user.uid);
    let gid = rustix::process::Gid::from_raw(user.gid);
    t::set_keep_capabilities(true).map_err(fail("prctl(PR_SET_KEEPCAPS)"))?;
    t::set_thread_groups(&[]).map_err(fail("setgroups"))?;
    t::set_thread_res_gid(gid, gid, gid).map_err(fail("setresgid"))?;
    t::set_thread_res_uid(uid, uid, uid).map_err(fail("setresuid"))?;
    t::set_keep_capabilities(false).map_err(fail("prctl(PR_SET_KEEPCAPS, 0)"))?;
    let keep = if keep_net_admin {
        CapabilitySet::NET_ADMIN
    } else {
        CapabilitySet::empty()
    };
    t::set_capabilities(
        None,
        CapabilitySets {
            effective: keep,
            permitted: keep,
            inheritable: keep,
        },
    )
    .map_err(fail("capset"))?;
    if keep_net_admin {
        t::configure_capability_in_ambient_set(CapabilitySet::NET_ADMIN, true)
            .map_err(fail("prctl(PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN)"))?;
    }
    // The way back must be closed.
    if rustix::process::getuid().is_root() || rustix::process::geteuid().is_root() {
        return Err(PrivDropError::Syscall {
            user: user.name.clone(),
            step: "verify",
            source: io::Error::other("still root after setresuid"),
        });
    }
    Ok(())
}

/// `name:x:uid:gid:...` → the user.
fn parse_passwd(passwd: &str, name: &str) -> Option<ServiceUser> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(ServiceUser {
            name: name.to_owned(),
            uid,
            gid,
        })
    })
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The dedicated service user, used when it exists.
const DEDICATED: &str = "pocketpxe";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\nbroken\n";
        assert_eq!(
            parse_passwd(text, "nobody"),
            Some(ServiceUser {
                name: "nobody".into(),
                uid: 65534,
                gid: 65534
            })
        );
        assert_eq!(parse_passwd(text, "nob"), None);
        assert_eq!(parse_passwd(text, "broken"), None);
        assert!(parse_passwd(text, "root").unwrap().is_root());
    }
}
