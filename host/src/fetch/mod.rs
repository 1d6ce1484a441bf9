//! `pocketpxe fetch debian`: download Debian's netboot installer, verify it, unpack it safely
//! and write boot menus.
//!
//! Steps, each of which names the URL or file it failed on:
//! 1. Lock the root (one fetch at a time), read our stamp file `.pocketpxe-debian-ARCH.stamp`.
//! 2. Download `dists/DIST/InRelease` (at most 16 MiB) and verify its OpenPGP signature against
//!    the keyring ([`signature`]: Debian's archive keyring unless `--keyring` names another).
//!    The signed Release text must be for DIST (`Codename` or `Suite`) and list the SHA-256 of
//!    `main/installer-ARCH/current/images/SHA256SUMS`.
//! 3. Download that `SHA256SUMS` (at most 1 MiB), check it against the Release's hash, and take
//!    the line for `./netboot/netboot.tar.gz`. With `--no-verify-signature`, step 2 and this
//!    check are skipped, with a warning. If the stamp records that hash and every file it lists
//!    is still there, nothing is downloaded ("already fetched").
//! 4. Download `netboot/netboot.tar.gz` into a work directory inside the root, hashing it on the
//!    way; a hash mismatch deletes it and leaves the root as it was.
//! 5. Unpack into the work directory with [`unpack::unpack_safely`]: no entry may land outside it.
//! 6. Write the boot menus into the unpacked tree ([`menus`]), keeping hand-edited ones.
//! 7. Move the new tree into the root unit by unit (`debian-installer/ARCH` and each top-level
//!    entry), each with one atomic `renameat2(RENAME_EXCHANGE)`. Files of yours inside a replaced
//!    directory are carried over; a file of yours at a path the tarball also has is kept beside
//!    it as `NAME.pocketpxe-saved`. Then the stamp is replaced atomically.
//!
//! Several architectures share one root: each has its own stamp and `debian-installer/ARCH/`;
//! files both tarballs carry at the top (`version.info`) count as upstream for each.
//!
//! Nothing in the root changes before the tarball's hash is verified. By concern: `download`
//! talks to the mirror; [`signature`] checks InRelease; [`verify`] reads the Release's hashes,
//! `SHA256SUMS` and the stamp; [`unpack`] unpacks the tar stream; `install` stages the menus
//! and moves the tree into the root; `dirfd` holds the file operations that never follow a
//! symlink; [`menus`] writes the boot menus' text.

mod dirfd;
mod download;
mod install;
pub mod ipxe;
pub mod live;
pub mod menus;
pub mod signature;
pub mod unpack;
pub mod verify;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

use dirfd::open_dir;
use download::{agent, check_mirror, download, get_bytes};
use install::{WorkDir, install, stage_menu, write_menu};
use menus::{Arch, MenuSpec, MenuWrite, SerialConsole};
use signature::Keyring;
use unpack::{UnpackError, UnpackFailure, UnpackLimits, unpack_safely};
use verify::{Stamp, hex, parse_sha256sums, release_entry};

/// The official Debian mirror, used when `--mirror` is not given.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// What to fetch and where.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Debian release codename or suite, e.g. `bookworm`, `trixie`.
    pub dist: String,
    /// Architecture.
    pub arch: Arch,
    /// Mirror base URL (`http://` or `https://`), e.g. [`DEFAULT_MIRROR`].
    pub mirror: String,
    /// The TFTP root to unpack into (created if missing).
    pub root: PathBuf,
    /// Serial console for the menus.
    pub console: Option<SerialConsole>,
    /// Name this server in GRUB's paths (see [`MenuSpec::tftp_server`]).
    pub tftp_server: Option<Ipv4Addr>,
    /// Whether to ask the mirror when a verified tree is already there.
    pub mode: FetchMode,
    /// What vouches for `SHA256SUMS`.
    pub verification: Verification,
}

/// What vouches for the installer's `SHA256SUMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The mirror's `dists/DIST/InRelease`, verified with this keyring (Debian's archive keyring,
    /// [`signature::DEBIAN_KEYRINGS`], when `None`), lists the SHA-256 of `SHA256SUMS`.
    Signed {
        /// `--keyring FILE`.
        keyring: Option<PathBuf>,
    },
    /// `--no-verify-signature`: `SHA256SUMS` is taken as the mirror sends it (logged as a
    /// warning): whoever controls the mirror or the path to it controls the installer.
    SumsOnly,
}

impl Verification {
    /// From `--keyring FILE` and `--no-verify-signature`.
    pub fn from_flags(keyring: Option<PathBuf>, no_verify_signature: bool) -> Self {
        if no_verify_signature {
            Self::SumsOnly
        } else {
            Self::Signed { keyring }
        }
    }
}

/// When to contact the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// Always read SHA256SUMS; download again when the mirror has a different tarball.
    Check,
    /// Only when no verified tree for this dist and arch is present (`serve --debian`): a
    /// server restart needs no network.
    IfMissing,
}

/// What [`fetch_debian`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The verified SHA-256 of netboot.tar.gz (lowercase hex).
    pub sha256: String,
    /// Whether anything was downloaded.
    pub action: FetchAction,
    /// Each menu file (relative to the root) and what happened to it.
    pub menus: Vec<(String, MenuWrite)>,
    /// Files of yours that sat where the new tree has a file: kept as `PATH.pocketpxe-saved`.
    pub saved: Vec<String>,
}

/// Whether [`fetch_debian`] downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchAction {
    /// Downloaded, verified and unpacked this many bytes of tarball.
    Downloaded {
        /// Size of netboot.tar.gz.
        bytes: u64,
    },
    /// The verified tree was already there: nothing downloaded.
    AlreadyPresent,
}

/// Why a fetch failed. Every variant names the URL or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// A bad `--dist` or `--mirror`.
    #[error("{0}")]
    BadRequest(String),
    /// The HTTP request failed.
    #[error("{url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// SHA256SUMS does not list the tarball properly.
    #[error("{url}: {reason}")]
    Sums {
        /// The SHA256SUMS URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The keyring is missing or unreadable.
    #[error("keyring {path}: {reason}")]
    Keyring {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// InRelease's signature is bad, or by no key of the keyring; nothing was downloaded after it.
    #[error("{url}: signature check failed: {reason}; nothing was changed")]
    Signature {
        /// The InRelease URL.
        url: String,
        /// Which signature or key, and what failed.
        reason: String,
    },
    /// The verified Release is for another dist or does not list the installer's SHA256SUMS.
    #[error("{url}: {reason}; nothing was changed")]
    Release {
        /// The InRelease URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A download's hash is not the one listed for it (SHA256SUMS in InRelease, the tarball in
    /// SHA256SUMS).
    #[error(
        "{url}: SHA-256 mismatch: {listed_in} says {expected}, the download is {actual}; nothing was changed"
    )]
    Mismatch {
        /// The URL of the file that does not match.
        url: String,
        /// Where the expected hash comes from (`InRelease` or `SHA256SUMS`).
        listed_in: String,
        /// The listed hash.
        expected: String,
        /// Of the bytes received.
        actual: String,
    },
    /// The tarball has an entry that must not be unpacked.
    #[error("{archive}: {error}; nothing was changed")]
    Unpack {
        /// The tarball URL.
        archive: String,
        /// The entry and why (part of the message, so not a `source()`).
        error: UnpackError,
    },
    /// Another fetch holds the root.
    #[error(
        "{0}: another pocketpxe fetch is writing into this directory; try again when it is done"
    )]
    Busy(PathBuf),
    /// A file operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error (part of the message, so not a `source()`).
        error: io::Error,
    },
}

/// Fetches Debian's netboot installer into `req.root` and writes its menus.
///
/// # Errors
/// See [`FetchError`]; on any error before the final moves the root is unchanged.
pub fn fetch_debian(req: &FetchRequest) -> Result<FetchReport, FetchError> {
    check_dist(&req.dist)?;
    let mirror = check_mirror(&req.mirror)?;
    let root = &req.root;
    let root_fd = lock_root(root)?;
    let spec = MenuSpec {
        dist: req.dist.clone(),
        arch: req.arch,
        console: req.console.clone(),
        tftp_server: req.tftp_server,
    };
    let stamp_name = stamp_file(req.arch);
    let stamp = Stamp::read(&root.join(&stamp_name));
    let present = stamp
        .as_ref()
        .filter(|s| s.dist == req.dist && s.files_present(root));

    if req.mode == FetchMode::IfMissing
        && let Some(stamp) = present
    {
        return finish_present(root, &root_fd, &spec, &stamp.sha256);
    }

    let dist_url = format!("{mirror}/dists/{}", req.dist);
    let images = format!("main/installer-{}/current/images", req.arch);
    let sums_rel = format!("{images}/SHA256SUMS");
    let sums_url = format!("{dist_url}/{sums_rel}");
    let tar_url = format!("{dist_url}/{images}/netboot/netboot.tar.gz");
    let agent = agent();
    let (sums, verified) = match &req.verification {
        Verification::Signed { keyring } => {
            let keyring = load_keyring(keyring.as_deref())?;
            let inrelease_url = format!("{dist_url}/InRelease");
            let entry = signed_sums_entry(&agent, &keyring, &inrelease_url, &req.dist, &sums_rel)?;
            let sums = get_bytes(&agent, &sums_url, MAX_SUMS_BYTES)?;
            let actual = hex(&Sha256::digest(&sums));
            if actual != entry.sha256 {
                return Err(FetchError::Mismatch {
                    url: sums_url,
                    listed_in: inrelease_url,
                    expected: entry.sha256,
                    actual,
                });
            }
            (sums, entry.signers)
        }
        Verification::SumsOnly => {
            tracing::warn!(
                "--no-verify-signature: {dist_url}/InRelease is not checked; SHA256SUMS is trusted as the mirror sends it, so whoever controls the mirror or the network path to it controls the installer"
            );
            let sums = get_bytes(&agent, &sums_url, MAX_SUMS_BYTES)?;
            (sums, "sha256sums-only".to_owned())
        }
    };
    let sums = String::from_utf8_lossy(&sums);
    let expected =
        parse_sha256sums(&sums, NETBOOT_SUMS_NAME).map_err(|reason| FetchError::Sums {
            url: sums_url.clone(),
            reason,
        })?;
    if let Some(stamp) = present
        && stamp.sha256 == expected
    {
        return finish_present(root, &root_fd, &spec, &expected);
    }

    // Everything new is built in a work directory inside the root (same file system, so the
    // final moves are renames) and removed again however this ends.
    let work = WorkDir::create(root)?;
    let tarball = work.path.join("netboot.tar.gz");
    let (bytes, actual) = download(&agent, &tar_url, &tarball)?;
    if actual != expected {
        return Err(FetchError::Mismatch {
            url: tar_url,
            listed_in: "SHA256SUMS".into(),
            expected,
            actual,
        });
    }
    let staging = work.path.join("tree");
    fs::create_dir(&staging).map_err(|e| io_err(&staging, e))?;
    let file = File::open(&tarball).map_err(|e| io_err(&tarball, e))?;
    let mut manifest = unpack_safely(
        flate2::read::GzDecoder::new(io::BufReader::new(file)),
        &staging,
        UnpackLimits::default(),
    )
    .map_err(|err| match err {
        UnpackFailure::Refused(source) => FetchError::Unpack {
            archive: tar_url.clone(),
            error: source,
        },
        UnpackFailure::Io(source) => io_err(&staging, source),
    })?;
    let required = format!("debian-installer/{}/linux", req.arch);
    if !manifest.contains(&required) {
        return Err(FetchError::Unpack {
            archive: tar_url,
            error: UnpackError {
                entry: required,
                reason: "missing: this is not a Debian netboot tarball".into(),
            },
        });
    }

    let staging_fd = open_dir(&staging).map_err(|e| io_err(&staging, e))?;
    let mut menus_done = Vec::new();
    for (rel, text) in menus::menu_files(&spec) {
        let outcome = stage_menu(&root_fd, &staging_fd, &rel, text.as_bytes())
            .map_err(|e| io_err(&root.join(&rel), e))?;
        if !manifest.contains(&rel) {
            manifest.push(rel.clone());
        }
        menus_done.push((rel, outcome));
    }

    // Upstream files: this architecture's, and the other architectures' sharing the root
    // (their trees share top-level files such as `version.info`).
    let mut old_manifest: HashSet<String> = stamp
        .map(|s| s.files.into_iter().collect())
        .unwrap_or_default();
    for other in [Arch::Amd64, Arch::Arm64] {
        if other != req.arch
            && let Some(s) = Stamp::read(&root.join(stamp_file(other)))
        {
            old_manifest.extend(s.files);
        }
    }
    let saved = install(root, &staging, &work.path.join("old"), &old_manifest)?;
    Stamp {
        sha256: expected.clone(),
        dist: req.dist.clone(),
        arch: req.arch.to_string(),
        url: tar_url,
        verified,
        files: manifest,
    }
    .write(&root_fd, &stamp_name)
    .map_err(|e| io_err(&root.join(&stamp_name), e))?;
    drop(work);
    Ok(FetchReport {
        sha256: expected,
        action: FetchAction::Downloaded { bytes },
        menus: menus_done,
        saved,
    })
}

/// The boot files `serve` should offer after a Debian fetch: `(bios, efi)` relative to the root;
/// `bios` is `None` for architectures without pxelinux.
pub fn debian_boot_files(arch: Arch) -> (Option<String>, String) {
    let bios = arch.has_bios().then(|| "pxelinux.0".to_owned());
    (bios, arch.efi_loader())
}

/// The UEFI client class (RFC 4578 §2.1 architecture type) that boots `arch`'s loader:
/// `efi-x64` (types 7 and 9) for amd64, `efi-arm64` (type 11) for arm64.
pub fn efi_class(arch: Arch) -> pocketpxe_core::dhcp::ClientClass {
    use pocketpxe_core::dhcp::ClientClass;
    match arch {
        Arch::Amd64 => ClientClass::EfiX64,
        Arch::Arm64 => ClientClass::EfiArm64,
    }
}

/// The `pocketpxe serve` command line that boots what `fetch debian` put into `root` for
/// `arches` (`IFACE` stands for the interface). With `tftp_server` (GRUB told to ask this
/// server, for clients behind another DHCP server) it is the proxyDHCP form.
pub fn serve_command(root: &Path, arches: &[Arch], tftp_server: Option<Ipv4Addr>) -> String {
    let mut line = format!(
        "pocketpxe serve --interface IFACE --root {}",
        shell_word(&root.to_string_lossy())
    );
    if tftp_server.is_some() {
        line.push_str(" --mode proxy");
    }
    for arch in arches {
        let (bios, efi) = debian_boot_files(*arch);
        if let Some(bios) = bios {
            line.push_str(&format!(" --boot bios={}", shell_word(&bios)));
        }
        line.push_str(&format!(
            " --boot {}={}",
            efi_class(*arch),
            shell_word(&efi)
        ));
    }
    line
}

/// Writes one generated file (a boot menu or script, with the [`menus::MARKER`] line) at `rel`
/// below `root`, creating its directories; never through a symlink, and a file edited by hand
/// (marker removed) is left alone.
///
/// # Errors
/// When a directory cannot be created or the file written; the error names the file.
pub fn write_generated(root: &Path, rel: &str, text: &str) -> Result<MenuWrite, FetchError> {
    let path = root.join(rel);
    let root_fd = open_dir(root).map_err(|e| io_err(root, e))?;
    let comps: Vec<&str> = rel.split('/').collect();
    let (_, dirs) = comps.split_last().unwrap_or((&"", &[]));
    dirfd::ensure_dirs(&root_fd, dirs).map_err(|reason| io_err(&path, io::Error::other(reason)))?;
    write_menu(&root_fd, rel, text.as_bytes()).map_err(|e| io_err(&path, e))
}

/// Whether a verified Debian tree for `dist`/`arch` is present in `root` (no network).
pub fn debian_present(root: &Path, dist: &str, arch: Arch) -> bool {
    Stamp::read(&root.join(stamp_file(arch)))
        .is_some_and(|s| s.dist == dist && s.files_present(root))
}

// ---- private helpers ----

/// `.pocketpxe-debian-ARCH.stamp`, in the root.
fn stamp_file(arch: Arch) -> String {
    format!(".pocketpxe-debian-{arch}.stamp")
}

/// `word` as one shell word: as it is when it holds only safe characters, else single-quoted.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn load_keyring(path: Option<&Path>) -> Result<Keyring, FetchError> {
    match path {
        Some(path) => Keyring::load(path).map_err(|reason| FetchError::Keyring {
            path: path.to_owned(),
            reason,
        }),
        None => Keyring::debian().map_err(|(path, reason)| FetchError::Keyring { path, reason }),
    }
}

/// The SHA256SUMS entry of a verified InRelease, with the signers as the stamp records them.
struct SignedEntry {
    sha256: String,
    signers: String,
}

/// Downloads and verifies `InRelease`, and returns its SHA-256 for `sums_rel`.
fn signed_sums_entry(
    agent: &ureq::Agent,
    keyring: &Keyring,
    url: &str,
    dist: &str,
    sums_rel: &str,
) -> Result<SignedEntry, FetchError> {
    let bytes = get_bytes(agent, url, MAX_INRELEASE_BYTES).map_err(|err| match err {
        FetchError::Http { url, detail } => FetchError::Http {
            url,
            detail: format!(
                "{detail} (the signed Release file is needed to verify the installer; for a \
                 mirror that has none, --no-verify-signature)"
            ),
        },
        other => other,
    })?;
    let signature = |reason: String| FetchError::Signature {
        url: url.to_owned(),
        reason,
    };
    let text = String::from_utf8(bytes).map_err(|_| signature("not UTF-8 text".into()))?;
    let verified = keyring.verify_clearsigned(&text).map_err(|reason| {
        if reason.starts_with("not signed by any key") {
            signature(format!(
                "{reason} (for a mirror signed with its own key: --keyring FILE)"
            ))
        } else {
            signature(reason)
        }
    })?;
    let entry =
        release_entry(&verified.text, dist, sums_rel).map_err(|reason| FetchError::Release {
            url: url.to_owned(),
            reason,
        })?;
    tracing::info!(
        keyring = %keyring.path.display(),
        "{url}: good signature by {}",
        verified.signers.join(", ")
    );
    Ok(SignedEntry {
        sha256: entry.sha256,
        signers: format!("inrelease {}", verified.signers.join(" ")),
    })
}

fn finish_present(
    root: &Path,
    root_fd: &OwnedFd,
    spec: &MenuSpec,
    sha256: &str,
) -> Result<FetchReport, FetchError> {
    let mut done = Vec::new();
    for (rel, text) in menus::menu_files(spec) {
        let outcome =
            write_menu(root_fd, &rel, text.as_bytes()).map_err(|e| io_err(&root.join(&rel), e))?;
        done.push((rel, outcome));
    }
    Ok(FetchReport {
        sha256: sha256.to_owned(),
        action: FetchAction::AlreadyPresent,
        menus: done,
        saved: Vec::new(),
    })
}

fn check_dist(dist: &str) -> Result<(), FetchError> {
    let ok = !dist.is_empty()
        && dist.len() <= 32
        && dist.starts_with(|c: char| c.is_ascii_lowercase())
        && dist
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FetchError::BadRequest(format!(
            "'{dist}' is not a Debian release name, e.g. bookworm or trixie"
        )))
    }
}

/// Creates `root` if need be and opens it, holding an exclusive lock on it (released when the
/// descriptor is closed) so that two fetches never write one root at once.
fn lock_root(root: &Path) -> Result<OwnedFd, FetchError> {
    fs::create_dir_all(root).map_err(|e| io_err(root, e))?;
    let root_fd = open_dir(root).map_err(|e| io_err(root, e))?;
    match rustix::fs::flock(&root_fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(root_fd),
        Err(Errno::WOULDBLOCK) => Err(FetchError::Busy(root.to_owned())),
        Err(e) => Err(io_err(root, e.into())),
    }
}

fn io_err(path: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        path: path.to_owned(),
        error: source,
    }
}

const NETBOOT_SUMS_NAME: &str = "./netboot/netboot.tar.gz";
const MAX_SUMS_BYTES: u64 = 1 << 20;
const MAX_INRELEASE_BYTES: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// The printed command parses as `serve` flags naming what was fetched.
    #[test]
    fn serve_command_boots_what_was_fetched() {
        use crate::cli::{Cli, Command};
        use clap::Parser as _;
        let parse = |line: &str| {
            // Single quotes only wrap the root here; split on the quoted part by hand.
            let words: Vec<String> = match line.split_once('\'') {
                Some((head, rest)) => {
                    let (quoted, tail) = rest.split_once('\'').unwrap();
                    let mut w: Vec<String> = head.split_whitespace().map(String::from).collect();
                    w.push(quoted.to_owned());
                    w.extend(tail.split_whitespace().map(String::from));
                    w
                }
                None => line.split_whitespace().map(String::from).collect(),
            };
            match Cli::try_parse_from(words).unwrap().command {
                Command::Serve(args) => args,
                other => panic!("{other:?}"),
            }
        };
        let amd64 = serve_command(Path::new("/srv/tftp"), &[Arch::Amd64], None);
        assert_eq!(
            amd64,
            "pocketpxe serve --interface IFACE --root /srv/tftp --boot bios=pxelinux.0 \
             --boot efi-x64=debian-installer/amd64/bootnetx64.efi"
        );
        let args = parse(&amd64);
        assert_eq!(args.tftp_root(), Path::new("/srv/tftp"));
        let boot: Vec<String> = args
            .boot
            .iter()
            .map(|b| format!("{}={}", b.class, b.file))
            .collect();
        assert_eq!(
            boot,
            [
                "bios=pxelinux.0",
                "efi-x64=debian-installer/amd64/bootnetx64.efi"
            ]
        );
        let arm64 = serve_command(
            Path::new("/srv/my boot"),
            &[Arch::Arm64],
            Some("10.0.0.1".parse().unwrap()),
        );
        assert_eq!(
            arm64,
            "pocketpxe serve --interface IFACE --root '/srv/my boot' --mode proxy \
             --boot efi-arm64=debian-installer/arm64/bootnetaa64.efi"
        );
        let args = parse(&arm64);
        assert_eq!(args.tftp_root(), Path::new("/srv/my boot"));
        assert_eq!(args.mode, crate::cli::ServeMode::Proxy);
        // Both: each class gets its architecture's loader.
        let both = serve_command(Path::new("/srv/tftp"), &[Arch::Amd64, Arch::Arm64], None);
        let boot: Vec<String> = parse(&both)
            .boot
            .iter()
            .map(|b| format!("{}={}", b.class, b.file))
            .collect();
        assert_eq!(
            boot,
            [
                "bios=pxelinux.0",
                "efi-x64=debian-installer/amd64/bootnetx64.efi",
                "efi-arm64=debian-installer/arm64/bootnetaa64.efi"
            ]
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn dists() {
        assert!(check_dist("bookworm").is_ok());
        assert!(check_dist("trixie").is_ok());
        assert!(check_dist("../x").is_err());
        assert!(check_dist("Bookworm").is_err());
        assert!(check_dist("").is_err());
    }
}
