//! Least privilege: `pocketpxe serve --user nobody` binds its ports, adds its
//! address, then runs as nobody with CAP_NET_ADMIN only (to remove the address on exit). A
//! client still gets a lease and a file, the lease file is written, and SIGTERM still removes
//! the address. Without anything to undo, no capability is left at all.
//!
//! Network safety: two namespaces the test creates; the server is stopped by its PID.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;
mod serve_support;

use serve_support::*;

fn status_field(pid: u32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn serve_runs_as_nobody_with_only_net_admin() {
    const T: &str = "serve_runs_as_nobody_with_only_net_admin";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("hostile-privdrop");
    let (uid, gid) = nobody();
    // The lease directory belongs to the service user; the root is world-readable.
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    let mut server = lab.serve(&["--address", "192.168.242.1/24", "--user", "nobody"]);
    let pid = server.pid();
    let uids = status_field(pid, "Uid:");
    let cap_eff = status_field(pid, "CapEff:");
    let cap_amb = status_field(pid, "CapAmb:");
    eprintln!("FIGURE privdrop: Uid {uids} CapEff {cap_eff} CapAmb {cap_amb}");
    assert_eq!(
        uids,
        format!("{uid}\t{uid}\t{uid}\t{uid}"),
        "real/effective/saved/fs uid"
    );
    assert_eq!(status_field(pid, "Groups:"), "", "supplementary groups");
    // CAP_NET_ADMIN is bit 12.
    assert_eq!(cap_eff, "0000000000001000");
    assert_eq!(cap_amb, "0000000000001000");
    assert!(server.log().contains("dropped root: running as nobody"));

    // End to end: a lease (written to the file by the unprivileged daemon) and a download.
    let (env, out) = udhcpc(&lab.cli, "eth0", &lab.tmp.path);
    let env = env.unwrap_or_else(|| panic!("no lease as nobody: {out:?}\n{}", server.log()));
    let ip = env["ip"].clone();
    assert!(
        std::fs::read_to_string(lab.leases())
            .unwrap_or_default()
            .contains(&ip),
        "lease {ip} not in the lease file"
    );
    lab.cli
        .ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let got = lab.tmp.join("got");
    let out = busybox_tftp_get(&lab.cli, "pxelinux.0", &got, "192.168.242.1");
    assert!(out.status.success(), "tftp as nobody: {out:?}");
    assert_eq!(std::fs::read(&got).unwrap(), PXELINUX);

    // Cleanup on exit still happens, with the one capability kept for it.
    assert!(lab.srv.addrs("eth1").contains("192.168.242.1/24"));
    let status = server.stop();
    assert!(status.success(), "exit {status}:\n{}", server.log());
    assert!(
        !lab.srv.addrs("eth1").contains("192.168.242.1/24"),
        "the address was not removed:\n{}",
        server.log()
    );
}

#[test]
fn nothing_to_undo_means_no_capabilities() {
    const T: &str = "nothing_to_undo_means_no_capabilities";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("hostile-privdrop-nocap");
    lab.srv
        .ip(&["addr", "add", "192.168.242.1/24", "dev", "eth1"]);
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    let mut server = lab.serve(&["--user", "nobody"]);
    let pid = server.pid();
    assert_eq!(status_field(pid, "CapEff:"), "0000000000000000");
    assert_eq!(status_field(pid, "CapPrm:"), "0000000000000000");
    assert!(status_field(pid, "Uid:").starts_with(&uid.to_string()));
    let status = server.stop();
    assert!(status.success());
    // An unwritable lease directory with an explicit --user: a clear error, nothing changed.
    let locked = lab.tmp.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::os::unix::fs::chown(&locked, Some(0), Some(0)).unwrap();
    let leases = locked.join("leases");
    let (code, err) = lab.serve_fails(
        &lab.srv,
        &[
            "--interface",
            "eth1",
            "--root",
            lab.root.to_str().unwrap(),
            "--leases",
            leases.to_str().unwrap(),
            "--user",
            "nobody",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("not writable by user nobody") && err.contains("locked"),
        "{err}"
    );
}
