//! `pocketpxe tftp` raises its soft open-file limit for `--max-transfers` sockets, and warns
//! when the hard limit is too low. The server runs under `prlimit` (util-linux) with a low
//! soft limit; its limit in force is read from /proc/PID/limits.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::process::Command;

mod common;

/// Starts the server under `prlimit --nofile=SOFT:HARD`, waits until it is ready, and returns
/// its soft open-file limit and its log up to then.
fn soft_limit_under(soft: u32, hard: u32, max_transfers: &str) -> (u64, String) {
    let root = common::TempDir::new("fdlimit");
    let nofile = format!("--nofile={soft}:{hard}");
    let server = common::Server::start_under(
        &["prlimit", &nofile],
        &root.path,
        &["--max-transfers", max_transfers],
    );
    // prlimit execs the program: the PID is the server's.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-file limit in /proc/PID/limits:\n{limits}"));
    let soft = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    (soft, server.log())
}

/// This process's hard open-file limit.
fn hard_limit() -> u32 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    match line.split_whitespace().nth(4).unwrap() {
        "unlimited" => u32::MAX,
        n => n.parse().unwrap(),
    }
}

/// Whether `prlimit` runs; skips loudly, or fails with `CI=true`.
fn have_prlimit() -> bool {
    let found = Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("prlimit (util-linux) is not installed (CI=true: not skipping)");
        }
        eprintln!("SKIP: prlimit (util-linux) is not installed");
    }
    found
}

#[test]
fn soft_limit_is_raised_for_max_transfers() {
    if !have_prlimit() {
        return;
    }
    // The hard limit may not be raised (no CAP_SYS_RESOURCE in a container): stay below it.
    let hard = hard_limit().min(10_000);
    assert!(
        hard >= 4000,
        "this machine's hard open-file limit {hard} is too low for the test"
    );
    let (soft, log) = soft_limit_under(256, hard, "3000");
    assert!(
        soft >= 3000,
        "soft limit {soft} after asking for 3000 transfers; log:\n{log}"
    );
    assert!(soft <= u64::from(hard));
    assert!(
        !log.contains("is below what"),
        "unexpected warning; log:\n{log}"
    );
}

#[test]
fn too_low_a_hard_limit_is_reported() {
    if !have_prlimit() {
        return;
    }
    let (soft, log) = soft_limit_under(256, 1000, "3000");
    assert_eq!(soft, 1000, "raised to the hard limit; log:\n{log}");
    assert!(
        log.contains("open-file limit (RLIMIT_NOFILE) is below what --max-transfers needs"),
        "no warning; log:\n{log}"
    );
}
