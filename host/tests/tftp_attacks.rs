//! Hostile requests from a raw UDP client: every one gets an ERROR packet and not a byte from
//! outside the root. Also symlinks (inside: served; outside: refused), a FIFO, WRQ, and ERROR 5
//! for a stranger on a transfer's port.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{RawClient, Server, TempDir, ack, as_error, opcode, request, rrq};
use std::os::unix::fs::symlink;

const SECRET: &[u8] = b"TOP-SECRET-outside-the-root";

struct Setup {
    tmp: TempDir,
    server: Server,
}

/// root/ with `inside.txt`, `link-inside -> sub/inside2.txt`, `link-out -> ../secret.txt`,
/// `link-abs -> /abs/path/secret.txt`, `sub/link-up -> ../../secret.txt`, the directory links
/// `sub/dotdot -> ..` (the root: inside) and `sub/updir -> ../..` (outside), a FIFO `fifo`, and
/// the secret one level above the root.
fn setup() -> Setup {
    let tmp = TempDir::new("attacks");
    let root = tmp.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(tmp.join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("inside.txt"), b"hello from inside").unwrap();
    std::fs::write(root.join("sub/inside2.txt"), b"second file").unwrap();
    symlink("sub/inside2.txt", root.join("link-inside")).unwrap();
    symlink("../secret.txt", root.join("link-out")).unwrap();
    symlink(tmp.join("secret.txt"), root.join("link-abs")).unwrap();
    symlink("../../secret.txt", root.join("sub/link-up")).unwrap();
    symlink("..", root.join("sub/dotdot")).unwrap();
    symlink("../..", root.join("sub/updir")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    let server = Server::start(&root, &[]);
    Setup { tmp, server }
}

/// Sends `packet` to the listener and returns the answer, which must be an ERROR: its code.
fn expect_error(setup: &Setup, packet: &[u8], what: &str) -> u16 {
    let client = RawClient::new();
    client.send_to(packet, setup.server.addr());
    let (reply, _) = client.recv().unwrap_or_else(|| panic!("{what}: no answer"));
    assert!(
        !contains(&reply, SECRET) && !contains(&reply, b"root:"),
        "{what}: leaked bytes: {reply:?}"
    );
    let tmp_path = setup.tmp.path.to_string_lossy();
    assert!(
        !contains(&reply, tmp_path.as_bytes()),
        "{what}: host path in reply: {reply:?}"
    );
    let (code, msg) = as_error(&reply)
        .unwrap_or_else(|| panic!("{what}: expected ERROR, got opcode {}", opcode(&reply)));
    eprintln!("{what}: ERROR {code} {msg:?}");
    code
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Downloads a small (< 512 bytes) file with a raw client: DATA 1, ACK 1.
fn fetch_small(setup: &Setup, name: &[u8]) -> Vec<u8> {
    let client = RawClient::new();
    client.send_to(&rrq(name, &[]), setup.server.addr());
    let (reply, tid) = client.recv().expect("no answer");
    assert_eq!(
        opcode(&reply),
        3,
        "expected DATA, got {:?}",
        as_error(&reply)
    );
    assert_eq!(&reply[2..4], &[0, 1]);
    assert_ne!(tid, setup.server.addr(), "DATA must come from a new TID");
    client.send_to(&ack(1), tid);
    reply[4..].to_vec()
}

#[test]
fn path_traversal_is_refused() {
    let s = setup();
    for name in [
        &b"../secret.txt"[..],
        b"a/../../secret.txt",
        b"..",
        b"sub/../../secret.txt",
    ] {
        let code = expect_error(&s, &rrq(name, &[]), &String::from_utf8_lossy(name));
        assert_eq!(code, 2, "{name:?}");
    }
    // Backslashes separate too (PXE ROMs), so `..\` is a parent component as well.
    assert_eq!(
        expect_error(&s, &rrq(b"..\\secret.txt", &[]), "backslash"),
        2
    );
}

#[test]
fn absolute_paths_are_root_relative() {
    let s = setup();
    assert_eq!(
        expect_error(&s, &rrq(b"/etc/passwd", &[]), "/etc/passwd"),
        1
    );
    assert_eq!(
        expect_error(&s, &rrq(b"//etc//passwd", &[]), "//etc//passwd"),
        1
    );
    // A leading slash names a file inside the root (GRUB).
    assert_eq!(fetch_small(&s, b"/inside.txt"), b"hello from inside");
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    let s = setup();
    for name in [
        &b"link-out"[..],
        b"link-abs",
        b"sub/link-up",
        b"sub/updir/secret.txt",
    ] {
        let code = expect_error(
            &s,
            &rrq(name, &[("tsize", "0")]),
            &String::from_utf8_lossy(name),
        );
        assert_eq!(code, 2, "{name:?}");
    }
    let log = s.server.log();
    assert!(log.contains("outside the TFTP root"), "{log}");
}

#[test]
fn symlinks_inside_the_root_are_served() {
    let s = setup();
    assert_eq!(fetch_small(&s, b"link-inside"), b"second file");
    assert_eq!(
        fetch_small(&s, b"sub/dotdot/inside.txt"),
        b"hello from inside"
    );
}

#[test]
fn malformed_names_and_requests_get_errors() {
    let s = setup();
    // NUL inside the name: on the wire it ends the name early, the rest is garbage.
    let mut nul = 1u16.to_be_bytes().to_vec();
    nul.extend_from_slice(b"inside\0.txt\0octet\0");
    expect_error(&s, &nul, "NUL in name");
    // Over-long request (RFC 2347: at most 512 bytes).
    let long = rrq(&vec![b'a'; 600], &[]);
    assert!(long.len() > 512);
    expect_error(&s, &long, "over-long request");
    // Unterminated request.
    expect_error(&s, b"\x00\x01inside.txt", "unterminated");
    // Empty name.
    assert_eq!(expect_error(&s, &rrq(b"", &[]), "empty name"), 2);
    // netascii / mail are not served.
    expect_error(&s, &request(1, b"inside.txt", b"mail", &[]), "mail mode");
}

#[test]
fn write_requests_are_refused() {
    let s = setup();
    assert_eq!(
        expect_error(&s, &request(2, b"new.txt", b"octet", &[]), "WRQ"),
        2
    );
    assert!(!s.tmp.join("root/new.txt").exists());
}

#[test]
fn fifo_and_directories_are_refused_without_hanging() {
    let s = setup();
    assert_eq!(expect_error(&s, &rrq(b"fifo", &[]), "fifo"), 2);
    assert_eq!(expect_error(&s, &rrq(b"sub", &[]), "directory"), 2);
    // The server still answers afterwards.
    assert_eq!(fetch_small(&s, b"inside.txt"), b"hello from inside");
}

#[test]
fn stranger_on_a_transfer_port_gets_error_5() {
    let s = setup();
    let client = RawClient::new();
    client.send_to(&rrq(b"inside.txt", &[]), s.server.addr());
    let (data, tid) = client.recv().expect("no DATA");
    assert_eq!(opcode(&data), 3);
    let stranger = RawClient::new();
    stranger.send_to(&ack(1), tid);
    let (reply, _) = stranger.recv().expect("no answer to the stranger");
    assert_eq!(as_error(&reply).map(|(c, _)| c), Some(5));
    // The real transfer is not disturbed.
    client.send_to(&ack(1), tid);
}
