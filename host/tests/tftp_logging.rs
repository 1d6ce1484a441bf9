//! What the server logs about transfers: the OVMF `tsize` probe (OACK answered by ERROR 8) is a
//! normal end, not a warning; a completed transfer logs file, options, bytes and outcome.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{RawClient, Server, TempDir, ack, opcode, rrq};
use std::time::{Duration, Instant};

fn wait_for_log(server: &Server, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let log = server.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{needle:?} not logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tsize_probe_aborted_with_error_8_is_not_a_warning() {
    let tmp = TempDir::new("probe");
    std::fs::write(tmp.join("grubx64.efi"), vec![9u8; 5000]).unwrap();
    let server = Server::start(&tmp.path, &[]);
    let client = RawClient::new();
    let opts = [("tsize", "0"), ("blksize", "1468"), ("windowsize", "4")];
    client.send_to(&rrq(b"grubx64.efi", &opts), server.addr());
    let (oack, tid) = client.recv().expect("no OACK");
    assert_eq!(opcode(&oack), 6);
    assert!(String::from_utf8_lossy(&oack).contains("tsize\u{0}5000"));
    let mut error8 = vec![0, 5, 0, 8];
    error8.extend_from_slice(b"size probe done\0");
    client.send_to(&error8, tid);
    let log = wait_for_log(&server, "size probe");
    let line = log.lines().find(|l| l.contains("size probe")).unwrap();
    assert!(line.contains("DEBUG"), "{line}");
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
fn a_completed_transfer_is_logged_with_its_details() {
    let tmp = TempDir::new("logok");
    std::fs::write(tmp.join("pxelinux.0"), vec![1u8; 1000]).unwrap();
    let server = Server::start(&tmp.path, &[]);
    let client = RawClient::new();
    client.send_to(
        &rrq(b"pxelinux.0", &[("blksize", "1432"), ("tsize", "0")]),
        server.addr(),
    );
    let (oack, tid) = client.recv().expect("no OACK");
    assert_eq!(opcode(&oack), 6);
    client.send_to(&ack(0), tid);
    let (data, _) = client.recv().expect("no DATA");
    assert_eq!(data.len(), 4 + 1000);
    client.send_to(&ack(1), tid);
    let log = wait_for_log(&server, "outcome=ok");
    let line = log.lines().find(|l| l.contains("outcome=ok")).unwrap();
    for field in [
        "INFO",
        "client=127.0.0.1:",
        "file=pxelinux.0",
        "asked=\"blksize=1432 tsize=0\"",
        "granted=\"blksize=1432 tsize=1000\"",
        "bytes=1000",
        "duration_ms=",
        "rate_kib_s=",
    ] {
        assert!(line.contains(field), "{field:?} missing in {line}");
    }
}
