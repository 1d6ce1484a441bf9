//! `pocketpxe fetch debian` end to end against a mirror on 127.0.0.1 that the test runs itself
//! (a tiny HTTP server thread), serving a netboot.tar.gz built from the installed
//! debian-installer-12-netboot-amd64 package with the real tarball's layout, its SHA256SUMS, and
//! an InRelease clearsigned by an OpenPGP key the test generates. Never any other host.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TempDir, run_bounded};
use pgp::composed::{
    CleartextSignedMessage, EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey,
};
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails as _, Password};
use pocketpxe::fetch::menus::{self, Arch, MenuSpec};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PACKAGE_TREE: &str = "/usr/lib/debian-installer/images/12/amd64/text";
const IMAGES: &str = "debian/dists/bookworm/main/installer-amd64/current/images";

/// An Ed25519 OpenPGP key generated for the test, with its public key written as a keyring.
struct TestKey {
    secret: SignedSecretKey,
    /// The binary public keyring file.
    keyring: PathBuf,
    /// Uppercase hex.
    fingerprint: String,
}

impl TestKey {
    fn new(keyring: PathBuf) -> Self {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id("pocketpxe test mirror <test@invalid>".into());
        let secret = params
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap();
        let public = SignedPublicKey::from(secret.clone());
        std::fs::write(&keyring, public.to_bytes().unwrap()).unwrap();
        let fingerprint = hex(public.primary_key.fingerprint().as_bytes()).to_uppercase();
        Self {
            secret,
            keyring,
            fingerprint,
        }
    }

    fn clearsign(&self, text: &str) -> Vec<u8> {
        CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .unwrap()
        .to_armored_bytes(Default::default())
        .unwrap()
    }
}

/// Serves files from a map (URL path → bytes) on 127.0.0.1; records every request path. Signs
/// its InRelease files with its own [`TestKey`].
struct Mirror {
    port: u16,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
    key: TestKey,
}

impl Mirror {
    fn start(tmp: &TempDir) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files = Arc::new(Mutex::new(BTreeMap::<String, Vec<u8>>::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (f, r) = (files.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header.trim().is_empty() => break,
                        Ok(_) => {}
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                r.lock().unwrap().push(path.clone());
                let body = f.lock().unwrap().get(path.trim_start_matches('/')).cloned();
                let _ = match body {
                    Some(body) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        stream.write_all(&body)
                    }
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Self {
            port,
            files,
            requests,
            key: TestKey::new(tmp.join("mirror-key.pgp")),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/debian", self.port)
    }

    fn put(&self, path: &str, body: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_owned(), body);
    }

    fn get(&self, path: &str) -> Vec<u8> {
        self.files.lock().unwrap()[path].clone()
    }

    /// Publishes `tarball` with a SHA256SUMS listing `listed_hash` (the real one if `None`), and
    /// an InRelease signed by the mirror's key listing that SHA256SUMS.
    fn publish(&self, images: &str, tarball: &[u8], listed_hash: Option<&str>) {
        let real = hex(&Sha256::digest(tarball));
        let hash = listed_hash.unwrap_or(&real);
        let sums = format!(
            "{}  ./netboot/mini.iso\n{hash}  ./netboot/netboot.tar.gz\n",
            "0".repeat(64)
        );
        self.put(&format!("{images}/SHA256SUMS"), sums.into_bytes());
        self.put(
            &format!("{images}/netboot/netboot.tar.gz"),
            tarball.to_vec(),
        );
        let (dist_dir, _) = images.split_once("/main/").unwrap();
        let codename = dist_dir.rsplit('/').next().unwrap();
        let release = self.release_text_all(dist_dir, codename);
        self.put(
            &format!("{dist_dir}/InRelease"),
            self.key.clearsign(&release),
        );
    }

    /// A Release text for `codename` listing the SHA256SUMS published under `images`.
    fn release_text(&self, images: &str, codename: &str) -> String {
        let (_, rel) = images.split_once("/main/").unwrap();
        let sums = self.get(&format!("{images}/SHA256SUMS"));
        format!(
            "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: {codename}\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nMD5Sum:\n {}    {len} main/{rel}/SHA256SUMS\nSHA256:\n {} 1234 main/binary-all/Packages\n {}    {len} main/{rel}/SHA256SUMS\n",
            "0".repeat(32),
            "1".repeat(64),
            hex(&Sha256::digest(&sums)),
            len = sums.len(),
        )
    }

    /// A Release text for `codename` listing every SHA256SUMS published under `dist_dir`
    /// (one per architecture), as Debian's lists all of them.
    fn release_text_all(&self, dist_dir: &str, codename: &str) -> String {
        let prefix = format!("{dist_dir}/");
        let lines: String = self
            .files
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(path, body)| {
                let rel = path.strip_prefix(&prefix)?;
                rel.ends_with("/SHA256SUMS")
                    .then(|| format!(" {}    {} {rel}\n", hex(&Sha256::digest(body)), body.len()))
            })
            .collect();
        format!(
            "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: {codename}\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n {} 1234 main/binary-all/Packages\n{lines}",
            "1".repeat(64),
        )
    }

    fn tarball_requests(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with("netboot.tar.gz"))
            .count()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The installed package tree; missing: fails under CI=true, else skips loudly.
fn package_tree() -> Option<PathBuf> {
    let tree = PathBuf::from(PACKAGE_TREE);
    if tree.join("debian-installer/amd64/linux").is_file() {
        return Some(tree);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{PACKAGE_TREE} missing: apt-get install debian-installer-12-netboot-amd64 (CI=true: not skipping)"
        );
    }
    eprintln!("SKIP: {PACKAGE_TREE} missing (apt-get install debian-installer-12-netboot-amd64)");
    None
}

/// `tar czf` of `dir` with the real netboot.tar.gz's layout: `./`, `./debian-installer/…`,
/// symlinks kept as symlinks, root-owned.
fn make_tarball(dir: &Path, out: &Path) -> Vec<u8> {
    let output = run_bounded(
        Command::new("tar")
            .arg("-C")
            .arg(dir)
            // Other tests hard-link the package tree into their TFTP roots, which changes the
            // files' ctime (link count) while tar reads them: content is unaffected.
            .args([
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--warning=no-file-changed",
                "-czf",
            ])
            .arg(out)
            .arg("."),
        Duration::from_secs(120),
    );
    // GNU tar exits 1 for "file changed as we read it", 2 for real errors.
    assert!(
        output.status.success() || (output.status.code() == Some(1) && output.stderr.is_empty()),
        "tar: {output:?}"
    );
    std::fs::read(out).unwrap()
}

/// `fetch debian` trusting the mirror's own key (`--keyring`).
fn fetch(root: &Path, mirror: &Mirror, extra: &[&str]) -> Output {
    let keyring = mirror.key.keyring.display().to_string();
    let mut args = vec!["--keyring", &keyring];
    args.extend_from_slice(extra);
    fetch_plain(root, mirror, &args)
}

/// `fetch debian` with only the flags given.
fn fetch_plain(root: &Path, mirror: &Mirror, extra: &[&str]) -> Output {
    let output = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_pocketpxe"))
            .args(["fetch", "debian", "--mirror", &mirror.url(), "--root"])
            .arg(root)
            .args(extra)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info"),
        Duration::from_secs(180),
    );
    eprintln!(
        "--- fetch {extra:?} ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every path under `dir` with its kind and content (file bytes' hash, symlink target).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(base, &path, out);
            } else {
                out.insert(rel, hex(&Sha256::digest(std::fs::read(&path).unwrap())));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn spec(console: Option<&str>) -> MenuSpec {
    MenuSpec {
        dist: "bookworm".into(),
        arch: Arch::Amd64,
        console: console.map(|c| c.parse().unwrap()),
        tftp_server: None,
    }
}

#[test]
fn fetch_debian_from_local_mirror() {
    let Some(tree) = package_tree() else { return };
    let tmp = TempDir::new("fetch");
    let tarball = make_tarball(&tree, &tmp.join("netboot.tar.gz"));
    let mirror = Mirror::start(&tmp);
    mirror.publish(IMAGES, &tarball, None);
    let root = tmp.join("root");

    // First run: verify InRelease, download, verify, unpack, menus.
    let out = fetch(&root, &mirror, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "dists/bookworm/InRelease: good signature by {}",
            mirror.key.fingerprint
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("verified and unpacked"),
        "{}",
        stderr(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "pocketpxe serve --interface IFACE --root {} --boot bios=pxelinux.0 \
             --boot efi-x64=debian-installer/amd64/bootnetx64.efi\n",
            root.display()
        )),
        "{stdout}"
    );
    assert_eq!(mirror.tarball_requests(), 1);
    for file in [
        "debian-installer/amd64/linux",
        "debian-installer/amd64/initrd.gz",
        "debian-installer/amd64/bootnetx64.efi",
        "debian-installer/amd64/grubx64.efi",
        "debian-installer/amd64/boot-screens/ldlinux.c32",
        "version.info",
    ] {
        assert_eq!(
            std::fs::read(root.join(file)).unwrap(),
            std::fs::read(tree.join(file)).unwrap(),
            "{file}"
        );
    }
    for (link, target) in [
        ("pxelinux.0", "debian-installer/amd64/pxelinux.0"),
        ("pxelinux.cfg", "debian-installer/amd64/pxelinux.cfg"),
        (
            "ldlinux.c32",
            "debian-installer/amd64/boot-screens/ldlinux.c32",
        ),
    ] {
        assert_eq!(
            std::fs::read_link(root.join(link)).unwrap(),
            Path::new(target),
            "{link}"
        );
    }
    // Through the top-level symlink, as pxelinux reads it; a real file now, not Debian's link.
    let default = root.join("pxelinux.cfg/default");
    assert!(!std::fs::symlink_metadata(&default).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_to_string(&default).unwrap(),
        menus::pxelinux_menu(&spec(None))
    );
    let grub = root.join("debian-installer/amd64/grub/grub.cfg");
    assert_eq!(
        std::fs::read_to_string(&grub).unwrap(),
        menus::grub_menu(&spec(None))
    );
    let stamp = std::fs::read_to_string(root.join(".pocketpxe-debian-amd64.stamp")).unwrap();
    assert!(
        stamp.contains(&format!("sha256 {}", hex(&Sha256::digest(&tarball)))),
        "{stamp}"
    );
    assert!(
        stamp.contains(&format!(
            "\nverified inrelease {}\n",
            mirror.key.fingerprint
        )),
        "{stamp}"
    );
    assert!(
        !root.join(".pocketpxe-fetch.tmp").exists(),
        "work dir left behind"
    );
    let after_first = snapshot(&root);

    // Second run: nothing downloaded, nothing changed, and it says so.
    let out = fetch(&root, &mirror, &[]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("nothing to download"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("boot menu"), "{}", stderr(&out));
    assert_eq!(
        mirror.tarball_requests(),
        1,
        "the tarball was downloaded again"
    );
    assert_eq!(snapshot(&root), after_first);

    // A hand-edited GRUB menu is kept; the generated pxelinux menu follows --console.
    let mine = "# my own menu\nmenuentry 'mine' { true }\n";
    std::fs::write(&grub, mine).unwrap();
    let out = fetch(&root, &mirror, &["--console", "ttyS0"]);
    assert!(out.status.success());
    let log = stderr(&out);
    assert!(
        log.contains("left boot menu") && log.contains("grub.cfg"),
        "{log}"
    );
    assert!(log.contains("updated boot menu"), "{log}");
    assert_eq!(std::fs::read_to_string(&grub).unwrap(), mine);
    let serial = std::fs::read_to_string(&default).unwrap();
    assert_eq!(serial, menus::pxelinux_menu(&spec(Some("ttyS0"))));
    assert!(serial.contains("\nSERIAL 0 115200\n") && serial.contains("console=ttyS0,115200"));

    // A new release on the mirror: downloaded again; your files and your menu survive.
    std::fs::write(root.join("debian-installer/amd64/preseed.cfg"), "d-i x\n").unwrap();
    std::fs::write(root.join("mine.txt"), "mine\n").unwrap();
    let newer = tmp.join("newer");
    let copy = run_bounded(
        Command::new("cp").arg("-a").arg(&tree).arg(&newer),
        Duration::from_secs(60),
    );
    assert!(copy.status.success());
    std::fs::write(
        newer.join("version.info"),
        "Debian version:  12.99 (bookworm)\n",
    )
    .unwrap();
    let tarball2 = make_tarball(&newer, &tmp.join("netboot2.tar.gz"));
    mirror.publish(IMAGES, &tarball2, None);
    let out = fetch(&root, &mirror, &["--console", "ttyS0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mirror.tarball_requests(), 2);
    assert_eq!(
        std::fs::read_to_string(root.join("version.info")).unwrap(),
        "Debian version:  12.99 (bookworm)\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("debian-installer/amd64/preseed.cfg")).unwrap(),
        "d-i x\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("mine.txt")).unwrap(),
        "mine\n"
    );
    assert_eq!(std::fs::read_to_string(&grub).unwrap(), mine);
    assert_eq!(std::fs::read_to_string(&default).unwrap(), serial);
    assert!(!root.join(".pocketpxe-fetch.tmp").exists());
}

#[test]
fn bad_hash_is_refused_and_root_untouched() {
    let Some(tree) = package_tree() else { return };
    let tmp = TempDir::new("fetch-bad");
    let tarball = make_tarball(&tree, &tmp.join("netboot.tar.gz"));
    let mut corrupt = tarball.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    let mirror = Mirror::start(&tmp);
    let real_hash = hex(&Sha256::digest(&tarball));
    mirror.publish(IMAGES, &corrupt, Some(&real_hash));

    let root = tmp.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("keep.txt"), "keep\n").unwrap();
    let before = snapshot(&root);
    let out = fetch(&root, &mirror, &[]);
    assert_eq!(out.status.code(), Some(1));
    let log = stderr(&out);
    assert!(log.contains("SHA-256 mismatch"), "{log}");
    assert!(
        log.contains("/netboot/netboot.tar.gz"),
        "error must name the URL: {log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{log}"
    );
    assert_eq!(snapshot(&root), before, "root changed");

    // After a good fetch, a corrupt "new release" leaves the tree exactly as it was.
    mirror.publish(IMAGES, &tarball, None);
    assert!(fetch(&root, &mirror, &[]).status.success());
    let good = snapshot(&root);
    mirror.publish(IMAGES, &corrupt, Some(&"ab".repeat(32)));
    let out = fetch(&root, &mirror, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("SHA-256 mismatch"));
    assert_eq!(snapshot(&root), good, "root changed");
}

#[test]
fn hostile_tarball_with_right_hash_is_refused() {
    let tmp = TempDir::new("fetch-hostile");
    let src = tmp.join("src");
    std::fs::create_dir_all(src.join("debian-installer/amd64")).unwrap();
    std::fs::write(src.join("debian-installer/amd64/linux"), "kernel").unwrap();
    std::os::unix::fs::symlink("/etc", src.join("etc")).unwrap();
    let tarball = make_tarball(&src, &tmp.join("t.tar.gz"));
    let mirror = Mirror::start(&tmp);
    mirror.publish(IMAGES, &tarball, None);
    let root = tmp.join("root");
    let out = fetch(&root, &mirror, &[]);
    assert_eq!(out.status.code(), Some(1));
    let log = stderr(&out);
    assert!(
        log.contains("entry './etc'") && log.contains("absolute target"),
        "{log}"
    );
    assert_eq!(snapshot(&root), BTreeMap::new());
}

#[test]
fn arm64_trixie_gets_only_a_grub_menu() {
    let tmp = TempDir::new("fetch-arm64");
    let src = tmp.join("src");
    let d = src.join("debian-installer/arm64");
    std::fs::create_dir_all(d.join("grub")).unwrap();
    for f in [
        "linux",
        "initrd.gz",
        "bootnetaa64.efi",
        "grubaa64.efi",
        "grub/grub.cfg",
    ] {
        std::fs::write(d.join(f), f).unwrap();
    }
    std::fs::write(src.join("version.info"), "Debian version:  13 (trixie)\n").unwrap();
    let tarball = make_tarball(&src, &tmp.join("t.tar.gz"));
    let mirror = Mirror::start(&tmp);
    mirror.publish(
        "debian/dists/trixie/main/installer-arm64/current/images",
        &tarball,
        None,
    );
    let root = tmp.join("root");
    let out = fetch(&root, &mirror, &["--dist", "trixie", "--arch", "arm64"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // On stdout: the serve command that boots it (UEFI only on arm64).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "To boot it (IFACE: the interface facing the machines):\n  pocketpxe serve \
             --interface IFACE --root {} --boot efi-arm64=debian-installer/arm64/bootnetaa64.efi\n",
            root.display()
        )
    );
    let grub = std::fs::read_to_string(root.join("debian-installer/arm64/grub/grub.cfg")).unwrap();
    assert_eq!(
        grub,
        menus::grub_menu(&MenuSpec {
            dist: "trixie".into(),
            arch: Arch::Arm64,
            console: None,
            tftp_server: None,
        })
    );
    assert!(!root.join("pxelinux.cfg").exists());
    assert!(!root.join("debian-installer/arm64/pxelinux.cfg").exists());

    // A dist the mirror lacks: the error names the URL.
    let out = fetch(&root, &mirror, &["--dist", "forky", "--arch", "arm64"]);
    assert_eq!(out.status.code(), Some(1));
    let log = stderr(&out);
    assert!(
        log.contains("dists/forky/InRelease: HTTP status 404")
            && log.contains("--no-verify-signature"),
        "{log}"
    );
    let out = fetch_plain(
        &root,
        &mirror,
        &[
            "--dist",
            "forky",
            "--arch",
            "arm64",
            "--no-verify-signature",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let log = stderr(&out);
    assert!(
        log.contains("dists/forky/main/installer-arm64/current/images/SHA256SUMS")
            && log.contains("404"),
        "{log}"
    );
}

#[test]
fn amd64_and_arm64_share_one_root() {
    let tmp = TempDir::new("fetch-both");
    // Small trees with the real tarballs' layouts (debian-installer-12-netboot-{amd64,arm64}):
    // both have a top-level version.info, here from different installer builds.
    let amd = tmp.join("amd64");
    let a = amd.join("debian-installer/amd64");
    std::fs::create_dir_all(a.join("grub")).unwrap();
    std::fs::create_dir_all(a.join("pxelinux.cfg")).unwrap();
    for f in [
        "linux",
        "initrd.gz",
        "bootnetx64.efi",
        "grubx64.efi",
        "pxelinux.0",
        "grub/grub.cfg",
        "pxelinux.cfg/default",
    ] {
        std::fs::write(a.join(f), format!("amd64 {f}")).unwrap();
    }
    std::os::unix::fs::symlink("debian-installer/amd64/pxelinux.0", amd.join("pxelinux.0"))
        .unwrap();
    std::os::unix::fs::symlink(
        "debian-installer/amd64/pxelinux.cfg",
        amd.join("pxelinux.cfg"),
    )
    .unwrap();
    std::fs::write(amd.join("version.info"), "Installer build: 1\n").unwrap();
    let arm = tmp.join("arm64");
    let r = arm.join("debian-installer/arm64");
    std::fs::create_dir_all(r.join("grub/arm64-efi")).unwrap();
    for f in [
        "linux",
        "initrd.gz",
        "bootnetaa64.efi",
        "grubaa64.efi",
        "grub/grub.cfg",
        "grub/arm64-efi/grub.cfg",
    ] {
        std::fs::write(r.join(f), format!("arm64 {f}")).unwrap();
    }
    std::fs::write(arm.join("version.info"), "Installer build: 2\n").unwrap();
    let mirror = Mirror::start(&tmp);
    let dists = "debian/dists/bookworm/main";
    mirror.publish(
        &format!("{dists}/installer-amd64/current/images"),
        &make_tarball(&amd, &tmp.join("amd64.tar.gz")),
        None,
    );
    mirror.publish(
        &format!("{dists}/installer-arm64/current/images"),
        &make_tarball(&arm, &tmp.join("arm64.tar.gz")),
        None,
    );
    let root = tmp.join("root");
    let out = fetch(
        &root,
        &mirror,
        &["--arch", "amd64,arm64", "--console", "ttyAMA0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mirror.tarball_requests(), 2);
    let log = stderr(&out);
    assert!(
        log.contains("debian bookworm amd64: verified and unpacked")
            && log.contains("debian bookworm arm64: verified and unpacked"),
        "{log}"
    );
    // The other architecture's top-level file is upstream, not yours: nothing saved aside.
    assert!(!log.contains("pocketpxe-saved"), "{log}");
    assert!(
        !snapshot(&root)
            .keys()
            .any(|k| k.ends_with(".pocketpxe-saved")),
        "{:?}",
        snapshot(&root)
    );
    // Both trees, each with its loader and its own GRUB menu where its GRUB looks.
    for arch in [Arch::Amd64, Arch::Arm64] {
        let dir = root.join(format!("debian-installer/{arch}"));
        assert_eq!(
            std::fs::read_to_string(dir.join("linux")).unwrap(),
            format!("{arch} linux")
        );
        assert!(root.join(arch.efi_loader()).is_file());
        let spec = MenuSpec {
            dist: "bookworm".into(),
            arch,
            console: Some("ttyAMA0".parse().unwrap()),
            tftp_server: None,
        };
        assert_eq!(
            std::fs::read_to_string(dir.join("grub/grub.cfg")).unwrap(),
            menus::grub_menu(&spec)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("boot.ipxe")).unwrap(),
            menus::ipxe_menu(&spec)
        );
        assert!(
            root.join(format!(".pocketpxe-debian-{arch}.stamp"))
                .is_file()
        );
    }
    let arm_grub =
        std::fs::read_to_string(root.join("debian-installer/arm64/grub/grub.cfg")).unwrap();
    assert!(
        arm_grub.contains("linux  /debian-installer/arm64/linux console=ttyAMA0,115200 ---")
            && !arm_grub.contains("amd64"),
        "{arm_grub}"
    );
    // Upstream's arm64-efi/grub.cfg stays: GRUB's `[ -e ]` on a TFTP path is false, so the
    // netboot GRUB reads grub/grub.cfg.
    assert!(
        root.join("debian-installer/arm64/grub/arm64-efi/grub.cfg")
            .is_file()
    );
    assert_eq!(
        std::fs::read_link(root.join("pxelinux.0")).unwrap(),
        Path::new("debian-installer/amd64/pxelinux.0")
    );
    // On stdout: one serve command for both.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "To boot it (IFACE: the interface facing the machines):\n  pocketpxe serve \
             --interface IFACE --root {} --boot bios=pxelinux.0 \
             --boot efi-x64=debian-installer/amd64/bootnetx64.efi \
             --boot efi-arm64=debian-installer/arm64/bootnetaa64.efi\n",
            root.display()
        )
    );

    // Again: both already there, nothing downloaded, and the tree is as it was.
    let before = snapshot(&root);
    let out = fetch(
        &root,
        &mirror,
        &["--arch", "arm64,amd64", "--console", "ttyAMA0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mirror.tarball_requests(), 2);
    assert_eq!(
        stderr(&out).matches("already fetched and verified").count(),
        2,
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&root), before);

    // A new arm64 build: only arm64 is fetched again; amd64's tree is untouched.
    std::fs::write(r.join("linux"), "arm64 linux 2").unwrap();
    mirror.publish(
        &format!("{dists}/installer-arm64/current/images"),
        &make_tarball(&arm, &tmp.join("arm64-2.tar.gz")),
        None,
    );
    let out = fetch(
        &root,
        &mirror,
        &["--arch", "amd64,arm64", "--console", "ttyAMA0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mirror.tarball_requests(), 3);
    assert_eq!(
        std::fs::read_to_string(root.join("debian-installer/arm64/linux")).unwrap(),
        "arm64 linux 2"
    );
    let after = snapshot(&root);
    for (path, kind) in &before {
        if path.starts_with("debian-installer/amd64") || path.starts_with("pxelinux") {
            assert_eq!(after.get(path), Some(kind), "{path}");
        }
    }
    assert!(!after.keys().any(|k| k.ends_with(".pocketpxe-saved")));
}

/// A small tarball that unpacks as a Debian netboot tree for amd64.
fn tiny_tarball(tmp: &TempDir) -> Vec<u8> {
    let src = tmp.join("src");
    std::fs::create_dir_all(src.join("debian-installer/amd64")).unwrap();
    std::fs::write(src.join("debian-installer/amd64/linux"), "kernel").unwrap();
    std::fs::write(src.join("version.info"), "Debian version:  12 (bookworm)\n").unwrap();
    make_tarball(&src, &tmp.join("tiny.tar.gz"))
}

/// A root holding one file of the user's, and its snapshot.
fn user_root(tmp: &TempDir) -> (PathBuf, BTreeMap<String, String>) {
    let root = tmp.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("keep.txt"), "keep\n").unwrap();
    let before = snapshot(&root);
    (root, before)
}

/// A refused fetch: exit 1, one error line containing every `needles`, no tarball download and
/// the root exactly as `before`.
fn assert_refused(
    out: &Output,
    mirror: &Mirror,
    root: &Path,
    before: &BTreeMap<String, String>,
    needles: &[&str],
) {
    let log = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    for needle in needles {
        assert!(errors[0].contains(needle), "missing '{needle}' in: {log}");
    }
    assert_eq!(
        mirror.tarball_requests(),
        0,
        "the tarball was downloaded: {log}"
    );
    assert_eq!(&snapshot(root), before, "root changed");
}

#[test]
fn inrelease_signature_is_required() {
    let tmp = TempDir::new("fetch-sig");
    let tarball = tiny_tarball(&tmp);
    let mirror = Mirror::start(&tmp);
    mirror.publish(IMAGES, &tarball, None);
    let (root, before) = user_root(&tmp);
    let inrelease = "debian/dists/bookworm/InRelease";

    // Debian's archive keyring (the default) does not hold the mirror's key.
    let out = fetch_plain(&root, &mirror, &[]);
    if pocketpxe::fetch::signature::DEBIAN_KEYRINGS
        .iter()
        .any(|k| Path::new(k).exists())
    {
        assert_refused(
            &out,
            &mirror,
            &root,
            &before,
            &[
                "dists/bookworm/InRelease: signature check failed: not signed by any key in /usr/share/keyrings/debian-archive-keyring.",
                &mirror.key.fingerprint,
                "--keyring FILE",
                "nothing was changed",
            ],
        );
    } else {
        assert_refused(
            &out,
            &mirror,
            &root,
            &before,
            &["debian-archive-keyring package", "--keyring"],
        );
    }

    // Nor does another key, given with --keyring (armored this time).
    let other = TestKey::new(tmp.join("other.pgp"));
    let other_asc = tmp.join("other.asc");
    std::fs::write(
        &other_asc,
        SignedPublicKey::from(other.secret.clone())
            .to_armored_bytes(Default::default())
            .unwrap(),
    )
    .unwrap();
    let out = fetch_plain(&root, &mirror, &["--keyring", other_asc.to_str().unwrap()]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &[
            "not signed by any key in",
            "other.asc",
            &mirror.key.fingerprint,
        ],
    );

    // A keyring that is not there.
    let out = fetch_plain(&root, &mirror, &["--keyring", "/nonexistent/k.pgp"]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &["keyring /nonexistent/k.pgp", "No such file"],
    );

    // A forged InRelease: the signed text changed after signing.
    let good = mirror.get(inrelease);
    let forged = String::from_utf8(good.clone())
        .unwrap()
        .replace("Label: Debian", "Label: Debiam");
    assert_ne!(forged.as_bytes(), good);
    mirror.put(inrelease, forged.into_bytes());
    let out = fetch(&root, &mirror, &[]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &[
            "dists/bookworm/InRelease: signature check failed: BAD signature by key",
            &mirror.key.fingerprint,
            "it does not match the signed text; nothing was changed",
        ],
    );

    // An unsigned Release served as InRelease.
    let release = mirror.release_text(IMAGES, "bookworm");
    mirror.put(inrelease, release.into_bytes());
    let out = fetch(&root, &mirror, &[]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &["InRelease: signature check failed: not a clearsigned OpenPGP message"],
    );

    // A genuinely signed InRelease of another dist, served in bookworm's place.
    let trixie = mirror.release_text(IMAGES, "trixie");
    mirror.put(inrelease, mirror.key.clearsign(&trixie));
    let out = fetch(&root, &mirror, &[]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &["InRelease: it is the Release of trixie", "not of bookworm"],
    );

    // No InRelease at all: refused, pointing at --no-verify-signature.
    mirror.files.lock().unwrap().remove(inrelease);
    let out = fetch(&root, &mirror, &[]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &[
            "dists/bookworm/InRelease: HTTP status 404",
            "--no-verify-signature",
        ],
    );

    // The same with --no-verify-signature: accepted, with its warning, and the stamp says so.
    let out = fetch_plain(&root, &mirror, &["--no-verify-signature"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("--no-verify-signature: ")
            && l.contains("InRelease is not checked")),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("debian-installer/amd64/linux")).unwrap(),
        "kernel"
    );
    let stamp = std::fs::read_to_string(root.join(".pocketpxe-debian-amd64.stamp")).unwrap();
    assert!(stamp.contains("\nverified sha256sums-only\n"), "{stamp}");

    // --keyring and --no-verify-signature contradict each other.
    let out = fetch(&root, &mirror, &["--no-verify-signature"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tampered_sha256sums_or_tarball_is_refused() {
    let tmp = TempDir::new("fetch-tamper");
    let tarball = tiny_tarball(&tmp);
    let mirror = Mirror::start(&tmp);
    mirror.publish(IMAGES, &tarball, None);
    let (root, before) = user_root(&tmp);
    let sums_path = format!("{IMAGES}/SHA256SUMS");

    // SHA256SUMS swapped after InRelease was signed (to match a tampered tarball): InRelease's
    // hash of SHA256SUMS no longer matches; the tarball is never downloaded.
    let signed_sums = mirror.get(&sums_path);
    let mut evil = tarball.clone();
    let middle = evil.len() / 2;
    evil[middle] ^= 0x55;
    let evil_sums = format!(
        "{}  ./netboot/netboot.tar.gz\n",
        hex(&Sha256::digest(&evil))
    );
    mirror.put(&sums_path, evil_sums.clone().into_bytes());
    mirror.put(&format!("{IMAGES}/netboot/netboot.tar.gz"), evil.clone());
    let out = fetch(&root, &mirror, &[]);
    assert_refused(
        &out,
        &mirror,
        &root,
        &before,
        &[
            "current/images/SHA256SUMS: SHA-256 mismatch:",
            "dists/bookworm/InRelease says",
            &hex(&Sha256::digest(&signed_sums)),
            &hex(&Sha256::digest(evil_sums.as_bytes())),
        ],
    );

    // The signed SHA256SUMS back, the tampered tarball still there: refused after download.
    mirror.put(&sums_path, signed_sums);
    let out = fetch(&root, &mirror, &[]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("/netboot/netboot.tar.gz: SHA-256 mismatch: SHA256SUMS says"),
        "{log}"
    );
    assert_eq!(mirror.tarball_requests(), 1);
    assert_eq!(snapshot(&root), before, "root changed");

    // Everything as signed: accepted.
    mirror.put(&format!("{IMAGES}/netboot/netboot.tar.gz"), tarball);
    let out = fetch(&root, &mirror, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(root.join("debian-installer/amd64/linux")).unwrap(),
        "kernel"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("keep.txt")).unwrap(),
        "keep\n"
    );
}
