//! The lease file: DHCP leases saved across restarts, durable before each DHCPACK.
//!
//! Format (text, one record a line, `#` comments):
//! ```text
//! # pocketpxe leases v2: MAC IP EXPIRES (unix seconds); appended: a later line for an IP replaces earlier ones, EXPIRES 0 removes it
//! 52:54:00:a5:00:01 192.168.242.88 1764111111
//! 52:54:00:a5:00:01 192.168.242.88 1764114711
//! 52:54:00:a5:00:01 192.168.242.88 0
//! ```
//! The file is a journal. [`LeaseFile::rewrite`] compacts it: it writes the whole table to a
//! temporary file beside the real one, `fsync`s it, renames it over the old one and `fsync`s
//! the directory, so a crash at any moment leaves either the old or the new file. Between
//! compactions, [`LeaseJournal::append`] adds the changed leases of a batch with one `write`
//! and one `fdatasync`: one durable write per batch of DHCP replies, however large the table.
//! A crash (or power loss) inside an append can leave a last line without its newline; that
//! line was never confirmed durable, so no client was told about it, and [`LeaseFile::load`]
//! ignores it. v1 files (no repeated addresses, no removals) read the same way.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::metrics::LeaseFileMetrics;
use crate::sys::netif::{format_mac, parse_mac};

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
    #[error("lease file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
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

/// The first line of every file written (v2: a journal).
const HEADER: &str = "# pocketpxe leases v2: MAC IP EXPIRES (unix seconds); appended: a later line for an \
                      IP replaces earlier ones, EXPIRES 0 removes it\n";

/// A lease file at a fixed path.
#[derive(Debug, Clone)]
pub struct LeaseFile {
    path: PathBuf,
    metrics: Option<LeaseFileMetrics>,
}

impl LeaseFile {
    /// The lease file at `path` (not touched yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            metrics: None,
        }
    }

    /// Records the latency of every write and sync in `metrics`.
    pub fn with_metrics(mut self, metrics: LeaseFileMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the leases: the journal replayed, later lines replacing earlier ones for the same
    /// address, `EXPIRES 0` removing it; in the order each address first appears. A missing
    /// file is an empty list; a last line without its newline (an append cut short by a crash,
    /// never confirmed to any client) is ignored with a warning.
    ///
    /// # Errors
    /// [`LeaseFileError::Io`] if the file cannot be read, [`LeaseFileError::Syntax`] naming the
    /// first bad line.
    pub fn load(&self) -> Result<Vec<LeaseRecord>, LeaseFileError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io(source)),
        };
        let complete = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        let (whole, torn) = bytes.split_at(complete);
        if !torn.is_empty() {
            tracing::warn!(file = %self.path.display(), bytes = torn.len(),
                "lease file ends in a partly written line (a write cut short by a crash): ignored");
        }
        let whole = std::str::from_utf8(whole).map_err(|e| LeaseFileError::Syntax {
            path: self.path.clone(),
            line: 1 + whole[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            reason: "not UTF-8 text".to_owned(),
        })?;
        // Address -> (line where it (re)appeared, its latest record).
        let mut latest: HashMap<Ipv4Addr, (usize, LeaseRecord)> = HashMap::new();
        for (index, line) in whole.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let record = self.parse_line(line, index + 1)?;
            if record.expires_unix == 0 {
                latest.remove(&record.ip);
            } else {
                let first = latest.get(&record.ip).map_or(index, |&(first, _)| first);
                latest.insert(record.ip, (first, record));
            }
        }
        let mut leases: Vec<(usize, LeaseRecord)> = latest.into_values().collect();
        leases.sort_unstable_by_key(|&(first, _)| first);
        Ok(leases.into_iter().map(|(_, record)| record).collect())
    }

    fn parse_line(&self, line: &str, number: usize) -> Result<LeaseRecord, LeaseFileError> {
        let syntax = |reason: &str| LeaseFileError::Syntax {
            path: self.path.clone(),
            line: number,
            reason: reason.to_owned(),
        };
        let mut words = line.split_whitespace();
        let (Some(mac), Some(ip), Some(expires), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(syntax("expected: MAC IP EXPIRES"));
        };
        Ok(LeaseRecord {
            mac: parse_mac(mac).ok_or_else(|| syntax("bad MAC address"))?,
            ip: ip.parse().map_err(|_| syntax("bad IPv4 address"))?,
            expires_unix: expires
                .parse()
                .map_err(|_| syntax("bad expiry (unix seconds)"))?,
        })
    }

    /// Compacts: replaces the file with exactly `leases`, atomically and durably (see the
    /// module docs), creating the parent directory if needed, and opens it for
    /// [`LeaseJournal::append`].
    ///
    /// # Errors
    /// [`LeaseFileError::Io`]; the old file is then unchanged.
    pub fn rewrite(&self, leases: &[LeaseRecord]) -> Result<LeaseJournal, LeaseFileError> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| self.io(e))?;
        let mut text = String::from(HEADER);
        text.reserve(leases.len() * 48);
        for lease in leases {
            push_line(&mut text, lease);
        }
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let mut took = (Duration::ZERO, Duration::ZERO);
        let mut write = || -> io::Result<File> {
            let started = Instant::now();
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            let written = Instant::now();
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()?;
            took = (written - started, written.elapsed());
            // The same inode, now under the real name: appends go to the file just renamed.
            OpenOptions::new().append(true).open(&self.path)
        };
        let file = write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io(e)
        })?;
        if let Some(metrics) = &self.metrics {
            metrics.rewritten(took.0, took.1);
        }
        let meta = file.metadata().map_err(|e| self.io(e))?;
        Ok(LeaseJournal {
            file,
            id: (meta.dev(), meta.ino()),
            path: self.path.clone(),
            lines: leases.len(),
            text: String::new(),
            metrics: self.metrics.clone(),
        })
    }

    /// Replaces the file with `leases` (a [`LeaseFile::rewrite`] whose journal is not kept).
    ///
    /// # Errors
    /// [`LeaseFileError::Io`]; the old file is then unchanged.
    pub fn save(&self, leases: &[LeaseRecord]) -> Result<(), LeaseFileError> {
        self.rewrite(leases).map(drop)
    }

    fn io(&self, source: io::Error) -> LeaseFileError {
        LeaseFileError::Io {
            path: self.path.clone(),
            error: source,
        }
    }
}

/// The lease file open for appending, from [`LeaseFile::rewrite`].
#[derive(Debug)]
pub struct LeaseJournal {
    file: File,
    /// Device and inode of `file`.
    id: (u64, u64),
    path: PathBuf,
    /// Records in the file (live or superseded): when to compact.
    lines: usize,
    /// Reused for each append.
    text: String,
    metrics: Option<LeaseFileMetrics>,
}

impl LeaseJournal {
    /// Appends `changes` (a lease granted or renewed, or `expires_unix: 0` for one gone) with
    /// one `write` and one `fdatasync`: when this returns `Ok`, they survive a crash or power
    /// loss. Nothing to append is a no-op.
    ///
    /// # Errors
    /// [`LeaseFileError::Io`]. The file may then end in a torn line, which
    /// [`LeaseFile::load`] ignores; drop this journal and [`LeaseFile::rewrite`] before
    /// appending again, or the next record would continue the torn line.
    pub fn append(&mut self, changes: &[LeaseRecord]) -> Result<(), LeaseFileError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.text.clear();
        for change in changes {
            push_line(&mut self.text, change);
        }
        let started = Instant::now();
        let written = self.file.write_all(self.text.as_bytes()).and_then(|()| {
            let written = Instant::now();
            self.file.sync_data()?;
            Ok(written)
        });
        let written = written.map_err(|source| LeaseFileError::Io {
            path: self.path.clone(),
            error: source,
        })?;
        if let Some(metrics) = &self.metrics {
            metrics.appended(written - started, written.elapsed());
        }
        self.lines += changes.len();
        Ok(())
    }

    /// Whether the lease file's path still names the file this journal appends to (false
    /// once someone removed, moved or replaced it: appends would then be lost on restart, so
    /// the caller compacts with [`LeaseFile::rewrite`] instead).
    pub fn is_current(&self) -> bool {
        fs::metadata(&self.path).is_ok_and(|meta| (meta.dev(), meta.ino()) == self.id)
    }

    /// Records in the file, superseded ones included.
    pub fn lines(&self) -> usize {
        self.lines
    }
}

fn push_line(text: &mut String, lease: &LeaseRecord) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        text,
        "{} {} {}",
        format_mac(&lease.mac),
        lease.ip,
        lease.expires_unix
    );
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

    #[test]
    fn writes_and_syncs_are_timed_when_metrics_are_on() {
        let dir = temp_dir("timed");
        let metrics = crate::metrics::Metrics::new();
        let file = LeaseFile::new(dir.join("leases")).with_metrics(metrics.lease_file("eth9"));
        let lease = LeaseRecord {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Ipv4Addr::new(10, 0, 0, 10),
            expires_unix: 100,
        };
        let mut journal = file.rewrite(&[lease]).unwrap();
        journal.append(&[lease]).unwrap();
        journal.append(&[lease]).unwrap();
        journal.append(&[]).unwrap();
        let text = metrics.encode();
        for (series, count) in [
            ("write_seconds_count{interface=\"eth9\",op=\"rewrite\"} ", 1),
            ("fsync_seconds_count{interface=\"eth9\",op=\"rewrite\"} ", 1),
            ("write_seconds_count{interface=\"eth9\",op=\"append\"} ", 2),
            ("fsync_seconds_count{interface=\"eth9\",op=\"append\"} ", 2),
        ] {
            let line = format!("pocketpxe_lease_file_{series}{count}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn journal_appends_replay_in_order_and_survive_a_torn_tail() {
        let dir = temp_dir("journal");
        let file = LeaseFile::new(dir.join("leases"));
        let lease = |last: u8, ip: u8, expires_unix: u64| LeaseRecord {
            mac: [2, 0, 0, 0, 0, last],
            ip: Ipv4Addr::new(10, 0, 0, ip),
            expires_unix,
        };
        let mut journal = file.rewrite(&[lease(1, 10, 100)]).unwrap();
        journal
            .append(&[lease(2, 11, 200), lease(3, 12, 300)])
            .unwrap();
        journal
            .append(&[lease(1, 10, 150), lease(2, 11, 0)])
            .unwrap();
        journal.append(&[]).unwrap();
        assert_eq!(journal.lines(), 5);
        assert_eq!(
            file.load().unwrap(),
            vec![lease(1, 10, 150), lease(3, 12, 300)],
            "renewed in place, removed, order of first appearance"
        );
        // An address removed and granted again counts from its new line.
        journal.append(&[lease(4, 11, 400)]).unwrap();
        assert_eq!(
            file.load().unwrap(),
            vec![lease(1, 10, 150), lease(3, 12, 300), lease(4, 11, 400)]
        );
        // A crash inside an append: the partial last line (even bytes that are not UTF-8) is
        // ignored, the rest stands.
        let mut raw = fs::read(file.path()).unwrap();
        raw.extend_from_slice(b"02:00:00:00:00:05 10.0.0.1\xff");
        fs::write(file.path(), &raw).unwrap();
        assert_eq!(file.load().unwrap().len(), 3);
        // Compaction leaves exactly the live leases under the v2 header.
        let live = file.load().unwrap();
        let journal = file.rewrite(&live).unwrap();
        assert_eq!(journal.lines(), 3);
        let text = fs::read_to_string(file.path()).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert_eq!(file.load().unwrap(), live);
        assert!(journal.is_current());
        fs::rename(file.path(), dir.join("moved")).unwrap();
        assert!(!journal.is_current(), "moved away");
        file.save(&live).unwrap();
        assert!(!journal.is_current(), "replaced by another file");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn version_1_files_still_load_and_bad_bytes_mid_file_are_named() {
        let dir = temp_dir("v1");
        let path = dir.join("leases");
        fs::write(
            &path,
            "# pocketpxe leases v1: MAC IP EXPIRES (unix seconds)\n\
             52:54:00:a5:00:01 192.168.242.88 1764111111\n",
        )
        .unwrap();
        assert_eq!(
            LeaseFile::new(&path).load().unwrap(),
            vec![LeaseRecord {
                mac: [0x52, 0x54, 0, 0xa5, 0, 1],
                ip: Ipv4Addr::new(192, 168, 242, 88),
                expires_unix: 1_764_111_111,
            }]
        );
        fs::write(
            &path,
            b"# c\n\xff\xfe 1.2.3.4 5\n52:54:00:a5:00:01 10.0.0.1 5\n",
        )
        .unwrap();
        let err = LeaseFile::new(&path).load().unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }
}
