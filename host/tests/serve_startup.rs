//! `serve` says "ready" only when it can serve: as the user it serves as, the lease file must
//! be writable and the TFTP root readable, or it refuses to start with one line naming the
//! path, the user and the fix; a `--boot` file it cannot serve is a warning. Every signal that
//! ends it undoes its address, and a closed stdout and stderr cost the log, not the service.
//!
//! Network safety: namespaces the tests create (see `serve_support`); servers are stopped by
//! their PID.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;
mod serve_support;

use common::wait_child;
use serve_support::*;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CIDR: &str = "192.168.242.1/24";

/// Lease files the service user cannot write, for three reasons a look at the directory's own
/// mode bits would miss or get wrong; each is refused before "ready", and the address added
/// for the run is gone again.
#[test]
fn unwritable_leases_are_refused_before_ready() {
    const T: &str = "unwritable_leases_are_refused_before_ready";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("startup-leases");
    let root = lab.root.to_str().unwrap();
    let base = |leases: &std::path::Path, user: &'static str| {
        vec![
            "--interface".to_owned(),
            "eth1".into(),
            "--root".into(),
            root.into(),
            "--address".into(),
            CIDR.into(),
            "--leases".into(),
            leases.display().to_string(),
            "--user".into(),
            user.into(),
        ]
    };
    let refused = |err: &str, leases: &std::path::Path, dir: &std::path::Path, user: &str| {
        assert_one_line(
            err,
            &[
                &format!(
                    "lease file {} cannot be written by user {user}",
                    leases.display()
                ),
                &format!("make {} writable by {user}", dir.display()),
                "--leases",
            ],
        );
    };

    // A directory of root's, 0755.
    let locked = lab.tmp.join("locked");
    std::fs::create_dir(&locked).unwrap();
    let leases = locked.join("leases");
    let args = base(&leases, "nobody");
    let (code, err) = lab.serve_fails(&lab.srv, &strs(&args));
    assert_eq!(code, Some(1), "{err}");
    refused(&err, &leases, &locked, "nobody");
    assert!(
        err.contains(&format!("chown nobody {}", locked.display())),
        "{err}"
    );
    assert!(!lab.srv.addrs("eth1").contains(CIDR), "address left behind");

    // World-writable, but inside a directory only root may enter.
    let hidden = lab.tmp.join("hidden");
    let open = hidden.join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let leases = open.join("leases");
    let (code, err) = lab.serve_fails(&lab.srv, &strs(&base(&leases, "nobody")));
    assert_eq!(code, Some(1), "{err}");
    refused(&err, &leases, &open, "nobody");
    assert!(!lab.srv.addrs("eth1").contains(CIDR), "address left behind");

    // Root itself, on a read-only mount: permissions do not help there.
    let ro = lab.tmp.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let leases = ro.join("leases");
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && exec \"$@\"",
    ])
    .arg(&ro)
    .args([
        "ip",
        "netns",
        "exec",
        &lab.srv.name,
        env!("CARGO_BIN_EXE_pocketpxe"),
    ]);
    let (code, err) = run_to_failure(cmd, &strs(&base(&leases, "root")));
    assert_eq!(code, Some(1), "{err}");
    refused(&err, &leases, &ro, "root");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!lab.srv.addrs("eth1").contains(CIDR), "address left behind");
}

/// A TFTP root the service user cannot read is refused before "ready" (root, which opened
/// it, could).
#[test]
fn an_unreadable_root_is_refused_before_ready() {
    const T: &str = "an_unreadable_root_is_refused_before_ready";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("startup-root");
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&lab.root, std::fs::Permissions::from_mode(0o700)).unwrap();
    let args = lab.lab_args(&["--address", CIDR, "--user", "nobody"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = lab.serve_fails(&lab.srv, &args);
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(
        &err,
        &[
            &format!(
                "TFTP root {} is not readable by user nobody",
                lab.root.display()
            ),
            &format!("chmod a+rx {}", lab.root.display()),
        ],
    );
    assert!(!lab.srv.addrs("eth1").contains(CIDR), "address left behind");

    // Readable again: it starts.
    std::fs::set_permissions(&lab.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut server = ServeProc::start(&lab.srv, &args);
    assert!(server.stop().success(), "{}", server.log());
}

/// A `--boot` file missing under the root, or one the service user cannot read, is a warning
/// naming it; the server still gets ready. Files that are there, and HTTP URLs, are not
/// mentioned.
#[test]
fn boot_files_it_cannot_serve_are_warnings() {
    const T: &str = "boot_files_it_cannot_serve_are_warnings";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("startup-boot");
    lab.srv.ip(&["addr", "add", CIDR, "dev", "eth1"]);
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    let secret = lab.root.join("secret.efi");
    std::fs::write(&secret, b"root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut server = lab.serve(&[
        "--user",
        "nobody",
        "--boot",
        "bios=pxelinux.0",
        "--boot",
        "efi-x64=nothere.efi",
        "--boot",
        "efi-ia32=secret.efi",
        "--boot",
        "efi-x64-http=http://192.168.242.1/missing.efi",
    ]);
    let log = server.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warnings.iter().any(
            |l| l.contains("boot file nothere.efi is missing under the TFTP root")
                && l.contains("efi-x64")
        ),
        "{log}"
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("boot file secret.efi") && l.contains("nobody")),
        "{log}"
    );
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(server.stop().success(), "{}", server.log());
}

/// SIGTERM, SIGQUIT, SIGINT and SIGUSR1 end `serve` cleanly: exit 0, the address removed (also
/// as an unprivileged user with CAP_NET_ADMIN only). SIGHUP reloads instead
/// (serve_reload.rs).
#[test]
fn ending_signals_remove_the_address() {
    const T: &str = "ending_signals_remove_the_address";
    if !netns_available(T) {
        return;
    }
    let lab = Lab::new("startup-signals");
    let (uid, gid) = nobody();
    std::os::unix::fs::chown(&lab.tmp.path, Some(uid), Some(gid)).unwrap();
    for (signal, user) in [
        ("TERM", "nobody"),
        ("QUIT", "root"),
        ("INT", "nobody"),
        ("USR1", "root"),
    ] {
        let mut server = lab.serve(&["--address", CIDR, "--user", user]);
        assert!(lab.srv.addrs("eth1").contains(CIDR));
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = wait_child(&mut server.child, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("SIG{signal} did not stop serve:\n{}", server.log()));
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal}: {status}\n{}",
            server.log()
        );
        assert!(
            server.log().contains(&format!("SIG{signal}")),
            "{}",
            server.log()
        );
        assert!(
            !lab.srv.addrs("eth1").contains(CIDR),
            "SIG{signal} left the address:\n{}",
            server.log()
        );
    }
}

/// `pocketpxe serve ... 2>&1 | head -1`: once the reader of its stdout and stderr is gone,
/// every log line fails with EPIPE; the server goes on serving files, and SIGTERM still ends
/// it cleanly and removes its address.
#[test]
fn a_closed_stdout_and_stderr_do_not_stop_the_server() {
    const T: &str = "a_closed_stdout_and_stderr_do_not_stop_the_server";
    if !netns_available(T) || !have_tool(T, "busybox", "busybox-static") {
        return;
    }
    let lab = Lab::new("startup-epipe");
    let (reader, writer) = std::io::pipe().unwrap();
    let mut cmd = lab.srv.command(env!("CARGO_BIN_EXE_pocketpxe"));
    cmd.arg("serve")
        .args([
            "--interface",
            "eth1",
            "--root",
            lab.root.to_str().unwrap(),
            "--leases",
            lab.leases().to_str().unwrap(),
            "--address",
            CIDR,
            "--user",
            "root",
        ])
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // our copies of the write end
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Like `head`: read up to "ready", then close the pipe.
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if line.contains("pocketpxe serve ready") {
                let _ = tx.send(line);
                break;
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(20));
    assert!(ready.is_ok(), "serve did not get ready");
    // The reader is gone once the thread ended (the channel's sender dropped with it).
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_err());

    lab.cli
        .ip(&["addr", "add", "192.168.242.50/24", "dev", "eth0"]);
    for n in 0..3 {
        let got = lab.tmp.join(&format!("got-{n}"));
        let out = busybox_tftp_get(&lab.cli, "pxelinux.0", &got, "192.168.242.1");
        assert!(
            out.status.success(),
            "download {n} with the log's pipe closed: {out:?} (server: {:?})",
            child.try_wait()
        );
        assert_eq!(std::fs::read(&got).unwrap(), PXELINUX);
    }
    assert!(child.try_wait().unwrap().is_none(), "serve ended");

    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_child(&mut child, Duration::from_secs(15));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    assert!(!lab.srv.addrs("eth1").contains(CIDR), "address left behind");
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Exactly one line on stderr (nothing was changed, so nothing was undone), containing every
/// `needle`, and no "ready".
fn assert_one_line(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{needle:?} missing in {:?}",
            lines[0]
        );
    }
    assert!(!stderr.contains("ready"), "{stderr}");
}
