//! The README's first command: `pocketpxe serve --debian bookworm --console ttyS0,115200 --nat`
//! on an empty root. The server fetches the netboot tarball from a mirror (here a busybox
//! httpd in the upstream namespace, serving a `netboot.tar.gz` the test packs from the installed
//! netboot tree, with its SHA256SUMS), verifies and unpacks it, writes its own boot menus with a
//! serial console, and a BIOS client boots with those menus to the installer's first screen.

// The helper below is test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use pocketpxe_tests::netns::{Lab, UPLINK_IF, UPSTREAM_IP};
use pocketpxe_tests::process::{Proc, run};
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::Serve;
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::marker;
use pocketpxe_tests::{begin, gate, secs};

const FIRST_SCREEN: Duration = Duration::from_secs(300);

#[test]
fn serve_debian_fetches_and_boots_bios_installer() {
    let mut needs = gate::vm_needs(&[gate::BIOS]);
    needs.extend([
        gate::Need::File(gate::BUSYBOX),
        gate::Need::Program("tar"),
        gate::Need::Program("sha256sum"),
        gate::Need::Program("unshare"),
    ]);
    let Some(_lock) = begin("serve_debian_fetches_and_boots_bios_installer", &needs) else {
        return;
    };
    let dir = TempDir::new("debian").unwrap();
    let mirror = dir.join("mirror");
    let images = mirror.join("dists/bookworm/main/installer-amd64/current/images");
    std::fs::create_dir_all(images.join("netboot")).unwrap();
    let tarball = images.join("netboot/netboot.tar.gz");
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(gate::DEBIAN_NETBOOT)
        .arg("-czf")
        .arg(&tarball)
        .arg(".");
    run(tar, Duration::from_secs(120)).unwrap();
    let mut sum = Command::new("sha256sum");
    sum.current_dir(&images).arg("./netboot/netboot.tar.gz");
    let sums = run(sum, Duration::from_secs(60)).unwrap();
    std::fs::write(images.join("SHA256SUMS"), sums).unwrap();

    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let upstream = lab.add_upstream().unwrap();
    let mut httpd = upstream.command(gate::BUSYBOX);
    httpd.args(["httpd", "-f", "-p", &format!("{UPSTREAM_IP}:80"), "-h"]);
    httpd.arg(&mirror);
    let _httpd = Proc::spawn("busybox httpd", httpd, &dir.join("httpd.log")).unwrap();

    let root = dir.join("tftproot");
    let mirror_url = format!("http://{UPSTREAM_IP}");
    let fetch_start = Instant::now();
    let mut serve = Serve::new(&root, dir.path()).flags(&[
        "--debian",
        "bookworm",
        "--mirror",
        &mirror_url,
        "--console",
        "ttyS0,115200",
        "--nat",
        "--uplink",
        UPLINK_IF,
    ]);
    // Fetching, verifying and unpacking ~50 MB happens before the server is ready.
    serve.ready_timeout = Duration::from_secs(240);
    let _server = serve
        .start(&lab.server, &dir.join("pocketpxe.log"))
        .unwrap();
    let fetched = fetch_start.elapsed();

    let start = Instant::now();
    let (mut vm, console) = Vm::new(Firmware::Bios, &tap, 6, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    console
        .wait_for(&mut vm, marker::INSTALLER_FIRST_SCREEN, FIRST_SCREEN)
        .unwrap_or_else(|e| panic!("{e}"));
    pocketpxe_tests::report(&format!(
        "serve --debian: fetched and ready after {}, installer's first screen after {}",
        secs(fetched),
        secs(start.elapsed())
    ));
}
