//! cpio "newc" archives (the Linux initramfs format), written and read in Rust.
//!
//! [`busybox_nat_probe`] builds the NAT scenario's initramfs: static busybox, the e1000 driver
//! taken from the Debian installer's own initrd (the installer kernel has it as a module), and
//! an `/init` that gets a lease with udhcpc, fetches a page over HTTP, prints the result on the
//! console and powers off.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

/// Builds an uncompressed newc archive (the kernel accepts it as an initrd as is).
#[derive(Debug, Default)]
pub struct CpioWriter {
    buf: Vec<u8>,
    ino: u32,
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, 0o040_755, &[], (0, 0))
    }

    /// A regular file with permission bits `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, 0o100_000 | (perm & 0o7777), data, (0, 0))
    }

    /// A character device node.
    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.entry(name, 0o020_600, &[], (major, minor))
    }

    /// A symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, 0o120_777, target.as_bytes(), (0, 0))
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.buf
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) -> &mut Self {
        self.ino += 1;
        let name_size = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o170_000 == 0o040_000 { 2 } else { 1 },
            0, // mtime
            u32::try_from(data.len()).expect("invariant: initramfs members are < 4 GiB"),
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name_size).expect("invariant: short names"),
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// Reads the first member whose path (without a leading `./` or `/`) satisfies `wanted` out of
/// a gzip-compressed initrd made of one or more concatenated newc archives. Decompression is
/// done by `gzip -dc`.
///
/// # Errors
/// When gzip fails, the archive is malformed, or no member matches.
pub fn extract_from_gz_initrd(
    initrd: &Path,
    wanted: impl Fn(&str) -> bool,
) -> crate::Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .arg(initrd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("gzip -dc {}: {e}", initrd.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| "gzip: no stdout".to_owned())?;
    let found = find_member(BufReader::with_capacity(1 << 20, stdout), wanted);
    // Stop gzip early when the member was found before the end (by our own child's PID).
    let _ = child.kill();
    let _ = child.wait();
    found
        .map_err(|e| format!("{}: {e}", initrd.display()))?
        .ok_or_else(|| format!("member not found in {}", initrd.display()))
}

/// Scans newc archives in `r` for the first member whose name satisfies `wanted`.
fn find_member(mut r: impl Read, wanted: impl Fn(&str) -> bool) -> crate::Result<Option<Vec<u8>>> {
    let mut pos: u64 = 0;
    loop {
        let mut magic = [0u8; 6];
        // Between concatenated archives there may be NUL padding.
        loop {
            match read_exact_or_eof(&mut r, &mut magic[..1])? {
                false => return Ok(None),
                true if magic[0] == 0 => pos += 1,
                true => break,
            }
        }
        r.read_exact(&mut magic[1..])
            .map_err(|e| format!("header at {pos}: {e}"))?;
        if &magic != b"070701" && &magic != b"070702" {
            return Err(format!("bad cpio magic at byte {pos}: {magic:?}"));
        }
        let mut hdr = [0u8; 104];
        r.read_exact(&mut hdr)
            .map_err(|e| format!("header at {pos}: {e}"))?;
        let field = |i: usize| -> crate::Result<usize> {
            let s = std::str::from_utf8(&hdr[i * 8..i * 8 + 8]).map_err(|e| e.to_string())?;
            usize::from_str_radix(s, 16).map_err(|e| format!("header field {s:?}: {e}"))
        };
        let file_size = field(6)?;
        let name_size = field(11)?;
        let mut name = vec![0u8; name_size + pad4(110 + name_size)];
        r.read_exact(&mut name)
            .map_err(|e| format!("name at {pos}: {e}"))?;
        let name = String::from_utf8_lossy(&name[..name_size.saturating_sub(1)]).into_owned();
        let mut data = vec![0u8; file_size];
        r.read_exact(&mut data)
            .map_err(|e| format!("{name}: {e}"))?;
        let mut padding = vec![0u8; pad4(file_size)];
        r.read_exact(&mut padding)
            .map_err(|e| format!("{name}: {e}"))?;
        if wanted(name.trim_start_matches("./").trim_start_matches('/')) {
            return Ok(Some(data));
        }
        pos += (110 + name_size + pad4(110 + name_size) + file_size + pad4(file_size)) as u64;
    }
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> crate::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// Markers the NAT and machine probes print on their consoles.
pub mod marker {
    /// The machine probe is done (after its callback, if it had one).
    pub const MACHINE_BOOTED: &str = "E2E-MACHINE-BOOTED";
    /// The machine probe's install-done callback was answered (followed by the body).
    pub const CALLBACK_OK: &str = "E2E-CALLBACK-OK";
    /// `/init` started.
    pub const INIT: &str = "E2E-INIT";
    /// udhcpc got a lease (followed by `ip=… router=…`).
    pub const LEASE: &str = "E2E-LEASE";
    /// udhcpc got no lease.
    pub const NO_LEASE: &str = "E2E-NO-LEASE";
    /// The HTTP fetch worked (followed by the page).
    pub const FETCH_OK: &str = "E2E-FETCH-OK";
    /// The HTTP fetch failed (followed by `(wget exit N)`: 1 = refused or unreachable,
    /// 143 = nothing answered within 20 s).
    pub const FETCH_FAIL: &str = "E2E-FETCH-FAIL";
}

/// The NAT probe initramfs: busybox, e1000.ko from `installer_initrd`, and an `/init` that
/// fetches `url` after getting a lease.
///
/// # Errors
/// When busybox or the module cannot be read.
pub fn busybox_nat_probe(installer_initrd: &Path, url: &str) -> crate::Result<Vec<u8>> {
    let init = format!("{PROBE_START}{}", NAT_INIT.replace("@URL@", url));
    busybox_e1000_probe(installer_initrd, &init)
}

/// The machine-records probe initramfs (tests/tests/machines.rs): busybox, e1000.ko from
/// `installer_initrd`, and an `/init` that gets a lease, calls the URL in `done=` on the kernel
/// command line if there is one (the install-done callback, with busybox `wget` as a Debian
/// installer's `late_command` would), prints [`marker::MACHINE_BOOTED`] and reboots (QEMU runs
/// with `-no-reboot`, so it exits).
///
/// # Errors
/// When busybox or the module cannot be read.
pub fn busybox_machine_probe(installer_initrd: &Path) -> crate::Result<Vec<u8>> {
    busybox_e1000_probe(installer_initrd, &format!("{PROBE_START}{MACHINE_INIT}"))
}

/// An initramfs of busybox, e1000.ko from `installer_initrd`, the udhcpc script and `init`.
fn busybox_e1000_probe(installer_initrd: &Path, init: &str) -> crate::Result<Vec<u8>> {
    let busybox = std::fs::read(crate::gate::BUSYBOX)
        .map_err(|e| format!("{}: {e}", crate::gate::BUSYBOX))?;
    let e1000 = find_module(installer_initrd, "e1000.ko")?;
    let mut cpio = CpioWriter::new();
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "etc",
    ] {
        cpio.dir(d);
    }
    cpio.char_dev("dev/console", 5, 1)
        .char_dev("dev/null", 1, 3)
        .file("bin/busybox", 0o755, &busybox)
        .symlink("bin/sh", "busybox")
        .file("e1000.ko", 0o644, &e1000)
        .file("init", 0o755, init.as_bytes())
        .file("udhcpc.script", 0o755, UDHCPC_SCRIPT.as_bytes());
    Ok(cpio.finish())
}

/// Finds `lib/modules/<version>/kernel/drivers/net/ethernet/intel/e1000/<file_name>` in the
/// installer's initrd, whatever the kernel version.
fn find_module(initrd: &Path, file_name: &str) -> crate::Result<Vec<u8>> {
    let suffix = format!("/kernel/drivers/net/ethernet/intel/e1000/{file_name}");
    extract_from_gz_initrd(initrd, |name| {
        name.starts_with("lib/modules/") && name.ends_with(&suffix)
    })
}

/// The start of both probes' `/init`: busybox, the mounts, e1000 and the first network
/// interface up (in `$IF`).
const PROBE_START: &str = r#"#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "E2E-INIT started"
insmod /e1000.ko
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
"#;

/// The NAT probe's `/init` after [`PROBE_START`].
const NAT_INIT: &str = r#"if udhcpc -i "$IF" -s /udhcpc.script -n -q -t 10 -T 3; then
  # Not wget -T: busybox 1.35's wget segfaults with it (exit 139).
  if timeout 20 wget -q -O /tmp/page "@URL@"; then
    echo "E2E-FETCH-OK $(cat /tmp/page)"
  else
    echo "E2E-FETCH-FAIL (wget exit $?)"
  fi
else
  echo "E2E-NO-LEASE on $IF"
fi
sync
poweroff -f
"#;

/// The machine probe's `/init` after [`PROBE_START`].
const MACHINE_INIT: &str = r#"DONE=$(sed -n 's/.*done=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$DONE" ]; then
  if udhcpc -i "$IF" -s /udhcpc.script -n -q -t 10 -T 3; then
    # Not wget -T: busybox 1.35's wget segfaults with it (exit 139).
    if timeout 20 wget -q -O /tmp/done "$DONE"; then
      echo "E2E-CALLBACK-OK $(cat /tmp/done)"
    else
      echo "E2E-CALLBACK-FAIL (wget exit $?)"
    fi
  else
    echo "E2E-NO-LEASE on $IF"
  fi
fi
echo "E2E-MACHINE-BOOTED"
sync
reboot -f
"#;

pub(crate) const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    echo "E2E-LEASE ip=$ip mask=$mask router=$router dns=$dns serverid=$serverid"
    ;;
esac
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_archive_reads_back() {
        let mut w = CpioWriter::new();
        w.dir("a")
            .file("a/b", 0o644, b"hello")
            .file("c", 0o755, b"xyz1");
        let archive = w.finish();
        assert!(archive.len().is_multiple_of(4));
        // Two archives back to back with NUL padding between them, like real initrds.
        let mut two = archive.clone();
        two.extend_from_slice(&[0; 512]);
        let mut w2 = CpioWriter::new();
        w2.file("d", 0o644, b"second");
        two.extend_from_slice(&w2.finish());
        assert_eq!(
            find_member(&two[..], |n| n == "a/b").unwrap().unwrap(),
            b"hello"
        );
        assert_eq!(
            find_member(&two[..], |n| n == "c").unwrap().unwrap(),
            b"xyz1"
        );
        assert_eq!(
            find_member(&two[..], |n| n == "d").unwrap().unwrap(),
            b"second"
        );
        assert_eq!(find_member(&two[..], |n| n == "nope").unwrap(), None);
    }
}
