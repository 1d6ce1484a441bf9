//! The lease file: DHCP leases saved across restarts, replaced atomically.
//!
//! Format (text, one lease a line, `#` comments):
//! ```text
//! # pocketpxe leases v1: MAC IP EXPIRES (unix seconds)
//! 52:54:00:a5:00:01 192.168.242.88 1764111111
//! ```
//! [`LeaseFile::save`] writes a temporary file beside the real one, `fsync`s it, renames it over
//! the old one and `fsync`s the directory, so a crash at any moment leaves either the old or the
//! new file, never a torn one.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::netif::{format_mac, parse_mac};

/// One saved lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The client's hardware address.
    pub mac: [u8; 6],
    /// The address leased.
    pub ip: Ipv4Addr,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_unix: u64,
}

/// Why the lease file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseFileError {
    /// Reading or writing failed.
    #[error("lease file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line does not parse.
    #[error("lease file {path}, line {line}: {reason} (fix or remove the line)")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A lease file at a fixed path.
#[derive(Debug, Clone)]
pub struct LeaseFile {
    path: PathBuf,
}

impl LeaseFile {
    /// The lease file at `path` (not touched yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every lease; a missing file is an empty list.
    ///
    /// # Errors
    /// [`LeaseFileError::Io`] if the file cannot be read, [`LeaseFileError::Syntax`] naming the
    /// first bad line.
    pub fn load(&self) -> Result<Vec<LeaseRecord>, LeaseFileError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io(source)),
        };
        let mut leases = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |reason: &str| LeaseFileError::Syntax {
                path: self.path.clone(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            let mut words = line.split_whitespace();
            let (Some(mac), Some(ip), Some(expires), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(syntax("expected: MAC IP EXPIRES"));
            };
            leases.push(LeaseRecord {
                mac: parse_mac(mac).ok_or_else(|| syntax("bad MAC address"))?,
                ip: ip.parse().map_err(|_| syntax("bad IPv4 address"))?,
                expires_unix: expires
                    .parse()
                    .map_err(|_| syntax("bad expiry (unix seconds)"))?,
            });
        }
        Ok(leases)
    }

    /// Replaces the file with `leases`, atomically and durably (see the module docs). Creates
    /// the parent directory if needed.
    ///
    /// # Errors
    /// [`LeaseFileError::Io`]; the old file is then unchanged.
    pub fn save(&self, leases: &[LeaseRecord]) -> Result<(), LeaseFileError> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| self.io(e))?;
        let mut text = String::from("# pocketpxe leases v1: MAC IP EXPIRES (unix seconds)\n");
        text.reserve(leases.len() * 48);
        for lease in leases {
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "{} {} {}",
                format_mac(&lease.mac),
                lease.ip,
                lease.expires_unix
            );
        }
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io(e)
        })
    }

    fn io(&self, source: io::Error) -> LeaseFileError {
        LeaseFileError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pocketpxe-leases-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn save_then_load_round_trips_and_replaces() {
        let dir = temp_dir("rt");
        let file = LeaseFile::new(dir.join("sub/leases"));
        assert_eq!(file.load().unwrap(), vec![], "missing file is empty");
        let a = LeaseRecord {
            mac: [0x52, 0x54, 0, 0xa5, 0, 1],
            ip: Ipv4Addr::new(192, 168, 242, 88),
            expires_unix: 1_764_111_111,
        };
        let b = LeaseRecord {
            mac: [2, 0, 0, 0, 0, 2],
            ip: Ipv4Addr::new(192, 168, 242, 2),
            expires_unix: 42,
        };
        file.save(&[a, b]).unwrap();
        assert_eq!(file.load().unwrap(), vec![a, b]);
        file.save(&[b]).unwrap();
        assert_eq!(file.load().unwrap(), vec![b]);
        assert!(
            !dir.join("sub/leases.tmp").exists(),
            "no temporary file left"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = temp_dir("bad");
        let path = dir.join("leases");
        fs::write(
            &path,
            "# c\n52:54:00:a5:00:01 192.168.242.88 5\nzz 1.2.3.4 5\n",
        )
        .unwrap();
        let err = LeaseFile::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("bad MAC"), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        fs::write(&path, "52:54:00:a5:00:01 192.168.242.88\n").unwrap();
        assert!(LeaseFile::new(&path).load().is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
