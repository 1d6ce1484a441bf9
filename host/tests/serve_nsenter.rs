//! `pocketpxe serve` entered into a network namespace by `nsenter --net` alone: a bare
//! `setns`, without `ip netns exec`'s remount of `/sys`, so `/sys/class/net` still shows the
//! test's own namespace while the process lives in another. The interface it serves exists
//! only in that other namespace (its name is unique to the test run); `serve` must find it,
//! add and remove its address there, and answer a DHCP client, and must still call an
//! interface missing from its namespace missing, also one that `/sys` does show.
//!
//! Namespaces and veth pairs are created by the test (see `serve_support`) and deleted on drop,
//! also on failure. Needs root, `ip netns`, `nsenter` (util-linux) and busybox: without them the
//! test is skipped with a `SKIP:` line, except under `CI=true`, where it fails.

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::run_bounded;
use serve_support::*;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[test]
fn serve_entered_by_nsenter_finds_its_interface() {
    const T: &str = "serve_entered_by_nsenter_finds_its_interface";
    if !netns_available(T)
        || !have_tool(T, "nsenter", "util-linux")
        || !have_tool(T, "busybox", "busybox-static")
    {
        return;
    }
    let iface = format!("nse{}", std::process::id());
    let lab = Lab::new("serve-nsenter");
    // A second link into the client namespace, named uniquely: `eth1` could exist in /sys.
    veth(&lab.srv, &iface, &lab.cli, "nse0");
    lab.cli.ip(&["link", "set", "eth0", "down"]);

    // The premise: /sys does not show the served namespace, through nsenter or here.
    let sys = Path::new("/sys/class/net").join(&iface);
    assert!(
        !sys.exists(),
        "{} exists outside its namespace",
        sys.display()
    );
    let seen = run_bounded(
        nsenter(&lab.srv, "test").arg("-e").arg(&sys),
        Duration::from_secs(10),
    );
    assert!(
        !seen.status.success(),
        "after nsenter --net, /sys unexpectedly shows the namespace: {seen:?}"
    );

    let leases = lab.leases();
    let args = |name: &str| {
        vec![
            "--interface".to_owned(),
            name.to_owned(),
            "--root".to_owned(),
            lab.root.display().to_string(),
            "--leases".to_owned(),
            leases.display().to_string(),
        ]
    };

    // Ready, with the address added in the namespace the process was entered into.
    let mut with_address = args(&iface);
    with_address.extend(["--address".to_owned(), "192.168.242.1/24".to_owned()]);
    let mut server = start_nsentered(&lab.srv, &with_address);
    assert!(
        lab.srv.addrs(&iface).contains("192.168.242.1/24"),
        "{}",
        lab.srv.addrs(&iface)
    );
    let log = server.log();
    assert!(log.contains(&format!("interface={iface}")), "{log}");

    // A client on the other end gets a lease.
    let (env, out) = udhcpc(&lab.cli, "nse0", &lab.tmp.path);
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}"));
    let ip: Ipv4Addr = env["ip"].parse().unwrap();
    assert_eq!(ip.octets()[..3], [192, 168, 242], "{ip}");
    assert_eq!(env["serverid"], "192.168.242.1");
    let mac = mac_of(&lab.cli, "nse0");
    server.wait_log("reply=ACK", Duration::from_secs(5));
    let saved = std::fs::read_to_string(&leases).unwrap();
    assert!(saved.contains(&format!("{mac} {ip} ")), "{saved}");

    let status = server.stop();
    assert!(status.success(), "{status}; log:\n{}", server.log());
    assert!(
        !lab.srv.addrs(&iface).contains("192.168.242.1"),
        "address not removed: {}",
        lab.srv.addrs(&iface)
    );

    // Missing from the namespace: one clear line naming it.
    let missing = format!("nsm{}", std::process::id());
    let (code, err) = serve_fails_nsentered(&lab.srv, &args(&missing));
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &[&missing, "does not exist"]);

    // Also an interface /sys shows (it is in the test's namespace) but the served one lacks.
    let outside = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|name| {
            name.len() < 16
                && !run_bounded(
                    Command::new("ip").args(["-n", &lab.srv.name, "link", "show", "dev", name]),
                    Duration::from_secs(10),
                )
                .status
                .success()
        });
    match outside {
        Some(outside) => {
            let (code, err) = serve_fails_nsentered(&lab.srv, &args(&outside));
            assert_eq!(code, Some(1), "{err}");
            assert_one_line(&err, &[&outside, "does not exist"]);
        }
        None => eprintln!("{T}: no interface outside the namespace to check (only lo here)"),
    }
}

/// `nsenter --net=/run/netns/NS PROGRAM`: only the network namespace is entered, and nsenter
/// execs the program, so the child's PID is the program's.
fn nsenter(ns: &Netns, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns_path(ns).display()))
        .arg("--")
        .arg(program);
    cmd
}

fn netns_path(ns: &Netns) -> PathBuf {
    Path::new("/run/netns").join(&ns.name)
}

/// `pocketpxe serve ARGS` (as root) entered into `ns` by nsenter; returns once it logged ready.
fn start_nsentered(ns: &Netns, args: &[String]) -> ServeProc {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServeProc::spawn(
        nsenter(ns, env!("CARGO_BIN_EXE_pocketpxe")),
        &with_root_default(&args),
    )
}

/// `pocketpxe serve ARGS` (as root) entered into `ns` by nsenter, run to its (failing) end.
fn serve_fails_nsentered(ns: &Netns, args: &[String]) -> (Option<i32>, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_failure(
        nsenter(ns, env!("CARGO_BIN_EXE_pocketpxe")),
        &with_root_default(&args),
    )
}

/// Exactly one line on stderr, containing every `needle`.
fn assert_one_line(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing in {:?}",
            lines[0]
        );
    }
}
