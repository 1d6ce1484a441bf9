//! Real TFTP clients (curl, tftp-hpa, atftp) downloading from `pocketpxe tftp` on 127.0.0.1.
//! Every download is compared byte for byte. Sizes cover the empty file, one byte, one block
//! minus one, exactly one block (ends with an empty DATA), two blocks, 1 MiB, and 40 MiB
//! (over 65535 blocks of 512 bytes: block numbers roll over).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{Client, SIZE_ROLLOVER, SIZES_SMALL, Server, TempDir, have_client, make_file};
use std::time::Duration;

/// Serves every small size plus, when `rollover`, the 40 MiB file to `clients`.
fn fetch_all(tag: &str, clients: &[Client], rollover: bool, server_flags: &[&str]) {
    let clients: Vec<Client> = clients
        .iter()
        .copied()
        .filter(|c| have_client(c.binary()))
        .collect();
    if clients.is_empty() {
        return;
    }
    let tmp = TempDir::new(tag);
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    let mut files: Vec<(String, Vec<u8>)> =
        SIZES_SMALL.iter().map(|&n| make_file(&root, n)).collect();
    if rollover {
        files.push(make_file(&root, SIZE_ROLLOVER));
    }
    let server = Server::start(&root, server_flags);
    for client in &clients {
        for (name, data) in &files {
            client.fetch_and_check(&server, &tmp.path, name, data);
        }
    }
    let log = server.log();
    assert!(
        log.contains("outcome=ok"),
        "no transfer logged as ok:\n{log}"
    );
    assert!(!log.contains("WARN"), "unexpected warnings:\n{log}");
}

#[test]
fn curl_default_blksize_all_sizes_with_rollover() {
    fetch_all("curl", &[Client::Curl], true, &[]);
}

#[test]
fn curl_blksize_1468_and_without_options() {
    // curl 7.88 refuses an OACK carrying `tsize=0` ("invalid tsize -:0:- value in OACK
    // packet"): the core leaves tsize out of the OACK for empty files, so file-0 covers that.
    fetch_all(
        "curl1468",
        &[Client::CurlBlksize1468, Client::CurlNoOptions],
        false,
        &[],
    );
}

#[test]
fn tftp_hpa_all_sizes_with_rollover() {
    fetch_all("hpa", &[Client::TftpHpa], true, &[]);
}

#[test]
fn atftp_default_and_blksize_1468() {
    fetch_all(
        "atftp",
        &[Client::Atftp, Client::AtftpBlksize1468],
        false,
        &[],
    );
}

#[test]
fn atftp_windowsize_16_with_rollover() {
    fetch_all("atftpw", &[Client::AtftpWindowsize16], true, &[]);
}

#[test]
fn no_options_still_serves_clients_that_ask_for_options() {
    fetch_all(
        "noopt",
        &[Client::CurlBlksize1468, Client::AtftpWindowsize16],
        false,
        &["--no-options"],
    );
}

#[test]
fn concurrent_downloads() {
    if !have_client("curl") {
        return;
    }
    let tmp = TempDir::new("concurrent");
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    let (name, data) = make_file(&root, 1 << 20);
    let server = Server::start(&root, &[]);
    let mut children: Vec<_> = (0..8)
        .map(|i| {
            let out = tmp.join(&format!("out{i}"));
            let client = if i % 2 == 0 {
                Client::Curl
            } else {
                Client::CurlBlksize1468
            };
            let child = client
                .command(server.port, &name, &out)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    for (child, out) in &mut children {
        let status = common::wait_child(child, Duration::from_secs(120)).expect("curl timed out");
        assert!(status.success());
        assert!(std::fs::read(&*out).unwrap() == data);
    }
}
