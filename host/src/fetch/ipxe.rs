//! iPXE's network boot programs, copied into the root from Debian's `ipxe` package.
//!
//! The package installs them under `/usr/lib/ipxe` (its files are verified by apt through the
//! signed archive, so no further check is made here): `undionly.kpxe` (BIOS, over the PXE
//! ROM's UNDI driver), `snponly.efi` (UEFI x64, over the firmware's network driver, which also
//! works behind a proxyDHCP) and `ipxe.efi` (UEFI x64 with iPXE's own drivers). pocketpxe owns
//! `ROOT/ipxe/` under these names and keeps them equal to the installed package: put builds of
//! your own under other names and name them with `--boot`.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::dirfd::{ensure_dirs, open_dir, write_atomic_at};
use super::{FetchError, io_err};

/// Where Debian's `ipxe` package installs its programs.
pub const PACKAGE_DIR: &str = "/usr/lib/ipxe";
/// iPXE for BIOS clients, relative to the root.
pub const BIOS: &str = "ipxe/undionly.kpxe";
/// iPXE for UEFI x64 clients over the firmware's network driver, relative to the root.
pub const UEFI_X64: &str = "ipxe/snponly.efi";
/// iPXE for UEFI x64 with its own network drivers, relative to the root.
pub const UEFI_X64_FULL: &str = "ipxe/ipxe.efi";

/// What happened to one of the programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpxeCopy {
    /// Copied; it was not there.
    Created,
    /// It differed from the package's and was replaced.
    Replaced,
    /// Already equal to the package's.
    Unchanged,
    /// The package does not provide it (not installed, or an older layout).
    Missing,
}

/// Copies the programs from `package_dir` (normally [`PACKAGE_DIR`]) into `root/ipxe/`,
/// creating the directory through real directories only (no symlink is followed out of the
/// root). Returns each file (relative to the root) with what happened.
///
/// # Errors
/// The root or a file in it cannot be written, or a package file cannot be read.
pub fn install_ipxe(
    root: &Path,
    package_dir: &Path,
) -> Result<Vec<(String, IpxeCopy)>, FetchError> {
    let mut done = Vec::new();
    let mut dir: Option<OwnedFd> = None;
    for rel in [BIOS, UEFI_X64, UEFI_X64_FULL] {
        let name = rel.trim_start_matches("ipxe/");
        let source = package_dir.join(name);
        // The package links `ipxe.efi` elsewhere: follow links there (it is not the root).
        let data = match std::fs::read(&source) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                done.push((rel.to_owned(), IpxeCopy::Missing));
                continue;
            }
            Err(e) => return Err(io_err(&source, e)),
        };
        let target = match &dir {
            Some(fd) => fd,
            None => {
                let root_fd = open_dir(root).map_err(|e| io_err(root, e))?;
                let fd = ensure_dirs(&root_fd, &["ipxe"])
                    .map_err(|reason| io_err(&root.join("ipxe"), io::Error::other(reason)))?;
                dir.insert(fd)
            }
        };
        let outcome = match read_file_at(target, name).map_err(|e| io_err(&root.join(rel), e))? {
            Some(old) if old == data => IpxeCopy::Unchanged,
            old => {
                write_atomic_at(target, name, &data).map_err(|e| io_err(&root.join(rel), e))?;
                if old.is_some() {
                    IpxeCopy::Replaced
                } else {
                    IpxeCopy::Created
                }
            }
        };
        done.push((rel.to_owned(), outcome));
    }
    Ok(done)
}

/// Logs what [`install_ipxe`] did: copies at info, a missing package as a warning naming it.
pub fn log_install(root: &Path, done: &[(String, IpxeCopy)]) {
    for (rel, outcome) in done {
        let path = root.join(rel);
        match outcome {
            IpxeCopy::Created => tracing::info!("copied iPXE to {}", path.display()),
            IpxeCopy::Replaced => {
                tracing::info!("updated {} from the ipxe package", path.display());
            }
            IpxeCopy::Unchanged => tracing::debug!("{} is up to date", path.display()),
            IpxeCopy::Missing => {}
        }
    }
    if done.iter().all(|(_, c)| *c == IpxeCopy::Missing) {
        tracing::warn!(
            "iPXE not copied into {}: Debian's ipxe package is not installed ({PACKAGE_DIR} is empty); `apt install ipxe` for the iPXE chain (serve --via ipxe, UEFI behind a proxyDHCP)",
            root.display()
        );
    }
}

/// The bytes of the regular file `name` in `dir` (not following a symlink), or `None` when
/// there is none.
fn read_file_at(dir: &OwnedFd, name: &str) -> io::Result<Option<Vec<u8>>> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        // A symlink or something else in the way: replaced by the package's file.
        Err(Errno::LOOP) => return Ok(Some(Vec::new())),
        Err(e) => return Err(e.into()),
    };
    let mut data = Vec::new();
    File::from(fd)
        .take(MAX_PROGRAM_BYTES)
        .read_to_end(&mut data)?;
    Ok(Some(data))
}

/// iPXE programs are a few hundred KB; anything larger is not one of them.
const MAX_PROGRAM_BYTES: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pocketpxe-ipxe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn copies_replaces_and_reports_missing() {
        let base = tmp("copy");
        let (pkg, root) = (base.join("pkg"), base.join("root"));
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(pkg.join("undionly.kpxe"), b"bios").unwrap();
        std::fs::write(pkg.join("snponly.efi"), b"snp").unwrap();
        let got = install_ipxe(&root, &pkg).unwrap();
        assert_eq!(
            got,
            [
                (BIOS.to_owned(), IpxeCopy::Created),
                (UEFI_X64.to_owned(), IpxeCopy::Created),
                (UEFI_X64_FULL.to_owned(), IpxeCopy::Missing),
            ]
        );
        assert_eq!(std::fs::read(root.join(BIOS)).unwrap(), b"bios");
        std::fs::write(pkg.join("snponly.efi"), b"snp 2").unwrap();
        let got = install_ipxe(&root, &pkg).unwrap();
        assert_eq!(got[0].1, IpxeCopy::Unchanged);
        assert_eq!(got[1].1, IpxeCopy::Replaced);
        assert_eq!(std::fs::read(root.join(UEFI_X64)).unwrap(), b"snp 2");
        // Nothing to copy: the root is left alone (no empty ipxe/ made).
        let empty_root = base.join("empty-root");
        std::fs::create_dir_all(&empty_root).unwrap();
        let got = install_ipxe(&empty_root, &base.join("no-package")).unwrap();
        assert!(got.iter().all(|(_, c)| *c == IpxeCopy::Missing));
        assert!(!empty_root.join("ipxe").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn never_writes_through_a_symlink_out_of_the_root() {
        let base = tmp("symlink");
        let (pkg, root, outside) = (base.join("pkg"), base.join("root"), base.join("outside"));
        for d in [&pkg, &root, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(pkg.join("undionly.kpxe"), b"bios").unwrap();
        // ipxe/ itself a symlink out of the root: refused.
        std::os::unix::fs::symlink(&outside, root.join("ipxe")).unwrap();
        assert!(install_ipxe(&root, &pkg).is_err());
        assert!(!outside.join("undionly.kpxe").exists());
        // A file symlink inside ipxe/: replaced by a real file, the target untouched.
        std::fs::remove_file(root.join("ipxe")).unwrap();
        std::fs::create_dir(root.join("ipxe")).unwrap();
        std::fs::write(outside.join("victim"), b"keep").unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), root.join(BIOS)).unwrap();
        assert_eq!(install_ipxe(&root, &pkg).unwrap()[0].1, IpxeCopy::Replaced);
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
        assert!(!root.join(BIOS).is_symlink());
        assert_eq!(std::fs::read(root.join(BIOS)).unwrap(), b"bios");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
