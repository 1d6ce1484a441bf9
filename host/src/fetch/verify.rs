//! Knowing what was fetched: the `SHA256SUMS` entry a verified `Release` file lists, the
//! tarball's expected hash from `SHA256SUMS`, and the stamp file that records a verified,
//! unpacked tree so that it is not fetched again.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use super::dirfd::write_atomic_at;

/// The expected SHA-256 (lowercase hex) of `name` in a `SHA256SUMS` file (`HASH  NAME` lines,
/// `HASH *NAME` for binary mode). `./x` and `x` name the same file.
///
/// # Errors
/// The file is missing from the list, listed twice with different hashes, or its hash is not
/// 64 hex digits.
pub fn parse_sha256sums(text: &str, name: &str) -> Result<String, String> {
    let want = name.strip_prefix("./").unwrap_or(name);
    let mut found: Option<String> = None;
    for line in text.lines() {
        let Some((hash, file)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let file = file.trim_start_matches([' ', '\t']);
        let file = file.strip_prefix('*').unwrap_or(file).trim_end();
        if file.strip_prefix("./").unwrap_or(file) != want {
            continue;
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "the hash for {name} is not 64 hex digits: '{hash}'"
            ));
        }
        let hash = hash.to_ascii_lowercase();
        match &found {
            Some(other) if *other != hash => {
                return Err(format!("{name} is listed twice with different hashes"));
            }
            _ => found = Some(hash),
        }
    }
    found.ok_or_else(|| format!("no line for {name}"))
}

/// A file's entry in the `SHA256:` field of a Debian `Release` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Lowercase hex.
    pub sha256: String,
    /// In bytes.
    pub size: u64,
}

/// Checks that a (verified) Debian `Release` text is for `dist` (its `Codename` or `Suite`
/// field) and returns the `SHA256:` entry for `path` (relative to `dists/DIST/`).
///
/// # Errors
/// The release is for another dist, or `path` is missing, listed twice differently, or
/// malformed.
pub fn release_entry(release: &str, dist: &str, path: &str) -> Result<ReleaseEntry, String> {
    let field = |name: &str| {
        release
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let (codename, suite) = (field("Codename"), field("Suite"));
    if codename != Some(dist) && suite != Some(dist) {
        return Err(format!(
            "it is the Release of {} (Codename {}, Suite {}), not of {dist}",
            codename.or(suite).unwrap_or("an unnamed dist"),
            codename.unwrap_or("-"),
            suite.unwrap_or("-"),
        ));
    }
    let mut found: Option<ReleaseEntry> = None;
    let mut in_sha256 = false;
    for line in release.lines() {
        if !line.starts_with([' ', '\t']) {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if !in_sha256 {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(hash), Some(size), Some(file), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if file != path {
            continue;
        }
        let (Ok(size), true) = (
            size.parse::<u64>(),
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        ) else {
            return Err(format!(
                "its SHA256 entry for {path} is malformed: '{line}'"
            ));
        };
        let entry = ReleaseEntry {
            sha256: hash.to_ascii_lowercase(),
            size,
        };
        match &found {
            Some(other) if *other != entry => {
                return Err(format!("it lists {path} twice with different hashes"));
            }
            _ => found = Some(entry),
        }
    }
    found.ok_or_else(|| format!("it lists no SHA256 for {path}"))
}

/// `.pocketpxe-debian-ARCH.stamp`: what was verified and unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) sha256: String,
    pub(super) dist: String,
    pub(super) arch: String,
    pub(super) url: String,
    /// How the hash was vouched for: `inrelease FINGERPRINT…` or `sha256sums-only`.
    pub(super) verified: String,
    pub(super) files: Vec<String>,
}

impl Stamp {
    /// The stamp, or `None` if missing or unreadable (then everything is fetched again).
    pub(super) fn read(path: &Path) -> Option<Self> {
        let text = fs::read_to_string(path).ok()?;
        let mut stamp = Self {
            sha256: String::new(),
            dist: String::new(),
            arch: String::new(),
            url: String::new(),
            verified: String::new(),
            files: Vec::new(),
        };
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "sha256" => stamp.sha256 = value.to_owned(),
                "dist" => stamp.dist = value.to_owned(),
                "arch" => stamp.arch = value.to_owned(),
                "url" => stamp.url = value.to_owned(),
                "verified" => stamp.verified = value.to_owned(),
                "file" => stamp.files.push(value.to_owned()),
                _ => {}
            }
        }
        (stamp.sha256.len() == 64 && !stamp.files.is_empty()).then_some(stamp)
    }

    pub(super) fn files_present(&self, root: &Path) -> bool {
        self.files
            .iter()
            .all(|f| fs::symlink_metadata(root.join(f)).is_ok())
    }

    pub(super) fn write(&self, root_fd: &OwnedFd, name: &str) -> io::Result<()> {
        let mut text = format!(
            "# pocketpxe: the verified netboot.tar.gz unpacked here. Delete this file to fetch again.\nsha256 {}\ndist {}\narch {}\nurl {}\nverified {}\n",
            self.sha256, self.dist, self.arch, self.url, self.verified
        );
        for file in &self.files {
            text.push_str("file ");
            text.push_str(file);
            text.push('\n');
        }
        write_atomic_at(root_fd, name, text.as_bytes())
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::dirfd::open_dir;

    const NETBOOT_SUMS_NAME: &str = "./netboot/netboot.tar.gz";

    #[test]
    fn sums_are_parsed() {
        let hash = "a".repeat(64);
        let other = "b".repeat(64);
        let text = format!(
            "{other}  ./cdrom/initrd.gz\n{hash}  ./netboot/netboot.tar.gz\n{other}  ./netboot/debian-installer/amd64/linux\n"
        );
        assert_eq!(parse_sha256sums(&text, NETBOOT_SUMS_NAME), Ok(hash.clone()));
        // binary-mode marker, no ./ prefix, upper case, CRLF
        let text = format!("{}  *netboot/netboot.tar.gz\r\n", hash.to_uppercase());
        assert_eq!(parse_sha256sums(&text, NETBOOT_SUMS_NAME), Ok(hash.clone()));
        assert!(
            parse_sha256sums(&format!("{hash}  ./netboot/mini.iso\n"), NETBOOT_SUMS_NAME)
                .unwrap_err()
                .contains("no line")
        );
        assert!(
            parse_sha256sums("abc  ./netboot/netboot.tar.gz\n", NETBOOT_SUMS_NAME)
                .unwrap_err()
                .contains("64 hex")
        );
        let twice =
            format!("{hash}  ./netboot/netboot.tar.gz\n{other}  ./netboot/netboot.tar.gz\n");
        assert!(
            parse_sha256sums(&twice, NETBOOT_SUMS_NAME)
                .unwrap_err()
                .contains("twice")
        );
        // a similar name is not the file
        let similar = format!("{hash}  ./netboot/netboot.tar.gz.sig\n");
        assert!(parse_sha256sums(&similar, NETBOOT_SUMS_NAME).is_err());
        assert!(parse_sha256sums("", NETBOOT_SUMS_NAME).is_err());
    }

    #[test]
    fn release_entries() {
        let sums = "main/installer-amd64/current/images/SHA256SUMS";
        let hash = "8e0a94d8488f7c60f5fe6723e69b450ec5d7000f592ccdb169481f4bfe863b62";
        let release = format!(
            "Origin: Debian\nSuite: oldstable\nCodename: bookworm\nMD5Sum:\n {}    78509 {sums}\nSHA256:\n {}  1 main/x\n {}    78509 {sums}\n",
            "8bda4ce4f0530ae601d1d7a7c47eb927",
            "1".repeat(64),
            hash.to_uppercase()
        );
        let want = ReleaseEntry {
            sha256: hash.into(),
            size: 78509,
        };
        assert_eq!(release_entry(&release, "bookworm", sums), Ok(want.clone()));
        assert_eq!(release_entry(&release, "oldstable", sums), Ok(want));
        let other = release_entry(&release, "trixie", sums).unwrap_err();
        assert!(
            other.contains("Codename bookworm") && other.contains("not of trixie"),
            "{other}"
        );
        // Only the SHA256 field counts, not MD5Sum.
        let md5_only = release.replace(&format!(" {}    78509 {sums}\n", hash.to_uppercase()), "");
        assert!(
            release_entry(&md5_only, "bookworm", sums)
                .unwrap_err()
                .contains("no SHA256")
        );
        // A similar path is not the file.
        assert!(
            release_entry(
                &release,
                "bookworm",
                "main/installer-amd64/current/images/SHA256"
            )
            .is_err()
        );
        let twice = format!("{release} {}    78509 {sums}\n", "2".repeat(64));
        assert!(
            release_entry(&twice, "bookworm", sums)
                .unwrap_err()
                .contains("twice")
        );
        let bad = format!("Codename: bookworm\nSHA256:\n zz 5 {sums}\n");
        assert!(
            release_entry(&bad, "bookworm", sums)
                .unwrap_err()
                .contains("malformed")
        );
    }

    #[test]
    fn stamp_round_trip() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fd = open_dir(&dir).unwrap();
        let stamp = Stamp {
            sha256: "c".repeat(64),
            dist: "bookworm".into(),
            arch: "amd64".into(),
            url: "http://127.0.0.1:1/x".into(),
            verified: "inrelease ABCD".into(),
            files: vec!["version.info".into(), "a b/c".into()],
        };
        stamp.write(&fd, "s.stamp").unwrap();
        assert_eq!(Stamp::read(&dir.join("s.stamp")), Some(stamp.clone()));
        assert!(!stamp.files_present(&dir));
        fs::write(dir.join("version.info"), "x").unwrap();
        fs::create_dir_all(dir.join("a b")).unwrap();
        fs::write(dir.join("a b/c"), "x").unwrap();
        assert!(stamp.files_present(&dir));
        fs::write(dir.join("s.stamp"), "garbage").unwrap();
        assert_eq!(Stamp::read(&dir.join("s.stamp")), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
