//! Diskless machines: a kernel, an initrd and a root file system that all live on the server.
//!
//! Two kinds of root (see docs/diskless.md):
//! * **live image in RAM** (`--diskless-live IMAGE`): a squashfs under the boot root, fetched
//!   over `serve`'s own HTTP server at boot. The kernel command line follows Debian live-boot:
//!   `boot=live fetch=http://SERVER/IMAGE ip=dhcp`.
//! * **NFS root** (`--diskless-nfs [SERVER:]/EXPORT[,OPTIONS]`): an export of an NFS server
//!   (the kernel's nfsd or NFS-Ganesha; pocketpxe does not serve NFS), read-only and shared by
//!   every client, with a RAM overlay per client: `root=/dev/nfs nfsroot=SERVER:/EXPORT,OPTIONS
//!   ip=dhcp ro overlayroot=tmpfs` (the kernel's and initramfs-tools' `nfsroot=` syntax, and
//!   the `overlayroot` package's switch for the RAM overlay).
//!
//! [`Profile::prepare`] checks at start that what the entries point to is there (the kernel,
//! initrd and image as regular files under the root, HTTP on for a live image; for NFS that the
//! server answers NFSv4 and that the export exists, by an RPC `COMPOUND` of `PUTROOTFH` and
//! `LOOKUP`s, RFC 7530 §16.2 and §16.24) and writes the boot entries: [`IPXE_SCRIPT`],
//! [`PXELINUX_MENU`] and [`GRUB_MENU`], with the [`crate::fetch::menus::MARKER`] rule (a file
//! edited by hand is kept).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::fetch::menus::{MARKER, MenuWrite};

/// The iPXE script, relative to the root; iPXE clients get it by default when a profile is set.
pub const IPXE_SCRIPT: &str = "diskless/boot.ipxe";
/// The pxelinux menu, relative to the root: pxelinux reads `pxelinux.cfg/default` next to
/// itself, so BIOS clients boot `diskless/pxelinux.0` (a copy or link of pxelinux.0 and its
/// `ldlinux.c32` put there).
pub const PXELINUX_MENU: &str = "diskless/pxelinux.cfg/default";
/// The GRUB menu, relative to the root, for `configfile` or a GRUB built with this prefix.
pub const GRUB_MENU: &str = "diskless/grub/grub.cfg";
/// The NFS port (RFC 7530 §3.1).
pub const NFS_PORT: u16 = 2049;

/// A diskless profile: what every diskless client boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The kernel, relative to the root.
    pub kernel: String,
    /// The initrd, relative to the root; it must know the root kind's command line.
    pub initrd: String,
    /// Where the root file system comes from.
    pub root: RootKind,
    /// More kernel parameters (e.g. `console=ttyS0,115200`).
    pub append: Option<String>,
}

/// Where a diskless client's root file system comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKind {
    /// A squashfs image under the boot root, fetched over HTTP into RAM.
    Live {
        /// The image, relative to the root.
        image: String,
    },
    /// An NFS export, mounted read-only with a RAM overlay.
    Nfs(NfsRoot),
}

/// `--diskless-nfs [SERVER:]/EXPORT[,OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsRoot {
    /// The NFS server; `None`: this server's address on the interface.
    pub server: Option<Ipv4Addr>,
    /// The exported path (NFSv4: its path in the server's pseudo file system).
    pub export: String,
    /// Mount options for `nfsroot=` (default `vers=4.1`).
    pub options: String,
}

/// Why a diskless profile cannot be served. The message names the flag, file or server.
#[derive(Debug, thiserror::Error)]
#[error("diskless: {0}")]
pub struct DisklessError(pub String);

impl FromStr for NfsRoot {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (location, options) = match s.split_once(',') {
            Some((l, o)) => (l, o.to_owned()),
            None => (s, DEFAULT_NFS_OPTIONS.to_owned()),
        };
        let (server, export) = match location.split_once(':') {
            Some((ip, export)) => {
                let ip = ip.parse::<Ipv4Addr>().map_err(|_| {
                    format!("'{ip}' is not an IPv4 address (the kernel's nfsroot= needs one)")
                })?;
                (Some(ip), export)
            }
            None => (None, location),
        };
        if !export.starts_with('/') || !export.chars().all(safe_char) {
            return Err(format!(
                "'{s}' is not [SERVER:]/EXPORT[,OPTIONS], e.g. 192.168.242.1:/srv/nfsroot"
            ));
        }
        if options.is_empty()
            || !options
                .chars()
                .all(|c| c == ',' || (safe_char(c) && c != '/'))
        {
            return Err(format!(
                "'{options}' are not NFS mount options, e.g. vers=4.1"
            ));
        }
        Ok(Self {
            server,
            export: export.to_owned(),
            options,
        })
    }
}

impl NfsRoot {
    /// Whether clients mount it with NFSv4 (`vers=4…` or `nfsvers=4…`, or no version given).
    pub fn is_v4(&self) -> bool {
        self.options
            .split(',')
            .find_map(|o| {
                o.strip_prefix("vers=")
                    .or_else(|| o.strip_prefix("nfsvers="))
            })
            .is_none_or(|v| v.starts_with('4'))
    }
}

impl std::fmt::Display for NfsRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(ip) = self.server {
            write!(f, "{ip}:")?;
        }
        write!(f, "{},{}", self.export, self.options)
    }
}

impl Profile {
    /// The profile of `serve`'s flags, or `None` when none is set.
    ///
    /// # Errors
    /// When the flags do not make a whole profile (both root kinds, a root without kernel and
    /// initrd, or the other way round), or a path is not a plain relative path.
    pub fn from_args(args: &crate::cli::ServeArgs) -> Result<Option<Self>, DisklessError> {
        let root = match (&args.diskless_live, &args.diskless_nfs) {
            (Some(_), Some(_)) => {
                return Err(DisklessError(
                    "--diskless-live and --diskless-nfs are two kinds of root: give one".into(),
                ));
            }
            (Some(image), None) => Some(RootKind::Live {
                image: rel_path("--diskless-live", image)?,
            }),
            (None, Some(nfs)) => Some(RootKind::Nfs(nfs.clone())),
            (None, None) => None,
        };
        let Some(root) = root else {
            if args.diskless_kernel.is_some() || args.diskless_initrd.is_some() {
                return Err(DisklessError(
                    "--diskless-kernel and --diskless-initrd need a root: --diskless-live IMAGE \
                     or --diskless-nfs SERVER:/EXPORT"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let need = |flag: &str, v: &Option<String>| match v {
            Some(p) => rel_path(flag, p),
            None => Err(DisklessError(format!(
                "a diskless root needs {flag} PATH (relative to --root)"
            ))),
        };
        Ok(Some(Self {
            kernel: need("--diskless-kernel", &args.diskless_kernel)?,
            initrd: need("--diskless-initrd", &args.diskless_initrd)?,
            root,
            append: args
                .diskless_append
                .clone()
                .filter(|a| !a.trim().is_empty()),
        }))
    }

    /// The kernel command line (without `initrd=`) for clients of `server`, whose HTTP server
    /// listens on `http_port`.
    pub fn kernel_args(&self, server: Ipv4Addr, http_port: u16) -> String {
        let mut args = match &self.root {
            RootKind::Live { image } => {
                format!(
                    "boot=live fetch={} ip=dhcp",
                    http_url(server, http_port, image)
                )
            }
            RootKind::Nfs(nfs) => format!(
                "root=/dev/nfs nfsroot={}:{},{} ip=dhcp ro overlayroot=tmpfs",
                nfs.server.unwrap_or(server),
                nfs.export,
                nfs.options
            ),
        };
        if let Some(append) = &self.append {
            args.push(' ');
            args.push_str(append.trim());
        }
        args
    }

    /// `diskless/boot.ipxe`: kernel and initrd by absolute paths, so over the protocol and
    /// from the server the script came from.
    pub fn ipxe_script(&self, server: Ipv4Addr, http_port: u16) -> String {
        format!(
            "#!ipxe\n{MARKER}\necho pocketpxe: diskless, {what}\nkernel /{kernel} initrd=initrd.img {args}\ninitrd --name initrd.img /{initrd}\nboot\n",
            what = self.describe(server),
            kernel = self.kernel,
            initrd = self.initrd,
            args = self.kernel_args(server, http_port),
        )
    }

    /// `diskless/pxelinux.cfg/default`: one entry, booted at once. `::` makes the paths
    /// absolute on the server, whatever directory pxelinux.0 came from.
    pub fn pxelinux_menu(&self, server: Ipv4Addr, http_port: u16) -> String {
        format!(
            "{MARKER}\nDEFAULT diskless\nPROMPT 0\nTIMEOUT 0\nSAY pocketpxe: diskless, {what}\nLABEL diskless\n  KERNEL ::/{kernel}\n  APPEND initrd=::/{initrd} {args}\n",
            what = self.describe(server),
            kernel = self.kernel,
            initrd = self.initrd,
            args = self.kernel_args(server, http_port),
        )
    }

    /// `diskless/grub/grub.cfg`: one entry, booted at once; files from this server over TFTP.
    pub fn grub_menu(&self, server: Ipv4Addr, http_port: u16) -> String {
        format!(
            "{MARKER}\nset default=0\nset timeout=0\nmenuentry 'pocketpxe: diskless, {what}' {{\n    linux  (tftp,{server})/{kernel} {args}\n    initrd (tftp,{server})/{initrd}\n}}\n",
            what = self.describe(server),
            kernel = self.kernel,
            initrd = self.initrd,
            args = self.kernel_args(server, http_port),
        )
    }

    /// Checks that what the entries point to is there, then writes them into `root`.
    ///
    /// # Errors
    /// When a file is missing or not a regular file, a live image without HTTP, an NFS server
    /// that does not answer or lacks the export, or an entry cannot be written.
    pub fn prepare(
        &self,
        root: &Path,
        server: Ipv4Addr,
        http_port: Option<u16>,
    ) -> Result<(), DisklessError> {
        check_file(root, "--diskless-kernel", &self.kernel)?;
        check_file(root, "--diskless-initrd", &self.initrd)?;
        let port = match &self.root {
            RootKind::Live { image } => {
                let Some(port) = http_port else {
                    return Err(DisklessError(format!(
                        "the live image {image} is fetched over HTTP, but --no-http turns \
                         serve's HTTP server off"
                    )));
                };
                check_file(root, "--diskless-live", image)?;
                if !is_squashfs(&root.join(image)) {
                    tracing::warn!(
                        image = %root.join(image).display(),
                        "the live image is not a squashfs (no 'hsqs' magic): live-boot may not mount it"
                    );
                }
                port
            }
            RootKind::Nfs(nfs) => {
                let addr = SocketAddrV4::new(nfs.server.unwrap_or(server), nfs_port(&nfs.options));
                match probe_nfs(addr, &nfs.export, PROBE_TIMEOUT) {
                    Ok(Probe::ExportFound) => {
                        tracing::info!(server = %addr, export = nfs.export, "NFS export found");
                    }
                    // NFSv2/3 clients mount the export's own path, which NFSv4's name space
                    // (the pseudo file system) need not have: there it is only a warning.
                    Ok(Probe::ExportMissing(why)) if !nfs.is_v4() => tracing::warn!(
                        server = %addr,
                        export = nfs.export,
                        "{why}; for {} clients that may be fine (checked over NFSv4 only)",
                        nfs.options
                    ),
                    Ok(Probe::ExportMissing(why)) => {
                        return Err(DisklessError(format!(
                            "NFS root {nfs}: server {addr}: {why}"
                        )));
                    }
                    Ok(Probe::Answered(why)) => tracing::warn!(
                        server = %addr,
                        export = nfs.export,
                        "the NFS server answers, but the export could not be looked up: {why}"
                    ),
                    Err(why) => {
                        return Err(DisklessError(format!(
                            "NFS root {nfs}: server {addr}: {why}"
                        )));
                    }
                }
                http_port.unwrap_or(80)
            }
        };
        for (rel, text) in [
            (IPXE_SCRIPT, self.ipxe_script(server, port)),
            (PXELINUX_MENU, self.pxelinux_menu(server, port)),
            (GRUB_MENU, self.grub_menu(server, port)),
        ] {
            let outcome = crate::fetch::write_generated(root, rel, &text)
                .map_err(|e| DisklessError(e.to_string()))?;
            if outcome == MenuWrite::KeptHandEdited {
                tracing::warn!(
                    file = rel,
                    "boot entry edited by hand (no pocketpxe marker line): left as it is"
                );
            }
        }
        tracing::info!(
            kernel = self.kernel,
            initrd = self.initrd,
            ipxe = IPXE_SCRIPT,
            pxelinux = PXELINUX_MENU,
            grub = GRUB_MENU,
            "diskless profile ready: {}",
            self.describe(server)
        );
        Ok(())
    }

    fn describe(&self, server: Ipv4Addr) -> String {
        match &self.root {
            RootKind::Live { image } => format!("live image /{image} in RAM"),
            RootKind::Nfs(nfs) => format!(
                "NFS root {}:{} with a RAM overlay",
                nfs.server.unwrap_or(server),
                nfs.export
            ),
        }
    }
}

/// What an NFS server said to [`probe_nfs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `PUTROOTFH` and a `LOOKUP` of each component of the export succeeded.
    ExportFound,
    /// The lookup failed: no such path in the server's NFSv4 name space; the reason.
    ExportMissing(String),
    /// The server answered RPC but the lookup could not be made (e.g. it refuses NFSv4.0 or
    /// the credentials); the reason.
    Answered(String),
}

/// Asks the NFS server at `addr` over TCP whether `export` exists: one RPC call (RFC 5531)
/// of NFSv4.0's `COMPOUND` (RFC 7530 §16.2) with `PUTROOTFH` and one `LOOKUP` per path
/// component, credentials `AUTH_SYS` uid 0.
///
/// # Errors
/// When nothing answers within `timeout`, or the reply is not RPC.
pub fn probe_nfs(addr: SocketAddrV4, export: &str, timeout: Duration) -> Result<Probe, String> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout)
        .map_err(|e| format!("no NFS server answers on TCP port {} ({e})", addr.port()))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let call = compound_call(XID, export);
    stream
        .write_all(&call)
        .map_err(|e| format!("sending an NFS call: {e}"))?;
    let reply = read_record(&mut stream).map_err(|e| format!("reading the NFS reply: {e}"))?;
    parse_compound_reply(&reply, export)
}

// ---- private helpers ----

const DEFAULT_NFS_OPTIONS: &str = "vers=4.1";
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const XID: u32 = 0x7070_7865;
const NFS_PROGRAM: u32 = 100_003;
const OP_LOOKUP: u32 = 15;
const OP_PUTROOTFH: u32 = 24;
const NFS4ERR_NOENT: u32 = 2;
const NFS4ERR_NOTDIR: u32 = 20;
const MAX_REPLY: usize = 64 * 1024;

fn safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._-+=:@".contains(c)
}

/// A path relative to the root: no leading `/`, no empty, `.` or `..` component, and only
/// characters a kernel command line and a URL carry as they are.
fn rel_path(flag: &str, path: &str) -> Result<String, DisklessError> {
    let p = path.trim_start_matches('/');
    let ok = !p.is_empty()
        && p.chars().all(|c| safe_char(c) && c != ':')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(p.to_owned())
    } else {
        Err(DisklessError(format!(
            "{flag} '{path}' is not a path inside --root made of letters, digits and ._-+=@"
        )))
    }
}

fn http_url(server: Ipv4Addr, port: u16, path: &str) -> String {
    if port == 80 {
        format!("http://{server}/{path}")
    } else {
        format!("http://{server}:{port}/{path}")
    }
}

fn check_file(root: &Path, flag: &str, rel: &str) -> Result<(), DisklessError> {
    let path = root.join(rel);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(DisklessError(format!(
            "{flag}: {} is not a regular file",
            path.display()
        ))),
        Err(e) => Err(DisklessError(format!("{flag}: {}: {e}", path.display()))),
    }
}

fn is_squashfs(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"hsqs"
}

fn nfs_port(options: &str) -> u16 {
    options
        .split(',')
        .find_map(|o| o.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .filter(|p| *p != 0)
        .unwrap_or(NFS_PORT)
}

/// XDR (RFC 4506): big-endian words, opaque data padded to 4 bytes.
fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_opaque(buf: &mut Vec<u8>, data: &[u8]) {
    put_u32(buf, u32::try_from(data.len()).unwrap_or(u32::MAX));
    buf.extend_from_slice(data);
    buf.resize(buf.len() + (4 - data.len() % 4) % 4, 0);
}

/// The record-marked RPC call of `COMPOUND { PUTROOTFH, LOOKUP comp… }`.
fn compound_call(xid: u32, export: &str) -> Vec<u8> {
    let mut m = Vec::new();
    put_u32(&mut m, xid);
    put_u32(&mut m, 0); // CALL
    put_u32(&mut m, 2); // RPC version
    put_u32(&mut m, NFS_PROGRAM);
    put_u32(&mut m, 4); // NFS version 4
    put_u32(&mut m, 1); // NFSPROC4_COMPOUND
    // AUTH_SYS (RFC 5531 Appendix A): stamp, machine name, uid, gid, no more gids.
    let mut cred = Vec::new();
    put_u32(&mut cred, 0);
    put_opaque(&mut cred, b"pocketpxe");
    put_u32(&mut cred, 0);
    put_u32(&mut cred, 0);
    put_u32(&mut cred, 0);
    put_u32(&mut m, 1);
    put_opaque(&mut m, &cred);
    put_u32(&mut m, 0); // verifier AUTH_NONE
    put_u32(&mut m, 0);
    let comps: Vec<&str> = export.split('/').filter(|c| !c.is_empty()).collect();
    put_opaque(&mut m, b"pocketpxe"); // tag
    put_u32(&mut m, 0); // minorversion
    put_u32(&mut m, u32::try_from(comps.len() + 1).unwrap_or(u32::MAX));
    put_u32(&mut m, OP_PUTROOTFH);
    for c in comps {
        put_u32(&mut m, OP_LOOKUP);
        put_opaque(&mut m, c.as_bytes());
    }
    let mut rec = Vec::with_capacity(m.len() + 4);
    put_u32(&mut rec, 0x8000_0000 | u32::try_from(m.len()).unwrap_or(0));
    rec.extend_from_slice(&m);
    rec
}

/// Reads one RPC record (possibly in fragments, RFC 5531 §11), at most [`MAX_REPLY`] bytes.
fn read_record(stream: &mut impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut mark = [0u8; 4];
        stream.read_exact(&mut mark)?;
        let mark = u32::from_be_bytes(mark);
        let len = (mark & 0x7fff_ffff) as usize;
        if out.len() + len > MAX_REPLY {
            return Err(std::io::Error::other("reply too long"));
        }
        let start = out.len();
        out.resize(start + len, 0);
        stream.read_exact(&mut out[start..])?;
        if mark & 0x8000_0000 != 0 {
            return Ok(out);
        }
    }
}

fn parse_compound_reply(reply: &[u8], export: &str) -> Result<Probe, String> {
    let mut words = Words(reply);
    let not_rpc = || "the answer is not an RPC reply: not an NFS server?".to_owned();
    let (xid, kind) = (
        words.u32().ok_or_else(not_rpc)?,
        words.u32().ok_or_else(not_rpc)?,
    );
    if xid != XID || kind != 1 {
        return Err(not_rpc());
    }
    match words.u32().ok_or_else(not_rpc)? {
        0 => {}
        _ => {
            return Ok(Probe::Answered(
                "the RPC call was denied (credentials)".into(),
            ));
        }
    }
    words.u32().ok_or_else(not_rpc)?; // verifier flavor
    words.opaque().ok_or_else(not_rpc)?;
    match words.u32().ok_or_else(not_rpc)? {
        0 => {}
        1 => return Err("the server does not run NFS (PROG_UNAVAIL)".into()),
        2 => {
            return Ok(Probe::Answered(
                "the server does not speak NFSv4 (PROG_MISMATCH)".into(),
            ));
        }
        other => return Ok(Probe::Answered(format!("RPC accept status {other}"))),
    }
    let status = words.u32().ok_or_else(not_rpc)?;
    match status {
        0 => Ok(Probe::ExportFound),
        NFS4ERR_NOENT | NFS4ERR_NOTDIR => Ok(Probe::ExportMissing(format!(
            "the export {export} does not exist there (NFSv4 LOOKUP: error {status})"
        ))),
        other => Ok(Probe::Answered(format!("NFSv4 COMPOUND error {other}"))),
    }
}

struct Words<'a>(&'a [u8]);

impl Words<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn opaque(&mut self) -> Option<&[u8]> {
        let len = self.u32()? as usize;
        let padded = len.checked_add((4 - len % 4) % 4)?;
        if padded > self.0.len() {
            return None;
        }
        let (data, rest) = self.0.split_at(padded);
        self.0 = rest;
        Some(&data[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Profile {
        Profile {
            kernel: "live/vmlinuz".into(),
            initrd: "live/initrd.img".into(),
            root: RootKind::Live {
                image: "live/filesystem.squashfs".into(),
            },
            append: Some("console=ttyS0,115200".into()),
        }
    }

    fn nfs(s: &str) -> Profile {
        Profile {
            root: RootKind::Nfs(s.parse().unwrap()),
            append: None,
            ..live()
        }
    }

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[test]
    fn command_lines_name_the_root() {
        assert_eq!(
            live().kernel_args(SERVER, 80),
            "boot=live fetch=http://10.0.0.1/live/filesystem.squashfs ip=dhcp console=ttyS0,115200"
        );
        assert_eq!(
            live().kernel_args(SERVER, 8080),
            "boot=live fetch=http://10.0.0.1:8080/live/filesystem.squashfs ip=dhcp console=ttyS0,115200"
        );
        assert_eq!(
            nfs("/srv/root").kernel_args(SERVER, 80),
            "root=/dev/nfs nfsroot=10.0.0.1:/srv/root,vers=4.1 ip=dhcp ro overlayroot=tmpfs"
        );
        assert_eq!(
            nfs("10.0.0.9:/x,vers=3,port=2050").kernel_args(SERVER, 80),
            "root=/dev/nfs nfsroot=10.0.0.9:/x,vers=3,port=2050 ip=dhcp ro overlayroot=tmpfs"
        );
        assert_eq!(nfs_port("vers=3,port=2050"), 2050);
        let v = |s: &str| s.parse::<NfsRoot>().unwrap().is_v4();
        assert!(v("/x") && v("/x,vers=4.2") && v("/x,ro,nfsvers=4"));
        assert!(!v("/x,vers=3") && !v("/x,nfsvers=3,tcp"));
        assert_eq!(nfs_port("vers=4.1"), NFS_PORT);
    }

    #[test]
    fn entries_boot_the_same_kernel_and_command_line() {
        let p = live();
        let args = p.kernel_args(SERVER, 80);
        let ipxe = p.ipxe_script(SERVER, 80);
        assert!(ipxe.starts_with(&format!("#!ipxe\n{MARKER}\n")), "{ipxe}");
        assert!(crate::fetch::menus::is_generated(ipxe.as_bytes()));
        assert!(ipxe.contains(&format!(
            "kernel /live/vmlinuz initrd=initrd.img {args}\ninitrd --name initrd.img /live/initrd.img\nboot\n"
        )));
        let pxe = p.pxelinux_menu(SERVER, 80);
        assert!(pxe.starts_with(MARKER));
        assert!(pxe.contains(&format!(
            "  KERNEL ::/live/vmlinuz\n  APPEND initrd=::/live/initrd.img {args}\n"
        )));
        let grub = p.grub_menu(SERVER, 80);
        assert!(grub.contains(&format!(
            "    linux  (tftp,10.0.0.1)/live/vmlinuz {args}\n    initrd (tftp,10.0.0.1)/live/initrd.img\n"
        )));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!("srv/root".parse::<NfsRoot>().is_err());
        assert!("nfs.example:/srv".parse::<NfsRoot>().is_err());
        assert!("10.0.0.1:/srv root".parse::<NfsRoot>().is_err());
        assert!("10.0.0.1:/srv,".parse::<NfsRoot>().is_err());
        let ok: NfsRoot = "10.0.0.1:/srv/root".parse().unwrap();
        assert_eq!(ok.to_string(), "10.0.0.1:/srv/root,vers=4.1");
        assert!(rel_path("--x", "../etc/passwd").is_err());
        assert!(rel_path("--x", "a//b").is_err());
        assert!(rel_path("--x", "a b").is_err());
        assert_eq!(
            rel_path("--x", "/live/x.squashfs").unwrap(),
            "live/x.squashfs"
        );
    }

    #[test]
    fn flags_make_a_whole_profile_or_none() {
        use crate::cli::{Cli, Command};
        use clap::Parser as _;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["pocketpxe", "serve", "--interface", "br0", "--root", "/r"];
            argv.extend(extra);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Serve(args) => Profile::from_args(&args),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(parse(&[]).unwrap(), None);
        let p = parse(&[
            "--diskless-kernel",
            "k",
            "--diskless-initrd",
            "i",
            "--diskless-live",
            "img.squashfs",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            p.root,
            RootKind::Live {
                image: "img.squashfs".into()
            }
        );
        let e = parse(&["--diskless-live", "img"]).unwrap_err().to_string();
        assert!(e.contains("--diskless-kernel"), "{e}");
        let e = parse(&["--diskless-kernel", "k", "--diskless-initrd", "i"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("need a root"), "{e}");
    }

    #[test]
    fn missing_files_and_http_off_are_named() {
        let dir = std::env::temp_dir().join(format!("pocketpxe-diskless-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("live")).unwrap();
        let p = live();
        let e = p.prepare(&dir, SERVER, Some(80)).unwrap_err().to_string();
        assert!(
            e.contains("live/vmlinuz") && e.contains("--diskless-kernel"),
            "{e}"
        );
        std::fs::write(dir.join("live/vmlinuz"), b"k").unwrap();
        std::fs::write(dir.join("live/initrd.img"), b"i").unwrap();
        let e = p.prepare(&dir, SERVER, Some(80)).unwrap_err().to_string();
        assert!(e.contains("filesystem.squashfs"), "{e}");
        std::fs::write(dir.join("live/filesystem.squashfs"), b"hsqs....").unwrap();
        let e = p.prepare(&dir, SERVER, None).unwrap_err().to_string();
        assert!(e.contains("--no-http"), "{e}");
        p.prepare(&dir, SERVER, Some(80)).unwrap();
        let script = std::fs::read_to_string(dir.join(IPXE_SCRIPT)).unwrap();
        assert_eq!(script, p.ipxe_script(SERVER, 80));
        assert!(dir.join(PXELINUX_MENU).is_file() && dir.join(GRUB_MENU).is_file());
        // A hand-edited entry is kept.
        std::fs::write(dir.join(IPXE_SCRIPT), "#!ipxe\nmine\n").unwrap();
        p.prepare(&dir, SERVER, Some(80)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(IPXE_SCRIPT)).unwrap(),
            "#!ipxe\nmine\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nfs_probe_reports_a_server_that_is_not_there() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = probe_nfs(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            "/srv",
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(e.contains("no NFS server answers"), "{e}");
    }

    #[test]
    fn compound_call_and_replies() {
        let call = compound_call(XID, "/srv/root");
        let mark = u32::from_be_bytes(call[..4].try_into().unwrap());
        assert_eq!(mark & 0x7fff_ffff, u32::try_from(call.len() - 4).unwrap());
        assert!(mark & 0x8000_0000 != 0);
        // Ends with PUTROOTFH, LOOKUP "srv", LOOKUP "root".
        let tail: Vec<u8> = [
            &3u32.to_be_bytes()[..],
            &OP_PUTROOTFH.to_be_bytes(),
            &OP_LOOKUP.to_be_bytes(),
            &3u32.to_be_bytes(),
            b"srv\0",
            &OP_LOOKUP.to_be_bytes(),
            &4u32.to_be_bytes(),
            b"root",
        ]
        .concat();
        assert!(call.ends_with(&tail));
        let reply = |status: u32| {
            let mut r = Vec::new();
            for w in [XID, 1, 0, 0, 0, 0, status] {
                put_u32(&mut r, w);
            }
            r
        };
        assert_eq!(
            parse_compound_reply(&reply(0), "/srv").unwrap(),
            Probe::ExportFound
        );
        let Ok(Probe::ExportMissing(e)) = parse_compound_reply(&reply(NFS4ERR_NOENT), "/srv")
        else {
            panic!("NOENT is a missing export");
        };
        assert!(e.contains("/srv does not exist"), "{e}");
        assert!(matches!(
            parse_compound_reply(&reply(10021), "/srv"),
            Ok(Probe::Answered(_))
        ));
        assert!(parse_compound_reply(b"HTTP/1.1 400", "/srv").is_err());
        let mut fragmented = Vec::new();
        put_u32(&mut fragmented, 2);
        fragmented.extend_from_slice(b"ab");
        put_u32(&mut fragmented, 0x8000_0001);
        fragmented.extend_from_slice(b"c");
        assert_eq!(read_record(&mut &fragmented[..]).unwrap(), b"abc");
    }
}
