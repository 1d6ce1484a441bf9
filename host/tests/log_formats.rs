//! The log as `pocketpxe tftp` writes it: text values as an operator reads them (no Rust
//! `Option`s or Debug output, one quoting rule), JSON lines that parse, and journald's priority
//! prefixes when stderr is the stream `JOURNAL_STREAM` names.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{RawClient, Server, TempDir, ack, opcode, rrq, wait_child};
use std::os::unix::fs::MetadataExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(log: impl Fn() -> String, needle: &str, times: usize) -> String {
    let start = Instant::now();
    loop {
        let text = log();
        if text.matches(needle).count() >= times {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{needle:?} not logged {times} times:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A completed download of `pxelinux.0` (1000 bytes, blksize and tsize asked), a request for a
/// missing file, one for a directory without options, and a datagram that is no request.
fn exercise(server: &Server) {
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
    for name in [&b"missing.0"[..], b"sub"] {
        let client = RawClient::new();
        client.send_to(&rrq(name, &[]), server.addr());
        let (error, _) = client.recv().expect("no ERROR");
        assert_eq!(opcode(&error), 5);
    }
    RawClient::new().send_to(&[0, 9, 1, 2, 3], server.addr());
}

fn root(tag: &str) -> TempDir {
    let tmp = TempDir::new(tag);
    std::fs::write(tmp.join("pxelinux.0"), vec![1u8; 1000]).unwrap();
    std::fs::create_dir(tmp.join("sub")).unwrap();
    tmp
}

#[test]
fn text_values_read_as_an_operator_reads_them() {
    let tmp = root("log-text");
    let server = Server::start(&tmp.path, &[]);
    exercise(&server);
    wait_for(|| server.log(), "request refused", 2);
    let log = wait_for(|| server.log(), "transfer ended", 1);
    for artefact in ["Some(", "None", "{ ", "NotFound", "=\"\""] {
        assert!(!log.contains(artefact), "{artefact:?} in the log:\n{log}");
    }
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{log}"))
    };
    // Values with a space, `=` or `"` are quoted; the rest, MACs and file names too, are not.
    let ended = line("transfer ended");
    for field in [
        "file=pxelinux.0",
        "asked=\"blksize=1432 tsize=0\"",
        "granted=\"blksize=1432 tsize=1000\"",
        "bytes=1000",
        "outcome=ok",
    ] {
        assert!(ended.contains(field), "{field:?} missing in {ended}");
    }
    let missing = line("file=missing.0");
    assert!(missing.contains("reason=\"file not found\""), "{missing}");
    assert!(
        !missing.contains("asked="),
        "no options, no field: {missing}"
    );
    let refused = log
        .lines()
        .find(|l| l.contains("request refused") && l.contains("file=sub"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(refused.contains("reason=\"access denied\""), "{refused}");
    assert!(line("kind=directory").contains("file=sub"), "{log}");
}

#[test]
fn json_lines_parse_with_timestamp_level_target_and_fields() {
    let tmp = root("log-json");
    let server = Server::start(&tmp.path, &["--log-format", "json"]);
    exercise(&server);
    wait_for(|| server.log(), "request refused", 2);
    let log = wait_for(|| server.log(), "transfer ended", 1);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ended = lines
        .iter()
        .find(|l| l["fields"]["message"] == "transfer ended")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(ended["level"], "INFO");
    assert_eq!(ended["target"], "pocketpxe::serve::tftp");
    assert!(
        ended["timestamp"].as_str().unwrap().starts_with("20"),
        "{ended}"
    );
    let fields = &ended["fields"];
    assert_eq!(fields["file"], "pxelinux.0");
    assert_eq!(fields["bytes"], 1000);
    assert_eq!(fields["asked"], "blksize=1432 tsize=0");
    assert_eq!(fields["outcome"], "ok");
    let refused = lines
        .iter()
        .find(|l| l["fields"]["file"] == "missing.0")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(refused["fields"]["reason"], "file not found");
    assert!(refused["fields"].get("asked").is_none(), "{refused}");
}

/// `pocketpxe tftp` with stderr into `log` and `JOURNAL_STREAM` naming `stream`'s device and
/// inode; returns its exit code once it exits by itself or after SIGTERM at `stop_after`.
fn run_journald(log: &std::path::Path, stream: &std::path::Path, args: &[&str]) -> Option<i32> {
    let file = std::fs::File::create(log).unwrap();
    let meta = std::fs::metadata(stream).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pocketpxe"))
        .args(args)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if read().contains("TFTP server ready") {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_child(&mut child, Duration::from_secs(10)).and_then(|s| s.code())
}

#[test]
fn under_journald_lines_carry_priorities_and_no_timestamps() {
    let tmp = root("log-journald");
    let root = tmp.path.to_str().unwrap();
    let log = tmp.join("stderr.log");
    let args = ["tftp", "--root", root, "--listen", "127.0.0.1:0"];
    // stderr is the journal stream.
    assert_eq!(run_journald(&log, &log, &args), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let ready = text
        .lines()
        .find(|l| l.contains("TFTP server ready"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ready.starts_with("<6> INFO pocketpxe::serve::tftp: TFTP server ready"),
        "{ready}"
    );
    for line in text.lines() {
        let prefix = line.get(..3).unwrap_or_default();
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&prefix),
            "no priority: {line}"
        );
        assert!(
            !line.contains(" 20") && !line.starts_with("20"),
            "a timestamp: {line}"
        );
    }
    // A fatal error is filed as an error.
    let file = tmp.join("pxelinux.0");
    let bad = ["tftp", "--root", file.to_str().unwrap()];
    assert_eq!(run_journald(&log, &log, &bad), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("<3>error: TFTP root "), "{text}");
    // JOURNAL_STREAM inherited by a process whose stderr goes elsewhere: plain lines.
    assert_eq!(run_journald(&log, &file, &args), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("<6>"), "{text}");
    assert!(
        text.lines().all(|l| l.starts_with("20")),
        "timestamps expected:\n{text}"
    );
}
