//! `pocketpxe serve` as systemd runs it (`dist/pocketpxe@.service`, `Type=notify`): the
//! `READY=1` and `STOPPING=1` datagrams it sends to `NOTIFY_SOCKET`, and `--wait-interface`
//! for an interface that appears after the start, and a start with exactly the unit's
//! capabilities.
//!
//! Each test listens on a unix datagram socket of its own, as systemd does, and runs `serve` in
//! network namespaces it creates (see `serve_support`). They need root and `ip netns`: without
//! them they are skipped with a `SKIP:` line, except under `CI=true`, where they fail.
//! `POCKETPXE_BIN` runs them against another binary (the installed package's).

#![allow(clippy::unwrap_used)]

mod common;
mod serve_support;

use common::{TempDir, rrq, run_bounded, wait_child};
use serve_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// READY=1 comes once both ports answer (checked the moment it arrives), with a STATUS line;
/// nothing comes before it; SIGTERM brings STOPPING=1 and a clean exit.
#[test]
fn ready_after_the_ports_answer_and_stopping_on_sigterm() {
    const T: &str = "ready_after_the_ports_answer_and_stopping_on_sigterm";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("systemd-notify");
    lab.cli
        .ip(&["addr", "add", "192.168.242.50/24", "dev", "eth0"]);
    let notify = NotifySocket::new(&lab.tmp.path);
    let args = lab.lab_args(&["--address", "192.168.242.1/24", "--user", "root"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = spawn_serve(&lab.srv, &notify.path, &args);

    let ready = notify
        .recv(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no READY=1 within 20 s:\n{}", server.log()));
    // At once, before anything else: both ports are bound on eth1, and TFTP answers.
    let sockets = listening_udp(&lab.srv);
    assert!(
        sockets.contains(":67 ") && sockets.contains(":69 "),
        "READY=1 before ports 67 and 69 were bound:\n{sockets}"
    );
    let reply = lab.cli.run(|| {
        let socket = client_socket("eth0", "192.168.242.50:0".parse().unwrap());
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        socket
            .send_to(&rrq(b"pxelinux.0", &[]), "192.168.242.1:69")
            .unwrap();
        let mut buf = [0u8; 1024];
        socket.recv(&mut buf).map(|len| buf[..len].to_vec())
    });
    let reply = reply.expect("TFTP did not answer right after READY=1");
    assert_eq!(&reply[..4], &[0, 3, 0, 1], "not DATA block 1: {reply:?}");
    assert_eq!(&reply[4..], PXELINUX);

    let lines: Vec<&str> = ready.lines().collect();
    assert!(lines.contains(&"READY=1"), "{ready:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("STATUS=serving: interface=eth1 server=192.168.242.1/24")),
        "{ready:?}"
    );
    assert!(
        !ready.contains("STOPPING"),
        "first notice is not only READY: {ready:?}"
    );

    // DHCP answers too.
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    assert!(env.is_some(), "udhcpc got no lease: {out:?}");

    kill_term(server.child.id());
    let stopping = notify
        .recv(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no STOPPING=1 after SIGTERM:\n{}", server.log()));
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = wait_child(&mut server.child, Duration::from_secs(15)).expect("no exit");
    assert!(status.success(), "{status}:\n{}", server.log());
    assert_eq!(notify.recv(Duration::from_millis(200)), None);
    assert!(
        !lab.srv.addrs("eth1").contains("192.168.242.1"),
        "address not removed"
    );
}

/// A start that fails (port 67 taken) exits non-zero and never says READY=1.
#[test]
fn no_ready_when_the_start_fails() {
    const T: &str = "no_ready_when_the_start_fails";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("systemd-noready");
    let mut first = lab.serve(&["--address", "192.168.242.1/24", "--user", "root"]);
    let notify = NotifySocket::new(&lab.tmp.path);
    let leases = lab.tmp.join("second.leases");
    let mut second = spawn_serve(
        &lab.srv,
        &notify.path,
        &[
            "--interface",
            "eth1",
            "--root",
            lab.root.to_str().unwrap(),
            "--leases",
            leases.to_str().unwrap(),
            "--user",
            "root",
        ],
    );
    let status = wait_child(&mut second.child, Duration::from_secs(20)).expect("no exit");
    assert_eq!(status.code(), Some(1), "{}", second.log());
    // The log is read from a pipe, which may still hold the last line.
    let start = Instant::now();
    while !second.log().contains("in use") && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(second.log().contains("in use"), "{}", second.log());
    assert_eq!(notify.recv(Duration::from_millis(200)), None);
    assert!(first.stop().success());
}

/// `--wait-interface`: started before its interface exists, `serve` waits (no READY, still
/// running), then serves once the veth is created and up; a DHCP client gets a lease.
#[test]
fn wait_interface_serves_a_veth_created_later() {
    const T: &str = "wait_interface_serves_a_veth_created_later";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let srv = Netns::new("srv");
    let cli = Netns::new("cli");
    let tmp = TempDir::new("systemd-wait");
    let root = lab_root(&tmp);
    let notify = NotifySocket::new(&tmp.path);
    let leases = tmp.join("leases");
    let started = Instant::now();
    let mut server = spawn_serve(
        &srv,
        &notify.path,
        &[
            "--interface",
            "eth1",
            "--root",
            root.to_str().unwrap(),
            "--leases",
            leases.to_str().unwrap(),
            "--address",
            "192.168.242.1/24",
            "--user",
            "root",
            "--wait-interface=30s",
        ],
    );
    assert_eq!(notify.recv(Duration::from_millis(1500)), None);
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "serve did not wait for eth1:\n{}",
        server.log()
    );
    // Appears down first: still waiting.
    srv.ip(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", &cli.name,
    ]);
    assert_eq!(notify.recv(Duration::from_millis(700)), None);
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "{}",
        server.log()
    );
    srv.ip(&["link", "set", "eth1", "up"]);
    cli.ip(&["link", "set", "eth0", "up"]);
    let ready = notify
        .recv(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no READY=1 after eth1 came up:\n{}", server.log()));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(started.elapsed() < Duration::from_secs(30));

    let (env, out) = udhcpc(&cli, "eth0", &tmp.path);
    let env = env.unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}\n{}", server.log()));
    assert_eq!(env["serverid"], "192.168.242.1");

    kill_term(server.child.id());
    let status = wait_child(&mut server.child, Duration::from_secs(15)).expect("no exit");
    assert!(status.success(), "{status}:\n{}", server.log());
}

/// `--wait-interface=TIMEOUT` is bounded: a missing interface, or one that stays down, fails
/// after TIMEOUT with one line naming it; without the flag a missing one fails at once.
#[test]
fn wait_interface_times_out_naming_the_interface() {
    const T: &str = "wait_interface_times_out_naming_the_interface";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("systemd-waitfail");
    let root = lab.root.to_str().unwrap();
    let leases = lab.leases();
    let leases = leases.to_str().unwrap();
    let run = |iface: &str, wait: Option<&str>| {
        let mut args = vec![
            "--interface",
            iface,
            "--root",
            root,
            "--leases",
            leases,
            "--address",
            "192.168.242.1/24",
            "--user",
            "root",
        ];
        args.extend(wait);
        let start = Instant::now();
        let (code, err) = lab.serve_fails(&lab.srv, &args);
        (code, err, start.elapsed())
    };

    let (code, err, took) = run("nope0", Some("--wait-interface=2"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("interface nope0 did not appear after waiting 2s (--wait-interface)"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(10)).contains(&took),
        "{took:?}"
    );

    lab.srv.ip(&["link", "set", "eth1", "down"]);
    let (code, err, took) = run("eth1", Some("--wait-interface=1"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("interface eth1 is still down"), "{err}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(!lab.srv.addrs("eth1").contains("192.168.242.1"));

    let (code, err, took) = run("nope0", None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nope0 does not exist"), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// `pocketpxe serve ARGS` in `ns` with `NOTIFY_SOCKET` set, as systemd starts it.
fn spawn_serve(ns: &Netns, notify: &Path, args: &[&str]) -> Proc {
    let mut cmd = ns.command(pocketpxe_bin());
    cmd.arg("serve")
        .args(args)
        .env("NOTIFY_SOCKET", notify)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    Proc::spawn("pocketpxe serve", cmd)
}

/// A TFTP root like the lab's.
fn lab_root(tmp: &TempDir) -> PathBuf {
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("pxelinux.0"), PXELINUX).unwrap();
    root
}

/// The UDP sockets listening in `ns` (`ss -Hlun`).
fn listening_udp(ns: &Netns) -> String {
    let out = run_bounded(
        ns.command("ss").args(["-H", "-l", "-u", "-n"]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "ss: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SIGTERM to `pid`.
fn kill_term(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// With exactly the capabilities `dist/pocketpxe@.service` grants (its
/// `CapabilityBoundingSet=`) and `NoNewPrivileges`, `serve` binds, adds its address, drops to
/// an unprivileged user, says READY=1, leases an address, and removes the address on SIGTERM.
#[test]
fn serve_runs_with_the_units_capabilities() {
    const T: &str = "serve_runs_with_the_units_capabilities";
    if !netns_available(T)
        || !have_tool(T, "busybox", "busybox-static")
        || !have_tool(T, "setpriv", "util-linux")
    {
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dist/pocketpxe@.service"
    ))
    .unwrap();
    let caps: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("no CapabilityBoundingSet= in the unit")
        .split_whitespace()
        .map(|c| c.strip_prefix("CAP_").unwrap().to_lowercase())
        .collect();
    assert!(unit.lines().any(|l| l == "NoNewPrivileges=yes"));
    let bounding = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");

    let lab = Lab::new("systemd-caps");
    // Readable and writable by the unprivileged user, as the package's directories are.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&lab.tmp.path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = lab.tmp.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let leases = state.join("eth1.leases");
    let notify = NotifySocket::new(&lab.tmp.path);
    std::fs::set_permissions(&notify.path, std::fs::Permissions::from_mode(0o777)).unwrap();

    let mut cmd = lab.srv.command("setpriv");
    cmd.arg(format!("--bounding-set={bounding}"))
        .arg("--no-new-privs")
        .arg(pocketpxe_bin())
        .args(["serve", "--interface", "eth1", "--root"])
        .arg(&lab.root)
        .arg("--leases")
        .arg(&leases)
        .args(["--address", "192.168.242.1/24", "--user", "nobody"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    let mut server = Proc::spawn("pocketpxe serve", cmd);
    let ready = notify
        .recv(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no READY=1 with {bounding}:\n{}", server.log()));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // The log is read from a pipe: it may lag behind the datagram.
    server.wait_log("pocketpxe serve ready", Duration::from_secs(5));
    let log = server.log();
    assert!(log.contains("dropped root"), "{log}");
    // Root without CAP_DAC_OVERRIDE could not write into /run/pocketpxe once an earlier run
    // handed it to the service user.
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "warnings with the unit's capabilities:\n{log}"
    );

    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    assert!(
        env.is_some(),
        "udhcpc got no lease: {out:?}\n{}",
        server.log()
    );
    assert!(
        std::fs::read_to_string(&leases).is_ok_and(|l| !l.is_empty()),
        "no lease saved:\n{}",
        server.log()
    );

    kill_term(server.child.id());
    let status = wait_child(&mut server.child, Duration::from_secs(15)).expect("no exit");
    assert!(status.success(), "{status}:\n{}", server.log());
    assert!(
        !lab.srv.addrs("eth1").contains("192.168.242.1"),
        "address not removed with the unit's capabilities:\n{}",
        server.log()
    );
}
