//! The command line: one clear error line and a non-zero exit for bad flags and unusable
//! roots or ports; a clean exit 0 on SIGTERM, also with a transfer running.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{RawClient, Server, TempDir, ack, opcode, rrq, run_bounded};
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

fn pocketpxe(args: &[&str]) -> (i32, String) {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_pocketpxe"))
            .args(args)
            .env("NO_COLOR", "1"),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
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

#[test]
fn bad_flags_give_one_line() {
    let (code, err) = pocketpxe(&["tftp", "--root", "/tmp", "--bogus"]);
    assert_eq!(code, 2);
    assert_one_line(&err, &["--bogus"]);
    let (code, err) = pocketpxe(&["tftp", "--root", "/tmp", "--max-blksize", "7"]);
    assert_eq!(code, 2);
    assert_one_line(&err, &["--max-blksize", "7"]);
    let (code, err) = pocketpxe(&["tftp", "--root", "/tmp", "--listen", "localhost"]);
    assert_eq!(code, 2);
    assert_one_line(&err, &["--listen"]);
    let (code, err) = pocketpxe(&["tftp"]);
    assert_eq!(code, 2);
    assert_one_line(&err, &["--root"]);
}

/// The TFTP tuning flags, in `tftp` and `serve` alike.
const TUNING_FLAGS: [&str; 7] = [
    "--max-transfers",
    "--max-blksize",
    "--max-windowsize",
    "--timeout",
    "--retries",
    "--no-options",
    "--grace",
];

/// The "TFTP tuning" section of a subcommand's `--help`.
fn tuning_help(subcommand: &str) -> String {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_pocketpxe"))
            .args([subcommand, "--help"])
            .env("NO_COLOR", "1"),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{subcommand} --help: {out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    let section = help
        .split_once("\nTFTP tuning:\n")
        .unwrap_or_else(|| panic!("no TFTP tuning section in {subcommand} --help:\n{help}"))
        .1;
    // Up to the next heading (a line that does not start with a space), if any.
    section
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn serve_and_tftp_share_the_tftp_tuning_flags() {
    let serve = tuning_help("serve");
    for flag in TUNING_FLAGS {
        assert!(
            serve.contains(&format!("      {flag}")),
            "{flag} missing:\n{serve}"
        );
    }
    assert!(
        serve.contains("RFC 7440") && serve.contains("RFC 2349"),
        "{serve}"
    );
    // Same names, defaults and help text in both.
    assert_eq!(serve, tuning_help("tftp"));
}

#[test]
fn bad_tuning_values_give_one_line_naming_the_flag() {
    for (flag, bad) in [
        ("--max-windowsize", "0"),
        ("--timeout", "0"),
        ("--timeout", "1000"),
        ("--retries", "256"),
        ("--max-blksize", "70000"),
        ("--max-transfers", "0"),
    ] {
        let (code, err) = pocketpxe(&["serve", "--interface", "lo", "--root", "/tmp", flag, bad]);
        assert_eq!(code, 2, "{flag} {bad}: {err}");
        assert_one_line(&err, &[flag, bad]);
    }
}

#[test]
fn unusable_roots_give_one_line() {
    let tmp = TempDir::new("cli-root");
    let missing = tmp.join("missing");
    let file = tmp.join("file");
    std::fs::write(&file, b"x").unwrap();
    for (root, why) in [(&missing, "no such directory"), (&file, "not a directory")] {
        let root = root.to_str().unwrap();
        let (code, err) = pocketpxe(&["tftp", "--root", root, "--listen", "127.0.0.1:0"]);
        assert_eq!(code, 1, "{err}");
        assert_one_line(&err, &[root, why]);
    }
}

#[test]
fn port_in_use_gives_one_line() {
    let tmp = TempDir::new("cli-port");
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = tmp.path.to_str().unwrap();
    let (code, err) = pocketpxe(&["tftp", "--root", root, "--listen", &addr]);
    assert_eq!(code, 1, "{err}");
    assert_one_line(&err, &[&addr, "in use"]);
}

#[test]
fn sigterm_exits_cleanly() {
    let tmp = TempDir::new("cli-term");
    let mut server = Server::start(&tmp.path, &[]);
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("no exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
}

#[test]
fn sigterm_lets_a_running_transfer_finish_within_the_grace_period() {
    let tmp = TempDir::new("cli-grace");
    std::fs::write(tmp.join("f"), vec![7u8; 2000]).unwrap();
    let mut server = Server::start(&tmp.path, &["--grace", "3"]);
    let client = RawClient::new();
    client.send_to(&rrq(b"f", &[]), server.addr());
    let (data, tid) = client.recv().expect("no DATA 1");
    assert_eq!(opcode(&data), 3);
    server.terminate();
    let asked = Instant::now();
    while !server.log().contains("shutdown requested") {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "SIGTERM not seen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // New requests are no longer answered...
    let other = RawClient::new();
    other
        .socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    other.send_to(&rrq(b"f", &[]), server.addr());
    assert!(
        other.recv().is_none(),
        "a request was answered after SIGTERM"
    );
    // ...but the running transfer goes on to its end.
    for block in 1..=4u16 {
        client.send_to(&ack(block), tid);
        if block < 4 {
            let (data, _) = client.recv().expect("transfer stalled after SIGTERM");
            assert_eq!(opcode(&data), 3);
            assert_eq!(u16::from_be_bytes([data[2], data[3]]), block + 1);
        }
    }
    let status = server.wait_exit(Duration::from_secs(10)).expect("no exit");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert!(server.log().contains("outcome=ok"), "{}", server.log());
}

#[test]
fn sigterm_with_a_stalled_transfer_exits_after_the_grace_period() {
    let tmp = TempDir::new("cli-stall");
    std::fs::write(tmp.join("f"), vec![7u8; 2000]).unwrap();
    let mut server = Server::start(&tmp.path, &["--grace", "1", "--timeout", "10"]);
    let client = RawClient::new();
    client.send_to(&rrq(b"f", &[]), server.addr());
    let (_, _tid) = client.recv().expect("no DATA 1");
    let started = Instant::now();
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(10)).expect("no exit");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The client is told: ERROR 0.
    let (reply, _) = client.recv().expect("no ERROR after the grace period");
    assert_eq!(common::as_error(&reply).map(|(c, _)| c), Some(0));
}

/// As an unprivileged user (root drops to `nobody` with setpriv): port 69 and an unreadable
/// root each give one line naming the cause. Skipped where the test does not run as root.
#[test]
fn unprivileged_errors_name_the_cause() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let has_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !is_root || !has_setpriv {
        eprintln!("SKIP: needs root and setpriv to test as an unprivileged user");
        return;
    }
    let tmp = TempDir::new("cli-unpriv");
    std::fs::set_permissions(&tmp.path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.join("pocketpxe");
    std::fs::copy(env!("CARGO_BIN_EXE_pocketpxe"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let public = tmp.join("public");
    let private = tmp.join("private");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let as_nobody = |root: &std::path::Path, listen: &str| {
        let out = run_bounded(
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                ])
                .arg(&bin)
                .args(["tftp", "--root"])
                .arg(root)
                .args(["--listen", listen])
                .env("NO_COLOR", "1"),
            Duration::from_secs(20),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let unprivileged_ports_start =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1024);
    if unprivileged_ports_start > 69 {
        let (code, err) = as_nobody(&public, "127.0.0.1:69");
        assert_eq!(code, Some(1), "{err}");
        assert_one_line(&err, &["127.0.0.1:69", "CAP_NET_BIND_SERVICE"]);
    }
    let (code, err) = as_nobody(&private, "127.0.0.1:0");
    assert_eq!(code, Some(1), "{err}");
    assert_one_line(&err, &[private.to_str().unwrap(), "not readable"]);
}
