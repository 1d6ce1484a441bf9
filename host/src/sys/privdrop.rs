//! Least privilege: `serve` gives up root once everything privileged is done.
//!
//! What needs root happens in [`crate::serve::Serve::prepare`]: binding ports 67, 69 and 4011
//! (with `SO_BINDTODEVICE`), adding `--address`, setting up NAT. Then [`drop_to`] switches the
//! whole process (it is single-threaded at that point, which is checked) to the service user
//! (`--user`, default [`DEFAULT_USER`], looked up through NSS so that LDAP, sssd and systemd's
//! dynamic users are found) with no supplementary groups, and keeps exactly one capability,
//! and only when it is needed:
//!
//! * `CAP_NET_ADMIN`, when an address was added or NAT is on, because undoing them on exit
//!   (removing the address over rtnetlink, `nft delete table`, restoring
//!   `net.ipv4.ip_forward`) needs it. It is kept effective, permitted, inheritable and
//!   *ambient*, so the `nft` program run for the cleanup inherits it. Nothing else is kept: no `CAP_NET_BIND_SERVICE` (the ports are
//!   bound already), no `CAP_DAC_OVERRIDE` (files are made accessible instead, see below).
//!
//! There is no fallback: a service user that does not exist, or a drop that fails, stops
//! `serve` before it serves; only an explicit `--user root` keeps root.
//!
//! At runtime the daemon then needs only ordinary permissions: the TFTP root readable and
//! searchable by the user (the root directory descriptor is already open), the lease file's
//! directory writable by it (`/var/lib/pocketpxe` and `/run/pocketpxe`, pocketpxe's own
//! directories, and a lease directory `serve` had to create, are handed to the user), and new
//! transfer sockets on port 0 (no privilege). `serve` proves both as the user ([`as_user`]),
//! before it changes anything on the interface, and refuses to start otherwise.
//!
//! Not root to begin with: nothing to drop, [`drop_to`] does nothing.

use std::io;
use std::path::Path;

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
    /// No such user (NSS knows none by that name).
    #[error(
        "user {0} does not exist: name an existing user with --user, or keep root with --user root"
    )]
    UnknownUser(String),
    /// The default service user does not exist.
    #[error(
        "user {DEFAULT_USER} does not exist (serve runs as it once its ports are bound): \
         create it with `useradd --system --no-create-home --shell /usr/sbin/nologin {DEFAULT_USER}`, \
         name another user with --user, or keep root with --user root"
    )]
    NoDefaultUser,
    /// The user database could not be asked.
    #[error("cannot look up user {user}: {error}")]
    Lookup {
        /// The user.
        user: String,
        /// The error NSS reported (part of the message, so not a `source()`).
        error: io::Error,
    },
    /// Threads were already running, so a per-thread credential change would be unsafe.
    #[error(
        "cannot drop privileges: {0} threads are running (bug: drop must happen before any thread starts)"
    )]
    Threads(usize),
    /// A system call failed.
    #[error("cannot drop privileges to {user}: {step}: {error}")]
    Syscall {
        /// The user.
        user: String,
        /// What was being done.
        step: &'static str,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
}

impl ServiceUser {
    /// Looks `name` up through NSS (`getpwnam_r`), like every other service does, so users
    /// from LDAP, sssd or systemd (`DynamicUser=`) are found too.
    ///
    /// # Errors
    /// [`PrivDropError::UnknownUser`] ([`PrivDropError::NoDefaultUser`] for
    /// [`DEFAULT_USER`]), or [`PrivDropError::Lookup`] if NSS fails.
    pub fn lookup(name: &str) -> Result<Self, PrivDropError> {
        use nix::errno::Errno;
        let missing = || {
            if name == DEFAULT_USER {
                PrivDropError::NoDefaultUser
            } else {
                PrivDropError::UnknownUser(name.to_owned())
            }
        };
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Ok(Self {
                name: user.name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            }),
            Ok(None) => Err(missing()),
            // getpwnam_r(3): these also mean "not found" with some NSS modules.
            Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => Err(missing()),
            Err(errno) => Err(PrivDropError::Lookup {
                user: name.to_owned(),
                error: errno.into(),
            }),
        }
    }

    /// The user this process runs as now (effective uid), for messages; named `uid N` if NSS
    /// does not know it.
    pub fn current() -> Self {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |user| user.name);
        Self { name, uid, gid }
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

/// Makes `dir` usable by `user` before the switch: created if missing, and handed to the user
/// (with the files in it) when `serve` created it or when it is one of pocketpxe's own
/// directories (`owned`) that the user cannot write. Any other directory is left as it is:
/// whether the user can write there is proven after the switch, by writing.
///
/// # Errors
/// [`PrivDropError::Syscall`] if creating, inspecting or handing over the directory fails.
pub fn prepare_dir(dir: &Path, user: &ServiceUser, owned: bool) -> Result<(), PrivDropError> {
    use std::os::unix::fs::MetadataExt as _;
    let syscall = |step, source| PrivDropError::Syscall {
        user: user.name.clone(),
        step,
        error: source,
    };
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| syscall("create a state directory", e))?;
    let meta = std::fs::metadata(dir).map_err(|e| syscall("stat a state directory", e))?;
    let mode = meta.mode();
    let writable = (meta.uid() == user.uid && mode & 0o300 == 0o300)
        || (meta.gid() == user.gid && mode & 0o030 == 0o030)
        || mode & 0o003 == 0o003;
    if writable || !(owned || created) {
        return Ok(());
    }
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
        .map_err(|e| syscall("hand a state directory to the service user (chown)", e))?;
    // Files already in it (a lease file, NAT state) must stay readable and replaceable.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::os::unix::fs::chown(entry.path(), Some(user.uid), Some(user.gid));
        }
    }
    Ok(())
}

/// Runs `f` on this thread with the effective user and group of `user` and no supplementary
/// groups, then switches back to root. Inside `f` the kernel judges file access exactly as it
/// will after [`drop_to`]: effective capabilities are cleared while the effective uid is not 0
/// (so `CAP_DAC_OVERRIDE` does not count), and files `f` creates belong to the user. The real
/// and saved uid stay 0, which is what allows the way back. Runs `f` as it is when not root or
/// when `user` is root.
///
/// # Errors
/// [`PrivDropError::Syscall`] if a switch fails (`f` did not run, or ran and switching back
/// failed: the process must not go on then).
pub fn as_user<T>(user: &ServiceUser, f: impl FnOnce() -> T) -> Result<T, PrivDropError> {
    use rustix::process::{Gid, Uid};
    use rustix::thread as t;
    if !running_as_root() || user.is_root() {
        return Ok(f());
    }
    let fail = |step: &'static str| {
        let user = user.name.clone();
        move |e: rustix::io::Errno| PrivDropError::Syscall {
            user,
            step,
            error: e.into(),
        }
    };
    let groups = rustix::process::getgroups().map_err(fail("getgroups"))?;
    let gid = rustix::process::getegid();
    t::set_thread_groups(&[]).map_err(fail("setgroups (temporarily)"))?;
    let switched = t::set_thread_res_gid(None, Gid::from_raw(user.gid), None)
        .and_then(|()| t::set_thread_res_uid(None, Uid::from_raw(user.uid), None));
    let result = switched.map(|()| f());
    // Back on every path, also when the switch failed half-way.
    t::set_thread_res_uid(None, Uid::ROOT, None)
        .and_then(|()| t::set_thread_res_gid(None, gid, None))
        .and_then(|()| t::set_thread_groups(&groups))
        .map_err(fail("switch back to root"))?;
    result.map_err(fail("setresgid/setresuid (temporarily)"))
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
            error: e.into(),
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
            error: io::Error::other("still root after setresuid"),
        });
    }
    Ok(())
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

/// The service user `serve` drops to unless `--user` names another.
pub const DEFAULT_USER: &str = "pocketpxe";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_from_nss() {
        let root = ServiceUser::lookup("root").unwrap();
        assert!(root.is_root());
        assert_eq!((root.name.as_str(), root.gid), ("root", 0));
        let err = ServiceUser::lookup("no-such-user-ppxe")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-user-ppxe") && err.contains("--user"),
            "{err}"
        );
    }

    #[test]
    fn as_user_judges_with_the_users_permissions_then_comes_back() {
        if !running_as_root() {
            eprintln!("SKIP: as_user needs root");
            return;
        }
        let nobody = ServiceUser::lookup("nobody").unwrap();
        let dir = std::env::temp_dir().join(format!("ppxe-as-user-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap(); // root's, 0755
        let groups = rustix::process::getgroups().unwrap();
        let (euid, created) = as_user(&nobody, || {
            (
                rustix::process::geteuid().as_raw(),
                std::fs::write(dir.join("probe"), b"x").map_err(|e| e.kind()),
            )
        })
        .unwrap();
        assert_eq!(euid, nobody.uid);
        assert_eq!(created, Err(io::ErrorKind::PermissionDenied));
        // Root again, with its groups and its capabilities (root may write anywhere).
        assert!(rustix::process::geteuid().is_root());
        assert_eq!(rustix::process::getgroups().unwrap(), groups);
        std::fs::write(dir.join("probe"), b"x").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_default_user_names_the_fix() {
        let err = PrivDropError::NoDefaultUser.to_string();
        assert!(
            err.contains("useradd --system --no-create-home --shell /usr/sbin/nologin pocketpxe")
                && err.contains("--user root"),
            "{err}"
        );
    }
}
