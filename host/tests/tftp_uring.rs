//! The io_uring path of the TFTP transfer sockets (`--features io-uring`): a lock-step download
//! runs on it, and a server whose `io_uring_setup` is refused (a seccomp filter answering
//! `EPERM`, as a container profile would) says so once and serves the same download through
//! epoll.

#![cfg(feature = "io-uring")]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{RawClient, TempDir, ack, as_error, opcode, rrq};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// A `pocketpxe tftp` on 127.0.0.1, killed by its PID on drop.
struct Served {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Served {
    /// The log, once it holds `needle` (at most 5 s).
    fn log_once(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.log.lock().unwrap().clone();
            if log.contains(needle) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server, with `io_uring_setup` refused (`EPERM`) when `deny_uring`.
fn serve(root: &std::path::Path, deny_uring: bool) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pocketpxe"));
    command
        .arg("tftp")
        .arg("--root")
        .arg(root)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .env_remove("POCKETPXE_IO_URING")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if deny_uring {
        let filter = deny_io_uring_setup();
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe, on memory
        // (`filter`) built before the fork.
        unsafe {
            command.pre_exec(move || {
                let prog = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr().cast_mut(),
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &raw const prog,
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().expect("spawn pocketpxe");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("TFTP server ready") {
                let port = line
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("listen="))
                    .and_then(|addr| addr.parse::<SocketAddr>().ok())
                    .map(|addr| addr.port());
                let _ = ready_tx.send(port);
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let mut served = Served {
        child,
        port: 0,
        log,
    };
    match ready_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(port)) => served.port = port,
        _ => panic!(
            "server did not become ready; log:\n{}",
            served.log.lock().unwrap()
        ),
    }
    served
}

/// Classic BPF for seccomp: `io_uring_setup` fails with `EPERM`, everything else is allowed.
fn deny_io_uring_setup() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    vec![
        // seccomp_data.nr, at offset 0
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        op(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ]
}

/// Downloads `name` lock-step with hand-made ACKs and returns its bytes.
fn download(port: u16, name: &str) -> Vec<u8> {
    let client = RawClient::new();
    client.send_to(
        &rrq(name.as_bytes(), &[("blksize", "1468")]),
        SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let mut data = Vec::new();
    for _ in 0..10_000 {
        let (packet, from) = client.recv().expect("server answered");
        match opcode(&packet) {
            6 => client.send_to(&ack(0), from), // OACK
            3 => {
                let block = u16::from_be_bytes([packet[2], packet[3]]);
                data.extend_from_slice(&packet[4..]);
                client.send_to(&ack(block), from);
                if packet.len() < 4 + 1468 {
                    return data;
                }
            }
            _ => panic!("unexpected packet {:?}", as_error(&packet)),
        }
    }
    panic!("download did not end");
}

fn root_with_file() -> (TempDir, Vec<u8>) {
    let tmp = TempDir::new("uring");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(tmp.join("f"), &bytes).unwrap();
    (tmp, bytes)
}

/// Whether this kernel lets this process use io_uring (skipped, loudly, where it does not;
/// CI must have it).
fn uring_available() -> bool {
    match pocketpxe::sys::uring::Uring::new() {
        Ok(_) => true,
        Err(err) if std::env::var_os("CI").is_some_and(|v| v == "true") => {
            panic!("io_uring unavailable in CI: {err}")
        }
        Err(err) => {
            eprintln!("SKIP: io_uring unavailable here: {err}");
            false
        }
    }
}

#[test]
fn lock_step_download_runs_on_io_uring() {
    if !uring_available() {
        return;
    }
    let (tmp, bytes) = root_with_file();
    let served = serve(&tmp.path, false);
    assert_eq!(download(served.port, "f"), bytes);
    let log = served.log_once("transfer ended");
    assert!(log.contains("TFTP transfer sockets on io_uring"), "{log}");
    assert!(!log.contains("io_uring unavailable"), "{log}");
    assert!(log.contains("outcome=ok"), "{log}");
}

#[test]
fn refused_io_uring_falls_back_to_epoll() {
    let (tmp, bytes) = root_with_file();
    let served = serve(&tmp.path, true);
    assert_eq!(download(served.port, "f"), bytes);
    let log = served.log_once("transfer ended");
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("io_uring unavailable"))
        .collect();
    assert_eq!(refusals.len(), 1, "one line says so:\n{log}");
    assert!(
        refusals[0].contains("Operation not permitted"),
        "the kernel's refusal is named:\n{log}"
    );
    assert!(!log.contains("TFTP transfer sockets on io_uring"), "{log}");
    assert!(log.contains("outcome=ok"), "{log}");
}
