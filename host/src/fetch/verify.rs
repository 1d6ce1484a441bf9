//! Knowing what was fetched: the tarball's expected hash from the mirror's `SHA256SUMS`, and
//! the stamp file that records a verified, unpacked tree so that it is not fetched again.

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

/// `.pocketpxe-debian-ARCH.stamp`: what was verified and unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) sha256: String,
    pub(super) dist: String,
    pub(super) arch: String,
    pub(super) url: String,
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
            files: Vec::new(),
        };
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "sha256" => stamp.sha256 = value.to_owned(),
                "dist" => stamp.dist = value.to_owned(),
                "arch" => stamp.arch = value.to_owned(),
                "url" => stamp.url = value.to_owned(),
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
            "# pocketpxe: the verified netboot.tar.gz unpacked here. Delete this file to fetch again.\nsha256 {}\ndist {}\narch {}\nurl {}\n",
            self.sha256, self.dist, self.arch, self.url
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
    fn stamp_round_trip() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fd = open_dir(&dir).unwrap();
        let stamp = Stamp {
            sha256: "c".repeat(64),
            dist: "bookworm".into(),
            arch: "amd64".into(),
            url: "http://127.0.0.1:1/x".into(),
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
