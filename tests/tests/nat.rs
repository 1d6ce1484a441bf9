//! Scenario 3: NAT. A busybox initramfs (built by the test) booted by pxelinux gets a lease,
//! fetches a page from an "upstream" namespace that has no route back to the clients, and
//! prints the result. With `--nat` the server masquerades the LAN out of its uplink and the
//! fetch works; without it the fetch fails (while the lease still works, so the failure is the
//! missing NAT and nothing else).

// The helper below is test code too: a panic with the harness's report is the failure.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pocketpxe_tests::initramfs::{busybox_nat_probe, marker as probe};
use pocketpxe_tests::netns::{Lab, SERVER_IP, UPLINK_IF, UPSTREAM_IP};
use pocketpxe_tests::process::Proc;
use pocketpxe_tests::qemu::{Firmware, Vm};
use pocketpxe_tests::server::{self, Impl, Serve};
use pocketpxe_tests::tempdir::TempDir;
use pocketpxe_tests::tftp_root::{INITRD, KERNEL, PROBE_INITRD, TftpRoot};
use pocketpxe_tests::{begin, gate, secs};

/// DHCP (~20 s with iPXE's IPv6 wait), the 8 MB kernel, its boot and the probe under TCG.
const PROBE_DONE: Duration = Duration::from_secs(300);

#[test]
fn nat_lets_booted_client_reach_upstream() {
    let Some(_lock) = begin("nat_lets_booted_client_reach_upstream", &needs()) else {
        return;
    };
    let (lease, result) = boot_probe(true);
    assert!(
        lease.contains(&format!("router={SERVER_IP}")),
        "the lease should name the server as router: {lease}"
    );
    assert!(
        result.starts_with(probe::FETCH_OK) && result.contains(PAGE),
        "with --nat the client should fetch the upstream page, got: {result}"
    );
}

#[test]
fn without_nat_upstream_is_unreachable() {
    let Some(_lock) = begin("without_nat_upstream_is_unreachable", &needs()) else {
        return;
    };
    let (_lease, result) = boot_probe(false);
    // A timeout (143) or an error (1), not a crash of the probe itself.
    assert!(
        result.starts_with(probe::FETCH_FAIL)
            && (result.contains("exit 143)") || result.contains("exit 1)")),
        "without --nat the fetch must fail by timeout or error, got: {result}"
    );
}

const PAGE: &str = "hello-from-upstream-e2e";

fn needs() -> Vec<gate::Need> {
    let mut needs = gate::vm_needs(&[gate::BIOS]);
    needs.extend([
        gate::Need::File(gate::BUSYBOX),
        gate::Need::Program("gzip"),
        gate::Need::Program("nft"),
        gate::Need::Program("unshare"),
    ]);
    needs
}

/// Boots the probe with or without NAT; returns the lease line and the fetch line.
fn boot_probe(nat: bool) -> (String, String) {
    let dir = TempDir::new(if nat { "nat" } else { "nonat" }).unwrap();
    let root = TftpRoot::debian_installer().unwrap();
    let url = format!("http://{UPSTREAM_IP}/probe.txt");
    let initramfs = busybox_nat_probe(&root.path().join(INITRD), &url).unwrap();
    root.write(PROBE_INITRD, &initramfs).unwrap();
    root.set_pxelinux_default(KERNEL, PROBE_INITRD, "panic=5")
        .unwrap();

    let mut lab = Lab::new(true).unwrap();
    let tap = lab.add_tap().unwrap();
    let upstream = lab.add_upstream().unwrap();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("probe.txt"), PAGE).unwrap();
    let mut httpd = upstream.command(gate::BUSYBOX);
    httpd.args(["httpd", "-f", "-p", &format!("{UPSTREAM_IP}:80"), "-h"]);
    httpd.arg(&www);
    let _httpd = Proc::spawn("busybox httpd", httpd, &dir.join("httpd.log")).unwrap();
    // The upstream really cannot answer the LAN: it has a route to its own subnet only.
    let routes = upstream.ip(&["-4", "route"]).unwrap();
    assert!(
        !routes.contains("192.168.242."),
        "upstream routes: {routes}"
    );

    let _server = match Impl::from_env() {
        Impl::Pocketpxe => {
            let mut serve = Serve::new(root.path(), dir.path()).boot("bios", "pxelinux.0");
            if nat {
                serve = serve.flags(&["--nat", "--uplink", UPLINK_IF]);
            }
            serve
                .start(&lab.server, &dir.join("pocketpxe.log"))
                .unwrap()
        }
        Impl::Dnsmasq => {
            // The reference: what --nat is meant to do, by hand (docs/protocol.md §4).
            if nat {
                lab.server.sysctl("net.ipv4.ip_forward", "1").unwrap();
                lab.server
                    .run(
                        "nft",
                        &[&format!(
                            "add table ip e2e; add chain ip e2e post {{ type nat hook \
                             postrouting priority 100; }}; add rule ip e2e post ip saddr \
                             192.168.242.0/24 oifname {UPLINK_IF} masquerade"
                        )],
                        Duration::from_secs(10),
                    )
                    .unwrap();
            }
            server::start_dnsmasq(
                &lab.server,
                &server::dnsmasq_boot_server(root.path()),
                &dir.join("dnsmasq.log"),
            )
            .unwrap()
        }
    };

    let start = Instant::now();
    let (mut vm, console) = Vm::new(Firmware::Bios, &tap, 3, &dir.join("serial.log"))
        .start(&lab.lan)
        .unwrap();
    let (which, took) = console
        .wait_for_any(
            &mut vm,
            &[probe::FETCH_OK, probe::FETCH_FAIL, probe::NO_LEASE],
            PROBE_DONE,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let text = console.text();
    let line_of = |m: &str| {
        text.lines()
            .find(|l| l.contains(m))
            .map(|l| l[l.find(m).unwrap_or(0)..].trim().to_owned())
            .unwrap_or_default()
    };
    let lease = line_of(probe::LEASE);
    let result = line_of([probe::FETCH_OK, probe::FETCH_FAIL, probe::NO_LEASE][which]);
    pocketpxe_tests::report(&format!(
        "NAT={nat}: probe finished after {} (wall {}): {lease} / {result}",
        secs(took),
        secs(start.elapsed())
    ));
    assert!(
        !lease.is_empty(),
        "the probe got no lease; console:\n{}",
        pocketpxe_tests::serial::tail(&text, 30)
    );
    (lease, result)
}
