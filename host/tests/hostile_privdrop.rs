//! Least privilege: `pocketpxe serve --user nobody` binds its ports, adds its
//! address, then runs as nobody with CAP_NET_ADMIN only (to remove the address on exit). A
//! client still gets a lease and a file, the lease file is written, and SIGTERM still removes
//! the address. Without anything to undo, no capability is left at all. Without `--user` it
//! runs as `pocketpxe`, and refuses to start when that user does not exist, unless
//! `--user root` is given.
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
    assert_one_line(
        &err,
        &[
            &format!("lease file {}", leases.display()),
            "cannot be written by user nobody",
            &format!("chown nobody {}", locked.display()),
        ],
    );
}

/// Without `--user`, `serve` drops to `pocketpxe`, found through NSS (here: a user database of
/// the test's own, so the machine's need not have the user).
#[test]
fn the_default_user_is_pocketpxe() {
    const T: &str = "the_default_user_is_pocketpxe";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("hostile-privdrop-default");
    let users = Users::new(&lab.tmp.path, true);
    std::os::unix::fs::chown(&lab.tmp.path, Some(FAKE_POCKETPXE), Some(FAKE_POCKETPXE)).unwrap();
    let mut server = lab.serve_with_users(&users, &["--address", "192.168.242.1/24"]);
    let id = FAKE_POCKETPXE;
    assert_eq!(
        status_field(server.pid(), "Uid:"),
        format!("{id}\t{id}\t{id}\t{id}")
    );
    assert_eq!(
        status_field(server.pid(), "Gid:"),
        format!("{id}\t{id}\t{id}\t{id}")
    );
    assert!(
        server.log().contains("dropped root: running as pocketpxe"),
        "{}",
        server.log()
    );
    // The lease file was written by the service user before "ready".
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(lab.leases()).unwrap());
    assert_eq!(owner, id);
    assert!(server.stop().success(), "{}", server.log());
    assert!(!lab.srv.addrs("eth1").contains("192.168.242.1/24"));
}

/// No user `pocketpxe` and no `--user`: refused before anything changes, with the fix; an
/// explicit `--user root` runs, as root, and says so.
#[test]
fn a_missing_default_user_is_refused_unless_root_is_asked_for() {
    const T: &str = "a_missing_default_user_is_refused_unless_root_is_asked_for";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("hostile-privdrop-nouser");
    let users = Users::new(&lab.tmp.path, false);
    let (code, err) = lab.serve_fails_with_users(&users, &["--address", "192.168.242.1/24"]);
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(
        &err,
        &[
            "user pocketpxe does not exist",
            "useradd --system --no-create-home --shell /usr/sbin/nologin pocketpxe",
            "--user root",
        ],
    );
    assert!(!lab.srv.addrs("eth1").contains("192.168.242.1"));
    assert!(!lab.leases().exists());
    // A named user that does not exist either.
    let (code, err) = lab.serve_fails_with_users(
        &users,
        &["--address", "192.168.242.1/24", "--user", "nosuchppxe"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &["user nosuchppxe does not exist", "--user"]);

    let mut server =
        lab.serve_with_users(&users, &["--address", "192.168.242.1/24", "--user", "root"]);
    assert!(status_field(server.pid(), "Uid:").starts_with("0\t0"));
    let log = server.log();
    assert!(
        log.contains("INFO") && log.contains("--user root: keeping root privileges"),
        "{log}"
    );
    assert!(!log.contains("dropped root"), "{log}");
    assert!(server.stop().success(), "{}", server.log());
}

/// Exactly one line on stderr, containing every `needle`, and no "ready".
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
    assert!(!stderr.contains("ready"), "{stderr}");
}
