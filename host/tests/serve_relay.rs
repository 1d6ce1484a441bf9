//! Relayed subnets with a real relay agent: ISC `dhcrelay` (Debian's isc-dhcp-relay) in a
//! router namespace between the server's link and two client links on two other subnets, and
//! busybox udhcpc behind it on each.
//!
//! ```text
//!  srv: eth1 192.168.50.1/24 ── up0 192.168.50.2/24  rtr (dhcrelay -a, forwarding on)
//!                                c1 10.1.0.1/24 ── eth0  cli1
//!                                c2 10.2.0.1/24 ── eth0  cli2
//! ```
//! The server serves eth1 and declares 10.1.0.0/24 in a `[[interface.subnet]]` table and
//! 10.2.0.0/24 with `--relay-subnet`; the relay reaches it through eth1 (docs/relay.md).
//!
//! Network safety: everything lives in namespaces this test creates (serve_support); every
//! process is killed by its PID when the test ends; every wait is bounded.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::TempDir;
use serve_support::*;
use std::time::Duration;

/// The lab: server, router with the relay, two clients.
struct RelayLab {
    srv: Netns,
    rtr: Netns,
    cli1: Netns,
    cli2: Netns,
    tmp: TempDir,
    root: std::path::PathBuf,
}

impl RelayLab {
    fn new() -> Self {
        let srv = Netns::new("srv");
        let rtr = Netns::new("rtr");
        let cli1 = Netns::new("cli1");
        let cli2 = Netns::new("cli2");
        veth(&srv, "eth1", &rtr, "up0");
        veth(&rtr, "c1", &cli1, "eth0");
        veth(&rtr, "c2", &cli2, "eth0");
        srv.ip(&["addr", "add", "192.168.50.1/24", "dev", "eth1"]);
        for net in ["10.1.0.0/24", "10.2.0.0/24"] {
            srv.ip(&["route", "add", net, "via", "192.168.50.2"]);
        }
        rtr.ip(&["addr", "add", "192.168.50.2/24", "dev", "up0"]);
        rtr.ip(&["addr", "add", "10.1.0.1/24", "dev", "c1"]);
        rtr.ip(&["addr", "add", "10.2.0.1/24", "dev", "c2"]);
        let out = rtr
            .command("sysctl")
            .args(["-q", "-w", "net.ipv4.ip_forward=1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let tmp = TempDir::new("serve-relay");
        let root = tmp.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("pxelinux.0"), b"pxelinux").unwrap();
        Self {
            srv,
            rtr,
            cli1,
            cli2,
            tmp,
            root,
        }
    }

    /// dhcrelay in the router: clients on c1 and c2, the server up0's way; option 82 added
    /// (`-a`: circuit id = the client link), so replies must carry it back.
    fn relay(&self) -> Proc {
        self.relay_with(&[
            "-a", "-m", "replace", "-iu", "up0", "-id", "c1", "-id", "c2",
        ])
    }

    /// dhcrelay with `flags` (interfaces included), relaying to the server.
    fn relay_with(&self, flags: &[&str]) -> Proc {
        let mut cmd = self.rtr.command("dhcrelay");
        cmd.args(["-4", "-d"])
            .args(flags)
            .arg("-pf")
            .arg(self.tmp.join("dhcrelay.pid"))
            .arg("192.168.50.1");
        let mut relay = Proc::spawn("dhcrelay", cmd);
        relay.wait_log("Sending on", Duration::from_secs(10));
        // Its sockets are open once it has listed them all.
        std::thread::sleep(Duration::from_millis(300));
        relay
    }

    /// The config file: eth1 with 10.1.0.0/24 relayed, its lease time `lease_time`, its own
    /// boot file, and one fixed address there.
    fn config(&self, lease_time: &str) -> std::path::PathBuf {
        let path = self.tmp.join("pocketpxe.toml");
        std::fs::write(
            &path,
            format!(
                "[[interface]]\nname = \"eth1\"\nrange = \"192.168.50.100-192.168.50.110\"\n\n\
                 [[interface.subnet]]\nnetwork = \"10.1.0.0/24\"\nrange = \"10.1.0.10-10.1.0.20\"\n\
                 lease-time = \"{lease_time}\"\nboot = {{ bios = \"lab.0\" }}\n\n\
                 [[interface.subnet.host]]\nmac = \"{FIXED_MAC}\"\nip = \"10.1.0.15\"\n"
            ),
        )
        .unwrap();
        path
    }

    fn serve(&self) -> ServeProc {
        let config = self.config("20m");
        let leases = self.tmp.join("leases");
        ServeProc::start(
            &self.srv,
            &[
                "--config",
                config.to_str().unwrap(),
                "--interface",
                "eth1",
                "--root",
                self.root.to_str().unwrap(),
                "--leases",
                leases.to_str().unwrap(),
                "--relay-subnet",
                "10.2.0.0/24=10.2.0.50-10.2.0.60",
                "--status-socket",
                self.status_socket().to_str().unwrap(),
            ],
        )
    }

    fn status_socket(&self) -> std::path::PathBuf {
        self.tmp.join("status.sock")
    }

    /// `pocketpxe status --json` of the running server.
    fn status(&self) -> serde_json::Value {
        let out = common::run_bounded(
            std::process::Command::new(pocketpxe_bin())
                .args(["status", "--json", "--socket"])
                .arg(self.status_socket()),
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn leases(&self) -> String {
        std::fs::read_to_string(self.tmp.join("leases")).unwrap_or_default()
    }
}

/// The client with a fixed address in 10.1.0.0/24.
const FIXED_MAC: &str = "52:54:00:77:00:02";

/// One udhcpc lease in `ns`: (ip, router, lease time).
fn lease(ns: &Netns, dir: &std::path::Path) -> (String, String, String) {
    let (env, out) = udhcpc(ns, "eth0", dir);
    let Some(env) = env else {
        panic!(
            "udhcpc in {} got no lease:\n{}{}",
            ns.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    (get("ip"), get("router"), get("lease"))
}

#[test]
fn clients_behind_dhcrelay_get_their_subnets_addresses_and_keep_them_across_a_restart() {
    let test = "serve_relay";
    if !netns_available(test)
        || !have_tool(test, "dhcrelay", "isc-dhcp-relay")
        || !have_tool(test, "busybox", "busybox-static")
    {
        return;
    }
    let lab = RelayLab::new();
    let _relay = lab.relay();
    let mut server = lab.serve();

    let dir = lab.tmp.path.clone();
    let (ip1, router1, lease1) = lease(&lab.cli1, &dir);
    assert_eq!(ip1, "10.1.0.10", "first address of the [[subnet]] range");
    assert_eq!(
        router1, "10.1.0.1",
        "router: the relay's address on the link"
    );
    assert_eq!(lease1, "1200", "the subnet's own lease time");
    let (ip2, router2, lease2) = lease(&lab.cli2, &dir);
    assert_eq!(ip2, "10.2.0.50", "first address of --relay-subnet");
    assert_eq!(router2, "10.2.0.1");
    assert_eq!(lease2, "3600", "the interface's lease time");
    // Replies went to the relay's port 67 (RFC 2131 §4.1).
    let log = server.log();
    assert!(
        log.contains("ACK to 10.1.0.1:67") && log.contains("ACK to 10.2.0.1:67"),
        "{log}"
    );
    // As a PXE client it gets the interface's boot file, and fetches it over TFTP through the
    // router.
    let pxe = ["-V", "PXEClient:Arch:00000:UNDI:002001"];
    let (env, out) = udhcpc_with(&lab.cli2, "eth0", &dir, &pxe);
    let env = env.unwrap_or_else(|| panic!("no PXE lease: {out:?}\n{}", server.log()));
    assert_eq!(env["ip"], ip2);
    assert_eq!(
        env.get("boot_file").map(String::as_str),
        Some("pxelinux.0"),
        "{env:?}"
    );
    assert_eq!(
        env.get("siaddr").map(String::as_str),
        Some("192.168.50.1"),
        "{env:?}"
    );
    lab.cli2
        .ip(&["addr", "add", &format!("{ip2}/24"), "dev", "eth0"]);
    lab.cli2.ip(&["route", "add", "default", "via", &router2]);
    let got = lab.tmp.join("pxelinux.got");
    let out = busybox_tftp_get(&lab.cli2, "pxelinux.0", &got, "192.168.50.1");
    assert!(out.status.success(), "{out:?}\n{}", server.log());
    assert_eq!(std::fs::read(&got).unwrap(), b"pxelinux");

    // 10.1.0.0/24 has a boot table of its own.
    let (env, out) = udhcpc_with(&lab.cli1, "eth0", &dir, &pxe);
    let env = env.unwrap_or_else(|| panic!("no PXE lease: {out:?}\n{}", server.log()));
    assert_eq!(env["ip"], ip1);
    assert_eq!(
        env.get("boot_file").map(String::as_str),
        Some("lab.0"),
        "{env:?}"
    );

    // The interface's own pool is untouched by the relayed leases.
    let report = lab.status();
    let pool = &report["interfaces"][0]["pool"];
    assert_eq!(
        (&pool["size"], &pool["used"]),
        (&11.into(), &0.into()),
        "{report:#}"
    );

    let file = lab.leases();
    assert!(
        file.contains(" 10.1.0.10 ") && file.contains(" 10.2.0.50 "),
        "both leases are in the lease file:\n{file}"
    );

    // Restart: both leases come back from the file.
    assert!(server.stop().success());
    let server = lab.serve();
    server.wait_log("restored=2", Duration::from_secs(5));
    // Another client on link 1 does not get the restored address...
    let mac1 = mac_of(&lab.cli1, "eth0");
    set_mac(&lab.cli1, "eth0", "52:54:00:77:00:01");
    let (other, _, _) = lease(&lab.cli1, &dir);
    assert_eq!(other, "10.1.0.11", "10.1.0.10 is still leased");
    // ...and the first client gets its own again, as does the one on link 2.
    set_mac(&lab.cli1, "eth0", &mac1);
    assert_eq!(lease(&lab.cli1, &dir).0, ip1);
    assert_eq!(lease(&lab.cli2, &dir).0, ip2);

    // SIGHUP with a changed subnet: it waits for a restart; leases and the subnet's fixed
    // address stay in force.
    lab.config("30m");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server.wait_log("take effect on a restart", Duration::from_secs(10));
    server.wait_log("reloaded", Duration::from_secs(10));
    set_mac(&lab.cli1, "eth0", FIXED_MAC);
    assert_eq!(lease(&lab.cli1, &dir).0, "10.1.0.15", "the subnet's host");
    set_mac(&lab.cli1, "eth0", &mac1);
    let (ip, _, time) = lease(&lab.cli1, &dir);
    assert_eq!((ip.as_str(), time.as_str()), (ip1.as_str(), "1200"));
    assert_eq!(lease(&lab.cli2, &dir).0, ip2);
}

/// `dhcrelay -U up0`: giaddr is the relay's address on the server's own link and the client's
/// link travels in option 82's link selection sub-option (RFC 3527). The server must pick the
/// subnet from the sub-option, and echo option 82 (RFC 3046 §2.2): the relay finds the client's
/// link from it, not from giaddr.
#[test]
fn link_selection_from_dhcrelay_picks_the_clients_subnet() {
    let test = "serve_relay link selection";
    if !netns_available(test)
        || !have_tool(test, "dhcrelay", "isc-dhcp-relay")
        || !have_tool(test, "busybox", "busybox-static")
    {
        return;
    }
    let lab = RelayLab::new();
    // dhcrelay 4.4.3 crashes on -U together with -iu/-id: plain -i for the client links.
    let _relay = lab.relay_with(&["-U", "up0", "-i", "c1", "-i", "c2"]);
    let server = lab.serve();
    let dir = lab.tmp.path.clone();
    let (env, out) = udhcpc(&lab.cli1, "eth0", &dir);
    let env = env.unwrap_or_else(|| panic!("no lease: {out:?}\n{}", server.log()));
    assert_eq!(env["ip"], "10.1.0.10", "not the server's own pool: {env:?}");
    assert_eq!(env["subnet"], "255.255.255.0");
    assert!(
        !env.contains_key("router"),
        "giaddr is not on the client's link, so no router: {env:?}"
    );
    assert!(
        server.log().contains("ACK to 192.168.50.2:67"),
        "replies go to giaddr:\n{}",
        server.log()
    );
    let (env, out) = udhcpc(&lab.cli2, "eth0", &dir);
    let env = env.unwrap_or_else(|| panic!("no lease: {out:?}\n{}", server.log()));
    assert_eq!(env["ip"], "10.2.0.50");
}
