//! `pocketpxe status`: the running daemon answers on a Unix socket with its state as JSON
//! (a [`StatusReport`]: interfaces, pools, active transfers, boots under way and recent boots),
//! and the `status` command prints it.
//!
//! The daemon binds the socket while still root (by default
//! `/run/pocketpxe/netns-INODE/status-IFACE.sock`, next to its other runtime state, one per
//! network namespace and interface), with mode 0660 and owned by the service user, so that both
//! root and that user can ask. A client connects and reads one JSON document; it sends nothing.

use crate::serve::timeline::{BootStatus, BootWatch, StatusReport};
use crate::sys::shutdown::Shutdown;
use std::fmt::Write as _;
use std::io::{self, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// The socket `serve --interface IFACE` answers on by default, in this network namespace.
pub fn default_socket(iface: &str) -> PathBuf {
    crate::sys::nat::default_state_dir().join(format!("status-{iface}.sock"))
}

/// Why the status socket could not be set up or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// Binding the socket (or preparing its directory) failed.
    #[error("status socket {}: {error}", .path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// Another daemon answers on the socket.
    #[error("status socket {}: another pocketpxe serve answers there (use --status-socket)", .0.display())]
    InUse(PathBuf),
    /// Asking the daemon failed.
    #[error("cannot read the status from {}: {error}", .path.display())]
    Query {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        error: String,
    },
    /// No daemon socket was found.
    #[error("no pocketpxe serve runs in this network namespace (no daemon answers on a status-*.sock in {}): is it running? Otherwise name its socket with --socket", .0.display())]
    NoDaemon(PathBuf),
}

/// The daemon's listening status socket.
#[derive(Debug)]
pub struct StatusSocket {
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl StatusSocket {
    /// Binds `path` (creating its directory, mode 0755), replacing a stale socket that nobody
    /// answers on, with mode 0660 and owned by `owner` (uid, gid) if given.
    ///
    /// # Errors
    /// [`StatusError::InUse`] if a live daemon answers there, [`StatusError::Bind`] otherwise.
    pub fn bind(path: &Path, owner: Option<(u32, u32)>) -> Result<Self, StatusError> {
        let err = |error| StatusError::Bind {
            path: path.to_owned(),
            error,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(err)?;
        }
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(StatusError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(err)?;
        }
        let listener = std::os::unix::net::UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(err)?;
        }
        listener.set_nonblocking(true).map_err(err)?;
        Ok(Self {
            path: path.to_owned(),
            listener,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers every connection with `watch`'s report until `shutdown`, then removes the
    /// socket.
    pub async fn run(self, watch: BootWatch, mut shutdown: Shutdown) {
        let Self { path, listener } = self;
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(socket = %path.display(), error = %err,
                    "status socket unusable: `pocketpxe status` will not answer");
                return;
            }
        };
        tracing::debug!(socket = %path.display(), "status socket ready");
        loop {
            tokio::select! {
                () = shutdown.requested() => break,
                accepted = listener.accept() => {
                    let Ok((mut stream, _)) = accepted else { continue };
                    let mut json = serde_json::to_vec(&watch.report()).unwrap_or_default();
                    json.push(b'\n');
                    // Bounded: a client that does not read must not hold the server.
                    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&json)).await;
                }
            }
        }
        // As the service user this may be refused; the next start replaces the stale socket.
        let _ = std::fs::remove_file(&path);
    }
}

/// Asks the daemon on `path` for its report.
///
/// # Errors
/// [`StatusError::Query`] naming the socket.
pub fn query(path: &Path) -> Result<StatusReport, StatusError> {
    let fail = |error: String| StatusError::Query {
        path: path.to_owned(),
        error,
    };
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| fail(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| fail(e.to_string()))?;
    let mut text = String::new();
    stream
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| fail(format!("not a status report: {e}")))
}

/// The sockets of the daemons in this network namespace.
///
/// A socket nobody answers on (a daemon that was killed before it could remove it) is skipped.
///
/// # Errors
/// [`StatusError::NoDaemon`] if no daemon answers.
pub fn default_sockets() -> Result<Vec<PathBuf>, StatusError> {
    live_sockets_in(&crate::sys::nat::default_state_dir())
}

/// The report for a person: one block per interface, transfers and boots.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pocketpxe {} (pid {}), serving for {}",
        report.version,
        report.pid,
        span(report.uptime_secs as f64)
    );
    for iface in &report.interfaces {
        let _ = write!(
            out,
            "interface {}: server {}, mode {}",
            iface.name, iface.server, iface.mode
        );
        match &iface.pool {
            Some(pool) => {
                let _ = writeln!(
                    out,
                    ", pool {}-{}: {} addresses, {} used, {} free",
                    pool.start, pool.end, pool.size, pool.used, pool.free
                );
            }
            None => out.push('\n'),
        }
    }
    let _ = writeln!(out, "active transfers: {}", report.transfers.len());
    for t in &report.transfers {
        let _ = writeln!(
            out,
            "  {} {} \"{}\"{} for {}",
            t.client,
            t.mac.as_deref().unwrap_or("-"),
            t.file,
            t.size.map(|s| format!(" ({s} bytes)")).unwrap_or_default(),
            span(t.running_secs)
        );
    }
    let _ = writeln!(out, "boots under way: {}", report.active_boots.len());
    for boot in &report.active_boots {
        let _ = writeln!(out, "  {}", boot_line(boot));
    }
    let _ = writeln!(out, "recent boots: {}", report.recent_boots.len());
    for boot in &report.recent_boots {
        let _ = writeln!(out, "  {}", boot_line(boot));
    }
    if report.dropped_boots > 0 {
        let _ = writeln!(
            out,
            "boots not followed (too many clients at once): {}",
            report.dropped_boots
        );
    }
    out
}

fn boot_line(boot: &BootStatus) -> String {
    let mut line = format!("{} {}", boot.outcome, boot.mac.as_deref().unwrap_or("-"));
    if let Some(class) = &boot.class {
        let _ = write!(line, " {class}");
    }
    if let Some(ip) = boot.ip {
        let _ = write!(line, " {ip}");
    }
    if let Some(host) = &boot.hostname {
        let _ = write!(line, " \"{host}\"");
    }
    let _ = write!(line, " {}", span(boot.seconds));
    if !boot.files.is_empty() {
        let files: Vec<String> = boot
            .files
            .iter()
            .map(|f| format!("{} {} bytes {}", f.path, f.bytes, f.state))
            .collect();
        let _ = write!(line, ": {}", files.join(", "));
    }
    line
}

fn span(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = secs as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The `status-*.sock` files in `dir` that a daemon answers on, sorted.
fn live_sockets_in(dir: &Path) -> Result<Vec<PathBuf>, StatusError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("status-") && n.ends_with(".sock"))
                })
                .filter(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        return Err(StatusError::NoDaemon(dir.to_owned()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_nobody_answers_on_is_skipped() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let live = dir.join("status-eth0.sock");
        let stale = dir.join("status-eth1.sock");
        let _ = std::fs::remove_file(&live);
        let _ = std::fs::remove_file(&stale);
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(
            stale.exists(),
            "a dropped listener leaves its file behind, as SIGKILL does"
        );
        assert_eq!(live_sockets_in(&dir).unwrap(), vec![live.clone()]);
        std::fs::remove_file(&live).unwrap();
        assert!(matches!(live_sockets_in(&dir), Err(StatusError::NoDaemon(d)) if d == dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
