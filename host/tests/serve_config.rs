//! `pocketpxe serve --config FILE` and `pocketpxe check-config`.
//!
//! One serve process serves two interfaces from one config file, each with its own pool, lease
//! file, TFTP root and boot file, in network namespaces the test creates (skipped with a
//! `SKIP:` line without root and `ip netns`, except under `CI=true`). The check-config tests
//! need nothing. All honour `POCKETPXE_BIN` (scripts/check-package runs them against the
//! installed binary).

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::{TempDir, run_bounded};
use serve_support::*;
use std::net::Ipv4Addr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `pocketpxe ARGS`: exit code, stdout, stderr.
fn pocketpxe(args: &[&str]) -> (Option<i32>, String, String) {
    let out = run_bounded(
        Command::new(pocketpxe_bin())
            .args(args)
            .env("NO_COLOR", "1"),
        Duration::from_secs(20),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The example shipped in the package: the installed copy under `POCKETPXE_EXAMPLE`, else
/// the repository's.
fn example() -> PathBuf {
    std::env::var_os("POCKETPXE_EXAMPLE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/pocketpxe.example.toml"),
        PathBuf::from,
    )
}

#[test]
fn check_config_accepts_the_example() {
    let example = example();
    let (code, out, err) = pocketpxe(&["check-config", "--config", example.to_str().unwrap()]);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(
            "interface eth1: mode=dhcp address=192.168.242.1/24 \
             range=192.168.242.2-192.168.242.99 lease-time=3600s \
             leases=/var/lib/pocketpxe/eth1.leases root=/srv/tftp \
             boot=bios=pxelinux.0,efi-x64=bootnetx64.efi"
        ),
        "{out}"
    );
    assert!(out.contains("ok (1 interface)"), "{out}");
}

#[test]
fn check_config_names_file_line_and_key_of_an_error() {
    let tmp = TempDir::new("check-config");
    let file = tmp.join("bad.toml");
    std::fs::write(
        &file,
        "root = \"/srv/tftp\"\n\n[[interface]]\nname = \"br0\"\naddress = \"10.0.0.1/24\"\n\
         range = \"10.0.1.2-10.0.1.99\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = pocketpxe(&["check-config", "--config", path]);
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    let want = format!(
        "error: {path}:6:9: interface \"br0\": range: range 10.0.1.2-10.0.1.99 is outside br0's \
         subnet 10.0.0.0/24"
    );
    assert!(err.starts_with(&want), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.is_empty(), "{out}");

    // An unknown key, and a file that is not there.
    std::fs::write(&file, "[[interface]]\nname = \"br0\"\nlease_tme = 60\n").unwrap();
    let (code, _, err) = pocketpxe(&["check-config", "--config", path]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{path}:3:1: interface \"br0\": lease_tme: unknown key `lease_tme`"
        )),
        "{err}"
    );
    let missing = tmp.join("missing.toml");
    let (code, _, err) = pocketpxe(&["check-config", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot read config file") && err.contains("missing.toml"),
        "{err}"
    );

    // serve refuses the same file with the same line, before touching anything.
    std::fs::write(&file, "[[interface]]\nname = \"br0\"\nroot = \"/\"\nmode = \"proxy\"\nrange = \"10.0.0.2-10.0.0.9\"\n").unwrap();
    let (code, _, err) = pocketpxe(&["serve", "--config", path, "--user", "root"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{path}:5:9: interface \"br0\": range: `range` only applies to mode = \"dhcp\""
        )),
        "{err}"
    );
}

/// One config file, one process, two interfaces: a client on each gets an address from its
/// own pool, the boot file of its own interface, and that file from its own TFTP root; each
/// interface keeps its own lease file. A flag on the command line (`--lease-time`) overrides
/// the file for both.
#[test]
fn one_process_serves_two_interfaces_from_one_file() {
    const T: &str = "one_process_serves_two_interfaces_from_one_file";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let srv = Netns::new("srv");
    let cli1 = Netns::new("cli1");
    let cli2 = Netns::new("cli2");
    veth(&srv, "lan1", &cli1, "eth0");
    veth(&srv, "lan2", &cli2, "eth0");
    let tmp = TempDir::new("serve-config");
    let (root1, root2) = (tmp.join("root1"), tmp.join("root2"));
    for (root, file, body) in [
        (&root1, "one.0", "first root\n"),
        (&root2, "two.0", "second root\n"),
    ] {
        std::fs::create_dir(root).unwrap();
        std::fs::write(root.join(file), body).unwrap();
    }
    let config = tmp.join("pocketpxe.toml");
    std::fs::write(
        &config,
        format!(
            r#"# Two labs, one process.
lease-time = "10m"

[[interface]]
name = "lan1"
address = "192.168.242.1/24"
range = "192.168.242.10-192.168.242.19"
root = "{root1}"
leases = "{leases1}"
boot = {{ bios = "one.0" }}

[[interface]]
name = "lan2"
address = "10.77.0.1/24"
range = "10.77.0.50-10.77.0.59"
lease-time = "20m"
root = "{root2}"
leases = "{leases2}"
boot = {{ bios = "two.0" }}
"#,
            root1 = root1.display(),
            root2 = root2.display(),
            leases1 = tmp.join("lan1.leases").display(),
            leases2 = tmp.join("lan2.leases").display(),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // As systemd starts it: READY=1 only once every socket of both interfaces is bound.
    let notify_path = tmp.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut cmd = srv.command(pocketpxe_bin());
    cmd.env("NOTIFY_SOCKET", &notify_path);
    let mut server = ServeProc::spawn(
        cmd,
        &["--config", config, "--lease-time", "15m", "--user", "root"],
    );
    let mut buf = [0u8; 4096];
    let len = notify.recv(&mut buf).expect("no READY=1 within 20 s");
    let ready = String::from_utf8_lossy(&buf[..len]).into_owned();
    let sockets = run_bounded(
        srv.command("ss").args(["-H", "-l", "-u", "-n"]),
        Duration::from_secs(10),
    );
    let sockets = String::from_utf8_lossy(&sockets.stdout).into_owned();
    for socket in ["%lan1:67 ", "%lan1:69 ", "%lan2:67 ", "%lan2:69 "] {
        assert!(
            sockets.contains(socket),
            "READY=1 before {socket} was bound:\n{sockets}"
        );
    }
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains("STATUS=serving: interface=lan1 ") && ready.contains("| interface=lan2 "),
        "{ready:?}"
    );
    let log = server.log();
    let ready = log
        .lines()
        .find(|l| l.contains("pocketpxe serve ready"))
        .unwrap();
    assert!(
        ready.contains("interface=lan1 server=192.168.242.1/24 mode=dhcp range=192.168.242.10-192.168.242.19 lease_time=900s")
            && ready.contains("interface=lan2 server=10.77.0.1/24 mode=dhcp range=10.77.0.50-10.77.0.59 lease_time=900s"),
        "{ready}"
    );
    assert!(srv.addrs("lan1").contains("192.168.242.1/24"));
    assert!(srv.addrs("lan2").contains("10.77.0.1/24"));

    // A PXE BIOS client on each side (udhcpc with the PXE vendor class).
    let pxe = ["-V", "PXEClient:Arch:00000:UNDI:002001"];
    let mut got = Vec::new();
    for (ns, server_ip, net, pool, file, body) in [
        (
            &cli1,
            "192.168.242.1",
            [192, 168, 242],
            10..=19,
            "one.0",
            "first root\n",
        ),
        (
            &cli2,
            "10.77.0.1",
            [10, 77, 0],
            50..=59,
            "two.0",
            "second root\n",
        ),
    ] {
        let (env, out) = udhcpc_with(ns, "eth0", &tmp.path, &pxe);
        let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}\n{}", server.log()));
        let ip: Ipv4Addr = env["ip"].parse().unwrap();
        assert!(
            ip.octets()[..3] == net && pool.contains(&ip.octets()[3]),
            "{ip} from {server_ip}"
        );
        assert_eq!(env["serverid"], server_ip);
        assert_eq!(
            env["lease"], "900",
            "the flag overrides both interfaces' lease-time"
        );
        assert_eq!(
            env.get("boot_file").map(String::as_str),
            Some(file),
            "{env:?}"
        );
        // The file from this interface's TFTP root.
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        let to = tmp.join(&format!("got-{file}"));
        let out = busybox_tftp_get(ns, file, &to, server_ip);
        assert!(out.status.success(), "busybox tftp {file}: {out:?}");
        assert_eq!(std::fs::read_to_string(&to).unwrap(), body);
        got.push((mac_of(ns, "eth0"), ip));
    }
    // The other interface's file is not under this interface's root.
    let to = tmp.join("cross");
    let out = busybox_tftp_get(&cli1, "two.0", &to, "192.168.242.1");
    assert!(!out.status.success(), "lan1 served lan2's file: {out:?}");

    // Each interface has its own lease file with its own client only.
    for (file, (mac, ip), (other_mac, _)) in [
        ("lan1.leases", &got[0], &got[1]),
        ("lan2.leases", &got[1], &got[0]),
    ] {
        let leases = std::fs::read_to_string(tmp.join(file)).unwrap();
        assert!(
            leases.contains(&format!("{mac} {ip} ")),
            "{file}:\n{leases}"
        );
        assert!(!leases.contains(other_mac.as_str()), "{file}:\n{leases}");
    }
    let status = server.stop();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(!srv.addrs("lan1").contains("192.168.242.1"));
    assert!(!srv.addrs("lan2").contains("10.77.0.1"));
}

/// A failure on the second interface undoes what was done for the first: its address is
/// removed again, and the error names the interface.
#[test]
fn a_failing_interface_undoes_the_others() {
    const T: &str = "a_failing_interface_undoes_the_others";
    if !netns_available(T) {
        return;
    }
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    veth(&srv, "lan1", &cli, "eth0");
    let tmp = TempDir::new("serve-config-fail");
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    let config = tmp.join("pocketpxe.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{root}\"\n[[interface]]\nname = \"lan1\"\naddress = \"192.168.242.1/24\"\n\
             leases = \"{l1}\"\n[[interface]]\nname = \"nosuch0\"\nleases = \"{l2}\"\n",
            root = root.display(),
            l1 = tmp.join("l1").display(),
            l2 = tmp.join("l2").display(),
        ),
    )
    .unwrap();
    let (code, err) = run_to_failure(
        srv.command(pocketpxe_bin()),
        &["--config", config.to_str().unwrap(), "--user", "root"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nosuch0"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(!srv.addrs("lan1").contains("192.168.242.1"), "{err}");
}

/// SIGHUP re-reads the config file: after the boot file is changed and a reservation added in
/// the file, a new client gets its reserved address and the new boot file, and a client that
/// had a lease keeps its address (with the new boot file). A file broken afterwards is
/// refused with its line, and the rules read before stay in force.
#[test]
fn sighup_rereads_the_config_file() {
    const T: &str = "sighup_rereads_the_config_file";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    veth(&srv, "lan1", &cli, "eth0");
    let tmp = TempDir::new("serve-config-reload");
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    for file in ["one.0", "two.0"] {
        std::fs::write(root.join(file), file).unwrap();
    }
    let config = tmp.join("pocketpxe.toml");
    let write = |boot: &str, hosts: &str| {
        std::fs::write(
            &config,
            format!(
                "root = \"{root}\"\n\n[[interface]]\nname = \"lan1\"\n\
                 address = \"192.168.242.1/24\"\nrange = \"192.168.242.10-192.168.242.19\"\n\
                 leases = \"{leases}\"\nboot = {{ bios = \"{boot}\" }}\n{hosts}",
                root = root.display(),
                leases = tmp.join("lan1.leases").display(),
            ),
        )
        .unwrap();
    };
    write("one.0", "");
    let server = ServeProc::start(&srv, &["--config", config.to_str().unwrap()]);
    let pxe = ["-V", "PXEClient:Arch:00000:UNDI:002001"];
    let lease = |mac: &str| {
        set_mac(&cli, "eth0", mac);
        let (env, out) = udhcpc_with(&cli, "eth0", &tmp.path, &pxe);
        let env = env.unwrap_or_else(|| panic!("no lease for {mac}: {out:?}\n{}", server.log()));
        (env["ip"].clone(), env.get("boot_file").cloned())
    };
    let (first_ip, boot) = lease("52:54:00:aa:00:01");
    assert_eq!(boot.as_deref(), Some("one.0"));
    assert!(first_ip.starts_with("192.168.242.1"), "{first_ip}");

    // The boot file changed and a reservation added, in the file.
    write(
        "two.0",
        "\n[[interface.host]]\nmac = \"52:54:00:aa:00:02\"\nip = \"192.168.242.77\"\n",
    );
    send_hup(server.pid());
    server.wait_log("reloaded:", Duration::from_secs(10));
    assert!(
        server
            .log()
            .contains("reloaded: boot rules: 1 (changed), reservations: +1 -0"),
        "{}",
        server.log()
    );
    assert_eq!(
        lease("52:54:00:aa:00:02"),
        ("192.168.242.77".to_owned(), Some("two.0".to_owned())),
        "{}",
        server.log()
    );
    assert_eq!(
        lease("52:54:00:aa:00:01"),
        (first_ip.clone(), Some("two.0".to_owned())),
        "the first client keeps its address"
    );

    assert!(
        !server.log().contains("take effect on a restart"),
        "{}",
        server.log()
    );

    // A setting a reload does not apply is named in a warning.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "range = \"192.168.242.10-192.168.242.19\"",
            "range = \"192.168.242.10-192.168.242.29\"",
        ),
    )
    .unwrap();
    send_hup(server.pid());
    server.wait_log("take effect on a restart", Duration::from_secs(10));

    // A broken file is refused with its line; the rules read before stay.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).unwrap() + "bogus = 1\n",
    )
    .unwrap();
    send_hup(server.pid());
    server.wait_log("reload refused", Duration::from_secs(10));
    let log = server.log();
    let refused = log.lines().find(|l| l.contains("reload refused")).unwrap();
    assert!(
        refused.contains(&format!(
            "{}:13:1: interface \"lan1\": host[0].bogus: unknown key `bogus`",
            config.display()
        )),
        "{refused}"
    );
    assert_eq!(
        lease("52:54:00:aa:00:02"),
        ("192.168.242.77".to_owned(), Some("two.0".to_owned())),
        "{}",
        server.log()
    );
}

/// SIGHUP to `pid`.
fn send_hup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
