//! `pocketpxe fetch live`: a live netboot set (kernel, initrd, squashfs root) for diskless
//! clients, verified like `fetch debian`.
//!
//! The set is a directory URL with a `SHA256SUMS` file listing the three files; Debian's live
//! images on cdimage.debian.org publish `SHA256SUMS` with a detached signature
//! `SHA256SUMS.sign` by the Debian CD signing key (in the `debian-keyring` package,
//! [`DEBIAN_CD_KEYRINGS`]). A file counts as
//! * the kernel when its name ends in `vmlinuz`,
//! * the initrd when it ends in `initrd.img`,
//! * the root when it ends in `squashfs` (`filesystem.squashfs` beside a bare `vmlinuz`),
//!
//! and what comes before those endings (`debian-live-12.9.0-amd64-standard.`, `live/`, or
//! nothing) names the set; a directory with several sets needs `--name`.
//!
//! Steps: download `SHA256SUMS` (at most 1 MiB) and verify `SHA256SUMS.sign` over it with the
//! keyring (skipped with `--no-verify-signature`, with a warning); pick the set; download each
//! file that is not already there with that hash into a work directory inside the root,
//! hashing on the way (a mismatch deletes it and changes nothing); then rename the three into
//! `DEST/vmlinuz`, `DEST/initrd.img` and `DEST/filesystem.squashfs`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::dirfd::ensure_dirs;
use super::download::{agent, check_mirror, download, get_bytes};
use super::install::WorkDir;
use super::signature::Keyring;
use super::verify::hex;
use super::{FetchError, Verification, io_err, lock_root};

/// Where the `debian-keyring` package puts the keys of Debian's roles and members, the
/// "Debian GPG keyring" that the Debian CD signing key (which signs the live images'
/// `SHA256SUMS`) belongs to. Every one of them that exists is read (binary keyrings, one after
/// the other).
pub const DEBIAN_CD_KEYRINGS: [&str; 4] = [
    "/usr/share/keyrings/debian-role-keys.pgp",
    "/usr/share/keyrings/debian-role-keys.gpg",
    "/usr/share/keyrings/debian-keyring.pgp",
    "/usr/share/keyrings/debian-keyring.gpg",
];

/// The names the set gets under `DEST`: (kernel, initrd, root image).
pub const LIVE_FILES: [&str; 3] = ["vmlinuz", "initrd.img", "filesystem.squashfs"];

/// What to fetch and where.
#[derive(Debug, Clone)]
pub struct LiveRequest {
    /// The directory URL holding `SHA256SUMS` and the set (`http://` or `https://`).
    pub url: String,
    /// Which set, when the directory holds several (e.g. `debian-live-12.9.0-amd64-standard`).
    pub name: Option<String>,
    /// The boot root.
    pub root: PathBuf,
    /// The directory under the root the set goes into, e.g. `live`.
    pub dest: String,
    /// What vouches for `SHA256SUMS` (its keyring defaults to [`DEBIAN_CD_KEYRINGS`]).
    pub verification: Verification,
}

/// What [`fetch_live`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveReport {
    /// The set's name (what comes before the file endings, may be empty).
    pub set: String,
    /// Per file, relative to the root: its verified SHA-256 and the bytes downloaded (0 when it
    /// was already there).
    pub files: Vec<(String, String, u64)>,
    /// Who vouched for `SHA256SUMS`: signer fingerprints, or `sha256sums-only`.
    pub verified: String,
}

/// Fetches a live set into `req.root/req.dest`.
///
/// # Errors
/// See [`FetchError`]; every error names the URL or file, and leaves the set as it was.
pub fn fetch_live(req: &LiveRequest) -> Result<LiveReport, FetchError> {
    let base = check_mirror(&req.url)?;
    let dest = check_rel(&req.dest)?;
    let root = &req.root;
    let root_fd = lock_root(root)?;
    let agent = agent();
    let sums_url = format!("{base}/SHA256SUMS");
    let sums = get_bytes(&agent, &sums_url, MAX_SUMS_BYTES)?;
    let verified = match &req.verification {
        Verification::Signed { keyring } => {
            let keyring = load_cd_keyring(keyring.as_deref())?;
            let sig_url = format!("{sums_url}.sign");
            let sig = get_bytes(&agent, &sig_url, MAX_SIG_BYTES).map_err(|err| match err {
                FetchError::Http { url, detail } => FetchError::Http {
                    url,
                    detail: format!(
                        "{detail} (the signature is needed to verify the set; for a server \
                         that publishes none, --no-verify-signature)"
                    ),
                },
                other => other,
            })?;
            let signers =
                keyring
                    .verify_detached(&sums, &sig)
                    .map_err(|reason| FetchError::Signature {
                        url: sig_url.clone(),
                        reason,
                    })?;
            tracing::info!(keyring = %keyring.path.display(),
                "{sums_url}: good signature by {}", signers.join(", "));
            format!("signed {}", signers.join(" "))
        }
        Verification::SumsOnly => {
            tracing::warn!(
                "--no-verify-signature: {sums_url} is trusted as the server sends it, so whoever controls the server or the network path to it controls the live system"
            );
            "sha256sums-only".to_owned()
        }
    };
    let sums = String::from_utf8_lossy(&sums);
    let (set, picked) =
        pick_set(&sums, req.name.as_deref()).map_err(|reason| FetchError::Sums {
            url: sums_url.clone(),
            reason,
        })?;

    let work = WorkDir::create(root)?;
    let mut staged = Vec::new();
    let mut files = Vec::new();
    for ((remote, expected), local) in picked.iter().zip(LIVE_FILES) {
        let rel = format!("{dest}/{local}");
        let live = root.join(&rel);
        if file_sha256(&live).is_some_and(|h| h == *expected) {
            files.push((rel, expected.clone(), 0));
            continue;
        }
        let url = format!("{base}/{remote}");
        let tmp = work.path.join(local);
        let (bytes, actual) = download(&agent, &url, &tmp)?;
        if actual != *expected {
            return Err(FetchError::Mismatch {
                url,
                listed_in: sums_url,
                expected: expected.clone(),
                actual,
            });
        }
        staged.push((tmp, live));
        files.push((rel, expected.clone(), bytes));
    }
    let comps: Vec<&str> = dest.split('/').collect();
    ensure_dirs(&root_fd, &comps)
        .map_err(|reason| io_err(&root.join(dest), io::Error::other(reason)))?;
    for (tmp, live) in staged {
        fs::rename(&tmp, &live).map_err(|e| io_err(&live, e))?;
    }
    drop(work);
    Ok(LiveReport {
        set,
        files,
        verified,
    })
}

/// The `serve` flags that boot a set fetched into `dest`.
pub fn serve_flags(dest: &str) -> String {
    let [kernel, initrd, image] = LIVE_FILES;
    format!(
        "--diskless-kernel {dest}/{kernel} --diskless-initrd {dest}/{initrd} --diskless-live {dest}/{image}"
    )
}

// ---- private helpers ----

const MAX_SUMS_BYTES: u64 = 1 << 20;
const MAX_SIG_BYTES: u64 = 64 << 10;
const KINDS: [&str; 3] = ["vmlinuz", "initrd.img", "squashfs"];

fn load_cd_keyring(path: Option<&Path>) -> Result<Keyring, FetchError> {
    if let Some(path) = path {
        return Keyring::load(path).map_err(|reason| FetchError::Keyring {
            path: path.to_owned(),
            reason,
        });
    }
    let present: Vec<PathBuf> = DEBIAN_CD_KEYRINGS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    let Some(first) = present.first() else {
        return Err(FetchError::Keyring {
            path: PathBuf::from(DEBIAN_CD_KEYRINGS[1]),
            reason: "Debian's keyring (with the Debian CD signing key) is not installed: install \
                     the debian-keyring package, or name a keyring with --keyring FILE"
                .into(),
        });
    };
    let mut bytes = Vec::new();
    for path in &present {
        bytes.extend(fs::read(path).map_err(|e| io_err(path, e))?);
    }
    Keyring::from_bytes(first, &bytes).map_err(|reason| FetchError::Keyring {
        path: first.clone(),
        reason,
    })
}

fn check_rel(dest: &str) -> Result<&str, FetchError> {
    let d = dest.trim_matches('/');
    let ok = !d.is_empty()
        && d.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-+".contains(ch))
        });
    if ok {
        Ok(d)
    } else {
        Err(FetchError::BadRequest(format!(
            "--dest '{dest}' is not a directory inside the root, e.g. live"
        )))
    }
}

/// The set in `SHA256SUMS`: its name and `[(remote name, sha256); 3]` in [`LIVE_FILES`] order.
fn pick_set(sums: &str, name: Option<&str>) -> Result<(String, Vec<(String, String)>), String> {
    let mut sets: BTreeMap<String, [Option<(String, String)>; 3]> = BTreeMap::new();
    for line in sums.lines() {
        let Some((hash, file)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let file = file.trim().trim_start_matches('*').trim_start_matches("./");
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !safe_name(file) {
            continue;
        }
        for (i, kind) in KINDS.iter().enumerate() {
            if let Some(stem) = file.strip_suffix(kind) {
                // live-build names its root `filesystem.squashfs` beside `vmlinuz`.
                let stem = stem.strip_suffix("filesystem.").unwrap_or(stem);
                sets.entry(stem.to_owned()).or_default()[i] = Some((file.to_owned(), hash.clone()));
            }
        }
    }
    let whole: Vec<(String, Vec<(String, String)>)> = sets
        .into_iter()
        .filter_map(|(stem, files)| {
            let files: Option<Vec<_>> = files.into_iter().collect();
            files.map(|f| (stem, f))
        })
        .collect();
    let label = |stem: &str| stem.trim_end_matches(['.', '-', '_', '/']).to_owned();
    let mut matching: Vec<_> = whole
        .iter()
        .filter(|(stem, _)| name.is_none_or(|n| label(stem) == n))
        .collect();
    let names = || {
        whole
            .iter()
            .map(|(s, _)| format!("'{}'", label(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (matching.len(), name) {
        (1, _) => {
            let (stem, files) = matching.remove(0);
            Ok((label(stem), files.clone()))
        }
        (0, None) => Err(
            "lists no live set (a file ending in vmlinuz, one in initrd.img and one in \
             squashfs with the same name before those endings)"
                .into(),
        ),
        (0, Some(n)) => Err(format!("lists no live set '{n}'; it has: {}", names())),
        _ => Err(format!(
            "lists several live sets: {}; choose one with --name",
            names()
        )),
    }
}

fn safe_name(file: &str) -> bool {
    !file.is_empty()
        && file.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-+~".contains(ch))
        })
}

fn file_sha256(path: &Path) -> Option<String> {
    let mut file = fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn one_set_is_picked_by_its_endings() {
        let sums = format!(
            "{A}  debian-live-12.9.0-amd64-standard.iso\n\
             {A}  debian-live-12.9.0-amd64-standard.squashfs\n\
             {B}  debian-live-12.9.0-amd64-standard.vmlinuz\n\
             {C}  debian-live-12.9.0-amd64-standard.initrd.img\n"
        );
        let (set, files) = pick_set(&sums, None).unwrap();
        assert_eq!(set, "debian-live-12.9.0-amd64-standard");
        assert_eq!(
            files,
            [
                (
                    "debian-live-12.9.0-amd64-standard.vmlinuz".to_owned(),
                    B.to_owned()
                ),
                (
                    "debian-live-12.9.0-amd64-standard.initrd.img".to_owned(),
                    C.to_owned()
                ),
                (
                    "debian-live-12.9.0-amd64-standard.squashfs".to_owned(),
                    A.to_owned()
                ),
            ]
        );
        // live-build's own netboot layout.
        let sums = format!(
            "{A} *./live/filesystem.squashfs\n{B}  ./live/vmlinuz\n{C}  ./live/initrd.img\n"
        );
        let (set, files) = pick_set(&sums, None).unwrap();
        assert_eq!(set, "live");
        assert_eq!(files[0].0, "live/vmlinuz");
    }

    #[test]
    fn several_sets_need_a_name_and_bad_lines_are_ignored() {
        let mut sums = String::new();
        for flavour in ["standard", "xfce"] {
            sums.push_str(&format!(
                "{A}  d-{flavour}.squashfs\n{B}  d-{flavour}.vmlinuz\n{C}  d-{flavour}.initrd.img\n"
            ));
        }
        sums.push_str(&format!("{A}  ../evil.squashfs\nnot a line\n"));
        let e = pick_set(&sums, None).unwrap_err();
        assert!(
            e.contains("'d-standard', 'd-xfce'") && e.contains("--name"),
            "{e}"
        );
        let (set, files) = pick_set(&sums, Some("d-xfce")).unwrap();
        assert_eq!(set, "d-xfce");
        assert_eq!(files[2].0, "d-xfce.squashfs");
        let e = pick_set(&sums, Some("d-kde")).unwrap_err();
        assert!(e.contains("no live set 'd-kde'"), "{e}");
        // An incomplete set is not a set.
        let e = pick_set(&format!("{A}  x.squashfs\n{B}  x.vmlinuz\n"), None).unwrap_err();
        assert!(e.contains("lists no live set"), "{e}");
    }

    #[test]
    fn dest_must_stay_inside_the_root() {
        assert_eq!(check_rel("live/").unwrap(), "live");
        assert!(check_rel("../x").is_err());
        assert!(check_rel("").is_err());
        assert_eq!(
            serve_flags("live"),
            "--diskless-kernel live/vmlinuz --diskless-initrd live/initrd.img --diskless-live live/filesystem.squashfs"
        );
    }
}
