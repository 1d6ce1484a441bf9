//! A Debian mirror on disk for `serve --debian`: for each architecture a `netboot.tar.gz`
//! packed from an installed netboot tree, its `SHA256SUMS`, and one `InRelease` listing every
//! `SHA256SUMS`, clearsigned by an Ed25519 key that GnuPG makes in a home of its own. A busybox
//! httpd in the lab's upstream namespace serves it; the server gets the key with `--keyring`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::run;

/// A mirror tree under a test's directory.
#[derive(Debug)]
pub struct DebianMirror {
    /// The directory to serve as the mirror's root (`dists/…` below it).
    pub root: PathBuf,
    /// The public key that signed `InRelease`, for `--keyring`.
    pub keyring: PathBuf,
}

impl DebianMirror {
    /// Builds `dir/mirror` for `dist` with one installer per `(arch, tree)`, and the signing
    /// key's home in `dir/gnupg`.
    ///
    /// # Errors
    /// When tar, sha256sum or gpg fail or the files cannot be written.
    pub fn build(dir: &Path, dist: &str, installers: &[(&str, &str)]) -> crate::Result<Self> {
        let root = dir.join("mirror");
        let dist_dir = root.join("dists").join(dist);
        let mut listed = String::new();
        for (arch, tree) in installers {
            let sums_rel = format!("main/installer-{arch}/current/images/SHA256SUMS");
            let images = dist_dir.join(format!("main/installer-{arch}/current/images"));
            mkdir(&images.join("netboot"))?;
            let mut tar = Command::new("tar");
            tar.arg("-C")
                .arg(tree)
                .arg("-czf")
                .arg(images.join("netboot/netboot.tar.gz"))
                .arg(".");
            run(tar, Duration::from_secs(180))?;
            let mut sum = Command::new("sha256sum");
            sum.current_dir(&images).arg("./netboot/netboot.tar.gz");
            let sums = run(sum, Duration::from_secs(60))?;
            write(&images.join("SHA256SUMS"), sums.as_bytes())?;
            listed.push_str(&format!(
                " {} {} {sums_rel}\n",
                sha256(&dist_dir.join(&sums_rel))?,
                sums.len()
            ));
        }
        let arches: Vec<&str> = installers.iter().map(|(arch, _)| *arch).collect();
        let release = format!(
            "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: {dist}\n\
             Architectures: {}\nComponents: main\nSHA256:\n{listed}",
            arches.join(" ")
        );
        write(&dist_dir.join("Release"), release.as_bytes())?;
        let keyring = sign(dir, &dist_dir.join("Release"), &dist_dir.join("InRelease"))?;
        Ok(Self { root, keyring })
    }
}

/// Clearsigns `release` into `inrelease` with a key GnuPG makes under `dir/gnupg`; returns
/// the file holding the public key.
fn sign(dir: &Path, release: &Path, inrelease: &Path) -> crate::Result<PathBuf> {
    let home = dir.join("gnupg");
    mkdir(&home)?;
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", home.display()))?;
    let gpg = |args: &[&std::ffi::OsStr]| {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir").arg(&home);
        cmd.args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]);
        cmd.args(args);
        run(cmd, Duration::from_secs(60))
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let signed = gpg(&[
        os("--quick-gen-key"),
        os("pocketpxe test mirror <mirror@test.invalid>"),
        os("ed25519"),
        os("sign"),
        os("never"),
    ])
    .and_then(|_| {
        let keyring = dir.join("mirror-key.pgp");
        gpg(&[os("--output"), keyring.as_os_str(), os("--export")])?;
        gpg(&[
            os("--output"),
            inrelease.as_os_str(),
            os("--clearsign"),
            release.as_os_str(),
        ])?;
        Ok(keyring)
    });
    // The agent GnuPG started for the home: stopped here, not left behind.
    let mut kill = Command::new("gpgconf");
    kill.arg("--homedir")
        .arg(&home)
        .args(["--kill", "gpg-agent"]);
    let killed = run(kill, Duration::from_secs(30));
    let keyring = signed?;
    killed?;
    Ok(keyring)
}

fn sha256(file: &Path) -> crate::Result<String> {
    let mut cmd = Command::new("sha256sum");
    cmd.arg(file);
    let out = run(cmd, Duration::from_secs(60))?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("sha256sum {}: no output", file.display()))
}

fn mkdir(dir: &Path) -> crate::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))
}

fn write(file: &Path, data: &[u8]) -> crate::Result<()> {
    std::fs::write(file, data).map_err(|e| format!("write {}: {e}", file.display()))
}
