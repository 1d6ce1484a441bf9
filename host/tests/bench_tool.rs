//! `pocketpxe bench tftp` against `pocketpxe tftp` on 127.0.0.1: content is verified, failures
//! and corruption are counted and make the tool exit non-zero.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{Server, TempDir, json_field as field, make_file, run_bounded};
use sha2::{Digest, Sha256};
use std::process::Command;
use std::time::Duration;

fn bench(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_pocketpxe"))
            .args(["bench", "tftp", "--server", &server.addr().to_string()])
            .args(args),
        Duration::from_secs(120),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn concurrent_clients_verified_lockstep_and_windowed() {
    let dir = TempDir::new("bench");
    let (name, data) = make_file(&dir.path, 3 << 20);
    let sha = format!("{:x}", Sha256::digest(&data));
    let server = Server::start(&dir.path, &[]);
    for extra in [
        &["--blksize", "1468"][..],
        &["--blksize", "1468", "--windowsize", "16"],
        &["--blksize", "1468", "--windowsize", "16", "--threads", "3"],
        &["--blksize", "65464", "--windowsize", "16", "--threads", "2"],
    ] {
        let mut args = vec![
            "--file",
            &name,
            "--clients",
            "16",
            "--json",
            "--expect-sha256",
            &sha,
        ];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = bench(&server, &args);
        assert!(ok, "bench failed: {stdout}\n{stderr}");
        let json = stdout.trim();
        assert_eq!(field(json, "transfers"), 16.0, "{json}");
        assert_eq!(field(json, "ok"), 16.0, "{json}");
        assert_eq!(field(json, "corrupt"), 0.0, "{json}");
        assert_eq!(field(json, "bytes"), (16 * data.len()) as f64, "{json}");
        assert!(field(json, "mb_per_s") > 0.0, "{json}");
    }
}

#[test]
fn wrong_content_and_missing_files_are_counted_and_fail() {
    let dir = TempDir::new("bench-bad");
    let (name, _) = make_file(&dir.path, 100_000);
    let server = Server::start(&dir.path, &[]);
    let wrong = "00".repeat(32);
    let (ok, stdout, stderr) = bench(
        &server,
        &[
            "--file",
            &name,
            "--clients",
            "3",
            "--json",
            "--expect-sha256",
            &wrong,
        ],
    );
    assert!(!ok, "wrong hash must fail: {stdout}");
    assert_eq!(field(stdout.trim(), "corrupt"), 3.0, "{stdout}");
    assert!(stderr.contains("3 corrupt"), "{stderr}");

    let (ok, _, stderr) = bench(&server, &["--file", "missing", "--threads", "0"]);
    assert!(!ok && stderr.contains("--threads"), "{stderr}");
    let (ok, stdout, _) = bench(&server, &["--file", "missing", "--clients", "2", "--json"]);
    assert!(!ok);
    assert_eq!(field(stdout.trim(), "failed"), 2.0, "{stdout}");

    let (ok, _, stderr) = bench(&server, &["--file", &name, "--expect-sha256", "xyz"]);
    assert!(!ok);
    assert!(stderr.contains("64 hexadecimal"), "{stderr}");
}
