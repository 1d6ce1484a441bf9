//! Scenario: diskless clients. A VM with no disk boots (SeaBIOS + iPXE, the iPXE script that
//! `serve` writes for its diskless profile) into a shell whose root file system is served by
//! the host:
//! * live image: a squashfs the test builds, fetched over `serve`'s HTTP server into RAM;
//! * NFS root: a directory the test owns, exported read-only by NFS-Ganesha (started and
//!   stopped by the test in the server namespace), mounted with NFSv4.
//!
//! Both get a tmpfs overlay. The root's `/sbin/init` prints a marker file of the served root
//! (random per run) and writes a file to `/etc`, which must land in the RAM overlay (and, for
//! NFS, not in the export). The client initramfs is the test's own busybox one, with the
//! modules of the Debian kernel package matching the netboot kernel; it reads the command line
//! pocketpxe generated (`fetch=` or `nfsroot=`).

// The helper below is test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pocketpxe_tests::diskless::{self, Ganesha, marker};
use pocketpxe_tests::netns::{Lab, SERVER_IP};
use pocketpxe_tests::process::{Proc, run};
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::{self, Serve};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::TftpRoot;
use pocketpxe_tests::{begin, gate, secs};

/// DHCP (~20 s with iPXE's IPv6 wait), the kernel, its boot and the root under TCG.
const DONE: Duration = Duration::from_secs(300);
const KERNEL: &str = "diskless-e2e/vmlinuz";
const INITRD: &str = "diskless-e2e/initrd.img";
const IMAGE: &str = "diskless-e2e/root.squashfs";
const PSEUDO: &str = "/e2e-root";
/// syslinux's core module, which pxelinux.0 loads from its own directory.
const LDLINUX: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/boot-screens/ldlinux.c32";

#[test]
fn diskless_live_image_over_http() {
    live_image(Entry::Ipxe);
}

/// The same root through the generated pxelinux menu: pxelinux.0 and ldlinux.c32 put in
/// `diskless/`, kernel and initrd over TFTP by the menu's absolute (`::/…`) paths.
#[test]
fn diskless_live_image_via_pxelinux_menu() {
    live_image(Entry::Pxelinux);
}

/// The same root on a UEFI machine through the generated GRUB menu: EDK2's PXE loads Debian's
/// shim and GRUB, whose own `grub.cfg` goes on to `diskless/grub/grub.cfg` (`configfile`);
/// kernel and initrd over TFTP by the menu's `(tftp,SERVER)/…` paths.
#[test]
fn diskless_live_image_via_grub_menu() {
    live_image(Entry::Grub);
}

/// Which generated entry the client boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// `diskless/boot.ipxe`, the iPXE default of a profile.
    Ipxe,
    /// `diskless/pxelinux.cfg/default`, with `--boot bios=diskless/pxelinux.0`.
    Pxelinux,
    /// `diskless/grub/grub.cfg`, from Debian's netboot GRUB (UEFI).
    Grub,
}

fn live_image(entry: Entry) {
    let test = match entry {
        Entry::Ipxe => "diskless_live_image_over_http",
        Entry::Pxelinux => "diskless_live_image_via_pxelinux_menu",
        Entry::Grub => "diskless_live_image_via_grub_menu",
    };
    let mut needs = needs();
    needs.push(gate::Need::Program("mksquashfs"));
    if entry == Entry::Pxelinux {
        needs.extend_from_slice(gate::BIOS);
        needs.push(gate::Need::File(LDLINUX));
    }
    if entry == Entry::Grub {
        needs.extend_from_slice(gate::UEFI);
    }
    let Some(_lock) = begin(test, &needs) else {
        return;
    };
    let dir = TempDir::new("diskless-live").unwrap();
    // GRUB: the Debian netboot tree (shim, GRUB and its prefix directory) as the root.
    let debian = (entry == Entry::Grub).then(|| TftpRoot::debian_installer().unwrap());
    let root = debian
        .as_ref()
        .map_or_else(|| dir.join("root"), |d| d.path().to_owned());
    if let Some(debian) = &debian {
        debian
            .write(
                "debian-installer/amd64/grub/grub.cfg",
                b"set timeout=0\nconfigfile /diskless/grub/grub.cfg\n",
            )
            .unwrap();
    }
    let marker = new_marker();
    boot_files(&root, &dir.join("modules"));
    let tree = dir.join("tree");
    diskless::served_root(&tree, &marker).unwrap();
    diskless::squashfs(&tree, &root.join(IMAGE)).unwrap();

    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let server_log = dir.join("pocketpxe.log");
    let mut serve = Serve::new(&root, dir.path())
        .flags(&PROFILE)
        .flags(&["--diskless-live", IMAGE]);
    if entry == Entry::Pxelinux {
        let netboot = Path::new(gate::DEBIAN_NETBOOT).join("debian-installer/amd64");
        std::fs::create_dir_all(root.join("diskless")).unwrap();
        std::fs::copy(netboot.join("pxelinux.0"), root.join("diskless/pxelinux.0")).unwrap();
        std::fs::copy(LDLINUX, root.join("diskless/ldlinux.c32")).unwrap();
        serve = serve.boot("bios", "diskless/pxelinux.0");
    }
    if entry == Entry::Grub {
        serve = serve.boot("efi-x64", "debian-installer/amd64/bootnetx64.efi");
    }
    let _server = serve.start(&lab.server, &server_log).unwrap();
    let n = match entry {
        Entry::Ipxe => 0x31,
        Entry::Pxelinux => 0x33,
        Entry::Grub => 0x34,
    };
    let (lower, took) = boot_and_check(
        &root,
        entry,
        &lab,
        &tap,
        n,
        &dir.join("serial.log"),
        &marker,
    );
    assert!(lower.contains(" squashfs ro"), "{lower}");

    let server_text = std::fs::read_to_string(&server_log).unwrap();
    let fetched = server_text.lines().any(|l| {
        l.contains("HTTP transfer ended")
            && l.contains(&format!("file={IMAGE} "))
            && l.contains("status=200")
            && l.contains("outcome=done")
    });
    assert!(
        fetched,
        "no complete HTTP download of the image:\n{server_text}"
    );
    pocketpxe_tests::report(&format!(
        "diskless live image over HTTP ({entry:?} entry): root shell after {}",
        secs(took)
    ));
}

#[test]
fn diskless_nfs_root_with_ram_overlay() {
    let mut needs = needs();
    needs.push(gate::Need::Program("ganesha.nfsd"));
    let Some(_lock) = begin("diskless_nfs_root_with_ram_overlay", &needs) else {
        return;
    };
    let dir = TempDir::new("diskless-nfs").unwrap();
    let root = dir.join("root");
    let marker = new_marker();
    boot_files(&root, &dir.join("modules"));
    let export = dir.join("nfsroot");
    diskless::served_root(&export, &marker).unwrap();

    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    // serve refuses a profile whose export is missing: first a wrong one, then the right one.
    let mut ganesha = Ganesha::start(&lab.server, dir.path(), &export, PSEUDO).unwrap();
    let refused = Serve::new(&root, dir.path())
        .flags(&PROFILE)
        .flags(&["--diskless-nfs", "/no-such-export"])
        .start(&lab.server, &dir.join("pocketpxe-refused.log"));
    let log = std::fs::read_to_string(dir.join("pocketpxe-refused.log")).unwrap();
    assert!(
        refused.is_err() && log.contains("the export /no-such-export does not exist"),
        "serve should refuse a missing export:\n{log}"
    );
    let server_log = dir.join("pocketpxe.log");
    let _server = Serve::new(&root, dir.path())
        .flags(&PROFILE)
        .flags(&["--diskless-nfs", PSEUDO])
        .start(&lab.server, &server_log)
        .unwrap();
    let server_text = std::fs::read_to_string(&server_log).unwrap();
    assert!(server_text.contains("NFS export found"), "{server_text}");
    let (lower, took) = boot_and_check(
        &root,
        Entry::Ipxe,
        &lab,
        &tap,
        0x32,
        &dir.join("serial.log"),
        &marker,
    );
    assert!(
        lower.contains(&format!("{SERVER_IP}:{PSEUDO} nfs4 ro")),
        "{lower}"
    );
    assert!(
        !export.join("etc/e2e-written").exists(),
        "the client's write reached the shared export"
    );
    ganesha.stop();
    pocketpxe_tests::report(&format!(
        "diskless NFS root (Ganesha, NFSv4) with RAM overlay: root shell after {}",
        secs(took)
    ));
}

fn needs() -> Vec<gate::Need> {
    let mut needs = gate::vm_needs(&[&[gate::Need::File(gate::PXE_E1000_ROM)]]);
    needs.extend([
        gate::Need::File(gate::BUSYBOX),
        gate::Need::KernelModules,
        gate::Need::Program("dpkg-deb"),
        gate::Need::Program("tar"),
        gate::Need::Program("unshare"),
    ]);
    needs
}

fn new_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("served-root-{}-{nanos}", std::process::id())
}

/// The netboot kernel and the diskless initramfs, at [`KERNEL`] and [`INITRD`] under `root`.
fn boot_files(root: &Path, modules_dir: &Path) {
    std::fs::create_dir_all(root.join("diskless-e2e")).unwrap();
    std::fs::create_dir_all(modules_dir).unwrap();
    std::fs::copy(diskless::NETBOOT_KERNEL, root.join(KERNEL)).unwrap();
    let deb = diskless::modules_deb().unwrap();
    let modules = diskless::extract_modules(&deb, modules_dir).unwrap();
    let initrd = diskless::client_initramfs(&modules).unwrap();
    std::fs::write(root.join(INITRD), initrd).unwrap();
}

/// The profile's flags but the root kind.
const PROFILE: [&str; 6] = [
    "--diskless-kernel",
    KERNEL,
    "--diskless-initrd",
    INITRD,
    "--diskless-append",
    "console=ttyS0,115200",
];

/// Boots a VM (no disk; BIOS, or UEFI for the GRUB entry) from the profile `serve` wrote into
/// `root` and checks the root shell's lines; returns the `E2E-LOWER` line and the
/// time to the root shell's end.
fn boot_and_check(
    root: &Path,
    entry: Entry,
    lab: &Lab,
    tap: &str,
    n: u8,
    serial: &Path,
    expected_marker: &str,
) -> (String, Duration) {
    let start = Instant::now();
    let firmware = if entry == Entry::Grub {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let (mut vm, console) = Vm::new(firmware, tap, n, serial).start(&lab.lan).unwrap();
    let (seen, _) = console
        .wait_for_any(&mut vm, &[marker::DONE, marker::FAIL], DONE)
        .unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    let text = console.text();
    let line = |prefix: &str| {
        text.lines()
            .map(|l| l.trim_end_matches('\r'))
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line on the console:\n{text}"))
            .to_owned()
    };
    assert_eq!(seen, 0, "the client failed:\n{text}");
    // The kernel got the command line of the entry serve wrote (iPXE's own messages go to
    // the screen, not the serial line). pxelinux puts `BOOT_IMAGE=…` in front.
    let (file, prefix) = match entry {
        Entry::Ipxe => ("diskless/boot.ipxe", "kernel /"),
        Entry::Pxelinux => ("diskless/pxelinux.cfg/default", "  APPEND"),
        Entry::Grub => ("diskless/grub/grub.cfg", "    linux "),
    };
    let written = std::fs::read_to_string(root.join(file)).unwrap();
    let args = written
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|l| l.trim_start().split_once(' '))
        .map(|(first, rest)| match entry {
            Entry::Ipxe | Entry::Grub => rest.to_owned(),
            Entry::Pxelinux => format!("{first} {rest}"),
        })
        .unwrap_or_else(|| panic!("no kernel line in the generated {file}:\n{written}"));
    let cmdline = text
        .lines()
        .find_map(|l| l.trim_end_matches('\r').split_once("Kernel command line: "))
        .map(|(_, c)| c.trim_end())
        .unwrap_or_else(|| panic!("no kernel command line on the console:\n{text}"));
    match entry {
        Entry::Ipxe => assert_eq!(cmdline, args, "not the generated command line"),
        Entry::Pxelinux | Entry::Grub => assert!(
            cmdline.ends_with(&args) && cmdline.starts_with("BOOT_IMAGE="),
            "not the generated command line: {cmdline}"
        ),
    }
    assert!(line(marker::ROOT_SHELL).ends_with("root=overlay"), "{text}");
    assert_eq!(
        line(marker::MARKER),
        format!("{} {expected_marker}", marker::MARKER)
    );
    assert_eq!(
        line(marker::OVERLAY),
        format!(
            "{} {expected_marker}-written-by-client upper=tmpfs",
            marker::OVERLAY
        )
    );
    (line(marker::LOWER), took)
}

/// `pocketpxe fetch live` against a local mirror (busybox httpd on loopback) whose
/// `SHA256SUMS` a key the test makes with GnuPG signs (detached, armored, as Debian's
/// `SHA256SUMS.sign`): the set lands verified under `live/`; a second run downloads nothing;
/// a changed `SHA256SUMS` fails the signature, a changed image fails its hash, and neither
/// changes the root.
#[test]
fn fetch_live_set_from_a_local_mirror() {
    let needs = [
        gate::Need::File(gate::BUSYBOX),
        gate::Need::File(diskless::NETBOOT_KERNEL),
        gate::Need::Program("gpg"),
        gate::Need::Program("gpgconf"),
        gate::Need::Program("sha256sum"),
        gate::Need::Program("mksquashfs"),
    ];
    if !gate::ready("fetch_live_set_from_a_local_mirror", &needs) {
        return;
    }
    let dir = TempDir::new("fetch-live").unwrap();
    let set = dir.join("mirror/live");
    std::fs::create_dir_all(&set).unwrap();
    let stem = "debian-live-12-amd64-e2e";
    std::fs::copy(
        diskless::NETBOOT_KERNEL,
        set.join(format!("{stem}.vmlinuz")),
    )
    .unwrap();
    std::fs::write(
        set.join(format!("{stem}.initrd.img")),
        b"initrd of the e2e set",
    )
    .unwrap();
    let tree = dir.join("tree");
    diskless::served_root(&tree, &new_marker()).unwrap();
    let image = set.join(format!("{stem}.squashfs"));
    diskless::squashfs(&tree, &image).unwrap();
    std::fs::write(set.join(format!("{stem}.iso")), b"not fetched").unwrap();
    let mut sum = Command::new("sha256sum");
    sum.current_dir(&set).args([
        format!("{stem}.iso"),
        format!("{stem}.vmlinuz"),
        format!("{stem}.initrd.img"),
        format!("{stem}.squashfs"),
    ]);
    let sums = run(sum, Duration::from_secs(60)).unwrap();
    std::fs::write(set.join("SHA256SUMS"), &sums).unwrap();
    let keyring = sign_detached(&dir, &set.join("SHA256SUMS"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut httpd = Command::new(gate::BUSYBOX);
    httpd
        .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
        .arg(dir.join("mirror"));
    let _httpd = Proc::spawn("busybox httpd", httpd, &dir.join("httpd.log")).unwrap();
    let url = format!("http://127.0.0.1:{port}/live");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "busybox httpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let root = dir.join("root");
    let fetch = |log: &str| {
        let mut cmd = Command::new(server::pocketpxe_bin().unwrap());
        cmd.args(["fetch", "live", "--url", &url, "--root"])
            .arg(&root)
            .arg("--keyring")
            .arg(&keyring)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join(log), &text).unwrap();
        (out.status.success(), text)
    };
    let (ok, text) = fetch("fetch-1.log");
    assert!(ok, "{text}");
    assert!(
        text.contains("--diskless-kernel live/vmlinuz --diskless-initrd live/initrd.img --diskless-live live/filesystem.squashfs"),
        "{text}"
    );
    for (local, remote) in [
        ("vmlinuz", "vmlinuz"),
        ("initrd.img", "initrd.img"),
        ("filesystem.squashfs", "squashfs"),
    ] {
        assert_eq!(
            std::fs::read(root.join("live").join(local)).unwrap(),
            std::fs::read(set.join(format!("{stem}.{remote}"))).unwrap(),
            "{local}"
        );
    }
    let (ok, text) = fetch("fetch-2.log");
    assert!(
        ok && text.matches("already there and verified").count() == 3,
        "{text}"
    );

    // SHA256SUMS changed after signing: refused before anything is downloaded.
    std::fs::write(set.join("SHA256SUMS"), format!("{sums}\n")).unwrap();
    std::fs::remove_file(root.join("live/initrd.img")).unwrap();
    let (ok, text) = fetch("fetch-3.log");
    assert!(!ok && text.contains("BAD signature"), "{text}");
    assert!(!root.join("live/initrd.img").exists());
    std::fs::write(set.join("SHA256SUMS"), &sums).unwrap();

    // The image changed on the mirror: its hash fails, the root keeps what it had.
    std::fs::remove_file(root.join("live/filesystem.squashfs")).unwrap();
    std::fs::write(&image, b"hsqs tampered").unwrap();
    let (ok, text) = fetch("fetch-4.log");
    assert!(!ok && text.contains("SHA-256 mismatch"), "{text}");
    assert!(!root.join("live/filesystem.squashfs").exists());
    assert!(!root.join("live/initrd.img").exists());
}

/// Makes a signing key with GnuPG in the test's directory, writes `FILE.sign` (a detached,
/// armored signature) and returns the exported public keyring.
fn sign_detached(dir: &TempDir, file: &Path) -> std::path::PathBuf {
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir").arg(&home);
        cmd.args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]);
        cmd.args(args);
        run(cmd, Duration::from_secs(60)).unwrap()
    };
    gpg(&[
        "--quick-gen-key",
        "pocketpxe test live images <live@test.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let keyring = dir.join("live-key.pgp");
    gpg(&["--output", keyring.to_str().unwrap(), "--export"]);
    let sig = format!("{}.sign", file.display());
    gpg(&[
        "--armor",
        "--output",
        &sig,
        "--detach-sign",
        file.to_str().unwrap(),
    ]);
    // The agent GnuPG started for the home: stopped here, not left behind.
    let mut kill = Command::new("gpgconf");
    kill.arg("--homedir")
        .arg(&home)
        .args(["--kill", "gpg-agent"]);
    run(kill, Duration::from_secs(30)).unwrap();
    keyring
}
