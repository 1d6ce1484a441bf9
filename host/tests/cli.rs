//! The command line: clap's errors (with suggestions and usage) for bad flags, one clear
//! error line and a non-zero exit for unusable roots or ports; a clean exit 0 on SIGTERM,
//! also with a transfer running.

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

/// clap's error as clap renders it: `error: …` naming every `needle`, then the usage line
/// (for errors that have one) and the pointer to `--help`; no colours off a terminal.
fn assert_usage_error(stderr: &str, needles: &[&str], usage: bool) {
    assert!(stderr.starts_with("error: "), "{stderr}");
    // The error itself: up to the first empty line.
    let first = stderr.split("\n\n").next().unwrap_or_default();
    for needle in needles {
        assert!(first.contains(needle), "{needle:?} missing in {first:?}");
    }
    assert_eq!(
        stderr.lines().any(|l| l.starts_with("Usage: pocketpxe ")),
        usage,
        "usage line: {stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("For more information, try '--help'."),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colours off a terminal: {stderr:?}"
    );
}

#[test]
fn bad_flags_give_clap_errors_with_usage() {
    let (code, err) = pocketpxe(&["tftp", "--root", "/tmp", "--bogus"]);
    assert_eq!(code, 2);
    assert_usage_error(&err, &["--bogus"], true);
    let (code, err) = pocketpxe(&["tftp", "--root", "/tmp", "--max-blksize", "7"]);
    assert_eq!(code, 2);
    assert_usage_error(&err, &["--max-blksize", "7"], false);
    let (code, err) = pocketpxe(&["tftp", "--root", "/tmp", "--listen", "localhost"]);
    assert_eq!(code, 2);
    assert_usage_error(&err, &["--listen"], false);
    let (code, err) = pocketpxe(&["tftp"]);
    assert_eq!(code, 2);
    assert_usage_error(&err, &["--root"], true);
}

#[test]
fn a_mistyped_flag_gets_the_suggestion_and_the_usage_line() {
    let (code, err) = pocketpxe(&["serve", "--interfac", "eth0", "--root", "/srv/tftp"]);
    assert_eq!(code, 2, "{err}");
    assert_usage_error(&err, &["unexpected argument '--interfac'"], true);
    assert!(
        err.contains("tip: a similar argument exists: '--interface'"),
        "{err}"
    );
    assert!(
        err.contains("Usage: pocketpxe serve --interface <IFACE>"),
        "{err}"
    );
}

/// Times are accepted (`1h30m`, `infinite` for the lease) or refused by every flag alike: an
/// accepted one gets as far as the missing interface (exit 1), a refused one is a usage error.
#[test]
fn times_take_units_and_infinite_only_for_the_lease() {
    let serve = |extra: &[&str]| {
        let mut argv = vec!["serve", "--interface", "pxenosuch0", "--root", "/tmp"];
        argv.extend_from_slice(extra);
        pocketpxe(&argv)
    };
    for ok in [
        &["--lease-time", "1h30m"][..],
        &["--lease-time", "infinite"],
        &["--lease-time", "90"],
        &["--grace", "1m30s"],
        &["--timeout", "2s"],
    ] {
        let (code, err) = serve(ok);
        assert_eq!(code, 1, "{ok:?}: {err}");
        assert_one_line(&err, &["interface pxenosuch0 does not exist"]);
    }
    let (code, err) = serve(&["--wait-interface=infinite"]);
    assert_eq!(code, 2, "{err}");
    assert_usage_error(
        &err,
        &[
            "--wait-interface",
            "'infinite' is only accepted as a lease time (--lease-time)",
        ],
        false,
    );
    let (code, err) = serve(&["--grace", "infinite"]);
    assert_eq!(code, 2, "{err}");
    assert_usage_error(&err, &["--grace", "only accepted as a lease time"], false);
    let (code, err) = serve(&["--lease-time", "1h30x"]);
    assert_eq!(code, 2, "{err}");
    assert_usage_error(&err, &["--lease-time", "'1h30x' is not a time like"], false);
}

/// An error whose message already names its cause does not repeat it.
#[test]
fn causes_are_printed_once() {
    let tmp = TempDir::new("cli-cause");
    let leases = tmp.path.to_str().unwrap();
    let (code, err) = pocketpxe(&[
        "serve",
        "--interface",
        "lo",
        "--root",
        leases,
        "--leases",
        leases,
        "--dhcp-port",
        "0",
        "--tftp-port",
        "0",
        "--user",
        "root",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_one_line(
        &err,
        &[&format!(
            "lease file {leases}: Is a directory (os error 21)"
        )],
    );
    assert_eq!(err.matches("Is a directory").count(), 1, "{err}");
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
fn bad_tuning_values_give_a_usage_error_naming_the_flag() {
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
        assert_usage_error(&err, &[flag, bad], false);
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
