//! Confinement: a corpus of well over 100 hostile file names (traversal in every
//! spelling, encoded separators, overlong UTF-8, NUL, absolute paths, doubled slashes,
//! trailing dots and slashes, very long names, non-UTF-8 bytes) plus on-disk traps (symlinks
//! out of the root, device files, FIFOs, sockets, directories). Nothing outside the root is
//! ever served, the server never blocks on a FIFO, and every refusal is logged once with the
//! client's address. `tftp_attacks.rs` covers the basic cases one by one; this is the corpus.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{RawClient, Server, TempDir, as_error, opcode, rrq};
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"TOP-SECRET-outside-the-root";
const INSIDE: &[u8] = b"inside file";

/// Names that must never reach the secret (one level above the root, and /etc/passwd).
fn corpus() -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let ups: [&[u8]; 14] = [
        b"../",
        b"..\\",
        b"../../",
        b"..\\..\\",
        b"..//",
        b"./../",
        b"sub/../../",
        b"sub\\..\\..\\",
        b"/../",
        b"//../",
        b"\\..\\",
        b"sub/./../../",
        b"../sub/../../",
        b"sub/dotdot/../",
    ];
    let targets: [&[u8]; 4] = [
        b"secret.txt",
        b"etc/passwd",
        b"../etc/passwd",
        b"root/../secret.txt",
    ];
    for up in ups {
        for t in targets {
            names.push([up, t].concat());
        }
    }
    // Encoded or disguised dots and separators: on the wire these are literal bytes, so they
    // must name (missing) files inside the root, never a parent.
    for n in [
        &b"%2e%2e/secret.txt"[..],
        b"%2e%2e%2fsecret.txt",
        b"%2E%2E%2Fsecret.txt",
        b"..%2fsecret.txt",
        b"..%5csecret.txt",
        b"%252e%252e/secret.txt",
        b"....//secret.txt",
        b"....\\\\secret.txt",
        b".../secret.txt",
        b"..../secret.txt",
        b". ./secret.txt",
        b".. /secret.txt",
        b"..;/secret.txt",
        b"..\x00/secret.txt",
        b"\xc0\xae\xc0\xae/secret.txt",
        b"\xc0\xae\xc0\xae\xc0\xafsecret.txt",
        b"\xe0\x80\xae\xe0\x80\xae/secret.txt",
        b"\xef\xbc\x8e\xef\xbc\x8e/secret.txt", // fullwidth dots
        b"\xe2\x80\xa4\xe2\x80\xa4/secret.txt", // one-dot leaders
        b"..\xe2\x88\x95secret.txt",            // division slash
        b"\xff\xfe/../secret.txt",
        b"\x80../secret.txt",
        b"sub/\xff/../../secret.txt",
        b"/etc/passwd",
        b"//etc//passwd",
        b"///etc/passwd",
        b"\\etc\\passwd",
        b"/proc/self/environ",
        b"/proc/self/root/etc/passwd",
        b"/dev/zero",
        b"/dev/random",
        b"C:\\Windows\\win.ini",
        b"file:///etc/passwd",
        b"tftp://127.0.0.1/../secret.txt",
        b"..",
        b"../",
        b"..\\",
        b".",
        b"./",
        b"/",
        b"//",
        b"\\",
        b"sub/..",
        b"sub/../..",
        b"sub/../../",
        b"inside.txt/../../secret.txt",
        b"inside.txt/",
        b"inside.txt.",
        b"inside.txt..",
        b"sub/",
        b"sub//",
        b"sub/.",
        b"secret.txt",
        b"link-out",
        b"link-out/",
        b"link-abs",
        b"link-etc",
        b"link-root/etc/passwd",
        b"link-proc/self/root/etc/passwd",
        b"sub/link-up",
        b"sub/updir/secret.txt",
        b"sub/loop",
        b"fifo",
        b"fifo/",
        b"null-dev",
        b"zero-dev",
        b"socket",
        b"sub",
        b"emptydir",
    ] {
        names.push(n.to_vec());
    }
    // Very long names: 400 bytes of a/ and of ../ (within a 512-byte request), 511 bytes.
    names.push(b"a/".repeat(200));
    names.push([&b"../".repeat(130)[..], b"secret.txt"].concat());
    names.push(b"x".repeat(490));
    names.push([&b"./".repeat(200)[..], b"../secret.txt"].concat());
    names
}

/// root/ with traps, the secret one level above.
fn setup() -> (TempDir, Server) {
    let tmp = TempDir::new("confinement");
    let root = tmp.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    std::fs::write(tmp.join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("inside.txt"), INSIDE).unwrap();
    symlink("../secret.txt", root.join("link-out")).unwrap();
    symlink(tmp.join("secret.txt"), root.join("link-abs")).unwrap();
    symlink("/etc", root.join("link-etc")).unwrap();
    symlink("/", root.join("link-root")).unwrap();
    symlink("/proc", root.join("link-proc")).unwrap();
    symlink("../../secret.txt", root.join("sub/link-up")).unwrap();
    symlink("..", root.join("sub/dotdot")).unwrap();
    symlink("../..", root.join("sub/updir")).unwrap();
    symlink("loop", root.join("sub/loop")).unwrap();
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(root.join("fifo"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
    // Device nodes need root (CAP_MKNOD); elsewhere the names are simply missing.
    for (name, minor) in [("null-dev", 3), ("zero-dev", 5)] {
        let _ = rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join(name),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, minor),
        );
    }
    let server = Server::start(&root, &[]);
    (tmp, server)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn hostile_name_corpus_never_leaves_the_root() {
    let (tmp, server) = setup();
    let names = corpus();
    assert!(names.len() >= 100, "corpus has {} names", names.len());
    let passwd = std::fs::read("/etc/passwd").unwrap_or_default();
    let passwd_head = &passwd[..passwd.len().min(16)];
    let mut refused = Vec::new();
    let mut served = 0;
    let started = Instant::now();
    // Every client socket stays open until the end, so no two requests share a source port
    // and each refusal line can be matched to its request by `client=IP:PORT`.
    let mut clients = Vec::new();
    for name in &names {
        clients.push(RawClient::new());
        let client = clients.last().unwrap();
        let asked = Instant::now();
        client.send_to(&rrq(name, &[]), server.addr());
        let (reply, tid) = client
            .recv()
            .unwrap_or_else(|| panic!("{:?}: no answer (blocked?)", String::from_utf8_lossy(name)));
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}: answered only after {:?}",
            String::from_utf8_lossy(name),
            asked.elapsed()
        );
        assert!(
            !contains(&reply, SECRET)
                && !contains(&reply, passwd_head)
                && !contains(&reply, tmp.path.to_string_lossy().as_bytes()),
            "{:?}: leaked: {:?}",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(&reply)
        );
        match opcode(&reply) {
            5 => {
                let port = client.socket.local_addr().unwrap().port();
                refused.push((name.clone(), port, as_error(&reply).unwrap().0));
            }
            3 => {
                // Only a file inside the root may come back (e.g. `./inside.txt` spellings).
                assert_eq!(
                    &reply[4..],
                    INSIDE,
                    "{:?}: served something unexpected",
                    String::from_utf8_lossy(name)
                );
                client.send_to(&common::ack(1), tid);
                served += 1;
            }
            op => panic!("{:?}: opcode {op}", String::from_utf8_lossy(name)),
        }
    }
    // Every refusal is logged exactly once, naming the client's address and port.
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    for (name, port, code) in &refused {
        let needle = format!("client=127.0.0.1:{port} ");
        let lines = log
            .lines()
            .filter(|l| l.contains(&needle) && l.contains("refused"))
            .count();
        assert_eq!(
            lines,
            1,
            "{:?} (ERROR {code}): {lines} refusal lines for {needle}",
            String::from_utf8_lossy(name)
        );
    }
    let by_code = |c: u16| refused.iter().filter(|r| r.2 == c).count();
    eprintln!(
        "FIGURE confinement: {} hostile names in {:.2} s: refused {} (ERROR 1: {}, 2: {}, 4: {}), \
         served from inside the root: {served}; nothing outside served",
        names.len(),
        started.elapsed().as_secs_f64(),
        refused.len(),
        by_code(1),
        by_code(2),
        by_code(4),
    );
    // The server is still fine.
    assert!(server.log().contains("TFTP server ready"));
}

#[test]
fn fifo_requests_in_a_burst_never_block_the_server() {
    let (_tmp, server) = setup();
    let started = Instant::now();
    let clients: Vec<RawClient> = (0..50).map(|_| RawClient::new()).collect();
    for c in &clients {
        c.send_to(&rrq(b"fifo", &[("tsize", "0")]), server.addr());
    }
    for c in &clients {
        let (reply, _) = c.recv().expect("no answer for the FIFO");
        assert_eq!(as_error(&reply).map(|e| e.0), Some(2));
    }
    let c = RawClient::new();
    c.send_to(&rrq(b"inside.txt", &[]), server.addr());
    let (reply, _) = c.recv().expect("no DATA after the FIFO burst");
    assert_eq!(&reply[4..], INSIDE);
    assert!(started.elapsed() < Duration::from_secs(3));
}
