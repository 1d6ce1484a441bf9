//! Diskless clients: a root file system the test builds, a client initramfs that mounts it
//! from the network, and an NFS server (NFS-Ganesha) run by the test.
//!
//! * [`served_root`]: a small busybox root whose `/sbin/init` is a shell script that reads a
//!   marker file from the served root, writes to the root (so to the RAM overlay) and prints
//!   both on the console.
//! * [`client_initramfs`]: busybox, the netboot kernel's e1000 (BIOS VMs), virtio-net (UEFI
//!   VMs), loop, squashfs, overlay and NFS modules (from the Debian kernel package of the same version, which `scripts/setup` puts
//!   in [`MODULES_DEB_DIR`]), and an `/init` that understands the command lines pocketpxe
//!   writes: live-boot's `fetch=URL` (download the squashfs into RAM and loop-mount it) and
//!   `nfsroot=SERVER:/EXPORT,OPTIONS` (mount it with NFSv4, read-only); then a tmpfs overlay
//!   on top and `switch_root`.
//! * [`Ganesha`]: `ganesha.nfsd` in the foreground in a namespace, with its config, PID file,
//!   log and recovery directory in the test's directory, stopped by its PID.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::initramfs::{CpioWriter, UDHCPC_SCRIPT};
use crate::netns::Netns;
use crate::process::{Proc, run};

/// Where `scripts/setup` downloads the Debian kernel package matching the netboot kernel.
pub const MODULES_DEB_DIR: &str = "/var/cache/pocketpxe-tests";
/// The netboot kernel.
pub const NETBOOT_KERNEL: &str =
    "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux";

/// The client's modules, in load order (dependencies first), by path under
/// `lib/modules/VERSION/kernel/`.
pub const MODULES: [&str; 20] = [
    "drivers/net/ethernet/intel/e1000/e1000.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/block/loop.ko",
    "fs/squashfs/squashfs.ko",
    "fs/overlayfs/overlay.ko",
    "fs/netfs/netfs.ko",
    "fs/fscache/fscache.ko",
    "fs/nfs_common/grace.ko",
    "net/sunrpc/sunrpc.ko",
    "fs/lockd/lockd.ko",
    "fs/nfs/nfs.ko",
    "net/dns_resolver/dns_resolver.ko",
    "fs/nfs/nfsv4.ko",
];

/// Console markers.
pub mod marker {
    /// The client's `/init` gave up (followed by why).
    pub const FAIL: &str = "E2E-FAIL";
    /// The served root's file system, as the initramfs mounted it (`E2E-LOWER DEV TYPE OPTS`).
    pub const LOWER: &str = "E2E-LOWER";
    /// The served root's `/sbin/init` runs (followed by the type of `/`).
    pub const ROOT_SHELL: &str = "E2E-ROOT-SHELL";
    /// The marker file's content, as read from the served root.
    pub const MARKER: &str = "E2E-MARKER";
    /// What was written to `/etc` and read back from the overlay's RAM upper layer.
    pub const OVERLAY: &str = "E2E-OVERLAY";
    /// The root's init is done (it powers off next).
    pub const DONE: &str = "E2E-DONE";
}

/// The version of the netboot kernel (`6.1.0-50-amd64`), from its bzImage header (the
/// kernel_version pointer at 0x20e, Linux boot protocol 2.00+).
///
/// # Errors
/// When the kernel cannot be read or has no version string.
pub fn kernel_version(kernel: &Path) -> crate::Result<String> {
    let data = std::fs::read(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?;
    let at = data
        .get(0x20e..0x210)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])) + 0x200)
        .ok_or_else(|| format!("{}: too short for a bzImage", kernel.display()))?;
    let text = data
        .get(at..at + 64)
        .ok_or_else(|| format!("{}: bad version pointer", kernel.display()))?;
    let version = String::from_utf8_lossy(text)
        .split([' ', '\0'])
        .next()
        .unwrap_or_default()
        .to_owned();
    if version.is_empty() {
        return Err(format!("{}: no version string", kernel.display()));
    }
    Ok(version)
}

/// The Debian package `linux-image-VERSION` for the netboot kernel, in [`MODULES_DEB_DIR`].
///
/// # Errors
/// When it is not there (run `scripts/setup`).
pub fn modules_deb() -> crate::Result<PathBuf> {
    let version = kernel_version(Path::new(NETBOOT_KERNEL))?;
    let prefix = format!("linux-image-{version}_");
    std::fs::read_dir(MODULES_DEB_DIR)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .ok_or_else(|| {
            format!(
                "no {MODULES_DEB_DIR}/{prefix}*.deb (the kernel modules of the netboot kernel; \
                 scripts/setup downloads it)"
            )
        })
}

/// Extracts [`MODULES`] from `deb` into `dir` and returns them in load order as
/// `(file name, content)`.
///
/// # Errors
/// When dpkg-deb or tar fail, or a module is missing.
pub fn extract_modules(deb: &Path, dir: &Path) -> crate::Result<Vec<(String, Vec<u8>)>> {
    let version = kernel_version(Path::new(NETBOOT_KERNEL))?;
    let members: Vec<String> = MODULES
        .iter()
        .map(|m| format!("./lib/modules/{version}/kernel/{m}"))
        .collect();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "deb=$1; dir=$2; shift 2; dpkg-deb --fsys-tarfile \"$deb\" | tar -x -C \"$dir\" \"$@\"",
        "sh",
    ])
    .arg(deb)
    .arg(dir)
    .args(&members);
    run(cmd, Duration::from_secs(120))?;
    members
        .iter()
        .map(|m| {
            let path = dir.join(m);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            std::fs::read(&path)
                .map(|data| (name, data))
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// The client initramfs: busybox, `modules` (in load order) and the diskless `/init`.
///
/// # Errors
/// When busybox cannot be read.
pub fn client_initramfs(modules: &[(String, Vec<u8>)]) -> crate::Result<Vec<u8>> {
    let busybox = std::fs::read(crate::gate::BUSYBOX)
        .map_err(|e| format!("{}: {e}", crate::gate::BUSYBOX))?;
    let names: Vec<&str> = modules
        .iter()
        .map(|(n, _)| n.trim_end_matches(".ko"))
        .collect();
    let init = CLIENT_INIT.replace("@MODULES@", &names.join(" "));
    let mut cpio = CpioWriter::new();
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "etc", "modules",
    ] {
        cpio.dir(d);
    }
    cpio.char_dev("dev/console", 5, 1)
        .char_dev("dev/null", 1, 3)
        .file("bin/busybox", 0o755, &busybox)
        .symlink("bin/sh", "busybox")
        .file("init", 0o755, init.as_bytes())
        .file("udhcpc.script", 0o755, UDHCPC_SCRIPT.as_bytes());
    for (name, data) in modules {
        cpio.file(&format!("modules/{name}"), 0o644, data);
    }
    Ok(cpio.finish())
}

/// Builds the served root in `dir`: busybox, `/etc/e2e-marker` holding `marker`, and the
/// `/sbin/init` script.
///
/// # Errors
/// When a file cannot be written.
pub fn served_root(dir: &Path, marker: &str) -> crate::Result<()> {
    use std::os::unix::fs::{PermissionsExt as _, symlink};
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "run", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| io(&dir.join(d), e))?;
    }
    let busybox = dir.join("bin/busybox");
    std::fs::copy(crate::gate::BUSYBOX, &busybox).map_err(|e| io(&busybox, e))?;
    for applet in ["sh", "cat", "awk", "mount", "poweroff", "sync", "echo"] {
        let link = dir.join("bin").join(applet);
        symlink("busybox", &link).map_err(|e| io(&link, e))?;
    }
    let marker_file = dir.join("etc/e2e-marker");
    std::fs::write(&marker_file, format!("{marker}\n")).map_err(|e| io(&marker_file, e))?;
    let init = dir.join("sbin/init");
    std::fs::write(&init, ROOT_INIT).map_err(|e| io(&init, e))?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io(&init, e))?;
    Ok(())
}

/// `mksquashfs dir image` (gzip, every file owned by root).
///
/// # Errors
/// When mksquashfs fails.
pub fn squashfs(dir: &Path, image: &Path) -> crate::Result<()> {
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(dir)
        .arg(image)
        .args(["-noappend", "-all-root", "-no-progress", "-quiet"]);
    run(cmd, Duration::from_secs(120)).map(|_| ())
}

/// NFS-Ganesha serving one directory read-only over NFSv4 (TCP port 2049), in a namespace.
#[derive(Debug)]
pub struct Ganesha {
    proc: Proc,
    /// The export's path in the NFSv4 pseudo file system (what clients mount).
    pub pseudo: String,
}

impl Ganesha {
    /// Starts `ganesha.nfsd` in `ns`, exporting `export` at `pseudo`, with its config, log,
    /// PID file and recovery directory in `dir`; waits until it says it is initialized.
    ///
    /// # Errors
    /// When it cannot start or does not get ready within 30 s (the report has its log).
    pub fn start(ns: &Netns, dir: &Path, export: &Path, pseudo: &str) -> crate::Result<Self> {
        let recovery = dir.join("ganesha-recovery");
        std::fs::create_dir_all(&recovery).map_err(|e| format!("{}: {e}", recovery.display()))?;
        let conf = dir.join("ganesha.conf");
        let text = GANESHA_CONF
            .replace("@RECOVERY@", &recovery.display().to_string())
            .replace("@EXPORT@", &export.display().to_string())
            .replace("@PSEUDO@", pseudo);
        std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        let log = dir.join("ganesha.log");
        let mut cmd = ns.command("ganesha.nfsd");
        cmd.arg("-F")
            .arg("-L")
            .arg(&log)
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(dir.join("ganesha.pid"))
            .args(["-N", "NIV_EVENT"]);
        let mut proc = Proc::spawn("ganesha.nfsd", cmd, &dir.join("ganesha.out"))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("NFS SERVER INITIALIZED") {
                break;
            }
            if proc.exited().is_some() || std::time::Instant::now() >= deadline {
                return Err(format!(
                    "ganesha.nfsd did not get ready:\n{}\n{}",
                    crate::serial::tail(&text, 30),
                    proc.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            proc,
            pseudo: pseudo.to_owned(),
        })
    }

    /// Stops the server by its PID (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        self.proc.terminate(Duration::from_secs(5));
    }
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ganesha: NFSv4 only (no rpcbind, NLM or rquota), no grace period (clients mount at once),
/// one read-only export of the VFS backend, root not squashed.
const GANESHA_CONF: &str = r#"NFS_CORE_PARAM {
    Protocols = 4;
    NFS_Port = 2049;
    Enable_NLM = false;
    Enable_RQUOTA = false;
}
NFSV4 {
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = "@RECOVERY@";
}
EXPORT {
    Export_Id = 1;
    Path = "@EXPORT@";
    Pseudo = "@PSEUDO@";
    Access_Type = RO;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 4;
    Transports = TCP;
    FSAL { Name = VFS; }
}
"#;

/// The client's `/init`: modules, a lease, the served root by `fetch=` or `nfsroot=`, a tmpfs
/// overlay on top, `switch_root`.
const CLIENT_INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "E2E-INIT started"
fail() { echo "E2E-FAIL $*"; sync; poweroff -f; }
for m in @MODULES@; do insmod "/modules/$m.ko" || fail "insmod $m"; done
IF=
for i in 1 2 3 4 5 6 7 8 9 10; do
  for d in /sys/class/net/*; do
    n=${d##*/}
    [ "$n" != lo ] && IF=$n
  done
  [ -n "$IF" ] && break
  sleep 1
done
ip link set lo up
ip link set "$IF" up
udhcpc -i "$IF" -s /udhcpc.script -n -q -t 10 -T 3 || fail "no lease on $IF"
FETCH=
NFSROOT=
for a in $(cat /proc/cmdline); do
  case "$a" in
    fetch=*) FETCH="${a#fetch=}" ;;
    nfsroot=*) NFSROOT="${a#nfsroot=}" ;;
  esac
done
mkdir -p /lower /newroot /ram
mount -t tmpfs -o size=256m,mode=0755 ram /ram || fail "tmpfs"
if [ -n "$FETCH" ]; then
  timeout 120 wget -q -O /ram/root.squashfs "$FETCH" || fail "wget $FETCH (exit $?)"
  echo "E2E-FETCHED $(wc -c < /ram/root.squashfs) bytes from $FETCH"
  mount -t squashfs -o loop,ro /ram/root.squashfs /lower || fail "mount squashfs"
elif [ -n "$NFSROOT" ]; then
  SPEC="${NFSROOT%%,*}"
  OPTS="${NFSROOT#"$SPEC"}"
  OPTS="${OPTS#,}"
  SERVER="${SPEC%%:*}"
  mount -t nfs4 -o "ro,${OPTS:+$OPTS,}addr=$SERVER" "$SPEC" /lower || fail "mount -t nfs4 $SPEC"
else
  fail "no fetch= or nfsroot= on the kernel command line"
fi
echo "E2E-LOWER $(awk '$2 == "/lower" {print $1, $3, $4}' /proc/mounts)"
mkdir -p /ram/upper /ram/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/ram/upper,workdir=/ram/work /newroot \
  || fail "mount overlay"
mount --move /ram /newroot/run || fail "move /ram"
exec switch_root /newroot /sbin/init
"#;

/// The served root's `/sbin/init`: a shell on the served root proves it by the marker and a
/// write that lands in RAM.
const ROOT_INIT: &str = r#"#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
echo "E2E-ROOT-SHELL pid $$ root=$(awk '$2 == "/" {print $3}' /proc/mounts)"
echo "E2E-MARKER $(cat /etc/e2e-marker)"
echo "$(cat /etc/e2e-marker)-written-by-client" > /etc/e2e-written || echo "E2E-FAIL write"
if [ -f /run/upper/etc/e2e-written ]; then
  echo "E2E-OVERLAY $(cat /etc/e2e-written) upper=$(awk '$2 == "/run" {print $3}' /proc/mounts)"
fi
echo "E2E-DONE"
sync
poweroff -f
"#;
